"""The machine a benchmark ran on (CPU, cores, GPU, torch, tcmalloc), as results record it.

>>> machine_line({"cpu": "X", "cores": 2, "torch": "2.13.0", "tcmalloc": True, "date": "2026-01-01"})
'X, 2 cores, torch 2.13.0, tcmalloc on, 2026-01-01'
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def onednn_cache_capacity() -> str:
    """The oneDNN kernel-cache capacity this process asked for, and who set it ("16384 (set by asr_pathways)",
    "512 (user)", "1024 (oneDNN default)"); it takes effect only if set before the first oneDNN kernel."""
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"):
        if name in os.environ:
            who = "set by asr_pathways" if os.environ.get("_ASR_PATHWAYS_SET_ONEDNN_CACHE") == os.environ[name] else "user"
            return f"{os.environ[name]} ({who})"
    return "1024 (oneDNN default)"


def machine_info() -> dict[str, Any]:
    """CPU model and capability, cores, torch threads and version, tcmalloc, oneDNN kernel cache, GPU, date, load."""
    import torch

    from ..runtime import bf16_supported

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "tcmalloc": "tcmalloc" in os.environ.get("LD_PRELOAD", ""),
        "onednn_primitive_cache": onednn_cache_capacity(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    info["bf16_native"] = bf16_supported("cpu")
    try:
        info["load_average_1min"] = os.getloadavg()[0]
    except OSError:
        pass
    return info


def machine_line(m: dict[str, Any]) -> str:
    """One line for a report: CPU (capability), cores, GPU, torch, tcmalloc, date."""
    gpu = f", GPU {m['gpu']}" if "gpu" in m else ""
    isa = f" ({m['cpu_capability']}{', native bf16' if m.get('bf16_native') else ', no native bf16: float32'})" if "cpu_capability" in m else ""
    return f"{m['cpu']}{isa}, {m['cores']} cores{gpu}, torch {m['torch']}, tcmalloc {'on' if m['tcmalloc'] else 'off'}, {m['date']}"
