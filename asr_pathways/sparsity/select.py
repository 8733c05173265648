"""Which parameters are prunable (name patterns) and how they are grouped in reports.

Patterns are shell-style (``fnmatch``, ``*`` matches dots too) or regular expressions written as
``"re:<regex>"`` (matched with ``re.search``). A parameter is prunable when its name matches an
``include`` pattern, matches no ``exclude`` pattern, and its shape fits ``shapes``:

- ``"matrix"`` (default): a 2-D weight, or a conv weight whose kernel dimensions are all 1
  (a pointwise convolution is a matrix multiply);
- ``"any"``: any weight with at least 2 dimensions (conv weights are pruned as the 2-D matrix
  ``(out, in * k...)``).

The defaults fit any model: its weight matrices (Linear, attention and LSTM/GRU weights); not
biases, norms (1-D anyway) or embeddings. A model family adds its own exclusions on top:
:mod:`asr_pathways.asr.prunable` leaves out the speech model's front-end and CTC head.

>>> import torch.nn as nn
>>> m = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
>>> list(prunable_parameters(m))
['0.weight', '2.weight']
>>> list(prunable_parameters(m, exclude=["2.*"]))
['0.weight']
"""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable, Sequence

import torch
from torch import nn

__all__ = [
    "DEFAULT_INCLUDE",
    "DEFAULT_EXCLUDE",
    "DEFAULT_GROUPS",
    "match_any",
    "prunable_parameters",
    "prunable_names",
    "group_of",
    "parameter_groups",
]

DEFAULT_INCLUDE: tuple[str, ...] = (
    "*weight",  # Linear / Conv / MultiheadAttention.out_proj.weight
    "*in_proj_weight",  # MultiheadAttention packed q, k, v
    "*weight_ih_l*",  # LSTM / GRU / RNN, every layer and direction
    "*weight_hh_l*",
)
DEFAULT_EXCLUDE: tuple[str, ...] = (
    "*embed*",  # token embeddings and positional embeddings
    "*norm*",
    "*bias*",
    "*weight_hr_l*",  # LSTM projections are allowed by pattern only when asked for
)

# (group, patterns): the first group with a matching pattern wins
DEFAULT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("encoder.attn", ("encoder.*attn*", "encoder.*attention*")),
    ("encoder.ff", ("encoder.*ff*", "encoder.*feed_forward*", "encoder.*mlp*")),
    ("encoder.conv", ("encoder.*conv*",)),
    ("encoder.other", ("encoder.*",)),
    ("predictor", ("predictor.*", "decoder.*")),
    ("joiner", ("joiner.*", "joint.*")),
    ("other", ("*",)),
)


def _match(pattern: str, name: str) -> bool:
    if pattern.startswith("re:"):
        return re.search(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


def match_any(name: str, patterns: Iterable[str]) -> bool:
    """True when ``name`` matches one of ``patterns`` (fnmatch, or ``re:`` regex)."""
    return any(_match(p, name) for p in patterns)


def _shape_ok(p: torch.Tensor, shapes: str) -> bool:
    if shapes == "any":
        return p.dim() >= 2
    if shapes == "matrix":
        return p.dim() == 2 or (p.dim() > 2 and all(s == 1 for s in p.shape[2:]))
    raise ValueError(f"shapes {shapes!r}: expected 'matrix' or 'any'")


def prunable_parameters(
    model: nn.Module,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    shapes: str = "matrix",
) -> dict[str, nn.Parameter]:
    """Name -> parameter of every prunable weight of ``model``, in ``named_parameters()`` order.

    ``include=None`` / ``exclude=None`` use :data:`DEFAULT_INCLUDE` / :data:`DEFAULT_EXCLUDE`; pass
    ``exclude=[]`` to exclude nothing. Shared (tied) parameters appear once, under their first name.
    """
    inc = DEFAULT_INCLUDE if include is None else tuple(include)
    exc = DEFAULT_EXCLUDE if exclude is None else tuple(exclude)
    out: dict[str, nn.Parameter] = {}
    for name, p in model.named_parameters():
        if match_any(name, inc) and not match_any(name, exc) and _shape_ok(p, shapes):
            out[name] = p
    return out


def prunable_names(model: nn.Module, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None, shapes: str = "matrix") -> list[str]:
    return list(prunable_parameters(model, include, exclude, shapes))


def group_of(name: str, groups: Sequence[tuple[str, Sequence[str]]] | None = None) -> str:
    """The report group of a parameter name (first matching group of ``groups``; default
    :data:`DEFAULT_GROUPS`; ``"other"`` when nothing matches).

    >>> group_of("encoder.layers.3.self_attn.in_proj_weight"), group_of("predictor.lstm.weight_hh_l0")
    ('encoder.attn', 'predictor')
    """
    for g, pats in groups if groups is not None else DEFAULT_GROUPS:
        if match_any(name, pats):
            return g
    return "other"


def parameter_groups(names: Iterable[str], groups: Sequence[tuple[str, Sequence[str]]] | None = None) -> dict[str, str]:
    """Name -> group for every name."""
    return {n: group_of(n, groups) for n in names}
