"""Conv2d 4x (or 8x) subsampling and a Conformer encoder (macaron FFN, MHSA, depthwise conv module).

Padded frames never influence valid frames: the subsampling zeroes padded frames between its
convolutions, attention masks padded keys, and the convolution module zeroes padded frames before
its depthwise convolution. An utterance therefore encodes the same alone or in a padded batch
(up to float rounding). Every norm is a LayerNorm, which behaves identically on every DDP rank
(no running statistics).

Dropout sits on the residual branches (and the input) only, not inside the feed-forward modules
or on attention weights: on a 2-core CPU the dropout masks' random numbers took ~24% of a
``small`` bf16 training step with dropout at every usual site, ~5% at these.

Pointwise convolutions are written as ``nn.Linear`` so that every weight matrix a pruning method
may want is a 2-D ``weight`` of a Linear (or LSTM) layer; attention uses ``nn.MultiheadAttention``
(``self_attn.in_proj_weight`` and ``self_attn.out_proj.weight``).
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["Conv2dSubsampling", "ConformerEncoder", "ConformerLayer", "lengths_to_padding_mask"]


def lengths_to_padding_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Bool mask (B, max_length), True at padded positions.

    >>> lengths_to_padding_mask(torch.tensor([1, 3]), 3).tolist()
    [[False, True, True], [False, False, False]]
    """
    return torch.arange(max_length, device=lengths.device)[None, :] >= lengths[:, None]


