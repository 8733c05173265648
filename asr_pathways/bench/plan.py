"""The paper's tables, reproduced and extended: `asr-pathways bench --profile {tiny,small,base}`.

Every number comes from runs made by the project's own commands (``corpus synth``, ``train``,
``evaluate``, ``prune``), called in-process. Each run lives in a folder named by a hash of its
command and of the commands that built its inputs (``OUT/runs/s{seed}/{name}-{hash}``), so a rerun
reuses every finished run and resumes an interrupted one (``prune`` and ``train`` resume from their
checkpoints). The corpus and dense models live in fixed folders; one that was built by another command
(e.g. fewer dense steps) stops the run with a message instead of being reused.

Pipelines (per seed; the dense multilingual model θ_ML is trained once and shared by the seeds,
which vary data order and augmentation of every pruning/fine-tuning run):

Table 1, monolingual (one model per language, all from θ_ML):
  dense θ_ML                    θ_ML itself (no extra training; evaluated once)
  dense mono, continued         θ_ML fine-tuned on the language for as many steps as IMP takes (control)
  IMP-70% / LTH-70%             per language, p per round, T steps per round, final round
  adaptive from IMP/LTH-50%/70% masks of that IMP/LTH run at 50% or 70%; weights from θ_ML;
                                every adaptive phase trains R·T steps (R = rounds from 50% to 70%),
                                with an adaptation at n in every block of T steps
Table 2, multilingual (one weight set, one mask per language):
  dense θ_ML, dense multi continued (R·T multilingual steps, one batch per language: control)
  LAP-70% (LTH base, pooled), ASR Pathways (LTH-70% masks, R·T steps), Dynamic ASR Pathways from
  LTH-50%, LTH-70%, LAP-50%, LAP-70% (R·T steps each, the same budget as ASR Pathways)
Table 3, cost: cost.json of every pipeline, the upstream pruning runs included.
Ablations (cheap pipelines): monolingual adaptive from IMP-50% on one language (n, several n, p,
  candidates own, zero_trainable, 1x1 / 16x1 blocks, global scope, rounds 3× longer) and IMP-70% with
  rounds 3× longer (how much of the cost of pruning is recovery time); Dynamic from LTH-50% with
  candidates all / own; Dynamic from LAP-70% with --scores shared.
Beyond the paper: Table 2 on 8 languages (its own corpus and dense model).

Report: :mod:`benchmarks.paper_report`. Statistics: every cell is mean ± std over seeds; relative reductions (WER_base − WER) / WER_base of
the macro-average WER, with a 95% CI from a paired bootstrap over test utterances (same indices for
both methods) and seeds (:func:`asr_pathways.report.paired_bootstrap`). Every row also shows its share of
distinct hypotheses (:func:`asr_pathways.metrics.hypothesis_diversity`); a comparison with a degenerate arm
(a model emitting the same few strings) is reported as "not compared" instead of a relative reduction.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAPER = {  # the paper's numbers (relative WER reductions), for the claims table
    "adaptive_vs_imp": "5.3%",
    "dynamic_vs_pathways": "2–5.8%",
    "lap_adapt_vs_lth": "≈ 0",
}
PARTS = ("table1", "table2", "table3", "ablations", "table2_8lang")


# ------------------------------------------------------------------------------------ profiles
@dataclass(frozen=True)
class EightLanguages:
    """The 8-language Table 2 (beyond the paper): its own corpus and dense model."""

    languages: tuple[str, ...] = ("en", "fr", "it", "nl", "de", "es", "pt", "pl")
    hours: str = "1"
    test_utts: int = 500
    dev_utts: int = 50
    dense_steps: int = 1500
    corpus_dir: str | None = None  # None: OUT/corpus8
    seeds: tuple[int, ...] | None = None  # None: the profile's seeds
    eval_utts: int | None = None  # None: the profile's eval_utts


@dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark run. ``None`` paths are placed under ``--out``."""

    name: str
    preset: str
    languages: tuple[str, ...] = ("en", "fr", "it", "nl")
    hours: str = "en=8,fr=4,nl=4,it=1"
    test_utts: int = 500
    dev_utts: int = 250
    corpus_dir: str | None = None
    dense_dir: str | None = None
    dense_steps: int = 3000
    max_duration: float | None = None  # batch seconds of audio (None: the preset's / the dense run's)
    T: int = 10  # steps per pruning round
    n: int = 5  # adaptation step within a round
    p: float = 0.25  # prune step (absolute)
    target: float = 0.7
    mid: float = 0.5
    block: str = "8x1"
    seeds: tuple[int, ...] = (0, 1, 2)
    eval_utts: int | None = 500  # test utterances per language (first N; the same for every method)
    ablation_language: str = "fr"
    ablation_seeds: tuple[int, ...] | None = (0,)  # None: every seed
    ablation_eval_utts: int | None = 250
    parts: tuple[str, ...] = ("table1", "table2", "table3", "ablations")
    eight: EightLanguages | None = None
    device: str = "cpu"
    benchmarks_md: bool = False  # write the BENCHMARKS.md section
    # planning constants (seconds), used only by --plan's arithmetic
    step_seconds: float = 0.5  # one monolingual batch, forward + backward + optimizer share
    eval_seconds_per_utt: float = 0.05
    overhead_seconds: float = 8.0  # per run: loading corpus manifests, model, checkpoints
    budget_minutes: float | None = None
    threads: int | None = None  # torch threads while the benchmark runs (None: leave as is)
    note: str = ""


