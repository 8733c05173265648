"""Fixtures of the hostile-input tests (helpers: hostile_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # data_fixtures

from hostile_helpers import TRAIN  # noqa: E402

from asr_pathways.cli import main  # noqa: E402


@pytest.fixture(scope="session")
def dense_run(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-step tiny run on the shared tiny corpus (en, fr); tests copy it before changing it."""
    out = tmp_path_factory.mktemp("hostile-runs") / "dense"
    assert main(["train", "--corpus", str(tiny_corpus), "--out", str(out), "--steps", "3", *TRAIN]) == 0
    return out