def subsampled_lengths(lengths: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Frames after two stride-2 convolutions with kernel 3 and padding 1: ceil(ceil(L/2)/2); with
    ``factor=8`` also after stacking pairs of those frames: ceil(that/2).

    >>> subsampled_lengths(torch.tensor([1, 8, 9, 17]), 8).tolist()
    [1, 1, 2, 3]
    """
    half = torch.div(lengths + 1, 2, rounding_mode="floor")
    quarter = torch.div(half + 1, 2, rounding_mode="floor")
    if factor == 4:
        return quarter
    return torch.div(quarter + 1, 2, rounding_mode="floor")


class Conv2dSubsampling(nn.Module):
    """Two 3x3 stride-2 Conv2d layers (ReLU) over (time, frequency), then a Linear to ``d_model``.

    (B, T, F) -> (B, ceil(T/4), d_model). With ``factor=8``, pairs of consecutive 40 ms frames
    are stacked before the Linear (as frame stacking does in FastConformer-style 8x front-ends):
    (B, ceil(T/8), d_model) at 80 ms per frame, which halves the encoder's and joiner's work.
    Padded frames are zeroed before stacking, so an utterance encodes the same alone or padded.

    >>> sub = Conv2dSubsampling(80, 4, 16, factor=8)
    >>> x, n = sub(torch.randn(2, 100, 80), torch.tensor([100, 60]))
    >>> tuple(x.shape), n.tolist()
    ((2, 13, 16), [13, 8])
    """

    FACTORS = (4, 8)

    def __init__(self, feature_dim: int, channels: int, d_model: int, factor: int = 4) -> None:
        super().__init__()
        if factor not in self.FACTORS:
            raise ValueError(f"subsampling factor must be one of {self.FACTORS}, got {factor}")
        self.factor = factor
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)
        reduced = ((feature_dim + 1) // 2 + 1) // 2
        stack = factor // 4
        self.proj = nn.Linear(channels * reduced * stack, d_model)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = features.unsqueeze(1)  # (B, 1, T, F)
        half_lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
        x = torch.relu(self.conv1(x))
        x = x.masked_fill(lengths_to_padding_mask(half_lengths, x.shape[2])[:, None, :, None], 0.0)
        x = torch.relu(self.conv2(x))
        batch, channels, frames, freq = x.shape
        x = x.transpose(1, 2).reshape(batch, frames, channels * freq)
        if self.factor == 8:
            quarter_lengths = subsampled_lengths(lengths, 4)
            x = x.masked_fill(lengths_to_padding_mask(quarter_lengths, frames)[:, :, None], 0.0)
            # no Python branch on the length, so that a traced (ONNX) graph handles odd and even lengths
            pairs = (frames + 1) // 2
            x = nn.functional.pad(x, (0, 0, 0, 1))[:, : 2 * pairs]
            x = x.reshape(batch, pairs, 2 * channels * freq)
        return self.proj(x), subsampled_lengths(lengths, self.factor)


def sinusoidal_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Absolute sinusoidal position encodings (length, dim) as in Vaswani et al."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)[:, : dim // 2]
    return table.to(dtype)


def attention_backends(device: torch.device) -> contextlib.AbstractContextManager:
    """On CPU, the plain (math) attention kernel: for these short sequences its backward was ~10%
    of a ``small`` training step faster than the CPU flash kernel. Elsewhere torch chooses."""
    if device.type == "cpu":
        return sdpa_kernel([SDPBackend.MATH])
    return contextlib.nullcontext()


class FeedForward(nn.Module):
    """LayerNorm -> Linear(d, ff*d) -> SiLU -> Linear(ff*d, d) -> Dropout (on the residual branch only)."""

    def __init__(self, d_model: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_model * ff_mult)
        self.linear2 = nn.Linear(d_model * ff_mult, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.linear2(nn.functional.silu(self.linear1(self.norm(x)))))


class ConvModule(nn.Module):
    """LayerNorm -> pointwise (Linear d->2d) + GLU -> depthwise Conv1d -> LayerNorm -> SiLU ->
    pointwise (Linear d->d) -> Dropout. Padded frames are zeroed before the depthwise conv."""

    def __init__(self, d_model: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"conv_kernel must be odd, got {kernel_size}")
        self.norm = nn.LayerNorm(d_model)
        self.pointwise1 = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.depthwise_norm = nn.LayerNorm(d_model)
        self.pointwise2 = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        x = nn.functional.glu(self.pointwise1(self.norm(x)), dim=-1)
        x = x.masked_fill(padding_mask[..., None], 0.0)
        x = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        x = nn.functional.silu(self.depthwise_norm(x))
        return self.dropout(self.pointwise2(x))


class ConformerLayer(nn.Module):
    """x + FFN/2 -> x + MHSA -> x + Conv -> x + FFN/2 -> LayerNorm (Gulati et al., 2020)."""

    def __init__(self, d_model: int, num_heads: int, ff_mult: int, conv_kernel: int, dropout: float) -> None:
        super().__init__()
        self.ff1 = FeedForward(d_model, ff_mult, dropout)
        self.attn_norm = nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=0.0, batch_first=True)
        self.attn_dropout = nn.Dropout(dropout)
        self.conv = ConvModule(d_model, conv_kernel, dropout)
        self.ff2 = FeedForward(d_model, ff_mult, dropout)
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ff1(x)
        h = self.attn_norm(x)
        with attention_backends(h.device):
            h, _ = self.self_attn(h, h, h, key_padding_mask=padding_mask, need_weights=False)
        x = x + self.attn_dropout(h)
        x = x + self.conv(x, padding_mask)
        x = x + 0.5 * self.ff2(x)
        return self.final_norm(x)


class ConformerEncoder(nn.Module):
    """Sinusoidal absolute positions added to the subsampled input, then ``num_layers`` Conformer layers.

    ``scale_input`` multiplies the input by sqrt(d_model) first (the Transformer/ESPnet habit). It is
    off by default: on this corpus the unscaled input left the CTC plateau far sooner (BENCHMARKS.md).

    ``forward(x (B, T, d), lengths (B,)) -> (B, T, d)``; padded frames of the output are zero.
    """

    def __init__(
        self,
        d_model: int,
        num_layers: int,
        num_heads: int,
        ff_mult: int,
        conv_kernel: int,
        dropout: float,
        scale_input: bool = False,
    ) -> None:
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.d_model = d_model
        self.input_scale = math.sqrt(d_model) if scale_input else 1.0
        self.input_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            ConformerLayer(d_model, num_heads, ff_mult, conv_kernel, dropout) for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        padding_mask = lengths_to_padding_mask(lengths, x.shape[1])
        x = x * self.input_scale + sinusoidal_positions(x.shape[1], self.d_model, x.device, x.dtype)
        x = self.input_dropout(x)
        for layer in self.layers:
            x = layer(x, padding_mask)
        return x.masked_fill(padding_mask[..., None], 0.0)
