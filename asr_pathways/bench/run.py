"""Run the benchmark: plan the jobs of a profile, run every unfinished one, write the report.

    from asr_pathways.bench import BenchOptions, run_bench
    run_bench(BenchOptions(profile="tiny", out="bench_runs/tiny"))

Every number comes from runs made by the project's own commands (``corpus synth``, ``train``,
``evaluate``, ``prune``), called in-process. A rerun reuses every finished run and resumes an
interrupted one (``prune`` and ``train`` resume from their checkpoints).
"""

from __future__ import annotations

import shlex
import sys
import time
from typing import Any, Callable

from .jobs import Job, done_column, estimate, run_job
from .options import BenchOptions, to_argv
from .plan import Context, Planner, make_context
from .profiles import Profile, load_profile


def plan_estimate(jobs: list[Job], pr: Profile) -> dict[str, float]:
    """:func:`.jobs.estimate` at the profile's rates."""
    return estimate(jobs, pr.step_seconds, pr.eval_seconds_per_utt, pr.overhead_seconds)


def plan_text(jobs: list[Job], pr: Profile, ctx: Context) -> str:
    """The jobs (kind, languages, batches, utterances, done) and the time arithmetic, as `bench --plan` prints them."""
    lines = [f"profile {pr.name}: preset {pr.preset}, languages {','.join(pr.languages)}, seeds {list(ctx.seeds)}, "
             f"T={pr.T} n={pr.n} p={pr.p:g} target={pr.target:g} block={pr.block}, eval {ctx.eval_utts or 'all'} utterances/language",
             f"corpus {ctx.corpus}{' (given)' if ctx.corpus_given else ''}; dense {ctx.dense}{' (given)' if ctx.dense_given else ''}", "",
             f"{'job':<34} {'kind':<8} {'langs':>5} {'batches':>8} {'eval utts':>9}  done"]
    for j in jobs:
        lines.append(f"{(f's{j.seed}/' if j.seed is not None else '') + j.name:<34} {j.kind:<8} {len(j.languages):>5} {j.batches:>8} "
                     f"{j.eval_utts:>9}  {done_column(j)}")
    todo = [j for j in jobs if not j.done]
    for title, js in (("all jobs", jobs), ("still to run", todo)):
        e = plan_estimate(js, pr)
        lines += ["", f"{title}: {e['runs']} runs; {e['batches']} pruning/fine-tuning batches × {pr.step_seconds:g} s = "
                      f"{e['train_seconds'] / 60:.1f} min; {e['eval_utterances']} decoded utterances × {pr.eval_seconds_per_utt:g} s = "
                      f"{e['eval_seconds'] / 60:.1f} min; {e['runs']} runs × {pr.overhead_seconds:g} s overhead = {e['overhead_seconds'] / 60:.1f} min; "
                      f"total ≈ {e['total_seconds'] / 60:.1f} min"
                      + (f" (+ dense training {e['dense_batches']} batches ≈ {e['dense_seconds'] / 60:.1f} min)" if e["dense_batches"] else "")
                      + (f"; budget {pr.budget_minutes:g} min" if pr.budget_minutes else "")]
    return "\n".join(lines)


def run_bench(opts: BenchOptions, profile: Profile | None = None, command: str | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Plan, run every unfinished job, write the report; return the results (``opts.plan``: the plan only).

    ``profile`` overrides ``opts.profile`` (the demo passes its own); ``command`` is what the
    report records as the command (default: the ``bench`` command that ``opts`` stands for).
    """
    t_start = time.perf_counter()
    pr = profile or load_profile(opts.profile)
    ctx = make_context(pr, opts)
    pr = ctx.profile
    command = command or "asr-pathways bench " + " ".join(shlex.quote(a) for a in to_argv(opts))
    planner = Planner(ctx)
    layout = planner.build()
    jobs = list(planner.jobs.values())
    if opts.plan:
        text = plan_text(jobs, pr, ctx)
        print(text)
        return {"plan": text, "jobs": jobs, "estimate": plan_estimate(jobs, pr)}
    ctx.out.mkdir(parents=True, exist_ok=True)
    records = run_jobs(planner, ctx, log)
    from .report import build_report, write_benchmarks_section

    results = build_report(planner, layout, records, ctx, time.perf_counter() - t_start, command)
    from ..io import atomic_write_json

    atomic_write_json(ctx.out / "jobs.json", {k: {"folder": str(j.folder), "identity": j.identity,
                                                 "argv": j.full_argv() if j.done else j.argv, "record": records.get(k)}
                                             for k, j in planner.jobs.items()})
    if opts.benchmarks_md:
        results["benchmarks_md"] = str(write_benchmarks_section(results, ctx, opts.benchmarks_md))
    results["out"] = str(ctx.out)
    return results


def run_jobs(planner: Planner, ctx: Context, log: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run every job in order (finished ones are reused) under one progress bar; their records by key."""
    import torch

    from ..progress import progress_bar

    pr = ctx.profile
    log = log or (lambda s: None if not ctx.progress else print(s))
    records: dict[str, dict[str, Any]] = {}
    threads = torch.get_num_threads()
    if pr.threads:  # a tiny model gains nothing from 2 threads, and 1 thread does not stall when the CPU is shared
        torch.set_num_threads(pr.threads)
    bar = progress_bar(total=len(planner.jobs), desc=f"bench {pr.name}", unit="run")
    try:
        for key, job in planner.jobs.items():
            bar.set_postfix_str(key)
            records[key] = run_job(job, log)
            bar.update(1)
    finally:
        bar.close()
        torch.set_num_threads(threads)
    return records


def main(argv: list[str] | None = None) -> int:
    """``python -m asr_pathways.bench.run ...``: the same as ``asr-pathways bench ...``."""
    from ..cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
