"""IMP: iterative magnitude pruning, one language at a time, from the dense multilingual model θ_ML.

docs/method.md: for each language l, start from θ_ML and m = all-ones (or ``--masks-from RUN
--init-sparsity s``); repeat: train T steps on l with m fixed, then ``m ← Prune(s + p, C = m)``;
until the target sparsity; then a final round of T steps. Every intermediate mask is saved as
``masks/{l}/sparsity_S.safetensors``.

With ``--pruned-weights zero_trainable`` (PARP) the forward uses every weight between events, the
pruned ones start from zero, each prune re-selects from all of P (so masks need not be nested), and
a last selection at the target ends the run (the final model is exactly sparse).

    asr-pathways prune --method imp --from runs/dense --languages en,fr --target 0.7 --out runs/imp
"""

from __future__ import annotations

from pathlib import Path

from .config import PruneConfig
from .job import PruneJob
from .schedule import Schedule, build_schedule, sparsity_levels


def schedule(cfg: PruneConfig) -> Schedule:
    """Rounds of T steps at each level from the start to the target, then the final round."""
    levels = sparsity_levels(cfg.start_sparsity(), cfg.target, cfg.prune_step, cfg.prune_step_mode)
    return build_schedule(levels, cfg.round_steps, finalize=cfg.zero_trainable)


def run(cfg: PruneConfig) -> Path:
    job = PruneJob(cfg)  # resolves and checks the options, opens the run folder (nothing written yet)
    if job.complete:
        return job.already_complete()
    cfg = job.cfg
    for lang in cfg.languages:  # one phase per language, in lang/{lang}/, its mask named by the language
        phase = job.phase(f"lang/{lang}", [lang], [lang], lambda l: l, schedule(cfg))
        for ev in phase.pending():
            phase.train_until(ev.step)
            if ev.kind == "init":
                new = job.initial_masks(phase, ev.sparsity)
            elif ev.kind == "prune":  # the largest blocks among the kept ones (zero_trainable: among all)
                new = {lang: phase.select(ev.sparsity, None if cfg.zero_trainable else phase.masks[lang])}
            elif ev.kind == "finalize":  # zero_trainable: the final model is the one right after a last selection
                new = {lang: phase.select(ev.sparsity, None)}
            else:
                raise ValueError(f"IMP has no {ev.kind!r} events")
            phase.end_event(ev, new)  # install, log, checkpoint
        phase.finish()  # the final round
        job.phase_trained(phase)
    return job.finish()
