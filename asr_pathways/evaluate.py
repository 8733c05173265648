"""Decode a split and score it: WER and CER per language and their macro average.

Each language is decoded through its own pathway when the run has masks (``θ ⊙ m_l``), or through
the shared mask of a language-agnostic run, or densely. Writes per-utterance hypotheses
(``hyps_<split>.jsonl``) and a per-language table (``wer_<split>.md`` + ``.json``).

    asr-pathways evaluate runs/dense --split test
    asr-pathways evaluate models/fr-f16 --decoding beam        # an export folder (or EXPORT/onnx)

The CLI takes any model folder :func:`asr_pathways.loading.open_model` opens (run, monolingual
prune run, language sub-run, export, ONNX export); a language the model has no pathway for is an
error naming the model's languages (exit status 2), never a silent dense decode. Evaluating an
export also records the WER in its model card (``model.json`` and ``README.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .asr.searches import DECODING_HELP, DECODINGS, DEFAULT_BEAM, decoding_label, decoding_tag
from .io import atomic_write_json, atomic_write_text


@torch.no_grad()
def evaluate(
    model: nn.Module | None,
    tokenizer: Any,
    corpus: Any,
    languages: list[str],
    split: str = "test",
    *,
    pathways: Any | None = None,
    pathway_of: Callable[[str], str | None] | None = None,
    max_duration: float = 200.0,
    max_utts: int | None = None,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    progress: bool = True,
    decoding: str = "greedy",
    beam: int = 4,
    decoder_of: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Decode ``split`` of every language (``decoding`` one of ``asr.searches.DECODINGS``, a beam
    search with ``beam`` hypotheses); return per-language and average error rates.

    ``decoder_of(language)``, when given, replaces ``model``/``pathways``: it returns a
    :class:`~asr_pathways.loading.Decoder` (any engine: torch, sparse kernels, ONNX).
    """
    from .asr.beam_search import decode_batch
    from .data.batches import eval_batches
    from .metrics import error_rates, macro_average
    from .runtime import bf16_supported

    if model is not None:
        model.eval()
    device = torch.device(device)
    per_lang: dict[str, dict[str, Any]] = {}
    hyps_out: list[dict[str, str]] = []
    t0 = time.perf_counter()
    bar = None
    if progress:
        from .progress import progress_bar

        bar = progress_bar(total=len(languages), desc=f"decode {split}", unit="lang", leave=False)
    for lang in languages:
        cuts = corpus.cuts(lang, split)
        if max_utts is not None:
            cuts = cuts.subset(first=min(max_utts, len(cuts)))
        name = pathway_of(lang) if pathway_of else None
        ctx = pathways.pathway(name) if (pathways is not None and name is not None) else contextlib.nullcontext()
        decoder = decoder_of(lang) if decoder_of is not None else None
        refs: list[str] = []
        hyps: list[str] = []
        with ctx:
            for batch in eval_batches(cuts, tokenizer, lang, max_duration):
                if decoder is not None:
                    ids = decoder.batch(batch.features, batch.feature_lens, decoding, beam)
                else:
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and bf16_supported(device)):
                        ids = decode_batch(model, batch.features.to(device), batch.feature_lens.to(device), decoding=decoding, beam=beam)
                for cid, ref, seq in zip(batch.cut_ids, batch.texts, ids):
                    hyp = tokenizer.decode(seq)
                    refs.append(ref)
                    hyps.append(hyp)
                    hyps_out.append({"id": cid, "language": lang, "ref": ref, "hyp": hyp})
        per_lang[lang] = error_rates(refs, hyps) | {"utterances": len(refs)}
        if bar is not None:
            bar.update(1)
            bar.set_postfix({lang: f"{100 * per_lang[lang]['wer']:.1f}%"})
    if bar is not None:
        bar.close()
    return {
        "split": split,
        "languages": per_lang,
        "average": macro_average(per_lang),
        "hyps": hyps_out,
        "decode_seconds": time.perf_counter() - t0,
        "decoding": decoding_label(decoding, beam),
    }


def wer_table(result: dict[str, Any], title: str | None = None) -> str:
    """Markdown table: one row per language plus the macro average."""
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += ["| language | utterances | WER % | CER % |", "| --- | ---: | ---: | ---: |"]
    for lang, r in result["languages"].items():
        lines.append(f"| {lang} | {r['utterances']} | {100 * r['wer']:.2f} | {100 * r['cer']:.2f} |")
    avg = result["average"]
    lines.append(f"| **average** | | **{100 * avg['wer']:.2f}** | **{100 * avg['cer']:.2f}** |")
    return "\n".join(lines) + "\n"


