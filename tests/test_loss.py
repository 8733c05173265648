"""The pure-PyTorch RNN-T loss against a brute-force sum over all alignments (float64)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from asr_pathways.asr.loss import ctc_loss, lattice_nll, log_softmax_at, rnnt_loss


def brute_force_nll(log_probs: torch.Tensor, labels: list[int], blank: int = 0) -> torch.Tensor:
    """-log sum over every alignment of one utterance; log_probs (T, U+1, V), differentiable."""
    frames, num_labels = log_probs.shape[0], len(labels)
    scores = []
    # An alignment places the U labels among T-1+U moves before the final blank at (T-1, U).
    for label_moves in itertools.combinations(range(frames - 1 + num_labels), num_labels):
        t = u = 0
        score = log_probs.new_zeros(())
        for move in range(frames - 1 + num_labels):
            if move in label_moves:
                score = score + log_probs[t, u, labels[u]]
                u += 1
            else:
                score = score + log_probs[t, u, blank]
                t += 1
        scores.append(score + log_probs[frames - 1, num_labels, blank])
    return -torch.logsumexp(torch.stack(scores), dim=0)


def brute_force_batch(logits, targets, logit_lengths, target_lengths, blank=0) -> torch.Tensor:
    log_probs = logits.log_softmax(-1)
    out = []
    for b in range(logits.shape[0]):
        t, u = int(logit_lengths[b]), int(target_lengths[b])
        out.append(brute_force_nll(log_probs[b, :t, : u + 1], targets[b, :u].tolist(), blank))
    return torch.stack(out)


def random_case(batch, frames, labels, vocab, seed, lengths=None):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames, labels + 1, vocab, generator=g, dtype=torch.float64) * 2
    targets = torch.randint(1, vocab, (batch, labels), generator=g)
    if lengths is None:
        logit_lengths = torch.full((batch,), frames)
        target_lengths = torch.full((batch,), labels)
    else:
        logit_lengths, target_lengths = (torch.tensor(x) for x in lengths)
    for b in range(batch):  # padding must be ignored, whatever it holds
        targets[b, int(target_lengths[b]) :] = 0
    return logits.requires_grad_(), targets, logit_lengths, target_lengths


def assert_matches_brute_force(logits, targets, logit_lengths, target_lengths, blank=0):
    ours = rnnt_loss(logits, targets, logit_lengths, target_lengths, blank=blank, reduction="none")
    (grad_ours,) = torch.autograd.grad(ours.sum(), logits)
    ref = brute_force_batch(logits, targets, logit_lengths, target_lengths, blank)
    (grad_ref,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_random_small_cases_match_brute_force(seed):
    g = torch.Generator().manual_seed(100 + seed)
    frames = int(torch.randint(1, 6, (), generator=g))
    labels = int(torch.randint(0, 4, (), generator=g))
    vocab = int(torch.randint(2, 6, (), generator=g))
    assert_matches_brute_force(*random_case(2, frames, labels, vocab, seed))


def test_variable_lengths_in_one_batch():
    case = random_case(4, 5, 3, 4, seed=7, lengths=([5, 3, 1, 4], [3, 0, 2, 1]))
    assert_matches_brute_force(*case)


def test_no_labels_is_all_blank():
    logits, targets, tl, ul = random_case(2, 4, 0, 3, seed=3)
    assert targets.shape == (2, 0)
    assert_matches_brute_force(logits, targets, tl, ul)
    expected = -logits.log_softmax(-1)[:, :, 0, 0].sum(1)
    torch.testing.assert_close(rnnt_loss(logits, targets, tl, ul, reduction="none"), expected)


def test_single_frame_emits_all_labels_then_blank():
    logits, targets, tl, ul = random_case(1, 1, 3, 5, seed=4)
    assert_matches_brute_force(logits, targets, tl, ul)
    lp = logits.log_softmax(-1)[0, 0]
    expected = -(lp[0, targets[0, 0]] + lp[1, targets[0, 1]] + lp[2, targets[0, 2]] + lp[3, 0])
    torch.testing.assert_close(rnnt_loss(logits, targets, tl, ul, reduction="sum"), expected)


def test_nonzero_blank_index():
    logits, targets, tl, ul = random_case(2, 3, 2, 4, seed=5)
    targets = torch.where(targets == 3, torch.ones_like(targets), targets)  # labels avoid blank=3
    assert_matches_brute_force(logits, targets, tl, ul, blank=3)


def test_reductions():
    case = random_case(3, 4, 2, 3, seed=9, lengths=([4, 2, 3], [2, 1, 0]))
    per_utt = rnnt_loss(*case, reduction="none")
    assert per_utt.shape == (3,)
    torch.testing.assert_close(rnnt_loss(*case, reduction="sum"), per_utt.sum())
    torch.testing.assert_close(rnnt_loss(*case), per_utt.mean())
    with pytest.raises(ValueError, match="reduction"):
        rnnt_loss(*case, reduction="avg")


def test_gradcheck_float64():
    logits, targets, tl, ul = random_case(2, 3, 2, 3, seed=11, lengths=([3, 2], [2, 1]))
    assert torch.autograd.gradcheck(lambda x: rnnt_loss(x, targets, tl, ul, reduction="none"), (logits,))


def test_float32_and_bfloat16_inputs_give_float32_loss():
    logits, targets, tl, ul = random_case(2, 6, 3, 8, seed=12)
    ref = rnnt_loss(logits, targets, tl, ul, reduction="none")
    as_float = rnnt_loss(logits.detach().float(), targets, tl, ul, reduction="none")
    assert as_float.dtype == torch.float32
    torch.testing.assert_close(as_float.double(), ref, rtol=1e-5, atol=1e-5)
    as_bf16 = rnnt_loss(logits.detach().bfloat16().requires_grad_(), targets, tl, ul)
    assert as_bf16.dtype == torch.float32
    assert math.isfinite(float(as_bf16.detach()))


def test_long_utterance_is_finite_and_close_to_float64():
    logits, targets, tl, ul = random_case(2, 300, 40, 16, seed=13)
    ref = rnnt_loss(logits, targets, tl, ul, reduction="none")
    ours = rnnt_loss(logits.detach().float().requires_grad_(), targets, tl, ul, reduction="none")
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-3)


def peaky_case(batch, frames, labels, vocab, seed, scale):
    """Float32 logits of a confident, trained-like model: on its alignment (state u from the frame
    of label u to the frame of label u+1) blank wins by ~scale except where the next label wins by
    ~scale; off the alignment the logits are random, so the blank log-probs there (which enter the
    lattice's running blank sums but not the loss) are ~-3 per frame."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames, labels + 1, vocab, generator=g) * 2
    targets = torch.randint(1, vocab, (batch, labels), generator=g)
    for b in range(batch):
        emit = torch.sort(torch.randperm(frames - 1, generator=g)[:labels]).values.tolist()
        bounds = [0] + emit + [frames - 1]
        for u in range(labels + 1):
            logits[b, bounds[u] : bounds[u + 1] + 1, u, 0] += scale
            if u < labels:
                logits[b, bounds[u + 1], u, targets[b, u]] += 2 * scale
    return logits, targets


def test_long_peaky_float32_matches_float64_tightly():
    # T = 1500, loss ~0.5 per utterance. Measured: relative error ~5e-8 here; the float32 lattice
    # with x - logsumexp(x) log-probs (before the float64 lattice) was off by 3e-3 relative
    # (1.8e-3 absolute), and either fix alone still left 2e-4 (float64 lattice only) or 3e-3.
    logits, targets = peaky_case(2, 1500, 30, 64, seed=8, scale=16.0)
    tl, ul = torch.full((2,), 1500), torch.full((2,), 30)
    ref = rnnt_loss(logits.double(), targets, tl, ul, reduction="none")
    assert float(ref.max()) < 1.0  # a confident model: a small loss, so relative error is strict
    x = logits.clone().requires_grad_()
    ours = rnnt_loss(x, targets, tl, ul, reduction="none")
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=0.0)
    (grad,) = torch.autograd.grad(ours.sum(), x)
    assert torch.isfinite(grad).all()
    assert float(grad.abs().max()) < 1.0 + 1e-5  # d NLL / d logit is a difference of probabilities


