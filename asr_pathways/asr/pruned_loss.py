"""Pruned RNN-T loss (Kuang et al., 2022, "Pruned RNN-T for fast, memory-efficient ASR training").

The full loss runs the joiner on every (frame, label position) pair: a (B, T, U+1, V) tensor. The
pruned loss runs it on a window of ``S = prune_range`` label positions per frame only, (B, T, S, V),
in three steps:

1. **Simple loss.** Two extra linear layers give an acoustic part ``am = simple_am_proj(enc)``
   (B, T, V) and a label-context part ``lm = simple_lm_proj(pred)`` (B, U+1, V) of a "trivial"
   joiner, ``logits(t, u, k) = am(t, k) + lm(u, k)``. Its log-normaliser over k never needs the
   (B, T, U+1, V) tensor: ``log sum_k exp(am(t,k) + lm(u,k)) = a(t) + l(u) + log (A @ L^T)(t, u)``
   with ``A = exp(am - a)``, ``L = exp(lm - l)`` and a, l the row maxima (one (T, V) x (V, U+1)
   matrix product per utterance). The blank and next-label log-probs go through the same float64
   lattice as :func:`~asr_pathways.asr.loss.rnnt_loss` (:func:`~asr_pathways.asr.loss.lattice_nll`).
2. **Prune ranges.** The gradient of the simple log-likelihood with respect to the blank and label
   log-probs is the posterior occupation of every lattice arc. For each frame, the window start
   ``s_t`` that keeps the most occupation mass is chosen (see :func:`get_prune_ranges`), then made
   consistent: non-decreasing in t, 0 at t = 0, at most ``S - 1`` higher than on the previous
   frame (a path can cross from one window into the next), and ending with a window that holds
   the final position U_b on the last frame.
3. **Pruned loss.** The real joiner is evaluated on the windows only, (B, T, S, V); the blank and
   label log-probs inside the windows are scattered into full (B, T, U+1) lattice tensors with a
   large negative finite value (``OUTSIDE_WINDOW``) elsewhere, and the same float64 lattice gives
   the NLL of the paths that stay inside the windows.

Training combines both, as k2/icefall do (:func:`pruned_loss_scales`): the simple loss trains the
two simple projections (so the windows follow the alignment) and acts as a regulariser; the
pruned loss trains the real joiner. Recommended: ``loss = simple_scale * simple + pruned_scale *
pruned`` with ``simple_scale`` going from 1.0 to ``simple_loss_scale`` (0.5) and ``pruned_scale``
from 0.1 to 1.0 over a warm-up (icefall: the first few thousand steps), while the simple
projections learn an alignment good enough to prune with; after it, ``0.5 * simple + pruned``.

Optional smoothing of the simple loss (k2's ``rnnt_loss_smoothed``; both 0 by default, and icefall
recipes commonly use ``lm_only_scale=0.25``): the blank/label log-probs are the log-linear mix
``(1 - l - a) * combined + l * lm_only + a * am_only``, where lm_only normalises ``lm`` alone and
am_only normalises ``am`` plus the log of a unigram prior (the batch mean of ``softmax(lm)``). It
keeps the simple projections from relying on one side only.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from asr_pathways.asr.loss import lattice_nll, log_softmax_at, reduce_nll

__all__ = [
    "OUTSIDE_WINDOW",
    "PrunedLosses",
    "simple_log_probs",
    "simple_rnnt_loss",
    "get_prune_ranges",
    "gather_pruned",
    "pruned_rnnt_loss",
    "pruned_rnnt_losses",
    "pruned_loss_scales",
]

# Log-prob given to arcs outside the windows. Finite, so the float64 closed-form lattice stays
# NaN-free (its cumulative sums reach ~T * 1e5, still exact to ~1e-7 in float64), and low enough
# that a path through one such arc weighs exp(-1e5) against the paths inside the windows.
OUTSIDE_WINDOW = -1.0e5


def _float_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def simple_log_probs(
    am: torch.Tensor,
    lm: torch.Tensor,
    targets: torch.Tensor,
    blank: int = 0,
    lm_only_scale: float = 0.0,
    am_only_scale: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blank (B, T, U+1) and next-label (B, T, U) log-probs of the trivial joiner ``am[t] + lm[u]``.

    Computed in float32 (float64 stays float64) with autocast off, without any (B, T, U+1, V) tensor.

    >>> am, lm = torch.zeros(1, 3, 4), torch.zeros(1, 2, 4)
    >>> blank_lp, label_lp = simple_log_probs(am, lm, torch.tensor([[2]]))
    >>> tuple(blank_lp.shape), tuple(label_lp.shape), round(float(blank_lp[0, 0, 0].exp()), 4)
    ((1, 3, 2), (1, 3, 1), 0.25)
    """
    if lm_only_scale < 0 or am_only_scale < 0 or lm_only_scale + am_only_scale > 1:
        raise ValueError("lm_only_scale and am_only_scale must be >= 0 with a sum <= 1")
    dtype = _float_dtype(am)
    with torch.autocast(device_type=am.device.type, enabled=False):
        am = am.to(dtype)
        lm = lm.to(dtype)
        batch, frames, vocab = am.shape
        num_labels = lm.shape[1] - 1
        targets = targets.long()
        # The maxima only shift the exponentials into range; the result does not depend on them.
        am_max = am.detach().amax(dim=-1, keepdim=True)  # (B, T, 1)
        lm_max = lm.detach().amax(dim=-1, keepdim=True)  # (B, U+1, 1)
        products = torch.bmm((am - am_max).exp(), (lm - lm_max).exp().transpose(1, 2))  # (B, T, U+1)
        log_norm = (products + torch.finfo(dtype).tiny).log() + am_max + lm_max.transpose(1, 2)

        label_index = targets[:, None, :].expand(batch, frames, num_labels)
        am_label = am.gather(-1, label_index)  # (B, T, U)
        lm_label = lm[:, :num_labels].gather(-1, targets[..., None]).squeeze(-1)  # (B, U)
        blank_lp = am[:, :, blank, None] + lm[:, None, :, blank] - log_norm
        label_lp = am_label + lm_label[:, None, :] - log_norm[:, :, :num_labels]
        if lm_only_scale == 0 and am_only_scale == 0:
            return blank_lp, label_lp

        combined = 1.0 - lm_only_scale - am_only_scale
        blank_lp = combined * blank_lp
        label_lp = combined * label_lp
        if lm_only_scale > 0:
            lm_lp = lm.log_softmax(-1)
            blank_lp = blank_lp + lm_only_scale * lm_lp[:, None, :, blank]
            lm_only_label = lm_lp[:, :num_labels].gather(-1, targets[..., None]).squeeze(-1)
            label_lp = label_lp + lm_only_scale * lm_only_label[:, None, :]
        if am_only_scale > 0:
            unigram = lm.softmax(-1).mean(dim=(0, 1))  # (V,)
            am_lp = (am + (unigram + torch.finfo(dtype).tiny).log()).log_softmax(-1)  # (B, T, V)
            blank_lp = blank_lp + am_only_scale * am_lp[:, :, blank, None]
            label_lp = label_lp + am_only_scale * am_lp.gather(-1, label_index)
        return blank_lp, label_lp


