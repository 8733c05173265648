"""IMP: iterative magnitude pruning, one language at a time, from the dense multilingual model θ_ML.

METHOD.md: for each language l, start from θ_ML and m = all-ones (or ``--masks-from RUN
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

from .common import Event, Phase, Pipeline, PruneConfig, Schedule, build_schedule, run_monolingual, sparsity_levels


def schedule(cfg: PruneConfig, rewind: bool = False) -> Schedule:
    """Rounds of T steps at each level from the start to the target, then the final round."""
    levels = sparsity_levels(cfg.start_sparsity(), cfg.target, cfg.prune_step, cfg.prune_step_mode)
    return build_schedule(
        levels, cfg.round_steps, adapt_at=(), snapshot_step=cfg.rewind_step if rewind else None, finalize=cfg.zero_trainable,
    )


def on_event(phase: Phase, ev: Event, rewind: bool = False) -> None:
    """IMP's events for every pathway of the phase (one language here; ``shared`` for LAP).

    ``rewind`` (LTH): after each prune, every weight goes back to the rewind point and the
    optimizer starts afresh.
    """
    if ev.kind == "init":
        phase.apply(ev, phase.pipe.initial_masks(phase.pathway_names, phase.weights(), ev.sparsity))
    elif ev.kind == "snapshot":
        phase.snapshot()
    elif ev.kind == "prune":
        own = phase.masks
        new = {n: phase.select(ev.sparsity, None if phase.cfg.zero_trainable else own[n]) for n in phase.pathway_names}
        if rewind:
            phase.rewind()
        phase.apply(ev, new)
    elif ev.kind == "finalize":  # zero_trainable: the final model is the one right after a last selection
        phase.apply(ev, {n: phase.select(ev.sparsity, None) for n in phase.pathway_names})
    else:
        raise ValueError(f"IMP has no {ev.kind!r} events")


def run(cfg: PruneConfig, restart: bool = False) -> Path:
    pipe = Pipeline(cfg, restart)  # resolves the languages, checks the options, opens the run folder
    return run_monolingual(pipe, schedule(cfg), on_event)
