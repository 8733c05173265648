"""One training phase of a pruning recipe: a model from the source run, its pathways, a trainer, and
what the recipe's events do to the masks.

A recipe loops over the events of its schedule::

    for ev in phase.pending():          # events not yet in the checkpoint
        phase.train_until(ev.step)
        ...                             # compute new masks (select, candidates), rewind ...
        phase.end_event(ev, new_masks)  # install and log them, checkpoint right after the event
    phase.finish()                      # train to the end of the schedule, last checkpoint

and an interrupted run resumes right after its last event, with the same masks and weights as an
uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from ..errors import InputError
from ..hooks import WallClock
from ..runtime import DistInfo
from ..train import Trainer
from .config import CANDIDATE_SETS, PruneConfig
from .finetune_scores import FinetuneScores
from .lr import carry_optimizer_state, phase_train_config
from .records import append_history, save_level, truncate_history
from .schedule import Event, Schedule
from .scores import UpdateAttribution

REWIND_NAME = "rewind.safetensors"


class StopRequested(Exception):
    """Raised after ``--stop-after-events`` events (to test and demonstrate resuming)."""


@dataclass
class RunContext:
    """What every phase of one prune run shares: the options, the run folder, device and processes."""

    cfg: PruneConfig
    out: Path
    device: torch.device
    dist: DistInfo
    corpus: Any  # data.corpus.Corpus
    identity: str = ""  # of the prune run (asr_pathways.runs.identity)
    claim: Callable[[], None] = lambda: None  # records the run's identity before its first write
    events_applied: int = 0

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.dist.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()


@dataclass
class SourceRun:
    """The run a pruning phase starts from: its config, tokenizer and weights."""

    path: Path
    config: Any  # runs.RunConfig
    model_state: dict[str, torch.Tensor]
    meta: dict[str, Any]
    optimizer: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # its AdamW state (--optimizer-state carry)

    @classmethod
    def load(cls, path: str | Path) -> "SourceRun":
        from ..checkpoint import load_checkpoint
        from ..runs import read_run_config

        path = Path(path)
        rc = read_run_config(path)
        ck = load_checkpoint(path)
        return cls(path, rc, ck.model, ck.meta, ck.optimizer)


def candidate_sets(masks: dict[str, Any], kind: str = "own+residual") -> dict[str, Any]:
    """Candidate set of every pathway (docs/method.md): ``own+residual`` = ``m_l ∪ (1 − ∪_{k≠l} m_k)``,
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


