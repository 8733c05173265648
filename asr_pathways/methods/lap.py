"""LAP: language-agnostic pruning, IMP or LTH (``--lap-base``, default lth) on pooled multilingual data.

One mask, named ``shared``, serves every language. Each optimizer step runs one monolingual batch
per language (``--languages-per-step 0``, the default; or k languages sampled by weight), every
batch through the shared mask, and the gradients are summed: the same pooled update and the same
compute per step as the ASR Pathways update, so that step counts compare.

    asr-pathways prune --method lap --from runs/dense --languages en,fr,it,nl --target 0.7 --out runs/lap
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from . import imp
from .common import SHARED, Pipeline, PruneConfig, run_multilingual


def run(cfg: PruneConfig, restart: bool = False) -> Path:
    rewind = cfg.lap_base == "lth"
    pipe = Pipeline(cfg, restart)
    return run_multilingual(pipe, [SHARED], lambda lang: SHARED, imp.schedule(cfg, rewind=rewind), partial(imp.on_event, rewind=rewind))
