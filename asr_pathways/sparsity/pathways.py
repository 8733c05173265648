"""One weight set, one mask per pathway (language): masked forward and frozen coordinates.

``with pm.pathway("fr"):`` makes *every* use of the wrapped module's prunable weights see
``θ ⊙ m_fr`` — ``forward``, ``encode``, decoding helpers, a ``DistributedDataParallel`` wrapper
around the same module — while the stored values of weights pruned for ``fr`` are kept (other
pathways may use them). How: on entering, for every prunable parameter the masked tensor
``θ * m`` on the CPU (the mask as 1/0, kept per pathway in the weights' dtype), else ``where(m, θ, 0)``, is computed (through a small autograd function, so gradients reach θ only inside
``m``) and placed in the owning submodule's instance ``__dict__``, which Python's attribute lookup
consults before ``nn.Module.__getattr__``; ``module._parameters`` is not touched, so
``named_parameters()``, ``state_dict()``, optimizers and DDP still see the real parameters.
LSTM/GRU pick the masked tensors up through their ``_flat_weights`` (refreshed here), and
``nn.MultiheadAttention`` reads ``in_proj_weight`` / ``out_proj.weight`` by attribute. No
``torch.nn.utils.prune`` and no parametrizations (both break on LSTM / MHA).

The masked tensors are recomputed each time the context is entered (and after :meth:`step` inside
a context), so weights changed by an optimizer step are always seen. Several forward/backward
passes inside one context are fine (gradient accumulation): the masking node keeps its mask.

:meth:`PathwayModel.step` runs the optimizer step so that every coordinate outside the union of
the active masks keeps its value — the parameter *and* every optimizer state tensor of the
parameter's shape (AdamW ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``, SGD ``momentum_buffer``),
so neither Adam momentum nor decoupled weight decay moves a frozen weight. For a plain
``torch.optim.Adam``/``AdamW`` it runs a masked Adam update (:mod:`.masked_adam`: frozen
coordinates are masked out of each elementwise operation); for any other optimizer (or a custom
``step_fn``) it saves the frozen coordinates, steps, and writes them back. Scalar state (Adam's
per-parameter ``step`` count) cannot be per-coordinate and advances as usual.

>>> import torch, torch.nn as nn
>>> from asr_pathways.sparsity import MaskSet
>>> net = nn.Linear(3, 2, bias=False)
>>> pm = PathwayModel(net, ["weight"])
>>> pm.set_mask("fr", MaskSet({"weight": torch.tensor([[True, False, True], [False, True, True]])}))
>>> with pm.pathway("fr"):
...     y = net(torch.ones(1, 3))
>>> torch.allclose(y, torch.ones(1, 3) @ (net.weight * pm.masks["fr"]["weight"]).T)
True
"""

from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from .frozen import FrozenCoordinates
from .masked_adam import masked_adam_step, supports_masked_adam
from .masks import MaskSet, union
from .select import prunable_parameters

__all__ = ["PathwayModel", "broadcast_masks", "KEEP_VALUES", "ZERO_TRAINABLE"]

