"""Issue 16, case 8: written files follow the umask."""

from __future__ import annotations

import os
import stat

import pytest
from data_fixtures import make_audio_dir
from hostile_helpers import cli

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
