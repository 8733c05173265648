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


# errno -> what to do, for one-line messages about file-system errors at the CLI boundary
_OS_HINTS = {
    "ENOSPC": "the disk is full: free some space, then run the same command again (it resumes)",
    "EDQUOT": "the disk quota is exhausted: free some space, then run the same command again (it resumes)",
    "EACCES": "no permission: choose a folder you can write to, or change its permissions",
    "EPERM": "not permitted: choose a folder you can write to, or change its permissions",
    "EROFS": "the file system is read-only: choose another output folder",
    "ENOENT": "check the path",
    "ENOTDIR": "a part of the path is a file, not a folder",
    "EISDIR": "the path is a folder where a file was expected: check the path",
    "EIO": "the device reported an input/output error: check the disk",
}


def describe_os_error(e: OSError) -> str:
    """One line for an :class:`OSError`: the file, the reason and what to do.

    >>> import errno
    >>> describe_os_error(OSError(errno.ENOSPC, "No space left on device", "runs/x/checkpoint.safetensors"))
    'runs/x/checkpoint.safetensors: No space left on device (the disk is full: free some space, then run the same command again (it resumes))'
    """
    import errno as _errno

    where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    reason = e.strerror or str(e) or type(e).__name__
    hint = _OS_HINTS.get(_errno.errorcode.get(e.errno or 0, ""), "")
    return (f"{where}: " if where else "") + reason + (f" ({hint})" if hint else "")


def describe_load_error(e: BaseException) -> str | None:
    """One line for a tensor file or state dict that does not fit (None for other errors)."""
    text = str(e).strip()
    if type(e).__name__ == "SafetensorError":
        return f"not a readable safetensors file ({text}) (expected a file written by asr-pathways; rewrite or re-download it)"
    if isinstance(e, RuntimeError) and text.startswith("Error(s) in loading state_dict"):
        details = [line.strip() for line in text.splitlines()[1:] if line.strip()]
        return ("the weights do not fit the model: " + "; ".join(details[:2])
                + " (expected a checkpoint of the same model configuration)")
    return None
