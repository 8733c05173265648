"""`asr-pathways demo` (`make demo`): the whole pipeline at a reduced size, end to end.

1. a synthetic 4-language corpus (en, fr, it, nl; 1 hour each; espeak-ng), cached in ``data/demo``;
2. a small dense multilingual RNN-T (600 steps), cached in ``runs/demo/dense``;
3. a monolingual comparison on fr: IMP to 70% vs adaptive masking from the IMP-35% mask;
4. a multilingual comparison: ASR Pathways vs Dynamic ASR Pathways, both from LTH-70% masks;
5. a report (Markdown + plots) in ``runs/demo/report`` and the tables printed at the end.

It is a small configuration (the ``demo`` profile) of the benchmark behind ``asr-pathways bench``
(``benchmarks/paper.py``), so every run is cached by its command: a second ``make demo`` reuses
them and only rewrites the report. ``--fresh`` deletes the cached corpus, model and runs first.
About 12 minutes on a 2-core CPU from scratch.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo/report", help="folder of the demo's pruning runs and report")
    p.add_argument("--fresh", action="store_true", help="delete the cached corpus (data/demo), dense model and runs first")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="one progress bar over the runs instead of every run's own bars")


def run(args: argparse.Namespace) -> int:
    from .bench_cli import load_paper

    paper = load_paper()
    pr = paper.PROFILES["demo"]
    out = Path(args.out)
    if args.fresh:
        for d in (Path(pr.corpus_dir), Path(pr.dense_dir), out):
            if d.exists():
                print(f"removing {d}")
                shutil.rmtree(d)
    t0 = time.perf_counter()
    ns = argparse.Namespace(out=str(out), seeds=None, only=None, no_ablations=True, corpus=None, dense=None, corpus8=None,
                            dense8=None, eval_utts=None, device=args.device, plan=False, progress=not args.quiet,
                            benchmarks_md=False)
    res = paper.run_profile(pr, ns, command="asr-pathways demo" + (" --fresh" if args.fresh else ""))
    md = res["report_markdown"]
    print()
    keep, on = [], False
    for line in md.splitlines():
        if line.startswith("## "):
            on = line.startswith(("## Table 1", "## Table 2", "## The paper's claims"))
        if on and not line.startswith("!["):
            keep.append(line)
    print("\n".join(keep).rstrip())
    print(f"\ndemo finished in {(time.perf_counter() - t0) / 60:.1f} min; report: {Path(res['out']) / 'report.md'}")
    return 0
