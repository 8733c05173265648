"""Whole-model decoding latency at batch 1, one thread: a dense export against a pruned (70%)
pathway export through the same lean loop, and both against today's torch decoding.

    # random weights (any machine, minutes): the small and base presets
    python benchmarks/whole_model_speed.py --presets small,base
    # trained models: a dense run and a prune run, on a corpus's test utterances of one language
    python benchmarks/whole_model_speed.py --dense-run runs/dense --pruned-run runs/pathways --language fr

Three decoders per utterance, timed in turn (best of ``--repeats``), one torch thread:

- *torch*: today's decoding, ``greedy_decode`` on the pathway's masked model (``CompactModel.model``:
  θ ⊙ m in ``nn.Linear``/``nn.MultiheadAttention``/``nn.LSTM``), batch of one;
- *lean dense*: the dense export through :func:`asr_pathways.export.fast.sparse_decoding_model` with
  no mask (every matrix dense, same modules) and :func:`~asr_pathways.export.fast.lean_greedy`;
- *lean sparse*: the pathway export with every pruned matrix on the block-sparse kernels, same loop.

lean dense / lean sparse is the gain from sparsity (limit 1/(1−s)); torch / lean dense the gain
from the loop. With random weights the "dense export" holds the same θ ⊙ m stored dense (the
same arithmetic as any dense model of that shape, and the same transcripts, so both loops do the
same work); the joiner's blank bias is set so that greedy decoding emits ``--tokens-per-second``
labels per second of audio, as a trained model does. With trained runs the dense export is the
dense run's, so its transcripts (and token counts) differ. Transcripts of *lean sparse* are
compared with *torch* (the same pathway): they must be identical.

Writes benchmarks/results/whole_model_speed.json and the ``whole_model_speed`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import command_line, machine_info, machine_line  # noqa: E402
from benchmarks.decoding_common import (  # noqa: E402
    publish,
    best_time, corpus_utterances, magnitude_masks, random_model, synthetic_utterances, tune_emission,
)

SECTION = "whole_model_speed"


def _decoders(dense_dir: Path, dense_pathway: str, sparse_dir: Path, pathway: str) -> dict[str, Any]:
    from asr_pathways.export.compact import CompactModel
    from asr_pathways.export.fast import sparse_decoding_model

    dense_cm, sparse_cm = CompactModel.load(dense_dir), CompactModel.load(sparse_dir)
    today = sparse_cm.model(pathway)
    return {
        "torch": today,
        "lean_dense": sparse_decoding_model(dense_cm.model(dense_pathway), {}, inplace=True),
        "lean_sparse": sparse_decoding_model(sparse_cm.model(pathway), sparse_cm.masks(pathway), inplace=True),
        "bytes": {"dense": dense_cm.meta["sizes"]["weights_bytes"], "sparse": sparse_cm.meta["sizes"]["weights_bytes"]},
        "sparsity": sparse_cm.meta["sizes"]["sparsity_prunable"],
    }


@torch.inference_mode()
def measure(decoders: dict[str, Any], utts: list, repeats: int) -> dict[str, Any]:
    """Per-utterance best-of-``repeats`` times of the three decoders, interleaved; transcripts."""
    from asr_pathways.asr.decode import greedy_decode
    from asr_pathways.export.fast import lean_greedy

    run = {
        "torch": lambda u: greedy_decode(decoders["torch"], u.features[None], torch.tensor([u.features.shape[0]]))[0],
        "lean_dense": lambda u: lean_greedy(decoders["lean_dense"], u.features),
        "lean_sparse": lambda u: lean_greedy(decoders["lean_sparse"], u.features),
    }
    for fn in run.values():  # warm-up (first calls allocate)
        fn(utts[0])
    times = {k: [] for k in run}
    hyps = {k: [] for k in run}
    enc = {"lean_dense": [], "lean_sparse": []}
    for u in utts:
        for k, fn in run.items():
            t, h = best_time(lambda: fn(u), repeats)
            times[k].append(t)
            hyps[k].append(h)
        for k in enc:
            lens = torch.tensor([u.features.shape[0]])
            enc[k].append(best_time(lambda: decoders[k].encode(u.features[None], lens), repeats)[0])
    audio = sum(u.seconds for u in utts)
    out: dict[str, Any] = {"utterances": len(utts), "audio_seconds": audio}
    for k in run:
        out[f"{k}_ms"] = 1000 * sum(times[k]) / len(utts)
        out[f"{k}_rtf"] = sum(times[k]) / audio
        out[f"{k}_tokens"] = sum(map(len, hyps[k])) / len(utts)
    for k in enc:
        out[f"{k}_encoder_ms"] = 1000 * sum(enc[k]) / len(utts)
    out["sparsity_speedup"] = sum(times["lean_dense"]) / sum(times["lean_sparse"])
    out["loop_speedup"] = sum(times["torch"]) / sum(times["lean_dense"])
    out["total_speedup"] = sum(times["torch"]) / sum(times["lean_sparse"])
    out["encoder_speedup"] = sum(enc["lean_dense"]) / sum(enc["lean_sparse"])
    out["identical_transcripts"] = sum(a == b for a, b in zip(hyps["lean_sparse"], hyps["torch"]))
    return out


def random_row(preset: str, sparsity: float, utts: list, tokens_per_second: float, repeats: int) -> dict[str, Any]:
    from asr_pathways.asr.model import count_parameters
    from asr_pathways.export.compact import export_pathways, masked_state_dict

    model, cfg = random_model(preset)
    masks = magnitude_masks(model, sparsity)
    model.load_state_dict(masked_state_dict(model, masks))  # θ ⊙ m: the dense export stores these dense
    bias = tune_emission(model, utts[:3], tokens_per_second)
    with tempfile.TemporaryDirectory() as d:
        export_pathways(model, {"dense": {}}, Path(d) / "dense", cfg)
        export_pathways(model, {"xx": masks}, Path(d) / "sparse", cfg, languages=["xx"])
        decoders = _decoders(Path(d) / "dense", "dense", Path(d) / "sparse", "xx")
    row = measure(decoders, utts, repeats)
    return {"preset": preset, "weights": "random", "parameters": count_parameters(model), "blank_bias": bias,
            "target_sparsity": sparsity, "sparsity": decoders["sparsity"], "dense_bytes": decoders["bytes"]["dense"],
            "sparse_bytes": decoders["bytes"]["sparse"], **row}


def trained_row(dense_run: Path, pruned_run: Path, language: str, utts: list, repeats: int) -> dict[str, Any]:
    from asr_pathways.asr.model import count_parameters
    from asr_pathways.export.cli import resolve_run, select_masks
    from asr_pathways.export.compact import export_pathways
    from asr_pathways.runs import load_run

    dense, pruned_folder = load_run(dense_run), resolve_run(pruned_run, language)
    pruned = load_run(pruned_folder)
    masks, languages = select_masks(pruned.masks, language, pruned_folder)
    with tempfile.TemporaryDirectory() as d:
        export_pathways(dense.model, {"dense": {}}, Path(d) / "dense", dense.config.model)
        export_pathways(pruned.model, masks, Path(d) / "sparse", pruned.config.model, languages=languages)
        decoders = _decoders(Path(d) / "dense", "dense", Path(d) / "sparse", language)
    row = measure(decoders, utts, repeats)
    return {"preset": dense.config.preset, "weights": f"trained: {dense_run} vs {pruned_run} ({language})",
            "parameters": count_parameters(dense.model), "sparsity": decoders["sparsity"],
            "dense_bytes": decoders["bytes"]["dense"], "sparse_bytes": decoders["bytes"]["sparse"], **row}


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        "## Whole-model decoding speed (batch 1, one thread)", "",
        f"Command: `{res['command']}` · {machine_line(m)} · kernels: {res['kernel_backend']} · seeds: weights/masks 0, "
        f"features 1 · {res['utterances']} · best of {res['repeats']} per utterance · wall {res['wall_s']:.0f} s · "
        f"load average (1 min) before/after {res['load_before']:.2f} / {res['load_after']:.2f}", "",
        "Per utterance, mean of the best-of-N times. *torch*: `greedy_decode` on the masked pathway model (today); "
        "*lean dense*: the dense export, every matrix dense, lean loop; *lean sparse*: the pathway export with every "
        "pruned matrix (attention projections and the predictor LSTM included) on the block-sparse kernels, same loop. "
        "Sparsity gain = lean dense / lean sparse (limit 1/(1−s)); loop gain = torch / lean dense. "
        "Identical: lean sparse transcripts equal to torch's (same pathway).", "",
        "| preset (weights) | parameters | prunable sparsity | tokens/utt dense / sparse | torch ms | lean dense ms | lean sparse ms | "
        "**sparsity gain** | loop gain | total | encoder dense / sparse ms | identical | export MB dense / sparse |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in res["rows"]:
        limit = 1 / (1 - r["sparsity"]) if r["sparsity"] < 1 else float("inf")
        lines.append(
            f"| {r['preset']} ({r['weights']}) | {r['parameters'] / 1e6:.2f} M | {r['sparsity']:.1%} | {r['lean_dense_tokens']:.1f} / {r['lean_sparse_tokens']:.1f} | "
            f"{r['torch_ms']:.1f} | {r['lean_dense_ms']:.1f} | {r['lean_sparse_ms']:.1f} | **{r['sparsity_speedup']:.2f}x** "
            f"(limit {limit:.1f}x) | {r['loop_speedup']:.2f}x | {r['total_speedup']:.2f}x | {r['lean_dense_encoder_ms']:.1f} / "
            f"{r['lean_sparse_encoder_ms']:.1f} ({r['encoder_speedup']:.2f}x) | {r['identical_transcripts']}/{r['utterances']} | "
            f"{r['dense_bytes'] / 1e6:.2f} / {r['sparse_bytes'] / 1e6:.2f} |")
    lines += ["", "What does not shrink with sparsity: the convolutional front-end (never pruned), layer norms, "
              "attention scores and softmax, the depthwise convolution, and the per-frame work of the loop; "
              "the larger the model, the smaller their share (compare the presets)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", default="small,base", help="random-weight presets to measure")
    ap.add_argument("--sparsity", type=float, default=0.7, help="random weights: prunable sparsity (8x1 magnitude masks)")
    ap.add_argument("--utterances", type=int, default=10, help="utterances per preset")
    ap.add_argument("--seconds", type=float, default=4.0, help="random weights without --corpus: seconds per synthetic utterance")
    ap.add_argument("--tokens-per-second", type=float, default=5.0, help="random weights: labels emitted per audio second")
    ap.add_argument("--repeats", type=int, default=3, help="timed decodes per utterance and decoder (the best counts)")
    ap.add_argument("--corpus", help="decode this corpus's test utterances (default: synthetic features; trained runs: the run's corpus)")
    ap.add_argument("--language", help="language of the corpus utterances / pathway of --pruned-run")
    ap.add_argument("--dense-run", type=Path, help="trained mode: the dense run (asr-pathways train)")
    ap.add_argument("--pruned-run", type=Path, help="trained mode: the prune run whose --language pathway is measured")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    from asr_pathways.export.sparse_linear import kernel_backend

    torch.set_num_threads(1)
    t0, load_before = time.time(), os.getloadavg()[0]
    backend = kernel_backend()  # build the kernels before timing
    rows = []
    if args.dense_run or args.pruned_run:
        if not (args.dense_run and args.pruned_run and args.language):
            ap.error("trained mode needs --dense-run, --pruned-run and --language")
        from asr_pathways.runs import read_run_config

        corpus = args.corpus or read_run_config(args.dense_run).corpus
        utts = corpus_utterances(corpus, args.language, "test", args.utterances)
        rows.append(trained_row(args.dense_run, args.pruned_run, args.language, utts, args.repeats))
        what = f"{len(utts)} test utterances of {args.language} ({sum(u.seconds for u in utts) / len(utts):.1f} s on average)"
    else:
        if args.corpus:
            utts = corpus_utterances(args.corpus, args.language or "en", "test", args.utterances)
            what = f"{len(utts)} test utterances of {args.corpus}"
        else:
            utts = synthetic_utterances(args.utterances, args.seconds)
            what = f"{len(utts)} synthetic {args.seconds:g}-s utterances"
        for preset in args.presets.split(","):
            rows.append(random_row(preset, args.sparsity, utts, args.tokens_per_second, args.repeats))
            r = rows[-1]
            print(f"{preset}: torch {r['torch_ms']:.1f} ms, lean dense {r['lean_dense_ms']:.1f} ms, lean sparse "
                  f"{r['lean_sparse_ms']:.1f} ms -> {r['sparsity_speedup']:.2f}x sparsity, {r['loop_speedup']:.2f}x loop; "
                  f"identical {r['identical_transcripts']}/{r['utterances']}", flush=True)
    res = {"command": command_line("benchmarks/whole_model_speed.py", argv), "machine": machine_info(), "kernel_backend": backend,
           "threads": 1, "repeats": args.repeats, "utterances": what, "seeds": {"weights_and_masks": 0, "features": 1},
           "rows": rows, "load_before": load_before, "load_after": os.getloadavg()[0], "wall_s": time.time() - t0}
    # trained runs and random-weight presets are kept in separate records (one does not replace the other)
    section = SECTION + ("_trained" if args.dense_run else "")
    return publish(section, res, markdown, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