class _LatticeWithOccupation(torch.autograd.Function):
    """lattice_nll that also returns the arc occupations (-d NLL / d log-prob), computed once.

    The forward runs the lattice and its backward eagerly (the occupations are needed for pruning
    even without training); the backward only scales the saved gradients by the incoming ones.
    """

    @staticmethod
    def forward(ctx, blank_lp, label_lp, logit_lengths, target_lengths):  # type: ignore[override]
        with torch.enable_grad():
            blank_leaf = blank_lp.detach().requires_grad_()
            label_leaf = label_lp.detach().requires_grad_()
            nll = lattice_nll(blank_leaf, label_leaf, logit_lengths, target_lengths)
            grad_blank, grad_label = torch.autograd.grad(nll.sum(), (blank_leaf, label_leaf), allow_unused=True)
        if grad_label is None:  # no labels (U = 0)
            grad_label = torch.zeros_like(label_lp)
        ctx.save_for_backward(grad_blank, grad_label)
        blank_occ, label_occ = grad_blank.neg(), grad_label.neg()
        ctx.mark_non_differentiable(blank_occ, label_occ)
        return nll.to(blank_lp.dtype), blank_occ, label_occ

    @staticmethod
    def backward(ctx, grad_nll, _grad_blank_occ, _grad_label_occ):  # type: ignore[override]
        grad_blank, grad_label = ctx.saved_tensors
        scale = grad_nll.to(grad_blank.dtype)[:, None, None]
        return grad_blank * scale, grad_label * scale, None, None


