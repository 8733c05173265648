"""Atomic file writes and code-free loading (safetensors + JSON).

Every manifest, card, checkpoint and mask file goes through these helpers: data is written to a
temporary file in the same folder, flushed, then renamed over the target, so an interrupted run
never leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch


def current_umask() -> int:
    """The process umask, read without changing it (Linux ``/proc``; else set and restored)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename).

    The file gets the mode a plain ``open()`` would give it (0666 minus the umask), not the 0600
    of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # a full disk names the file it was writing
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"cannot serialise {type(o).__name__} to JSON")


class AtomicPath:
    """Context manager yielding a temp path that is renamed onto ``path`` on success.

    For writers that want a file name (lhotse's ``to_file``, soundfile, sentencepiece).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with AtomicPath(d / "x.txt") as tmp:
    ...     _ = pathlib.Path(tmp).write_text("hi")
    >>> (d / "x.txt").read_text()
    'hi'
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # keep the real suffixes so that writers that look at them (.jsonl.gz, .flac) still work
        suffixes = "".join(self.path.suffixes)
        stem = self.path.name[: len(self.path.name) - len(suffixes)] if suffixes else self.path.name
        self.tmp = self.path.parent / f".{stem}.tmp{os.getpid()}{suffixes}"

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None) -> Path:
    """Save tensors as safetensors, atomically; ``metadata`` is stored as one JSON string."""
    from safetensors.torch import save

    meta = {"json": json.dumps(dict(metadata or {}), sort_keys=True, default=_json_default)}
    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(clean, metadata=meta))


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load tensors and metadata written by :func:`save_tensors`. Never executes code."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        from .errors import InputError

        raise InputError("file not found", path=path, expected="a .safetensors file written by asr-pathways")
    out: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta_raw = (f.metadata() or {}).get("json", "{}")
            for k in f.keys():
                out[k] = f.get_tensor(k)
        return out, json.loads(meta_raw)
    except OSError:
        raise
    except Exception as e:  # safetensors' own error type (a truncated, foreign or tampered file), bad JSON
        from .errors import InputError

        raise InputError(f"not a readable safetensors file ({str(e).strip()})", path=path,
                         expected="a .safetensors file written by asr-pathways") from None


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        from .errors import InputError

        raise InputError("file not found", path=path) from None
    except json.JSONDecodeError as e:
        from .errors import InputError

        raise InputError(f"not valid JSON ({e.msg})", path=path, line=e.lineno) from None
