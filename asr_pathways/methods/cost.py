"""The cost of a prune run (``cost.json``): its own optimizer steps, batches and seconds, those of
the run that made its starting masks (upstream), and the dense runs it started from.

``language_specific_pruning_rounds`` counts the prune events of masks trained on one language
(imp, lth, adaptive), those of the upstream run included; prunes inside multilingual training
(lap, dynamic) are ``multilingual_prune_events``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import PruneConfig
from .records import SHARED, read_history


def upstream_cost(cfg: PruneConfig) -> dict[str, Any] | None:
    """Cost of producing the starting masks, read from the ``--masks-from`` run.

    Counted up to the event that left each starting mask at ``init_sparsity`` (from that run's
    history), plus that run's own upstream.
    """
    if not cfg.masks_from:
        return None
    src = Path(cfg.masks_from)
    s0 = cfg.start_sparsity()
    rows = read_history(src)
    want = set(cfg.languages) | {SHARED}
    by_run: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("language") in want and abs(float(r.get("requested_sparsity", -1)) - s0) < 5e-5:
            cur = by_run.get(r["run"])
            if cur is None or r["event"] > cur["event"]:
                by_run[r["run"]] = r
    up: dict[str, Any] = {"source": str(src), "init_sparsity": s0, "optimizer_steps": 0, "wall_seconds": 0.0,
                          "mask_seconds": 0.0, "train_seconds": 0.0, "language_specific_pruning_rounds": 0, "language_batches": 0}
    for key, last in by_run.items():
        up["optimizer_steps"] += int(last.get("optimizer_steps", 0))
        up["language_batches"] += int(last.get("language_batches", last.get("optimizer_steps", 0)))
        up["wall_seconds"] += float(last.get("wall_seconds", 0.0))
        up["mask_seconds"] += float(last.get("mask_seconds", 0.0))
        up["train_seconds"] += float(last.get("train_seconds", 0.0))
        up["language_specific_pruning_rounds"] += len({
            r["event"] for r in rows if r.get("run") == key and r.get("kind") == "prune" and r.get("monolingual") and r["event"] <= last["event"]
        })
    if not by_run:
        up["note"] = "no history rows for the starting masks; upstream cost unknown"
    cost_file = src / "cost.json"
    if cost_file.is_file():
        inner = json.loads(cost_file.read_text()).get("upstream")
        if inner:
            for k in ("optimizer_steps", "language_batches", "wall_seconds", "mask_seconds", "train_seconds", "language_specific_pruning_rounds"):
                up[k] += inner.get(k, 0)
            up["includes"] = inner
    return up

def write_cost(out: Path, cfg: PruneConfig, phases: list[dict[str, Any]], eval_seconds: float,
               sources: list[Any]) -> dict[str, Any]:
    """``cost.json`` from the :meth:`.phase.Phase.cost` of every phase, the upstream and the dense runs
    (``sources``: the :class:`.phase.SourceRun` of every phase). Written last: it marks the run complete."""
    from ..io import atomic_write_json

    keys = ("optimizer_steps", "language_batches", "wall_seconds", "train_seconds", "mask_seconds", "prune_events", "adapt_events",
            "attribution_seconds", "score_batches", "score_seconds")
    own: dict[str, Any] = {k: 0 for k in keys} | {"language_specific_pruning_rounds": 0, "multilingual_prune_events": 0}
    for c in phases:
        for k in keys:
            own[k] += c[k]
        own["language_specific_pruning_rounds" if c["monolingual"] else "multilingual_prune_events"] += c["prune_events"]
    own["eval_seconds"] = eval_seconds
    own["wall_seconds"] += eval_seconds
    up = upstream_cost(cfg)
    total = {k: own[k] + (up or {}).get(k, 0) for k in ("optimizer_steps", "language_batches", "wall_seconds",
                                                        "train_seconds", "mask_seconds", "language_specific_pruning_rounds")}
    dense = {str(src.path): {"optimizer_steps": int(src.meta.get("step", 0)), "train_seconds": float(src.meta.get("train_seconds", 0.0))}
             for src in sources}
    cost = {
        "method": cfg.method, "own": own, "per_run": {c["run"] or ".": c for c in phases}, "upstream": up, "total": total,
        "dense": dense,
        "notes": ("language_specific_pruning_rounds counts the prune events of masks trained on one language (imp, lth, "
                  "adaptive), those of the run that made the starting masks included; prunes inside multilingual training "
                  "(lap, dynamic) are multilingual_prune_events. 'total' excludes the dense training, listed under 'dense'. "
                  "wall_seconds counts the work kept in checkpoints (time lost to an interruption is not counted)."),
    }
    atomic_write_json(out / "cost.json", cost)
    return cost