class Phase:
    """One training phase in one run folder: a trainer, named pathways, and what events do.

    ``key`` names the phase in history.jsonl (``""`` for the run folder itself, ``lang/fr`` for a
    per-language sub-run). ``pathway_of`` maps a batch's language to its pathway. ``scores``
    (``--scores``): ``own-updates`` scores each pathway on θ_ref + Δ_l (:mod:`.scores`; only with
    several pathways, since one pathway's share of every update is all of it); ``finetune`` on a
    copy of the model fine-tuned on its language (:mod:`.finetune_scores`); else on θ.
    """

    def __init__(self, ctx: RunContext, key: str, languages: list[str], pathways: list[str], pathway_of: Callable[[str], str],
                 schedule: Schedule, source: SourceRun, *, monolingual: bool, scores: str = "shared") -> None:
        from ..checkpoint import CHECKPOINT_NAME
        from ..runs import load_tokenizer, open_run_folder
        from ..runtime import seed_everything
        from ..sparsity.pathways import PathwayModel

        cfg = ctx.cfg
        self.ctx, self.cfg, self.key = ctx, cfg, key
        self.folder = ctx.out / key if key else ctx.out
        self.languages, self.pathway_names, self.pathway_of = list(languages), list(pathways), pathway_of
        self.schedule, self.monolingual, self.source = schedule, monolingual, source
        # a sub-run (lang/fr) is a run folder of its own, identified by the prune run's identity and its key
        self.run_folder = None
        if key:
            defining = {"prune": ctx.identity, "phase": key}
            legacy = defining if (self.folder / "config.yaml").is_file() else None  # written before run.json existed
            self.run_folder = open_run_folder(self.folder, defining, kind="phase", dist=ctx.dist, legacy=legacy)
        self.tokenizer = load_tokenizer(source.path)
        seed_everything(cfg.seed)
        from ..runs import build_model

        self.model = build_model(source.config.model, self.tokenizer.vocab_size)
        self.model.load_state_dict(source.model_state)
        self.model.to(ctx.device)
        self.params = self._prunable()
        # zero_trainable: the engine's forward uses every weight and steps freeze nothing; events zero
        self.pm = PathwayModel(self.model, list(self.params), pruned_weights=cfg.pruned_weights)
        self.train_cfg, self.lr = phase_train_config(source.config.train, cfg, schedule.total_steps,
                                                     [e.step for e in schedule.events if e.kind == "prune"])
        self.clock = WallClock()
        self.attribution = UpdateAttribution(self.params, self.pathway_names, pathway_of) \
            if scores == "own-updates" and len(self.pathway_names) > 1 else None
        # copied before the trainer wraps the model (DDP); it follows the trainer once that exists
        scratch = FinetuneScores(self.model, list(self.params), cfg.score_steps, cfg.seed) if scores == "finetune" else None
        self.trainer = Trainer(
            self.model, self.tokenizer, ctx.corpus, self.languages, self.train_cfg, self.folder, lr=self.lr, device=ctx.device,
            dist_info=ctx.dist, pathways=self.pm, pathway_of=pathway_of,
            hooks=[self.clock] + ([self.attribution] if self.attribution is not None else []),
            progress=cfg.progress, desc=f"{ctx.out.name}/{key}" if key else ctx.out.name,
        )
        self.finetune = scratch.bind(self.trainer) if scratch is not None else None
        self.event: Event | None = None  # the event being computed (pending() sets it)
        k = self.train_cfg.languages_per_step
        self.batches_per_step = 1 if monolingual else (len(self.languages) if k <= 0 else min(k, len(self.languages)))
        self.resumed = (self.folder / CHECKPOINT_NAME).is_file()
        if self.resumed:
            self.trainer.restore()
        elif cfg.optimizer_state == "carry":  # else: fresh AdamW moments, made lazily at the first step
            carry_optimizer_state(self.trainer, source)
        if ctx.is_main:
            truncate_history(ctx.out, key, self.events_done)

    def _prunable(self) -> dict[str, torch.nn.Parameter]:
        from ..asr.prunable import prunable_parameters

        kw = {k: v for k, v in (("include", self.cfg.include), ("exclude", self.cfg.exclude)) if v is not None}
        params = dict(prunable_parameters(self.model, **kw))
        if not params:
            raise InputError("no prunable parameters match", field="--include/--exclude")
        return params

    def _write_run_files(self) -> None:
        """config.yaml and tokenizer.model of the phase's folder (right before its first checkpoint)."""
        from dataclasses import asdict

        from ..runs import RunConfig, copy_tokenizer, write_run_config

        cfg, src, lr = self.cfg, self.source, self.lr
        lr_info = {"scope": cfg.lr_schedule_scope, "schedule": lr.schedule, "peak_lr": lr.lr, "final_lr_ratio": lr.final_lr_ratio,
                   "optimizer_state": cfg.optimizer_state, "spans": lr.spans()}
        rc = RunConfig(
            preset=src.config.preset, model=src.config.model, train=asdict(self.train_cfg) | {"betas": list(self.train_cfg.betas)},
            tokenizer=src.config.tokenizer, corpus=str(cfg.corpus or src.config.corpus), languages=self.languages,
            init=str(src.path), command=cfg.command,
            extra={"prune": asdict(cfg), "phase": self.key or ".", "pathways": self.pathway_names,
                   "schedule": self.schedule.describe(), "lr_schedule": lr_info},
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        copy_tokenizer(src.path / "tokenizer.model", self.folder)
        write_run_config(self.folder, rc)

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
            "wall_seconds": self.clock.seconds(), "train_seconds": float(self.trainer.train_seconds),
            "mask_seconds": float(st.get("mask_seconds", 0.0)), "prune_events": int(st.get("prune_events", 0)),
            "adapt_events": int(st.get("adapt_events", 0)),
            "attribution_seconds": self.attribution.seconds if self.attribution is not None else 0.0,
            "score_batches": int(st.get("score_batches", 0)), "score_seconds": float(st.get("score_seconds", 0.0)),
        }

    # ----- the loop
    def pending(self) -> Iterator[Event]:
        """The schedule's events not yet done (none when the phase is finished)."""
        if self.done:
            return
        for ev in self.schedule.events:
            if ev.index >= self.events_done:
                self.event = ev
                yield ev

    def train_until(self, step: int) -> None:
        self.trainer.train_until(step)

    def end_event(self, ev: Event, new: dict[str, Any] | None = None) -> None:
        """Install and log the event's new masks (if any), then checkpoint right after the event."""
        if new is not None:
            self.apply(ev, new)
        if self.attribution is not None:  # θ_ref ← θ, Δ_l ← 0: the next event scores the updates from here
            self.attribution.reset()
        if self.finetune is not None:  # the event's scoring batches and seconds ride in the checkpoint below
            label = f"{self.folder.name} event {ev.index} ({ev.kind}, step {self.trainer.step})"
            for k, v in self.finetune.end_event(label, self.cfg.progress and self.ctx.is_main).items():
                self._add(k, v)
        self.state["events_done"] = ev.index + 1
        self._checkpoint()
        self.ctx.events_applied += 1
        stop = self.cfg.stop_after_events
        if stop is not None and self.ctx.events_applied >= stop:
            raise StopRequested(f"stopped after {self.ctx.events_applied} events as asked (--stop-after-events)")

    def finish(self) -> None:
        """Train to the end of the schedule and write the last checkpoint."""
        if not self.done:
            self.trainer.train_until(self.schedule.total_steps)
            self.state["done"] = True
            self._checkpoint()
        self.trainer.close()

    def _checkpoint(self) -> None:
        if self.trainer.checkpoint_step is None and not self.resumed:  # the first write of this phase
            if self.ctx.is_main:
                self.ctx.claim()
                if self.run_folder is not None:
                    self.run_folder.claim()
                self._write_run_files()
            self.resumed = True
        self.trainer.save()

    # ----- what events do
    def score_weights(self, pathway: str | None = None, candidates: Any | None = None) -> dict[str, torch.Tensor]:
        """What ``pathway``'s blocks are scored on: θ (``--scores shared``, one pathway, or no
        pathway named), ``θ_ref + Δ_pathway`` (``own-updates``; :mod:`.scores`), or a copy of the
        model fine-tuned on its language within ``candidates`` (``finetune``; :mod:`.finetune_scores`)."""
        if self.finetune is not None and pathway is not None:
            assert self.event is not None, "scores are computed at an event of pending()"
            return self.finetune.weights(pathway, candidates, self.event.index)
        if self.attribution is not None and pathway is not None and pathway in self.attribution.delta:
            return self.attribution.weights(pathway)
        return self.weights()

    def select(self, sparsity: float, candidates: Any | None, pathway: str | None = None) -> Any:
        """``Prune(s, C)`` on the scores of ``pathway`` (:meth:`score_weights`; timed as mask computation)."""
        from ..sparsity.blocks import select_masks

        weights = self.score_weights(pathway, candidates)  # a scoring fine-tune is timed apart (score_seconds)
        t0 = time.perf_counter()
        try:
            ms = select_masks(weights, sparsity, block=self.cfg.block, norm=self.cfg.norm, scope=self.cfg.scope,
                              candidates=candidates)
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
        if self.ctx.dist.enabled:  # every rank installs rank 0's masks (they agree anyway; this makes it certain)
            from ..sparsity.broadcast import broadcast_masks

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
        if ev.kind in ("prune", "adapt"):
            self._add(f"{ev.kind}_events", 1)
        if not self.ctx.is_main:
            return
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
                "wall_seconds": self.clock.seconds(), "train_seconds": float(self.trainer.train_seconds),
                "mask_seconds": float(self.state.get("mask_seconds", 0.0)), "time": time.time(),
            })
        self.ctx.claim()
        for name in sorted(new):
            save_level(self.ctx.out, name, after[name], ev.sparsity,
                       {"method": self.cfg.method, "event": ev.kind, "step": self.trainer.step, "run": self.key})
        append_history(self.ctx.out, rows)

    def save_rewind_point(self) -> None:
        """Save the current weights as the rewind point (LTH)."""
        from ..io import save_tensors

        if self.ctx.is_main:
            self.ctx.claim()
            save_tensors(self.folder / REWIND_NAME, self.model.state_dict(), {"step": self.trainer.step})
        self.ctx.barrier()

    def rewind(self) -> None:
        """Reset every weight to the rewind point and start a fresh optimizer (LTH): fresh AdamW
        moments whatever ``--optimizer-state``; with ``--lr-schedule-scope round`` the prune that
        comes with the rewind also restarts the schedule, warm-up first."""
        from ..io import load_tensors

        tensors, _ = load_tensors(self.folder / REWIND_NAME, device=self.ctx.device)
        with torch.no_grad():
            self.model.load_state_dict(tensors)
        self.trainer.reset_optimizer()
