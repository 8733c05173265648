"""Checkpoint averaging and best-on-dev: snapshots kept during training, dev WER in TensorBoard,
`asr-pathways average` writing run folders that evaluate, export and transcribe accept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from asr_pathways.averaging import BEST_NAME, average_states, snapshots
from asr_pathways.checkpoint import load_checkpoint
from asr_pathways.cli import main
from asr_pathways.errors import InputError


def test_average_states_is_the_mean() -> None:
    g = torch.Generator().manual_seed(0)
    states = [{"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g).half(), "n": torch.tensor(i)} for i in range(3)]
    avg = average_states(states)
    torch.testing.assert_close(avg["w"], (states[0]["w"] + states[1]["w"] + states[2]["w"]) / 3)
    assert avg["b"].dtype == torch.float16 and int(avg["n"]) == 2
    with pytest.raises(InputError, match="different tensors"):
        average_states([{"w": torch.zeros(1)}, {"v": torch.zeros(1)}])


@pytest.fixture(scope="module")
def run(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("avg") / "dense"
    assert main(["train", "--corpus", str(tiny_corpus), "--out", str(out), "--preset", "tiny", "--steps", "4",
                 "--max-duration", "4", "--checkpoint-every", "1", "--keep-checkpoints", "2", "--eval-every", "2",
                 "--eval-split", "none", "--device", "cpu"]) == 0
    return out


def test_training_keeps_snapshots_and_logs_dev_wer(run: Path) -> None:
    assert [s for s, _ in snapshots(run)] == [3, 4]  # the last two of four
    rows = [json.loads(l) for l in (run / "dev_wer.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and set(rows[0]["languages"]) == {"en", "fr"}
    best = load_checkpoint(run / BEST_NAME)
    assert best.meta["dev_wer"] == min(r["wer"] for r in rows)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("dev/wer")] == [2, 4] and "dev/wer/fr" in acc.Tags()["scalars"]


def test_average_last_and_best_dev(run: Path, tmp_path: Path, capsys) -> None:
    assert main(["average", str(run), "--last", "2", "--out", str(tmp_path / "avg")]) == 0
    snaps = [load_checkpoint(p).model for _, p in snapshots(run)]
    got = load_checkpoint(tmp_path / "avg").model
    for k, v in got.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, (snaps[0][k] + snaps[1][k]) / 2, rtol=0, atol=1e-6)
    assert load_checkpoint(tmp_path / "avg").meta["averaged_steps"] == [3, 4]
    # the new folder is a run: evaluate (and so export/transcribe) take it
    assert main(["evaluate", str(tmp_path / "avg"), "--split", "dev", "--max-utts", "2", "--device", "cpu"]) == 0
    assert main(["average", str(run), "--best-dev", "--out", str(tmp_path / "best")]) == 0
    best = load_checkpoint(tmp_path / "best")
    assert best.meta["selected_from"] == BEST_NAME
    # without best.safetensors, --best-dev decodes dev with each snapshot and the final checkpoint
    (run / BEST_NAME).rename(tmp_path / "kept.safetensors")
    try:
        assert main(["average", str(run), "--best-dev", "--max-utts", "2", "--out", str(tmp_path / "best2")]) == 0
        meta = load_checkpoint(tmp_path / "best2").meta
        assert len(meta["candidates"]) == 3 and meta["dev_wer"] == min(meta["candidates"].values())
    finally:
        (tmp_path / "kept.safetensors").rename(run / BEST_NAME)
    capsys.readouterr()
    assert main(["average", str(run), "--last", "5", "--out", str(tmp_path / "x")]) == 2
    assert "keeps 2 snapshot(s), 5 asked" in capsys.readouterr().err
