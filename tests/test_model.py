"""RNN-T model: presets, shapes, losses, bf16 autocast, padding independence, overfitting a batch."""

from __future__ import annotations

import math

import pytest
import torch

from asr_pathways.runtime import bf16_supported

from asr_pathways.asr.model import ModelConfig, RNNTModel, count_parameters, load_preset, normalize_features
from asr_pathways.asr.specaugment import SpecAugment
from asr_pathways.errors import InputError

VOCAB = 20


def tiny_config(**overrides) -> ModelConfig:
    values = dict(load_preset("tiny")["model"])
    values.update(overrides)
    return ModelConfig.from_dict(values)


def tiny_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(3, 57, 80, generator=g) * 3 - 5
    feature_lens = torch.tensor([57, 41, 13])
    tokens = torch.tensor([[3, 7, 1, 9], [2, 2, 0, 0], [5, 0, 0, 0]])
    token_lens = torch.tensor([4, 2, 1])
    return features, feature_lens, tokens, token_lens


def test_subsampling_factor_8_halves_the_encoder_frames_and_is_validated():
    features, feature_lens, _, _ = tiny_batch()
    model4 = RNNTModel(tiny_config(), VOCAB)
    model8 = RNNTModel(tiny_config(subsampling_factor=8), VOCAB)
    _, lens4 = model4.encode(features, feature_lens)
    enc8, lens8 = model8.encode(features, feature_lens)
    assert lens4.tolist() == [15, 11, 4]
    assert lens8.tolist() == [8, 6, 2] and enc8.shape[1] == 8
    with pytest.raises(InputError, match="subsampling_factor"):
        tiny_config(subsampling_factor=6)


def test_presets_load_and_unknown_names_are_clear():
    for name in ("tiny", "small", "base"):
        preset = load_preset(name)
        assert {"model", "tokenizer", "train"} <= set(preset)
        ModelConfig.from_dict(preset["model"])
    with pytest.raises(InputError, match="tiny"):
        load_preset("huge")
    with pytest.raises(InputError, match="d_modle"):
        ModelConfig.from_dict({"d_modle": 3})
    with pytest.raises(InputError, match="loss"):
        ModelConfig.from_dict({"loss": "attention"})
    with pytest.raises(InputError, match="d_model"):
        ModelConfig.from_dict({"d_model": "144"})
    assert ModelConfig.from_dict({"dropout": 0}).dropout == 0  # an int is a fine float


def test_preset_from_yaml_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  d_model: 48\n  num_heads: 4\ntrain:\n  steps: 3\n")
    assert load_preset(str(path))["model"]["d_model"] == 48
    with pytest.raises(InputError):
        load_preset(str(tmp_path / "missing.yaml"))


def test_parameter_counts_of_presets():
    small = RNNTModel(ModelConfig.from_dict(load_preset("small")["model"]), 256)
    assert 3_000_000 <= count_parameters(small) <= 7_000_000
    tiny = RNNTModel(tiny_config(), 64)
    assert count_parameters(tiny) < 200_000


def test_parameter_names_for_the_mask_engine():
    model = RNNTModel(tiny_config(), VOCAB)
    names = set(model.weight_matrix_names())
    assert "predictor.lstm.weight_ih_l0" in names and "predictor.lstm.weight_hh_l0" in names
    assert "encoder.layers.0.self_attn.in_proj_weight" in names
    assert "encoder.layers.1.self_attn.out_proj.weight" in names
    assert {"joiner.enc_proj.weight", "joiner.pred_proj.weight", "joiner.output.weight"} <= names
    assert not any("embedding" in n or "norm" in n or "bias" in n or "depthwise" in n for n in names)
    assert not any(n.startswith(("subsampling", "ctc_head")) for n in names)
    assert "ctc_head.weight" in dict(model.named_parameters())


