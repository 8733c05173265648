"""`asr-pathways demo` (`make demo`): the whole pipeline at a reduced size, end to end.

1. a synthetic 4-language corpus (en, fr, it, nl; 2 hours each; espeak-ng), cached in ``data/demo``;
2. a small dense multilingual RNN-T (2,800 steps), cached in ``runs/demo/dense``;
3. a monolingual comparison on fr: IMP to 50% vs adaptive masking from the IMP-25% mask;
4. a multilingual comparison: ASR Pathways vs Dynamic ASR Pathways, both from LTH-50% masks;
5. a report (Markdown + plots) in ``runs/demo/report`` and the tables printed at the end, then the dense
   model's average WER and, per pruned row, its WER and share of distinct hypotheses; rows whose output
   is degenerate (the same few hypotheses for most utterances, :mod:`asr_pathways.metrics`) are flagged
   and their comparisons print "not compared" instead of a relative reduction.

The first line printed says what the demo does and does not measure: it shows the pipeline working
end to end; it does not measure the paper's claims (one seed, a dense model far from converged).

It is a small configuration (the ``demo`` profile, ``bench/profiles/demo.yaml``) of the benchmark
behind ``asr-pathways bench`` (:mod:`asr_pathways.bench`), so every run is cached by its identity: a
second ``make demo`` reuses them and only rewrites the report. ``--fresh`` deletes the cached corpus, model and runs first.
From a fresh clone: 18.7–22.5 minutes on a 2-core AVX-512 BF16 CPU, 29.0 on a 2-core AVX2-only one (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo/report", help="folder of the demo's pruning runs and report")
    p.add_argument("--fresh", action="store_true", help="delete the cached corpus (data/demo), dense model and runs first")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="one progress bar over the runs instead of every run's own bars")


def intro_line(pr: Any) -> str:
    """One line: what the demo does and does not measure (from the profile's sizes)."""
    L = len(pr.languages)
    hours = f"{pr.hours} h per language" if "=" not in pr.hours else f"{pr.hours} h"
    if pr.lexicon_size:
        hours += f", a {pr.lexicon_size:,}-word lexicon"
    seeds = "one seed" if len(pr.seeds) == 1 else f"{len(pr.seeds)} seeds"
    utts = f"{pr.eval_utts} test utterances per language" if pr.eval_utts else "the test split"
    if pr.decoding != "greedy":
        utts += f" ({'beam search' if pr.decoding == 'beam' else 'modified beam search'}, beam {pr.beam})"
    return (f"demo: builds a {L}-language synthetic corpus ({hours}), trains a small dense RNN-T for {pr.dense_steps} steps, "
            f"prunes it to {round(100 * pr.target)}% sparsity (IMP vs adaptive masking on {pr.ablation_language}; ASR Pathways vs "
            f"Dynamic ASR Pathways on all {L} languages) and compares them on {utts} with {seeds}; it shows the pipeline "
            "working end to end, it does not measure the paper's claims (see `asr-pathways bench`).")


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The dense model's average WER, then per pruned row its average WER and share of distinct hypotheses."""
    from .metrics import DEGENERATE_MAX_EMPTY_SHARE, DEGENERATE_MIN_DISTINCT_SHARE

    def mean(v: list[float]) -> float:
        v = [float(x) for x in v if x == x]
        return sum(v) / len(v) if v else float("nan")

    tables = results.get("tables", {})
    lines: list[str] = []
    dense = None
    for t in ("table2", "table1"):  # table 2 is on every language
        row = tables.get(t, {}).get("dense θ_ML")
        if row:
            dense = (row, [l for l in row["wer"] if row["wer"][l]])
            break
    if dense:
        row, langs = dense
        lines.append(f"dense θ_ML: average WER {100 * mean(row['average']):.1f}% over {', '.join(langs)}; "
                     f"{100 * mean(row['distinct_share']):.0f}% distinct hypotheses"
                     + (" — DEGENERATE output" if row.get("degenerate") else ""))
    for t in ("table1", "table2"):
        for label, row in tables.get(t, {}).items():
            if label.startswith("dense"):
                continue
            langs = [l for l in row["wer"] if row["wer"][l]]
            line = (f"{label} ({', '.join(langs)}): WER {100 * mean(row['average']):.1f}%, "
                    f"{100 * mean(row['distinct_share']):.0f}% distinct hypotheses")
            if row.get("degenerate"):
                top = max(row.get("most_common_hypothesis") or [["", 0.0]], key=lambda x: x[1])
                line += (f" — DEGENERATE output: {100 * top[1]:.0f}% of hypotheses are {top[0]!r}; its comparisons are "
                         "not made")
            lines.append(line)
    if lines:
        lines.append(f"(degenerate: in some language, or over all of them, fewer than {100 * DEGENERATE_MIN_DISTINCT_SHARE:.0f}% of the test utterances "
                     f"get distinct hypotheses, or more than {100 * DEGENERATE_MAX_EMPTY_SHARE:.0f}% get an empty one; the "
                     "test sentences are all different)")
    return lines


def run(args: argparse.Namespace) -> int:
    from .bench import BenchOptions, load_profile, run_bench

    pr = load_profile("demo")
    print(intro_line(pr), flush=True)
    out = Path(args.out)
    if args.fresh:
        for d in (Path(pr.corpus_dir), Path(pr.dense_dir), out):
            if d.exists():
                print(f"removing {d}")
                shutil.rmtree(d)
    t0 = time.perf_counter()
    opts = BenchOptions(profile="demo", out=str(out), ablations=False, device=args.device, progress=not args.quiet)
    res = run_bench(opts, profile=pr, command="asr-pathways demo" + (" --fresh" if args.fresh else ""))
    print()
    print(res["report"].text("table1", "table2", "claims", images=False).rstrip())
    print()
    print("\n".join(summary_lines(res)))
    print(f"\ndemo finished in {(time.perf_counter() - t0) / 60:.1f} min; report: {Path(res['out']) / 'report.md'}")
    return 0
