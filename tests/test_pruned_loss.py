"""Pruned RNN-T loss: simple loss, prune ranges, pruned loss against the full loss, the model option."""

from __future__ import annotations

import pytest
import torch

from asr_pathways.runtime import bf16_supported

from asr_pathways.asr.decode import greedy_decode
from asr_pathways.asr.loss import lattice_nll, rnnt_loss
from asr_pathways.asr.model import Joiner, ModelConfig, RNNTModel, load_preset
from asr_pathways.asr.pruned_loss import (
    get_prune_ranges,
    pruned_loss_scales,
    pruned_rnnt_loss,
    pruned_rnnt_losses,
    simple_log_probs,
    simple_rnnt_loss,
)
from asr_pathways.errors import InputError


def lengths_case(seed, batch=4, frames=9, labels=5, vocab=7, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(1, vocab, (batch, labels), generator=g)
    logit_lengths = torch.randint(1, frames + 1, (batch,), generator=g)
    logit_lengths[0] = frames
    target_lengths = torch.randint(0, labels + 1, (batch,), generator=g)
    target_lengths[0] = labels
    for b in range(batch):
        targets[b, int(target_lengths[b]) :] = 0
    return g, targets, logit_lengths, target_lengths


# --- simple loss --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_simple_loss_equals_full_loss_on_explicit_logits(seed):
    g, targets, tl, ul = lengths_case(seed)
    am = (torch.randn(4, 9, 7, generator=g, dtype=torch.float64) * 3).requires_grad_()
    lm = (torch.randn(4, 6, 7, generator=g, dtype=torch.float64) * 3).requires_grad_()
    ours = simple_rnnt_loss(am, lm, targets, tl, ul, reduction="none")
    ref = rnnt_loss(am[:, :, None] + lm[:, None], targets, tl, ul, reduction="none")
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    weights = torch.arange(1.0, 5.0, dtype=torch.float64)
    grads = torch.autograd.grad((ours * weights).sum(), (am, lm))
    ref_grads = torch.autograd.grad((ref * weights).sum(), (am, lm))
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert simple_rnnt_loss(am.detach().float(), lm.detach().float(), targets, tl, ul).dtype == torch.float32


def test_simple_loss_without_labels_and_reductions():
    am, lm = torch.randn(2, 5, 4, dtype=torch.float64), torch.randn(2, 1, 4, dtype=torch.float64)
    targets, tl, ul = torch.zeros(2, 0, dtype=torch.long), torch.tensor([5, 3]), torch.zeros(2, dtype=torch.long)
    per_utt = simple_rnnt_loss(am, lm, targets, tl, ul, reduction="none")
    torch.testing.assert_close(per_utt, rnnt_loss(am[:, :, None] + lm[:, None], targets, tl, ul, reduction="none"))
    torch.testing.assert_close(simple_rnnt_loss(am, lm, targets, tl, ul, reduction="sum"), per_utt.sum())
    torch.testing.assert_close(simple_rnnt_loss(am, lm, targets, tl, ul), per_utt.mean())


def test_simple_loss_smoothing_mixes_log_probs():
    g, targets, tl, ul = lengths_case(3)
    am = torch.randn(4, 9, 7, generator=g, dtype=torch.float64)
    lm = torch.randn(4, 6, 7, generator=g, dtype=torch.float64)
    blank_lp, label_lp = simple_log_probs(am, lm, targets, lm_only_scale=0.25, am_only_scale=0.1)
    joint = (am[:, :, None] + lm[:, None]).log_softmax(-1)
    lm_only = lm.log_softmax(-1)[:, None].expand_as(joint)
    unigram = lm.softmax(-1).mean(dim=(0, 1))
    am_only = (am + unigram.log()).log_softmax(-1)[:, :, None].expand_as(joint)
    mixed = 0.65 * joint + 0.25 * lm_only + 0.1 * am_only
    torch.testing.assert_close(blank_lp, mixed[..., 0])
    label_mixed = mixed[:, :, :5].gather(-1, targets[:, None, :, None].expand(4, 9, 5, 1))[..., 0]
    torch.testing.assert_close(label_lp, label_mixed)
    loss = simple_rnnt_loss(am, lm, targets, tl, ul, reduction="none", lm_only_scale=0.25, am_only_scale=0.1)
    torch.testing.assert_close(loss, lattice_nll(blank_lp, label_lp, tl, ul))
    with pytest.raises(ValueError, match="scale"):
        simple_log_probs(am, lm, targets, lm_only_scale=0.7, am_only_scale=0.5)


def test_occupations_are_posteriors():
    g, targets, tl, ul = lengths_case(4)
    am, lm = torch.randn(4, 9, 7, generator=g), torch.randn(4, 6, 7, generator=g)
    _, (blank_occ, label_occ) = simple_rnnt_loss(am, lm, targets, tl, ul, return_occupation=True)
    assert not blank_occ.requires_grad and (blank_occ >= -1e-6).all() and (label_occ >= -1e-6).all()
    # every path takes T_b blanks (the last one ends it) and U_b labels
    torch.testing.assert_close(blank_occ.sum((1, 2)), tl.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(label_occ.sum((1, 2)), ul.float(), rtol=1e-5, atol=1e-5)


# --- prune ranges -------------------------------------------------------------------------------


def check_ranges(ranges, tl, ul, positions):
    size = ranges.shape[-1]
    assert (ranges == ranges[..., :1] + torch.arange(size)).all()
    assert int(ranges.min()) >= 0 and int(ranges.max()) <= positions - 1
    for b in range(ranges.shape[0]):
        start, t_b, u_b = ranges[b, :, 0], int(tl[b]), int(ul[b])
        valid = start[:t_b]
        assert int(valid[0]) == 0
        assert (valid[1:] >= valid[:-1]).all(), "non-decreasing"
        assert (valid[1:] - valid[:-1] <= size - 1).all(), "windows of consecutive frames overlap"
        assert (valid <= max(u_b + 1 - size, 0)).all(), "never beyond the utterance's labels"
        assert int(valid[-1]) + size - 1 >= u_b, "the last window holds the final position"


@pytest.mark.parametrize("seed", range(4))
def test_prune_ranges_are_monotone_connected_and_in_bounds(seed):
    g, targets, tl, ul = lengths_case(seed, batch=5, frames=20, labels=12, vocab=9)
    am, lm = torch.randn(5, 20, 9, generator=g) * 3, torch.randn(5, 13, 9, generator=g) * 3
    _, (blank_occ, label_occ) = simple_rnnt_loss(am, lm, targets, tl, ul, return_occupation=True)
    for prune_range in (2, 3, 5):
        ranges = get_prune_ranges(blank_occ, label_occ, tl, ul, prune_range)
        needed = int(((ul + tl - 1) // tl + 1).max())
        assert ranges.shape == (5, 20, min(max(prune_range, needed), 13))
        check_ranges(ranges, tl, ul, 13)


def test_prune_ranges_cover_everything_when_few_labels():
    g, targets, tl, ul = lengths_case(5, batch=3, frames=6, labels=3, vocab=5)
    am, lm = torch.randn(3, 6, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    _, (blank_occ, label_occ) = simple_rnnt_loss(am, lm, targets, tl, ul, return_occupation=True)
    ranges = get_prune_ranges(blank_occ, label_occ, tl, ul, prune_range=5)
    assert ranges.shape == (3, 6, 4) and (ranges == torch.arange(4)).all()
    with pytest.raises(ValueError, match="prune_range"):
        get_prune_ranges(blank_occ, label_occ, tl, ul, prune_range=1)


def test_prune_range_is_raised_when_labels_outnumber_frames():
    # 10 labels in 3 frames need windows of ceil(10 / 3) + 1 = 5 positions to be reachable
    g = torch.Generator().manual_seed(6)
    am, lm = torch.randn(1, 3, 12, generator=g), torch.randn(1, 11, 12, generator=g)
    targets, tl, ul = torch.randint(1, 12, (1, 10), generator=g), torch.tensor([3]), torch.tensor([10])
    _, (blank_occ, label_occ) = simple_rnnt_loss(am, lm, targets, tl, ul, return_occupation=True)
    ranges = get_prune_ranges(blank_occ, label_occ, tl, ul, prune_range=2)
    assert ranges.shape == (1, 3, 5)
    check_ranges(ranges, tl, ul, 11)


def test_prune_ranges_follow_a_sharp_alignment():
    # occupation of one path: labels 1..6 emitted at frames 2, 5, 6, 9, 12, 13 of 16
    frames, labels, emit = 16, 6, [2, 5, 6, 9, 12, 13]
    blank_occ, label_occ = torch.zeros(1, frames, labels + 1), torch.zeros(1, frames, labels)
    u = 0
    for t in range(frames):
        while u < labels and emit[u] == t:
            label_occ[0, t, u] = 1
            u += 1
        blank_occ[0, t, u] = 1
    ranges = get_prune_ranges(blank_occ, label_occ, torch.tensor([frames]), torch.tensor([labels]), prune_range=3)
    check_ranges(ranges, torch.tensor([frames]), torch.tensor([labels]), labels + 1)
    u = 0
    for t in range(frames):
        first = u
        while u < labels and emit[u] == t:
            u += 1
        kept = ranges[0, t].tolist()
        assert first in kept and u in kept, (t, first, u, kept)


# --- pruned loss --------------------------------------------------------------------------------


def projected_case(seed, batch=3, frames=8, labels=4, vocab=6, dim=5, dtype=torch.float64):
    g, targets, tl, ul = lengths_case(seed, batch, frames, labels, vocab)
    torch.manual_seed(seed)
    joiner = Joiner(dim, dim, dim, vocab).to(dtype)
    enc = torch.randn(batch, frames, dim, generator=g, dtype=dtype).requires_grad_()
    pred = torch.randn(batch, labels + 1, dim, generator=g, dtype=dtype).requires_grad_()
    am = (torch.randn(batch, frames, vocab, generator=g, dtype=dtype) * 2).requires_grad_()
    lm = (torch.randn(batch, labels + 1, vocab, generator=g, dtype=dtype) * 2).requires_grad_()
    return joiner, enc, pred, am, lm, targets, tl, ul


def run_pruned(joiner, enc, pred, am, lm, targets, tl, ul, prune_range):
    return pruned_rnnt_losses(
        am, lm, joiner.enc_proj(enc), joiner.pred_proj(pred), joiner, targets, tl, ul, prune_range=prune_range
    )


def full_loss(joiner, enc, pred, targets, tl, ul):
    logits = joiner(joiner.enc_proj(enc)[:, :, None], joiner.pred_proj(pred)[:, None])
    return rnnt_loss(logits, targets, tl, ul, reduction="none")


@pytest.mark.parametrize("seed", range(3))
def test_pruned_equals_full_when_the_window_covers_all_positions(seed):
    joiner, enc, pred, am, lm, targets, tl, ul = projected_case(seed)
    out = run_pruned(joiner, enc, pred, am, lm, targets, tl, ul, prune_range=5)  # U + 1 = 5
    assert out.ranges.shape[-1] == 5
    ref = full_loss(joiner, enc, pred, targets, tl, ul)
    torch.testing.assert_close(out.pruned, ref, rtol=1e-12, atol=1e-12)
    params = [enc, pred, *joiner.parameters()]
    grads = torch.autograd.grad(out.pruned.sum(), params)
    ref_grads = torch.autograd.grad(ref.sum(), params)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    # the simple loss only reaches the simple projections' inputs
    simple_grads = torch.autograd.grad(out.simple.sum(), (am, lm, enc), allow_unused=True)
    assert simple_grads[2] is None and all(torch.isfinite(x).all() for x in simple_grads[:2])


@pytest.mark.parametrize("seed", range(3))
def test_pruned_loss_is_finite_and_bounds_the_full_loss(seed):
    joiner, enc, pred, am, lm, targets, tl, ul = projected_case(seed, frames=10, labels=8, vocab=9)
    out = run_pruned(joiner, enc, pred, am, lm, targets, tl, ul, prune_range=2)
    assert out.pruned.dtype == torch.float64 and torch.isfinite(out.pruned).all()
    ref = full_loss(joiner, enc, pred, targets, tl, ul)
    assert (out.pruned >= ref - 1e-9).all()  # fewer paths, lower likelihood
    assert (out.pruned < 1e4).all()  # a path inside the windows exists: no OUTSIDE_WINDOW in the loss
    params = [enc, pred, am, lm, *joiner.parameters()]
    grads = torch.autograd.grad((out.pruned + out.simple).sum(), params)
    assert all(torch.isfinite(grad).all() for grad in grads)


def peaky_alignment_case(batch=2, frames=40, labels=10, vocab=16, seed=0):
    """Joiner logits that put nearly all mass on one alignment per utterance (a 'trained' model),
    and simple am/lm whose trivial joiner follows the same alignment more loosely."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.stack([torch.randperm(vocab - 1, generator=g)[:labels] + 1 for _ in range(batch)])
    table = torch.randn(batch, frames, labels + 1, vocab, generator=g, dtype=torch.float64)
    am = torch.zeros(batch, frames, vocab, dtype=torch.float64)
    lm = torch.zeros(batch, labels + 1, vocab, dtype=torch.float64)
    for b in range(batch):
        emit = sorted(torch.randperm(frames - 2, generator=g)[:labels].add(1).tolist())  # one label per frame
        u = 0
        for t in range(frames):
            if u < labels and emit[u] == t:
                table[b, t, u, targets[b, u]] += 12.0
                am[b, t, targets[b, u]] = 6.0
                u += 1
            table[b, t, u, 0] += 12.0
            am[b, t, 0] += 3.0
        lm[b, torch.arange(labels), targets[b]] = 3.0
        lm[b, :, 0] = 3.0
    return table, am, lm, targets


def test_pruned_matches_full_on_a_peaky_alignment():
    table, am, lm, targets = peaky_alignment_case()
    batch, frames, positions, vocab = table.shape
    table.requires_grad_()
    # A joiner that looks its logits up: one-hot frame and position codes select table[b, t, u].
    enc_code = torch.eye(frames, dtype=torch.float64).expand(batch, frames, frames)
    pred_code = torch.eye(positions, dtype=torch.float64).expand(batch, positions, positions)

    def lookup(enc_part, pred_part):  # (B, T, 1, T), (B, T, S, U+1) -> (B, T, S, V)
        return torch.einsum("btxi,btsj,bijv->btsv", enc_part, pred_part, table)

    tl, ul = torch.full((batch,), frames), torch.full((batch,), positions - 1)
    ref = rnnt_loss(table, targets, tl, ul, reduction="none")
    (ref_grad,) = torch.autograd.grad(ref.sum(), table)
    assert float(ref.detach().max()) < 0.05  # confident
    # Paths that leave a window of 5 need >= 2 deviations from the alignment (~exp(-24)); with 3,
    # one early or late label can already leave it (~exp(-12)): a looser match.
    for prune_range, rtol, grad_atol in ((5, 1e-5, 1e-7), (3, 1e-3, 1e-5)):
        out = pruned_rnnt_losses(am, lm, enc_code, pred_code, lookup, targets, tl, ul, prune_range=prune_range)
        assert out.ranges.shape[-1] == prune_range < positions
        assert (out.pruned >= ref - 1e-8).all()  # fewer paths (1e-8: float64 rounding of the mask)
        torch.testing.assert_close(out.pruned, ref, rtol=rtol, atol=1e-9)
        (grad,) = torch.autograd.grad(out.pruned.sum(), table)
        torch.testing.assert_close(grad, ref_grad, rtol=0, atol=grad_atol)


def test_bf16_autocast_pruned_losses_are_float32_and_close():
    torch.manual_seed(0)
    batch, frames, labels, vocab, dim = 3, 12, 6, 10, 16
    g, targets, tl, ul = lengths_case(7, batch, frames, labels, vocab)
    joiner = Joiner(dim, dim, dim, vocab)
    am_proj, lm_proj = torch.nn.Linear(dim, vocab), torch.nn.Linear(dim, vocab)
    enc = torch.randn(batch, frames, dim, generator=g)
    pred = torch.randn(batch, labels + 1, dim, generator=g)

    def losses():
        out = pruned_rnnt_losses(
            am_proj(enc), lm_proj(pred), joiner.enc_proj(enc), joiner.pred_proj(pred), joiner, targets, tl, ul, 3
        )
        return out.simple.mean(), out.pruned.mean()

    reference = losses()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        simple, pruned = losses()
    assert simple.dtype == torch.float32 and pruned.dtype == torch.float32
    for got, want in zip((simple, pruned), reference):
        assert abs(float(got.detach()) - float(want.detach())) < 0.05 * float(want.detach())
    (simple + pruned).backward()
    params = [*joiner.parameters(), *am_proj.parameters(), *lm_proj.parameters()]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)


def test_pruned_rnnt_loss_checks_ranges_shape():
    logits = torch.zeros(1, 2, 2, 3)
    with pytest.raises(ValueError, match="ranges"):
        wrong = torch.zeros(1, 2, 3, dtype=torch.long)
        pruned_rnnt_loss(logits, wrong, torch.tensor([[1]]), torch.tensor([2]), torch.tensor([1]))


# --- model --------------------------------------------------------------------------------------


def test_loss_scales_follow_the_warmup():
    assert pruned_loss_scales() == (0.5, 1.0)
    assert pruned_loss_scales(0.0) == (1.0, 0.1)
    assert pruned_loss_scales(2.0, simple_loss_scale=0.25) == (0.25, 1.0)
    simple, pruned = pruned_loss_scales(0.5)
    assert abs(simple - 0.75) < 1e-12 and abs(pruned - 0.55) < 1e-12


def tiny_config(**overrides) -> ModelConfig:
    return ModelConfig.from_dict({**load_preset("tiny")["model"], "rnnt_loss": "pruned", **overrides})


def test_config_validates_pruned_fields():
    assert ModelConfig().rnnt_loss == "full"
    for bad in ({"rnnt_loss": "fast"}, {"prune_range": 1}, {"simple_loss_scale": 1.5}, {"prune_range": 2.5}):
        with pytest.raises(InputError):
            tiny_config(**bad)


def test_pruned_model_trains_on_a_fixed_batch():
    torch.manual_seed(0)
    vocab = 12
    model = RNNTModel(tiny_config(prune_range=3), vocab)
    assert model.simple_am_proj is not None and model.simple_lm_proj is not None
    assert not any("simple" in name for name in model.weight_matrix_names())
    assert RNNTModel(tiny_config(rnnt_loss="full"), vocab).simple_am_proj is None
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 40, 80, generator=g)
    feature_lens = torch.tensor([40, 32])
    tokens = torch.tensor([[3, 5, 7, 2, 9], [4, 4, 8, 0, 0]])
    token_lens = torch.tensor([5, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    history = []
    for step in range(8):
        out = model(features, feature_lens, tokens, token_lens, warmup=min(1.0, step / 4))
        assert {"loss", "rnnt", "ctc", "simple", "pruned"} <= set(out)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in out.items()})
    assert history[-1]["pruned"] < 0.7 * history[0]["pruned"]
    assert history[-1]["simple"] < 0.7 * history[0]["simple"]
    default = model(features, feature_lens, tokens, token_lens)  # no kwarg: after the warm-up
    expected = 0.5 * default["simple"] + default["pruned"]
    torch.testing.assert_close(default["rnnt"], expected)
    model.eval()
    hyps = greedy_decode(model, features[:1, :16], feature_lens[:1].clamp(max=16))  # no simple projections
    assert len(hyps) == 1


@pytest.mark.skipif(not bf16_supported("cpu"), reason="this CPU has no native bf16 kernels")
def test_pruned_model_under_bf16_autocast():
    torch.manual_seed(1)
    model = RNNTModel(tiny_config(), 12)
    batch = (torch.randn(2, 40, 80), torch.tensor([40, 30]), torch.tensor([[3, 5, 7], [4, 0, 0]]), torch.tensor([3, 1]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(*batch)
    assert all(out[k].dtype == torch.float32 for k in ("loss", "rnnt", "simple", "pruned"))
    out["loss"].backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
