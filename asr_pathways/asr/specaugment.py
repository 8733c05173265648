"""SpecAugment (Park et al., 2019): frequency and time masks, seeded by a ``torch.Generator``.

Applied by the trainer to raw log-mel features before the model. Masked values are filled with
the utterance's per-dimension mean over valid frames, which the model's input normalisation maps
to about 0 (raw log-mel 0 would be a loud value). Time-mask widths are proportional to each
utterance's length; padded frames are left untouched. All random numbers come from the generator
passed in (drawn on the CPU), so a resumed run that restores the generator state masks the same way.

>>> aug = SpecAugment(num_freq_masks=1, freq_mask_width=10, num_time_masks=2, time_mask_fraction=0.1)
>>> x = torch.randn(2, 100, 80)
>>> y1 = aug(x, torch.tensor([100, 60]), torch.Generator().manual_seed(0))
>>> y2 = aug(x, torch.tensor([100, 60]), torch.Generator().manual_seed(0))
>>> torch.equal(y1, y2), torch.equal(y1[1, 60:], x[1, 60:])
(True, True)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SpecAugment"]


class SpecAugment(nn.Module):
    """Frequency and time masking.

    Args:
        num_freq_masks: frequency masks per utterance; each covers ``[0, freq_mask_width]`` bins.
        freq_mask_width: the largest frequency mask width F.
        num_time_masks: time masks per utterance.
        time_mask_fraction: the largest time mask width as a fraction of the utterance's length.
        max_time_mask_width: an absolute cap on time mask width, in frames (None: no cap).

    Defaults are moderate (two 15-bin frequency masks, five time masks of up to 4% of the length
    each): the small CPU models train for minutes, and stronger masking slows early learning.
    ``forward`` is a no-op in eval mode.
    """

    def __init__(
        self,
        num_freq_masks: int = 2,
        freq_mask_width: int = 15,
        num_time_masks: int = 5,
        time_mask_fraction: float = 0.04,
        max_time_mask_width: int | None = None,
    ) -> None:
        super().__init__()
        if num_freq_masks < 0 or num_time_masks < 0 or freq_mask_width < 0 or not 0 <= time_mask_fraction <= 1:
            raise ValueError("mask counts and widths must be >= 0 and time_mask_fraction in [0, 1]")
        self.num_freq_masks = num_freq_masks
        self.freq_mask_width = freq_mask_width
        self.num_time_masks = num_time_masks
        self.time_mask_fraction = time_mask_fraction
        self.max_time_mask_width = max_time_mask_width

    def extra_repr(self) -> str:
        return (
            f"freq_masks={self.num_freq_masks}x{self.freq_mask_width}, "
            f"time_masks={self.num_time_masks}x{self.time_mask_fraction:g}*len"
        )

    @staticmethod
    def _band_mask(
        size: int, limit: torch.Tensor, max_width: torch.Tensor, count: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """(B, size) bool: ``count`` bands per row, width uniform in [0, max_width], start in [0, limit - width]."""
        batch = limit.shape[0]
        if count == 0:
            return torch.zeros(batch, size, dtype=torch.bool)
        width = (torch.rand(batch, count, generator=generator) * (max_width[:, None] + 1).float()).floor().long()
        width = torch.minimum(width, limit[:, None])
        start = (torch.rand(batch, count, generator=generator) * (limit[:, None] - width + 1).float()).floor().long()
        position = torch.arange(size)[None, None, :]
        inside = (position >= start[..., None]) & (position < (start + width)[..., None])
        return inside.any(dim=1)

    def forward(
        self, features: torch.Tensor, feature_lens: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Masked copy of ``features`` (B, T, F); ``feature_lens`` (B,) valid frames."""
        if not self.training:
            return features
        batch, frames, dims = features.shape
        lengths = feature_lens.detach().cpu().long().clamp(max=frames)
        freq = self._band_mask(
            dims, torch.full((batch,), dims), torch.full((batch,), min(self.freq_mask_width, dims)),
            self.num_freq_masks, generator,
        )
        time_width = (lengths.double() * self.time_mask_fraction).floor().long()
        if self.max_time_mask_width is not None:
            time_width = time_width.clamp(max=self.max_time_mask_width)
        time = self._band_mask(frames, lengths, time_width, self.num_time_masks, generator)
        mask = (freq[:, None, :] | time[:, :, None]).to(features.device)
        valid = torch.arange(frames)[None, :] < lengths[:, None]
        valid_f = valid.to(features.device, features.dtype)[..., None]
        mean = (features * valid_f).sum(1, keepdim=True) / lengths.clamp(min=1).to(features.device, features.dtype)[
            :, None, None
        ]
        mask = mask & valid.to(features.device)[..., None]
        return torch.where(mask, mean.expand_as(features), features)
