"""`asr-pathways bench`: the benchmark that reproduces (and extends) the paper's tables.

    asr-pathways bench --profile tiny                      # CI smoke test, every table with tiny numbers
    asr-pathways bench --profile small --plan              # the jobs and the time arithmetic, nothing run
    asr-pathways bench --profile small --corpus data/mls4 --dense runs/bench-dense
    asr-pathways bench --profile base --device cuda        # one GPU

Finished runs are reused: rerun the same command to resume.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..options import add_arguments as add_option_arguments
from ..options import from_args
from .options import BenchOptions
from .profiles import BENCH_PROFILES, load_profile


def profiles_help() -> str:
    lines = []
    for name in BENCH_PROFILES:
        v = load_profile(name)
        lines.append(f"  {name:<6} preset {v.preset}, {len(v.languages)} languages ({v.hours} h), {len(v.seeds)} seed(s), T={v.T}, "
                     f"p={v.p:g}, {v.eval_utts or 'all'} test utterances/language"
                     + (f", budget {v.budget_minutes:g} min" if v.budget_minutes else ""))
    return "profiles:\n" + "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (profiles_help() + "\n\nFinished runs are reused (folders named by the identity of their command); "
                "rerun to resume. BENCHMARKS.md is written only with --benchmarks-md.")
    add_option_arguments(p, BenchOptions)


def output_folder(args: argparse.Namespace) -> Path | None:
    """The benchmark folder, locked while the benchmark runs (none for ``--plan``, which writes nothing)."""
    opts = from_args(BenchOptions, args)
    return None if opts.plan else Path(opts.resolved_out())


def run(args: argparse.Namespace) -> int:
    from .run import run_bench

    res = run_bench(from_args(BenchOptions, args))
    if "out" in res:
        print(f"report: {Path(res['out']) / 'report.md'}")
    return 0
