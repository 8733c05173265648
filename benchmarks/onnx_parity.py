"""ONNX export: parity with the PyTorch model (encoder outputs, joiner logits, transcripts), sizes
and decoding time in onnxruntime.

    python benchmarks/onnx_parity.py --run runs/pathways --language fr      # a trained pathway
    python benchmarks/onnx_parity.py --presets small,base                   # random weights, 70% masks

The pathway is exported (``asr-pathways export RUN --language L --onnx``: float32, θ ⊙ m stored
dense in the graphs) and decoded on the same utterances by the PyTorch model of the export (torch
engine) and by onnxruntime (one thread each, batch 1, greedy). Reported: the largest absolute and
relative difference of the encoder output and of the joiner logits (first predictor state), the
transcripts that are identical, the RTFs, and the sizes: compact export, ONNX graphs, the graphs
zip-compressed (what sparsity buys an ONNX file: zeros compress), and the dense float32 model.
Writes benchmarks/results/onnx_parity.json and the ``onnx_parity`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import command_line, machine_info, machine_line  # noqa: E402
from benchmarks.decoding_common import (  # noqa: E402
    publish,
    corpus_utterances, magnitude_masks, random_model, synthetic_utterances, tune_emission, wer_of,
)

SECTION = "onnx_parity"


@torch.inference_mode()
def compare(export_dir: Path, pathway: str, utts: list, tokenizer: Any | None) -> dict[str, Any]:
    from asr_pathways.export.compact import CompactModel
    from asr_pathways.export.onnx_decode import OnnxTransducer

    cm = CompactModel.load(export_dir)
    model = cm.model(pathway)
    cfg = cm.meta["config"]
    onnx = OnnxTransducer(export_dir / "onnx", int(cfg["predictor_layers"]), int(cfg["predictor_dim"]), threads=1)
    enc_abs = enc_rel = logit_abs = logit_rel = 0.0
    same, t_torch, t_onnx = 0, 0.0, 0.0
    refs, hyp_t, hyp_o = [], [], []
    from asr_pathways.asr.decode import greedy_decode

    for u in utts:
        feats, lens = u.features[None], torch.tensor([u.features.shape[0]])
        e_t, _ = model.encode(feats, lens)
        e_o, _ = onnx.encode(feats, lens)
        enc_abs = max(enc_abs, float((e_t - e_o).abs().max()))
        enc_rel = max(enc_rel, float((e_t - e_o).norm() / e_t.norm()))
        out, _ = model.predictor(torch.zeros(1, 1, dtype=torch.long), None)
        l_t = model.joiner(model.joiner.enc_proj(e_t[0]), model.joiner.pred_proj(out[:, 0]))
        o_out, _ = onnx.predictor(torch.zeros(1, 1, dtype=torch.long), None)
        l_o = onnx.joiner(e_t[0], o_out[:, 0].expand(e_t.shape[1], -1).contiguous())
        logit_abs = max(logit_abs, float((l_t - l_o).abs().max()))
        logit_rel = max(logit_rel, float((l_t - l_o).norm() / l_t.norm()))
        t = time.perf_counter()
        a = greedy_decode(model, feats, lens)[0]
        t_torch += time.perf_counter() - t
        t = time.perf_counter()
        b = onnx.decode(feats, lens)[0]
        t_onnx += time.perf_counter() - t
        same += a == b
        if tokenizer is not None and u.text is not None:
            refs.append(u.text)
            hyp_t.append(tokenizer.decode(a))
            hyp_o.append(tokenizer.decode(b))
    audio = sum(u.seconds for u in utts)
    onnx_files = sorted((export_dir / "onnx").glob("*.onnx"))
    onnx_bytes = sum(p.stat().st_size for p in onnx_files)
    zipped = sum(len(zlib.compress(p.read_bytes(), 6)) for p in onnx_files)
    row = {"utterances": len(utts), "encoder_max_abs": enc_abs, "encoder_max_rel": enc_rel, "logits_max_abs": logit_abs,
           "logits_max_rel": logit_rel, "identical_transcripts": same, "torch_rtf": t_torch / audio, "onnx_rtf": t_onnx / audio,
           "compact_bytes": cm.meta["sizes"]["weights_bytes"], "dense_float32_bytes": cm.meta["sizes"]["dense_float32_bytes"],
           "onnx_bytes": onnx_bytes, "onnx_zipped_bytes": zipped, "sparsity": cm.meta["sizes"]["sparsity_prunable"]}
    if refs:
        row["torch_wer"], row["onnx_wer"] = wer_of(refs, hyp_t)["wer"], wer_of(refs, hyp_o)["wer"]
    return row


def markdown(res: dict[str, Any]) -> str:
    mb = lambda b: f"{b / 1e6:.2f}"  # noqa: E731
    lines = [
        "## ONNX export: parity and size", "",
        f"Command: `{res['command']}` · {machine_line(res['machine'])} · onnxruntime {res['onnxruntime']} · opset "
        f"{res['opset']} · seeds: weights/masks 0, features 1 · {res['utterances']} · wall {res['wall_s']:.0f} s", "",
        "Largest difference between the PyTorch model of the export and its ONNX graphs in onnxruntime (float32): "
        "encoder output and joiner logits, absolute and relative (norm of the difference / norm). Identical: greedy "
        "transcripts equal. MB = 10^6 bytes; *zipped*: the ONNX graphs zlib-compressed (the graphs hold θ ⊙ m dense, "
        "so only compression turns sparsity into bytes).", "",
        "| model | sparsity | encoder abs / rel | logits abs / rel | identical | WER torch / ONNX | RTF torch / ONNX | "
        "compact MB | ONNX MB (zipped) | dense float32 MB |",
        "| --- | ---: | --- | --- | --- | --- | --- | ---: | --- | ---: |",
    ]
    for r in res["rows"]:
        wer = f"{100 * r['torch_wer']:.2f} / {100 * r['onnx_wer']:.2f}" if "torch_wer" in r else "—"
        lines.append(
            f"| {r['name']} | {r['sparsity']:.1%} | {r['encoder_max_abs']:.1e} / {r['encoder_max_rel']:.1e} | "
            f"{r['logits_max_abs']:.1e} / {r['logits_max_rel']:.1e} | {r['identical_transcripts']}/{r['utterances']} | {wer} | "
            f"{r['torch_rtf']:.4f} / {r['onnx_rtf']:.4f} | {mb(r['compact_bytes'])} | {mb(r['onnx_bytes'])} "
            f"({mb(r['onnx_zipped_bytes'])}) | {mb(r['dense_float32_bytes'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, help="trained mode: a run (prune run, sub-run or dense run)")
    ap.add_argument("--language", help="trained mode: the pathway to export (and the corpus language)")
    ap.add_argument("--corpus", help="decode this corpus's test utterances (trained mode default: the run's corpus)")
    ap.add_argument("--presets", default="small,base", help="random mode: presets")
    ap.add_argument("--sparsity", type=float, default=0.7, help="random mode: prunable sparsity")
    ap.add_argument("--utterances", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=4.0, help="random mode without --corpus: seconds per synthetic utterance")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    import onnxruntime

    from asr_pathways.export.compact import export_pathways
    from asr_pathways.export.onnx_export import OPSET, export_onnx

    torch.set_num_threads(1)
    t0 = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        if args.run:
            from asr_pathways.cli import main as cli

            out = Path(d) / "export"
            argv_export = ["export", str(args.run), "--out", str(out), "--onnx"] + (["--language", args.language] if args.language else [])
            if cli(argv_export) != 0:
                raise SystemExit("export failed")
            from asr_pathways.loading import open_model

            source = open_model(out)
            lang = args.language or (source.languages or ["en"])[0]
            utts = corpus_utterances(args.corpus or source.corpus, lang, "test", args.utterances)
            pathway = source.meta["pathways"][0]
            rows.append({"name": f"{args.run} ({lang})", **compare(out, pathway, utts, source.tokenizer)})
            what = f"{len(utts)} test utterances of {lang}"
        else:
            utts = synthetic_utterances(args.utterances, args.seconds)
            what = f"{len(utts)} synthetic {args.seconds:g}-s utterances"
            for preset in args.presets.split(","):
                model, cfg = random_model(preset)
                tune_emission(model, utts[:3], 5.0)
                out = Path(d) / preset
                export_pathways(model, {"xx": magnitude_masks(model, args.sparsity)}, out, cfg, languages=["xx"])
                from asr_pathways.export.compact import CompactModel

                export_onnx(CompactModel.load(out).model("xx"), out / "onnx")
                rows.append({"name": f"{preset} (random)", **compare(out, "xx", utts, None)})
                print(rows[-1], flush=True)
    res = {"command": command_line("benchmarks/onnx_parity.py", argv), "machine": machine_info(), "onnxruntime": onnxruntime.__version__,
           "opset": OPSET, "utterances": what, "rows": rows, "wall_s": time.time() - t0}
    return publish(SECTION, res, markdown, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
