"""Issue 16, case 5: one writer per output folder; a second process exits 2 naming the PID that holds it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_fixtures import make_audio_dir
from hostile_helpers import TRAIN, cli, env, one_line, spawn

from asr_pathways.folders import LOCK_NAME


def _wait_for_lock(folder: Path, pid: int, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """Wait until process ``pid`` holds the lock of ``folder`` (its PID is in the lock file)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        try:
            if json.loads((folder / LOCK_NAME).read_text()).get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{folder} was not locked by {pid} within {timeout} s")


def test_case5_a_second_train_on_the_same_folder_exits_2_naming_the_first(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    first = spawn("train", "--corpus", tiny_corpus, "--out", run, "--steps", "100000", "--checkpoint-every", "0", *TRAIN)
    try:
        _wait_for_lock(run, first.pid, first)
        second = subprocess.run([sys.executable, "-m", "asr_pathways.cli", "train", "--corpus", str(tiny_corpus), "--out", str(run),
                                 "--steps", "5", "--lr", "1e-3", *TRAIN], env=env(), capture_output=True, text=True, timeout=600)
        assert second.returncode == 2, second.stderr
        line = one_line(second.stderr, "train")
        assert f"{run}: another asr-pathways process (PID {first.pid}: `asr-pathways train --corpus" in line
        assert "is writing this folder (expected one process per output folder). Wait for it to finish" in line
        assert first.poll() is None  # the first one trains on, untouched
    finally:
        first.kill()
        first.communicate()


@contextlib.contextmanager
def _hold(folder: Path):
    """Another process holds the lock of ``folder`` inside the ``with`` block; yields its PID."""
    code = ("import sys; from asr_pathways.folders import FolderLock\n"
            f"with FolderLock({str(folder)!r}, 'asr-pathways holder'):\n"
            "    print('ready', flush=True); sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


@pytest.fixture
def held(tmp_path):
    """A folder whose lock another process holds (until the test ends)."""
    with _hold(tmp_path / "held") as pid:
        yield tmp_path / "held", pid


def test_case5_every_writing_command_takes_the_lock(held, dense_run, tmp_path, capsys):
    folder, pid = held
    audio, tr = make_audio_dir(tmp_path / "src")
    commands = {
        "corpus": ["corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr}", "--out", folder],
        "train": ["train", "--corpus", tmp_path / "nowhere", "--out", folder],
        "prune": ["prune", "--method", "imp", "--from", dense_run, "--out", folder],
        "export": ["export", dense_run, "--out", folder],
        "bench": ["bench", "--profile", "tiny", "--out", folder],
    }
    for command, argv in commands.items():
        rc, err = cli(capsys, *argv)
        assert rc == 2, (command, err)
        assert f"{folder}: another asr-pathways process (PID {pid}: `asr-pathways holder`) is writing this folder" in one_line(err, command)
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]  # none of them wrote anything


def test_case5_bench_locks_its_default_folder_but_not_a_plan(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with _hold(tmp_path / "bench_runs" / "tiny") as pid:
        rc, err = cli(capsys, "bench", "--profile", "tiny")
        assert rc == 2
        assert f"bench_runs/tiny: another asr-pathways process (PID {pid}: `asr-pathways holder`)" in one_line(err, "bench")
        assert cli(capsys, "bench", "--profile", "tiny", "--plan")[0] == 0  # a plan writes nothing and needs no lock


def test_case5_the_lock_is_released_when_a_command_ends(tmp_path, capsys):
    audio, tr = make_audio_dir(tmp_path / "src")
    argv = ["corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr}", "--out", tmp_path / "c"]
    assert cli(capsys, *argv)[0] == 0
    assert cli(capsys, *argv)[0] == 0  # the same process takes it again
    proc = spawn(*argv)  # and so does another one
    assert proc.wait(timeout=600) == 0, proc.communicate()
