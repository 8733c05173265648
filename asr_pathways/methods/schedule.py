"""When things happen in a pruning phase: the sparsity levels of the rounds and the events.

An :class:`Event` is something a recipe does to the masks or weights after ``step`` optimizer
steps (``init``, ``snapshot``, ``adapt``, ``prune``, ``finalize``). A phase checkpoints right after
each event with the number of events done, so an interrupted run resumes mid-schedule
(:meth:`asr_pathways.methods.phase.Phase.pending`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..errors import InputError


def next_sparsity(s: float, p: float, mode: str, target: float) -> float:
    """One prune step: ``s + p`` (absolute) or ``s + p (1 - s)`` (fraction), capped at the target."""
    nxt = s + p if mode == "absolute" else s + p * (1.0 - s)
    return round(min(nxt, target), 10)


def sparsity_levels(start: float, target: float, p: float, mode: str = "absolute") -> list[float]:
    """The sparsity of every round: ``[start, ..., target]`` (just ``[target]`` when they are equal).

    >>> sparsity_levels(0.0, 0.3, 0.1)
    [0.0, 0.1, 0.2, 0.3]
    >>> sparsity_levels(0.5, 0.7, 0.5, "fraction")
    [0.5, 0.7]
    """
    levels = [round(start, 10)]
    while levels[-1] < target - 1e-9:
        levels.append(next_sparsity(levels[-1], p, mode, target))
        if len(levels) > 10_000:
            raise InputError("the prune step is too small to reach the target", field="--prune-step")
    return levels


@dataclass(frozen=True)
class Event:
    """Something a recipe does to masks or weights after ``step`` optimizer steps."""

    index: int
    step: int
    kind: str  # init | snapshot | adapt | prune | finalize
    sparsity: float  # the level this event leaves the masks at
    round: int


@dataclass
class Schedule:
    events: list[Event]
    total_steps: int

    def describe(self) -> str:
        kinds = [e.kind for e in self.events]
        return f"{self.total_steps} steps, " + ", ".join(f"{k} x{kinds.count(k)}" for k in dict.fromkeys(kinds))


def build_schedule(
    levels: list[float],
    round_steps: int,
    adapt_at: Iterable[int] = (),
    *,
    snapshot_step: int | None = None,
    finalize: bool = False,
    final_round: bool = True,
    final_steps: int | None = None,
    final_adapt: bool = True,
) -> Schedule:
    """Rounds of ``round_steps`` (T): adaptations at ``adapt_at`` within each round, a prune at
    the end of every round but the last (to the next level), then a final round (adaptations, no
    prune). ``snapshot_step``: save a rewind point then. ``finalize``: one more selection at the end
    (``zero_trainable``: the final model is exactly sparse). ``final_steps``: the length of the final
    round (default T); ``final_adapt=False``: no adaptation in it, so the final mask is the one the
    last prune chose and it trains for the whole final round, as IMP's does (step-matched arms).

    >>> s = build_schedule([0.5, 0.6], 4, [2])
    >>> [(e.step, e.kind, e.sparsity) for e in s.events], s.total_steps
    ([(0, 'init', 0.5), (2, 'adapt', 0.5), (4, 'prune', 0.6), (6, 'adapt', 0.6)], 8)
    >>> s = build_schedule([0.5, 0.6], 4, [2], final_steps=6, final_adapt=False)
    >>> [(e.step, e.kind) for e in s.events], s.total_steps
    ([(0, 'init'), (2, 'adapt'), (4, 'prune')], 10)
    """
    raw: list[tuple[int, int, str, float, int]] = [(0, 0, "init", levels[0], 0)]
    if snapshot_step is not None:
        raw.append((snapshot_step, 1, "snapshot", levels[0], 0))
    n_rounds = len(levels) if final_round else len(levels) - 1
    last_len = round_steps if final_steps is None or not final_round else final_steps
    for r in range(n_rounds):
        last = final_round and r == n_rounds - 1
        if not (last and not final_adapt):
            for n in sorted(set(adapt_at)):
                if n < (last_len if last else round_steps):
                    raw.append((r * round_steps + n, 2, "adapt", levels[r], r))
        if r + 1 < len(levels):
            raw.append(((r + 1) * round_steps, 3, "prune", levels[r + 1], r))
    total = (n_rounds - 1) * round_steps + last_len if n_rounds else 0
    if finalize:
        raw.append((total, 4, "finalize", levels[-1], n_rounds - 1))
    raw.sort(key=lambda t: (t[0], t[1]))
    return Schedule([Event(i, st, k, s, r) for i, (st, _, k, s, r) in enumerate(raw)], total)


def final_mask_steps(schedule: Schedule) -> int:
    """Steps trained after the last event that set a mask (init, adapt, prune, finalize): the steps at the final mask.

    >>> final_mask_steps(build_schedule([0.5, 0.7], 10, [5])), final_mask_steps(build_schedule([0.5, 0.7], 10, [5], final_adapt=False))
    (5, 10)
    """
    last = max((e.step for e in schedule.events if e.kind != "snapshot"), default=0)
    return schedule.total_steps - last


def fixed_schedule(sparsity: float, steps: int) -> Schedule:
    """Masks set once, then ``steps`` steps of training (ASR Pathways)."""
    return Schedule([Event(0, 0, "init", sparsity, 0)], steps)
