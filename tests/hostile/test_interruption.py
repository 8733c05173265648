"""Issue 16, case 3: a corpus or run cut short (SIGKILL, a full disk) is refused until the same command is rerun.

The kills are real SIGKILLs of a separate ``asr-pathways`` process, at a deterministic point: the
child wraps one function (a manifest write, lhotse's MLS recipe, a checkpoint write) and kills
itself after its N-th call.
"""

from __future__ import annotations

import errno
import signal
from pathlib import Path

import pytest
from data_fixtures import make_audio_dir, make_mls_tree, write_audio
from hostile_helpers import TRAIN, cli, one_line, run_killed_after, snapshot

import asr_pathways.data.corpus as corpus_module
from asr_pathways.folders import LOCK_NAME, MARKER_NAME

SYNTH = ["--languages", "en", "--hours", "en=0.003", "--test-utts", "2", "--dev-utts", "2", "--seed", "1", "--jobs", "1", "--no-progress"]


def _two_language_dir(tmp_path: Path) -> tuple[Path, str]:
    audio, en = make_audio_dir(tmp_path, n=4)
    lines = []
    for i in range(4):
        uid = f"loc{i}_fr{i:03d}"
        write_audio(audio / f"{uid}.flac", 0.3 + 0.05 * i, 16000, freq=300 + 10 * i)
        lines.append(f"{uid}\tbonjour numéro {i}")
    fr = tmp_path / "fr.tsv"
    fr.write_text("\n".join(lines) + "\n")
    return audio, f"en={en},fr={fr}"


def _refused_until_rerun(capsys, corpus: Path, rerun: list) -> None:
    rc, err = cli(capsys, "corpus", "card", corpus)
    line = one_line(err, "corpus")
    assert rc == 2
    assert "the corpus is incomplete: `asr-pathways corpus" in line and "Run the same command again: it resumes" in line
    rc, err = cli(capsys, "train", "--corpus", corpus, "--out", corpus.parent / "run", "--steps", "1", *TRAIN)
    assert rc == 2 and "the corpus is incomplete" in one_line(err, "train")
    assert not (corpus.parent / "run").exists()
    assert cli(capsys, *rerun)[0] == 0
    assert not (corpus / MARKER_NAME).exists()
    assert cli(capsys, "corpus", "card", corpus)[0] == 0


def test_case3_killed_import_dir_is_refused_then_resumes_identically(tmp_path, capsys):
    audio, transcripts = _two_language_dir(tmp_path)
    cmd = lambda out: ["corpus", "import-dir", "--audio-dir", audio, "--transcripts", transcripts, "--out", out]  # noqa: E731
    assert cli(capsys, *cmd(tmp_path / "whole"))[0] == 0
    rc = run_killed_after(1, "asr_pathways.data.mls:write_split", cmd(tmp_path / "killed"))
    assert rc == -signal.SIGKILL
    killed = tmp_path / "killed"
    assert (killed / "manifests" / "en").is_dir() and not (killed / "manifests" / "fr").exists()  # half a corpus
    _refused_until_rerun(capsys, killed, cmd(killed))
    assert snapshot(killed) == snapshot(tmp_path / "whole")


def test_case3_killed_synth_is_refused_then_resumes_identically(tmp_path, capsys):
    cmd = lambda out: ["corpus", "synth", "--out", out, *SYNTH]  # noqa: E731
    assert cli(capsys, *cmd(tmp_path / "whole"))[0] == 0
    rc = run_killed_after(2, "asr_pathways.data.synth:write_split", cmd(tmp_path / "killed"))  # test and dev written, train not
    assert rc == -signal.SIGKILL
    killed = tmp_path / "killed"
    assert (killed / "manifests" / "en" / "cuts_dev.jsonl.gz").is_file()
    assert not (killed / "manifests" / "en" / "cuts_train.jsonl.gz").exists()
    _refused_until_rerun(capsys, killed, cmd(killed))
    assert snapshot(killed) == snapshot(tmp_path / "whole")


def test_case3_a_full_disk_leaves_a_refused_corpus_and_a_one_line_error(tmp_path, capsys, monkeypatch):
    audio, transcripts = _two_language_dir(tmp_path)
    out = tmp_path / "c"
    real = corpus_module.atomic_write_bytes
    calls = []

    def fills_up(path, data):
        calls.append(path)
        if len(calls) == 5:  # en's bad-items file and three manifests are written, fr's first file is not
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(corpus_module, "atomic_write_bytes", fills_up)
    cmd = ["corpus", "import-dir", "--audio-dir", audio, "--transcripts", transcripts, "--out", out]
    rc, err = cli(capsys, *cmd)
    assert rc == 1
    line = one_line(err, "corpus")
    assert f"{calls[-1]}: No space left on device (the disk is full: free some space, then run the same command again" in line
    monkeypatch.setattr(corpus_module, "atomic_write_bytes", real)
    _refused_until_rerun(capsys, out, cmd)


def test_case3_a_killed_import_mls_leaves_no_staging_folder_for_good(tmp_path, capsys):
    make_mls_tree(tmp_path / "src", "french")
    make_mls_tree(tmp_path / "src", "german")
    out = tmp_path / "mls"
    cmd = ["corpus", "import-mls", tmp_path / "src", "--out", out]
    assert run_killed_after(1, "lhotse.recipes:prepare_mls", cmd) == -signal.SIGKILL
    assert list(out.glob(".staging-*"))  # what the kill left behind
    _refused_until_rerun(capsys, out, cmd)
    assert not list(out.glob(".staging-*"))
    assert not [p for p in out.rglob(".*") if p.name != LOCK_NAME]  # no temp file of an interrupted write either


def test_case3_a_killed_training_run_is_refused_by_readers_until_rerun(tiny_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    cmd = ["train", "--corpus", tiny_corpus, "--out", run, "--steps", "3", "--checkpoint-every", "1", *TRAIN]
    assert run_killed_after(1, "asr_pathways.train:save_checkpoint", cmd) == -signal.SIGKILL
    assert (run / "checkpoint.safetensors").is_file() and (run / MARKER_NAME).is_file()
    for argv, command in ((["evaluate", run, "--max-utts", "1"], "evaluate"), (["export", run, "--out", tmp_path / "model"], "export"),
                          (["train", "--corpus", tiny_corpus, "--init", run, "--out", tmp_path / "ft", "--steps", "1", *TRAIN], "train")):
        rc, err = cli(capsys, *argv)
        assert rc == 2, err
        assert "the run is incomplete: `asr-pathways train" in one_line(err, command)
    assert not (tmp_path / "model").exists() and not (tmp_path / "ft").exists()
    rc, _ = cli(capsys, *cmd)
    assert rc == 0 and not (run / MARKER_NAME).exists()
    assert cli(capsys, "export", run, "--out", tmp_path / "model")[0] == 0


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
