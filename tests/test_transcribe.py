"""Using the pruned models: `transcribe` and `evaluate` on a run folder, a language sub-run, a
monolingual prune run, exports (float32, float16, ONNX), model cards, and the exit-2 error for a
language without a pathway. Tiny preset on the tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from asr_pathways.cli import main
from asr_pathways.data.batches import compute_fbank
from asr_pathways.data.corpus import Corpus
from asr_pathways.loading import open_model
from asr_pathways.transcription import expand_audio_inputs, load_audio, transcribe


@pytest.fixture(scope="module")
def runs(tiny_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """conftest.py's tiny runs and exports of the pathways run: en (+ ONNX), en in float16, all."""
    pw = tiny_runs["pathways"]
    exports = tmp_path_factory.mktemp("use-exports")
    assert main(["export", str(pw), "--out", str(exports / "en"), "--language", "en", "--onnx"]) == 0
    assert main(["export", str(pw), "--out", str(exports / "en-f16"), "--language", "en", "--dtype", "float16"]) == 0
    assert main(["export", str(pw), "--out", str(exports / "all")]) == 0
    return tiny_runs | {"exports": exports}


def clips(runs) -> list[Path]:
    cuts = Corpus(runs["corpus"]).cuts("en", "test")
    return [Path(c.recording.sources[0].source) for c in list(cuts)[:3]]


def reference(run: Path, lang: str, audio: Path) -> str:
    """Greedy transcript through the training-time masked model (PathwayModel), independently."""
    from asr_pathways.asr.decode import greedy_decode
    from asr_pathways.evaluate import pathways_for_run
    from asr_pathways.runs import load_run

    loaded = load_run(run)
    pm, pathway_of = pathways_for_run(loaded.model, loaded.masks, [lang])
    feats = compute_fbank(load_audio(audio))
    with pm.pathway(pathway_of(lang)):
        ids = greedy_decode(loaded.model, feats[None], torch.tensor([feats.shape[0]]))[0]
    return loaded.tokenizer.decode(ids)


