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


@pytest.fixture(scope="session")
def tiny_runs(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Runs of the tiny preset on the tiny corpus, built once per session (read them, never write
    into them): a dense run (3 steps), a LAP run (one shared mask), an ASR Pathways run (en and fr
    pathways) and a monolingual IMP run (lang/en only); all at 70%."""
    from asr_pathways.cli import main

    fast = ["--no-progress", "--device", "cpu", "--max-duration", "4", "--round-steps", "2", "--eval-split", "none"]
    root = tmp_path_factory.mktemp("tiny-runs")
    dense, lap, pw, imp = root / "dense", root / "lap", root / "pathways", root / "imp"
    assert main(["train", "--corpus", str(tiny_corpus), "--out", str(dense), "--preset", "tiny", "--steps", "3",
                 "--max-duration", "4", "--eval-split", "none", "--device", "cpu"]) == 0
    assert main(["prune", "--method", "lap", "--lap-base", "imp", "--from", str(dense), "--out", str(lap),
                 "--target", "0.7", "--prune-step", "0.35", *fast]) == 0
    assert main(["prune", "--method", "pathways", "--from", str(dense), "--out", str(pw), "--masks-from", str(lap),
                 "--init-sparsity", "0.7", "--target", "0.7", "--steps", "2", *fast]) == 0
    assert main(["prune", "--method", "imp", "--from", str(dense), "--out", str(imp), "--languages", "en",
                 "--target", "0.7", "--prune-step", "0.7", *fast]) == 0
    return {"dense": dense, "lap": lap, "pathways": pw, "imp": imp, "corpus": tiny_corpus}
