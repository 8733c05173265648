"""The plan of the benchmark: every job of a profile, in run order, and how long it should take.

Per seed (the dense multilingual model θ_ML is trained once and shared by the seeds, which vary data
order and augmentation of every pruning/fine-tuning run); the arms and their equal budgets are
described in :mod:`.arms`, the comparisons in :mod:`.claims`, the check that compared arms are
matched in :mod:`.budget`:

Table 1, monolingual (the profile's ``mono_languages``, one model per language, all from θ_ML):
  dense θ_ML, dense mono continued (as many steps as IMP: the control), IMP-70%, adaptive from
  IMP-50% and its ``--candidates own`` twin; secondary seeds: LTH-70%, adaptive from LTH-50%, from
  IMP/LTH-70% (each with its twin).
Table 2, multilingual (one weight set, one mask per language):
  dense multi continued, LAP-70%, ASR Pathways (LTH-70% masks; the LAP-70% mask held fixed; LTH masks
  at the union-matched ``union_sparsity``), Dynamic from LTH-50% and LAP-50% with twins; secondary
  seeds: the ``--scores shared`` variants (with their twins), Dynamic from LTH/LAP-70%, ASR Pathways at
  LTH-50%; literal seeds (default the secondary ones): the ``--scores finetune`` variants of Dynamic from
  LTH/LAP-50% with their twins.
Table 3, cost: cost.json of every pipeline, the upstream pruning runs included, and the steps at the
  final mask of every arm.
Ablations (ablation seeds): monolingual adaptive from IMP-50% on one language (n, several n, p,
  zero_trainable, 1x1 / 16x1 blocks, global scope, the paper's final-round adaptation, rounds 3×
  longer) and IMP-70% with rounds 3× longer; Dynamic from LTH-50% with candidates all.
Beyond the paper: Table 2 on 8 languages (its own corpus and dense model; headline arms only).

Final models are evaluated on test, once each (``--eval-split test``; schedules and learning rates are
chosen on dev). (50% and 70% are the profile's ``mid`` and ``target``.) Each run lives in a folder
named by its identity (``OUT/runs/s{seed}/{name}-{identity}``, :mod:`.jobs`); the corpus and dense
models live in fixed folders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import arms
from .jobs import Job
from .options import BenchOptions
from .profiles import DEMO_PARTS, PARTS, Profile


def _levels(start: float, target: float, p: float) -> list[float]:
    from ..methods.schedule import sparsity_levels

    return sparsity_levels(start, target, p)


@dataclass
class Context:
    """Where things go, resolved from the profile and the command line."""

    profile: Profile
    out: Path
    corpus: Path
    dense: Path
    seeds: tuple[int, ...]
    parts: tuple[str, ...]
    corpus_given: bool = False
    dense_given: bool = False
    progress: bool = False
    eval_utts: int | None = None
    corpus8: Path | None = None
    dense8: Path | None = None
    corpus8_given: bool = False
    dense8_given: bool = False


class Planner:
    """Builds the job list of a profile (the same code for tiny, small, base and the demo)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.pr = ctx.profile
        self.jobs: dict[str, Job] = {}  # key -> job, in run order

    # ----- helpers
    def _add(self, key: str, job: Job) -> Job:
        if key not in self.jobs:
            self.jobs[key] = job
        return self.jobs[key]

    def _inputs(self, argv: list[str]) -> dict[str, str]:
        """Identity of every input the benchmark builds in a fixed folder (corpus, dense model) named in ``argv``."""
        return {str(j.folder): j.identity for j in self.jobs.values()
                if j.name in ("corpus", "dense", "corpus8", "dense8") and str(j.folder) in argv}

    def _job(self, seed: int | None, name: str, kind: str, argv: list[str], **kw: Any) -> Job:
        """A job in ``runs/s{seed}/{name}-{identity}`` (``runs/shared/`` without a seed)."""
        job = Job(name, kind, argv, Path(), seed=seed, inputs=self._inputs(argv), **kw)
        job.folder = self.ctx.out / "runs" / ("shared" if seed is None else f"s{seed}") / f"{name}-{job.identity[:8]}"
        return job

    @property
    def decoding_args(self) -> list[str]:
        """How every final model is decoded: nothing for greedy (the commands, and so the job identities, of
        greedy profiles stay as they were), else ``--decoding D --beam N``."""
        pr = self.pr
        return [] if pr.decoding == "greedy" else ["--decoding", pr.decoding, "--beam", str(pr.beam)]

    def common_prune(self, seed: int, corpus: Path, eval_utts: int | None) -> list[str]:
        pr = self.pr
        a = ["--target", f"{pr.target:g}", "--prune-step", f"{pr.p:g}", "--round-steps", str(pr.T), "--block", pr.block,
             "--seed", str(seed), "--corpus", str(corpus), "--device", pr.device]
        if self.phase_batch:
            a += ["--max-duration", f"{self.phase_batch:g}"]
        if eval_utts == 0:  # an upstream run whose WER no table shows
            a += ["--eval-split", "none"]
        else:  # a final model: evaluated on test, once (schedules and learning rates are chosen on dev)
            a += ["--eval-split", "test"] + (["--eval-max-utts", str(eval_utts)] if eval_utts is not None else [])
            a += self.decoding_args
        if not self.ctx.progress:
            a += ["--no-progress"]
        return a

    @property
    def R(self) -> int:
        """Rounds of an adaptive phase from the middle sparsity (its training budget is R·T)."""
        return len(_levels(self.pr.mid, self.pr.target, self.pr.p))

    @property
    def full_rounds(self) -> int:
        return len(_levels(0.0, self.pr.target, self.pr.p))

    def levels(self, start: float, target: float | None = None, p: float | None = None) -> list[float]:
        """The sparsity of every round from ``start`` to ``target`` (default the profile's) by ``p``."""
        return _levels(start, self.pr.target if target is None else target, p or self.pr.p)

    @property
    def phase_batch(self) -> float | None:
        """Seconds per language batch the profile sets for the pruning phases and dense controls
        (``phase_max_duration``, else ``max_duration``; None: prune's default, the dense run's batch)."""
        return self.pr.phase_max_duration or self.pr.max_duration

    @property
    def mono_languages(self) -> tuple[str, ...]:
        """The languages of the monolingual claim (the profile's ``mono_languages``, default all)."""
        return tuple(l for l in (self.pr.mono_languages or self.pr.languages) if l in self.pr.languages)

    def adapt_flags(self, init: float, T: int | None = None, n: list[int] | None = None, p: float | None = None,
                    matched: bool = False) -> tuple[list[str], int]:
        """Flags of an adaptive phase from ``init`` and its steps.

        ``matched`` (the benchmark's arms, :mod:`.arms`): from the middle level, rounds of T with no
        adaptation in the final round; from the target, one round of T steps. Otherwise (the demo): from
        the middle level, rounds of T; from the target, one round of R·T steps with an adaptation at n
        in every block of T steps."""
        T = T or self.pr.T
        ns = n or [self.pr.n]
        p = p or self.pr.p
        if init < self.pr.target - 1e-9:
            rounds = len(_levels(init, self.pr.target, p))
            return ["--init-sparsity", f"{init:g}", "--round-steps", str(T), "--adapt-at", ",".join(map(str, ns)),
                    "--prune-step", f"{p:g}", *(["--no-final-adapt"] if matched else [])], rounds * T
        if matched:
            return ["--init-sparsity", f"{init:g}", "--round-steps", str(T), "--adapt-at", ",".join(map(str, ns))], T
        steps = self.R * T
        at = [k * T + x for k in range(self.R) for x in ns]
        return ["--init-sparsity", f"{init:g}", "--round-steps", str(steps), "--adapt-at", ",".join(map(str, at))], steps

    # ----- shared inputs
    def corpus_job(self, path: Path, languages: tuple[str, ...], hours: str, test: int, dev: int, lexicon: int | None = None) -> Job:
        argv = ["corpus", "synth", "--languages", ",".join(languages), "--hours", hours, "--test-utts", str(test),
                "--dev-utts", str(dev), "--seed", "0"]
        if lexicon:
            argv += ["--lexicon-size", str(lexicon)]
        if not self.ctx.progress:
            argv.append("--no-progress")
        return Job("corpus", "corpus", argv, path, languages=languages)  # a fixed folder: no inputs

    def dense_job(self, corpus: Path, path: Path, languages: tuple[str, ...], steps: int) -> Job:
        argv = ["train", "--preset", self.pr.preset, "--corpus", str(corpus), "--steps", str(steps), "--seed", "0",
                "--eval-split", "none", "--device", self.pr.device, "--languages", ",".join(languages)]
        if self.pr.max_duration:
            argv += ["--max-duration", f"{self.pr.max_duration:g}"]
        from ..asr.model import load_preset

        per_step = int(load_preset(self.pr.preset).get("train", {}).get("languages_per_step", 1))
        per_step = len(languages) if per_step <= 0 else min(per_step, len(languages))
        return Job("dense", "train", argv, path, languages=languages, batches=steps * per_step, inputs=self._inputs(argv))

    def eval_job(self, dense: Path, corpus: Path, languages: tuple[str, ...], utts: int | None, tag: str = "") -> Job:
        argv = ["evaluate", str(dense), "--corpus", str(corpus), "--languages", ",".join(languages), "--device", self.pr.device]
        if utts is not None:
            argv += ["--max-utts", str(utts)]
        argv += self.decoding_args + (["--plain-names"] if self.decoding_args else [])  # results.py reads hyps_test.jsonl
        return self._job(None, "dense-eval" + tag, "evaluate", argv, languages=languages,
                         eval_utts=(utts or self.pr.test_utts) * len(languages))

    def continued_job(self, seed: int, name: str, dense: Path, corpus: Path, languages: tuple[str, ...], steps: int,
                      eval_utts: int | None, multilingual: bool) -> Job:
        argv = ["train", "--init", str(dense), "--corpus", str(corpus), "--languages", ",".join(languages),
                "--steps", str(steps), "--seed", str(seed), "--warmup-steps", str(min(math.ceil(steps / 10), 100)),
                "--lr-schedule", "cosine", "--batching", "language", "--eval-split", "test",
                "--device", self.pr.device, "--preset", self.pr.preset, "--languages-per-step", "0" if multilingual else "1"]
        if eval_utts is not None:
            argv += ["--eval-max-utts", str(eval_utts)]
        argv += self.decoding_args
        if multilingual and self.pr.language_loss != "equal":
            argv += ["--language-loss", self.pr.language_loss]
        profile_batch = self.phase_batch  # as common_prune's phases
        if profile_batch:  # in the command, so that the job's identity changes with the profile's batch
            argv += ["--max-duration", f"{profile_batch:g}"]

        def from_dense() -> list[str]:  # the dense run's optimiser settings (and batch), as the pruning phases use them
            from ..methods.config import PruneConfig
            from ..methods.lr import phase_batch_seconds
            from ..runs import read_run_config

            t = read_run_config(dense).train
            batch = [] if profile_batch else ["--max-duration", repr(phase_batch_seconds(t))]
            return ["--lr", repr(PruneConfig.lr_factor * float(t["lr"])), *batch,
                    "--bf16" if t.get("bf16", True) else "--no-bf16"]

        return self._job(seed, name, "train", argv, languages=languages, batches=steps * len(languages),
                         eval_utts=(eval_utts or self.pr.test_utts) * len(languages), extra_fn=from_dense)

    def prune_job(self, seed: int, name: str, method: str, dense: Path, corpus: Path, languages: tuple[str, ...],
                  extra: list[str], batches: int, eval_utts: int | None) -> Job:
        from ..methods.config import MONOLINGUAL_METHODS

        weigh = self.pr.language_loss != "equal" and method not in MONOLINGUAL_METHODS  # (mono: one language per step)
        argv = ["prune", "--method", method, "--from", str(dense), "--languages", ",".join(languages),
                *self.common_prune(seed, corpus, eval_utts), *(["--language-loss", self.pr.language_loss] if weigh else []),
                *extra]
        return self._job(seed, name, "prune", argv, languages=languages, batches=batches,
                         eval_utts=(eval_utts or self.pr.test_utts) * len(languages) if eval_utts != 0 else 0)

    def build(self) -> dict[str, Any]:
        ctx, pr = self.ctx, self.pr
        langs = pr.languages
        layout: dict[str, Any] = {"seeds": {}, "ablations": {}, "eight": {}}
        ev = ctx.eval_utts
        need_main = any(p in ctx.parts for p in ("table1", "table2", "table3", "ablations", "demo_mono", "demo_multi"))
        if need_main and not ctx.corpus_given:
            self._add("corpus", self.corpus_job(ctx.corpus, langs, pr.hours, pr.test_utts, pr.dev_utts, pr.lexicon_size))
        if need_main and not ctx.dense_given:
            self._add("dense", self.dense_job(ctx.corpus, ctx.dense, langs, pr.dense_steps))
        if need_main:
            layout["dense_eval"] = "dense-eval"
            self._add("dense-eval", self.eval_job(ctx.dense, ctx.corpus, langs, ev))
        secondary = pr.secondary_seeds if pr.secondary_seeds is not None else ctx.seeds
        literal = pr.literal_seeds if pr.literal_seeds is not None else secondary
        for seed in ctx.seeds:
            keys: dict[str, Any] = {}
            sec = seed in secondary
            if any(p in ctx.parts for p in ("table2", "table3", "ablations")):  # first: its LTH run is Table 1's too
                keys.update(arms.multilingual(self, seed, ctx.dense, ctx.corpus, langs, ev, sec, literal=seed in literal))
            if any(p in ctx.parts for p in ("table1", "table3", "ablations")):
                keys.update(arms.monolingual(self, seed, ctx.dense, ctx.corpus, self.mono_languages, langs, ev, sec))
            if "demo_mono" in ctx.parts:
                A = (pr.ablation_language,)
                full = self.full_rounds * pr.T
                keys["imp"] = f"s{seed}/imp"
                self._add(keys["imp"], self.prune_job(seed, "imp", "imp", ctx.dense, ctx.corpus, A, [], full, ev))
                flags, steps = self.adapt_flags(pr.mid)
                name = pr.method_key("adapt", "imp", pr.mid)
                keys[name] = f"s{seed}/{name}"
                self._add(keys[name], self.prune_job(seed, name, "adaptive", ctx.dense, ctx.corpus, A,
                                                     ["--masks-from", str(self.jobs[keys["imp"]].folder), *flags], steps, ev))
            if "demo_multi" in ctx.parts:  # ASR Pathways vs Dynamic ASR Pathways, both from the LTH masks at the target
                ml = self.R * pr.T
                L = len(langs)
                dyn = pr.method_key("dyn", "lth", pr.target)
                keys["lth"] = f"s{seed}/lth"
                self._add(keys["lth"], self.prune_job(seed, "lth", "lth", ctx.dense, ctx.corpus, langs, [], self.full_rounds * pr.T * L, 0))
                keys["pathways"] = f"s{seed}/pathways"
                self._add(keys["pathways"], self.prune_job(seed, "pathways", "pathways", ctx.dense, ctx.corpus, langs,
                                                           ["--masks-from", str(self.jobs[keys["lth"]].folder), "--steps", str(ml)], ml * L, ev))
                flags, steps = self.adapt_flags(pr.target)
                keys[dyn] = f"s{seed}/{dyn}"
                self._add(keys[dyn], self.prune_job(seed, dyn, "dynamic", ctx.dense, ctx.corpus, langs,
                                                    ["--masks-from", str(self.jobs[keys["lth"]].folder), *flags], steps * L, ev))
            layout["seeds"][seed] = keys
            abl_seeds = pr.ablation_seeds if pr.ablation_seeds is not None else ctx.seeds
            if "ablations" in ctx.parts and seed in abl_seeds:
                layout["ablations"][seed] = arms.ablations(self, seed, ctx.dense, ctx.corpus, langs)
        if "table2_8lang" in ctx.parts and pr.eight is not None:
            e = pr.eight
            c8, d8 = ctx.corpus8, ctx.dense8
            assert c8 is not None and d8 is not None
            if not ctx.corpus8_given:
                self._add("corpus8", replace(self.corpus_job(c8, e.languages, e.hours, e.test_utts, e.dev_utts), name="corpus8"))
            if not ctx.dense8_given:
                self._add("dense8", replace(self.dense_job(c8, d8, e.languages, e.dense_steps), name="dense8"))
            ev8 = e.eval_utts if e.eval_utts is not None else ev
            self._add("dense-eval8", self.eval_job(d8, c8, e.languages, ev8, tag="8"))
            for seed in (e.seeds if e.seeds is not None else ctx.seeds):
                layout["eight"][seed] = arms.multilingual(self, seed, d8, c8, e.languages, ev8, False, tag="-8lang")
        layout["dense_eval8"] = "dense-eval8" if "dense-eval8" in self.jobs else None
        return layout


