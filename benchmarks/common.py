"""What every benchmark shares: machine facts, the command line, and its BENCHMARKS.md section."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "tcmalloc": "tcmalloc" in os.environ.get("LD_PRELOAD", ""),
        "date": time.strftime("%Y-%m-%d"),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    from asr_pathways.runtime import bf16_supported

    info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    info["bf16_native"] = bf16_supported("cpu")
    try:
        info["load_average_1min"] = os.getloadavg()[0]
    except OSError:
        pass
    return info


def machine_line(m: dict[str, Any]) -> str:
    gpu = f", GPU {m['gpu']}" if "gpu" in m else ""
    isa = f" ({m['cpu_capability']}{', native bf16' if m.get('bf16_native') else ', no native bf16: float32'})" if "cpu_capability" in m else ""
    return f"{m['cpu']}{isa}, {m['cores']} cores{gpu}, torch {m['torch']}, tcmalloc {'on' if m['tcmalloc'] else 'off'}, {m['date']}"


def command_line(script: str, argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", script, *(shlex.quote(a) for a in args)]).strip()


def write_section(name: str, body: str, path: Path | None = None) -> Path:
    """Replace (or append) the ``<!-- name:start -->``...``<!-- name:end -->`` section of BENCHMARKS.md."""
    sys.path.insert(0, str(ROOT))
    from asr_pathways.io import atomic_write_text

    path = path or ROOT / "BENCHMARKS.md"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    if start in text and end in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    return atomic_write_text(path, text)


def write_result(name: str, result: dict[str, Any]) -> Path:
    sys.path.insert(0, str(ROOT))
    from asr_pathways.io import atomic_write_json

    return atomic_write_json(RESULTS / f"{name}.json", result)
