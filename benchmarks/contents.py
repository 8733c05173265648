"""Add or refresh the table of contents at the top of BENCHMARKS.md (after a hand edit of a section).

Benchmark scripts refresh it themselves when they write their section; this script is for the
sections written by hand. ``--check`` only reports whether it is up to date (exit 1 if not).

    python benchmarks/contents.py            # rewrite BENCHMARKS.md's contents block
    python benchmarks/contents.py --check    # exit 1 when the block is missing or stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr_pathways.bench.contents import with_contents  # noqa: E402
from asr_pathways.io import atomic_write_text  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("path", nargs="?", type=Path, default=ROOT / "BENCHMARKS.md", help="Markdown file (default: BENCHMARKS.md)")
    p.add_argument("--check", action="store_true", help="only check that the contents block is present and up to date")
    args = p.parse_args(argv)
    if not args.path.is_file():
        p.error(f"{args.path}: no such file")
    text = args.path.read_text(encoding="utf-8")
    updated = with_contents(text)
    if args.check:
        if updated != text:
            print(f"{args.path}: the contents block is missing or stale; run `python benchmarks/contents.py`")
            return 1
        print(f"{args.path}: contents up to date")
        return 0
    if updated != text:
        atomic_write_text(args.path, updated)
    print(f"{args.path}: contents of {updated.count(chr(10) + '- [')} sections")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
