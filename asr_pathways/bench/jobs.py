"""One command of the benchmark (a :class:`Job`), running it once, and the time arithmetic of a plan.

A job is an ``asr-pathways`` command (``corpus synth``, ``train``, ``evaluate``, ``prune``) with
the folder it writes. Its identity (:func:`asr_pathways.runs.identity`) is the hash of its command
and of the identities of the inputs the benchmark builds for it (corpus, dense models), so that a
rebuilt input is never paired with results computed from the old one. Finished jobs record their
identity in ``FOLDER/bench_job.json``; a rerun reuses them, and a fixed folder (the corpus, the
dense models) that holds another command's result stops the run instead of being reused.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError

MARKER = "bench_job.json"


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
    score_batches: int = 0  # planned --scores finetune batches on a model copy (time only: not training, not in the budget)
    eval_utts: int = 0  # planned decoded utterances
    extra_fn: Callable[[], list[str]] | None = None
    inputs: dict[str, str] = field(default_factory=dict)  # folder -> identity of the jobs that build it

    @property
    def identity(self) -> str:
        from ..runs import identity

        return identity({"command": self.argv, "inputs": self.inputs})

    def recorded(self) -> dict[str, Any] | None:
        marker = self.folder / MARKER
        return json.loads(marker.read_text()) if marker.is_file() else None

    @property
    def done(self) -> bool:
        rec = self.recorded()
        return rec is not None and (self.kind != "corpus" or (self.folder / "card.json").is_file())

    def full_argv(self) -> list[str]:
        return [*self.argv, *(self.extra_fn() if self.extra_fn else [])]

    def stale(self) -> list[str] | None:
        """The command recorded in the folder when it is another job's (None: this job's, or nothing recorded)."""
        rec = self.recorded()
        if rec is None:
            return None
        if rec.get("identity") == self.identity:
            return None
        argv = list(rec.get("argv") or [])
        if len(argv) >= 2 and argv[-2] == "--out":
            argv = argv[:-2]
        if "identity" not in rec and argv in (self.argv, self.full_argv()):  # recorded before identities
            return None
        return argv or ["?"]


def invoke(argv: list[str]) -> int:
    """Run one ``asr-pathways`` subcommand in this process (no tcmalloc re-exec, errors raised)."""
    import importlib

    from ..cli import SUBCOMMANDS, build_parser

    args = build_parser(argv[0]).parse_args(argv)
    return int(importlib.import_module(SUBCOMMANDS[argv[0]][0]).run(args) or 0)


def run_job(job: Job, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``job`` unless it is finished; return its ``bench_job.json`` record (wall seconds)."""
    if job.done:
        recorded = job.stale()
        if recorded is not None:
            raise InputError(
                f"the folder holds the result of `asr-pathways {' '.join(recorded)}`, but this benchmark asks for "
                f"`asr-pathways {' '.join(job.full_argv())}`", path=job.folder,
                hint="Move or delete the folder to rebuild it, or pass it explicitly (--corpus/--dense/--corpus8/--dense8) "
                     "to reuse it as it is")
        return job.recorded() or {}
    from ..io import atomic_write_json

    argv = [*job.full_argv(), "--out", str(job.folder)]
    log("$ asr-pathways " + " ".join(shlex.quote(a) for a in argv))
    t0 = time.perf_counter()
    rc = invoke(argv)
    if rc != 0:
        raise RuntimeError(f"`asr-pathways {' '.join(argv)}` exited with {rc}")
    rec = {"name": job.name, "kind": job.kind, "seed": job.seed, "argv": argv, "identity": job.identity,
           "wall_seconds": time.perf_counter() - t0, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    job.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(job.folder / MARKER, rec)
    return rec


# ------------------------------------------------------------------------------------ estimates
def estimate(jobs: list[Job], step_seconds: float, eval_seconds_per_utt: float, overhead_seconds: float) -> dict[str, float]:
    """Batches, decoded utterances and runs of ``jobs``, and the seconds they take at the given rates."""
    batches = sum(j.batches + j.score_batches for j in jobs if j.kind != "corpus" and j.name not in ("dense", "dense8"))
    dense = sum(j.batches for j in jobs if j.name in ("dense", "dense8"))
    utts = sum(j.eval_utts for j in jobs)
    runs = sum(1 for j in jobs if j.kind != "corpus")
    return {
        "batches": batches, "train_seconds": batches * step_seconds, "dense_batches": dense,
        "dense_seconds": dense * step_seconds, "eval_utterances": utts, "eval_seconds": utts * eval_seconds_per_utt,
        "runs": runs, "overhead_seconds": runs * overhead_seconds,
        "total_seconds": batches * step_seconds + utts * eval_seconds_per_utt + runs * overhead_seconds,
    }


def done_column(job: Job) -> str:
    if not job.done:
        return ""
    try:
        return "STALE (another command)" if job.stale() is not None else "yes"
    except (OSError, ValueError):  # an input the stale check reads is missing
        return "yes"
