"""What every benchmark shares: machine facts, the command line, and its BENCHMARKS.md section."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:  # `python benchmarks/x.py` from a checkout
    sys.path.insert(0, str(ROOT))

from asr_pathways.bench.machine import cpu_model, machine_info, machine_line  # noqa: E402,F401  (the package's, shared)
from asr_pathways.bench.report import write_markdown_section  # noqa: E402


def command_line(script: str, argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", script, *(shlex.quote(a) for a in args)]).strip()


def write_section(name: str, body: str, path: Path | None = None) -> Path:
    """Replace (or append) the ``<!-- name:start -->``...``<!-- name:end -->`` section of BENCHMARKS.md."""
    return write_markdown_section(path or ROOT / "BENCHMARKS.md", name, body)


def write_result(name: str, result: dict[str, Any]) -> Path:
    from asr_pathways.io import atomic_write_json

    return atomic_write_json(RESULTS / f"{name}.json", result)
