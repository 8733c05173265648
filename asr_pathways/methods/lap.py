"""LAP: language-agnostic pruning, IMP or LTH (``--lap-base``, default lth) on pooled multilingual data.

One mask, named ``shared``, serves every language. Each optimizer step runs one monolingual batch
per language (``--languages-per-step 0``, the default; or k languages sampled by weight), every
batch through the shared mask, and the gradients are summed: the same pooled update and the same
compute per step as the ASR Pathways update, so that step counts compare.

    asr-pathways prune --method lap --from runs/dense --languages en,fr,it,nl --target 0.7 --out runs/lap
"""

from __future__ import annotations

from pathlib import Path

from .config import PruneConfig
from .job import PruneJob
from .records import SHARED
from .schedule import Schedule, build_schedule, sparsity_levels


def schedule(cfg: PruneConfig) -> Schedule:
    """IMP's rounds; with the LTH base, a snapshot of the rewind point after ``--rewind-step`` steps."""
    levels = sparsity_levels(cfg.start_sparsity(), cfg.target, cfg.prune_step, cfg.prune_step_mode)
    snapshot = cfg.rewind_step if cfg.lap_base == "lth" else None
    return build_schedule(levels, cfg.round_steps, snapshot_step=snapshot, finalize=cfg.zero_trainable)


def run(cfg: PruneConfig) -> Path:
    job = PruneJob(cfg)
    if job.complete:
        return job.already_complete()
    cfg = job.cfg
    rewind = cfg.lap_base == "lth"
    # one phase over every language in the run folder itself; every batch goes through the shared mask
    phase = job.phase("", cfg.languages, [SHARED], lambda lang: SHARED, schedule(cfg))
    for ev in phase.pending():
        phase.train_until(ev.step)
        new = None
        if ev.kind == "init":
            new = job.initial_masks(phase, ev.sparsity)
        elif ev.kind == "snapshot":
            phase.save_rewind_point()
        elif ev.kind == "prune":
            new = {SHARED: phase.select(ev.sparsity, None if cfg.zero_trainable else phase.masks[SHARED])}
            if rewind:
                phase.rewind()
        elif ev.kind == "finalize":
            new = {SHARED: phase.select(ev.sparsity, None)}
        else:
            raise ValueError(f"LAP has no {ev.kind!r} events")
        phase.end_event(ev, new)
    phase.finish()
    job.phase_trained(phase)
    return job.finish()