def write_evaluation(out: str | Path, result: dict[str, Any], title: str | None = None, tag: str = "") -> dict[str, Path]:
    """Write ``wer_<split><tag>.json``, ``wer_<split><tag>.md`` and ``hyps_<split><tag>.jsonl`` atomically."""
    out = Path(out)
    split = result["split"] + tag
    summary = {k: v for k, v in result.items() if k != "hyps"}
    paths = {
        "json": atomic_write_json(out / f"wer_{split}.json", summary),
        "md": atomic_write_text(out / f"wer_{split}.md", wer_table(result, title)),
        "hyps": atomic_write_text(out / f"hyps_{split}.jsonl", "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in result["hyps"])),
    }
    return paths


def pathways_for_run(model: nn.Module, masks: dict[str, dict[str, torch.Tensor]], languages: list[str]):
    """Build a PathwayModel from a run's masks and the language → pathway mapping.

    Languages with their own mask use it; a single ``shared`` mask (LAP) serves every language;
    with no masks the model is dense.
    """
    if not masks:
        return None, None
    from .sparsity.masks import MaskSet
    from .sparsity.pathways import PathwayModel

    pm = PathwayModel(model, list(next(iter(masks.values()))))  # the weights the run's masks cover
    for name, m in masks.items():
        pm.set_mask(name, MaskSet(m))

    def pathway_of(lang: str) -> str | None:
        if lang in masks:
            return lang
        if "shared" in masks:
            return "shared"
        return None

    return pm, pathway_of


# ---------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="MODEL", help="model folder: a run (runs/NAME), a monolingual prune run or its language "
                   "sub-run (RUN/lang/fr), an export (asr-pathways export) or its ONNX graphs (EXPORT/onnx)")
    p.add_argument("--corpus", help="corpus folder (default: the one the model was trained on, from its run config or model card)")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"], help="which split to decode")
    p.add_argument("--languages", help="comma-separated languages (default: the model's languages); a language without "
                   "a pathway in the model is an error")
    p.add_argument("--max-utts", type=int, default=None, help="decode at most this many utterances per language")
    p.add_argument("--max-duration", type=float, default=200.0, help="seconds of audio per decoding batch")
    p.add_argument("--decoding", choices=DECODINGS, default="greedy", help=DECODING_HELP)
    p.add_argument("--beam", type=int, default=DEFAULT_BEAM, help="hypotheses kept by beam search")
    p.add_argument("--plain-names", action="store_true",
                   help="write wer_SPLIT.json/.md and hyps_SPLIT.jsonl without the search's suffix (_beam4) even when not greedy")
    p.add_argument("--engine", choices=["auto", "torch", "sparse", "onnx"], default="auto",
                   help="torch: the model's own modules; sparse: block-sparse kernels; onnx: onnxruntime; "
                        "auto: sparse for an export on the CPU, onnx for an ONNX folder, torch otherwise")
    p.add_argument("--out", help="where to write the tables (default: the model folder)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")


def output_folder(args: argparse.Namespace) -> Path:
    """The folder this command writes (and locks): ``--out``, else the model folder."""
    return Path(args.out or args.run)


def run(args: argparse.Namespace) -> int:
    from .data.corpus import Corpus
    from .errors import InputError
    from .loading import open_model
    from .runtime import pick_device

    if args.beam < 1:
        raise InputError(f"--beam must be at least 1, got {args.beam}", field="--beam")
    device = pick_device(args.device)
    source = open_model(args.run, device)
    corpus_path = args.corpus or source.corpus
    if not corpus_path:
        raise InputError("this model does not say which corpus it was trained on", path=args.run, field="--corpus",
                         expected="a corpus folder", hint="pass --corpus DIR")
    corpus = Corpus(corpus_path)
    if args.languages:
        languages = args.languages.split(",")
    else:
        languages = source.languages if source.languages is not None else list(corpus.languages)
    for lang in languages:  # every language first, so that an error comes before any decoding
        source.check_language(lang)
        if lang not in corpus.languages:
            raise InputError(f"language {lang!r} is not in the corpus", path=corpus_path, field="--languages",
                             expected="some of " + ", ".join(corpus.languages))
    result = evaluate(
        None, source.tokenizer, corpus, languages, args.split, max_duration=args.max_duration, max_utts=args.max_utts,
        device=device, decoding=args.decoding, beam=args.beam, decoder_of=lambda lang: source.decoder(lang, args.engine),
    )
    result["engine"] = source.resolve_engine(args.engine)
    name = Path(args.run).name
    title = f"{name} — {args.split}" + ("" if args.decoding == "greedy" else f" ({decoding_label(args.decoding, args.beam)})")
    out = Path(args.out or args.run)
    # A search other than greedy writes its own files (wer_test_beam4.json), so the greedy ones stay;
    # --plain-names (what `bench` asks for) writes wer_test.json whatever the search (the JSON says which).
    tag = "" if args.plain_names else decoding_tag(args.decoding, args.beam)
    paths = write_evaluation(out, result, title=title, tag=tag)
    if source.kind in ("export", "onnx") and args.out is None:
        from .export.card import record_evaluation

        record_evaluation(source.path if source.kind == "export" else source.path.parent, result, str(corpus_path))
    print(wer_table(result, title=title))
    print(f"per-utterance hypotheses: {paths['hyps']}")
    return 0
