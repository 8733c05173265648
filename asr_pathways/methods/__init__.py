"""One readable recipe per pruning method (METHOD.md), sharing the mask engine and the trainer.

- :mod:`.imp` iterative magnitude pruning per language; :mod:`.lth` the same with rewinding;
- :mod:`.lap` language-agnostic pruning (one ``shared`` mask, pooled multilingual batches);
- :mod:`.pathways` ASR Pathways (fixed per-language masks, the pathway update);
- :mod:`.adaptive` monolingual adaptive masking; :mod:`.dynamic` Dynamic ASR Pathways.

Every recipe is a function ``run(cfg: PruneConfig) -> Path`` that writes one run folder (layout in
:mod:`.common`). ``asr-pathways prune --method NAME ...`` (:mod:`.cli`) is the command line.
"""

from __future__ import annotations

from typing import Callable
from pathlib import Path

from .common import METHODS, PruneConfig


def recipe(method: str) -> Callable[[PruneConfig], Path]:
    """The ``run`` function of one method."""
    import importlib

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    return importlib.import_module(f"{__name__}.{method}").run


__all__ = ["METHODS", "PruneConfig", "recipe"]
