"""Self-attention whose projections are ordinary modules, so that pruned ones can run sparse.

``nn.MultiheadAttention`` multiplies by its weight tensors directly (``in_proj_weight`` and, inside
its fused kernel, ``out_proj.weight``), so replacing its ``Linear`` children changes nothing. This
module computes the same function with ``in_proj`` and ``out_proj`` as modules (an ``nn.Linear`` or
a :class:`~asr_pathways.export.sparse_linear.BlockSparseLinear`) and two batched matrix products
in between (at batch 1 on the CPU these beat ``F.scaled_dot_product_attention``'s math kernel by
~40%); it accepts the call the Conformer layer makes
(``attn(x, x, x, key_padding_mask=mask, need_weights=False) -> (out, None)``). Inference only.

>>> import torch
>>> mha = torch.nn.MultiheadAttention(16, 2, batch_first=True).eval()
>>> mine = LinearSelfAttention.from_mha(mha)
>>> x, pad = torch.randn(2, 5, 16), torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
>>> with torch.no_grad():
...     ref, _ = mha(x, x, x, key_padding_mask=pad, need_weights=False)
...     out, _ = mine(x, x, x, key_padding_mask=pad)
>>> torch.allclose(out[0], ref[0], atol=1e-5) and torch.allclose(out[1, :3], ref[1, :3], atol=1e-5)
True
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["LinearSelfAttention", "linear_copy"]


def linear_copy(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """An eval-mode ``nn.Linear`` holding copies of ``weight`` (out, in) and ``bias``."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer.eval()


class LinearSelfAttention(nn.Module):
    """Multi-head self-attention (batch first) over ``in_proj`` (d -> 3d: q, k, v) and ``out_proj``."""

    def __init__(self, in_proj: nn.Module, out_proj: nn.Module, num_heads: int, embed_dim: int) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.in_proj = in_proj
        self.out_proj = out_proj
        self.num_heads = num_heads
        self.embed_dim = embed_dim

    @classmethod
    def from_mha(
        cls, mha: nn.MultiheadAttention, make_linear: Callable[[str, torch.Tensor, torch.Tensor | None], nn.Module] | None = None
    ) -> "LinearSelfAttention":
        """From a batch-first ``nn.MultiheadAttention`` with a packed ``in_proj_weight``.

        ``make_linear(kind, weight, bias)`` builds each projection (``kind`` is "in_proj" or
        "out_proj"); the default is a plain ``nn.Linear`` holding a copy of the weights.
        """
        if not mha.batch_first or not mha._qkv_same_embed_dim or mha.in_proj_weight is None:
            raise ValueError("only batch-first self-attention with a packed in_proj_weight is supported")
        make = make_linear or (lambda _kind, w, b: linear_copy(w, b))
        in_proj = make("in_proj", mha.in_proj_weight.detach(), None if mha.in_proj_bias is None else mha.in_proj_bias.detach())
        out_bias = None if mha.out_proj.bias is None else mha.out_proj.bias.detach()
        out_proj = make("out_proj", mha.out_proj.weight.detach(), out_bias)
        return cls(in_proj, out_proj, mha.num_heads, mha.embed_dim)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None, need_weights: bool = False, **_: object,
    ) -> tuple[torch.Tensor, None]:
        """Self-attention over ``query`` (B, T, d); ``key``/``value`` are ignored (they are ``query``).
        ``key_padding_mask`` (B, T) is True at padded keys."""
        batch, frames, dim = query.shape
        heads = self.num_heads
        qkv = self.in_proj(query).view(batch, frames, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, H, T, hd)
        scores = torch.matmul(q * (dim // heads) ** -0.5, k.transpose(-1, -2))  # (B, H, T, T)
        if key_padding_mask is not None and bool(key_padding_mask.any()):
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        out = torch.matmul(scores.softmax(dim=-1), v)
        return self.out_proj(out.transpose(1, 2).reshape(batch, frames, dim)), None
