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

from .common import Event, Phase, Pipeline, PruneConfig, fixed_schedule, run_multilingual


def on_event(phase: Phase, ev: Event) -> None:
    if ev.kind != "init":
        raise ValueError(f"ASR Pathways has no {ev.kind!r} events")
    phase.apply(ev, phase.pipe.initial_masks(phase.pathway_names, phase.weights(), ev.sparsity))


def run(cfg: PruneConfig, restart: bool = False) -> Path:
    steps = cfg.steps if cfg.steps is not None else cfg.round_steps
    pipe = Pipeline(cfg, restart)  # fills cfg.languages from the --from run when not given
    return run_multilingual(pipe, list(cfg.languages), lambda lang: lang, fixed_schedule(cfg.start_sparsity(), steps), on_event)
