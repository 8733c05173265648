"""LTH: lottery tickets with rewinding, one language at a time (docs/method.md).

IMP (:mod:`.imp`), except that after each prune the weights are reset to the rewind point and the
optimizer state is reset: the rewind point is θ_ML (the ``--from`` run) by default, or the weights
after ``--rewind-step k`` steps of this run (an early checkpoint, kept as ``rewind.safetensors``).
Pruned weights are rewound too; they are outside the mask, so only the kept ones matter.

    asr-pathways prune --method lth --from runs/dense --languages en,fr --target 0.7 --out runs/lth
"""

from __future__ import annotations

from pathlib import Path

from .config import PruneConfig
from .job import PruneJob
from .schedule import Schedule, build_schedule, sparsity_levels


def schedule(cfg: PruneConfig) -> Schedule:
    """IMP's rounds, with a snapshot of the rewind point after ``--rewind-step`` steps."""
    levels = sparsity_levels(cfg.start_sparsity(), cfg.target, cfg.prune_step, cfg.prune_step_mode)
    return build_schedule(levels, cfg.round_steps, snapshot_step=cfg.rewind_step, finalize=cfg.zero_trainable)


def run(cfg: PruneConfig) -> Path:
    job = PruneJob(cfg)
    if job.complete:
        return job.already_complete()
    cfg = job.cfg
    for lang in cfg.languages:
        phase = job.phase(f"lang/{lang}", [lang], [lang], lambda l: l, schedule(cfg))
        for ev in phase.pending():
            phase.train_until(ev.step)
            new = None
            if ev.kind == "init":
                new = job.initial_masks(phase, ev.sparsity)
            elif ev.kind == "snapshot":
                phase.save_rewind_point()
            elif ev.kind == "prune":
                new = {lang: phase.select(ev.sparsity, None if cfg.zero_trainable else phase.masks[lang])}
                phase.rewind()  # weights back to the rewind point, fresh AdamW moments
            elif ev.kind == "finalize":
                new = {lang: phase.select(ev.sparsity, None)}
            else:
                raise ValueError(f"LTH has no {ev.kind!r} events")
            phase.end_event(ev, new)
        phase.finish()
        job.phase_trained(phase)
    return job.finish()
