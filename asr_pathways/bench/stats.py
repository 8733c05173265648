"""The statistics of the claims table: pure functions of numbers, no runs read here.

- :func:`relative_reductions`: per-seed ``(WER_base − WER_method) / WER_base``.
- :func:`t_interval`: Student-t interval of the mean of per-seed values (seed-level variance);
  ``None`` with fewer than two seeds (there is no seed-level interval then).
- :func:`wider`: the wider of two intervals (the verdict uses the wider of the seed-level t-interval
  and the paired bootstrap over utterances and seeds, :func:`asr_pathways.report.paired_bootstrap`).
- :func:`verdict`: the rule of the claims table (docs/method.md, "Statistics of the benchmark").
- :func:`union_matched_sparsity`: the per-language sparsity whose union matches a deployed size.

>>> lo, hi = t_interval([0.01, 0.03, 0.02])
>>> round(lo, 4), round(hi, 4)
(-0.0048, 0.0448)
>>> t_interval([0.05]) is None
True
>>> wider((0.0, 0.1), (-0.01, 0.05))
(0.0, 0.1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

Interval = tuple[float, float]

DENSE_MAX_WER = 0.25  # the dense model must be at most this WER for a verdict
WITHIN_DENSE = 0.25  # every compared model within this relative gap of the dense model
APPROX_MARGIN = 0.05  # "about the WER of": the method is not worse than the baseline by more than this (relative)


def relative_reductions(base: Sequence[float], method: Sequence[float]) -> list[float]:
    """Per-seed relative WER reduction of ``method`` over ``base`` (NaN where the base WER is 0).

    >>> relative_reductions([4.0, 2.0], [2.0, 3.0])
    [0.5, -0.5]
    """
    if len(base) != len(method):
        raise ValueError(f"relative_reductions: {len(base)} base values against {len(method)} method values")
    return [(b - m) / b if b > 0 else math.nan for b, m in zip(base, method)]


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval | None:
    """Student-t confidence interval of the mean of ``values`` (NaNs dropped); ``None`` for fewer than 2."""
    from scipy.stats import t

    v = [float(x) for x in values if not math.isnan(float(x))]
    n = len(v)
    if n < 2:
        return None
    mean = sum(v) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def wider(a: Interval | None, b: Interval | None) -> Interval | None:
    """The interval of ``a`` and ``b`` with the larger width (the one present if only one is)."""
    if a is None or b is None:
        return a if b is None else b
    return a if (a[1] - a[0]) >= (b[1] - b[0]) else b


@dataclass(frozen=True)
class Gate:
    """Whether the models are good enough for a verdict: the dense WER and each arm's gap to it."""

    dense_wer: float
    base_wer: float
    method_wer: float

    def reasons(self) -> list[str]:
        """Why a verdict cannot be given at this budget (empty: it can)."""
        out = []
        if math.isnan(self.dense_wer):
            return ["no evaluation of the dense model"]
        if not self.dense_wer <= DENSE_MAX_WER:
            out.append(f"dense WER {100 * self.dense_wer:.1f}% > {100 * DENSE_MAX_WER:.0f}%")
        for name, w in (("baseline", self.base_wer), ("method", self.method_wer)):
            gap = (w - self.dense_wer) / self.dense_wer if self.dense_wer > 0 else math.inf
            if not gap <= WITHIN_DENSE:
                out.append(f"{name} {100 * gap:+.0f}% from dense (limit +{100 * WITHIN_DENSE:.0f}%)")
        return out


def verdict(interval: Interval | None, t_int: Interval | None, gate: Gate | None, kind: str = "better") -> str:
    """The claims table's verdict.

    ``interval``: the interval the verdict uses (the wider of ``t_int`` and the bootstrap's);
    ``t_int``: the seed-level t-interval (``None`` with one seed); ``kind``: ``better`` (the method
    beats the baseline), ``approx`` (the method is not worse than the baseline by more than
    ``APPROX_MARGIN``), or ``control`` (no claim: which side of 0 the interval lies on, if either). "reproduced"/"contradicted" need a seed-level
    interval, an interval that decides, and models good enough (:class:`Gate`); otherwise the claim is
    "not measurable at this budget", with the reason.

    >>> g = Gate(0.20, 0.22, 0.21)
    >>> verdict((0.01, 0.05), (0.01, 0.05), g), verdict((-0.05, -0.01), (-0.05, -0.01), g)
    ('reproduced', 'contradicted')
    >>> verdict((0.01, 0.05), None, g)
    'not measurable at this budget (one seed: no seed-level interval)'
    >>> verdict((0.01, 0.05), (0.01, 0.05), Gate(0.30, 0.31, 0.30))
    'not measurable at this budget (dense WER 30.0% > 25%)'
    >>> verdict((-0.02, 0.03), (-0.02, 0.03), g), verdict((-0.02, 0.03), (-0.02, 0.03), g, "approx")
    ('not measurable at this budget (interval contains 0)', 'reproduced')
    >>> verdict((-0.75, -0.67), (-0.75, -0.67), g, "control"), verdict((-0.02, 0.03), None, None, "control")
    ('control: more errors than the baseline', 'control: no difference shown')
    """
    if kind == "control":
        if interval is None or any(math.isnan(x) for x in interval):
            return "control"
        lo, hi = interval
        return ("control: fewer errors than the baseline" if lo > 0 else
                "control: more errors than the baseline" if hi < 0 else "control: no difference shown")
    reasons = [] if gate is None else gate.reasons()
    if t_int is None:
        reasons.insert(0, "one seed: no seed-level interval")
    if interval is None or any(math.isnan(x) for x in interval):
        reasons.append("no interval")
    if reasons:
        return f"not measurable at this budget ({'; '.join(reasons)})"
    assert interval is not None
    lo, hi = interval
    if kind == "approx":
        if lo > -APPROX_MARGIN:
            return "reproduced"
        if hi < -APPROX_MARGIN:
            return "contradicted"
        return f"not measurable at this budget (interval reaches below −{100 * APPROX_MARGIN:.0f}%)"
    if lo > 0:
        return "reproduced"
    if hi < 0:
        return "contradicted"
    return "not measurable at this budget (interval contains 0)"


def union_matched_sparsity(curve: dict[float, float], target_union: float) -> float | None:
    """The per-language sparsity whose union sparsity equals ``target_union``, by linear interpolation.

    ``curve``: per-language sparsity → union sparsity of the pathways at that level (from the masks an
    IMP/LTH run saved at every level). Extrapolates from the last two points beyond the curve; ``None``
    with fewer than two points.

    >>> union_matched_sparsity({0.5: 0.40, 0.7: 0.60}, 0.65)
    0.75
    """
    pts = sorted(curve.items())
    if len(pts) < 2:
        return None
    for (s0, u0), (s1, u1) in zip(pts, pts[1:]):
        if min(u0, u1) <= target_union <= max(u0, u1) and u1 != u0:
            return round(s0 + (target_union - u0) * (s1 - s0) / (u1 - u0), 4)
    (s0, u0), (s1, u1) = (pts[-2], pts[-1]) if target_union > pts[-1][1] else (pts[0], pts[1])
    if u1 == u0:
        return None
    return round(s0 + (target_union - u0) * (s1 - s0) / (u1 - u0), 4)
