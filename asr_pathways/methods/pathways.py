"""ASR Pathways: fixed per-language masks, multilingual training with the pathway update.

Masks come from monolingual IMP/LTH runs at the target (``--masks-from runs/lth``, at
``--init-sparsity``, default the target; a LAP run's ``shared`` mask is copied to every language).
Weights start from θ_ML (``--from``). Every step runs one batch per language, each through its own
mask, and sums the gradients: ``θ ← θ − η Σ_l m_l ⊙ ∇L_l``; coordinates outside every active mask do
not move. ``--steps`` (default T) steps.

    asr-pathways prune --method pathways --from runs/dense --masks-from runs/lth --target 0.7 --steps 2000 --out runs/pathways
"""

from __future__ import annotations

from pathlib import Path

from .config import PruneConfig
from .job import PruneJob
from .schedule import Schedule, fixed_schedule


def schedule(cfg: PruneConfig) -> Schedule:
    """Masks set once, then ``--steps`` steps (default T) of training."""
    return fixed_schedule(cfg.start_sparsity(), cfg.steps if cfg.steps is not None else cfg.round_steps)


def run(cfg: PruneConfig) -> Path:
    job = PruneJob(cfg)
    if job.complete:
        return job.already_complete()
    cfg = job.cfg
    phase = job.phase("", cfg.languages, list(cfg.languages), lambda lang: lang, schedule(cfg))
    for ev in phase.pending():  # a single event: the masks, at step 0
        phase.train_until(ev.step)
        if ev.kind != "init":
            raise ValueError(f"ASR Pathways has no {ev.kind!r} events")
        phase.end_event(ev, job.initial_masks(phase, ev.sparsity))
    phase.finish()  # the pathway update, every language through its own fixed mask
    job.phase_trained(phase)
    return job.finish()
