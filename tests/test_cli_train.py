"""`asr-pathways train` and `evaluate` end to end on the tiny preset (in-process CLI calls)."""

from __future__ import annotations

import json

import pytest

from asr_pathways.cli import main


def test_train_evaluate_and_finetune(tiny_corpus, tmp_path):
    run = tmp_path / "dense"
    assert main(["train", "--preset", "tiny", "--corpus", str(tiny_corpus), "--out", str(run), "--steps", "6",
                 "--eval-max-utts", "3"]) == 0
    for name in ("config.yaml", "tokenizer.model", "checkpoint.safetensors", "checkpoint.json", "metrics.jsonl", "wer_test.json", "wer_test.md", "hyps_test.jsonl"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "wer_test.json").read_text())
    assert set(summary["languages"]) == {"en", "fr"}
    assert all(r["utterances"] == 3 for r in summary["languages"].values())
    # the table is what its own hypotheses give: per language with jiwer (word_errors), the average over languages
    from asr_pathways.report import word_errors

    hyps = [json.loads(l) for l in (run / "hyps_test.jsonl").read_text().splitlines()]
    assert len(hyps) == 6 and {h["language"] for h in hyps} == {"en", "fr"}
    for lang, row in summary["languages"].items():
        mine = [h for h in hyps if h["language"] == lang]
        errors, words = sum(word_errors(h["ref"], h["hyp"]) for h in mine), sum(len(h["ref"].split()) for h in mine)
        assert row["word_errors"] == errors and row["wer"] == pytest.approx(errors / words)
    assert summary["average"]["wer"] == pytest.approx(sum(r["wer"] for r in summary["languages"].values()) / 2)
    assert list((run / "tensorboard").iterdir())

    # running the same command again resumes: nothing left to do, weights unchanged
    before = (run / "checkpoint.safetensors").read_bytes()
    assert main(["train", "--preset", "tiny", "--corpus", str(tiny_corpus), "--out", str(run), "--steps", "6", "--eval-split", "none"]) == 0
    assert (run / "checkpoint.safetensors").read_bytes() == before

    assert main(["evaluate", str(run), "--split", "dev", "--max-utts", "2", "--languages", "fr"]) == 0
    dev = json.loads((run / "wer_dev.json").read_text())
    assert list(dev["languages"]) == ["fr"]

    mono = tmp_path / "mono-fr"
    assert main(["train", "--preset", "tiny", "--corpus", str(tiny_corpus), "--init", str(run), "--languages", "fr",
                 "--steps", "3", "--out", str(mono), "--eval-split", "none"]) == 0
    assert (mono / "tokenizer.model").read_bytes() == (run / "tokenizer.model").read_bytes()


def test_train_rejects_unknown_language(tiny_corpus, tmp_path, capsys):
    rc = main(["train", "--preset", "tiny", "--corpus", str(tiny_corpus), "--out", str(tmp_path / "x"), "--languages", "xx"])
    assert rc == 2
    assert "xx" in capsys.readouterr().err


def test_unknown_preset_is_a_clear_error(tiny_corpus, tmp_path, capsys):
    rc = main(["train", "--preset", "nope", "--corpus", str(tiny_corpus), "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "nope" in capsys.readouterr().err
