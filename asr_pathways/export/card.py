"""Model cards: what an exported model is, in ``model.json["card"]`` and a ``README.md`` beside it.

A card says which languages the model decodes, its WER per language and on which corpus and split
it was measured (first the source run's evaluation of the float32 θ ⊙ m model; ``asr-pathways
evaluate EXPORT`` replaces it with the export's own, e.g. after float16 rounding), the method and
its target, the sparsity of every pathway and of their union (over the prunable weights and over
all parameters), the size of the files, and the commands that made the run and the export.

    >>> card = {"languages": ["fr"], "method": {"name": "pathways", "target_sparsity": 0.7},
    ...         "sparsity": {"per_pathway": {"fr": 0.7}, "union": 0.7, "prunable_parameters": 10},
    ...         "size": {"weights_bytes": 1000, "dtype": "float32"}, "command": "asr-pathways export r --out m"}
    >>> "| fr | 70.0% |" in card_markdown("m", card)
    True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from asr_pathways.io import atomic_write_json, atomic_write_text, read_json

__all__ = ["build_card", "write_card", "record_evaluation", "card_markdown", "sparsity_of"]

CARD_KEY = "card"
README = "README.md"
SHARED, DENSE = "shared", "dense"


def sparsity_of(cm: Any) -> dict[str, Any]:
    """Sparsity of the prunable weights per pathway and of the union of the pathways, and the
    same zeros over all parameters of the full model (``cm`` a loaded CompactModel)."""
    import torch

    prunable = cm.meta.get("prunable", {})
    total = sum(int(torch.Size(i["shape"]).numel()) for i in prunable.values())
    all_params = int(cm.meta.get("sizes", {}).get("all_parameters", 0)) or None
    per, per_all, union_kept = {}, {}, 0
    union: dict[str, torch.Tensor] = {}
    for pathway in cm.pathways:
        masks = cm.masks(pathway)
        kept = sum(int(m.sum()) for m in masks.values())
        per[pathway] = 1 - kept / total if total else 0.0
        if all_params:
            per_all[pathway] = (total - kept) / all_params
        for name, m in masks.items():
            union[name] = m if name not in union else union[name] | m
    union_kept = sum(int(m.sum()) for m in union.values())
    out = {"prunable_parameters": total, "all_parameters": all_params, "per_pathway": per,
           "union": 1 - union_kept / total if total else 0.0}
    if per_all:
        out["per_pathway_all_parameters"] = per_all
    return out


def _wer_block(result: Mapping[str, Any], languages: list[str] | None, measured_on: str, corpus: str | None) -> dict[str, Any]:
    langs = {l: {k: r[k] for k in ("wer", "cer", "utterances") if k in r} for l, r in result.get("languages", {}).items()
             if languages is None or l in languages}
    from asr_pathways.metrics import macro_average

    block = {"split": result.get("split"), "corpus": corpus, "measured_on": measured_on, "languages": langs,
             "decoding": result.get("decoding", "greedy")}
    if langs:
        block["average"] = {k: v for k, v in macro_average(result["languages"] if languages is None else
                                                            {l: result["languages"][l] for l in langs}).items() if k in ("wer", "cer")}
    if result.get("engine"):
        block["engine"] = result["engine"]
    return block


def build_card(
    cm: Any, run_config: Any, source_folder: Path, command: str, languages: list[str] | None = None, split: str = "test",
) -> dict[str, Any]:
    """The card of a just-written export ``cm`` from the run folder ``source_folder``."""
    pathways = cm.pathways
    langs = [p for p in pathways if p not in (SHARED, DENSE)] or list(languages or run_config.languages)
    prune = (run_config.extra or {}).get("prune") if run_config is not None else None
    if prune:
        method = {"name": prune.get("method"), "target_sparsity": prune.get("target"), "block": prune.get("block"),
                  "run_command": run_config.command}
    else:
        method = {"name": "dense", "target_sparsity": 0.0, "run_command": getattr(run_config, "command", "")}
    sizes = cm.meta.get("sizes", {})
    card: dict[str, Any] = {
        "languages": langs,
        "pathways": pathways,
        "method": method,
        "sparsity": sparsity_of(cm),
        "size": {"weights_bytes": sizes.get("weights_bytes"), "ratio_to_dense": sizes.get("ratio_to_dense"),
                 "dtype": cm.meta.get("dtype", "float32"), "dense_float32_bytes": sizes.get("dense_float32_bytes")},
        "corpus": getattr(run_config, "corpus", None),
        "source_run": str(source_folder),
        "command": command,
    }
    wer_file = Path(source_folder) / f"wer_{split}.json"
    if wer_file.is_file():
        card["wer"] = _wer_block(json.loads(wer_file.read_text()), langs, "source run (float32, training-time θ ⊙ m)", card["corpus"])
    return card


def _fmt_pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.1f}%"


def card_markdown(name: str, card: Mapping[str, Any]) -> str:
    """The README.md of an export folder."""
    method = card.get("method", {})
    lines = [f"# {name}", "", f"An asr-pathways RNN-T model (Conformer encoder, LSTM predictor) for **{', '.join(card.get('languages', []))}**.", ""]
    lines += [f"- Method: {method.get('name')}" + (f", target sparsity {_fmt_pct(method.get('target_sparsity'))}" if method.get("target_sparsity") else ""),
              f"- Storage: {card.get('size', {}).get('dtype', 'float32')}, weights file {card.get('size', {}).get('weights_bytes', 0) / 1e6:.3f} MB"
              + (f" ({card['size']['ratio_to_dense']:.3f}x the dense float32 model)" if card.get("size", {}).get("ratio_to_dense") else ""),
              f"- Exported with: `{card.get('command', '')}`"]
    if method.get("run_command"):
        lines.append(f"- Trained/pruned with: `{method['run_command']}`")
    wer = card.get("wer")
    lines += ["", "## Word error rate", ""]
    if wer:
        lines += [f"Split `{wer.get('split')}` of `{wer.get('corpus')}`, {wer.get('decoding', 'greedy')} decoding, measured on the "
                  f"{wer.get('measured_on')}.", "", "| language | utterances | WER | CER |", "| --- | ---: | ---: | ---: |"]
        for lang, r in wer.get("languages", {}).items():
            lines.append(f"| {lang} | {r.get('utterances', '')} | {_fmt_pct(r.get('wer'))} | {_fmt_pct(r.get('cer'))} |")
        if wer.get("average"):
            lines.append(f"| **average** | | **{_fmt_pct(wer['average'].get('wer'))}** | **{_fmt_pct(wer['average'].get('cer'))}** |")
    else:
        lines.append("Not measured yet: run `asr-pathways evaluate THIS_FOLDER --corpus CORPUS`.")
    sp = card.get("sparsity", {})
    lines += ["", "## Sparsity", "", f"Over the {sp.get('prunable_parameters', 0):,} prunable weights (encoder, predictor and joiner matrices).", "",
              "| pathway | sparsity |", "| --- | ---: |"]
    for p, v in sp.get("per_pathway", {}).items():
        lines.append(f"| {p} | {_fmt_pct(v)} |")
    if len(sp.get("per_pathway", {})) > 1:
        lines.append(f"| union | {_fmt_pct(sp.get('union'))} |")
    lang = (card.get("languages") or ["LANG"])[0]
    lines += ["", "## Use", "", "```bash", f"asr-pathways transcribe THIS_FOLDER audio.wav --language {lang}",
              f"asr-pathways evaluate THIS_FOLDER --corpus CORPUS --languages {lang}", "```", ""]
    return "\n".join(lines)


def write_card(out_dir: str | Path, card: Mapping[str, Any]) -> Path:
    """Store ``card`` in ``out_dir/model.json`` (key ``card``) and write ``out_dir/README.md``."""
    out_dir = Path(out_dir)
    meta = read_json(out_dir / "model.json")
    meta[CARD_KEY] = dict(card)
    atomic_write_json(out_dir / "model.json", meta)
    return atomic_write_text(out_dir / README, card_markdown(out_dir.name, card))


def record_evaluation(export_dir: str | Path, result: Mapping[str, Any], corpus: str) -> Path:
    """Replace the card's WER by ``result`` (an evaluation of this export) and rewrite README.md."""
    export_dir = Path(export_dir)
    card = dict(read_json(export_dir / "model.json").get(CARD_KEY) or {})
    card["wer"] = _wer_block(result, None, "this export", corpus)
    card.setdefault("languages", sorted(result.get("languages", {})))
    return write_card(export_dir, card)
