"""Shared fixtures: a tiny real corpus (espeak-ng audio, lhotse manifests) built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("ASR_PATHWAYS_NO_TCMALLOC", "1")  # tests run in-process; never re-exec pytest


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two languages, ~40 s of training audio each, 8 dev and 8 test utterances per language."""
    from asr_pathways.cli import main

    out = tmp_path_factory.mktemp("corpus") / "tiny"
    rc = main([
        "corpus", "synth", "--out", str(out), "--languages", "en,fr", "--hours", "en=0.012,fr=0.012",
        "--test-utts", "8", "--dev-utts", "8", "--seed", "3",
    ])
    assert rc == 0
    return out
