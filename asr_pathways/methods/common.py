"""Pieces every pruning recipe shares: options, the event schedule, one training phase, mask files,
history, cost and evaluation.

A recipe (``imp.py``, ``lth.py`` ...) is short: it builds a :class:`Schedule` of events (``init``,
``snapshot``, ``adapt``, ``prune``, ``finalize``) and says what each event does to the masks; a
:class:`Phase` trains between the events and checkpoints right after each one (with the index of
the next event in ``recipe_state``), so that an interrupted run resumes mid-schedule and ends with
the same masks and weights as an uninterrupted one.

Run folder written by ``asr-pathways prune ... --out runs/NAME``::

    runs/NAME/
      prune.json                       the PruneConfig (and the command) of the run
      history.jsonl                    one row per pathway changed by an event (init/adapt/prune/finalize;
                                       "scores": own-updates or shared)
      cost.json                        optimizer steps, wall/train/mask/eval seconds, pruning rounds, upstream
      masks/{lang}.safetensors         the final mask of every language (LAP: the shared mask, copied)
      masks/shared.safetensors         LAP only: the one mask of every language
      masks/{pathway}/sparsity_0.50.safetensors   the mask at every sparsity level reached (the last
                                       one at that level), for ``--masks-from runs/NAME --init-sparsity 0.5``
      masks_summary.json               final sparsity per pathway and group, union sparsity, pairwise IoU
      wer_{split}.json / .md, hyps_{split}.jsonl   the WER table (per language + average)
      # multilingual methods (lap, pathways, dynamic): runs/NAME is itself a run folder
      config.yaml  tokenizer.model  checkpoint.safetensors (+ .json)  metrics.jsonl  tensorboard/
      rewind.safetensors               LTH-style runs: the rewind point
      score_state_step{S}_ev{E}.safetensors   dynamic with --scores own-updates: θ_ref and every Δ_l
                                       (methods/scores.py), named by the checkpoint's recipe_state
      # monolingual methods (imp, lth, adaptive): one complete run folder per language
      lang/{lang}/config.yaml  tokenizer.model  checkpoint.safetensors  metrics.jsonl  wer_{split}.*

Under ``torchrun`` (DDP) every rank trains, masks are broadcast from rank 0 at every event, and
rank 0 alone writes these files and evaluates.

Every folder holding a ``checkpoint.safetensors`` loads with :func:`asr_pathways.runs.load_run` and
evaluates with ``asr-pathways evaluate`` (its masks are named by language, or ``shared``).
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from ..errors import InputError
from ..train import TrainConfig, Trainer
from .scores import SCORE_STATE_PREFIX, SCORES, UpdateAttribution

METHODS = ("imp", "lth", "lap", "pathways", "adaptive", "dynamic")
MONOLINGUAL_METHODS = ("imp", "lth", "adaptive")
FROM_MASKS_METHODS = ("pathways", "adaptive", "dynamic")
CANDIDATE_SETS = ("own+residual", "all", "own")
PRUNED_WEIGHTS = ("keep_values", "zero_trainable")
LR_SCHEDULES = ("cosine", "linear", "constant")
LR_SCOPES = ("round", "phase")
OPTIMIZER_STATES = ("fresh", "carry")
SHARED = "shared"
REWIND_NAME = "rewind.safetensors"


class StopRequested(Exception):
    """Raised after ``stop_after_events`` events (to test and demonstrate resuming)."""


# ------------------------------------------------------------------------------------ options
@dataclass
class PruneConfig:
    """Every option of every method (METHOD.md names them); unused ones are ignored by a method."""

    method: str
    source: str  # --from: the dense multilingual run (θ_ML); may hold "{lang}" for monolingual methods
    out: str
    languages: list[str] = field(default_factory=list)  # empty: the source run's languages
    target: float = 0.7
    init_sparsity: float | None = None  # start level; default 0 (imp/lth/lap) or the target (others)
    masks_from: str | None = None  # a prune run whose masks/{lang|shared}/sparsity_*.safetensors start us
    prune_step: float = 0.1  # p
    prune_step_mode: str = "absolute"  # absolute: s + p | fraction: s + p (1 - s)
    round_steps: int = 200  # T
    adapt_at: list[int] = field(default_factory=list)  # n (several: several adaptations per round); default [T // 2]
    steps: int | None = None  # pathways (fixed masks): training steps; default T
    lap_base: str = "lth"  # lap: imp | lth
    rewind_step: int = 0  # lth / lap-lth: rewind point = weights after this many steps (0: θ_ML)
    block: str = "8x1"
    norm: str = "l2"
    scope: str = "layer"
    candidates: str = "own+residual"  # adaptive / dynamic: own+residual | all | own
    prune_candidates: str = "same"  # adaptive / dynamic: the prune chooses among the same set, or "own" (mask only shrinks)
    scores: str | None = None  # adaptive / dynamic: own-updates | shared (default: own-updates for dynamic, else shared)
    pruned_weights: str = "keep_values"  # keep_values | zero_trainable (single mask only)
    include: list[str] | None = None  # prunable-parameter name patterns (default: the engine's)
    exclude: list[str] | None = None
    # learning-rate schedule and optimizer state of the phases (docs/method.md, "Choices"; :class:`PhaseTrainConfig`)
    lr: float | None = None  # peak learning rate; default: the source run's peak × lr_factor
    lr_factor: float = 0.5  # default peak = the source run's peak × this (ignored with --lr)
    lr_schedule: str = "cosine"  # constant | cosine | linear: the decay after the warm-up of every span
    lr_schedule_scope: str = "round"  # round: a span per round (restart at every prune) | phase: one span
    warmup_steps: int | None = None  # linear warm-up of every span; None: min(ceil(span / 10), round(2 / (1 - beta2)))
    final_lr_ratio: float | None = None  # lr of a span's last step / peak; default: the source run's (0.05)
    optimizer_state: str = "fresh"  # fresh: new AdamW moments | carry: the source run's moments (its checkpoint)
    weight_decay: float | None = None
    max_duration: float | None = None
    languages_per_step: int = 0  # multilingual methods: batches per step (0 = one per language)
    language_weights: str | None = None
    checkpoint_every: int | None = None  # extra checkpoints between events (default: the source's)
    seed: int = 0
    corpus: str | None = None  # default: the source run's corpus
    device: str = "auto"
    eval_split: str = "test"  # test | dev | none
    eval_max_utts: int | None = None
    progress: bool = True
    stop_after_events: int | None = None  # stop (as if interrupted) after this many events
    command: str = ""

    # options that do not change what a run computes (a resumed run may change them)
    NON_DEFINING = ("out", "device", "eval_split", "eval_max_utts", "progress", "stop_after_events", "command", "checkpoint_every")

    @property
    def monolingual(self) -> bool:
        return self.method in MONOLINGUAL_METHODS

    @property
    def adaptive(self) -> bool:
        return self.method in ("adaptive", "dynamic")

    @property
    def zero_trainable(self) -> bool:
        return self.pruned_weights == "zero_trainable"

    def start_sparsity(self) -> float:
        if self.init_sparsity is not None:
            return self.init_sparsity
        return self.target if self.method in FROM_MASKS_METHODS else 0.0

    def adaptation_steps(self) -> list[int]:
        if not self.adaptive:
            return []
        return sorted(set(self.adapt_at)) if self.adapt_at else [max(1, self.round_steps // 2)]

    def default_scores(self) -> str:
        """``own-updates`` for dynamic (one weight set, several masks), ``shared`` otherwise."""
        return "own-updates" if self.method == "dynamic" else "shared"

    def defining(self) -> dict[str, Any]:
        """The options that define the result (compared when a run folder is resumed)."""
        return {k: v for k, v in asdict(self).items() if k not in self.NON_DEFINING}

    def validate(self) -> None:
        """Raise :class:`InputError` naming the option when a value is out of range or inconsistent."""
        def bad(opt: str, msg: str, expected: str | None = None) -> InputError:
            return InputError(msg, field=opt, expected=expected)

        if self.method not in METHODS:
            raise bad("--method", f"unknown method {self.method!r}", ", ".join(METHODS))
        if not 0.0 <= self.target < 1.0:
            raise bad("--target", f"target sparsity {self.target} is outside [0, 1)")
        s0 = self.start_sparsity()
        if not 0.0 <= s0 <= self.target + 1e-9:
            raise bad("--init-sparsity", f"initial sparsity {s0} must lie in [0, target={self.target}]")
        if self.method in FROM_MASKS_METHODS and not self.masks_from:
            raise bad("--masks-from", f"{self.method} starts from existing masks", "a prune run, e.g. --masks-from runs/lth")
        if s0 > 0 and not self.masks_from:
            raise bad("--masks-from", f"initial sparsity {s0} > 0 needs masks to start from", "--masks-from runs/NAME")
        if self.prune_step <= 0 or (self.prune_step_mode == "fraction" and self.prune_step >= 1):
            raise bad("--prune-step", f"prune step {self.prune_step} must be > 0 (and < 1 as a fraction)")
        if self.prune_step_mode not in ("absolute", "fraction"):
            raise bad("--prune-step-mode", f"unknown mode {self.prune_step_mode!r}", "absolute or fraction")
        if self.round_steps < 1:
            raise bad("--round-steps", f"T = {self.round_steps} must be >= 1")
        for n in self.adaptation_steps():
            if not 0 < n < self.round_steps:
                raise bad("--adapt-at", f"adaptation step n = {n} must satisfy 0 < n < T = {self.round_steps}")
        if self.steps is not None and self.steps < 0:
            raise bad("--steps", f"steps = {self.steps} must be >= 0")
        if self.lap_base not in ("imp", "lth"):
            raise bad("--lap-base", f"unknown base {self.lap_base!r}", "imp or lth")
        if not 0 <= self.rewind_step < self.round_steps:
            raise bad("--rewind-step", f"rewind step {self.rewind_step} must lie in [0, T = {self.round_steps})")
        if self.norm not in ("l1", "l2"):
            raise bad("--norm", f"unknown norm {self.norm!r}", "l1 or l2")
        if self.scope not in ("layer", "global"):
            raise bad("--scope", f"unknown scope {self.scope!r}", "layer or global")
        try:
            from ..sparsity.blocks import parse_block

            parse_block(self.block)
        except ValueError as e:
            raise bad("--block", str(e), "RxC such as 8x1, 1x1 or 4x4") from None
        if self.candidates not in CANDIDATE_SETS:
            raise bad("--candidates", f"unknown candidate set {self.candidates!r}", ", ".join(CANDIDATE_SETS))
        if self.prune_candidates not in ("same", "own"):
            raise bad("--prune-candidates", f"unknown value {self.prune_candidates!r}", "same or own")
        if self.scores is not None and self.scores not in SCORES:
            raise bad("--scores", f"unknown scoring {self.scores!r}", ", ".join(SCORES))
        if self.scores == "own-updates" and not self.adaptive:
            raise bad("--scores", f"{self.method} has no per-language re-selection to score", "shared (own-updates: adaptive or dynamic)")
        if self.pruned_weights not in PRUNED_WEIGHTS:
            raise bad("--pruned-weights", f"unknown value {self.pruned_weights!r}", ", ".join(PRUNED_WEIGHTS))
        if self.zero_trainable and self.method == "pathways":
            raise bad("--pruned-weights", "ASR Pathways trains fixed masks; zero_trainable would re-select them", "keep_values")
        if self.zero_trainable and self.method == "dynamic" and len(self.languages) != 1:
            raise bad(
                "--pruned-weights",
                f"zero_trainable zeroes pruned weights, which other languages' pathways still use; {self.method} "
                f"with {len(self.languages) or 'several'} languages has one mask per language",
                "keep_values (zero_trainable is only valid with a single mask: imp, lth, adaptive, lap, or one language)",
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise bad("--lr-schedule", f"unknown schedule {self.lr_schedule!r}", ", ".join(LR_SCHEDULES))
        if self.lr_schedule_scope not in LR_SCOPES:
            raise bad("--lr-schedule-scope", f"unknown scope {self.lr_schedule_scope!r}", ", ".join(LR_SCOPES))
        if self.lr is not None and not self.lr > 0:
            raise bad("--lr", f"learning rate {self.lr} must be > 0")
        if not self.lr_factor > 0:
            raise bad("--lr-factor", f"learning-rate factor {self.lr_factor} must be > 0")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise bad("--warmup-steps", f"warm-up of {self.warmup_steps} steps must be >= 0")
        if self.final_lr_ratio is not None and not 0.0 <= self.final_lr_ratio <= 1.0:
            raise bad("--final-lr-ratio", f"final learning-rate ratio {self.final_lr_ratio} is outside [0, 1]")
        if self.optimizer_state not in OPTIMIZER_STATES:
            raise bad("--optimizer-state", f"unknown optimizer state {self.optimizer_state!r}", ", ".join(OPTIMIZER_STATES))
        if self.eval_split not in ("test", "dev", "none"):
            raise bad("--eval-split", f"unknown split {self.eval_split!r}", "test, dev or none")
        if "{lang}" in self.source and not self.monolingual:
            raise bad("--from", "a per-language source ({lang}) only makes sense for imp, lth and adaptive")


# ----------------------------------------------------------------------------------- schedule
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
) -> Schedule:
    """Rounds of ``round_steps`` (T): adaptations at ``adapt_at`` within each round, a prune at
    the end of every round but the last (to the next level), then a final round (adaptations, no
    prune). ``snapshot_step``: save a rewind point then. ``finalize``: one more selection at the end
    (``zero_trainable``: the final model is exactly sparse).

    >>> s = build_schedule([0.5, 0.6], 4, [2])
    >>> [(e.step, e.kind, e.sparsity) for e in s.events], s.total_steps
    ([(0, 'init', 0.5), (2, 'adapt', 0.5), (4, 'prune', 0.6), (6, 'adapt', 0.6)], 8)
    """
    raw: list[tuple[int, int, str, float, int]] = [(0, 0, "init", levels[0], 0)]
    if snapshot_step is not None:
        raw.append((snapshot_step, 1, "snapshot", levels[0], 0))
    n_rounds = len(levels) if final_round else len(levels) - 1
    for r in range(n_rounds):
        for n in sorted(set(adapt_at)):
            raw.append((r * round_steps + n, 2, "adapt", levels[r], r))
        if r + 1 < len(levels):
            raw.append(((r + 1) * round_steps, 3, "prune", levels[r + 1], r))
    total = n_rounds * round_steps
    if finalize:
        raw.append((total, 4, "finalize", levels[-1], n_rounds - 1))
    raw.sort(key=lambda t: (t[0], t[1]))
    return Schedule([Event(i, st, k, s, r) for i, (st, _, k, s, r) in enumerate(raw)], total)


def fixed_schedule(sparsity: float, steps: int) -> Schedule:
    """Masks set once, then ``steps`` steps of training (ASR Pathways)."""
    return Schedule([Event(0, 0, "init", sparsity, 0)], steps)


# --------------------------------------------------------------------------------- candidates
def candidate_sets(masks: dict[str, Any], kind: str = "own+residual") -> dict[str, Any]:
    """Candidate set of every pathway (METHOD.md): ``own+residual`` = ``m_l ∪ (1 − ∪_{k≠l} m_k)``,
    ``all`` = every weight of P (returned as ``None``: no restriction), ``own`` = ``m_l``.

    With a single pathway ``own+residual`` is all of P.
    """
    from ..sparsity.masks import own_plus_residual

    if kind == "all":
        return {l: None for l in masks}
    if kind == "own":
        return dict(masks)
    if kind == "own+residual":
        return {l: own_plus_residual(masks, l) for l in masks}
    raise InputError(f"unknown candidate set {kind!r}", field="candidates", expected=", ".join(CANDIDATE_SETS))


def level_name(s: float) -> str:
    """``sparsity_0.50`` (two decimals when exact, else four)."""
    return f"sparsity_{s:.2f}" if abs(s * 100 - round(s * 100)) < 1e-6 else f"sparsity_{s:.4f}"


def find_level_mask(run: str | Path, pathway: str, sparsity: float) -> Path:
    """``RUN/masks/{pathway}/sparsity_S.safetensors`` (or the ``shared`` mask of a LAP run)."""
    run = Path(run)
    seen = []
    for name in (pathway, SHARED):
        folder = run / "masks" / name
        for f in sorted(folder.glob("sparsity_*.safetensors")):
            try:
                s = float(f.stem.split("_", 1)[1])
            except ValueError:
                continue
            seen.append(f"{name}:{s:g}")
            if abs(s - sparsity) < 5e-5:
                return f
    raise InputError(
        f"no mask for {pathway!r} at sparsity {sparsity:g}", path=run / "masks",
        expected=f"one of the levels saved by that run ({', '.join(seen) or 'none'})",
        hint="Pick --init-sparsity among them, or prune further first",
    )


# ------------------------------------------------------------------------------------ sources
@dataclass
class SourceRun:
    """The run a pruning phase starts from: its config, tokenizer and weights."""

    path: Path
    config: Any  # RunConfig
    model_state: dict[str, torch.Tensor]
    meta: dict[str, Any]
    optimizer: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # its AdamW state (--optimizer-state carry)

    @classmethod
    def load(cls, path: str | Path) -> "SourceRun":
        from ..checkpoint import load_checkpoint
        from ..train import read_run_config

        path = Path(path)
        rc = read_run_config(path)
        ck = load_checkpoint(path)
        return cls(path, rc, ck.model, ck.meta, ck.optimizer)


def read_history(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if p.is_dir():
        p = p / "history.jsonl"
    if not p.is_file():
        return []
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


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
class PhaseTrainConfig(TrainConfig):
    """The training settings of a pruning phase; the learning rate follows spans of steps.

    The phase's ``steps`` are cut into spans starting at ``span_starts``: ``[0]`` and every prune
    step (``--lr-schedule-scope round``: the schedule restarts after every prune, and after every
    LTH rewind, which comes with a prune), or just ``[0]`` (``phase``). In a span of ``n`` steps,
    with ``W`` warm-up steps, ``lo = final_lr_ratio · lr`` and ``k`` the step within the span::

        k < W        lr · (k + 1) / W                       linear warm-up from lr / W to the peak lr
        k >= W       lo + (lr − lo) · f(t),  t = (k − W) / (n − W − 1)   (t = 1 when n − W = 1)
                     f(t) = (1 + cos πt) / 2 (cosine), 1 − t (linear); constant: lr

    so the first step after the warm-up runs at the peak and the span's last step at ``lo``.
    ``W`` is ``warmup_steps`` (at most ``n − 1``) or, with ``auto_warmup``, :func:`auto_warmup`.
    The rate is a function of the step alone, so a resumed phase runs the same sequence.
    """

    span_starts: list[int] = field(default_factory=lambda: [0])
    auto_warmup: bool = False

    def span_of(self, step: int) -> tuple[int, int]:
        """``(start, length)`` of the span holding optimizer step ``step``."""
        starts = sorted(set(self.span_starts) | {0})
        i = max(j for j, s in enumerate(starts) if s <= step) if step >= 0 else 0
        end = starts[i + 1] if i + 1 < len(starts) else max(self.steps, starts[i] + 1)
        return starts[i], end - starts[i]

    def warmup_of(self, span: int) -> int:
        if self.auto_warmup:
            return auto_warmup(span, float(self.betas[1]))
        return max(0, min(int(self.warmup_steps), span - 1))

    def lr_at(self, step: int) -> float:
        start, n = self.span_of(step)
        k = step - start
        w = self.warmup_of(n)
        if k < w:
            return self.lr * (k + 1) / w
        if self.lr_schedule == "constant":
            return self.lr
        decay = n - w
        t = 1.0 if decay <= 1 else min(1.0, (k - w) / (decay - 1))
        lo = self.lr * self.final_lr_ratio
        if self.lr_schedule == "linear":
            return lo + (self.lr - lo) * (1.0 - t)
        if self.lr_schedule == "cosine":
            return lo + (self.lr - lo) * 0.5 * (1.0 + math.cos(math.pi * t))
        raise InputError(f"unknown lr_schedule {self.lr_schedule!r}", field="--lr-schedule", expected=", ".join(LR_SCHEDULES))

    def spans(self) -> list[dict[str, int]]:
        """Every span: first step, length and warm-up steps (recorded in the phase's config.yaml)."""
        starts = sorted(s for s in set(self.span_starts) | {0} if s < max(self.steps, 1))
        out = []
        for s in starts:
            _, n = self.span_of(s)
            out.append({"start": s, "steps": n, "warmup_steps": self.warmup_of(n)})
        return out

    def base_config(self) -> dict[str, Any]:
        """The plain :class:`TrainConfig` fields (``warmup_steps``: the first span's), for config.yaml."""
        d = {f.name: getattr(self, f.name) for f in fields(TrainConfig)}
        d["warmup_steps"] = self.warmup_of(self.span_of(0)[1])
        d["betas"] = list(self.betas)
        return d


def phase_train_config(base: dict[str, Any], cfg: PruneConfig, total_steps: int, prune_steps: Iterable[int] = (), source_languages: int = 1) -> PhaseTrainConfig:
    """The source run's training settings with the pruning phase's overrides (lr, schedule, seed...).

    ``base`` is the source run's ``train`` section; ``prune_steps`` the steps of the phase's prune
    events (where ``--lr-schedule-scope round`` restarts the schedule). The peak is ``--lr``, else
    the source run's peak × ``--lr-factor``. A phase trains on monolingual batches; when the source
    run used mixed-language batches of ``max_duration`` seconds over ``source_languages`` languages,
    a phase's batch is ``max_duration / source_languages`` seconds (unless ``--max-duration``), so
    that a multilingual step with one batch per source language (``--languages-per-step 0``) holds
    as much audio as a dense step did; a monolingual step holds a quarter of it for four languages.
    """
    d = {k: v for k, v in base.items() if k in {f.name for f in fields(TrainConfig)}}
    base_lr = float(d.get("lr", TrainConfig.lr))
    d.update(steps=total_steps, warmup_steps=cfg.warmup_steps or 0, lr_schedule=cfg.lr_schedule, seed=cfg.seed, eval_every=0)
    d["lr"] = cfg.lr if cfg.lr is not None else base_lr * cfg.lr_factor
    if cfg.final_lr_ratio is not None:
        d["final_lr_ratio"] = cfg.final_lr_ratio
    if cfg.weight_decay is not None:
        d["weight_decay"] = cfg.weight_decay
    if cfg.max_duration is not None:
        d["max_duration"] = cfg.max_duration
    elif d.get("batching") == "mixed":
        d["max_duration"] = float(d.get("max_duration", TrainConfig.max_duration)) / max(1, source_languages)
    d["loss_warmup_steps"] = 0  # the source model is past its loss warm-up
    if cfg.language_weights is not None:
        d["language_weights"] = cfg.language_weights
    if cfg.checkpoint_every is not None:
        d["checkpoint_every"] = cfg.checkpoint_every
    d["languages_per_step"] = 1 if cfg.monolingual else cfg.languages_per_step
    if "batching" in {f.name for f in fields(TrainConfig)}:
        d["batching"] = "language"  # a pathway phase needs monolingual batches, whatever the dense run used
    tc = TrainConfig.from_dict(d, source="prune options")
    starts = [0]
    if cfg.lr_schedule_scope == "round":
        starts = sorted({0} | {int(s) for s in prune_steps if 0 < int(s) < total_steps})
    return PhaseTrainConfig(**{f.name: getattr(tc, f.name) for f in fields(TrainConfig)}, span_starts=starts,
                            auto_warmup=cfg.warmup_steps is None)


def carry_optimizer_state(trainer: Trainer, source: "SourceRun") -> None:
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


class RecipeTrainer(Trainer):
    """The trainer plus wall-time accounting in ``recipe_state`` (kept across resumes), and the
    ``--scores own-updates`` accumulators (:class:`~.scores.UpdateAttribution`), checkpointed in a
    side file ``score_state_step{STEP}_ev{EVENTS}.safetensors`` next to the checkpoint.

    The side file is written (atomically, rank 0) right before every checkpoint and named in its
    ``recipe_state["score_state"]``; older side files are removed once the checkpoint naming the
    new one is written, so a crash at any point leaves a checkpoint whose side file exists.
    """

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._wall_mark = time.perf_counter()
        self.attribution: UpdateAttribution | None = None

    def set_attribution(self, attribution: UpdateAttribution) -> None:
        self.attribution = attribution
        self.hooks.append(attribution)

    def save(self, path: str | Path | None = None) -> None:
        now = time.perf_counter()
        self.recipe_state["wall_seconds"] = float(self.recipe_state.get("wall_seconds", 0.0)) + now - self._wall_mark
        self._wall_mark = now
        side = None
        folder = Path(path).parent if path else self.out
        if self.attribution is not None:
            from ..io import save_tensors

            side = f"{SCORE_STATE_PREFIX}_step{self.step:08d}_ev{int(self.recipe_state.get('events_done', 0))}.safetensors"
            if self.dist.is_main:
                save_tensors(folder / side, self.attribution.state_tensors(), self.attribution.state_meta() | {"step": self.step})
            self.recipe_state["score_state"] = side
            self.recipe_state["attribution_seconds"] = self.attribution.seconds
        super().save(path)
        if side is not None and self.dist.is_main:
            for old in folder.glob(f"{SCORE_STATE_PREFIX}_*.safetensors"):
                if old.name != side:
                    old.unlink(missing_ok=True)

    def restore(self, path: str | Path | None = None, weights_only: bool = False):
        ck = super().restore(path, weights_only)
        if self.attribution is not None and not weights_only:
            from ..io import load_tensors

            folder = Path(path).parent if path else self.out
            side = self.recipe_state.get("score_state")
            if not side or not (folder / side).is_file():
                raise InputError(
                    "the checkpoint has no saved --scores own-updates state", path=folder / (side or f"{SCORE_STATE_PREFIX}_*"),
                    hint="Use --restart to start the run over",
                )
            tensors, meta = load_tensors(folder / side, device=self.device)
            try:
                self.attribution.load_state_tensors(tensors, meta)
            except (KeyError, ValueError) as e:
                raise InputError(f"the saved score state does not fit this run: {e}", path=folder / side) from None
            self.attribution.seconds = float(self.recipe_state.get("attribution_seconds", 0.0))
        self._wall_mark = time.perf_counter()
        return ck


# ----------------------------------------------------------------------------------- pipeline
class Pipeline:
    """The output folder of one ``prune`` command: options, history, mask files, cost, evaluation."""

    def __init__(self, cfg: PruneConfig, restart: bool = False) -> None:
        from ..runtime import pick_device

        from ..runtime import init_distributed

        self.cfg = cfg
        self.out = Path(cfg.out)
        self.device = pick_device(cfg.device)
        self.dist = init_distributed(self.device)  # torchrun: DDP training, rank 0 writes every file
        self.events_applied = 0
        self._sources: dict[str, SourceRun] = {}
        first = self.source(cfg.languages[0] if cfg.languages else None)
        if not cfg.languages:
            cfg.languages = list(first.config.languages)
        cfg.validate()
        if cfg.scores is None:
            cfg.scores = cfg.default_scores()
        from ..data.corpus import Corpus

        self.corpus = Corpus(cfg.corpus or first.config.corpus)
        unknown = [l for l in cfg.languages if l not in self.corpus.languages]
        if unknown:
            raise InputError(f"languages {unknown} are not in the corpus", path=self.corpus.path if hasattr(self.corpus, "path") else None,
                             field="--languages", expected=f"some of {self.corpus.languages}")
        self._prepare_folder(restart)

    # ----- distributed
    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.dist.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()

    def end_distributed(self) -> bool:
        """After the last training step: leave the process group; True on the rank that goes on
        (rank 0 evaluates and writes the tables alone; the other ranks are done)."""
        if self.dist.enabled:
            from ..runtime import shutdown_distributed

            shutdown_distributed()
        return self.is_main

    # ----- folder
    def _prepare_folder(self, restart: bool) -> None:
        pj = self.out / "prune.json"
        if restart and pj.is_file():
            self.barrier()  # every rank has seen the old folder
            if self.is_main:
                shutil.rmtree(self.out)
            self.barrier()
        if pj.is_file():
            old = json.loads(pj.read_text())
            now = json.loads(json.dumps(self.cfg.defining()))
            if old.get("defining") != now:
                diff = sorted(k for k in set(now) | set(old.get("defining", {})) if now.get(k) != old.get("defining", {}).get(k))
                raise InputError(
                    f"the run folder holds a prune run with other options ({', '.join(diff)})", path=self.out,
                    hint="Use another --out, or --restart to start it over",
                )
        elif self.out.exists() and any(self.out.iterdir()):
            raise InputError("the output folder exists and is not a prune run", path=self.out, hint="Choose another --out")
        from ..io import atomic_write_json

        self.barrier()  # every rank has checked the folder before rank 0 writes into it
        if self.is_main:
            atomic_write_json(pj, {"config": asdict(self.cfg), "defining": self.cfg.defining(), "command": self.cfg.command})
        self.barrier()

    @property
    def complete(self) -> bool:
        return (self.out / "cost.json").is_file()

    def source(self, lang: str | None = None) -> SourceRun:
        """The dense run (``--from``; ``{lang}`` is replaced by the language)."""
        path = self.cfg.source.replace("{lang}", lang) if lang else self.cfg.source
        if "{lang}" in path:
            raise InputError("--from holds {lang}; give --languages", field="--from")
        if path not in self._sources:
            self._sources[path] = SourceRun.load(path)
        return self._sources[path]

    # ----- masks
    def initial_masks(self, pathways: list[str], params: dict[str, torch.Tensor], sparsity: float) -> dict[str, Any]:
        """All-ones masks at sparsity 0, else the ``--masks-from`` run's masks at that level."""
        from ..sparsity.masks import MaskSet

        out = {}
        for name in pathways:
            if sparsity == 0.0 and not self.cfg.masks_from:
                out[name] = MaskSet.ones_like(params)
                continue
            path = find_level_mask(self.cfg.masks_from, name, sparsity)
            ms = MaskSet.load(path, device=self.device)
            missing = [n for n in params if n not in ms]
            extra = [n for n in ms if n not in params]
            bad_shape = [n for n in params if n in ms and tuple(ms[n].shape) != tuple(params[n].shape)]
            if missing or extra or bad_shape:
                raise InputError(
                    f"the mask does not fit the model's prunable weights (missing {missing[:3]}, unknown {extra[:3]}, "
                    f"other shape {bad_shape[:3]})", path=path, expected="masks made for the same model and --include/--exclude",
                )
            out[name] = ms.subset(list(params))
        return out

    def save_level(self, pathway: str, mask: Any, sparsity: float, meta: dict[str, Any]) -> Path | None:
        if not self.is_main:
            return None
        return mask.save(self.out / "masks" / pathway / f"{level_name(sparsity)}.safetensors", meta | {"sparsity_level": sparsity})

    def save_final(self, masks: dict[str, Any], languages: list[str]) -> None:
        """``masks/{lang}.safetensors`` for every language (a shared mask is also ``masks/shared``)."""
        for name, m in masks.items():
            m.save(self.out / "masks" / f"{name}.safetensors", {"pathway": name, "method": self.cfg.method})
        if SHARED in masks:
            for lang in languages:
                masks[SHARED].save(self.out / "masks" / f"{lang}.safetensors", {"pathway": SHARED, "language": lang, "method": self.cfg.method})

    def write_summary(self, masks: dict[str, Any], total_params: int) -> dict[str, Any]:
        """Final sparsity per pathway and group, union sparsity and pairwise IoU; plus per level."""
        from ..io import atomic_write_json
        from ..sparsity.masks import MaskSet, iou, union

        def describe(ms: dict[str, Any]) -> dict[str, Any]:
            names = sorted(ms)
            d: dict[str, Any] = {
                "sparsity": {n: ms[n].sparsity() for n in names},
                "union_sparsity": union(*[ms[n] for n in names]).sparsity(),
                "iou": {f"{a}|{b}": iou(ms[a], ms[b]) for i, a in enumerate(names) for b in names[i + 1:]},
            }
            return d

        summary = describe(masks)
        summary["sparsity_per_group"] = {}
        summary["sparsity_over_model"] = {}
        for n, m in masks.items():
            try:
                summary["sparsity_per_group"][n] = m.sparsity_per_group()
            except Exception:  # group patterns are the engine's business; a missing one must not fail a run
                pass
            summary["sparsity_over_model"][n] = m.sparsity_over_model(total_params)
        levels: dict[str, dict[str, Any]] = {}
        for folder in sorted((self.out / "masks").glob("*/")):
            for f in sorted(folder.glob("sparsity_*.safetensors")):
                levels.setdefault(f.stem, {})[folder.name] = f
        summary["levels"] = {}
        for lvl, files in levels.items():
            if len(files) > 1:
                summary["levels"][lvl] = describe({n: MaskSet.load(p) for n, p in files.items()})
        atomic_write_json(self.out / "masks_summary.json", summary)
        return summary

    # ----- history
    @property
    def history_path(self) -> Path:
        return self.out / "history.jsonl"

    def truncate_history(self, run_key: str, events_done: int) -> None:
        """Drop the rows of ``run_key`` from events not covered by its checkpoint (they will be redone)."""
        from ..io import atomic_write_text

        if not self.is_main or not self.history_path.is_file():
            return
        keep = [r for r in read_history(self.history_path) if not (r.get("run") == run_key and r.get("event", 0) >= events_done)]
        atomic_write_text(self.history_path, "".join(json.dumps(r) + "\n" for r in keep))

    def append_history(self, rows: list[dict[str, Any]]) -> None:
        if not self.is_main:
            return
        self.history_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.history_path, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    def event_done(self) -> None:
        self.events_applied += 1
        if self.cfg.stop_after_events is not None and self.events_applied >= self.cfg.stop_after_events:
            raise StopRequested(f"stopped after {self.events_applied} events as asked (--stop-after-events)")

    # ----- cost
    def upstream_cost(self) -> dict[str, Any] | None:
        """Cost of producing the starting masks, read from the ``--masks-from`` run.

        Counted up to the event that left each starting mask at ``init_sparsity`` (from that run's
        history), plus that run's own upstream.
        """
        if not self.cfg.masks_from:
            return None
        src = Path(self.cfg.masks_from)
        s0 = self.cfg.start_sparsity()
        rows = read_history(src)
        want = set(self.cfg.languages) | {SHARED}
        by_run: dict[str, dict[str, Any]] = {}
        for r in rows:
            if r.get("language") in want and abs(float(r.get("requested_sparsity", -1)) - s0) < 5e-5:
                cur = by_run.get(r["run"])
                if cur is None or r["event"] > cur["event"]:
                    by_run[r["run"]] = r
        up: dict[str, Any] = {"source": str(src), "init_sparsity": s0, "optimizer_steps": 0, "wall_seconds": 0.0,
                              "mask_seconds": 0.0, "train_seconds": 0.0, "language_specific_pruning_rounds": 0, "language_batches": 0}
        for key, last in by_run.items():
            up["optimizer_steps"] += int(last.get("optimizer_steps", 0))
            up["language_batches"] += int(last.get("language_batches", last.get("optimizer_steps", 0)))
            up["wall_seconds"] += float(last.get("wall_seconds", 0.0))
            up["mask_seconds"] += float(last.get("mask_seconds", 0.0))
            up["train_seconds"] += float(last.get("train_seconds", 0.0))
            up["language_specific_pruning_rounds"] += len({
                r["event"] for r in rows if r.get("run") == key and r.get("kind") == "prune" and r.get("monolingual") and r["event"] <= last["event"]
            })
        if not by_run:
            up["note"] = "no history rows for the starting masks; upstream cost unknown"
        cost_file = src / "cost.json"
        if cost_file.is_file():
            inner = json.loads(cost_file.read_text()).get("upstream")
            if inner:
                for k in ("optimizer_steps", "language_batches", "wall_seconds", "mask_seconds", "train_seconds", "language_specific_pruning_rounds"):
                    up[k] += inner.get(k, 0)
                up["includes"] = inner
        return up

    def write_cost(self, phases: list[dict[str, Any]], eval_seconds: float) -> dict[str, Any]:
        """``cost.json`` from the :meth:`Phase.cost` of every phase, the upstream and the dense runs."""
        from ..io import atomic_write_json

        keys = ("optimizer_steps", "language_batches", "wall_seconds", "train_seconds", "mask_seconds", "prune_events", "adapt_events",
                "attribution_seconds")
        own: dict[str, Any] = {k: 0 for k in keys} | {"language_specific_pruning_rounds": 0, "multilingual_prune_events": 0}
        for c in phases:
            for k in keys:
                own[k] += c[k]
            own["language_specific_pruning_rounds" if c["monolingual"] else "multilingual_prune_events"] += c["prune_events"]
        own["eval_seconds"] = eval_seconds
        own["wall_seconds"] += eval_seconds
        up = self.upstream_cost()
        total = {k: own[k] + (up or {}).get(k, 0) for k in ("optimizer_steps", "language_batches", "wall_seconds",
                                                            "train_seconds", "mask_seconds", "language_specific_pruning_rounds")}
        dense = {str(src.path): {"optimizer_steps": int(src.meta.get("step", 0)), "train_seconds": float(src.meta.get("train_seconds", 0.0))}
                 for src in self._sources.values()}
        cost = {
            "method": self.cfg.method, "own": own, "per_run": {c["run"] or ".": c for c in phases}, "upstream": up, "total": total,
            "dense": dense,
            "notes": ("language_specific_pruning_rounds counts the prune events of masks trained on one language (imp, lth, "
                      "adaptive), those of the run that made the starting masks included; prunes inside multilingual training "
                      "(lap, dynamic) are multilingual_prune_events. 'total' excludes the dense training, listed under 'dense'. "
                      "wall_seconds counts the work kept in checkpoints (time lost to an interruption is not counted)."),
        }
        atomic_write_json(self.out / "cost.json", cost)
        return cost

    # ----- evaluation
    def eval_split(self) -> str | None:
        return None if self.cfg.eval_split == "none" else self.cfg.eval_split

    def evaluate_phase(self, phase: "Phase", languages: list[str], pathway_of: Callable[[str], str]) -> dict[str, Any]:
        from ..evaluate import evaluate, write_evaluation

        res = evaluate(
            phase.model, phase.tokenizer, self.corpus, languages, self.eval_split() or "test",
            pathways=phase.pm, pathway_of=pathway_of, max_utts=self.cfg.eval_max_utts, device=self.device,
            progress=self.cfg.progress,
        )
        write_evaluation(phase.folder, res, title=f"{phase.folder.name} — {res['split']}")
        return res

    def write_wer(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        """Merge per-language results into the run's table (per language + macro average)."""
        from ..evaluate import wer_table, write_evaluation
        from ..metrics import macro_average

        per_lang: dict[str, Any] = {}
        hyps: list[dict[str, str]] = []
        for r in results:
            per_lang.update(r["languages"])
            hyps += r["hyps"]
        merged = {"split": results[0]["split"], "languages": per_lang, "average": macro_average(per_lang), "hyps": hyps,
                  "decode_seconds": sum(r["decode_seconds"] for r in results)}
        title = f"{self.out.name} ({self.cfg.method}, target {self.cfg.target:g}) — {merged['split']}"
        write_evaluation(self.out, merged, title=title)
        if self.cfg.progress:
            print(wer_table(merged, title=title))
        return merged


# -------------------------------------------------------------------------------------- phase
class Phase:
    """One training phase in one run folder: a trainer, named pathways, the event loop.

    ``key`` names the phase in history.jsonl (``""`` for the run folder itself, ``lang/fr`` for a
    per-language sub-run). ``pathway_of`` maps a batch's language to its pathway.
    """

    def __init__(
        self,
        pipe: Pipeline,
        key: str,
        languages: list[str],
        pathways: list[str],
        pathway_of: Callable[[str], str],
        schedule: Schedule,
        *,
        source: SourceRun,
        monolingual: bool,
    ) -> None:
        from ..checkpoint import CHECKPOINT_NAME
        from ..runs import copy_tokenizer, load_tokenizer
        from ..runtime import seed_everything
        from ..sparsity.pathways import PathwayModel
        from ..sparsity.select import prunable_parameters
        from ..train import RunConfig, build_model, write_run_config

        cfg = pipe.cfg
        self.pipe, self.cfg, self.key = pipe, cfg, key
        self.folder = pipe.out / key if key else pipe.out
        self.languages = list(languages)
        self.pathway_names = list(pathways)
        self.pathway_of = pathway_of
        self.schedule = schedule
        self.monolingual = monolingual
        self.source = source
        self.tokenizer = load_tokenizer(source.path)
        seed_everything(cfg.seed)
        self.model = build_model(source.config.model, self.tokenizer.vocab_size)
        self.model.load_state_dict(source.model_state)
        self.model.to(pipe.device)
        kw = {}
        if cfg.include is not None:
            kw["include"] = cfg.include
        if cfg.exclude is not None:
            kw["exclude"] = cfg.exclude
        self.params: dict[str, torch.nn.Parameter] = dict(prunable_parameters(self.model, **kw))
        if not self.params:
            raise InputError("no prunable parameters match", field="--include/--exclude")
        # zero_trainable: the engine's forward uses every weight and steps freeze nothing; events zero
        self.pm = PathwayModel(self.model, list(self.params), pruned_weights=cfg.pruned_weights)
        tcfg = phase_train_config(source.config.train, cfg, schedule.total_steps, [e.step for e in schedule.events if e.kind == "prune"],
                                  source_languages=len(source.config.languages))
        self.trainer = RecipeTrainer(
            self.model, self.tokenizer, pipe.corpus, self.languages, tcfg, self.folder, device=pipe.device,
            dist_info=pipe.dist, pathways=self.pm, pathway_of=pathway_of,
            progress=cfg.progress, desc=f"{pipe.out.name}/{key}" if key else pipe.out.name,
        )
        # --scores own-updates: per-language scores from each language's share of the updates
        # (with one pathway that share is all of it, and the score is θ itself: no state kept)
        self.attribution: UpdateAttribution | None = None
        if cfg.scores == "own-updates" and len(self.pathway_names) > 1:
            self.attribution = UpdateAttribution(self.params, self.pathway_names, pathway_of)
            self.trainer.set_attribution(self.attribution)
        self.batches_per_step = 1 if monolingual else (len(self.languages) if tcfg.languages_per_step <= 0 else min(tcfg.languages_per_step, len(self.languages)))
        self.resumed = (self.folder / CHECKPOINT_NAME).is_file()
        if self.resumed:
            self.trainer.restore()
        else:
            if cfg.optimizer_state == "carry":  # else: fresh AdamW moments, made lazily at the first step
                carry_optimizer_state(self.trainer, source)
            lr_info = {"scope": cfg.lr_schedule_scope, "schedule": tcfg.lr_schedule, "peak_lr": tcfg.lr,
                       "final_lr_ratio": tcfg.final_lr_ratio, "optimizer_state": cfg.optimizer_state, "spans": tcfg.spans()}
            rc = RunConfig(
                preset=source.config.preset, model=source.config.model, train=tcfg.base_config(), tokenizer=source.config.tokenizer,
                corpus=str(cfg.corpus or source.config.corpus), languages=self.languages, init=str(source.path), command=cfg.command,
                extra={"prune": asdict(cfg), "phase": key or ".", "pathways": self.pathway_names, "schedule": schedule.describe(),
                       "lr_schedule": lr_info},
            )
            if pipe.is_main:
                self.folder.mkdir(parents=True, exist_ok=True)
                copy_tokenizer(source.path / "tokenizer.model", self.folder)
                write_run_config(self.folder, rc)
        pipe.truncate_history(key, self.events_done)

    # ----- state
    @property
    def state(self) -> dict[str, Any]:
        return self.trainer.recipe_state

    @property
    def events_done(self) -> int:
        return int(self.state.get("events_done", 0))

    @property
    def done(self) -> bool:
        return bool(self.state.get("done", False))

    @property
    def masks(self) -> dict[str, Any]:
        """Current mask of every pathway of this phase."""
        return {n: self.pm.masks[n] for n in self.pathway_names if n in self.pm.masks}

    def weights(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.params.items()}

    def _add(self, key: str, value: float) -> None:
        self.state[key] = self.state.get(key, 0) + value

    def cost(self) -> dict[str, Any]:
        """Optimizer steps, batches, seconds and events of this phase (for cost.json)."""
        st = self.state
        return {
            "run": self.key, "monolingual": self.monolingual, "languages": self.languages,
            "optimizer_steps": self.trainer.step, "language_batches": self.trainer.step * self.batches_per_step,
            "wall_seconds": float(st.get("wall_seconds", 0.0)), "train_seconds": float(self.trainer.train_seconds),
            "mask_seconds": float(st.get("mask_seconds", 0.0)), "prune_events": int(st.get("prune_events", 0)),
            "adapt_events": int(st.get("adapt_events", 0)),
            "attribution_seconds": float(st.get("attribution_seconds", 0.0)),
        }

    # ----- what events do
    def score_weights(self, pathway: str | None = None) -> dict[str, torch.Tensor]:
        """What ``pathway``'s blocks are scored on: θ (``--scores shared``, one pathway, or no
        pathway named), or ``θ_ref + Δ_pathway`` (``own-updates``; :mod:`.scores`)."""
        if self.attribution is not None and pathway is not None and pathway in self.attribution.delta:
            return self.attribution.weights(pathway)
        return self.weights()

    def select(self, sparsity: float, candidates: Any | None, pathway: str | None = None) -> Any:
        """``Prune(s, C)`` on the scores of ``pathway`` (:meth:`score_weights`; timed as mask computation)."""
        from ..sparsity.blocks import select_masks

        t0 = time.perf_counter()
        try:
            ms = select_masks(self.score_weights(pathway), sparsity, block=self.cfg.block, norm=self.cfg.norm, scope=self.cfg.scope, candidates=candidates)
        except ValueError as e:
            raise InputError(str(e), field="masks") from None
        self._add("mask_seconds", time.perf_counter() - t0)
        return ms

    def candidates(self, kind: str) -> dict[str, Any]:
        """Candidate sets of every pathway from the current masks (computed before any changes)."""
        t0 = time.perf_counter()
        c = candidate_sets(self.masks, kind)
        self._add("mask_seconds", time.perf_counter() - t0)
        return c

    def apply(self, ev: Event, new: dict[str, Any]) -> None:
        """Install new masks, log them to history.jsonl and save them as the level's mask files.

        With ``zero_trainable`` the pruned weights are set to zero (the model is exactly sparse now).
        """
        from ..sparsity.masks import MaskSet, dropped, iou, revived, union

        before = self.masks
        t0 = time.perf_counter()
        if self.pipe.dist.enabled:  # every rank installs rank 0's masks (they agree anyway; this makes it certain)
            from ..sparsity.pathways import broadcast_masks

            new = broadcast_masks({k: new[k] for k in sorted(new)})
        for name, m in new.items():
            self.pm.set_mask(name, m)
        if self.cfg.zero_trainable:  # pruned weights (and their AdamW moments) start again from zero
            self.pm.apply_zero(optimizer=self.trainer.optimizer)
        after = self.masks
        names = sorted(after)
        per_path = {n: after[n].sparsity() for n in names}
        union_s = union(*[after[n] for n in names]).sparsity()
        pair_iou = {f"{a}|{b}": iou(after[a], after[b]) for i, a in enumerate(names) for b in names[i + 1:]}
        self._add("mask_seconds", time.perf_counter() - t0)
        if ev.kind == "prune":
            self._add("prune_events", 1)
        elif ev.kind == "adapt":
            self._add("adapt_events", 1)
        rows = []
        for name in sorted(new):
            old = before.get(name, MaskSet.ones_like(self.weights()))
            rows.append({
                "run": self.key, "event": ev.index, "kind": ev.kind, "round": ev.round, "step": self.trainer.step,
                "language": name, "requested_sparsity": ev.sparsity, "sparsity": per_path[name], "scores": self.cfg.scores,
                "kept": after[name].kept(), "revived": revived(old, after[name]).kept(), "dropped": dropped(old, after[name]).kept(),
                "sparsity_per_pathway": per_path, "union_sparsity": union_s, "iou": pair_iou,
                "monolingual": self.monolingual, "optimizer_steps": self.trainer.step,
                "language_batches": self.trainer.step * self.batches_per_step,
                "wall_seconds": float(self.state.get("wall_seconds", 0.0)), "train_seconds": float(self.trainer.train_seconds),
                "mask_seconds": float(self.state.get("mask_seconds", 0.0)), "time": time.time(),
            })
            self.pipe.save_level(name, after[name], ev.sparsity, {"method": self.cfg.method, "event": ev.kind, "step": self.trainer.step, "run": self.key})
        self.pipe.append_history(rows)

    def snapshot(self) -> None:
        """Save the current weights as the rewind point (LTH)."""
        from ..io import save_tensors

        if self.pipe.is_main:
            save_tensors(self.folder / REWIND_NAME, self.model.state_dict(), {"step": self.trainer.step})
        self.pipe.barrier()

    def rewind(self) -> None:
        """Reset every weight to the rewind point and start a fresh optimizer (LTH): fresh AdamW
        moments whatever ``--optimizer-state``; with ``--lr-schedule-scope round`` the prune that
        comes with the rewind also restarts the schedule, warm-up first."""
        from ..io import load_tensors

        tensors, _ = load_tensors(self.folder / REWIND_NAME, device=self.pipe.device)
        with torch.no_grad():
            self.model.load_state_dict(tensors)
        self.trainer.reset_optimizer()

    # ----- the loop
    def run(self, on_event: Callable[["Phase", Event], None]) -> None:
        """Train to each event, apply it, checkpoint right after it; then train to the end."""
        if self.done:
            return
        for ev in self.schedule.events:
            if ev.index < self.events_done:
                continue
            self.trainer.train_until(ev.step)
            on_event(self, ev)
            if self.attribution is not None:  # θ_ref ← θ, Δ_l ← 0: the next event scores the updates from here
                self.attribution.reset()
            self.state["events_done"] = ev.index + 1
            self.trainer.save()
            self.pipe.event_done()
        self.trainer.train_until(self.schedule.total_steps)
        self.state["done"] = True
        self.trainer.save()
        self.trainer.close()


# ------------------------------------------------------------------------------------ drivers
EventFn = Callable[[Phase, Event], None]


def run_monolingual(pipe: Pipeline, schedule: Schedule, on_event: EventFn) -> Path:
    """One phase per language in ``lang/{lang}/`` (mask named by the language), then the run's tables.

    Under torchrun every phase trains with DDP; evaluation then waits until every phase is trained
    (rank 0 alone, after leaving the process group, so that no rank waits at a barrier meanwhile).
    """
    cfg = pipe.cfg
    if pipe.complete:
        _already_complete(pipe)
        pipe.end_distributed()
        return pipe.out
    costs, results, masks = [], [], {}
    eval_seconds, total_params = 0.0, 0
    deferred: list[tuple[Phase, str]] = []
    for lang in cfg.languages:
        ph = Phase(pipe, f"lang/{lang}", [lang], [lang], lambda l: l, schedule, source=pipe.source(lang), monolingual=True)
        ph.run(on_event)
        masks[lang] = ph.masks[lang]
        costs.append(ph.cost())
        total_params = sum(p.numel() for p in ph.model.parameters())
        if pipe.eval_split() and pipe.dist.enabled:
            ph.trainer.optimizer.state.clear()  # only the model is needed to evaluate
            deferred.append((ph, lang))
        elif pipe.eval_split():
            t0 = time.perf_counter()
            results.append(pipe.evaluate_phase(ph, [lang], lambda l: l))
            eval_seconds += time.perf_counter() - t0
        del ph
    if not pipe.end_distributed():
        return pipe.out
    for ph, lang in deferred:
        t0 = time.perf_counter()
        results.append(pipe.evaluate_phase(ph, [lang], lambda l: l))
        eval_seconds += time.perf_counter() - t0
    _finish(pipe, masks, costs, results, eval_seconds, total_params)
    return pipe.out


def run_multilingual(pipe: Pipeline, pathways: list[str], pathway_of: Callable[[str], str], schedule: Schedule, on_event: EventFn) -> Path:
    """One phase over every language in the run folder itself (masks named by language or ``shared``)."""
    cfg = pipe.cfg
    if pipe.complete:
        _already_complete(pipe)
        pipe.end_distributed()
        return pipe.out
    ph = Phase(pipe, "", cfg.languages, pathways, pathway_of, schedule, source=pipe.source(), monolingual=False)
    ph.run(on_event)
    if not pipe.end_distributed():  # torchrun: rank 0 evaluates and writes the tables alone
        return pipe.out
    results, eval_seconds = [], 0.0
    if pipe.eval_split():
        t0 = time.perf_counter()
        results.append(pipe.evaluate_phase(ph, cfg.languages, pathway_of))
        eval_seconds = time.perf_counter() - t0
    _finish(pipe, ph.masks, [ph.cost()], results, eval_seconds, sum(p.numel() for p in ph.model.parameters()))
    return pipe.out


def _finish(pipe: Pipeline, masks: dict[str, Any], costs: list[dict[str, Any]], results: list[dict[str, Any]], eval_seconds: float, total_params: int) -> None:
    pipe.save_final(masks, pipe.cfg.languages)
    summary = pipe.write_summary(masks, total_params)
    if results:
        pipe.write_wer(results)
    cost = pipe.write_cost(costs, eval_seconds)  # written last: its presence marks the run complete
    if pipe.cfg.progress:
        sp = ", ".join(f"{k} {v:.3f}" for k, v in summary["sparsity"].items())
        print(f"{pipe.out}: sparsity {sp}; union {summary['union_sparsity']:.3f}; "
              f"{cost['own']['optimizer_steps']} optimizer steps, {cost['own']['wall_seconds']:.1f} s "
              f"({cost['own']['mask_seconds']:.2f} s computing masks)")


def _already_complete(pipe: Pipeline) -> None:
    if pipe.cfg.progress and pipe.is_main:
        split = pipe.eval_split()
        table = pipe.out / f"wer_{split}.md"
        print(f"{pipe.out} is complete (cost.json exists); use --restart to redo it")
        if split and table.is_file():
            print(table.read_text())


def command_line(argv: list[str] | None, cfg: PruneConfig | None = None) -> str:
    """The command that made a run: ``argv``, the process's own when it ran ``prune``, else rebuilt."""
    import sys

    if argv is None and "prune" in sys.argv[1:]:
        argv = sys.argv[1:]
    if argv is not None:
        return "asr-pathways " + " ".join(shlex.quote(a) for a in argv)
    if cfg is None:
        return ""
    default = PruneConfig(cfg.method, cfg.source, cfg.out)
    flags = ["prune"]
    for f in fields(PruneConfig):
        v = getattr(cfg, f.name)
        if f.name in ("command", "progress") or (v == getattr(default, f.name) and f.name not in ("method", "source", "out")):
            continue
        flag = "--from" if f.name == "source" else "--" + f.name.replace("_", "-")
        if isinstance(v, bool):
            flags.append(flag)
        else:
            flags += [flag, ",".join(map(str, v)) if isinstance(v, list) else str(v)]
    return "asr-pathways " + " ".join(shlex.quote(a) for a in flags)
