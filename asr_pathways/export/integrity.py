"""Integrity of an exported model: a checksum per tensor and the kept-block count of every bitmap.

``export_pathways`` stores ``model.json["checksums"]`` (tensor name -> SHA-256 of its dtype, shape
and bytes) and, per prunable weight, ``kept_blocks`` (pathway -> blocks kept). :func:`verify` runs
when a model is loaded: a missing, extra or changed tensor, a bitmap of the wrong length or with
bits set past its grid, a kept-block count that differs, or a values tensor that does not hold
exactly the union's blocks is an :class:`InputError` naming the file and the tensor. A flipped
bit or a longer bitmap can therefore never load as a silently different model.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Mapping

import torch

from asr_pathways.errors import InputError

HINT = "The file was changed or damaged after export: export the model again"


def tensor_checksum(t: torch.Tensor) -> str:
    """SHA-256 (hex) of a tensor's dtype, shape and bytes.

    >>> tensor_checksum(torch.tensor([1, 2], dtype=torch.uint8)) == tensor_checksum(torch.tensor([1, 2], dtype=torch.uint8))
    True
    >>> tensor_checksum(torch.tensor([1, 2], dtype=torch.uint8)) == tensor_checksum(torch.tensor([1, 3], dtype=torch.uint8))
    False
    """
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def checksums(tensors: Mapping[str, torch.Tensor]) -> dict[str, str]:
    return {k: tensor_checksum(v) for k, v in sorted(tensors.items())}


def grid_size(info: Mapping[str, Any]) -> int:
    """Cells of a prunable weight's block grid: ceil(out / R) x in."""
    shape, rows = info["shape"], info["block"][0]
    return -(-shape[0] // rows) * math.prod(shape[1:])


def verify(weights: Path, meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`InputError` unless ``tensors`` are exactly what the export wrote (see module doc)."""
    sums = meta.get("checksums")
    if sums is None and int(meta.get("format_version", 1)) >= 2:
        raise InputError("model.json has no tensor checksums", path=weights.parent / "model.json", expected="an export of format 2", hint=HINT)
    if sums is not None:
        missing, extra = sorted(set(sums) - set(tensors)), sorted(set(tensors) - set(sums))
        if missing or extra:
            raise InputError(f"tensors differ from the export (missing {missing[:3]}, unknown {extra[:3]})", path=weights, hint=HINT)
        for k in sorted(sums):
            if tensor_checksum(tensors[k]) != sums[k]:
                raise InputError("checksum mismatch", path=weights, field=k, expected=f"sha256 {sums[k][:16]}...", hint=HINT)
    for name, info in meta.get("prunable", {}).items():
        n = grid_size(info)
        union = torch.zeros(n, dtype=torch.bool)
        for pathway in meta.get("pathways", []):
            key = f"bitmap/{pathway}/{name}"
            bits = tensors.get(key)
            if bits is None or bits.dtype != torch.uint8 or bits.dim() != 1 or bits.numel() != -(-n // 8):
                got = "missing" if bits is None else f"{bits.dtype} of {tuple(bits.shape)}"
                raise InputError(f"bitmap is {got}", path=weights, field=key, expected=f"{-(-n // 8)} uint8 bytes for {n} blocks", hint=HINT)
            flat = ((bits[:, None] >> torch.arange(8, dtype=torch.uint8)) & 1).reshape(-1).bool()
            if bool(flat[n:].any()):
                raise InputError("bitmap has bits set past its block grid", path=weights, field=key, expected=f"{n} blocks", hint=HINT)
            kept = info.get("kept_blocks", {}).get(pathway)
            if kept is not None and int(flat[:n].sum()) != int(kept):
                raise InputError(f"bitmap keeps {int(flat[:n].sum())} blocks", path=weights, field=key, expected=f"{kept} (model.json)", hint=HINT)
            union |= flat[:n]
        vals = tensors.get(f"values/{name}")
        rows = info["block"][0]
        if vals is None or tuple(vals.shape) != (int(union.sum()), rows):
            got = "missing" if vals is None else tuple(vals.shape)
            raise InputError(f"values are {got}", path=weights, field=f"values/{name}",
                             expected=f"({int(union.sum())}, {rows}): one row per block kept by any pathway", hint=HINT)
