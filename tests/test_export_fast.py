"""Whole-model sparse decoding: attention projections and the predictor LSTM run sparse too, the
lean batch-1 loop equals greedy_decode, and transcripts equal the masked dense model's."""

from __future__ import annotations

import torch
from torch import nn

from asr_pathways.asr.beam_search import decode_batch
from asr_pathways.asr.decode import greedy_decode
from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset
from asr_pathways.export.attention import LinearSelfAttention
from asr_pathways.export.compact import CompactModel, export_pathways
from asr_pathways.export.fast import decode_one, lean_greedy, sparse_decoding_model, sparse_layer_count
from asr_pathways.export.module_lstm import ModuleLSTM
from asr_pathways.export.sparse_linear import BlockSparseLinear
from asr_pathways.sparsity.blocks import magnitude_mask


def emitting(seed: int = 0, **over) -> tuple[RNNTModel, dict]:
    torch.manual_seed(seed)
    cfg = load_preset("tiny")["model"] | over
    model = RNNTModel(ModelConfig.from_dict(cfg), vocab_size=29).eval()
    with torch.no_grad():
        model.joiner.output.weight.mul_(4)
        model.joiner.output.bias[0] = -3.0
    return model, cfg


def masks_of(model: RNNTModel, sparsity: float) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {n: magnitude_mask(params[n].detach(), sparsity) for n in model.weight_matrix_names()}


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, 60, 80, generator=g), torch.tensor([60, 41, 25])


def test_every_pruned_matrix_is_sparse(tmp_path) -> None:
    model, cfg = emitting(predictor_layers=2)
    mask = masks_of(model, 0.7)
    assert any("self_attn.in_proj_weight" in n for n in mask) and any("lstm.weight_hh_l1" in n for n in mask)
    export_pathways(model, {"fr": mask}, tmp_path / "m", cfg, languages=["fr"])
    cm = CompactModel.load(tmp_path / "m")
    dense = cm.model("fr")
    sparse = sparse_decoding_model(dense, cm.masks("fr"), mode="kernel")
    assert not any(isinstance(m, (nn.MultiheadAttention, nn.LSTM)) for m in sparse.modules())
    assert any(isinstance(m, LinearSelfAttention) for m in sparse.modules())
    assert isinstance(sparse.predictor.lstm, ModuleLSTM)
    # every pruned matrix: 6 Linear + 2 attention per layer, 2 LSTM layers, 3 joiner matrices
    n_sparse, _ = sparse_layer_count(sparse)
    assert n_sparse == cfg["num_layers"] * 8 + 2 + 3
    # the dense original is untouched (a copy was converted)
    assert any(isinstance(m, nn.MultiheadAttention) for m in dense.modules())
    feats, lens = batch()
    with torch.no_grad():
        e1, _ = dense.encode(feats, lens)
        e2, _ = sparse.encode(feats, lens)
        torch.testing.assert_close(e2, e1, rtol=1e-4, atol=1e-4)
        tokens = torch.randint(1, 29, (3, 4), generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(sparse.joint_logits(e1, tokens), dense.joint_logits(e1, tokens), rtol=1e-4, atol=1e-4)
    hyps = greedy_decode(dense, feats, lens)
    assert sum(map(len, hyps)) > 0
    assert greedy_decode(sparse, feats, lens) == hyps
    assert decode_batch(sparse, feats, lens, decoding="beam") == decode_batch(dense, feats, lens, decoding="beam")
    for i in range(3):
        one = feats[i, : lens[i]]
        assert lean_greedy(sparse, one) == hyps[i]
        assert decode_one(sparse, one, "beam", 3) == decode_batch(dense, one[None], lens[i : i + 1], decoding="beam", beam=3)[0]


def test_lean_greedy_equals_greedy_decode_exactly() -> None:
    model, _ = emitting(seed=3)
    feats, lens = batch(2)
    for i in range(3):
        assert lean_greedy(model, feats[i, : lens[i]]) == greedy_decode(model, feats[i : i + 1, : lens[i]], lens[i : i + 1])[0]


def test_empty_mask_gives_the_dense_model_through_the_same_modules() -> None:
    model, _ = emitting(seed=4)
    same = sparse_decoding_model(model, {})
    assert sparse_layer_count(same)[0] == 0 and isinstance(same.predictor.lstm, ModuleLSTM)
    feats, lens = batch(5)
    assert greedy_decode(same, feats, lens) == greedy_decode(model, feats, lens)


def test_auto_mode_on_real_shapes_is_exact_enough() -> None:
    model, _ = emitting(seed=6, d_model=64, predictor_dim=64, joiner_dim=64)
    sparse = sparse_decoding_model(model, {n: m for n, m in masks_of(model, 0.7).items()}, mode="auto")
    assert all(m.mode == "auto" for m in sparse.modules() if isinstance(m, BlockSparseLinear))
    feats, lens = batch(7)
    masked = sparse_decoding_model(model, masks_of(model, 0.7), mode="dense")
    assert greedy_decode(sparse, feats, lens) == greedy_decode(masked, feats, lens)
