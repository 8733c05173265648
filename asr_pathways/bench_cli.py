"""`asr-pathways bench`: the benchmark that reproduces (and extends) the paper's tables.

    asr-pathways bench --profile tiny                      # CI smoke test, every table with tiny numbers
    asr-pathways bench --profile small --plan              # the jobs and the time arithmetic, nothing run
    asr-pathways bench --profile small --corpus data/mls4 --dense runs/bench-dense
    asr-pathways bench --profile base --device cuda        # one GPU

The code lives in the repository's ``benchmarks/paper.py`` (next to this package; the package is
installed in editable mode). Finished runs are reused: rerun the same command to resume.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

from .errors import InputError


def benchmarks_root() -> Path:
    """The repository holding ``benchmarks/paper.py`` (the parent of this package's folder)."""
    return Path(__file__).resolve().parent.parent


def load_paper() -> ModuleType:
    root = benchmarks_root()
    if not (root / "benchmarks" / "paper.py").is_file():
        raise InputError(
            "the benchmark code (benchmarks/paper.py) is not next to the installed package", path=root / "benchmarks",
            hint="run `asr-pathways bench` from a source checkout installed in editable mode (pip install -e .); "
                 "an installed wheel carries the library only",
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("benchmarks.paper")


def add_arguments(p: argparse.ArgumentParser) -> None:
    try:
        paper = load_paper()
    except InputError:
        p.add_argument("--profile", default="tiny")
        return
    paper.add_arguments(p)


def output_folder(args: argparse.Namespace) -> Path | None:
    """The benchmark folder (locked while the benchmark runs); none for ``--plan``."""
    if getattr(args, "plan", False):
        return None
    return Path(getattr(args, "out", None) or f"bench_runs/{args.profile}")


def run(args: argparse.Namespace) -> int:
    paper = load_paper()
    res = paper.run_profile(paper.PROFILES[args.profile], args)
    if "out" in res:
        print(f"report: {Path(res['out']) / 'report.md'}")
    return 0
