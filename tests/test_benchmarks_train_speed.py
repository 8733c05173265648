"""benchmarks/train_speed.py: configurations take turns step by step in a seeded random order; ratios per block of steps."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from train_speed import block_ratios, interleave  # noqa: E402


class _Recorder:
    """A configuration whose step appends its name to a shared log and reports fixed audio."""

    def __init__(self, name: str, log: list[str], audio: float) -> None:
        self.name, self.log, self.audio = name, log, audio

    def train_step(self) -> dict[str, float]:
        self.log.append(self.name)
        return {"audio_seconds": self.audio}


def test_interleave_runs_every_configuration_once_per_step_in_a_seeded_random_order():
    log: list[str] = []
    names = ["new", "fixed", "repeated"]
    trainers = {n: _Recorder(n, log, a) for n, a in zip(names, (50.0, 64.0, 55.0))}
    out = interleave(trainers, names, 60, seed=3)
    steps = [log[i:i + 3] for i in range(0, len(log), 3)]
    assert all(sorted(s) == sorted(names) for s in steps)  # each configuration once per step
    neighbours = {(a, b) for s in steps for a, b in zip(s, s[1:])}
    assert neighbours == {(a, b) for a in names for b in names if a != b}  # every order of neighbours occurs
    for name, audio in zip(names, (50.0, 64.0, 55.0)):
        assert out[name]["audio"] == [audio] * 60
        assert len(out[name]["seconds"]) == 60 and all(s >= 0 for s in out[name]["seconds"])
    again: list[str] = []
    interleave({n: _Recorder(n, again, 1.0) for n in names}, names, 60, seed=3)
    assert again == log  # seeded


def test_block_ratios_compare_throughput_block_by_block():
    num = {"seconds": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0], "audio": [3.0] * 6}
    den = {"seconds": [1.0] * 6, "audio": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]}
    assert block_ratios(num, den, 2) == pytest.approx([1.5, 0.75])
    assert block_ratios(num, den, 6) == pytest.approx([3.0, 1.5, 1.0, 1.5, 0.75, 0.5])
    # 5 steps in 2 blocks: the first 2 steps, then the last 3
    five = {"seconds": [1.0, 1.0, 2.0, 2.0, 2.0], "audio": [1.0] * 5}
    assert block_ratios(five, {"seconds": [1.0] * 5, "audio": [1.0] * 5}, 2) == pytest.approx([1.0, 0.5])
    with pytest.raises(ValueError, match="6 blocks of 5 steps"):
        block_ratios(five, five, 6)


def test_phase_speed_tiny(tiny_runs, monkeypatch, capsys) -> None:
    """The pruning-phase benchmark runs end to end on the tiny runs, and the engine of commit 7b5d251 it keeps
    (OldPathwayModel) and today's leave the same bits after the same steps."""
    from benchmarks import phase_speed
    import train_speed  # (phase_speed put benchmarks/ on the path)

    monkeypatch.setattr(train_speed, "_reexec_with_tcmalloc", lambda: None)
    argv = ["--corpus", str(tiny_runs["corpus"]), "--dense", str(tiny_runs["dense"]), "--max-duration", "4",
            "--steps", "2", "--warmup", "1", "--blocks", "2", "--setup-repeats", "1", "--no-write"]
    assert phase_speed.main(argv) == 0
    assert "identical True (bitwise True)" in capsys.readouterr().out
