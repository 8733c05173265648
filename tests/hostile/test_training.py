"""Issue 16, cases 2, 6 (numeric options) and 8 (--restart): no silent NaN, no silently changed resume."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest
import torch
from hostile_helpers import TRAIN, cli, copy_tree, one_line, snapshot

from asr_pathways.checkpoint import load_checkpoint


# ----------------------------------------------------------------------------------- case 2
def test_case2_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tiny_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    cmd = ["train", "--corpus", tiny_corpus, "--out", run, "--steps", "30", "--lr", "1e4", "--checkpoint-every", "1", *TRAIN]
    rc, err = cli(capsys, *cmd)
    assert rc == 2
    line = one_line(err, "train")
    m = re.search(r"training diverged: the loss or gradient norm was not finite at steps (\d+), (\d+), (\d+) ", line)
    assert m, line
    ck = load_checkpoint(run, require_complete=False)
    step = int(ck.meta["step"])
    assert int(m.group(1)) == step + 1  # the last good step is the checkpoint's
    assert f"no update was applied at those steps and the checkpoint of step {step} is kept" in line
    assert "Lower the learning rate (--lr, peak 10000) and run again with --restart" in line
    assert all(bool(torch.isfinite(t).all()) for t in ck.model.values() if t.is_floating_point())
    before = (run / "checkpoint.safetensors").read_bytes()
    rc, err = cli(capsys, *cmd)  # the same command resumes from there, diverges at the same steps, writes nothing
    assert rc == 2 and m.group(0) in one_line(err, "train")
    assert (run / "checkpoint.safetensors").read_bytes() == before


def test_case2_a_checkpoint_cut_short_by_a_full_disk_keeps_the_previous_one(tiny_corpus, tmp_path, capsys, monkeypatch):
    import asr_pathways.io as io_module
    import asr_pathways.train as train_module

    run = tmp_path / "run"
    real_save, real_fsync, saves = train_module.save_checkpoint, io_module.os.fsync, []

    def save(*a, **k):
        saves.append(a[0])
        return real_save(*a, **k)

    def fsync(fd):
        if len(saves) == 2:  # the second checkpoint's data reaches a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(train_module, "save_checkpoint", save)
    monkeypatch.setattr(io_module.os, "fsync", fsync)
    rc, err = cli(capsys, "train", "--corpus", tiny_corpus, "--out", run, "--steps", "3", "--checkpoint-every", "1", *TRAIN)
    assert rc == 1
    assert one_line(err, "train") == (f"asr-pathways train: error: {run / 'checkpoint.safetensors'}: No space left on device "
                                      "(the disk is full: free some space, then run the same command again (it resumes))")
    assert load_checkpoint(run, require_complete=False).meta["step"] == 1  # the first checkpoint, whole
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no half-written file left


def test_case2_resume_refuses_changed_settings(dense_run, tiny_corpus, tmp_path, capsys):
    run = copy_tree(dense_run, tmp_path / "run")
    before = snapshot(run)
    rc, err = cli(capsys, "train", "--corpus", tiny_corpus, "--out", run, "--steps", "40", "--lr", "1e4", *TRAIN)
    assert rc == 2
    line = one_line(err, "train")
    assert "the run folder holds a run with other settings (train.lr: 0.003 -> 10000.0; train.steps: 3 -> 40)" in line
    assert "or --restart to start it over" in line
    assert snapshot(run) == before  # config.yaml and the checkpoint untouched
    # the same settings resume (nothing left to do), whatever the logging frequency
    assert cli(capsys, "train", "--corpus", tiny_corpus, "--out", run, "--steps", "3", "--checkpoint-every", "7", *TRAIN)[0] == 0


# ----------------------------------------------------------------------------------- case 6
@pytest.mark.parametrize("args, fragment", [
    (["--lr", "-1"], "field --lr: -1.0 is out of range (expected a number > 0)"),
    (["--lr", "nan"], "field --lr: nan is out of range (expected a number > 0)"),
    (["--steps", "-5"], "field --steps: -5 is out of range (expected a number >= 1)"),
    (["--steps", "0"], "field --steps: 0 is out of range (expected a number >= 1)"),
    (["--max-duration", "0"], "field --max-duration: 0.0 is out of range (expected a number > 0)"),
    (["--warmup-steps", "-1"], "field --warmup-steps: -1 is out of range (expected a number >= 0)"),
    (["--checkpoint-every", "-2"], "field --checkpoint-every: -2 is out of range (expected a number >= 0)"),
    (["--seed", "-1"], "field --seed: -1 is out of range (expected a number >= 0)"),
    (["--vocab-size", "1"], "field --vocab-size: 1 is out of range (expected a number >= 2)"),
])
def test_case6_numeric_options_are_validated_before_anything_is_written(args, fragment, dense_run, tiny_corpus, tmp_path, capsys):
    rc, err = cli(capsys, "train", "--corpus", tiny_corpus, "--out", tmp_path / "new" / "run", *TRAIN, *args)
    assert rc == 2
    assert fragment in one_line(err, "train")
    assert not (tmp_path / "new").exists()
    run = copy_tree(dense_run, tmp_path / "run")  # --restart with a bad value does not wipe the run first
    before = snapshot(run)
    rc, err = cli(capsys, "train", "--corpus", tiny_corpus, "--out", run, "--restart", *TRAIN, *args)
    assert rc == 2 and fragment in one_line(err, "train")
    assert snapshot(run) == before


def test_case6_a_preset_with_unknown_keys_is_refused(tiny_corpus, tmp_path, capsys):
    preset = tmp_path / "mine.yaml"
    preset.write_text((Path(__file__).resolve().parents[2] / "asr_pathways" / "configs" / "tiny.yaml").read_text()
                      .replace("train:\n", "train:\n  evil: 1\n"))
    rc, err = cli(capsys, "train", "--corpus", tiny_corpus, "--out", tmp_path / "run", *TRAIN, "--preset", preset)
    assert rc == 2
    assert f"{preset}: field train: unknown keys ['evil']" in one_line(err, "train")


# ----------------------------------------------------------------------------------- case 8
def test_case8_restart_starts_the_folder_clean_logs_included(dense_run, tiny_corpus, tmp_path, capsys):
    run = copy_tree(dense_run, tmp_path / "run")
    (run / "wer_test.json").write_text("{}")  # anything an earlier run wrote
    old_events = sorted(p.name for p in (run / "tensorboard").iterdir())
    assert old_events and any(json.loads(l)["step"] == 3 for l in (run / "metrics.jsonl").read_text().splitlines())
    rc, _ = cli(capsys, "train", "--corpus", tiny_corpus, "--out", run, "--steps", "2", "--restart", *TRAIN)
    assert rc == 0
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2]
    events = sorted(p.name for p in (run / "tensorboard").iterdir())
    assert len(events) == 1 and events != old_events
    assert not (run / "wer_test.json").exists()
    assert load_checkpoint(run).meta["step"] == 2


def test_case8_train_refuses_a_folder_that_is_not_a_run(tiny_corpus, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    for extra in ([], ["--restart"]):
        rc, err = cli(capsys, "train", "--corpus", tiny_corpus, "--out", folder, "--steps", "1", *TRAIN, *extra)
        assert rc == 2
        assert f"{folder}: the output folder exists and is not a run folder" in one_line(err, "train")
        assert (folder / "holiday.jpg").is_file()
