"""Errors that tell the user which file, line or field is wrong and what was expected."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: names the file (and line/field where known) and what was expected.

    >>> str(InputError("bad rate", path="a.flac", field="sample_rate", expected="16000 Hz"))
    'a.flac: field sample_rate: bad rate (expected 16000 Hz)'
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.expected = expected
        self.hint = hint
        where = []
        if self.path is not None:
            where.append(self.path + (f":{line}" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field}")
        text = ": ".join(where + [message]) if where else message
        if expected:
            text += f" (expected {expected})"
        if hint:
            text += f". {hint}"
        super().__init__(text)
