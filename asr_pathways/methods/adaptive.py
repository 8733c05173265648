"""Adaptive masking, monolingual (the paper's contribution; METHOD.md).

One mask per language, initialised from an IMP or LTH mask (``--masks-from RUN --init-sparsity s``,
e.g. 0.5 or the target 0.7), trained on that language alone. One round of T steps at sparsity s:

1. train n steps (``--adapt-at n``; several values = several adaptations per round);
2. adapt: ``m ← Prune(s, C_adapt)``, C_adapt = all of P (weights pruned earlier can come back by
   their stored magnitude, and are trainable from here on);
3. train T − n steps;
4. prune: ``m ← Prune(s + p, C_prune)`` (C_prune = the same set; ``--prune-candidates own``: within m);

rounds until the target, then a final round that adapts but does not prune. ``--candidates own``
never revives a weight (an ablation). Weights start from ``--from`` (θ_ML; ``{lang}`` allowed).
Scores are block norms of θ (``--scores shared``, the default here; with one mask per phase
``own-updates`` gives the same scores, since every update is that language's).

    asr-pathways prune --method adaptive --from runs/dense --masks-from runs/lth --init-sparsity 0.5 \\
        --target 0.7 --adapt-at 100 --round-steps 200 --out runs/adaptive
"""

from __future__ import annotations

from pathlib import Path

from .common import Event, Phase, Pipeline, PruneConfig, Schedule, build_schedule, run_monolingual, sparsity_levels


def schedule(cfg: PruneConfig) -> Schedule:
    levels = sparsity_levels(cfg.start_sparsity(), cfg.target, cfg.prune_step, cfg.prune_step_mode)
    return build_schedule(levels, cfg.round_steps, cfg.adaptation_steps(), finalize=cfg.zero_trainable)


def on_event(phase: Phase, ev: Event) -> None:
    """Adapt and prune every pathway of the phase from its candidate set.

    The candidate sets come from the masks as they were before the event, for every pathway at
    once (the order of languages does not matter). With one pathway ``own+residual`` = all of P.
    Each pathway is scored on its own weights (``--scores``: θ, or θ_ref + Δ_l; :mod:`.scores`).
    """
    cfg = phase.cfg
    if ev.kind == "init":
        phase.apply(ev, phase.pipe.initial_masks(phase.pathway_names, phase.weights(), ev.sparsity))
    elif ev.kind == "adapt":
        cands = phase.candidates(cfg.candidates)
        phase.apply(ev, {n: phase.select(ev.sparsity, cands[n], pathway=n) for n in phase.pathway_names})
    elif ev.kind == "prune":
        cands = phase.candidates(cfg.candidates if cfg.prune_candidates == "same" else "own")
        phase.apply(ev, {n: phase.select(ev.sparsity, cands[n], pathway=n) for n in phase.pathway_names})
    elif ev.kind == "finalize":  # zero_trainable: end exactly sparse
        cands = phase.candidates(cfg.candidates)
        phase.apply(ev, {n: phase.select(ev.sparsity, cands[n], pathway=n) for n in phase.pathway_names})
    else:
        raise ValueError(f"adaptive masking has no {ev.kind!r} events")


def run(cfg: PruneConfig, restart: bool = False) -> Path:
    pipe = Pipeline(cfg, restart)
    return run_monolingual(pipe, schedule(cfg), on_event)
