"""Trainer hooks: small objects that observe every optimizer step and may carry resumable state.

A hook subclasses :class:`TrainHook` and overrides what it needs; the trainer calls
``after_backward`` after each language's backward pass, ``before_step`` / ``after_step`` around the
optimizer step, and saves ``state_dict()`` in every checkpoint (tensors in the checkpoint file,
other values in its metadata, under the hook's ``name``), giving it back to ``load_state_dict`` on
resume. Side state of a recipe (its wall clock, the per-language update scores of Dynamic ASR
Pathways) rides on hooks instead of trainer subclasses.

>>> class Count(TrainHook):
...     name = "count"
...     def __init__(self): self.steps = 0
...     def after_step(self, trainer, langs): self.steps += 1
...     def state_dict(self): return {"steps": self.steps}
...     def load_state_dict(self, state): self.steps = state["steps"]
>>> c = Count(); c.after_step(None, ["en"]); c.state_dict()
{'steps': 1}
"""

from __future__ import annotations

import time
from typing import Any, Protocol


class TrainHook(Protocol):
    """What the trainer calls on a hook; every method is optional (the defaults do nothing)."""

    name: str

    def after_backward(self, trainer: Any, lang: str) -> None:
        """After the backward pass of language ``lang``'s batch (gradients accumulated so far in ``.grad``)."""

    def before_step(self, trainer: Any, langs: list[str]) -> None:
        """After every backward pass of the step and gradient clipping, before the optimizer step."""

    def after_step(self, trainer: Any, langs: list[str]) -> None:
        """After the optimizer step (``trainer.step`` not yet incremented)."""

    def state_dict(self) -> dict[str, Any]:
        """What to checkpoint (tensors and JSON values); empty: nothing."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (``{}`` when the checkpoint holds nothing for this hook)."""


def hook_states(hooks: list[TrainHook]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every hook's state for a checkpoint: (JSON values by hook name, tensors as ``name/key``).

    >>> hook_states([WallClock()])[0]["wall_clock"]["wall_seconds"] >= 0
    True
    """
    meta: dict[str, dict[str, Any]] = {}
    tensors: dict[str, Any] = {}
    for h in hooks:
        for k, v in h.state_dict().items():
            if hasattr(v, "dtype") and hasattr(v, "shape"):  # a tensor
                tensors[f"{h.name}/{k}"] = v
            else:
                meta.setdefault(h.name, {})[k] = v
    return meta, tensors


def load_hook_states(hooks: list[TrainHook], meta: dict[str, dict[str, Any]], tensors: dict[str, Any]) -> None:
    """Give every hook back what :func:`hook_states` saved (``{}`` when the checkpoint has nothing for it)."""
    for h in hooks:
        state = dict(meta.get(h.name, {}))
        state |= {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith(h.name + "/")}
        h.load_state_dict(state)


class WallClock(TrainHook):
    """Wall-clock seconds of a run, kept across resumes (time lost to an interruption is not counted).

    >>> c = WallClock(); c.load_state_dict({"wall_seconds": 10.0}); c.seconds() >= 10.0
    True
    """

    name = "wall_clock"

    def __init__(self) -> None:
        self.base = 0.0
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return self.base + time.perf_counter() - self.start

    def state_dict(self) -> dict[str, Any]:
        return {"wall_seconds": self.seconds()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base = float(state.get("wall_seconds", 0.0))
        self.start = time.perf_counter()
