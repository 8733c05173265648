"""Compact export: bitmaps, exact round trip to θ ⊙ m_l, single-language size, sparse-kernel decoding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asr_pathways.asr.decode import greedy_decode
from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset
from asr_pathways.export.compact import (
    CompactModel,
    export_pathways,
    masked_state_dict,
    pack_bits,
    unpack_bits,
    use_sparse_kernels,
)
from asr_pathways.export.sparse_linear import BlockSparseLinear
from asr_pathways.sparsity.blocks import magnitude_mask


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), max_size=200))
def test_bitmap_round_trip(bits):
    t = torch.tensor(bits, dtype=torch.bool)
    packed = pack_bits(t)
    assert packed.dtype == torch.uint8 and packed.numel() == (len(bits) + 7) // 8
    assert torch.equal(unpack_bits(packed, len(bits)), t)


def _tiny(seed=0, **over):
    torch.manual_seed(seed)
    cfg = load_preset("tiny")["model"] | over
    model = RNNTModel(ModelConfig.from_dict(cfg), vocab_size=29).eval()
    return model, cfg


def _pathway_masks(model, sparsity, block=(8, 1), langs=("en", "fr", "it")):
    """Different masks per language: magnitude of the weights plus per-language noise."""
    masks = {}
    for i, lang in enumerate(langs):
        g = torch.Generator().manual_seed(100 + i)
        masks[lang] = {}
        for name in model.weight_matrix_names():
            w = dict(model.named_parameters())[name].detach()
            noisy = w.abs() * (1 + torch.rand(w.shape, generator=g))
            masks[lang][name] = magnitude_mask(noisy, sparsity, block=block)
    return masks


def _outputs(model, seed=5):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(2, 37, 80, generator=g)
    lens = torch.tensor([37, 22])
    tokens = torch.randint(1, 29, (2, 4), generator=g)
    tlens = torch.tensor([4, 2])
    with torch.no_grad():
        enc, _ = model.encode(feats, lens)
        logits = model.joint_logits(enc, tokens)
        ctc = model.ctc_head(enc)
    return enc, logits, ctc


@pytest.mark.parametrize("block", [(8, 1), (1, 1)])
def test_round_trip_all_pathways(tmp_path, block):
    model, cfg = _tiny()
    masks = _pathway_masks(model, 0.7, block)
    meta = export_pathways(model, masks, tmp_path / "m", cfg, keep_ctc=True)
    assert meta["pathways"] == ["en", "fr", "it"] and meta["dropped"] == []
    assert all(info["block"] == [block[0], 1] for info in meta["prunable"].values())
    cm = CompactModel.load(tmp_path / "m")
    for lang in ("en", "fr", "it"):
        expected = masked_state_dict(model, masks[lang])
        got = cm.state_dict(lang)
        assert set(got) == set(expected)
        for k in expected:
            assert torch.equal(got[k], expected[k]), k
        assert all(torch.equal(cm.masks(lang)[n], masks[lang][n]) for n in masks[lang])
        ref = RNNTModel(ModelConfig.from_dict(cfg), 29).eval()
        ref.load_state_dict(expected)
        for a, b in zip(_outputs(ref), _outputs(cm.model(lang))):
            assert torch.equal(a, b)


def test_unstructured_masks_and_edge_rows(tmp_path):
    # 29-token vocabulary: joiner.output has 29 rows (not a multiple of 8); random element masks
    model, cfg = _tiny(seed=1)
    g = torch.Generator().manual_seed(0)
    masks = {"xx": {n: torch.rand(p.shape, generator=g) > 0.6 for n, p in model.named_parameters() if n in model.weight_matrix_names()}}
    export_pathways(model, masks, tmp_path / "m", cfg, keep_ctc=True)
    cm = CompactModel.load(tmp_path / "m")
    expected = masked_state_dict(model, masks["xx"])
    assert all(torch.equal(cm.state_dict("xx")[k], v) for k, v in expected.items())


def test_single_language_size(tmp_path):
    # a model whose weights are mostly prunable matrices, as in the small preset
    model, cfg = _tiny(d_model=64, num_heads=2, predictor_dim=64, joiner_dim=64)
    masks = _pathway_masks(model, 0.7)
    meta_all = export_pathways(model, masks, tmp_path / "all", cfg)
    meta_fr = export_pathways(model, masks, tmp_path / "fr", cfg, languages=["fr"])
    assert meta_fr["pathways"] == ["fr"]
    sizes = meta_fr["sizes"]
    dense = sizes["dense_float32_bytes"]
    prunable = sum(p.numel() * 4 for n, p in model.named_parameters() if n in masks["fr"])
    ctc = sum(p.numel() * 4 for n, p in model.named_parameters() if n.startswith("ctc_head."))
    other = dense - prunable - ctc  # the CTC head is dropped by default
    assert meta_fr["dropped"] == ["ctc_head.bias", "ctc_head.weight"] and meta_fr["config"]["ctc_weight"] == 0
    assert sizes["values_bytes"] == pytest.approx(0.3 * prunable, rel=0.02)
    assert sizes["bitmap_bytes"] <= prunable / 4 / 8 / 8 + 8 * len(masks["fr"])
    assert sizes["dense_remainder_bytes"] == other
    assert sizes["values_bytes"] + sizes["bitmap_bytes"] + sizes["dense_remainder_bytes"] + sizes["header_bytes"] == sizes["weights_bytes"]
    assert sizes["sparsity_prunable"] == pytest.approx(0.7, abs=0.02)
    assert sizes["sparsity_all_parameters"] == pytest.approx(0.7 * prunable / dense, abs=0.02)
    assert sizes["ratio_to_dense"] < sizes["ratio_to_dense_decoding"]
    # stored: 30% of the prunable values + bitmaps (1 bit per 8 weights) + the rest dense + header
    assert meta_fr["sizes"]["weights_bytes"] <= 0.3 * prunable + prunable / 256 + other + 16_000
    assert meta_fr["sizes"]["weights_bytes"] < meta_all["sizes"]["weights_bytes"]
    cm = CompactModel.load(tmp_path / "fr")
    with pytest.raises(Exception, match="no pathway"):
        cm.state_dict("en")
    expected = masked_state_dict(model, masks["fr"])
    got = cm.state_dict("fr")
    assert set(got) == {k for k in expected if not k.startswith("ctc_head.")}
    assert all(torch.equal(got[k], expected[k]) for k in got)


def test_sparse_kernel_decoding_matches_dense(tmp_path):
    model, cfg = _tiny(seed=2)
    # scale up the joiner output so that greedy decoding emits tokens from a random model
    with torch.no_grad():
        model.joiner.output.weight.mul_(4)
        model.joiner.output.bias[0] = -3.0
    masks = _pathway_masks(model, 0.7)
    export_pathways(model, masks, tmp_path / "m", cfg, languages=["fr"])
    cm = CompactModel.load(tmp_path / "m")
    dense = cm.model("fr")
    assert dense.ctc_head is None  # dropped: RNN-T decoding does not use it
    sparse = cm.model("fr", sparse_kernels=True, kernel_mode="kernel")  # tiny layers: force the kernel
    n_sparse = sum(isinstance(m, BlockSparseLinear) for m in sparse.modules())
    assert n_sparse >= 3 * cfg["num_layers"]
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 60, 80, generator=g)
    lens = torch.tensor([60, 41, 25])
    hyp_dense = greedy_decode(dense, feats, lens)
    assert sum(map(len, hyp_dense)) > 0
    assert greedy_decode(sparse, feats, lens) == hyp_dense
    assert greedy_decode(cm.model("fr", sparse_kernels=True), feats, lens) == hyp_dense  # auto mode
    # batch 1, as in streaming decoding
    for i in range(3):
        assert greedy_decode(sparse, feats[i : i + 1, : lens[i]], lens[i : i + 1]) == greedy_decode(dense, feats[i : i + 1, : lens[i]], lens[i : i + 1])
    # and use_sparse_kernels on the training-time model gives the same
    ref = RNNTModel(ModelConfig.from_dict(cfg), 29).eval()
    ref.load_state_dict(masked_state_dict(model, masks["fr"]))
    assert greedy_decode(use_sparse_kernels(ref, masks["fr"], mode="kernel"), feats, lens) == hyp_dense


def test_keep_ctc_and_dense_export(tmp_path):
    model, cfg = _tiny(seed=3)
    masks = _pathway_masks(model, 0.5, langs=("fr",))
    meta = export_pathways(model, masks, tmp_path / "ctc", cfg, keep_ctc=True)
    assert meta["dropped"] == [] and meta["config"]["ctc_weight"] == cfg["ctc_weight"]
    cm = CompactModel.load(tmp_path / "ctc")
    assert cm.model("fr").ctc_head is not None
    # no masks at all: one pathway "dense", every weight stored dense
    meta = export_pathways(model, {"dense": {}}, tmp_path / "dense", cfg)
    assert meta["prunable"] == {} and meta["sizes"]["sparsity_prunable"] == 0.0
    got = CompactModel.load(tmp_path / "dense").state_dict("dense")
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items() if not k.startswith("ctc_head."))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_width_export(tmp_path, dtype):
    """--dtype float16/bfloat16: about half the bytes; loading gives exactly θ ⊙ m rounded to the type."""
    model, cfg = _tiny(d_model=64, num_heads=2, predictor_dim=64, joiner_dim=64)
    masks = _pathway_masks(model, 0.7)
    full = export_pathways(model, masks, tmp_path / "f32", cfg, languages=["fr"])
    half = export_pathways(model, masks, tmp_path / "half", cfg, languages=["fr"], dtype=dtype)
    assert half["dtype"] == dtype and full["dtype"] == "float32"
    s32, s16 = full["sizes"], half["sizes"]
    assert s16["values_bytes"] * 2 == s32["values_bytes"] and s16["bitmap_bytes"] == s32["bitmap_bytes"]
    assert s16["weights_bytes"] < 0.55 * s32["weights_bytes"]
    cm = CompactModel.load(tmp_path / "half")
    assert cm.dtype == dtype
    store = getattr(torch, dtype)
    expected = masked_state_dict(model, masks["fr"])
    got = cm.state_dict("fr")
    for k, v in got.items():
        assert v.dtype == expected[k].dtype, k
        want = expected[k].to(store).to(v.dtype) if v.is_floating_point() else expected[k]
        assert torch.equal(v, want), k
    ref = RNNTModel(ModelConfig.from_dict(cfg), 29).eval()
    ref.load_state_dict({k: v for k, v in expected.items() if not k.startswith("ctc_head.")}, strict=False)
    feats, lens = torch.randn(2, 37, 80, generator=torch.Generator().manual_seed(5)), torch.tensor([37, 22])
    with torch.no_grad():
        enc_ref = ref.encode(feats, lens)[0]
        enc_half = cm.model("fr").encode(feats, lens)[0]
    tol = 0.05 if dtype == "float16" else 0.3
    assert (enc_ref - enc_half).abs().max() < tol  # close to the float32 model, not equal
    with pytest.raises(Exception, match="storage dtype"):
        export_pathways(model, masks, tmp_path / "bad", cfg, dtype="int8")
