"""Issue 16, case 8: written files follow the umask; a prune refused by a check leaves nothing behind."""

from __future__ import annotations

import os
import stat

import pytest
from data_fixtures import make_audio_dir
from hostile_helpers import cli, one_line

from asr_pathways.io import atomic_write_text


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_case8_files_follow_the_umask(umask, mode, tmp_path, capsys):
    audio, tr = make_audio_dir(tmp_path / "src", n=3)
    old = os.umask(umask)
    try:
        assert cli(capsys, "corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr}", "--out", tmp_path / "c")[0] == 0
        written = atomic_write_text(tmp_path / "x.txt", "x")
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "c").rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) >= 5  # manifests, bad-items files, card.json, card.md
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files + [written]} == {oct(mode)}


PRUNE = ["prune", "--no-progress", "--device", "cpu", "--eval-split", "none", "--languages", "en", "--max-duration", "4"]


@pytest.mark.parametrize("bad, fragment", [
    (["--method", "imp", "--target", "0.5", "--prune-step", "0.5", "--round-steps", "1", "--max-duration", "0"],
     "max_duration: 0.0 is out of range (expected a number > 0)"),
    (["--method", "adaptive", "--masks-from", "{dense}", "--init-sparsity", "0.5", "--target", "0.5", "--round-steps", "4"],
     "no mask for 'en' at sparsity 0.5"),
])
def test_case8_a_refused_prune_leaves_nothing_and_the_corrected_command_runs(bad, fragment, dense_run, tmp_path, capsys):
    out = tmp_path / "prune"
    rc, err = cli(capsys, *PRUNE, "--from", dense_run, "--out", out, *[a.replace("{dense}", str(dense_run)) for a in bad])
    assert rc == 2
    assert fragment in one_line(err, "prune")
    assert not out.exists()
    rc, err = cli(capsys, *PRUNE, "--from", dense_run, "--out", out, "--method", "imp", "--target", "0.5", "--prune-step", "0.5",
                  "--round-steps", "1")
    assert rc == 0, err
    assert (out / "cost.json").is_file() and not (out / "in_progress.json").exists()
