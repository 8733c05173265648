"""Dynamic ASR Pathways: adaptive masking of every language's pathway inside multilingual training.

Masks: one per language, from language-specific IMP/LTH masks or one LAP mask copied to every
language (``--masks-from RUN --init-sparsity s``). Training: the pathway update (one batch per
language per step, each through its own mask, gradients summed). Rounds as in :mod:`.adaptive`;
at every adaptation and prune, language l re-selects from its candidate set (``--candidates``):

- ``own+residual`` (default): ``C_l = m_l ∪ (1 − ∪_{k≠l} m_k)``, its own weights plus those no
  other language uses;
- ``all``: any weight (a language may adopt weights of others); ``own``: ``C_l = m_l`` (no revival).

The candidate sets of all languages are computed from the masks before the event. Blocks are
ranked by their norm on each language's own scores (``--scores``, :mod:`.scores`):

- ``own-updates`` (default): ``θ_ref + Δ_l``, the weights at the previous event plus the part of
  every update since then that language l's gradients caused (its share ``|g_l| / Σ_k |g_k|`` of
  each coordinate's update). Masks that start equal (one LAP mask copied to every language) become
  language-specific at the first adaptation: "adapt and prune each language's mask with its own
  monolingual data" (METHOD.md).
- ``shared``: the stored weights θ, moved by every language's gradients; the same scores for
  every language, so masks that start equal stay equal (IoU 1.0) — the ablation that shows it.

    asr-pathways prune --method dynamic --from runs/dense --masks-from runs/lap --init-sparsity 0.5 \\
        --target 0.7 --round-steps 200 --adapt-at 100 --out runs/dynamic
"""

from __future__ import annotations

from pathlib import Path

from . import adaptive
from .common import Pipeline, PruneConfig, run_multilingual


def run(cfg: PruneConfig, restart: bool = False) -> Path:
    pipe = Pipeline(cfg, restart)  # fills cfg.languages from the --from run when not given
    return run_multilingual(pipe, list(cfg.languages), lambda lang: lang, adaptive.schedule(cfg), adaptive.on_event)
