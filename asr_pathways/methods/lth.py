"""LTH: lottery tickets with rewinding, one language at a time (METHOD.md).

IMP (:mod:`.imp`), except that after each prune the weights are reset to the rewind point and the
optimizer state is reset: the rewind point is θ_ML (the ``--from`` run) by default, or the weights
after ``--rewind-step k`` steps of this run (an early checkpoint, kept as ``rewind.safetensors``).
Pruned weights are rewound too; they are outside the mask, so only the kept ones matter.

    asr-pathways prune --method lth --from runs/dense --languages en,fr --target 0.7 --out runs/lth
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from . import imp
from .common import Pipeline, PruneConfig, run_monolingual


def run(cfg: PruneConfig, restart: bool = False) -> Path:
    pipe = Pipeline(cfg, restart)
    return run_monolingual(pipe, imp.schedule(cfg, rewind=True), partial(imp.on_event, rewind=True))