def test_transcribe_run_subrun_and_exports(runs, capsys) -> None:
    audio = clips(runs)
    expected = [reference(runs["pathways"], "en", a) for a in audio]
    capsys.readouterr()
    assert main(["transcribe", str(runs["pathways"]), *map(str, audio), "--language", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [l.split("\t")[0] for l in lines] == [str(a) for a in audio]
    assert [l.split("\t", 1)[1] for l in lines] == expected
    # the export (sparse kernels + lean loop by default, and the torch engine) and its ONNX graphs
    for engine in ("sparse", "torch", "onnx"):
        got = transcribe(runs["exports"] / "en", audio, "en", engine=engine)
        assert [r.text for r in got] == expected, engine
    assert [r.text for r in transcribe(runs["exports"] / "en" / "onnx", audio, "en")] == expected
    assert [r.text for r in transcribe(runs["exports"] / "all", audio, "en")] == expected
    assert [r.text for r in transcribe(runs["pathways"], audio, "en", engine="sparse")] == expected  # a run, sparse
    f16 = transcribe(runs["exports"] / "en-f16", audio, "en")
    assert all(isinstance(r.text, str) for r in f16)
    # a monolingual prune run: its sub-run, or the run itself with --language
    sub = [reference(runs["imp"] / "lang" / "en", "en", a) for a in audio]
    assert [r.text for r in transcribe(runs["imp"] / "lang" / "en", audio, "en")] == sub
    assert [r.text for r in transcribe(runs["imp"], audio, "en")] == sub
    # beam search runs on every kind
    for model in (runs["pathways"], runs["exports"] / "en", runs["exports"] / "en" / "onnx"):
        assert len(transcribe(model, audio[:1], "en", decoding="beam", beam=2)) == 1


def test_transcribe_inputs_and_jsonl(runs, tmp_path, capsys) -> None:
    audio = clips(runs)
    folder = tmp_path / "clips"
    folder.mkdir()
    for a in audio:
        (folder / a.name).write_bytes(a.read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text("# clips\n" + "\n".join(f"clips/{a.name}" for a in audio) + "\n\n")
    assert expand_audio_inputs([folder]) == sorted(folder / a.name for a in audio)
    assert expand_audio_inputs([listing]) == [folder / a.name for a in audio]
    capsys.readouterr()
    assert main(["transcribe", str(runs["exports"] / "en"), str(listing), "--language", "en", "--format", "jsonl"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and {"text", "tokens", "duration", "decode_seconds", "feature_seconds", "rtf"} <= set(rows[0])
    assert rows[0]["duration"] > 0 and rows[0]["language"] == "en"
    out = tmp_path / "out.txt"
    assert main(["transcribe", str(runs["exports"] / "en"), str(folder), "--language", "en", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3


def test_language_without_pathway_exits_2(runs, capsys) -> None:
    audio = clips(runs)[:1]
    capsys.readouterr()
    assert main(["transcribe", str(runs["pathways"]), str(audio[0]), "--language", "it"]) == 2
    err = capsys.readouterr().err
    assert "no pathway for language 'it'" in err and "one of en, fr" in err
    # evaluate: the monolingual IMP run has an en pathway only; fr is in the corpus but not in the model
    assert main(["evaluate", str(runs["imp"]), "--languages", "fr", "--max-utts", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "no pathway for language 'fr'" in err and "one of en" in err
    assert main(["evaluate", str(runs["exports"] / "en"), "--languages", "fr", "--device", "cpu"]) == 2
    assert "one of en" in capsys.readouterr().err
    assert main(["transcribe", str(runs["pathways"]), "missing.wav", "--language", "en"]) == 2
    assert "audio not found" in capsys.readouterr().err


def test_evaluate_export_and_card(runs, capsys) -> None:
    export = runs["exports"] / "en"
    meta = json.loads((export / "model.json").read_text())
    card = meta["card"]
    assert card["languages"] == ["en"] and card["method"]["name"] == "pathways"
    assert card["sparsity"]["per_pathway"]["en"] == pytest.approx(0.7, abs=0.05)
    assert card["size"]["weights_bytes"] > 0 and card["command"].startswith("asr-pathways export")
    assert card["onnx"]["pathway"] == "en" and card["onnx"]["bytes"]["encoder"] > 0
    everything = json.loads((runs["exports"] / "all" / "model.json").read_text())["card"]
    assert set(everything["sparsity"]["per_pathway"]) == {"en", "fr"}
    assert everything["sparsity"]["union"] <= min(everything["sparsity"]["per_pathway"].values())
    assert (export / "README.md").is_file() and "| en |" in (export / "README.md").read_text()
    # evaluate on the export (default corpus from the card), greedy and beam, and on the ONNX graphs
    assert main(["evaluate", str(export), "--max-utts", "2", "--device", "cpu"]) == 0
    result = json.loads((export / "wer_test.json").read_text())
    assert set(result["languages"]) == {"en"} and result["engine"] == "sparse"
    card = json.loads((export / "model.json").read_text())["card"]
    assert card["wer"]["measured_on"] == "this export" and "en" in card["wer"]["languages"]
    assert main(["evaluate", str(export), "--max-utts", "2", "--device", "cpu", "--decoding", "beam", "--beam", "2"]) == 0
    assert json.loads((export / "wer_test_beam2.json").read_text())["decoding"] == "beam 2, up to 5 labels per frame"
    greedy_table = (export / "wer_test.json").read_text()
    for extra, name in ((["--decoding", "modified_beam"], "wer_test_modified_beam4.json"),
                        (["--decoding", "beam", "--out", str(export / "elsewhere")], "elsewhere/wer_test_beam4.json")):
        assert main(["evaluate", str(export), "--max-utts", "2", "--device", "cpu", *extra]) == 0
        assert (export / name).is_file()
    assert (export / "wer_test.json").read_text() == greedy_table  # the greedy table stays
    assert main(["evaluate", str(export), "--max-utts", "2", "--device", "cpu", "--decoding", "beam", "--plain-names",
                 "--out", str(export / "plain")]) == 0
    assert json.loads((export / "plain" / "wer_test.json").read_text())["decoding"].startswith("beam 4")
    assert main(["evaluate", str(export / "onnx"), "--max-utts", "2", "--device", "cpu"]) == 0
    hyps_onnx = (export / "onnx" / "hyps_test.jsonl").read_text()
    assert hyps_onnx == (export / "hyps_test.jsonl").read_text()
    for decoding in ("beam", "modified_beam"):  # the ONNX graphs run every search as the torch modules do
        assert main(["evaluate", str(export / "onnx"), "--max-utts", "2", "--device", "cpu", "--decoding", decoding]) == 0
        assert main(["evaluate", str(export), "--max-utts", "2", "--device", "cpu", "--engine", "torch", "--decoding", decoding,
                     "--out", str(export / "torch")]) == 0
        onnx_hyps = (export / "onnx" / f"hyps_test_{decoding}4.jsonl").read_text()
        assert [json.loads(l)["hyp"] for l in onnx_hyps.splitlines()] == \
            [json.loads(l)["hyp"] for l in (export / "torch" / f"hyps_test_{decoding}4.jsonl").read_text().splitlines()]
    assert main(["evaluate", str(runs["exports"] / "en-f16"), "--max-utts", "2", "--device", "cpu"]) == 0


def test_open_model_languages(runs) -> None:
    assert open_model(runs["pathways"]).languages == ["en", "fr"]
    assert open_model(runs["dense"]).languages == ["en", "fr"]
    assert open_model(runs["imp"]).languages == ["en"]
    assert open_model(runs["exports"] / "all").languages == ["en", "fr"]
    assert open_model(runs["exports"] / "en" / "onnx").kind == "onnx"
