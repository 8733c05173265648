"""Corpus-build benchmark: hours of audio synthesised per wall-clock minute.

    python benchmarks/corpus_build.py --hours 0.25 --out data/bench-corpus

Builds a fresh corpus (the output folder is removed first), then writes
benchmarks/results/corpus_build.json and the ``corpus_build`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import cpu_model, write_section
    from asr_pathways.data.synth import SynthConfig, build_corpus, parse_hours
    from asr_pathways.io import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--languages", default="en,fr,it,nl")
    p.add_argument("--hours", default="0.25", help="training hours per language (LANG=H,... or one number)")
    p.add_argument("--test-utts", type=int, default=100)
    p.add_argument("--dev-utts", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "data" / "bench-corpus")
    p.add_argument("--keep", action="store_true", help="keep the corpus afterwards")
    args = p.parse_args(argv)

    langs = [l for l in args.languages.split(",") if l]
    shutil.rmtree(args.out, ignore_errors=True)
    cfg = SynthConfig(out=args.out, languages=langs, hours=parse_hours(args.hours, langs), seed=args.seed, jobs=args.jobs,
                      test_utts=args.test_utts, dev_utts=args.dev_utts)
    t0 = time.perf_counter()
    card = build_corpus(cfg)
    wall = time.perf_counter() - t0
    hours = sum(st["hours"] for per in card["languages"].values() for st in per.values())
    utts = sum(st["utterances"] for per in card["languages"].values() for st in per.values())
    cmd = "python benchmarks/corpus_build.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    result = {
        "benchmark": "corpus_build",
        "command": cmd.strip(),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "seed": args.seed,
        "jobs": args.jobs or os.cpu_count(),
        "languages": langs,
        "hours_built": round(hours, 4),
        "utterances": utts,
        "wall_s": round(wall, 2),
        "hours_per_wall_minute": round(hours / (wall / 60.0), 3),
        "date": time.strftime("%Y-%m-%d"),
    }
    atomic_write_json(ROOT / "benchmarks" / "results" / "corpus_build.json", result)
    section = "\n".join([
        "## Corpus build (espeak-ng synthesis)",
        "",
        f"`{result['command']}` (seed {args.seed}, {result['jobs']} jobs) on {result['machine']['cpu']}, {result['machine']['cores']} cores:",
        "",
        "| languages | hours built (all splits) | utterances | wall time (s) | hours of audio per wall minute |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| {','.join(langs)} | {hours:.3f} | {utts} | {wall:.1f} | **{result['hours_per_wall_minute']:.2f}** |",
        "",
        "Target: at least 1 hour of audio per wall minute. Raw numbers: benchmarks/results/corpus_build.json.",
    ])
    write_section("corpus_build", section)
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
