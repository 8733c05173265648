"""Batch shapes: padding a batch up to multiples of a frame and a label count.

Used by the trainer when ``train.frame_multiple`` or ``train.token_multiple`` is above 1
(benchmarks/train_speed.py times it against the unpadded batches).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .batches import Batch


def pad_to_multiples(batch: Batch, frames: int = 1, tokens: int = 1) -> Batch:
    """``batch`` with its frame count padded up to a multiple of ``frames`` and its label count up to a
    multiple of ``tokens`` (zeros; the lengths are unchanged, so the model and the losses, which mask by
    length, compute the same values up to float rounding). Fewer distinct batch shapes: the CPU kernels
    prepare a new primitive for every new shape (``train.frame_multiple``, ``train.token_multiple``).

    >>> b = Batch("en", torch.ones(2, 5, 80), torch.tensor([5, 3]), torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 1]), ["a", "b"], ["1", "2"])
    >>> p = pad_to_multiples(b, frames=4, tokens=2)
    >>> tuple(p.features.shape), tuple(p.tokens.shape), p.feature_lens.tolist(), float(p.features[:, 5:].abs().sum())
    ((2, 8, 80), (2, 4), [5, 3], 0.0)
    """
    T, U = batch.features.shape[1], batch.tokens.shape[1]
    T2, U2 = -(-T // max(1, frames)) * max(1, frames), -(-U // max(1, tokens)) * max(1, tokens)
    if (T2, U2) == (T, U):
        return batch
    return replace(batch, features=torch.nn.functional.pad(batch.features, (0, 0, 0, T2 - T)),
                   tokens=torch.nn.functional.pad(batch.tokens, (0, U2 - U)))
