"""The training log of a run: ``metrics.jsonl`` (one row per ``log_every`` steps) and TensorBoard.

>>> import tempfile, pathlib
>>> log = MetricsLog(pathlib.Path(tempfile.mkdtemp()), tensorboard=False)
>>> log.write(2, [{"loss": 1.0, "audio_seconds": 3.0}, {"loss": 3.0, "audio_seconds": 1.0}], seconds=2.0)
>>> row = log.rows()[0]; row["step"], row["loss"], row["audio_seconds"], row["audio_seconds_per_second"]
(2, 2.0, 4.0, 2.0)
>>> log.truncate(1); log.rows()
[]
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

SUMMED = ("audio_seconds", "nonfinite_steps")  # summed over a window; every other value is averaged


class MetricsLog:
    """Appends averaged windows of step results; drops rows past a checkpoint on resume."""

    def __init__(self, out: Path, tensorboard: bool = True, world_size: int = 1) -> None:
        self.out = Path(out)
        self.path = self.out / "metrics.jsonl"
        self.tensorboard = tensorboard
        self.world_size = world_size
        self._tb: Any = None

    def write(self, step: int, window: list[dict[str, float]], seconds: float) -> None:
        """One row: the mean of every value over ``window`` (sums for :data:`SUMMED`), throughput, memory."""
        if not window:
            return
        row: dict[str, Any] = {"step": step}
        for k in sorted({k for w in window for k in w}):
            vals = [w[k] for w in window if k in w]
            row[k] = sum(vals) if k in SUMMED else sum(vals) / len(vals)
        row["audio_seconds_per_second"] = row.get("audio_seconds", 0.0) * self.world_size / max(seconds, 1e-9)
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        row["time"] = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tensorboard:
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out / "tensorboard"))
            for k, v in row.items():
                if k not in ("step", "time") and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def add_scalars(self, step: int, values: dict[str, float]) -> None:
        """TensorBoard scalars outside the step windows (the dev WER of ``train.eval_every``)."""
        if not self.tensorboard:
            return
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.out / "tensorboard"))
        for k, v in values.items():
            self._tb.add_scalar(k, v, step)
        self._tb.flush()

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(l) for l in self.path.read_text().splitlines() if l.strip()]

    def truncate(self, step: int) -> None:
        """Drop rows written after ``step`` (the checkpoint a run resumes from: they will be redone)."""
        from .io import atomic_write_text

        if not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue
        atomic_write_text(self.path, "".join(l + "\n" for l in keep))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