TINY = Profile(
    name="tiny", preset="tiny", hours="0.004", test_utts=6, dev_utts=2, dense_steps=6, max_duration=4.0,
    T=2, n=1, p=0.25, seeds=(0,), eval_utts=None, ablation_language="fr", ablation_seeds=None, ablation_eval_utts=None,
    parts=("table1", "table2", "table3", "ablations", "table2_8lang"),
    eight=EightLanguages(hours="0.003", test_utts=4, dev_utts=1, dense_steps=4),
    step_seconds=0.03, eval_seconds_per_utt=0.01, overhead_seconds=0.4, budget_minutes=2, threads=1,
    note="CI smoke test: every table with tiny numbers (a few seconds of audio; WER is meaningless).",
)

SMALL = Profile(
    name="small", preset="small", corpus_dir="data/bench-small", dense_dir="runs/bench-small-dense",
    dense_steps=1500, T=30, n=15, p=0.25, seeds=(0, 1, 2), eval_utts=500, ablation_seeds=(0,), ablation_eval_utts=250,
    eight=EightLanguages(hours="1", test_utts=500, dev_utts=50, dense_steps=1500, corpus_dir="data/bench-small8",
                         seeds=(0,), eval_utts=200),
    benchmarks_md=True, budget_minutes=90, step_seconds=0.2, eval_seconds_per_utt=0.01, overhead_seconds=8,
    note=(
        "This 2-core CPU, 3 seeds, at most 90 minutes given a corpus and a dense model (--corpus data/mls4 --dense "
        "runs/bench-dense); building them first adds ~3 min (corpus: 19 h of audio at ~6 h/min) and ~20 min (1500 dense "
        "steps of 4 × 16 s at ~0.8 s). Arithmetic (`asr-pathways bench --profile small --plan` prints it): one monolingual "
        "batch of 16 s of audio (the dense run's max_duration) ≈ 0.2 s (forward, backward, optimizer); p = 0.25 gives the "
        "levels 0, 0.25, 0.5, 0.7 (4 rounds from 0, R = 2 rounds from 50%). Per seed, T = 30: IMP and LTH 4 rounds × 30 "
        "steps × 4 languages = 480 batches each; 4 adaptive runs × 60 steps × 4 = 960; dense mono continued 4 × 120 = 480; "
        "LAP 120 steps × 4 batches = 480; ASR Pathways and 4 Dynamic runs 5 × 60 × 4 = 1200; dense multi continued 60 × 4 = "
        "240: 4320 batches = 14.4 min; three seeds 43.2 min. Ablations on seed 0: 12 monolingual runs on fr (1260 batches) "
        "and 3 Dynamic runs (720): 6.6 min. Evaluation: greedy decoding ≈ 0.01 s per test utterance (measured: 1600 "
        "utterances in 15 s); 14 four-language evaluations per seed × 3 + θ_ML = 43 × 2000 utterances, plus the ablations "
        "(12 × 250 + 3 × 1000) = 92,000 utterances ≈ 15.3 min. Overhead (manifests, model, checkpoints) ≈ 8 s × 67 runs ≈ "
        "9 min. Total ≈ 74 min. T = 30 is the longest round that fits: rounds of T = 10 left every pruned model ~30 WER "
        "points behind the dense one, and the IMP round-length ablation (T = 90) measures how much recovery time still "
        "costs. The 8-language table needs its own corpus and dense model and is outside the 90 minutes: `--only "
        "table2_8lang` (~50 min more: 1500 dense steps of 8 × 16 s at ~1.4 s ≈ 34 min, then one seed of the multilingual "
        "methods, ~16 min)."
    ),
)

BASE = Profile(
    name="base", preset="base", corpus_dir="data/bench-base", dense_dir="runs/bench-base-dense",
    hours="en=40,fr=20,nl=20,it=5", test_utts=1000, dev_utts=500, dense_steps=20000, T=500, n=250, p=0.1,
    seeds=(0, 1, 2), eval_utts=None, ablation_seeds=None, ablation_eval_utts=500, device="auto",
    parts=("table1", "table2", "table3", "ablations", "table2_8lang"),
    eight=EightLanguages(hours="10", test_utts=1000, dev_utts=200, dense_steps=20000, corpus_dir="data/bench-base8"),
    benchmarks_md=True, step_seconds=0.25, eval_seconds_per_utt=0.01, overhead_seconds=20,
    note="One GPU: base preset (tens of millions of parameters), rounds of 500 steps, p = 0.1 as in METHOD.md.",
)

DEMO = Profile(
    name="demo", preset="small", hours="1", test_utts=150, dev_utts=20, corpus_dir="data/demo", dense_dir="runs/demo/dense",
    dense_steps=600, T=10, n=5, p=0.35, mid=0.35, seeds=(0,), eval_utts=150, ablation_language="fr", ablation_seeds=(0,),
    parts=("demo_mono", "demo_multi"), step_seconds=0.2, eval_seconds_per_utt=0.02, overhead_seconds=6, budget_minutes=15,
    note=(
        "`asr-pathways demo`: 4 languages × 1 h of synthetic audio, a small dense RNN-T trained for only 600 steps (far from "
        "converged), IMP vs adaptive masking on fr, ASR Pathways vs Dynamic ASR Pathways on all four languages, 150 test "
        "utterances per language, one seed. A demonstration of the pipeline, not a measurement: see `asr-pathways bench`."
    ),
)

