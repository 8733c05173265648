"""The frozen-coordinate invariant: an optimizer step moves nothing outside the active pathways' masks.

For a pathway step over ``active`` pathways, every coordinate outside ``∪ active`` of a prunable
parameter is frozen: :meth:`FrozenCoordinates.outside_float` (or ``outside_bool``) gives the masks the masked Adam step
uses (:mod:`.masked_adam`), :meth:`FrozenCoordinates.restore_outside` saves those coordinates of
the parameters and of the optimizer's per-parameter state tensors and writes them back after any
other optimizer's step. Both are cached per set of active pathways (the 4 most recent).

>>> import torch
>>> p = torch.nn.Parameter(torch.ones(2, 2))
>>> m = MaskSet({"w": torch.tensor([[True, False], [True, True]])})
>>> fz = FrozenCoordinates({"w": p}, lambda active: m)
>>> opt = torch.optim.SGD([p], lr=1.0)
>>> p.grad = torch.ones(2, 2)
>>> with fz.restore_outside(opt, ("en",)):
...     opt.step()
>>> p.detach().tolist()
[[0.0, 1.0], [0.0, 0.0]]
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

import torch

from .masks import MaskSet


def _flat_view(t: torch.Tensor) -> torch.Tensor:
    if not t.is_contiguous():
        raise RuntimeError("frozen-coordinate restore needs contiguous parameters and optimizer state")
    return t.view(-1)


class FrozenCoordinates:
    """The coordinates outside the union of the active pathways' masks, for ``params`` (name -> parameter).

    ``union_mask(active)`` returns the union of the masks of the pathways in ``active``.
    """

    def __init__(self, params: Mapping[str, torch.nn.Parameter], union_mask: Callable[[tuple[str, ...]], MaskSet]) -> None:
        self._params = params
        self._union = union_mask
        self._index_cache: OrderedDict[tuple[str, ...], dict[str, torch.Tensor]] = OrderedDict()
        self._bool_cache: OrderedDict[tuple[str, ...], dict[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._float_cache: OrderedDict[tuple[str, ...], dict[torch.Tensor, torch.Tensor]] = OrderedDict()

    def clear(self) -> None:
        """Forget the cached sets (after any mask changed)."""
        self._index_cache.clear()
        self._bool_cache.clear()
        self._float_cache.clear()

    @staticmethod
    def _cached(cache: OrderedDict, key: tuple[str, ...], build: Callable[[], dict]) -> dict:
        """``cache[key]``, built on a miss; keeps the 4 most recently used keys."""
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
        cache[key] = out = build()
        while len(cache) > 4:
            cache.popitem(last=False)
        return out

    def outside_index(self, active: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Name -> flat int64 indices of coordinates outside ``∪ active`` (names with none omitted)."""

        def build() -> dict[str, torch.Tensor]:
            u = self._union(active)
            idx = {n: torch.nonzero(~u[n].reshape(-1)).flatten() for n in self._params}
            return {n: i for n, i in idx.items() if i.numel()}

        return self._cached(self._index_cache, active, build)

    def _outside(self, active: tuple[str, ...]) -> dict[torch.Tensor, torch.Tensor]:
        u = self._union(active)
        frozen = {self._params[n]: ~u[n].to(self._params[n].device) for n in self._params}
        return {p: f for p, f in frozen.items() if bool(f.any())}

    def outside_bool(self, active: tuple[str, ...]) -> dict[torch.Tensor, torch.Tensor]:
        """Parameter -> bool tensor, True outside ``∪ active`` (parameters with none omitted)."""
        return self._cached(self._bool_cache, active, lambda: self._outside(active))

    def outside_float(self, active: tuple[str, ...]) -> dict[torch.Tensor, torch.Tensor]:
        """Like :meth:`outside_bool`, as 1/0 in each parameter's dtype (what the masked Adam step reads
        without a conversion per step); the bool masks it is made from are not kept."""
        return self._cached(self._float_cache, active, lambda: {p: f.to(p.dtype) for p, f in self._outside(active).items()})

    @contextmanager
    def restore_outside(self, optimizer: torch.optim.Optimizer, active: tuple[str, ...]) -> Iterator[None]:
        """Save the frozen coordinates of the parameters and their optimizer state; write them back on exit.

        Optimizer state created inside (a first step) starts from zero at the frozen coordinates.
        """
        frozen = self.outside_index(active)
        saved: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        had_state: dict[str, set[str]] = {}
        with torch.no_grad():
            for n, idx in frozen.items():
                p = self._params[n]
                saved.append((p, idx, p.detach().reshape(-1).index_select(0, idx)))
                had_state[n] = set()
                for sk, sv in optimizer.state.get(p, {}).items():
                    if isinstance(sv, torch.Tensor) and sv.shape == p.shape:
                        had_state[n].add(sk)
                        saved.append((sv, idx, sv.reshape(-1).index_select(0, idx)))
        yield
        with torch.no_grad():
            for t, idx, old in saved:
                _flat_view(t).index_copy_(0, idx, old)
            for n, idx in frozen.items():
                p = self._params[n]
                for sk, sv in optimizer.state.get(p, {}).items():
                    if isinstance(sv, torch.Tensor) and sv.shape == p.shape and sk not in had_state[n]:
                        _flat_view(sv).index_fill_(0, idx, 0)

