"""Modified beam search: beam 1 is greedy with one label per frame; a wide beam finds the
brute-force best transcript (probabilities of all alignments summed, length-normalised)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from asr_pathways.asr.beam_search import decode_batch, modified_beam_search
from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset


def emitting_model(vocab: int = 16, seed: int = 0) -> RNNTModel:
    torch.manual_seed(seed)
    model = RNNTModel(ModelConfig.from_dict(load_preset("tiny")["model"]), vocab_size=vocab).eval()
    with torch.no_grad():  # random weights that emit labels (and are not one-hot confident)
        model.joiner.output.weight.mul_(3)
    return model


def test_beam_one_equals_greedy_one_symbol_per_frame() -> None:
    model = emitting_model()
    feats, lens = torch.randn(3, 80, 80), torch.tensor([80, 57, 33])
    greedy = decode_batch(model, feats, lens, decoding="greedy", max_symbols_per_frame=1)
    assert sum(map(len, greedy)) > 0  # the check means something
    assert decode_batch(model, feats, lens, decoding="beam", beam=1) == greedy


def test_batch_equals_one_by_one() -> None:
    model = emitting_model(seed=1)
    feats, lens = torch.randn(2, 60, 80), torch.tensor([60, 37])
    both = decode_batch(model, feats, lens, decoding="beam", beam=4)
    alone = [decode_batch(model, feats[i : i + 1, : int(lens[i])], lens[i : i + 1], decoding="beam", beam=4)[0] for i in range(2)]
    assert both == alone


def brute_force(enc: torch.Tensor, model: RNNTModel) -> tuple[list[int], float]:
    """Every alignment with at most one label per frame; scores summed per label sequence."""
    vocab = model.vocab_size
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(vocab), repeat=enc.shape[0]):
        labels: list[int] = []
        logp = 0.0
        for t, choice in enumerate(path):
            pred = model.predict(torch.tensor([labels], dtype=torch.long))[:, -1]
            logits = model.joiner(enc[t : t + 1], model.joiner.pred_proj(pred))
            logp += float(logits.log_softmax(-1)[0, choice])
            if choice != 0:
                labels.append(choice)
        key = tuple(labels)
        totals[key] = logp if key not in totals else float(torch.logaddexp(torch.tensor(totals[key]), torch.tensor(logp)))
    best = max(totals, key=lambda k: totals[k] / (len(k) + 1))
    return list(best), totals[best]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wide_beam_matches_brute_force(seed: int) -> None:
    model = emitting_model(vocab=3, seed=seed)
    with torch.no_grad():
        enc, enc_lens = model.encode(torch.randn(1, 12, 80), torch.tensor([12]))  # 3 frames
        enc = model.joiner.enc_proj(enc)
        assert enc.shape[1] == 3
        expected, _ = brute_force(enc[0], model)
        got = modified_beam_search(enc, enc_lens, model.predictor, model.joiner.pred_proj, model.joiner, beam=27)
    assert got == [expected]


def test_logaddexp_merge() -> None:
    from asr_pathways.asr.beam_search import _logaddexp

    assert math.isclose(_logaddexp(math.log(0.2), math.log(0.3)), math.log(0.5))
    assert _logaddexp(-math.inf, -1.0) == -1.0


def test_bad_arguments() -> None:
    model = emitting_model()
    with pytest.raises(ValueError, match="decoding"):
        decode_batch(model, torch.randn(1, 20, 80), torch.tensor([20]), decoding="viterbi")
    with pytest.raises(ValueError, match="beam"):
        decode_batch(model, torch.randn(1, 20, 80), torch.tensor([20]), decoding="beam", beam=0)