def make_context(pr: Profile, opts: BenchOptions) -> Context:
    """Where every input and run goes, from the profile and the options (checked: given inputs must exist)."""
    out = Path(opts.out or f"bench_runs/{pr.name}")
    if opts.device:
        pr = replace(pr, device=opts.device)
    seeds = tuple(opts.seeds) if opts.seeds else pr.seeds
    parts = tuple(opts.only) if opts.only else pr.parts
    bad = [x for x in parts if x not in PARTS + DEMO_PARTS]
    if bad:
        raise InputError(f"unknown part(s) {bad}", field="--only", expected=", ".join(PARTS))
    if not opts.ablations:
        parts = tuple(x for x in parts if x != "ablations")
    corpus = Path(opts.corpus) if opts.corpus else Path(pr.corpus_dir) if pr.corpus_dir else out / "corpus"
    dense = Path(opts.dense) if opts.dense else Path(pr.dense_dir) if pr.dense_dir else out / "dense"
    e = pr.eight
    c8 = Path(opts.corpus8) if opts.corpus8 else (Path(e.corpus_dir) if e and e.corpus_dir else out / "corpus8")
    d8 = Path(opts.dense8) if opts.dense8 else out / "dense8"
    ev = opts.eval_utts if opts.eval_utts is not None else pr.eval_utts
    ctx = Context(pr, out, corpus, dense, seeds, parts, corpus_given=bool(opts.corpus), dense_given=bool(opts.dense),
                  progress=opts.progress, eval_utts=ev, corpus8=c8, dense8=d8, corpus8_given=bool(opts.corpus8),
                  dense8_given=bool(opts.dense8))
    if ctx.corpus_given and not (corpus / "card.json").is_file():
        raise InputError("not a corpus folder", path=corpus, expected="card.json (asr-pathways corpus synth ...)")
    if ctx.dense_given and not (dense / "checkpoint.safetensors").is_file():
        raise InputError("not a trained run", path=dense, expected="checkpoint.safetensors (asr-pathways train ...)")
    return ctx
