"""Adaptive masking, monolingual (the paper's contribution; docs/method.md).

One mask per language, initialised from an IMP or LTH mask (``--masks-from RUN --init-sparsity s``,
e.g. 0.5 or the target 0.7), trained on that language alone. One round of T steps at sparsity s:

1. train n steps (``--adapt-at n``; several values = several adaptations per round);
2. adapt: ``m ← Prune(s, C_adapt)``, C_adapt = all of P (weights pruned earlier can come back by
   their stored magnitude, and are trainable from here on);
3. train T − n steps;
4. prune: ``m ← Prune(s + p, C_prune)`` (C_prune = the same set; ``--prune-candidates own``: within m);

rounds until the target, then a final round that adapts but does not prune (``--final-steps`` long,
default T; ``--no-final-adapt``: it only trains the mask of the last prune, the step-matched schedule). ``--candidates own``
never revives a weight (an ablation). Weights start from ``--from`` (θ_ML; ``{lang}`` allowed).
Scores are block norms of θ (``--scores shared``, the default here; with one mask per phase
``own-updates`` gives the same scores, since every update is that language's).

    asr-pathways prune --method adaptive --from runs/dense --masks-from runs/lth --init-sparsity 0.5 \\
        --target 0.7 --adapt-at 100 --round-steps 200 --out runs/adaptive
"""

from __future__ import annotations

from pathlib import Path

from .config import PruneConfig
from .job import PruneJob
from .schedule import Schedule, build_schedule, sparsity_levels


def schedule(cfg: PruneConfig) -> Schedule:
    """Rounds of T steps from the start level: adaptations at n, a prune at the end of every round but the last."""
    levels = sparsity_levels(cfg.start_sparsity(), cfg.target, cfg.prune_step, cfg.prune_step_mode)
    return build_schedule(levels, cfg.round_steps, cfg.adaptation_steps(), finalize=cfg.zero_trainable,
                          final_steps=cfg.final_steps, final_adapt=cfg.final_adapt)


def run(cfg: PruneConfig) -> Path:
    job = PruneJob(cfg)
    if job.complete:
        return job.already_complete()
    cfg = job.cfg
    for lang in cfg.languages:  # one phase per language; with one pathway, own+residual is all of P
        phase = job.phase(f"lang/{lang}", [lang], [lang], lambda l: l, schedule(cfg))
        for ev in phase.pending():
            phase.train_until(ev.step)
            if ev.kind == "init":
                new = job.initial_masks(phase, ev.sparsity)
            elif ev.kind in ("adapt", "finalize"):  # re-select at the same sparsity (finalize: zero_trainable ends sparse)
                candidates = phase.candidates(cfg.candidates)
                new = {lang: phase.select(ev.sparsity, candidates[lang], pathway=lang)}
            elif ev.kind == "prune":
                candidates = phase.candidates(cfg.candidates if cfg.prune_candidates == "same" else "own")
                new = {lang: phase.select(ev.sparsity, candidates[lang], pathway=lang)}
            else:
                raise ValueError(f"adaptive masking has no {ev.kind!r} events")
            phase.end_event(ev, new)
        phase.finish()
        job.phase_trained(phase)
    return job.finish()
