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
  monolingual data" (docs/method.md).
- ``finetune``: the literal reading (:mod:`.finetune_scores`): at every event, a copy of the model
  starts from θ (and the optimizer's moments) and is fine-tuned for ``--score-steps`` K steps on
  language l's own batches, its forward restricted to ``C_l``; l is scored on the fine-tuned
  weights. Costs L × K extra batches forward and backward per event (not steps of the model).
- ``shared``: the stored weights θ, moved by every language's gradients; the same scores for
  every language, so masks that start equal stay equal (IoU 1.0) — the ablation that shows it.

    asr-pathways prune --method dynamic --from runs/dense --masks-from runs/lap --init-sparsity 0.5 \\
        --target 0.7 --round-steps 200 --adapt-at 100 --out runs/dynamic
"""

from __future__ import annotations

from pathlib import Path

from .adaptive import schedule  # the rounds of monolingual adaptive masking: adaptations at n, a prune per round
from .config import PruneConfig
from .job import PruneJob


def run(cfg: PruneConfig) -> Path:
    job = PruneJob(cfg)
    if job.complete:
        return job.already_complete()
    cfg = job.cfg
    languages = cfg.languages
    # one multilingual phase in the run folder: every language's batch through its own mask (the pathway
    # update); --scores own-updates keeps θ_ref and each language's Δ_l, reset at every event; --scores
    # finetune keeps a scratch copy of the model that select() fine-tunes per language within its candidates
    phase = job.phase("", languages, list(languages), lambda lang: lang, schedule(cfg), scores=cfg.scores)
    for ev in phase.pending():
        phase.train_until(ev.step)
        if ev.kind == "init":
            new = job.initial_masks(phase, ev.sparsity)
        elif ev.kind in ("adapt", "prune", "finalize"):
            # every language re-selects from its candidate set, computed from the masks before the event
            kind = cfg.candidates if ev.kind != "prune" or cfg.prune_candidates == "same" else "own"
            candidates = phase.candidates(kind)
            new = {lang: phase.select(ev.sparsity, candidates[lang], pathway=lang) for lang in languages}
        else:
            raise ValueError(f"Dynamic ASR Pathways has no {ev.kind!r} events")
        phase.end_event(ev, new)
    phase.finish()
    job.phase_trained(phase)
    return job.finish()
