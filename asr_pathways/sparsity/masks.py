"""Masks as values: a :class:`MaskSet` maps parameter names to bool tensors (True = kept).

Everything here is a pure function of tensors: operations return new mask sets and never modify
their inputs. Binary operations require the same names and shapes on both sides.

>>> import torch
>>> a = MaskSet({"w": torch.tensor([True, True, False, False])})
>>> b = MaskSet({"w": torch.tensor([True, False, True, False])})
>>> (a | b).sparsity(), (a & b).sparsity(), iou(a, b)
(0.25, 0.75, 0.3333333333333333)
>>> revived(a, b)["w"].tolist(), dropped(a, b)["w"].tolist()
([False, False, True, False], [False, True, False, False])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch

__all__ = [
    "MaskSet",
    "union",
    "intersection",
    "difference",
    "iou",
    "iou_per_matrix",
    "revived",
    "dropped",
    "own_plus_residual",
    "FORMAT",
]

FORMAT = "asr-pathways/maskset"
FORMAT_VERSION = 1


def _as_bool(name: str, t: torch.Tensor) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"mask {name!r}: expected a tensor, got {type(t).__name__}")
    if t.dtype == torch.bool:
        return t
    if t.is_floating_point() or t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        if bool(((t != 0) & (t != 1)).any()):
            raise ValueError(f"mask {name!r}: values must be 0/1 or bool")
        return t != 0
    raise TypeError(f"mask {name!r}: unsupported dtype {t.dtype}")


class MaskSet(Mapping[str, torch.Tensor]):
    """An immutable-by-convention mapping name -> bool tensor (True = kept).

    ``MaskSet`` is a ``Mapping``; ``==`` compares names, shapes and values (ignoring device).
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, masks: Mapping[str, torch.Tensor] | None = None, *, _validate: bool = True) -> None:
        masks = dict(masks or {})
        if _validate:
            masks = {str(k): _as_bool(str(k), v) for k, v in masks.items()}
        self._m: dict[str, torch.Tensor] = masks

    # ----- construction -------------------------------------------------------------------
    @classmethod
    def ones_like(cls, params: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]) -> "MaskSet":
        """All-kept masks for ``params`` (a dict, or ``model.named_parameters()``)."""
        items = params.items() if isinstance(params, Mapping) else params
        return cls({n: torch.ones(p.shape, dtype=torch.bool, device=p.device) for n, p in items}, _validate=False)

    @classmethod
    def zeros_like(cls, params: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]) -> "MaskSet":
        items = params.items() if isinstance(params, Mapping) else params
        return cls({n: torch.zeros(p.shape, dtype=torch.bool, device=p.device) for n, p in items}, _validate=False)

    # ----- mapping ------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._m[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._m)

    def __len__(self) -> int:
        return len(self._m)

    def __repr__(self) -> str:
        return f"MaskSet({len(self)} matrices, {self.numel()} weights, sparsity {self.sparsity():.4f})"

    @property
    def names(self) -> list[str]:
        return list(self._m)

    def to_dict(self) -> dict[str, torch.Tensor]:
        return dict(self._m)

    def clone(self) -> "MaskSet":
        return MaskSet({k: v.clone() for k, v in self._m.items()}, _validate=False)

    def to(self, device: str | torch.device) -> "MaskSet":
        return MaskSet({k: v.to(device) for k, v in self._m.items()}, _validate=False)

    def cpu(self) -> "MaskSet":
        return self.to("cpu")

    def subset(self, names: Iterable[str]) -> "MaskSet":
        return MaskSet({n: self._m[n] for n in names}, _validate=False)

    # ----- algebra ------------------------------------------------------------------------
    def _check_same(self, other: "MaskSet", op: str) -> None:
        if not isinstance(other, MaskSet):
            other = MaskSet(other)
        if list(self._m) != list(other._m) and set(self._m) != set(other._m):
            a, b = set(self._m), set(other._m)
            raise ValueError(f"{op}: mask sets name different matrices (only left: {sorted(a - b)[:5]}, only right: {sorted(b - a)[:5]})")
        for k, v in self._m.items():
            if v.shape != other._m[k].shape:
                raise ValueError(f"{op}: {k} has shape {tuple(v.shape)} on the left and {tuple(other._m[k].shape)} on the right")

    def _binary(self, other: "MaskSet", fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], op: str) -> "MaskSet":
        other = other if isinstance(other, MaskSet) else MaskSet(other)
        self._check_same(other, op)
        return MaskSet({k: fn(v, other._m[k].to(v.device)) for k, v in self._m.items()}, _validate=False)

    def union(self, other: "MaskSet") -> "MaskSet":
        return self._binary(other, torch.logical_or, "union")

    def intersection(self, other: "MaskSet") -> "MaskSet":
        return self._binary(other, torch.logical_and, "intersection")

    def difference(self, other: "MaskSet") -> "MaskSet":
        """Kept here and not in ``other``."""
        return self._binary(other, lambda a, b: a & ~b, "difference")

    def complement(self) -> "MaskSet":
        return MaskSet({k: ~v for k, v in self._m.items()}, _validate=False)

    __or__ = union
    __and__ = intersection
    __sub__ = difference
    __invert__ = complement

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaskSet):
            return NotImplemented
        if set(self._m) != set(other._m):
            return False
        return all(v.shape == other._m[k].shape and torch.equal(v.cpu(), other._m[k].cpu()) for k, v in self._m.items())

    def equal(self, other: "MaskSet") -> bool:
        return self == other

    def issubset(self, other: "MaskSet") -> bool:
        """Every kept weight here is kept in ``other``."""
        self._check_same(other, "issubset")
        return all(not bool((v & ~other._m[k].to(v.device)).any()) for k, v in self._m.items())

    # ----- counts and sparsity -------------------------------------------------------------
    def numel(self) -> int:
        return sum(v.numel() for v in self._m.values())

    def kept(self) -> int:
        return sum(int(v.sum().item()) for v in self._m.values())

    def zeros(self) -> int:
        return self.numel() - self.kept()

    def kept_per_matrix(self) -> dict[str, int]:
        return {k: int(v.sum().item()) for k, v in self._m.items()}

    def sparsity(self) -> float:
        """zeros / size over all matrices of the set (the prunable set P)."""
        n = self.numel()
        return self.zeros() / n if n else 0.0

    def sparsity_per_matrix(self) -> dict[str, float]:
        return {k: 1.0 - int(v.sum().item()) / v.numel() if v.numel() else 0.0 for k, v in self._m.items()}

    def sparsity_per_group(self, groups: Mapping[str, str] | Callable[[str], str] | None = None) -> dict[str, float]:
        """zeros / size per group; ``groups`` maps name -> group (dict or function).

        Default: :func:`asr_pathways.sparsity.select.group_of` with the built-in group patterns.
        """
        if groups is None:
            from .select import group_of

            fn: Callable[[str], str] = group_of
        elif isinstance(groups, Mapping):
            fn = groups.__getitem__
        else:
            fn = groups
        size: dict[str, int] = {}
        kept: dict[str, int] = {}
        for k, v in self._m.items():
            g = fn(k)
            size[g] = size.get(g, 0) + v.numel()
            kept[g] = kept.get(g, 0) + int(v.sum().item())
        return {g: 1.0 - kept[g] / size[g] if size[g] else 0.0 for g in size}

    def sparsity_over_model(self, model: torch.nn.Module | int) -> float:
        """Pruned weights / all parameters of ``model`` (unmasked parameters count as kept).

        ``model`` may also be the total parameter count.
        """
        total = model if isinstance(model, int) else sum(p.numel() for p in model.parameters())
        return self.zeros() / total if total else 0.0

    # ----- files ---------------------------------------------------------------------------
    def save(self, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write a safetensors file (atomically). ``metadata`` must be JSON-serialisable."""
        from ..io import save_tensors

        meta = {"format": FORMAT, "version": FORMAT_VERSION, **dict(metadata or {})}
        return save_tensors(path, self._m, meta)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", with_metadata: bool = False):
        """Read a file written by :meth:`save` (returns ``(MaskSet, metadata)`` if ``with_metadata``)."""
        from ..errors import InputError
        from ..io import load_tensors

        tensors, meta = load_tensors(path, device=device)
        bad = [k for k, v in tensors.items() if v.dtype != torch.bool]
        if bad:
            raise InputError(f"not a mask file: tensors {bad[:3]} are not bool", path=path, expected="bool tensors written by MaskSet.save")
        ms = cls(tensors, _validate=False)
        return (ms, meta) if with_metadata else ms

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self._m)

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "MaskSet":
        return cls(sd)


# ----- pure functions ------------------------------------------------------------------------

def union(*sets: MaskSet) -> MaskSet:
    """Kept in at least one set (the deployed model of several pathways)."""
    if not sets:
        raise ValueError("union of no mask sets")
    out = sets[0]
    for s in sets[1:]:
        out = out | s
    return out


def intersection(*sets: MaskSet) -> MaskSet:
    """Kept in every set."""
    if not sets:
        raise ValueError("intersection of no mask sets")
    out = sets[0]
    for s in sets[1:]:
        out = out & s
    return out


def difference(a: MaskSet, b: MaskSet) -> MaskSet:
    """Kept in ``a`` and pruned in ``b``."""
    return a - b


def iou_per_matrix(a: MaskSet, b: MaskSet) -> dict[str, float]:
    """|a ∩ b| / |a ∪ b| per matrix (1.0 when both keep nothing)."""
    a._check_same(b, "iou")
    out = {}
    for k, v in a.items():
        w = b[k].to(v.device)
        inter = int((v & w).sum().item())
        uni = int((v | w).sum().item())
        out[k] = inter / uni if uni else 1.0
    return out


def iou(a: MaskSet, b: MaskSet) -> float:
    """|a ∩ b| / |a ∪ b| over all matrices (1.0 when both keep nothing)."""
    a._check_same(b, "iou")
    inter = uni = 0
    for k, v in a.items():
        w = b[k].to(v.device)
        inter += int((v & w).sum().item())
        uni += int((v | w).sum().item())
    return inter / uni if uni else 1.0


def revived(before: MaskSet, after: MaskSet) -> MaskSet:
    """Weights pruned in ``before`` and kept in ``after``."""
    return after - before


def dropped(before: MaskSet, after: MaskSet) -> MaskSet:
    """Weights kept in ``before`` and pruned in ``after``."""
    return before - after


def own_plus_residual(pathways: Mapping[str, MaskSet], language: str) -> MaskSet:
    """The candidates of docs/method.md, ``C_l = m_l ∪ (1 − ∪_{k≠l} m_k)``: own weights plus those no other language uses."""
    if language not in pathways:
        raise KeyError(f"no pathway {language!r} (have {sorted(pathways)})")
    others = [m for k, m in pathways.items() if k != language]
    own = pathways[language]
    if not others:
        return MaskSet.ones_like(own)
    return own | ~union(*others)
