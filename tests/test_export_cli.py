"""`asr-pathways export` on real run folders: a dense run, a LAP run (shared mask), an ASR Pathways
run (per-language masks) and a monolingual IMP run (lang/{lang}/ sub-runs), each from the tiny preset
on the tiny corpus. The exported pathway equals the training-time θ ⊙ m_l model, and greedy decoding
with the sparse kernels gives the same transcripts as dense masked decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr_pathways.asr.decode import greedy_decode
from asr_pathways.asr.model import ModelConfig, RNNTModel
from asr_pathways.cli import main
from asr_pathways.data.batches import eval_batches
from asr_pathways.data.corpus import Corpus
from asr_pathways.export.compact import CompactModel, masked_state_dict
from asr_pathways.export.sparse_linear import BlockSparseLinear
from asr_pathways.runs import load_run


@pytest.fixture(scope="module")
def runs(tiny_runs: dict[str, Path]) -> dict[str, Path]:
    """dense, lap, pathways and imp runs (conftest.py's tiny_runs, shared with test_transcribe.py)."""
    return tiny_runs


def export(run: Path, out: Path, *extra: str) -> CompactModel:
    assert main(["export", str(run), "--out", str(out), *extra]) == 0
    return CompactModel.load(out)


def export_error(run: Path, out: Path, capsys, *extra: str) -> str:
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(out), *extra]) != 0
    return capsys.readouterr().err


def features(corpus: Path, lang: str, tokenizer, n: int = 4):
    cuts = Corpus(corpus).cuts(lang, "test").subset(first=n)
    return [(b.features, b.feature_lens) for b in eval_batches(cuts, tokenizer, lang, max_duration=1000.0)]


def check_pathway(cm: CompactModel, pathway: str, run: Path, mask_name: str, corpus: Path, lang: str) -> None:
    """Exported pathway == θ ⊙ m of the run (exactly), and sparse-kernel decoding == dense decoding."""
    loaded = load_run(run)
    mask = loaded.masks[mask_name]
    ref = RNNTModel(ModelConfig.from_dict(cm.meta["config"]), loaded.model.vocab_size).eval()
    expected = masked_state_dict(loaded.model, mask)
    got = cm.state_dict(pathway)
    assert set(got) == {k for k in expected if not k.startswith("ctc_head.")}  # the CTC head is dropped
    for k, v in got.items():
        assert torch.equal(v, expected[k]), k
    ref.load_state_dict(got)
    model = cm.model(pathway)
    assert model.ctc_head is None
    sparse = cm.model(pathway, sparse_kernels=True, kernel_mode="kernel")  # tiny layers: force the kernel
    assert sum(isinstance(m, BlockSparseLinear) for m in sparse.modules()) > 0
    for feats, lens in features(corpus, lang, loaded.tokenizer):
        with torch.no_grad():
            e1, l1 = ref.encode(feats, lens)
            e2, l2 = model.encode(feats, lens)
        assert torch.equal(e1, e2) and torch.equal(l1, l2)
        tokens = torch.randint(1, ref.vocab_size, (feats.shape[0], 3), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():  # the kernels differ from dense only by float rounding
            torch.testing.assert_close(sparse.encode(feats, lens)[0], e1, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(sparse.joint_logits(e1, tokens), ref.joint_logits(e1, tokens), rtol=1e-4, atol=1e-4)
        dense_hyps = greedy_decode(ref, feats, lens)
        assert greedy_decode(model, feats, lens) == dense_hyps
        assert greedy_decode(sparse, feats, lens) == dense_hyps
        print(f"{pathway}: {sum(map(len, dense_hyps))} tokens decoded")
        for i in range(len(lens)):  # batch 1, as on a device
            one = feats[i : i + 1, : lens[i]], lens[i : i + 1]
            assert greedy_decode(sparse, *one) == greedy_decode(ref, *one)


def test_export_pathways_run(runs, tmp_path, capsys):
    cm = export(runs["pathways"], tmp_path / "all")
    assert cm.pathways == ["en", "fr"]
    for lang in ("en", "fr"):
        check_pathway(cm, lang, runs["pathways"], lang, runs["corpus"], lang)
    fr = export(runs["pathways"], tmp_path / "fr", "--language", "fr")
    assert fr.pathways == ["fr"]
    assert fr.meta["sizes"]["weights_bytes"] < cm.meta["sizes"]["weights_bytes"]
    assert fr.meta["sizes"]["sparsity_prunable"] == pytest.approx(0.7, abs=0.02)
    check_pathway(fr, "fr", runs["pathways"], "fr", runs["corpus"], "fr")
    assert "no pathway named de" in export_error(runs["pathways"], tmp_path / "xx", capsys, "--language", "de")


def test_export_lap_run_shared_mask(runs, tmp_path):
    cm = export(runs["lap"], tmp_path / "lap")
    assert cm.pathways == ["shared"]
    check_pathway(cm, "shared", runs["lap"], "shared", runs["corpus"], "en")
    fr = export(runs["lap"], tmp_path / "lap-fr", "--language", "fr", "--keep-ctc")
    assert fr.pathways == ["fr"] and fr.meta["dropped"] == [] and fr.model("fr").ctc_head is not None
    assert torch.equal(fr.masks("fr")[next(iter(fr.meta["prunable"]))], cm.masks("shared")[next(iter(cm.meta["prunable"]))])


def test_export_monolingual_run(runs, tmp_path, capsys):
    cm = export(runs["imp"], tmp_path / "imp-en", "--language", "en")
    assert cm.pathways == ["en"] and cm.meta["source_run"].endswith("lang/en")
    check_pathway(cm, "en", runs["imp"] / "lang" / "en", "en", runs["corpus"], "en")
    assert "no sub-run" in export_error(runs["imp"], tmp_path / "imp-fr", capsys, "--language", "fr")


def test_export_dense_run(runs, tmp_path, capsys):
    cm = export(runs["dense"], tmp_path / "dense")
    assert cm.pathways == ["dense"] and cm.meta["prunable"] == {}
    loaded = load_run(runs["dense"])
    got = cm.state_dict("dense")
    assert all(torch.equal(got[k], v) for k, v in loaded.model.state_dict().items() if not k.startswith("ctc_head."))
    assert "no pathway masks" in export_error(runs["dense"], tmp_path / "dense-fr", capsys, "--language", "fr")


def test_export_onnx_cli(runs, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    export(runs["pathways"], tmp_path / "fr", "--language", "fr", "--onnx")
    assert sorted(p.name for p in (tmp_path / "fr" / "onnx").iterdir()) == ["encoder.onnx", "joiner.onnx", "predictor.onnx"]
