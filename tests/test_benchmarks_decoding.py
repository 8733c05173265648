"""Smoke tests of the decoding benchmarks on the tiny preset (random weights): they run end to end
and their tables hold what BENCHMARKS.md promises. The real measurements use small/base presets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def test_whole_model_speed_tiny(capsys) -> None:
    from benchmarks import whole_model_speed

    assert whole_model_speed.main(["--presets", "tiny", "--utterances", "2", "--seconds", "2", "--repeats", "1", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| tiny (random) |" in out and "2/2 |" in out  # lean sparse transcripts identical to torch's


def test_onnx_parity_tiny(capsys) -> None:
    pytest.importorskip("onnxruntime")
    from benchmarks import onnx_parity

    assert onnx_parity.main(["--presets", "tiny", "--utterances", "2", "--seconds", "2", "--no-write"]) == 0
    assert "| tiny (random) | 70.0% |" in capsys.readouterr().out


def test_beam_search_benchmark_tiny(tiny_runs, capsys) -> None:
    """Greedy, beam and modified beam on the tiny dense run: one row per language plus the average, every search's column."""
    from benchmarks import beam_search

    argv = ["--model", str(tiny_runs["dense"]), "--max-utts", "2", "--beams", "2", "--engine", "torch", "--no-write"]
    assert beam_search.main(argv) == 0
    out = capsys.readouterr().out
    assert "| beam 2 WER (rel.) | modified beam 2 WER (rel.) |" in out
    assert "| en | 2 |" in out and "| fr | 2 |" in out and "| **average** |" in out
    with pytest.raises(SystemExit):
        beam_search.main([*argv, "--searches", "viterbi"])
