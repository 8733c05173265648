"""Masks identical on every rank: broadcast from one rank (DDP), packed into one uint8 buffer."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from .masks import MaskSet

__all__ = ["broadcast_masks"]


def broadcast_masks(masks: MaskSet | Mapping[str, MaskSet] | None, src: int = 0, group: Any = None) -> Any:
    """Return ``src``'s masks on every rank (a ``MaskSet`` or ``{pathway: MaskSet}``).

    Other ranks may pass ``None``. Without an initialised process group (or with one process) the
    input is returned. One ``broadcast_object_list`` for names and shapes, one packed ``uint8``
    broadcast for the values (gloo has no bool); on NCCL the buffer lives on the current CUDA device.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return masks
    rank = dist.get_rank()
    header: list[Any] = [None]
    if rank == src:
        if masks is None:
            raise ValueError("broadcast_masks: the source rank has no masks")
        single = isinstance(masks, MaskSet)
        sets = {"": masks} if single else dict(masks)
        header = [(single, [(k, [(n, tuple(t.shape)) for n, t in ms.items()]) for k, ms in sets.items()])]
    dist.broadcast_object_list(header, src=src, group=group)
    single, layout = header[0]
    backend = dist.get_backend(group)
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    total = sum(int(torch.Size(s).numel()) for _, items in layout for _, s in items)
    if rank == src:
        flat = torch.cat([t.reshape(-1).to(device=device, dtype=torch.uint8) for _, ms in sets.items() for t in ms.values()]) if total else torch.zeros(0, dtype=torch.uint8, device=device)
    else:
        flat = torch.empty(total, dtype=torch.uint8, device=device)
    dist.broadcast(flat, src=src, group=group)
    out: dict[str, MaskSet] = {}
    off = 0
    for k, items in layout:
        d = {}
        for n, s in items:
            k_ = int(torch.Size(s).numel())
            d[n] = flat[off : off + k_].view(s).bool().cpu()
            off += k_
        out[k] = MaskSet(d, _validate=False)
    return out[""] if single else out