def simple_rnnt_loss(
    am: torch.Tensor,
    lm: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: str = "mean",
    lm_only_scale: float = 0.0,
    am_only_scale: float = 0.0,
    return_occupation: bool = False,
):
    """RNN-T NLL of the trivial joiner ``logits(t, u) = am[:, t] + lm[:, u]``; am (B, T, V), lm (B, U+1, V).

    Equal to ``rnnt_loss(am[:, :, None] + lm[:, None], ...)`` (with zero smoothing scales) without
    building that tensor. With ``return_occupation``, returns ``(loss, (blank_occ (B, T, U+1),
    label_occ (B, T, U)))``: the posterior probability of each blank / label arc, no gradient.

    >>> am, lm = torch.zeros(1, 1, 2), torch.zeros(1, 1, 2)  # one frame, no label: p(blank) = 1/2
    >>> round(float(simple_rnnt_loss(am, lm, torch.zeros(1, 0), torch.tensor([1]), torch.tensor([0]))), 4)
    0.6931
    """
    blank_lp, label_lp = simple_log_probs(am, lm, targets, blank, lm_only_scale, am_only_scale)
    nll, blank_occ, label_occ = _LatticeWithOccupation.apply(blank_lp, label_lp, logit_lengths, target_lengths)
    loss = reduce_nll(nll, reduction)
    return (loss, (blank_occ, label_occ)) if return_occupation else loss


def _reverse_cummin(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1).cummin(-1).values.flip(-1)


def _reverse_cummax(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1).cummax(-1).values.flip(-1)