PROFILES = {p.name: p for p in (TINY, SMALL, BASE, DEMO)}


# ------------------------------------------------------------------------------------ jobs
@dataclass
class Job:
    """One command of the benchmark: its folder, what it needs, and how to tell it is finished."""

    name: str  # e.g. "imp"
    kind: str  # corpus | train | evaluate | prune
    argv: list[str]  # the command (folder appended at run time; extra_fn adds run-time flags)
    folder: Path
    seed: int | None = None
    languages: tuple[str, ...] = ()
    batches: int = 0  # planned monolingual batches (training)
    eval_utts: int = 0  # planned decoded utterances
    extra_fn: Callable[[], list[str]] | None = None

    @property
    def done(self) -> bool:
        if self.kind == "corpus":
            return (self.folder / "card.json").is_file() and (self.folder / "bench_job.json").is_file()
        if self.kind == "prune":
            return (self.folder / "cost.json").is_file()
        return (self.folder / "bench_job.json").is_file()

    def full_argv(self) -> list[str]:
        return [*self.argv, *(self.extra_fn() if self.extra_fn else [])]

    def stale(self) -> list[str] | None:
        """The command recorded in the folder when it differs from this job's (None: same, or not recorded).

        Hash-named folders cannot hold another command, but the fixed ones (the corpus, the dense models)
        can: a profile that asks for more dense steps must not silently reuse the shorter run."""
        marker = self.folder / "bench_job.json"
        if not marker.is_file():
            return None
        argv = list(json.loads(marker.read_text()).get("argv") or [])
        if len(argv) >= 2 and argv[-2] == "--out":
            argv = argv[:-2]
        if not argv:
            return None
        return argv if argv != self.full_argv() else None


def _hash(parts: list[str]) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:8]


def _invoke(argv: list[str]) -> int:
    """Run one ``asr-pathways`` subcommand in this process (no tcmalloc re-exec, errors raised)."""
    import importlib

    from asr_pathways.cli import SUBCOMMANDS, build_parser

    args = build_parser(argv[0]).parse_args(argv)
    return int(importlib.import_module(SUBCOMMANDS[argv[0]][0]).run(args) or 0)


