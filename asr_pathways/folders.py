"""Output folders: one writer at a time, an in-progress marker, a clean restart.

- :class:`FolderLock` takes an advisory lock (``fcntl.flock``) on ``FOLDER/.asr-pathways.lock`` for
  the life of a command; a second process writing the same folder is refused with an
  :class:`InputError` naming the PID that holds it. A folder the command created and left empty
  (it failed before writing anything) is removed again, so a refused command leaves nothing behind.
- :func:`begin` / :func:`finish` write and remove ``FOLDER/in_progress.json``; a reader calls
  :func:`check_complete`, which refuses a folder whose writer was interrupted (SIGKILL, a full
  disk) and says to rerun the same command, which resumes.
- :func:`clear` empties a folder for ``--restart`` (logs included) but keeps the lock file;
  :func:`remove_stale_temp` deletes temporary files an interrupted atomic write left behind.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from .errors import InputError

LOCK_NAME = ".asr-pathways.lock"
MARKER_NAME = "in_progress.json"
# temporary files of io.atomic_write_bytes (".NAME.XXXX.tmp") and io.AtomicPath (".STEM.tmpPID.SUFFIXES")
_TEMP_RE = re.compile(r"^\..+(\.tmp|\.tmp\d+(\.[^.]+)*)$")

_held: dict[Path, list[Any]] = {}  # folder -> [file object, depth]: re-entrant within one process


def _holder(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return "another process"
    cmd = f": `{info['command']}`" if info.get("command") else ""
    return f"PID {info.get('pid', '?')}{cmd}"


class FolderLock:
    """Hold the advisory lock of ``folder`` (created if missing) while the ``with`` block runs.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with FolderLock(d, "asr-pathways train"):
    ...     (d / "x").write_text("1")
    1
    >>> sorted(p.name for p in d.iterdir())
    ['.asr-pathways.lock', 'x']
    """

    def __init__(self, folder: str | Path, command: str = "") -> None:
        self.folder = Path(folder)
        self.command = command
        self._created: list[Path] = []

    def __enter__(self) -> "FolderLock":
        key = self.folder.resolve()
        if key in _held:
            _held[key][1] += 1
            return self
        missing = []
        p = self.folder
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self._created = missing  # innermost first
        lock_path = self.folder / LOCK_NAME
        f = open(lock_path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            f.close()
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise InputError(
                f"another asr-pathways process ({_holder(lock_path)}) is writing this folder", path=self.folder,
                expected="one process per output folder", hint="Wait for it to finish, or use another output folder",
            ) from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "command": self.command, "since": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        f.flush()
        _held[key] = [f, 1]
        return self

    def __exit__(self, *exc: Any) -> None:
        key = self.folder.resolve()
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _held[key]
        f = entry[0]
        try:
            if self._created and [p.name for p in self.folder.iterdir()] == [LOCK_NAME]:
                os.unlink(self.folder / LOCK_NAME)  # nothing was written: leave no trace
                for d in self._created:
                    try:
                        d.rmdir()
                    except OSError:
                        break
        except OSError:
            pass
        finally:
            f.close()  # releases the lock


def begin(folder: str | Path, command: str) -> None:
    """Mark ``folder`` as being written by ``command`` (removed by :func:`finish`)."""
    from .io import atomic_write_json

    atomic_write_json(Path(folder) / MARKER_NAME, {"command": command, "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")})


def finish(folder: str | Path) -> None:
    """Mark ``folder`` complete: the last write of a command."""
    Path(folder, MARKER_NAME).unlink(missing_ok=True)


def in_progress(folder: str | Path) -> dict[str, Any] | None:
    """The marker of an unfinished write of ``folder`` (None when complete)."""
    p = Path(folder) / MARKER_NAME
    if not p.is_file():
        return None
    try:
        return dict(json.loads(p.read_text()))
    except (OSError, ValueError):
        return {"command": ""}


def check_complete(folder: str | Path, what: str) -> None:
    """Raise :class:`InputError` when ``folder`` (a ``what``: corpus, run) was not written to the end."""
    marker = in_progress(folder)
    if marker is None:
        return
    cmd = marker.get("command") or "the command that made it"
    raise InputError(
        f"the {what} is incomplete: `{cmd}` did not finish (interrupted, or it failed)", path=folder,
        expected=f"a complete {what}", hint="Run the same command again: it resumes where it stopped",
    )


def clear(folder: str | Path) -> None:
    """Delete everything in ``folder`` except its lock file (``--restart``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.name == LOCK_NAME:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def is_empty(folder: str | Path) -> bool:
    """True when ``folder`` is missing or holds nothing but the lock file."""
    folder = Path(folder)
    return not folder.is_dir() or all(p.name == LOCK_NAME for p in folder.iterdir())


def remove_stale_temp(folder: str | Path, recursive: bool = False) -> int:
    """Delete temporary files of interrupted atomic writes in ``folder``; returns how many.

    Call it only while holding the folder's lock: no other writer can own them then.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    n = 0
    for p in folder.rglob(".*") if recursive else folder.glob(".*"):
        if p.is_file() and _TEMP_RE.match(p.name):
            p.unlink(missing_ok=True)
            n += 1
    return n
