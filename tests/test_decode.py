"""Greedy decoding: CTC on hand-made logits, RNN-T on a scripted predictor/joiner, batch = single."""

from __future__ import annotations

import torch
from torch import nn

from asr_pathways.asr.decode import ctc_greedy_search, greedy_decode, rnnt_greedy_search
from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset

BLANK = 0
VOCAB = 6


def one_hot_logits(ids: list[list[int]], vocab: int = VOCAB) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), vocab).float()


def test_ctc_greedy_collapses_repeats_drops_blanks_and_respects_lengths():
    logits = one_hot_logits([[1, 1, 0, 1, 2, 2, 0, 0], [0, 3, 3, 3, 0, 4, 5, 5]])
    assert ctc_greedy_search(logits, torch.tensor([8, 8])) == [[1, 1, 2], [3, 4, 5]]
    assert ctc_greedy_search(logits, torch.tensor([3, 5])) == [[1], [3]]
    assert ctc_greedy_search(one_hot_logits([[0, 0]]), torch.tensor([2])) == [[]]


class CountingPredictor(nn.Module):
    """Its state and output are the number of labels fed so far (the start symbol excluded)."""

    def forward(self, tokens, state):
        if state is None:
            count = torch.zeros(1, tokens.shape[0], 1)
        else:
            count = state[0] + 1
        return count.transpose(0, 1), (count, count.clone())


class ScriptedJoiner(nn.Module):
    """enc[n, c] is the label to emit after c labels in total (0 = blank): logits are its one-hot."""

    def forward(self, enc, pred):
        count = pred.long().clamp(max=enc.shape[1] - 1)
        return nn.functional.one_hot(enc.gather(1, count)[:, 0], VOCAB).float()


def script(frames_to_labels: dict[int, list[int]], frames: int, width: int = 12) -> torch.Tensor:
    """(T, width) table: emit the given labels on the given frames, in order."""
    table = torch.zeros(frames, width, dtype=torch.long)
    count = 0
    for t in range(frames):
        for label in frames_to_labels.get(t, []):
            table[t, count] = label
            count += 1
    return table


def run_scripted(enc, lens, max_symbols=5):
    return rnnt_greedy_search(
        enc, torch.tensor(lens), CountingPredictor(), nn.Identity(), ScriptedJoiner(),
        blank=BLANK, max_symbols_per_frame=max_symbols,
    )


def test_rnnt_greedy_follows_a_scripted_joiner():
    first = script({0: [1, 2], 2: [3], 3: [3, 5]}, frames=4)
    second = script({1: [4], 3: [2]}, frames=4)  # frame 3 lies past its length: never read
    third = script({}, frames=4)
    enc = torch.stack([first, second, third])
    assert run_scripted(enc, [4, 3, 4]) == [[1, 2, 3, 3, 5], [4], []]


def test_rnnt_greedy_caps_symbols_per_frame():
    enc = torch.stack([script({0: [1] * 6, 1: [2]}, frames=2)])
    # at most 2 labels on frame 0; on frame 1 the script has nothing for a count of 2
    assert run_scripted(enc, [2], max_symbols=2) == [[1, 1]]
    assert run_scripted(enc, [2], max_symbols=10) == [[1, 1, 1, 1, 1, 1, 2]]


def test_rnnt_greedy_batch_equals_single_on_scripted_joiner():
    g = torch.Generator().manual_seed(0)
    enc = torch.randint(0, VOCAB, (5, 7, 12), generator=g) * (torch.rand(5, 7, 12, generator=g) < 0.4)
    lens = [7, 3, 5, 1, 6]
    batched = run_scripted(enc, lens, max_symbols=3)
    singles = [run_scripted(enc[b : b + 1], [lens[b]], max_symbols=3)[0] for b in range(5)]
    assert batched == singles
    assert any(batched)


def tiny_model(loss: str = "rnnt") -> RNNTModel:
    values = dict(load_preset("tiny")["model"], loss=loss)
    torch.manual_seed(0)
    model = RNNTModel(ModelConfig.from_dict(values), VOCAB).eval()
    with torch.no_grad():  # make emissions likely so that the comparison means something
        if model.joiner is not None:
            model.joiner.output.bias[BLANK] -= 1.0
    return model


def test_greedy_decode_batch_equals_per_utterance_for_rnnt_and_ctc():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(4, 60, 80, generator=g) - 3
    lens = torch.tensor([60, 37, 9, 52])
    for model, method in ((tiny_model(), "rnnt"), (tiny_model(), "ctc"), (tiny_model("ctc"), "auto")):
        batched = greedy_decode(model, features, lens, method=method)
        singles = [greedy_decode(model, features[b : b + 1, : int(lens[b])], lens[b : b + 1], method=method)[0] for b in range(4)]
        assert batched == singles, method
        assert any(batched), method
        assert all(0 < token < VOCAB for hyp in batched for token in hyp)


def test_greedy_decode_auto_picks_rnnt_and_respects_symbol_cap():
    model = tiny_model()
    features, lens = torch.randn(2, 40, 80), torch.tensor([40, 21])
    assert greedy_decode(model, features, lens) == greedy_decode(model, features, lens, method="rnnt")
    capped = greedy_decode(model, features, lens, max_symbols_per_frame=1)
    enc_lens = [10, 6]
    assert all(len(h) <= n for h, n in zip(capped, enc_lens))