def run_job(job: Job, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``job`` unless it is finished; return its ``bench_job.json`` record (wall seconds)."""
    marker = job.folder / "bench_job.json"
    if job.done:
        recorded = job.stale()
        if recorded is not None:
            raise RuntimeError(
                f"{job.folder} holds the result of `asr-pathways {' '.join(recorded)}`, but this profile asks for "
                f"`asr-pathways {' '.join(job.full_argv())}`. Move or delete {job.folder} to rebuild it, or pass the "
                "folder explicitly (--corpus/--dense/--corpus8/--dense8) to reuse it as it is.")
        if marker.is_file():
            return json.loads(marker.read_text())
        return {"wall_seconds": None, "reused": True}
    from asr_pathways.io import atomic_write_json

    argv = [*job.full_argv(), "--out", str(job.folder)]
    log("$ asr-pathways " + " ".join(shlex.quote(a) for a in argv))
    t0 = time.perf_counter()
    rc = _invoke(argv)
    if rc != 0:
        raise RuntimeError(f"`asr-pathways {' '.join(argv)}` exited with {rc}")
    rec = {"name": job.name, "kind": job.kind, "seed": job.seed, "argv": argv, "wall_seconds": time.perf_counter() - t0,
           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    job.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, rec)
    return rec


# ------------------------------------------------------------------------------------ plan
def _levels(start: float, target: float, p: float) -> list[float]:
    from asr_pathways.methods.common import sparsity_levels

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
        self.labels: dict[str, dict[str, Any]] = {}

    # ----- helpers
    def _add(self, key: str, job: Job) -> Job:
        if key not in self.jobs:
            self.jobs[key] = job
        return self.jobs[key]

    def _folder(self, seed: int | None, name: str, argv: list[str], root: Path | None = None) -> Path:
        """``runs/s{seed}/{name}-{hash}``. The hash covers the command and, for an input the benchmark builds
        in a fixed folder (corpus, dense model), the command that builds it, so a rebuilt input is not
        paired with results computed from the old one."""
        sub = "shared" if seed is None else f"s{seed}"
        upstream = [" ".join(j.argv) for j in self.jobs.values() if j.name in ("corpus", "dense", "corpus8", "dense8")
                    and str(j.folder) in argv]
        return (root or self.ctx.out / "runs") / sub / f"{name}-{_hash(argv + upstream)}"

    def common_prune(self, seed: int, corpus: Path, eval_utts: int | None) -> list[str]:
        pr = self.pr
        a = ["--target", f"{pr.target:g}", "--prune-step", f"{pr.p:g}", "--round-steps", str(pr.T), "--block", pr.block,
             "--seed", str(seed), "--corpus", str(corpus), "--device", pr.device]
        if pr.max_duration:
            a += ["--max-duration", f"{pr.max_duration:g}"]
        if eval_utts == 0:  # an upstream run whose WER no table shows
            a += ["--eval-split", "none"]
        elif eval_utts is not None:
            a += ["--eval-max-utts", str(eval_utts)]
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

    def adapt_flags(self, init: float, T: int | None = None, n: list[int] | None = None, p: float | None = None) -> tuple[list[str], int]:
        """Flags of an adaptive phase from ``init`` and its steps: from the middle level, rounds of T;
        from the target, one round of R·T steps with an adaptation at n in every block of T steps."""
        T = T or self.pr.T
        ns = n or [self.pr.n]
        p = p or self.pr.p
        if init < self.pr.target - 1e-9:
            rounds = len(_levels(init, self.pr.target, p))
            return ["--init-sparsity", f"{init:g}", "--round-steps", str(T), "--adapt-at", ",".join(map(str, ns)),
                    "--prune-step", f"{p:g}"], rounds * T
        steps = self.R * T
        at = [k * T + x for k in range(self.R) for x in ns]
        return ["--init-sparsity", f"{init:g}", "--round-steps", str(steps), "--adapt-at", ",".join(map(str, at))], steps

    # ----- shared inputs
    def corpus_job(self, path: Path, languages: tuple[str, ...], hours: str, test: int, dev: int) -> Job:
        argv = ["corpus", "synth", "--languages", ",".join(languages), "--hours", hours, "--test-utts", str(test),
                "--dev-utts", str(dev), "--seed", "0"]
        if not self.ctx.progress:
            argv.append("--no-progress")
        return Job("corpus", "corpus", argv, path, languages=languages)

    def dense_job(self, corpus: Path, path: Path, languages: tuple[str, ...], steps: int) -> Job:
        argv = ["train", "--preset", self.pr.preset, "--corpus", str(corpus), "--steps", str(steps), "--seed", "0",
                "--eval-split", "none", "--device", self.pr.device, "--languages", ",".join(languages)]
        if self.pr.max_duration:
            argv += ["--max-duration", f"{self.pr.max_duration:g}"]
        from asr_pathways.asr.model import load_preset

        per_step = int(load_preset(self.pr.preset).get("train", {}).get("languages_per_step", 1))
        per_step = len(languages) if per_step <= 0 else min(per_step, len(languages))
        return Job("dense", "train", argv, path, languages=languages, batches=steps * per_step)

    def eval_job(self, dense: Path, corpus: Path, languages: tuple[str, ...], utts: int | None, tag: str = "") -> Job:
        argv = ["evaluate", str(dense), "--corpus", str(corpus), "--languages", ",".join(languages), "--device", self.pr.device]
        if utts is not None:
            argv += ["--max-utts", str(utts)]
        return Job("dense-eval" + tag, "evaluate", argv, self._folder(None, "dense-eval" + tag, argv),
                   languages=languages, eval_utts=(utts or self.pr.test_utts) * len(languages))

    def continued_job(self, seed: int, name: str, dense: Path, corpus: Path, languages: tuple[str, ...], steps: int,
                      eval_utts: int | None, multilingual: bool) -> Job:
        argv = ["train", "--init", str(dense), "--corpus", str(corpus), "--languages", ",".join(languages),
                "--steps", str(steps), "--seed", str(seed), "--warmup-steps", str(min(math.ceil(steps / 10), 100)),
                "--lr-schedule", "cosine", "--batching", "language",
                "--device", self.pr.device, "--preset", self.pr.preset, "--languages-per-step", "0" if multilingual else "1"]
        if eval_utts is not None:
            argv += ["--eval-max-utts", str(eval_utts)]

        def from_dense() -> list[str]:  # the dense run's optimiser settings, as the pruning phases use them
            from asr_pathways.methods.common import PruneConfig
            from asr_pathways.train import read_run_config

            rc = read_run_config(dense)
            t = rc.train
            batch = float(t["max_duration"]) / (len(rc.languages) if t.get("batching") == "mixed" else 1)  # as phases do
            return ["--lr", repr(PruneConfig.lr_factor * float(t["lr"])), "--max-duration", repr(batch),
                    "--bf16" if t.get("bf16", True) else "--no-bf16"]

        return Job(name, "train", argv, self._folder(seed, name, argv), seed=seed, languages=languages,
                   batches=steps * len(languages), eval_utts=(eval_utts or self.pr.test_utts) * len(languages), extra_fn=from_dense)

    def prune_job(self, seed: int, name: str, method: str, dense: Path, corpus: Path, languages: tuple[str, ...],
                  extra: list[str], batches: int, eval_utts: int | None) -> Job:
        argv = ["prune", "--method", method, "--from", str(dense), "--languages", ",".join(languages),
                *self.common_prune(seed, corpus, eval_utts), *extra]
        return Job(name, "prune", argv, self._folder(seed, name, argv), seed=seed, languages=languages, batches=batches,
                   eval_utts=(eval_utts or self.pr.test_utts) * len(languages) if eval_utts != 0 else 0)

    # ----- the tables
    def monolingual(self, seed: int, dense: Path, corpus: Path, langs: tuple[str, ...], ev: int | None, tag: str = "") -> dict[str, str]:
        """IMP, LTH, adaptive from both at the middle level and the target, dense mono continued."""
        T, L = self.pr.T, len(langs)
        full = self.full_rounds * T
        keys = {}
        for m in ("imp", "lth"):
            k = f"s{seed}/{m}{tag}"
            self._add(k, self.prune_job(seed, m + tag, m, dense, corpus, langs, [], full * L, ev))
            keys[m] = k
        for m in ("imp", "lth"):
            for s in (self.pr.mid, self.pr.target):
                flags, steps = self.adapt_flags(s)
                name = f"adapt-{m}{round(100 * s)}{tag}"
                k = f"s{seed}/{name}"
                up = self.jobs[keys[m]]
                self._add(k, self.prune_job(seed, name, "adaptive", dense, corpus, langs, ["--masks-from", str(up.folder), *flags], steps * L, ev))
                keys[name[: -len(tag)] if tag else name] = k
        for l in langs:
            name = f"dense-mono-{l}{tag}"
            k = f"s{seed}/{name}"
            self._add(k, self.continued_job(seed, name, dense, corpus, (l,), full, ev, multilingual=False))
            keys.setdefault("dense-mono", [])
            keys["dense-mono"].append(k)  # type: ignore[union-attr]
        return keys

    def multilingual(self, seed: int, dense: Path, corpus: Path, langs: tuple[str, ...], ev: int | None, tag: str = "") -> dict[str, Any]:
        T, L = self.pr.T, len(langs)
        full = self.full_rounds * T
        ml = self.R * T
        keys: dict[str, Any] = {}
        k = f"s{seed}/lth{tag}"
        self._add(k, self.prune_job(seed, "lth" + tag, "lth", dense, corpus, langs, [], full * L, ev))
        keys["lth"] = k
        k = f"s{seed}/lap{tag}"
        self._add(k, self.prune_job(seed, "lap" + tag, "lap", dense, corpus, langs, ["--lap-base", "lth"], full * L, ev))
        keys["lap"] = k
        k = f"s{seed}/pathways{tag}"
        self._add(k, self.prune_job(seed, "pathways" + tag, "pathways", dense, corpus, langs,
                                    ["--masks-from", str(self.jobs[keys["lth"]].folder), "--steps", str(ml)], ml * L, ev))
        keys["pathways"] = k
        for src in ("lth", "lap"):
            for s in (self.pr.mid, self.pr.target):
                flags, steps = self.adapt_flags(s)
                name = f"dyn-{src}{round(100 * s)}"
                k = f"s{seed}/{name}{tag}"
                self._add(k, self.prune_job(seed, name + tag, "dynamic", dense, corpus, langs,
                                            ["--masks-from", str(self.jobs[keys[src]].folder), *flags], steps * L, ev))
                keys[name] = k
        name = "dense-multi"
        k = f"s{seed}/{name}{tag}"
        self._add(k, self.continued_job(seed, name + tag, dense, corpus, langs, ml, ev, multilingual=True))
        keys[name] = k
        return keys

    def ablations(self, seed: int, dense: Path, corpus: Path, langs: tuple[str, ...]) -> dict[str, tuple[str, str, str]]:
        """name → (job key, base key, description). Monolingual ones run on one language."""
        pr = self.pr
        A = pr.ablation_language if pr.ablation_language in langs else langs[0]
        ev = pr.ablation_eval_utts
        imp = self.jobs[f"s{seed}/imp"].folder
        T = pr.T
        out: dict[str, tuple[str, str, str]] = {}
        base_key = f"s{seed}/adapt-imp{round(100 * pr.mid)}"
        quarter, three = max(1, T // 4), min(T - 1, max(1, (3 * T) // 4))
        variants: list[tuple[str, str, list[str], int]] = []
        for desc, n in ((f"n = {quarter} (T/4)", [quarter]), (f"n = {three} (3T/4)", [three]),
                        (f"n = {max(1, T // 3)},{max(1, 2 * T // 3)} (two adaptations per round)", sorted({max(1, T // 3), max(1, 2 * T // 3)}))):
            if n == [pr.n]:
                continue
            flags, steps = self.adapt_flags(pr.mid, n=n)
            variants.append(("n=" + ",".join(map(str, n)), desc, flags, steps))
        for p in (pr.p / 2.5, pr.p / 5):
            p = round(p, 4)
            flags, steps = self.adapt_flags(pr.mid, p=p)
            variants.append((f"p={p:g}", f"p = {p:g} ({len(_levels(pr.mid, pr.target, p))} rounds from {pr.mid:g})", flags, steps))
        flags, steps = self.adapt_flags(pr.mid)
        variants += [
            ("cand=own", "candidates own (no revival)", [*flags, "--candidates", "own"], steps),
            ("zero_trainable", "pruned weights zero_trainable (PARP)", [*flags, "--pruned-weights", "zero_trainable"], steps),
            ("block=1x1", "1x1 blocks (unstructured) in the adaptive phase", [*flags, "--block", "1x1"], steps),
            ("block=16x1", "16x1 blocks in the adaptive phase", [*flags, "--block", "16x1"], steps),
            ("scope=global", "global ranking instead of layer-wise", [*flags, "--scope", "global"], steps),
        ]
        long_T, long_n = 3 * T, [min(3 * T - 1, 3 * x) for x in [pr.n]]
        flags, steps = self.adapt_flags(pr.mid, T=long_T, n=long_n)
        variants.append((f"T={long_T}", f"rounds of T = {long_T} (3×) in the adaptive phase, n = {long_n[0]}", flags, steps))
        for short, desc, flags, steps in variants:
            name = f"abl-{short.replace('=', '').replace(',', '-')}"
            k = f"s{seed}/{name}"
            self._add(k, self.prune_job(seed, name, "adaptive", dense, corpus, (A,), ["--masks-from", str(imp), *flags], steps, ev))
            out[short] = (k, base_key, f"adaptive from IMP-{round(100 * pr.mid)}% on {A}: {desc}")
        # the round length of the baseline itself: IMP-70% on A with rounds 3× longer (base: IMP-70% of the table)
        long_T = 3 * T
        name = f"abl-imp-T{long_T}"
        k = f"s{seed}/{name}"
        self._add(k, self.prune_job(seed, name, "imp", dense, corpus, (A,), ["--round-steps", str(long_T)],
                                    self.full_rounds * long_T, ev))
        out[f"imp T={long_T}"] = (k, f"s{seed}/imp", f"IMP-{round(100 * pr.target)}% on {A}: rounds of T = {long_T} (3×)")
        flags, steps = self.adapt_flags(pr.mid)
        lth = self.jobs[f"s{seed}/lth"].folder
        lap = self.jobs[f"s{seed}/lap"].folder
        for cand in ("all", "own"):
            name = f"abl-dyn-cand{cand}"
            k = f"s{seed}/{name}"
            self._add(k, self.prune_job(seed, name, "dynamic", dense, corpus, langs,
                                        ["--masks-from", str(lth), *flags, "--candidates", cand], steps * len(langs), ev))
            out[f"dyn cand={cand}"] = (k, f"s{seed}/dyn-lth{round(100 * pr.mid)}", f"Dynamic from LTH-{round(100 * pr.mid)}%: candidates {cand}")
        flags, steps = self.adapt_flags(pr.target)
        name = "abl-dyn-scores-shared"
        k = f"s{seed}/{name}"
        self._add(k, self.prune_job(seed, name, "dynamic", dense, corpus, langs,
                                    ["--masks-from", str(lap), *flags, "--scores", "shared"], steps * len(langs), ev))
        out["dyn scores=shared"] = (k, f"s{seed}/dyn-lap{round(100 * pr.target)}",
                                    f"Dynamic from LAP-{round(100 * pr.target)}%: --scores shared (every language ranks on θ)")
        return out

    def build(self) -> dict[str, Any]:
        ctx, pr = self.ctx, self.pr
        langs = pr.languages
        layout: dict[str, Any] = {"seeds": {}, "ablations": {}, "eight": {}}
        ev = ctx.eval_utts
        need_main = any(p in ctx.parts for p in ("table1", "table2", "table3", "ablations", "demo_mono", "demo_multi"))
        if need_main and not ctx.corpus_given:
            self._add("corpus", self.corpus_job(ctx.corpus, langs, pr.hours, pr.test_utts, pr.dev_utts))
        if need_main and not ctx.dense_given:
            self._add("dense", self.dense_job(ctx.corpus, ctx.dense, langs, pr.dense_steps))
        if need_main:
            layout["dense_eval"] = "dense-eval"
            self._add("dense-eval", self.eval_job(ctx.dense, ctx.corpus, langs, ev))
        for seed in ctx.seeds:
            keys: dict[str, Any] = {}
            if any(p in ctx.parts for p in ("table1", "table3", "ablations")):
                keys.update(self.monolingual(seed, ctx.dense, ctx.corpus, langs, ev))
            if any(p in ctx.parts for p in ("table2", "table3", "ablations")):
                keys.update(self.multilingual(seed, ctx.dense, ctx.corpus, langs, ev))
            if "demo_mono" in ctx.parts:
                A = (pr.ablation_language,)
                full = self.full_rounds * pr.T
                keys["imp"] = f"s{seed}/imp"
                self._add(keys["imp"], self.prune_job(seed, "imp", "imp", ctx.dense, ctx.corpus, A, [], full, ev))
                flags, steps = self.adapt_flags(pr.mid)
                name = f"adapt-imp{round(100 * pr.mid)}"
                keys[name] = f"s{seed}/{name}"
                self._add(keys[name], self.prune_job(seed, name, "adaptive", ctx.dense, ctx.corpus, A,
                                                     ["--masks-from", str(self.jobs[keys["imp"]].folder), *flags], steps, ev))
            if "demo_multi" in ctx.parts:  # ASR Pathways vs Dynamic ASR Pathways, both from the LTH masks at the target
                ml = self.R * pr.T
                L = len(langs)
                tgt = round(100 * pr.target)
                keys["lth"] = f"s{seed}/lth"
                self._add(keys["lth"], self.prune_job(seed, "lth", "lth", ctx.dense, ctx.corpus, langs, [], self.full_rounds * pr.T * L, 0))
                keys["pathways"] = f"s{seed}/pathways"
                self._add(keys["pathways"], self.prune_job(seed, "pathways", "pathways", ctx.dense, ctx.corpus, langs,
                                                           ["--masks-from", str(self.jobs[keys["lth"]].folder), "--steps", str(ml)], ml * L, ev))
                flags, steps = self.adapt_flags(pr.target)
                keys[f"dyn-lth{tgt}"] = f"s{seed}/dyn-lth{tgt}"
                self._add(keys[f"dyn-lth{tgt}"], self.prune_job(seed, f"dyn-lth{tgt}", "dynamic", ctx.dense, ctx.corpus, langs,
                                                                ["--masks-from", str(self.jobs[keys["lth"]].folder), *flags], steps * L, ev))
            layout["seeds"][seed] = keys
            abl_seeds = pr.ablation_seeds if pr.ablation_seeds is not None else ctx.seeds
            if "ablations" in ctx.parts and seed in abl_seeds:
                layout["ablations"][seed] = self.ablations(seed, ctx.dense, ctx.corpus, langs)
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
                layout["eight"][seed] = self.multilingual(seed, d8, c8, e.languages, ev8, tag="-8lang")
        layout["dense_eval8"] = "dense-eval8" if "dense-eval8" in self.jobs else None
        return layout


def _done_column(job: Job) -> str:
    if not job.done:
        return ""
    try:
        return "STALE (another command)" if job.stale() is not None else "yes"
    except (OSError, ValueError):  # an input the stale check reads is missing
        return "yes"


# ------------------------------------------------------------------------------------ estimates
def estimate(jobs: list[Job], pr: Profile) -> dict[str, float]:
    batches = sum(j.batches for j in jobs if j.kind != "corpus" and j.name not in ("dense", "dense8"))
    dense = sum(j.batches for j in jobs if j.name in ("dense", "dense8"))
    utts = sum(j.eval_utts for j in jobs)
    runs = sum(1 for j in jobs if j.kind != "corpus")
    return {
        "batches": batches, "train_seconds": batches * pr.step_seconds, "dense_batches": dense,
        "dense_seconds": dense * pr.step_seconds, "eval_utterances": utts, "eval_seconds": utts * pr.eval_seconds_per_utt,
        "runs": runs, "overhead_seconds": runs * pr.overhead_seconds,
        "total_seconds": batches * pr.step_seconds + utts * pr.eval_seconds_per_utt + runs * pr.overhead_seconds,
    }


def plan_text(jobs: list[Job], pr: Profile, ctx: Context) -> str:
    lines = [f"profile {pr.name}: preset {pr.preset}, languages {','.join(pr.languages)}, seeds {list(ctx.seeds)}, "
             f"T={pr.T} n={pr.n} p={pr.p:g} target={pr.target:g} block={pr.block}, eval {ctx.eval_utts or 'all'} utterances/language",
             f"corpus {ctx.corpus}{' (given)' if ctx.corpus_given else ''}; dense {ctx.dense}{' (given)' if ctx.dense_given else ''}", "",
             f"{'job':<34} {'kind':<8} {'langs':>5} {'batches':>8} {'eval utts':>9}  done"]
    for j in jobs:
        lines.append(f"{(f's{j.seed}/' if j.seed is not None else '') + j.name:<34} {j.kind:<8} {len(j.languages):>5} {j.batches:>8} {j.eval_utts:>9}  {_done_column(j)}")
    todo = [j for j in jobs if not j.done]
    for title, js in (("all jobs", jobs), ("still to run", todo)):
        e = estimate(js, pr)
        lines += ["", f"{title}: {e['runs']} runs; {e['batches']} pruning/fine-tuning batches × {pr.step_seconds:g} s = "
                      f"{e['train_seconds'] / 60:.1f} min; {e['eval_utterances']} decoded utterances × {pr.eval_seconds_per_utt:g} s = "
                      f"{e['eval_seconds'] / 60:.1f} min; {e['runs']} runs × {pr.overhead_seconds:g} s overhead = {e['overhead_seconds'] / 60:.1f} min; "
                      f"total ≈ {e['total_seconds'] / 60:.1f} min"
                      + (f" (+ dense training {e['dense_batches']} batches ≈ {e['dense_seconds'] / 60:.1f} min)" if e["dense_batches"] else "")
                      + (f"; budget {pr.budget_minutes:g} min" if pr.budget_minutes else "")]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ main
class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None/False/True ones (their help says what happens)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, True) or action.required:
            return action.help
        return super()._get_help_string(action)


def profiles_help() -> str:
    return "profiles:\n" + "\n".join(
        f"  {k:<6} preset {v.preset}, {len(v.languages)} languages ({v.hours} h), {len(v.seeds)} seed(s), T={v.T}, "
        f"p={v.p:g}, {v.eval_utts or 'all'} test utterances/language" + (f", budget {v.budget_minutes:g} min" if v.budget_minutes else "")
        for k, v in PROFILES.items() if k != "demo")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = _Formatter
    p.epilog = profiles_help() + "\n\nFinished runs are reused (folders named by a hash of their command); rerun to resume."
    p.add_argument("--profile", choices=[k for k in PROFILES if k != "demo"], default="tiny", help="sizes: tiny (CI), small (2-core CPU), base (one GPU)")
    p.add_argument("--seeds", help="comma-separated seeds (default: the profile's)")
    p.add_argument("--out", help="benchmark folder (default: bench_runs/PROFILE)")
    p.add_argument("--only", help=f"comma-separated parts: {', '.join(PARTS)} (default: the profile's)")
    p.add_argument("--no-ablations", action="store_true", help="leave the ablations out")
    p.add_argument("--corpus", help="use this existing corpus (languages of the profile) instead of building one")
    p.add_argument("--dense", help="use this trained dense multilingual run (θ_ML) instead of training one")
    p.add_argument("--corpus8", help="8-language table: an existing 8-language corpus")
    p.add_argument("--dense8", help="8-language table: an existing dense run trained on it")
    p.add_argument("--eval-utts", type=int, default=None, help="test utterances per language (default: the profile's)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: the profile's)")
    p.add_argument("--plan", action="store_true", help="print the jobs and the time arithmetic, run nothing")
    p.add_argument("--progress", action="store_true", help="progress bars of every run (default: one bar over the runs)")
    p.add_argument("--benchmarks-md", dest="benchmarks_md", action="store_true", default=None, help="write the paper_tables section of BENCHMARKS.md (default: on for small and base)")
    p.add_argument("--no-benchmarks-md", dest="benchmarks_md", action="store_false", help="do not touch BENCHMARKS.md")


def make_context(pr: Profile, args: argparse.Namespace) -> Context:
    out = Path(args.out or f"bench_runs/{pr.name}")
    if getattr(args, "device", None):
        pr = replace(pr, device=args.device)
    seeds = tuple(int(s) for s in args.seeds.split(",")) if getattr(args, "seeds", None) else pr.seeds
    parts = tuple(x.strip() for x in args.only.split(",")) if getattr(args, "only", None) else pr.parts
    bad = [x for x in parts if x not in PARTS + ("demo_mono", "demo_multi")]
    if bad:
        from asr_pathways.errors import InputError

        raise InputError(f"unknown part(s) {bad}", field="--only", expected=", ".join(PARTS))
    if getattr(args, "no_ablations", False):
        parts = tuple(x for x in parts if x != "ablations")
    corpus = Path(args.corpus) if getattr(args, "corpus", None) else Path(pr.corpus_dir) if pr.corpus_dir else out / "corpus"
    dense = Path(args.dense) if getattr(args, "dense", None) else Path(pr.dense_dir) if pr.dense_dir else out / "dense"
    e = pr.eight
    c8 = Path(args.corpus8) if getattr(args, "corpus8", None) else (Path(e.corpus_dir) if e and e.corpus_dir else out / "corpus8")
    d8 = Path(args.dense8) if getattr(args, "dense8", None) else out / "dense8"
    ev = args.eval_utts if getattr(args, "eval_utts", None) is not None else pr.eval_utts
    ctx = Context(pr, out, corpus, dense, seeds, parts, corpus_given=bool(getattr(args, "corpus", None)),
                  dense_given=bool(getattr(args, "dense", None)), progress=bool(getattr(args, "progress", False)), eval_utts=ev,
                  corpus8=c8, dense8=d8, corpus8_given=bool(getattr(args, "corpus8", None)),
                  dense8_given=bool(getattr(args, "dense8", None)))
    if ctx.corpus_given:
        from asr_pathways.errors import InputError

        if not (corpus / "card.json").is_file():
            raise InputError("not a corpus folder", path=corpus, expected="card.json (asr-pathways corpus synth ...)")
    if ctx.dense_given and not (dense / "checkpoint.safetensors").is_file():
        from asr_pathways.errors import InputError

        raise InputError("not a trained run", path=dense, expected="checkpoint.safetensors (asr-pathways train ...)")
    return ctx


def run_profile(pr: Profile, args: argparse.Namespace, command: str | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Plan, run every unfinished job, write the report; return the results dict (``--plan``: the plan)."""
    t_start = time.perf_counter()
    ctx = make_context(pr, args)
    pr = ctx.profile
    command = command or "asr-pathways " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    planner = Planner(ctx)
    layout = planner.build()
    jobs = list(planner.jobs.values())
    if getattr(args, "plan", False):
        text = plan_text(jobs, pr, ctx)
        print(text)
        return {"plan": text, "jobs": [j.name for j in jobs], "estimate": estimate(jobs, pr)}
    ctx.out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    log = log or (lambda s: None if not ctx.progress else print(s))
    records: dict[str, dict[str, Any]] = {}
    import torch

    threads = torch.get_num_threads()
    if pr.threads:  # a tiny model gains nothing from 2 threads, and 1 thread does not stall when the CPU is shared
        torch.set_num_threads(pr.threads)
    bar = tqdm(total=len(jobs), desc=f"bench {pr.name}", unit="run", dynamic_ncols=True)
    try:
        for key, job in planner.jobs.items():
            bar.set_postfix_str(key)
            records[key] = run_job(job, log)
            bar.update(1)
    finally:
        bar.close()
        torch.set_num_threads(threads)
    wall = time.perf_counter() - t_start
    from benchmarks.paper_report import build_report, write_benchmarks_section

    results = build_report(planner, layout, records, ctx, wall, command)
    from asr_pathways.io import atomic_write_json

    atomic_write_json(ctx.out / "jobs.json", {k: {"folder": str(j.folder), "argv": j.full_argv() if j.done else j.argv,
                                                 "record": records.get(k)} for k, j in planner.jobs.items()})
    write_md = args.benchmarks_md if getattr(args, "benchmarks_md", None) is not None else pr.benchmarks_md
    if write_md:
        results["benchmarks_md"] = str(write_benchmarks_section(results, ctx, command))
    results["out"] = str(ctx.out)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    run_profile(PROFILES[args.profile], args, command_line_of(argv))
    return 0


def command_line_of(argv: list[str] | None) -> str:
    from benchmarks.common import command_line

    return command_line("benchmarks/paper.py", argv)


if __name__ == "__main__":
    sys.exit(main())
