"""Beam searches. Beam search (several labels per frame): with a wide beam every hypothesis's score is
the brute-force sum over its alignments with at most S labels per frame, and the best is the
brute-force best; batched equals one by one. Modified beam search: beam 1 is greedy with one label
per frame; a wide beam finds the brute-force best transcript (probabilities of all alignments
summed, length-normalised)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from asr_pathways.asr.beam_search import _frame_sync_search, beam_search, decode_batch, modified_beam_search
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
    assert decode_batch(model, feats, lens, decoding="modified_beam", beam=1) == greedy


@pytest.mark.parametrize("decoding", ["beam", "modified_beam"])
def test_batch_equals_one_by_one(decoding: str) -> None:
    model = emitting_model(seed=1)
    feats, lens = torch.randn(3, 60, 80), torch.tensor([60, 37, 13])
    both = decode_batch(model, feats, lens, decoding=decoding, beam=4)
    assert sum(map(len, both)) > 0
    alone = [decode_batch(model, feats[i : i + 1, : int(lens[i])], lens[i : i + 1], decoding=decoding, beam=4)[0] for i in range(3)]
    assert both == alone


def test_beam_search_emits_several_labels_in_a_frame() -> None:
    """A lattice that wants two labels per frame: beam search finds them; one label per frame cannot."""
    vocab, frames = 5, 6

    def predictor(tokens: torch.Tensor, state: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        count = torch.zeros(1, tokens.shape[0], 1) if state is None else state[0] + 1  # labels so far (the start is not one)
        return count.permute(1, 0, 2), (count,)

    def joiner(enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        t, u = enc[:, 0], pred[:, 0]
        logits = torch.zeros(enc.shape[0], vocab)
        wants_label = u < 2 * (t + 1)
        logits[wants_label, (u[wants_label].long() % (vocab - 1)) + 1] = 6.0
        logits[~wants_label, 0] = 6.0
        return logits

    enc = torch.arange(frames, dtype=torch.float32)[None, :, None]
    lens = torch.tensor([frames])
    several = beam_search(enc, lens, predictor, lambda x: x, joiner, beam=4)
    one = modified_beam_search(enc, lens, predictor, lambda x: x, joiner, beam=4)
    assert several == [[(u % (vocab - 1)) + 1 for u in range(2 * frames)]]
    assert len(one[0]) <= frames


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
    for decoding in ("beam", "modified_beam"):
        with pytest.raises(ValueError, match="beam"):
            decode_batch(model, torch.randn(1, 20, 80), torch.tensor([20]), decoding=decoding, beam=0)
    with pytest.raises(ValueError, match="max_symbols_per_frame"):
        decode_batch(model, torch.randn(1, 20, 80), torch.tensor([20]), decoding="beam", max_symbols_per_frame=0)


def brute_force_lattice(enc: torch.Tensor, model: RNNTModel, max_symbols: int) -> dict[tuple[int, ...], float]:
    """log P(labels) summed over every alignment of the transducer lattice with at most ``max_symbols``
    labels per frame (each frame is left by a blank), per label sequence."""
    vocab = model.vocab_size

    def log_probs(labels: tuple[int, ...], t: int) -> torch.Tensor:
        pred = model.predict(torch.tensor([list(labels)], dtype=torch.long))[:, -1]
        return model.joiner(enc[t : t + 1], model.joiner.pred_proj(pred)).log_softmax(-1)[0]

    paths = {(): 0.0}  # label sequence -> log-probability, at the start of frame t
    for t in range(enc.shape[0]):
        left: dict[tuple[int, ...], float] = {}
        inside = dict(paths)
        for emitted in range(max_symbols + 1):
            grown: dict[tuple[int, ...], float] = {}
            for labels, lp in inside.items():
                lps = log_probs(labels, t)
                left[labels] = float(torch.logaddexp(torch.tensor(left.get(labels, -math.inf)), torch.tensor(lp + float(lps[0]))))
                if emitted < max_symbols:
                    for k in range(1, vocab):
                        grown[labels + (k,)] = lp + float(lps[k])
            inside = grown
        paths = left
    return paths


@pytest.mark.parametrize("seed,max_symbols", [(0, 1), (1, 2), (2, 2)])
def test_wide_beam_scores_are_exact_lattice_sums(seed: int, max_symbols: int) -> None:
    model = emitting_model(vocab=3, seed=seed)
    with torch.no_grad():
        enc, enc_lens = model.encode(torch.randn(1, 12, 80), torch.tensor([12]))  # 3 frames
        enc = model.joiner.enc_proj(enc)
        expected = brute_force_lattice(enc[0], model, max_symbols)
        found = _frame_sync_search(enc, [3], model.predictor, model.joiner.pred_proj, model.joiner, beam=10_000, blank=0,
                                   max_symbols=max_symbols)[0]
        best = beam_search(enc, enc_lens, model.predictor, model.joiner.pred_proj, model.joiner, beam=10_000,
                           max_symbols_per_frame=max_symbols)
    assert set(found) == set(expected) and len(expected) > 1
    for labels, lp in expected.items():
        assert math.isclose(found[labels].log_prob, lp, rel_tol=1e-5, abs_tol=1e-5)
    assert best == [list(max(expected, key=lambda k: expected[k] / (len(k) + 1)))]
    assert sum(math.exp(v) for v in expected.values()) < 1.0  # the capped alignments: a part of the lattice's mass


@pytest.mark.parametrize("seed", [0, 3])
def test_wide_beam_scores_equal_the_rnnt_loss(seed: int) -> None:
    """Independent of the search's own loop: where no frame can carry more labels than the cap
    (len(y) <= max_symbols), a hypothesis's score is -rnnt_loss(y), the loss's forward algorithm."""
    from asr_pathways.asr.loss import rnnt_loss

    model = emitting_model(vocab=3, seed=seed)
    with torch.no_grad():
        raw, enc_lens = model.encode(torch.randn(1, 12, 80), torch.tensor([12]))  # 3 frames
        enc = model.joiner.enc_proj(raw)
        found = _frame_sync_search(enc, [int(enc_lens[0])], model.predictor, model.joiner.pred_proj, model.joiner,
                                   beam=10_000, blank=0, max_symbols=2)[0]
        checked = 0
        for labels, hyp in found.items():
            if len(labels) > 2:
                continue
            y = torch.tensor([list(labels)], dtype=torch.long)
            nll = rnnt_loss(model.joint_logits(raw, y).double(), y, enc_lens, torch.tensor([len(labels)]), reduction="sum")
            assert math.isclose(hyp.log_prob, -float(nll), rel_tol=1e-4, abs_tol=1e-4), labels
            checked += 1
    assert checked == 1 + 2 + 4  # (), every 1- and 2-label sequence


def test_zero_length_utterance_in_a_batch() -> None:
    model = emitting_model(seed=2)
    with torch.no_grad():
        enc, _ = model.encode(torch.randn(2, 40, 80), torch.tensor([40, 40]))
        enc = model.joiner.enc_proj(enc)
        out = beam_search(enc, torch.tensor([enc.shape[1], 0]), model.predictor, model.joiner.pred_proj, model.joiner, beam=3)
    assert out[1] == [] and len(out) == 2
