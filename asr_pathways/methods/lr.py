"""The training settings of a pruning phase: the source run's, with the phase's overrides, and the
learning-rate function the trainer follows (spans that restart at every prune), and the AdamW
state it starts with (``--optimizer-state carry``).

>>> lr = SpanSchedule(lr=1.0, steps=8, span_starts=[0, 4], warmup_steps=1, schedule="linear", final_lr_ratio=0.0)
>>> [lr(s) for s in range(8)]
[1.0, 1.0, 0.5, 0.0, 1.0, 1.0, 0.5, 0.0]
>>> lr.spans()
[{'start': 0, 'steps': 4, 'warmup_steps': 1}, {'start': 4, 'steps': 4, 'warmup_steps': 1}]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..errors import InputError
from ..train_config import TrainConfig
from .config import LR_SCHEDULES, PruneConfig

if TYPE_CHECKING:
    from ..train import Trainer
    from .phase import SourceRun


def auto_warmup(span: int, beta2: float) -> int:
    """Warm-up steps of a span of ``span`` steps when ``--warmup-steps`` is not given.

    A tenth of the span (rounded up), at most ``2 / (1 − β2)`` steps (the "untuned" linear warm-up
    for Adam of Ma & Yarats, 2021: about the window of the second-moment average; 100 steps for
    β2 = 0.98), always leaving at least one step of decay.

    >>> auto_warmup(30, 0.98), auto_warmup(120, 0.98), auto_warmup(5000, 0.98), auto_warmup(1, 0.98)
    (3, 12, 100, 0)
    """
    if span <= 1:
        return 0
    cap = round(2.0 / (1.0 - beta2)) if beta2 < 1.0 else span
    return max(0, min(math.ceil(span / 10), cap, span - 1))


@dataclass
class SpanSchedule:
    """The learning rate of a pruning phase, a function of the optimizer step alone.

    The phase's ``steps`` are cut into spans starting at ``span_starts``: ``[0]`` and every prune
    step (``--lr-schedule-scope round``: the schedule restarts after every prune, and after every
    LTH rewind, which comes with a prune), or just ``[0]`` (``phase``). In a span of ``n`` steps,
    with ``W`` warm-up steps, ``lo = final_lr_ratio · lr`` and ``k`` the step within the span::

        k < W        lr · (k + 1) / W                       linear warm-up from lr / W to the peak lr
        k >= W       lo + (lr − lo) · f(t),  t = (k − W) / (n − W − 1)   (t = 1 when n − W = 1)
                     f(t) = (1 + cos πt) / 2 (cosine), 1 − t (linear); constant: lr

    so the first step after the warm-up runs at the peak and the span's last step at ``lo``.
    ``W`` is ``warmup_steps`` (at most ``n − 1``) or, when it is None, :func:`auto_warmup`. A
    resumed phase therefore runs the same sequence.
    """

    lr: float
    steps: int
    span_starts: list[int] = field(default_factory=lambda: [0])
    warmup_steps: int | None = None  # None: auto_warmup(span, beta2)
    schedule: str = "cosine"
    final_lr_ratio: float = 0.05
    beta2: float = 0.98

    def __call__(self, step: int) -> float:
        return self.lr_at(step)

    def span_of(self, step: int) -> tuple[int, int]:
        """``(start, length)`` of the span holding optimizer step ``step``."""
        starts = sorted(set(self.span_starts) | {0})
        i = max(j for j, s in enumerate(starts) if s <= step) if step >= 0 else 0
        end = starts[i + 1] if i + 1 < len(starts) else max(self.steps, starts[i] + 1)
        return starts[i], end - starts[i]

    def warmup_of(self, span: int) -> int:
        if self.warmup_steps is None:
            return auto_warmup(span, self.beta2)
        return max(0, min(int(self.warmup_steps), span - 1))

    def lr_at(self, step: int) -> float:
        start, n = self.span_of(step)
        k = step - start
        w = self.warmup_of(n)
        if k < w:
            return self.lr * (k + 1) / w
        if self.schedule == "constant":
            return self.lr
        decay = n - w
        t = 1.0 if decay <= 1 else min(1.0, (k - w) / (decay - 1))
        lo = self.lr * self.final_lr_ratio
        if self.schedule == "linear":
            return lo + (self.lr - lo) * (1.0 - t)
        if self.schedule == "cosine":
            return lo + (self.lr - lo) * 0.5 * (1.0 + math.cos(math.pi * t))
        raise InputError(f"unknown lr_schedule {self.schedule!r}", field="--lr-schedule", expected=", ".join(LR_SCHEDULES))

    def spans(self) -> list[dict[str, int]]:
        """Every span: first step, length and warm-up steps (recorded in the phase's config.yaml)."""
        starts = sorted(s for s in set(self.span_starts) | {0} if s < max(self.steps, 1))
        out = []
        for s in starts:
            _, n = self.span_of(s)
            out.append({"start": s, "steps": n, "warmup_steps": self.warmup_of(n)})
        return out


def phase_batch_seconds(train: Mapping[str, Any], override: float | None = None) -> float:
    """Seconds of audio in one language batch of a pruning phase (or of a dense control trained like
    one): ``override`` when given, else the source run's ``train.max_duration``.

    >>> phase_batch_seconds({"max_duration": 64.0, "batching": "mixed"}), phase_batch_seconds({"max_duration": 64.0}, 16.0)
    (64.0, 16.0)
    """
    if override is not None:
        return float(override)
    return float(train.get("max_duration", TrainConfig.max_duration))


def phase_train_config(base: dict[str, Any], cfg: PruneConfig, total_steps: int, prune_steps: Iterable[int] = ()) -> tuple[TrainConfig, SpanSchedule]:
    """The source run's training settings with the pruning phase's overrides (lr, schedule, seed...),
    and the phase's learning-rate function.

    ``base`` is the source run's ``train`` section; ``prune_steps`` the steps of the phase's prune
    events (where ``--lr-schedule-scope round`` restarts the schedule). The peak is ``--lr``, else
    the source run's peak × ``--lr-factor``. A phase trains on monolingual batches of the source
    run's ``max_duration`` seconds each (:func:`phase_batch_seconds`; ``--max-duration`` sets
    another), also after a dense run on mixed-language batches: a multilingual step then holds one
    dense batch per language. Until 2026-12-03 a phase after a mixed-batch run took
    ``max_duration`` / the source run's languages (16 s for the `small` preset), and on dev its pruned
    models and dense controls stayed far behind the dense model (BENCHMARKS.md, "The phases' batch");
    ``--max-duration 16`` gives that batch back.
    The returned config's ``warmup_steps`` is the first span's (what config.yaml records).
    """
    known = {f.name for f in fields(TrainConfig)}
    d = {k: v for k, v in base.items() if k in known}
    base_lr = float(d.get("lr", TrainConfig.lr))
    d.update(steps=total_steps, warmup_steps=cfg.warmup_steps or 0, lr_schedule=cfg.lr_schedule, seed=cfg.seed, eval_every=0,
             keep_checkpoints=0)  # a phase keeps no snapshots for averaging and decodes no dev set
    d["lr"] = cfg.lr if cfg.lr is not None else base_lr * cfg.lr_factor
    if cfg.final_lr_ratio is not None:
        d["final_lr_ratio"] = cfg.final_lr_ratio
    if cfg.weight_decay is not None:
        d["weight_decay"] = cfg.weight_decay
    d["max_duration"] = phase_batch_seconds(d, cfg.max_duration)
    d["loss_warmup_steps"] = 0  # the source model is past its loss warm-up
    if cfg.language_weights is not None:
        d["language_weights"] = cfg.language_weights
    if cfg.checkpoint_every is not None:
        d["checkpoint_every"] = cfg.checkpoint_every
    d["languages_per_step"] = 1 if cfg.monolingual else cfg.languages_per_step
    d["language_loss"] = cfg.language_loss
    d["batching"] = "language"  # a pathway phase needs monolingual batches, whatever the dense run used
    tc = TrainConfig.from_dict(d, source="prune options")
    starts = [0]
    if cfg.lr_schedule_scope == "round":
        starts = sorted({0} | {int(s) for s in prune_steps if 0 < int(s) < total_steps})
    lr = SpanSchedule(lr=tc.lr, steps=tc.steps, span_starts=starts, warmup_steps=cfg.warmup_steps, schedule=tc.lr_schedule,
                      final_lr_ratio=tc.final_lr_ratio, beta2=float(tc.betas[1]))
    tc.warmup_steps = lr.warmup_of(lr.span_of(0)[1])
    return tc, lr


def carry_optimizer_state(trainer: Trainer, source: SourceRun) -> None:
    """``--optimizer-state carry``: load the source run's AdamW state (moments and step counts) into
    ``trainer``'s fresh optimizer, keeping the phase's own hyper-parameters (weight decay, betas, lr).

    Every coordinate starts with the moments of its last dense update. Coordinates outside the
    masks keep them unchanged while frozen (the masked Adam step of the pathway engine leaves a
    frozen coordinate's moments as they are) and resume with them if an adaptation revives them;
    ``zero_trainable`` zeroes the moments of the weights it zeroes, as with fresh moments.
    """
    from ..checkpoint import Checkpoint, restore_optimizer

    if not source.optimizer or "optimizer" not in source.meta:
        raise InputError(
            "the --from run's checkpoint holds no optimizer state to carry", path=source.path,
            expected="a checkpoint written by asr-pathways train", hint="Use --optimizer-state fresh",
        )
    hyper = [{k: v for k, v in g.items() if k != "params"} for g in trainer.optimizer.param_groups]
    try:
        restore_optimizer(trainer.model, trainer.optimizer, Checkpoint(model={}, meta=source.meta, optimizer=source.optimizer))
    except (KeyError, ValueError) as e:
        raise InputError(f"the --from run's optimizer state does not fit this model: {e}", path=source.path,
                         hint="Use --optimizer-state fresh") from None
    for g, h in zip(trainer.optimizer.param_groups, hyper):
        g.update(h)