def test_shapes_losses_and_backward():
    torch.manual_seed(0)
    model = RNNTModel(tiny_config(), VOCAB)
    features, feature_lens, tokens, token_lens = tiny_batch()
    enc, enc_lens = model.encode(features, feature_lens)
    assert enc.shape == (3, 15, 32)
    assert enc_lens.tolist() == [15, 11, 4]  # ceil(T / 4)
    assert torch.all(enc[2, 4:] == 0)
    out = model(features, feature_lens, tokens, token_lens)
    assert set(out) == {"loss", "rnnt", "ctc"}
    for value in out.values():
        assert value.shape == () and value.dtype == torch.float32 and math.isfinite(float(value.detach()))
    torch.testing.assert_close(out["loss"], out["rnnt"] + 0.3 * out["ctc"])
    out["loss"].backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_ctc_only_and_rnnt_only_models():
    features, feature_lens, tokens, token_lens = tiny_batch()
    ctc_model = RNNTModel(tiny_config(loss="ctc"), VOCAB)
    assert ctc_model.predictor is None and ctc_model.joiner is None
    out = ctc_model(features, feature_lens, tokens, token_lens)
    assert float(out["rnnt"]) == 0.0 and torch.equal(out["loss"], out["ctc"])
    out["loss"].backward()
    assert all(p.grad is not None for p in ctc_model.parameters())
    rnnt_model = RNNTModel(tiny_config(ctc_weight=0.0), VOCAB)
    assert rnnt_model.ctc_head is None
    out = rnnt_model(features, feature_lens, tokens, token_lens)
    assert float(out["ctc"]) == 0.0 and torch.equal(out["loss"], out["rnnt"])


@pytest.mark.skipif(not bf16_supported("cpu"), reason="this CPU has no native bf16 kernels (the trainer then trains in float32)")
def test_bf16_autocast_forward_gives_float32_loss_close_to_fp32():
    torch.manual_seed(0)
    model = RNNTModel(tiny_config(), VOCAB)
    batch = tiny_batch()
    reference = model(*batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(*batch)
    assert out["loss"].dtype == torch.float32 and out["rnnt"].dtype == torch.float32
    fp32_loss, bf16_loss = float(reference["loss"].detach()), float(out["loss"].detach())
    assert abs(bf16_loss - fp32_loss) < 0.05 * fp32_loss
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("factor", [4, 8])
def test_padding_does_not_change_an_utterance(factor):
    torch.manual_seed(1)
    model = RNNTModel(tiny_config(subsampling_factor=factor), VOCAB).eval()
    features, feature_lens, tokens, token_lens = tiny_batch()
    features[1, 41:] = 123.0  # garbage in the padding must not matter
    with torch.no_grad():
        enc, enc_lens = model.encode(features, feature_lens)
        per_utt = model(features, feature_lens, tokens, token_lens)["rnnt"]
        singles = []
        for b in range(3):
            n, u = int(feature_lens[b]), int(token_lens[b])
            alone, _ = model.encode(features[b : b + 1, :n], feature_lens[b : b + 1])
            torch.testing.assert_close(alone[0], enc[b, : int(enc_lens[b])], rtol=1e-4, atol=1e-4)
            singles.append(model(features[b : b + 1, :n], feature_lens[b : b + 1], tokens[b : b + 1, :u], token_lens[b : b + 1])["rnnt"])
    torch.testing.assert_close(per_utt, torch.stack(singles).mean(), rtol=1e-4, atol=1e-4)


def test_normalisation_ignores_padding():
    x = torch.randn(2, 30, 4) * 5 + 3
    lens = torch.tensor([30, 12])
    y = normalize_features(x, lens)
    torch.testing.assert_close(y[1, :12], normalize_features(x[1:, :12], lens[1:])[0])
    assert torch.all(y[1, 12:] == 0)


def test_specaugment_is_seeded_and_masks_within_length():
    aug = SpecAugment(num_freq_masks=2, freq_mask_width=10, num_time_masks=3, time_mask_fraction=0.1)
    x = torch.randn(4, 200, 80)
    lens = torch.tensor([200, 150, 90, 10])
    a = aug(x, lens, torch.Generator().manual_seed(3))
    b = aug(x, lens, torch.Generator().manual_seed(3))
    c = aug(x, lens, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x)
    for i, n in enumerate(lens.tolist()):
        assert torch.equal(a[i, n:], x[i, n:])
        changed_frames = (a[i, :n] != x[i, :n]).all(dim=1)  # time masks cover every dimension
        assert int(changed_frames.sum()) <= 3 * int(0.1 * n)
    assert torch.equal(aug.eval()(x, lens), x)


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread avoids OpenMP stalls when other processes share the 2 cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_model_overfits_one_batch(one_thread):
    torch.manual_seed(0)
    model = RNNTModel(tiny_config(), VOCAB)
    batch = tiny_batch(seed=5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        optimizer.zero_grad()
        loss = model(*batch)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.35 * losses[0], losses
