"""One way to open a run folder, one identity rule (runs.open_run_folder, runs.identity)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr_pathways.errors import InputError
from asr_pathways.runs import RUN_RECORD, differences, identity, open_run_folder

DEFINING = {"model": {"d_model": 32}, "train": {"lr": 0.001, "steps": 10}, "languages": ["en", "fr"]}


def _started(folder: Path) -> None:
    (folder / "checkpoint.safetensors").write_bytes(b"x")


def test_identity_is_a_hash_of_the_defining_configuration():
    assert identity(DEFINING) == identity(json.loads(json.dumps(DEFINING)))  # key order and round trips do not matter
    other = {**DEFINING, "train": {"lr": 0.002, "steps": 10}}
    assert identity(other) != identity(DEFINING)
    assert differences(DEFINING, other) == ["train.lr"]


def test_a_new_folder_is_claimed_right_before_the_first_write(tmp_path: Path):
    run = tmp_path / "run"
    folder = open_run_folder(run, DEFINING, kind="train")
    assert not run.exists() and not folder.resumed  # nothing is written by opening
    run.mkdir()
    folder.claim()
    rec = json.loads((run / RUN_RECORD).read_text())
    assert rec == {"kind": "train", "identity": identity(DEFINING), "defining": DEFINING}


def test_the_same_run_resumes_and_another_is_refused(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    open_run_folder(run, DEFINING, kind="train").claim()
    _started(run)
    assert open_run_folder(run, DEFINING, kind="train").resumed
    other = {**DEFINING, "train": {"lr": 0.002, "steps": 10}}
    with pytest.raises(InputError, match=r"other settings \(train.lr: 0.001 -> 0.002\)"):
        open_run_folder(run, other, kind="train")
    assert (run / "checkpoint.safetensors").is_file()  # refused: nothing touched
    folder = open_run_folder(run, other, kind="train", restart=True)  # --restart empties it
    assert not folder.resumed and list(run.iterdir()) == []


def test_a_run_that_never_reached_a_checkpoint_starts_clean(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    open_run_folder(run, DEFINING, kind="train").claim()
    (run / "metrics.jsonl").write_text("{}\n")
    folder = open_run_folder(run, {**DEFINING, "languages": ["en"]}, kind="train")
    assert not folder.resumed and not (run / "metrics.jsonl").exists()


def test_a_folder_that_is_not_a_run_is_never_touched(tmp_path: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"\xff\xd8")
    for restart in (False, True):
        with pytest.raises(InputError, match="is not a run folder"):
            open_run_folder(photos, DEFINING, kind="train", restart=restart)
    assert (photos / "holiday.jpg").is_file()


def test_legacy_folders_are_identified_by_their_old_record(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    _started(run)
    assert open_run_folder(run, DEFINING, kind="train", legacy=DEFINING).resumed
    with pytest.raises(InputError, match="steps: 10 -> 20"):
        open_run_folder(run, {**DEFINING, "train": {"lr": 0.001, "steps": 20}}, kind="train", legacy=DEFINING)


def test_settings_added_later_keep_old_runs_identities_at_their_default():
    """A train setting added after runs existed (language_loss, frame_multiple, token_multiple, fused_adamw) is left out of the
    identity while it holds its default, so a run written before it still resumes; a non-default value counts."""
    from asr_pathways.methods.config import PruneConfig
    from asr_pathways.runs import RunConfig, train_defining

    def rc(**train):
        return RunConfig("tiny", {"d_model": 8}, {"lr": 1e-3, "steps": 10} | train, {"vocab_size": 32}, "data/x", ["en"])

    old = identity(train_defining(rc()))
    assert identity(train_defining(rc(language_loss="equal", frame_multiple=1, token_multiple=1, fused_adamw=False))) == old
    assert identity(train_defining(rc(language_loss="weighted"))) != old
    assert identity(train_defining(rc(fused_adamw=True))) != old
    prune = PruneConfig("pathways", "runs/d", "runs/p", masks_from="runs/l")
    assert "language_loss" not in prune.defining()
    assert PruneConfig("pathways", "runs/d", "runs/p", masks_from="runs/l", language_loss="weighted").defining()["language_loss"] == "weighted"
