"""One readable recipe per pruning method (docs/method.md), sharing the mask engine and the trainer.

- :mod:`.imp` iterative magnitude pruning per language; :mod:`.lth` the same with rewinding;
- :mod:`.lap` language-agnostic pruning (one ``shared`` mask, pooled multilingual batches);
- :mod:`.pathways` ASR Pathways (fixed per-language masks, the pathway update);
- :mod:`.adaptive` monolingual adaptive masking; :mod:`.dynamic` Dynamic ASR Pathways.

Every recipe is a function ``run(cfg: PruneConfig) -> Path`` that reads top to bottom: its
schedule, then its own loop over its events (init, snapshot, adapt, prune, finalize), calling the
shared pieces: :mod:`.config` (the options), :mod:`.schedule` (levels and events), :mod:`.job`
(the run folder, evaluation, the run's tables), :mod:`.phase` (a trainer and what events do to the
masks), :mod:`.lr` (the phases' learning rate), :mod:`.records` (mask files, history; the run
folder's layout), :mod:`.cost` and :mod:`.scores`. ``asr-pathways prune`` (:mod:`.cli`) is the
command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .config import METHODS, PruneConfig


def recipe(method: str) -> Callable[[PruneConfig], Path]:
    """The ``run`` function of one method."""
    import importlib

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    return importlib.import_module(f"{__name__}.{method}").run


__all__ = ["METHODS", "PruneConfig", "recipe"]
