"""Progress bars that suit both a terminal and a log file.

On a terminal, :func:`progress_bar` is a tqdm bar. When the output is redirected (a log file, CI),
a bar that redraws itself leaves thousands of refreshes in the file; there it prints one plain
line every ``interval`` seconds instead, and a last line when it closes.

>>> import io
>>> out = io.StringIO()
>>> bar = progress_bar(total=3, desc="train", unit="step", file=out, interval=3600)
>>> bar.update(3); bar.set_postfix(loss="1.20"); bar.close()
>>> out.getvalue().startswith("train: 3/3 step")
True
>>> "loss=1.20" in out.getvalue() and out.getvalue().count("\\n")
1
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

INTERVAL = 10.0  # seconds between two lines when the output is not a terminal


class LineProgress:
    """The part of tqdm's interface the project uses, printing plain lines at most every ``interval`` s."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 file: TextIO | None = None, interval: float = INTERVAL) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.file = file or sys.stderr
        self.interval = interval
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._start_n = initial
        self._printed_n: int | None = None

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._print()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, **kw: Any) -> None:
        items = dict(ordered_dict or {}) | kw
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "") -> None:
        self.postfix = s

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def _print(self) -> None:
        now = time.monotonic()
        elapsed = now - self._start
        rate = (self.n - self._start_n) / elapsed if elapsed > 0 else 0.0
        total = f"/{self.total}" if self.total is not None else ""
        line = f"{self.desc}: {self.n}{total} {self.unit} [{elapsed:.0f} s, {rate:.2f} {self.unit}/s]"
        print(line + (f" {self.postfix}" if self.postfix else ""), file=self.file, flush=True)
        self._last = now
        self._printed_n = self.n

    def close(self) -> None:
        if self._printed_n != self.n:
            self._print()


class NullProgress(LineProgress):
    """A bar that prints nothing (``disable=True``)."""

    def _print(self) -> None:
        pass


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0, leave: bool = True,
                 file: TextIO | None = None, interval: float = INTERVAL, disable: bool = False) -> Any:
    """A tqdm bar on a terminal; a :class:`LineProgress` (a line every ``interval`` s) elsewhere."""
    if disable:
        return NullProgress(total=total, desc=desc, unit=unit, initial=initial, file=file)
    stream = file or sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave, dynamic_ncols=True, file=stream)
    return LineProgress(total=total, desc=desc, unit=unit, initial=initial, file=stream, interval=interval)
