"""Block bitmaps packed eight to a byte (the exported model's ``bitmap/<lang>/*`` tensors)."""

from __future__ import annotations

import torch


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Flattened bool tensor -> uint8 tensor of ceil(n/8) bytes; element 8b+i is bit i of byte b.

    >>> pack_bits(torch.tensor([True, False, False, True, False, False, False, False, True])).tolist()
    [9, 1]
    """
    flat = mask.detach().reshape(-1).to("cpu", torch.bool)
    n = flat.numel()
    pad = (-n) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    bits = flat.view(-1, 8).to(torch.uint8)
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)
    return (bits * weights).sum(1, dtype=torch.int32).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: the first ``n`` bits as a flat bool tensor."""
    if packed.numel() * 8 < n:
        raise ValueError(f"bitmap holds {packed.numel() * 8} bits, {n} needed")
    shifts = torch.arange(8, dtype=torch.uint8)
    bits = (packed.to(torch.uint8)[:, None] >> shifts) & 1
    return bits.reshape(-1)[:n].bool()
