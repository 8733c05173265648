"""The options of `asr-pathways bench`: one dataclass that the command line, ``demo`` and the tests build.

>>> o = BenchOptions(profile="small", seeds=[0], only=["table1"])
>>> o.resolved_out(), to_argv(o)
('bench_runs/small', ['--profile', 'small', '--seeds', '0', '--only', 'table1'])
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option, to_argv
from .profiles import BENCH_PROFILES, PARTS

__all__ = ["BenchOptions", "to_argv"]


@dataclass
class BenchOptions:
    """What to run, where, and with which inputs; the sizes come from the profile."""

    profile: str = option("tiny", help="sizes: tiny (CI), small (2-core CPU), base (one GPU)", choices=BENCH_PROFILES)
    seeds: list[int] | None = option(None, help="comma-separated seeds", default_text="the profile's")
    out: str | None = option(None, help="benchmark folder", default_text="bench_runs/PROFILE")
    only: list[str] | None = option(None, help=f"comma-separated parts: {', '.join(PARTS)}", default_text="the profile's")
    ablations: bool = option(True, help="leave the ablations out")
    corpus: str | None = option(None, help="use this existing corpus (languages of the profile) instead of building one")
    dense: str | None = option(None, help="use this trained dense multilingual run (θ_ML) instead of training one")
    corpus8: str | None = option(None, help="8-language table: an existing 8-language corpus")
    dense8: str | None = option(None, help="8-language table: an existing dense run trained on it")
    eval_utts: int | None = option(None, help="test utterances per language", default_text="the profile's")
    device: str | None = option(None, help="cpu, cuda or auto", default_text="the profile's")
    plan: bool = option(False, help="print the jobs and the time arithmetic, run nothing")
    progress: bool = option(False, help="progress bars of every run (without it: one bar over the runs)")
    benchmarks_md: str | None = option(
        None, help="also write the report's tables into the paper_tables section of this Markdown file, e.g. BENCHMARKS.md",
        metavar="FILE")

    def resolved_out(self) -> str:
        return self.out or f"bench_runs/{self.profile}"
