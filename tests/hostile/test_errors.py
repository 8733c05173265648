"""Issue 16, case 6: one line, not a traceback, for OS errors, unreadable or misfitting tensor files and foreign configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hostile_helpers import TRAIN, cli, copy_tree, one_line

from asr_pathways.cli import main
from asr_pathways.errors import InputError
from asr_pathways.sparsity.masks import MaskSet


def test_case6_a_missing_output_folder_is_one_line(tiny_corpus, capsys):
    rc, err = cli(capsys, "train", "--corpus", tiny_corpus, "--out", "/proc/x", "--steps", "1", *TRAIN)
    assert rc == 1
    assert one_line(err, "train") == "asr-pathways train: error: /proc/x: No such file or directory (check the path)"


def test_case6_an_unwritable_output_folder_is_one_line(tmp_path, capsys):
    audio, tr = tmp_path / "audio", tmp_path / "en.tsv"
    audio.mkdir()
    rc, err = cli(capsys, "corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr}", "--out", "/sys/asr-pathways-test")
    assert rc == 1
    line = one_line(err, "corpus")  # sysfs: EPERM or EROFS as root, EACCES otherwise
    assert line.startswith("asr-pathways corpus: error: /sys/asr-pathways-test: ")
    assert any(hint in line for hint in ("choose a folder you can write to", "the file system is read-only: choose another output folder"))


def test_case6_an_output_folder_below_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    audio = tmp_path / "audio"
    audio.mkdir()
    rc, err = cli(capsys, "corpus", "import-dir", "--audio-dir", audio, "--transcripts", "en=x.tsv", "--out", tmp_path / "file" / "c")
    assert rc == 1
    assert one_line(err, "corpus") == (f"asr-pathways corpus: error: {tmp_path / 'file' / 'c'}: Not a directory "
                                       "(a part of the path is a file, not a folder)")


def test_case6_a_checkpoint_that_is_not_safetensors(dense_run, tmp_path, capsys):
    run = copy_tree(dense_run, tmp_path / "run")
    (run / "checkpoint.safetensors").write_bytes(b"PK\x03\x04 this is a zip, not safetensors" * 8)
    for argv, command in ((["evaluate", run, "--max-utts", "1"], "evaluate"), (["export", run, "--out", tmp_path / "m"], "export")):
        rc, err = cli(capsys, *argv)
        assert rc == 2
        assert f"{run / 'checkpoint.safetensors'}: not a readable safetensors file (" in one_line(err, command)
    assert not (tmp_path / "m").exists()


def _reshape_one_tensor(ckpt: Path) -> str:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(ckpt), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    name = next(k for k, v in tensors.items() if k.startswith("model/") and v.dim() == 2)
    tensors[name] = torch.zeros(tensors[name].shape[0] + 1, tensors[name].shape[1])
    save_file(tensors, str(ckpt), metadata=meta)
    return name.removeprefix("model/")


def test_case6_a_checkpoint_of_other_shapes(dense_run, tiny_corpus, tmp_path, capsys):
    run = copy_tree(dense_run, tmp_path / "run")
    name = _reshape_one_tensor(run / "checkpoint.safetensors")
    rc, err = cli(capsys, "evaluate", run, "--max-utts", "1")
    assert rc == 2
    line = one_line(err, "evaluate")
    assert "the weights do not fit the model" in line and name in line
    before = sorted(p.name for p in run.iterdir())
    rc, err = cli(capsys, "train", "--corpus", tiny_corpus, "--out", run, "--steps", "3", *TRAIN)
    assert rc == 2
    line = one_line(err, "train")
    assert f"{run / 'checkpoint.safetensors'}: the weights do not fit the model: {name} is (" in line
    assert sorted(p.name for p in run.iterdir()) == before  # refused before the run was marked in progress


def test_case6_mask_files_not_safetensors_or_of_other_shapes(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    rc, err = cli(capsys, "masks", "show", bad)
    assert rc == 2
    assert f"{bad}: not a readable safetensors file (" in one_line(err, "masks")
    MaskSet({"w": torch.ones(4, 8, dtype=torch.bool)}).save(tmp_path / "en.safetensors")
    MaskSet({"w": torch.ones(4, 9, dtype=torch.bool)}).save(tmp_path / "fr.safetensors")
    rc, err = cli(capsys, "masks", "report", tmp_path / "en.safetensors", tmp_path / "fr.safetensors", "--out", tmp_path / "r")
    assert rc == 2
    assert f"{tmp_path / 'fr.safetensors'}: mask 'fr' covers other matrices or shapes than 'en'" in one_line(err, "masks")
    assert not (tmp_path / "r").exists()


def test_case6_a_run_config_with_foreign_keys(dense_run, tmp_path, capsys):
    run = copy_tree(dense_run, tmp_path / "run")
    (run / "config.yaml").write_text((run / "config.yaml").read_text() + "evil: !!str 1\n")
    rc, err = cli(capsys, "evaluate", run, "--max-utts", "1")
    assert rc == 2
    assert f"{run / 'config.yaml'}: not a run config (keys [" in one_line(err, "evaluate")
    (run / "config.yaml").write_text("model: [unclosed\n")
    rc, err = cli(capsys, "evaluate", run, "--max-utts", "1")
    assert rc == 2
    assert f"{run / 'config.yaml'}: not valid YAML (" in one_line(err, "evaluate")


def test_case6_unexpected_errors_are_one_line_and_debug_shows_the_traceback(tiny_corpus, tmp_path, capsys, monkeypatch):
    import asr_pathways.sparsity.cli as masks_cli

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(masks_cli, "run", broken)
    rc, err = cli(capsys, "masks", "show", tmp_path / "x.safetensors")
    assert rc == 1
    assert one_line(err, "masks") == ("asr-pathways masks: error: internal error: ZeroDivisionError: division by zero "
                                      "(rerun with --debug for the traceback, and please report it)")
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "masks", "show", str(tmp_path / "x.safetensors")])
    with pytest.raises(InputError, match="field --lr"):
        main(["--debug", "train", "--corpus", str(tiny_corpus), "--out", str(tmp_path / "r"), "--lr", "-1"])