def test_log_softmax_at_matches_log_softmax_with_ties_and_peaks():
    logits = torch.tensor([[0.0, 0.0, 0.0], [30.0, 0.0, 30.0], [50.0, -20.0, 1.0]], dtype=torch.float64)
    logits.requires_grad_()
    index = torch.tensor([[0, 2], [2, 1], [0, 0]])
    ours = log_softmax_at(logits, index)
    ref = logits.log_softmax(-1).gather(-1, index)
    torch.testing.assert_close(ours, ref, rtol=1e-14, atol=1e-14)
    # a dominant class keeps full relative precision (log_softmax rounds it to exactly 0 here)
    expected = -math.log1p(math.exp(-70.0) + math.exp(-49.0))
    dominant = float(ours[2, 0].detach())
    assert dominant < 0 and math.isclose(dominant, expected, rel_tol=1e-12)
    weights = torch.tensor([[1.0, -2.0], [0.5, 3.0], [1.0, 1.0]], dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), logits)
    (g_ref,) = torch.autograd.grad((ref * weights).sum(), logits)
    torch.testing.assert_close(g_ours, g_ref)


def test_lattice_nll_is_float64_and_matches_float32_input_cast():
    g = torch.Generator().manual_seed(1)
    blank = torch.randn(2, 4, 3, generator=g).clamp(max=-0.1)
    label = torch.randn(2, 4, 2, generator=g).clamp(max=-0.1)
    tl, ul = torch.tensor([4, 2]), torch.tensor([2, 1])
    nll = lattice_nll(blank, label, tl, ul)
    assert nll.dtype == torch.float64
    torch.testing.assert_close(nll, lattice_nll(blank.double(), label.double(), tl, ul))


def test_ctc_mean_is_mean_of_per_utterance_nll():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, 5, generator=g)
    targets = torch.tensor([[1, 2, 3], [4, 0, 0], [0, 0, 0]])
    lengths, target_lengths = torch.tensor([6, 4, 2]), torch.tensor([3, 1, 0])
    per_utt = ctc_loss(logits, targets, lengths, target_lengths, reduction="none")
    ref = torch.nn.functional.ctc_loss(
        logits.log_softmax(-1).transpose(0, 1), targets, lengths, target_lengths, reduction="none"
    )
    torch.testing.assert_close(per_utt, ref)
    torch.testing.assert_close(ctc_loss(logits, targets, lengths, target_lengths), per_utt.mean())
    # impossible (too many labels for the frames) gives 0 instead of inf
    impossible = ctc_loss(logits[:1, :2], targets[:1], torch.tensor([2]), torch.tensor([3]), reduction="none")
    assert float(impossible) == 0.0
    empty = ctc_loss(logits, targets[:, :0], lengths, torch.zeros(3, dtype=torch.long), reduction="none")
    torch.testing.assert_close(empty, -logits.log_softmax(-1)[..., 0].cumsum(1)[torch.arange(3), lengths - 1])
