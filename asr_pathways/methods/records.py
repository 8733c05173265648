"""What a prune run records besides its checkpoints: mask files at every level, the history of
every event, and the final masks' summary.

Run folder written by ``asr-pathways prune ... --out runs/NAME``::

    runs/NAME/
      prune.json                       the PruneConfig, its identity and the command of the run
      history.jsonl                    one row per pathway changed by an event (init/adapt/prune/finalize;
                                       "scores": own-updates or shared)
      cost.json                        optimizer steps, wall/train/mask/eval seconds, pruning rounds, upstream
      masks/{lang}.safetensors         the final mask of every language (LAP: the shared mask, copied)
      masks/shared.safetensors         LAP only: the one mask of every language
      masks/{pathway}/sparsity_0.50.safetensors   the mask at every sparsity level reached (the last
                                       one at that level), for ``--masks-from runs/NAME --init-sparsity 0.5``
      masks_summary.json               final sparsity per pathway and group, union sparsity, pairwise IoU
      wer_{split}.json / .md, hyps_{split}.jsonl   the WER table (per language + average)
      # multilingual methods (lap, pathways, dynamic): runs/NAME is itself a run folder
      config.yaml  run.json  tokenizer.model  checkpoint.safetensors (+ .json)  metrics.jsonl  tensorboard/
      rewind.safetensors               LTH-style runs: the rewind point
      # monolingual methods (imp, lth, adaptive): one complete run folder per language
      lang/{lang}/config.yaml  tokenizer.model  checkpoint.safetensors  metrics.jsonl  wer_{split}.*

The checkpoint of a dynamic run with ``--scores own-updates`` also holds θ_ref and every Δ_l
(:mod:`.scores`). Every folder holding a ``checkpoint.safetensors`` loads with
:func:`asr_pathways.runs.load_run` and evaluates with ``asr-pathways evaluate`` (its masks are
named by language, or ``shared``).

>>> level_name(0.5), level_name(0.271)
('sparsity_0.50', 'sparsity_0.2710')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError

SHARED = "shared"
HISTORY = "history.jsonl"


# ------------------------------------------------------------------------------------ mask files
def level_name(s: float) -> str:
    """``sparsity_0.50`` (two decimals when exact, else four)."""
    return f"sparsity_{s:.2f}" if abs(s * 100 - round(s * 100)) < 1e-6 else f"sparsity_{s:.4f}"


def find_level_mask(run: str | Path, pathway: str, sparsity: float) -> Path:
    """``RUN/masks/{pathway}/sparsity_S.safetensors`` (or the ``shared`` mask of a LAP run)."""
    run = Path(run)
    seen = []
    for name in (pathway, SHARED):
        folder = run / "masks" / name
        for f in sorted(folder.glob("sparsity_*.safetensors")):
            try:
                s = float(f.stem.split("_", 1)[1])
            except ValueError:
                continue
            seen.append(f"{name}:{s:g}")
            if abs(s - sparsity) < 5e-5:
                return f
    raise InputError(
        f"no mask for {pathway!r} at sparsity {sparsity:g}", path=run / "masks",
        expected=f"one of the levels saved by that run ({', '.join(seen) or 'none'})",
        hint="Pick --init-sparsity among them, or prune further first",
    )


def load_level_masks(run: str | Path, pathways: list[str], params: dict[str, torch.Tensor], sparsity: float,
                     device: torch.device | str = "cpu") -> dict[str, Any]:
    """The masks that ``run`` saved at ``sparsity`` for every pathway, checked against ``params``."""
    from ..sparsity.masks import MaskSet

    out = {}
    for name in pathways:
        path = find_level_mask(run, name, sparsity)
        ms = MaskSet.load(path, device=device)
        missing = [n for n in params if n not in ms]
        extra = [n for n in ms if n not in params]
        bad_shape = [n for n in params if n in ms and tuple(ms[n].shape) != tuple(params[n].shape)]
        if missing or extra or bad_shape:
            raise InputError(
                f"the mask does not fit the model's prunable weights (missing {missing[:3]}, unknown {extra[:3]}, "
                f"other shape {bad_shape[:3]})", path=path, expected="masks made for the same model and --include/--exclude",
            )
        out[name] = ms.subset(list(params))
    return out


def save_level(out: Path, pathway: str, mask: Any, sparsity: float, meta: dict[str, Any]) -> Path:
    """``out/masks/{pathway}/sparsity_S.safetensors``."""
    return mask.save(out / "masks" / pathway / f"{level_name(sparsity)}.safetensors", meta | {"sparsity_level": sparsity})


def save_final(out: Path, masks: dict[str, Any], languages: list[str], method: str) -> None:
    """``masks/{name}.safetensors`` for every mask; a ``shared`` mask is also saved under every language."""
    for name, m in masks.items():
        m.save(out / "masks" / f"{name}.safetensors", {"pathway": name, "method": method})
    if SHARED in masks:
        for lang in languages:
            masks[SHARED].save(out / "masks" / f"{lang}.safetensors", {"pathway": SHARED, "language": lang, "method": method})


def describe_masks(masks: dict[str, Any]) -> dict[str, Any]:
    """Sparsity per pathway, union sparsity and pairwise IoU."""
    from ..sparsity.masks import iou, union

    names = sorted(masks)
    return {
        "sparsity": {n: masks[n].sparsity() for n in names},
        "union_sparsity": union(*[masks[n] for n in names]).sparsity(),
        "iou": {f"{a}|{b}": iou(masks[a], masks[b]) for i, a in enumerate(names) for b in names[i + 1:]},
    }


def write_summary(out: Path, masks: dict[str, Any], total_params: int) -> dict[str, Any]:
    """``masks_summary.json``: final sparsity per pathway and group, union sparsity and IoU; plus per level."""
    from ..io import atomic_write_json
    from ..sparsity.masks import MaskSet

    summary = describe_masks(masks)
    summary["sparsity_per_group"] = {}
    summary["sparsity_over_model"] = {}
    for n, m in masks.items():
        try:
            summary["sparsity_per_group"][n] = m.sparsity_per_group()
        except Exception:  # group patterns are the engine's business; a missing one must not fail a run
            pass
        summary["sparsity_over_model"][n] = m.sparsity_over_model(total_params)
    levels: dict[str, dict[str, Any]] = {}
    for folder in sorted((out / "masks").glob("*/")):
        for f in sorted(folder.glob("sparsity_*.safetensors")):
            levels.setdefault(f.stem, {})[folder.name] = f
    summary["levels"] = {}
    for lvl, files in levels.items():
        if len(files) > 1:
            summary["levels"][lvl] = describe_masks({n: MaskSet.load(p) for n, p in files.items()})
    atomic_write_json(out / "masks_summary.json", summary)
    return summary


# ------------------------------------------------------------------------------------ history
def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The rows of ``history.jsonl`` (``path``: the file or the run folder); ``[]`` when there is none."""
    p = Path(path)
    if p.is_dir():
        p = p / HISTORY
    if not p.is_file():
        return []
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


def truncate_history(out: Path, run_key: str, events_done: int) -> None:
    """Drop the rows of ``run_key`` from events not covered by its checkpoint (they will be redone)."""
    from ..io import atomic_write_text

    path = out / HISTORY
    if not path.is_file():
        return
    keep = [r for r in read_history(path) if not (r.get("run") == run_key and r.get("event", 0) >= events_done)]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


def append_history(out: Path, rows: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / HISTORY, "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
