"""The AdamW every training run uses, and which of torch's implementations runs it.

With ``train.fused_adamw: true`` (``--fused-adamw``; off in the presets, so that recorded runs
reproduce bit for bit), dense training (no pathways) runs torch's *fused* AdamW where the device
has it (CPU and CUDA): one kernel walks every parameter, instead of ~8 elementwise operations per
parameter tensor (torch's default on CPU is the single-tensor loop). On the ``small`` model (203 tensors, 4.0M
weights) a step took 14–18 ms single-tensor, 12–15 ms with ``foreach`` and 4–5 ms fused on a
2-core AVX-512 CPU; a training step of the ``small`` recipe takes ~200–270 ms there, and a
16-s pruning-phase batch ~110 ms (docs/training.md, "The optimizer").

Pruning phases keep the single-tensor AdamW: their pathway engine runs its own masked Adam
update (:mod:`asr_pathways.sparsity.masked_adam`), exact at frozen coordinates, which reproduces
the single-tensor arithmetic. The fused kernel computes the same update up to float rounding (a
test compares them), so a run resumed or continued across the two implementations is
continuous, but not bit-identical to one that never changed.

>>> import torch
>>> model = torch.nn.Linear(3, 2)
>>> opt = make_adamw(model, lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98), fused=False)
>>> [g["weight_decay"] for g in opt.param_groups]  # matrices decay, biases and norms do not
[0.01, 0.0]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["make_adamw", "fused_adamw_available", "IMPLEMENTATION_KEYS", "keep_implementation"]

IMPLEMENTATION_KEYS = ("fused", "foreach")  # how torch runs a step, not what it computes


def fused_adamw_available(device: torch.device) -> bool:
    """True where torch has a fused AdamW kernel for ``device`` (CPU and CUDA)."""
    return device.type in ("cpu", "cuda")


def make_adamw(model: nn.Module, *, lr: float, weight_decay: float, betas: tuple[float, float],
               fused: bool) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters: weight decay on tensors with ≥ 2 dimensions,
    none on biases and norms; ``fused``: torch's fused kernel (see :func:`fused_adamw_available`)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs: dict[str, Any] = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8, **kwargs)


def keep_implementation(optimizer: torch.optim.Optimizer, before: list[dict[str, Any]]) -> None:
    """After ``load_state_dict`` (which takes every group option from the saved state), put back the
    implementation options ``before`` held (``[dict(g) for g in optimizer.param_groups]``): a
    checkpoint written by the single-tensor AdamW resumes fused and vice versa."""
    for group, old in zip(optimizer.param_groups, before):
        for key in IMPLEMENTATION_KEYS:
            if key in old:
                group[key] = old[key]
            else:
                group.pop(key, None)
