"""The training budget of every arm, from the plan alone, and the check that compared arms are matched.

The budget of a run is what it and the runs that made its starting masks trained: its **language
batches** (one monolingual batch each; upstream included, counted up to the event that left the
starting masks at their level, for the run's languages; per language when the compared arms ran on
different languages) and its **steps at the final mask** (steps
after the last event that set a mask, :func:`asr_pathways.methods.schedule.final_mask_steps`; a dense
run: all its steps). Both are computed from each job's command line through the method's own
schedule, so a plan whose arms are not matched is caught before anything runs
(:func:`check_matched`; the tests run it on every profile).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .claims import Claim, benchmark_claims
from .jobs import Job

if TYPE_CHECKING:
    from .plan import Planner


@dataclass(frozen=True)
class Budget:
    """Language batches (upstream included) and steps at the final mask of one arm, over ``languages`` languages."""

    language_batches: int
    final_mask_steps: int
    languages: int = 1

    @property
    def per_language(self) -> float:
        """Language batches per language: what a monolingual claim compares when its baseline ran on more languages
        (the secondary LTH rows use the multilingual table's LTH run)."""
        return self.language_batches / max(1, self.languages)


def prune_config(job: Job) -> Any:
    """The :class:`~asr_pathways.methods.config.PruneConfig` of a ``prune`` job, as the command parses it."""
    return _parse(tuple(job.argv))


@functools.lru_cache(maxsize=4096)
def _parse(argv: tuple[str, ...]) -> Any:
    from ..methods.config import PruneConfig
    from ..options import from_args

    return from_args(PruneConfig, _parser().parse_args([*argv, "--out", "-"]))


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    from ..cli import build_parser

    return build_parser("prune")


def schedule_of(cfg: Any) -> Any:
    """The schedule the method of ``cfg`` runs (Dynamic ASR Pathways runs adaptive masking's)."""
    method = "adaptive" if cfg.method == "dynamic" else cfg.method
    return importlib.import_module(f"asr_pathways.methods.{method}").schedule(cfg)


def steps_to_level(schedule: Any, sparsity: float) -> int:
    """The step of the first event that leaves the masks at ``sparsity`` (init or prune)."""
    for e in schedule.events:
        if e.kind in ("init", "prune") and abs(e.sparsity - sparsity) < 5e-5:
            return e.step
    raise ValueError(f"no event reaches sparsity {sparsity:g}")


def job_budget(pl: "Planner", job: Job) -> Budget:
    """The budget of one job (``prune`` through its schedule and upstream; ``train``: its planned batches)."""
    if job.kind != "prune":
        per_step = len(job.languages) if "--languages-per-step" in job.argv and \
            job.argv[job.argv.index("--languages-per-step") + 1] == "0" else 1
        return Budget(job.batches, job.batches // max(1, per_step), len(job.languages))
    cfg = prune_config(job)
    sched = schedule_of(cfg)
    batches = sched.total_steps * len(job.languages)
    if cfg.masks_from:
        up = next((j for j in pl.jobs.values() if j.folder == Path(cfg.masks_from)), None)
        if up is None:
            raise ValueError(f"{job.name}: --masks-from {cfg.masks_from} is not a job of the plan")
        up_cfg = prune_config(up)
        batches += steps_to_level(schedule_of(up_cfg), cfg.start_sparsity()) * len(job.languages)
        if up_cfg.masks_from:
            batches += job_budget(pl, up).language_batches - schedule_of(up_cfg).total_steps * len(up.languages)
    return Budget(batches, steps_at_final_mask(cfg, sched), len(job.languages))


def steps_at_final_mask(cfg: Any, sched: Any) -> int:
    """Steps after the last event that can change a mask. With ``--candidates own`` an adaptation re-selects a mask
    within itself at its own sparsity, which keeps it, so only prunes (and init/finalize) count: a twin that starts at
    the target trains its one mask all the way (its "adaptation" changes nothing)."""
    from ..methods.schedule import final_mask_steps

    if getattr(cfg, "candidates", None) != "own":
        return final_mask_steps(sched)
    last = max((e.step for e in sched.events if e.kind not in ("snapshot", "adapt")), default=0)
    return sched.total_steps - last


def arm_budget(pl: "Planner", keys: dict[str, Any], name: str) -> Budget | None:
    """The budget of the arm ``name`` of one seed (``dense-mono``: its per-language runs together; θ_ML: None)."""
    if name == "dense-eval" or name not in keys:
        return None
    ks = keys[name] if isinstance(keys[name], list) else [keys[name]]
    parts = [job_budget(pl, pl.jobs[k]) for k in ks]
    return Budget(sum(b.language_batches for b in parts), max(b.final_mask_steps for b in parts), sum(b.languages for b in parts))


def mismatch(pl: "Planner", keys: dict[str, Any], claim: Claim) -> str | None:
    """Why the arms of ``claim`` are not matched in one seed (``None``: matched, or nothing to match)."""
    if claim.match == "none":
        return None
    b, m = arm_budget(pl, keys, claim.base), arm_budget(pl, keys, claim.method)
    if b is None or m is None:
        return None
    if b.languages == m.languages and b.language_batches != m.language_batches:
        return f"language batches {b.language_batches} (base) vs {m.language_batches}"
    if b.languages != m.languages and b.per_language != m.per_language:  # a monolingual arm against a run on more languages
        return f"language batches per language {b.per_language:g} (base) vs {m.per_language:g}"
    if claim.match == "both" and b.final_mask_steps != m.final_mask_steps:
        return f"steps at the final mask {b.final_mask_steps} (base) vs {m.final_mask_steps}"
    return None


def check_matched(pl: "Planner", layout: dict[str, Any], roles: tuple[str, ...] = ("headline", "twin", "control")) -> list[str]:
    """Every mismatch of the compared arms of the claims with these roles, in every seed (empty: all matched)."""
    out = []
    for claim in benchmark_claims(pl.pr):
        if claim.role not in roles:
            continue
        for seed, keys in layout.get("seeds", {}).items():
            why = mismatch(pl, keys, claim)
            if why:
                out.append(f"s{seed}: {claim.title}: {why}")
    return out