@torch.no_grad()
def get_prune_ranges(
    blank_occ: torch.Tensor,
    label_occ: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    prune_range: int = 5,
) -> torch.Tensor:
    """Label positions kept per frame: (B, T, S) long, ``ranges[b, t] = s_t + arange(S)``.

    blank_occ (B, T, U+1) and label_occ (B, T, U) are arc occupations (from the simple loss).

    Choice: at frame t a path uses the positions a..b of one run (it arrives at a, emits labels up
    to b, leaves by the blank at b). The window [s, s+S-1] keeps that run when a >= s and
    b <= s+S-1, whose probability is at least ``P(b in window) - P(a < s <= b)`` = (blank
    occupation summed over the window) - (occupation of the label arc s-1 -> s at frame t);
    ``s_t`` maximises that bound.

    Then, so that every window holds a path and the last one ends the utterance: from the last
    valid frame on, ``s_t = max(U_b + 1 - S, 0)`` (its window holds position U_b); a reverse
    cumulative minimum makes s non-decreasing (and <= that final start everywhere); a reverse
    cumulative maximum of ``s_t - (S-1) t`` caps every increase at S-1 (the window of frame t+1
    then still holds the top position of frame t's window, where a path leaves by a blank); and
    ``min(s_t, (S-1) t)`` starts at position 0 on frame 0 and keeps the final window reachable.
    Each step keeps what the previous ones established.

    S is ``prune_range`` raised, if needed, to ``max_b ceil(U_b / T_b) + 1`` (fewer would not reach
    U_b within T_b frames) and lowered to U+1 (when U+1 <= S every window is all of 0..U).
    """
    if prune_range < 2:
        raise ValueError(f"prune_range must be >= 2 (a window must hold a label arc), got {prune_range}")
    batch, frames, positions = blank_occ.shape
    device = blank_occ.device
    logit_lengths = logit_lengths.to(device).long()
    target_lengths = target_lengths.to(device).long()
    needed = int(((target_lengths + logit_lengths - 1) // logit_lengths.clamp(min=1) + 1).max()) if batch else 2
    size = min(max(prune_range, needed), positions)
    num_starts = positions - size + 1

    window_blank = torch.cat([blank_occ.new_zeros(batch, frames, 1), blank_occ.cumsum(-1)], dim=-1)
    window_blank = window_blank[..., size:] - window_blank[..., :num_starts]  # (B, T, num_starts)
    entering = torch.cat([label_occ.new_zeros(batch, frames, 1), label_occ[..., : num_starts - 1]], dim=-1)
    start = (window_blank - entering).argmax(dim=-1)  # (B, T)

    frame = torch.arange(frames, device=device)
    final_start = (target_lengths + 1 - size).clamp(min=0)
    start = torch.where(frame[None] < logit_lengths[:, None] - 1, start, final_start[:, None])
    start = _reverse_cummin(start)
    slope = (size - 1) * frame[None]
    start = _reverse_cummax(start - slope) + slope
    start = torch.minimum(start, slope)
    return start[..., None] + torch.arange(size, device=device)


def gather_pruned(pred_projected: torch.Tensor, ranges: torch.Tensor) -> torch.Tensor:
    """Predictor-side rows at the kept positions: (B, U+1, J), ranges (B, T, S) -> (B, T, S, J)."""
    batch, frames, size = ranges.shape
    dim = pred_projected.shape[-1]
    index = ranges.reshape(batch, frames * size, 1).expand(batch, frames * size, dim)
    return pred_projected.gather(1, index).reshape(batch, frames, size, dim)


def pruned_rnnt_loss(
    logits: torch.Tensor,
    ranges: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    """RNN-T NLL of the paths inside the windows: logits (B, T, S, V) at positions ranges (B, T, S).

    Blank arcs at kept positions and label arcs between two kept positions of the same frame get
    their log-probs; every other arc gets ``OUTSIDE_WINDOW``. The float64 lattice does the rest;
    the loss is float32 (float64 for float64 logits). With windows covering 0..U this is exactly
    :func:`~asr_pathways.asr.loss.rnnt_loss`.

    >>> logits = torch.zeros(1, 1, 2, 2)  # one frame, one label, window 0..1, p = 1/2 everywhere
    >>> ranges = torch.tensor([[[0, 1]]])
    >>> round(float(pruned_rnnt_loss(logits, ranges, torch.tensor([[1]]), torch.tensor([1]), torch.tensor([1]))), 4)
    1.3863
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    batch, frames, size, _ = logits.shape
    positions = targets.shape[1] + 1
    if ranges.shape != (batch, frames, size):
        raise ValueError(f"ranges must be (B, T, S) = {(batch, frames, size)}, got {tuple(ranges.shape)}")
    targets = targets.long()
    next_label = torch.cat([targets, targets.new_full((batch, 1), blank)], dim=1)  # (B, U+1)
    label_at = next_label.gather(1, ranges.reshape(batch, frames * size)).reshape(batch, frames, size)
    index = torch.stack([torch.full_like(label_at, blank), label_at], dim=-1)
    window_lp = log_softmax_at(logits, index).double()  # (B, T, S, 2)
    blank_window = window_lp[..., 0]
    # The label arc from the top slot leads out of the window.
    top_slot = torch.arange(size, device=logits.device) == size - 1
    label_window = window_lp[..., 1].masked_fill(top_slot, OUTSIDE_WINDOW)
    outside = torch.full((batch, frames, positions), OUTSIDE_WINDOW, dtype=torch.float64, device=logits.device)
    blank_lp = outside.scatter(2, ranges, blank_window)
    label_lp = outside.scatter(2, ranges, label_window)[:, :, : positions - 1]
    nll = lattice_nll(blank_lp, label_lp, logit_lengths, target_lengths).to(logits.dtype)
    return reduce_nll(nll, reduction)


class PrunedLosses(NamedTuple):
    """Per-utterance NLLs (B,) of :func:`pruned_rnnt_losses`, and the windows used."""

    simple: torch.Tensor
    pruned: torch.Tensor
    ranges: torch.Tensor


def pruned_rnnt_losses(
    am: torch.Tensor,
    lm: torch.Tensor,
    enc_projected: torch.Tensor,
    pred_projected: torch.Tensor,
    joiner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    prune_range: int = 5,
    blank: int = 0,
    lm_only_scale: float = 0.0,
    am_only_scale: float = 0.0,
) -> PrunedLosses:
    """Simple and pruned per-utterance NLLs of a transducer batch.

    Args:
        am: ``simple_am_proj(enc)`` (B, T, V); lm: ``simple_lm_proj(pred)`` (B, U+1, V).
        enc_projected: the joiner's encoder projection (B, T, J); pred_projected: its predictor
            projection (B, U+1, J) (predictor input ``[blank] + targets``).
        joiner: ``joiner(enc (B, T, 1, J), pred (B, T, S, J)) -> logits (B, T, S, V)``.
        targets (B, U), logit_lengths (B,), target_lengths (B,): as for ``rnnt_loss``.
        prune_range: label positions per frame (see :func:`get_prune_ranges`).

    Combine as ``simple_scale * simple + pruned_scale * pruned`` (:func:`pruned_loss_scales`).
    """
    simple, (blank_occ, label_occ) = simple_rnnt_loss(
        am, lm, targets, logit_lengths, target_lengths, blank, "none", lm_only_scale, am_only_scale, True
    )
    ranges = get_prune_ranges(blank_occ, label_occ, logit_lengths, target_lengths, prune_range)
    logits = joiner(enc_projected[:, :, None], gather_pruned(pred_projected, ranges))
    pruned = pruned_rnnt_loss(logits, ranges, targets, logit_lengths, target_lengths, blank, "none")
    return PrunedLosses(simple, pruned, ranges)


def pruned_loss_scales(warmup: float = 1.0, simple_loss_scale: float = 0.5) -> tuple[float, float]:
    """(simple_scale, pruned_scale) after a fraction ``warmup`` in [0, 1] of the warm-up (icefall's).

    simple_scale goes linearly 1.0 -> simple_loss_scale, pruned_scale 0.1 -> 1.0.

    >>> pruned_loss_scales(0.0), pruned_loss_scales(0.5), pruned_loss_scales(1.0)
    ((1.0, 0.1), (0.75, 0.55), (0.5, 1.0))
    """
    done = min(max(float(warmup), 0.0), 1.0)
    return 1.0 - done * (1.0 - simple_loss_scale), 0.1 + 0.9 * done
