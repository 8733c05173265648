"""The AdamW every training run uses, and which of torch's implementations runs it.

With ``train.fused_adamw: true`` (``--fused-adamw``; off in the presets, so that recorded runs
reproduce bit for bit), dense training (no pathways) runs torch's *fused* AdamW where the device
has it (CPU and CUDA): one kernel walks every parameter, instead of ~8 elementwise operations per
parameter tensor (torch's default on CPU is the single-tensor loop). Training steps of the
``small`` recipe were 1.033x as fast with it (95% interval [1.001, 1.066], ``benchmarks/train_speed.py``,
BENCHMARKS.md); the optimizer step alone took 4–5 ms instead of 14–18 ms on a 2-core AVX-512 CPU
(a scratch measurement, docs/training.md, the optimiser row).

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


def keep_implementation(saved_groups: list[dict[str, Any]], optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """``saved_groups`` (param groups about to go into ``load_state_dict``, which takes every option
    from them) with ``optimizer``'s own implementation options (fused or not) put in, so that a
    checkpoint written by the single-tensor AdamW resumes fused and vice versa. Done before loading:
    torch places each state's ``step`` by the loaded group's ``fused`` flag.

    >>> opt = torch.optim.AdamW([torch.nn.Parameter(torch.ones(1))], fused=True)
    >>> keep_implementation([{"params": [0], "lr": 0.1, "fused": None}], opt)[0]["fused"]
    True
    """
    out = []
    for saved, live in zip(saved_groups, optimizer.param_groups):
        group = dict(saved)
        for key in IMPLEMENTATION_KEYS:
            if key in live:
                group[key] = live[key]
            else:
                group.pop(key, None)
        out.append(group)
    return out
