"""Helpers of the hostile-input tests (issue 16): run the CLI, read and tamper with files, snapshot folders.

Every test here builds its own tiny data (a synthesised corpus, tone files, a few training steps),
runs ``asr-pathways`` as a user would (in this process, or as a separate process where a kill or a
second process is the point), and checks the exit code, a fragment of the one-line message, and
what was (not) written.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # data_fixtures

from asr_pathways.cli import main  # noqa: E402
from asr_pathways.folders import LOCK_NAME  # noqa: E402

TRAIN = ["--preset", "tiny", "--eval-split", "none", "--device", "cpu", "--max-duration", "4"]


def cli(capsys: pytest.CaptureFixture, *argv: Any) -> tuple[int, str]:
    """Run ``asr-pathways ARGV`` in this process; returns (exit code, stderr)."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def one_line(err: str, command: str) -> str:
    """The error line of ``err``, checked to be the only line and to carry no traceback."""
    lines = [line for line in err.splitlines() if line.strip() and not _progress(line)]
    assert "Traceback" not in err, err
    errors = [line for line in lines if line.startswith(f"asr-pathways {command}: error: ")]
    assert len(errors) == 1, err
    return errors[0]


def _progress(line: str) -> bool:
    return "it/s]" in line or "step/s" in line or "s/step" in line or "utt/s]" in line or "|" in line and "%" in line


def env() -> dict[str, str]:
    return dict(os.environ, ASR_PATHWAYS_NO_TCMALLOC="1")


def spawn(*argv: Any, **kw: Any) -> subprocess.Popen:
    """``asr-pathways ARGV`` as its own process (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "asr_pathways.cli", *map(str, argv)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def run_killed_after(calls: int, target: str, argv: list[Any]) -> int:
    """Run ``asr-pathways ARGV`` in a child process that SIGKILLs itself when ``target``
    (``module:function``) has been called ``calls`` times: a deterministic hard kill mid-build."""
    module, func = target.split(":")
    code = (
        "import os, signal, sys, importlib\n"
        f"m = importlib.import_module({module!r}); orig = getattr(m, {func!r}); n = [0]\n"
        "def killer(*a, **k):\n"
        "    r = orig(*a, **k)\n"
        "    n[0] += 1\n"
        f"    if n[0] == {calls}:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return r\n"
        f"setattr(m, {func!r}, killer)\n"
        "from asr_pathways.cli import main\n"
        f"sys.exit(main({[str(a) for a in argv]!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True).returncode


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl_gz(path: Path, items: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it) + "\n")


def copy_tree(src: Path, dst: Path) -> Path:
    """A copy of a corpus, run or model folder to tamper with (links copied as links; no feature cache)."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("features"))
    return dst


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file under ``root``: relative path -> bytes (a link: its target). Lock files (whose
    content is the last holder's PID and command) are left out."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.name == LOCK_NAME:
            continue
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out
