"""Decode a split and score it: WER and CER per language and their macro average.

Each language is decoded through its own pathway when the run has masks (``θ ⊙ m_l``), or through
the shared mask of a language-agnostic run, or densely. Writes per-utterance hypotheses
(``hyps_<split>.jsonl``) and a per-language table (``wer_<split>.md`` + ``.json``).

    asr-pathways evaluate runs/dense --split test
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

from .io import atomic_write_json, atomic_write_text


@torch.no_grad()
def evaluate(
    model: nn.Module,
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
) -> dict[str, Any]:
    """Greedy-decode ``split`` of every language; return per-language and average error rates."""
    from .asr.decode import greedy_decode
    from .data.batches import eval_batches
    from .metrics import error_rates, macro_average
    from .runtime import bf16_supported

    model.eval()
    device = torch.device(device)
    per_lang: dict[str, dict[str, Any]] = {}
    hyps_out: list[dict[str, str]] = []
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(languages), desc=f"decode {split}", unit="lang", dynamic_ncols=True, leave=False)
    for lang in languages:
        cuts = corpus.cuts(lang, split)
        if max_utts is not None:
            cuts = cuts.subset(first=min(max_utts, len(cuts)))
        name = pathway_of(lang) if pathway_of else None
        ctx = pathways.pathway(name) if (pathways is not None and name is not None) else contextlib.nullcontext()
        refs: list[str] = []
        hyps: list[str] = []
        with ctx:
            for batch in eval_batches(cuts, tokenizer, lang, max_duration):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and bf16_supported(device)):
                    ids = greedy_decode(model, batch.features.to(device), batch.feature_lens.to(device))
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


def write_evaluation(out: str | Path, result: dict[str, Any], title: str | None = None) -> dict[str, Path]:
    """Write ``wer_<split>.json``, ``wer_<split>.md`` and ``hyps_<split>.jsonl`` atomically."""
    out = Path(out)
    split = result["split"]
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

    pm = PathwayModel(model)
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
    p.add_argument("run", help="run folder (runs/NAME) holding checkpoint.safetensors, config.yaml and tokenizer.model")
    p.add_argument("--corpus", help="corpus folder (default: the one the run was trained on)")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"], help="which split to decode")
    p.add_argument("--languages", help="comma-separated languages (default: the run's languages)")
    p.add_argument("--max-utts", type=int, default=None, help="decode at most this many utterances per language")
    p.add_argument("--max-duration", type=float, default=200.0, help="seconds of audio per decoding batch")
    p.add_argument("--out", help="where to write the tables (default: the run folder)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")


def run(args: argparse.Namespace) -> int:
    from .data.corpus import Corpus
    from .runs import load_run
    from .runtime import pick_device

    device = pick_device(args.device)
    lr = load_run(args.run, device)
    corpus = Corpus(args.corpus or lr.config.corpus)
    languages = args.languages.split(",") if args.languages else lr.config.languages
    pm, pathway_of = pathways_for_run(lr.model, lr.masks, languages)
    result = evaluate(
        lr.model, lr.tokenizer, corpus, languages, args.split, pathways=pm, pathway_of=pathway_of,
        max_duration=args.max_duration, max_utts=args.max_utts, device=device,
    )
    paths = write_evaluation(args.out or args.run, result, title=f"{Path(args.run).name} — {args.split}")
    print(wer_table(result, title=f"{Path(args.run).name} — {args.split}"))
    print(f"per-utterance hypotheses: {paths['hyps']}")
    return 0