KEEP_VALUES = "keep_values"
ZERO_TRAINABLE = "zero_trainable"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _select(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    return torch.where(keep, x, x.new_zeros(())) if keep.dtype == torch.bool else x * keep


class _ApplyMask(torch.autograd.Function):
    """The masked weight and its gradient: ``where(keep, w, 0)`` for a bool mask, ``w * keep`` for the mask
    as 1/0 in ``w``'s dtype (what the CPU uses: several times faster there than ``torch.where``'s mask
    kernel, and the same values for finite weights and gradients, signed zeros aside; an inf or NaN
    there becomes NaN at pruned coordinates, where ``where`` gave 0). The mask is kept on ``ctx`` (not ``save_for_backward``) so that
    several backward passes may go through the same node (gradient accumulation inside one
    ``pathway`` context). Masks are never modified in place (``set_mask`` replaces them), so no
    version check is lost.
    """

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.keep = keep
        return _select(weight, keep)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return _select(grad, ctx.keep), None


def _masked(p: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    if p.requires_grad:
        with torch.enable_grad():  # a context entered under no_grad must still train if used so
            return _ApplyMask.apply(p, keep)
    return _select(p, keep)


class PathwayModel:
    """Hold ``module`` (one weight set) and one :class:`MaskSet` per pathway.

    Args:
        module: any ``nn.Module``; it is used in place (not copied).
        prunable_names: the parameter names the masks cover (default:
            :func:`~asr_pathways.sparsity.select.prunable_parameters` with default patterns).
        masks: optional initial ``{pathway: MaskSet}``.
        pruned_weights: ``"keep_values"`` (default; masked forward, stored values kept) or
            ``"zero_trainable"`` (PARP-style: :meth:`apply_zero` zeroes the pruned weights at an
            event, forward then uses all weights, so the zeros train; one pathway only).
    """

    def __init__(
        self,
        module: nn.Module,
        prunable_names: Iterable[str] | None = None,
        masks: Mapping[str, MaskSet] | None = None,
        pruned_weights: str = KEEP_VALUES,
    ) -> None:
        if pruned_weights not in (KEEP_VALUES, ZERO_TRAINABLE):
            raise ValueError(f"pruned_weights {pruned_weights!r}: expected {KEEP_VALUES!r} or {ZERO_TRAINABLE!r}")
        self.module = module
        self.pruned_weights = pruned_weights
        params = dict(module.named_parameters())
        names = list(prunable_names) if prunable_names is not None else list(prunable_parameters(module))
        missing = [n for n in names if n not in params]
        if missing:
            raise ValueError(f"not parameters of the module: {missing[:5]}")
        if len(set(names)) != len(names):
            raise ValueError("prunable_names has duplicates")
        self._names: list[str] = names
        self._params: dict[str, nn.Parameter] = {n: params[n] for n in names}
        self._owner: dict[str, tuple[nn.Module, str]] = {}
        for n in names:
            prefix, _, attr = n.rpartition(".")
            self._owner[n] = (module.get_submodule(prefix) if prefix else module, attr)
        self._masks: dict[str, MaskSet] = {}
        self._keep: dict[str, dict[str, torch.Tensor]] = {}  # per pathway, its masks as 1/0 in the weights' dtype
        self._active: str | None = None
        self._installed: list[str] = []
        self._used: list[str] = []
        self._frozen = FrozenCoordinates(self._params, self.union_mask)  # what an optimizer step must not move
        for k, v in (masks or {}).items():
            self.set_mask(k, v)

    # ----- masks ----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The prunable parameter names the masks cover."""
        return list(self._names)

    @property
    def masks(self) -> Mapping[str, MaskSet]:
        """Read-only ``{pathway: MaskSet}``; change it with :meth:`set_mask` / :meth:`set_masks`."""
        return MappingProxyType(self._masks)

    @property
    def pathways(self) -> list[str]:
        return list(self._masks)

    @property
    def active(self) -> str | None:
        """The pathway whose context is open, or None."""
        return self._active

    def set_mask(self, pathway: str, mask: MaskSet | Mapping[str, torch.Tensor]) -> None:
        """Add or replace the mask of ``pathway`` (validated: same names and shapes as the parameters)."""
        if not isinstance(pathway, str) or not _NAME_RE.match(pathway):
            raise ValueError(f"pathway name {pathway!r}: use letters, digits, '_', '-', '.'")
        if self.pruned_weights == ZERO_TRAINABLE and self._masks and pathway not in self._masks:
            raise ValueError(
                "pruned_weights='zero_trainable' is only valid with a single pathway: zeroing a weight shared "
                f"with another pathway would change that pathway (have {list(self._masks)}, adding {pathway!r})"
            )
        if self._active == pathway:
            raise RuntimeError(f"cannot replace the mask of {pathway!r} while its context is open")
        ms = mask if isinstance(mask, MaskSet) else MaskSet(mask)
        if set(ms) != set(self._names):
            a, b = set(ms), set(self._names)
            raise ValueError(f"mask for {pathway!r} covers different parameters (extra: {sorted(a - b)[:5]}, missing: {sorted(b - a)[:5]})")
        out = {}
        for n in self._names:
            m, p = ms[n], self._params[n]
            if m.dtype != torch.bool:
                raise TypeError(f"mask {pathway}/{n}: dtype {m.dtype}, expected bool")
            if tuple(m.shape) != tuple(p.shape):
                raise ValueError(f"mask {pathway}/{n}: shape {tuple(m.shape)}, parameter {tuple(p.shape)}")
            out[n] = m.to(p.device)
        self._masks[pathway] = MaskSet(out, _validate=False)
        self._keep.pop(pathway, None)
        self._frozen.clear()

    def set_masks(self, masks: Mapping[str, MaskSet]) -> None:
        """Replace all pathways by ``masks``."""
        if self._active is not None:
            raise RuntimeError("cannot replace masks while a pathway context is open")
        old = self._masks
        self._masks, self._keep = {}, {}
        try:
            for k, v in masks.items():
                self.set_mask(k, v)
        except Exception:
            self._masks = old
            raise
        self._frozen.clear()

    def union_mask(self, pathways: Sequence[str] | None = None) -> MaskSet:
        """``∪ m_l`` over ``pathways`` (default: all) — the deployed model."""
        sel = list(self._masks) if pathways is None else list(pathways)
        return union(*(self._get(p) for p in sel))

    def _get(self, pathway: str) -> MaskSet:
        try:
            return self._masks[pathway]
        except KeyError:
            raise KeyError(f"no pathway {pathway!r} (have {list(self._masks)})") from None

    # ----- masked forward -------------------------------------------------------------------
    def masked_weights(self, pathway: str) -> dict[str, torch.Tensor]:
        """The effective weights ``θ ⊙ m`` of ``pathway`` (detached copies)."""
        ms = self._get(pathway)
        with torch.no_grad():
            return {n: torch.where(ms[n].to(p.device), p.detach(), p.new_zeros(())) for n, p in self._params.items()}

    def _install(self, pathway: str) -> None:
        ms = self._get(pathway)
        keep = self._keep.setdefault(pathway, {})  # on the CPU, float copies of the masks: 4 bytes per weight per pathway
        for n in self._names:
            p = self._params[n]
            m = ms[n]
            if m.device != p.device:  # the module moved after the mask was set
                m = m.to(p.device)
                ms._m[n] = m
            k = m
            if p.device.type == "cpu":  # elsewhere (GPU) the bool mask and torch.where: not measured there
                k = keep.get(n)
                if k is None or k.device != p.device or k.dtype != p.dtype:
                    k = keep[n] = m.to(dtype=p.dtype)
            t = _masked(p, k)
            mod, attr = self._owner[n]
            mod.__dict__[attr] = t  # shadows mod._parameters[attr] for attribute access
            fw = getattr(mod, "_flat_weights_names", None)
            if fw is not None and attr in fw:
                mod._flat_weights[fw.index(attr)] = t
            self._installed.append(n)

    def _uninstall(self) -> None:
        for n in self._installed:
            mod, attr = self._owner[n]
            mod.__dict__.pop(attr, None)
            fw = getattr(mod, "_flat_weights_names", None)
            if fw is not None and attr in fw:
                mod._flat_weights[fw.index(attr)] = self._params[n]
        self._installed = []

    @contextmanager
    def pathway(self, name: str) -> Iterator["PathwayModel"]:
        """Within the block, every call on the module uses ``θ ⊙ m_name``.

        In ``zero_trainable`` mode the forward uses all weights (the block only records which
        pathway was used). Contexts do not nest.
        """
        if self._active is not None:
            raise RuntimeError(f"pathway contexts do not nest ({self._active!r} is open, asked for {name!r})")
        self._get(name)
        self._active = name
        if torch.is_grad_enabled() and name not in self._used:  # evaluation under no_grad is not "used"
            self._used.append(name)
        try:
            if self.pruned_weights == KEEP_VALUES:
                self._install(name)
            yield self
        finally:
            self._uninstall()
            self._active = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    # ----- optimizer step -------------------------------------------------------------------
    def frozen_outside(self, optimizer: torch.optim.Optimizer, active: Sequence[str]) -> Any:
        """Restore, on exit, every coordinate outside ``∪ active`` of the parameters and of the
        optimizer's per-parameter state tensors. Use it around a custom step (e.g. ``scaler.step``)::

            with pm.frozen_outside(opt, ["en", "fr"]):
                scaler.step(opt)
        """
        if self.pruned_weights == ZERO_TRAINABLE or not self._masks:
            return nullcontext()
        key = tuple(sorted(set(active)))
        if not key:
            raise ValueError("no active pathways for this step")
        for k in key:
            self._get(k)
        return self._frozen.restore_outside(optimizer, key)

    def step(
        self,
        optimizer: torch.optim.Optimizer,
        active: Sequence[str] | None = None,
        step_fn: Callable[[], Any] | None = None,
    ) -> Any:
        """``optimizer.step()`` (or ``step_fn()``) keeping every coordinate outside ``∪ active``
        unchanged, parameters and optimizer state. ``active`` defaults to the pathways whose
        context was entered with gradients enabled since the last step (pass it explicitly in a
        trainer). Returns what the step returned (``None`` for the masked Adam path).
        """
        act = list(active) if active is not None else list(self._used)
        if not act and self.pruned_weights == KEEP_VALUES and self._masks:
            raise ValueError("step(): no active pathways given and none used since the last step")
        masked = self.pruned_weights == KEEP_VALUES and bool(self._masks)
        if masked and step_fn is None and supports_masked_adam(optimizer):
            key = tuple(sorted(set(act)))
            for k in key:
                self._get(k)
            on_cpu = all(q.device.type == "cpu" for q in self._params.values())
            masked_adam_step(optimizer, self._frozen.outside_float(key) if on_cpu else self._frozen.outside_bool(key))
            out = None
        else:
            with self.frozen_outside(optimizer, act):
                out = step_fn() if step_fn is not None else optimizer.step()
        self._used = []
        if self._active is not None and self.pruned_weights == KEEP_VALUES:
            # a step inside an open context: refresh the masked tensors from the new weights
            self._uninstall()
            self._install(self._active)
        return out

    # ----- zero_trainable -------------------------------------------------------------------
    def apply_zero(self, mask: MaskSet | None = None, optimizer: torch.optim.Optimizer | None = None, pathway: str | None = None) -> None:
        """Zero the stored weights outside ``mask`` (PARP "adjust" event); only with one pathway.

        ``mask`` (optional) first replaces the single pathway's mask (named ``pathway``, default
        the existing one or ``"main"``). With ``optimizer``, the per-parameter state tensors are
        zeroed at the pruned coordinates as well, so stale momentum does not push them at once.
        """
        if len(self._masks) > 1 or (mask is not None and pathway is not None and self._masks and pathway not in self._masks):
            raise ValueError(
                "apply_zero (pruned_weights='zero_trainable') is only valid with a single pathway: zeroing a "
                f"weight shared with another pathway would change it (have {list(self._masks)})"
            )
        if mask is not None:
            name = pathway or (next(iter(self._masks)) if self._masks else "main")
            self.set_mask(name, mask)
        if not self._masks:
            raise ValueError("apply_zero: no mask set")
        ms = next(iter(self._masks.values()))
        with torch.no_grad():
            for n, p in self._params.items():
                keep = ms[n]
                p.masked_fill_(~keep, 0)
                if optimizer is not None:
                    for sv in optimizer.state.get(p, {}).values():
                        if isinstance(sv, torch.Tensor) and sv.shape == p.shape:
                            sv.masked_fill_(~keep, 0)
        if self._active is not None and self.pruned_weights == KEEP_VALUES:
            self._uninstall()
            self._install(self._active)

    # ----- checkpoints ----------------------------------------------------------------------
    def masks_state_dict(self) -> dict[str, torch.Tensor]:
        """Flat ``{"<pathway>/<param>": bool tensor}`` for a checkpoint file."""
        return {f"{k}/{n}": v for k, ms in self._masks.items() for n, v in ms.items()}

    def load_masks_state_dict(self, sd: Mapping[str, torch.Tensor]) -> None:
        """Inverse of :meth:`masks_state_dict` (replaces all pathways)."""
        per: dict[str, dict[str, torch.Tensor]] = {}
        for key, v in sd.items():
            pw, sep, n = key.partition("/")
            if not sep:
                raise ValueError(f"mask state key {key!r}: expected '<pathway>/<param>'")
            per.setdefault(pw, {})[n] = v
        self.set_masks({k: MaskSet(v) for k, v in per.items()})

    def save_masks(self, folder: str | Path, metadata: Mapping[str, Any] | None = None) -> list[Path]:
        """Write ``folder/<pathway>.safetensors`` for every pathway (atomically)."""
        folder = Path(folder)
        meta = {"pruned_weights": self.pruned_weights, **dict(metadata or {})}
        return [ms.save(folder / f"{k}.safetensors", {**meta, "pathway": k}) for k, ms in self._masks.items()]

    def load_masks(self, folder: str | Path, pathways: Iterable[str] | None = None) -> None:
        """Read masks written by :meth:`save_masks` (all ``*.safetensors`` or the named ones)."""
        folder = Path(folder)
        names = list(pathways) if pathways is not None else sorted(p.stem for p in folder.glob("*.safetensors"))
        self.set_masks({k: MaskSet.load(folder / f"{k}.safetensors") for k in names})

    def broadcast_masks(self, src: int = 0, group: Any = None) -> None:
        """Make every rank hold ``src``'s masks (see :func:`~asr_pathways.sparsity.broadcast.broadcast_masks`)."""
        from .broadcast import broadcast_masks

        self.set_masks(broadcast_masks(dict(self._masks), src=src, group=group))
