"""Exact RNN-T loss in pure PyTorch, and a CTC helper with the same conventions.

The transducer lattice of one utterance has T frames and U labels. With ``lp(t, u, k)`` the
log-softmax of the joiner logits, the forward variables are

    alpha(0, 0) = 0
    alpha(t, u) = logaddexp(alpha(t-1, u) + lp(t-1, u, blank), alpha(t, u-1) + lp(t, u-1, y_u))
    NLL = -(alpha(T-1, U) + lp(T-1, U, blank))

Along time, within one label position u, the recursion is linear in the log semiring, so a whole
column is solved in closed form: with ``C(t) = sum_{k<t} lp(k, u, blank)`` (an exclusive cumulative
sum) and ``e(s) = alpha(s, u-1) + lp(s, u-1, y_u)`` (the arrivals from the column below),
``alpha(t, u) = C(t) + logcumsumexp_s<=t (e(s) - C(s))``. The loss therefore loops over the U+1
label positions only, and autograd through ``cumsum``/``logcumsumexp`` gives the exact gradient.
That lattice part (:func:`lattice_nll`, shared with the pruned loss in ``pruned_loss.py``) runs in
float64 whatever the logits' dtype: it only touches (B, T, U+1) tensors, and in float32 the
running blank sum ``C(t)`` loses ~1e-4 absolute over a thousand frames.

The (B, T, U+1, V) logits are read once and stay in their float32 (or float64) dtype: a custom
autograd function computes the log-normaliser and gathers the blank and label logits in the
forward, and writes the whole gradient with one softmax in the backward, so no (B, T, U+1, V)
log-softmax tensor is kept for autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "rnnt_loss",
    "ctc_loss",
    "gather_blank_and_label_log_probs",
    "lattice_nll",
    "log_softmax_at",
    "reduce_nll",
]

_REDUCTIONS = ("mean", "sum", "none")


class _LogSoftmaxAt(torch.autograd.Function):
    """log-softmax of logits (..., V), evaluated only at K indices per row: index (..., K) -> (..., K).

    The log-normaliser is ``max + log1p(sum of exp(x - max) over all but one maximum)``, and the
    outputs are ``(x - max) - log1p(...)``: a dominant class (blank on most frames of a trained
    model) gets a log-prob like -1e-7 to full relative precision, where ``x - logsumexp(x)`` would
    round to the float32 spacing of the logits (2e-6 at |x| = 16) and that error would add up over
    thousands of frames.

    Backward: d logits = scatter_add(index, g) - softmax(logits) * sum_k g_k, written in place into
    one new (..., V) tensor; only the logits and the (...,) log-normaliser are saved for it, never a
    (..., V) log-softmax.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, index: torch.Tensor):  # type: ignore[override]
        top = logits.amax(dim=-1, keepdim=True)  # (..., 1)
        shifted = torch.sub(logits, top).exp_()  # in (0, 1]; exactly 1 at the maxima
        total = shifted.sum(-1, keepdim=True)
        below_max = shifted.frac_().sum(-1, keepdim=True)  # frac zeroes the 1s and keeps the rest exactly
        # rest = total - 1 without the cancellation: the small terms, plus 1 per tie for the maximum
        rest = below_max + (total - below_max).round_().sub_(1.0)
        log1p_rest = torch.log1p(rest)
        out = (logits.gather(-1, index) - top).sub_(log1p_rest)
        ctx.save_for_backward(logits, top + log1p_rest, index)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        logits, log_norm, index = ctx.saved_tensors
        grad_logits = torch.sub(logits, log_norm).exp_().mul_(grad_out.sum(-1, keepdim=True)).neg_()
        grad_logits.scatter_add_(-1, index, grad_out)
        return grad_logits, None


def log_softmax_at(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``logits.log_softmax(-1).gather(-1, index)`` without keeping a (..., V) log-softmax for autograd.

    >>> logits = torch.zeros(2, 4)
    >>> log_softmax_at(logits, torch.tensor([[0, 3], [1, 1]])).exp()
    tensor([[0.2500, 0.2500],
            [0.2500, 0.2500]])
    """
    return _LogSoftmaxAt.apply(logits, index)


def gather_blank_and_label_log_probs(
    logits: torch.Tensor, targets: torch.Tensor, blank: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (log p(blank | t, u) of shape (B, T, U+1), log p(y_{u+1} | t, u) of shape (B, T, U)).

    >>> logits = torch.zeros(1, 2, 2, 3)
    >>> b, l = gather_blank_and_label_log_probs(logits, torch.tensor([[2]]))
    >>> torch.allclose(b.exp(), torch.full((1, 2, 2), 1 / 3)), tuple(l.shape)
    (True, (1, 2, 1))
    """
    batch, frames, positions, _ = logits.shape
    # Position U has no next label: it gathers the blank twice, and that copy is sliced off (zero grad).
    next_label = torch.cat([targets, targets.new_full((batch, 1), blank)], dim=1)
    index = torch.stack([torch.full_like(next_label, blank), next_label], dim=-1)  # (B, U+1, 2)
    both = log_softmax_at(logits, index[:, None].expand(batch, frames, positions, 2))
    return both[..., 0], both[..., 1][:, :, : positions - 1]


def lattice_nll(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """Per-utterance transducer NLL (B,) in float64 from blank (B, T, U+1) and label (B, T, U) log-probs.

    ``blank_lp[b, t, u]`` is the log-prob of leaving (t, u) to (t+1, u) and ``label_lp[b, t, u]`` of
    leaving (t, u) to (t, u+1). Both are cast to float64 here (differentiably): the exclusive
    cumulative sum of blank log-probs over up to thousands of frames, and its cancellation against
    ``logcumsumexp``, lose ~1e-4 absolute in float32 on long, peaky utterances. Entries outside an
    utterance's (logit_length, target_length + 1) box are ignored; they must be finite.

    >>> blank = torch.full((1, 2, 1), -0.5)
    >>> float(lattice_nll(blank, blank[:, :, :0], torch.tensor([2]), torch.tensor([0])))
    1.0
    """
    blank_lp = blank_lp.double()
    label_lp = label_lp.double()
    batch, frames, positions = blank_lp.shape

    # Exclusive cumulative sums of blank log-probs along time, for every label position at once.
    blank_cumsum = torch.cumsum(blank_lp, dim=1)
    exclusive = torch.cat([blank_cumsum.new_zeros(batch, 1, positions), blank_cumsum[:, :-1]], dim=1)

    # unbind (not repeated indexing): its backward is one stack, not one zero-filled tensor per column.
    column_offsets = exclusive.unbind(dim=2)
    label_columns = label_lp.unbind(dim=2)
    # Column u = 0: only blanks, alpha(t, 0) = C(t).
    alpha = column_offsets[0]
    columns = [alpha]
    for u in range(1, positions):
        arrivals = alpha + label_columns[u - 1]
        alpha = column_offsets[u] + torch.logcumsumexp(arrivals - column_offsets[u], dim=1)
        columns.append(alpha)
    alphas = torch.stack(columns, dim=2)  # (B, T, U+1)

    batch_index = torch.arange(batch, device=blank_lp.device)
    last_frame = logit_lengths.to(blank_lp.device).long() - 1
    target_lengths = target_lengths.to(blank_lp.device).long()
    final = alphas[batch_index, last_frame, target_lengths] + blank_lp[batch_index, last_frame, target_lengths]
    return -final


def reduce_nll(nll: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply a "mean" | "sum" | "none" reduction to per-utterance NLLs (B,)."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    return nll.mean()


def _check_inputs(
    logits: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    reduction: str,
) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if logits.dim() != 4:
        raise ValueError(f"logits must be (B, T, U+1, V), got shape {tuple(logits.shape)}")
    batch, frames, positions, _ = logits.shape
    if targets.dim() != 2 or targets.shape[0] != batch or targets.shape[1] != positions - 1:
        raise ValueError(
            f"targets must be (B, U) = ({batch}, {positions - 1}) to match logits "
            f"{tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    if logit_lengths.shape != (batch,) or target_lengths.shape != (batch,):
        raise ValueError("logit_lengths and target_lengths must be 1-D tensors of length B")
    if batch and (int(logit_lengths.min()) < 1 or int(logit_lengths.max()) > frames):
        raise ValueError(f"logit_lengths must lie in [1, {frames}], got {logit_lengths.tolist()}")
    if batch and (int(target_lengths.min()) < 0 or int(target_lengths.max()) > positions - 1):
        raise ValueError(f"target_lengths must lie in [0, {positions - 1}], got {target_lengths.tolist()}")


def rnnt_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    """RNN-T negative log-likelihood with torchaudio's conventions.

    Args:
        logits: raw joiner outputs (B, T, U+1, V); log-softmax is applied inside. bf16/fp16
            inputs are computed in float32; float64 stays float64. Must be finite (padding too).
            The lattice recursion always runs in float64; the loss has the (upcast) logits' dtype.
        targets: (B, U) label ids (padding is ignored; any valid id).
        logit_lengths: (B,) number of valid frames per utterance (>= 1).
        target_lengths: (B,) number of valid labels per utterance (>= 0).
        blank: the blank id.
        reduction: "mean" (mean over the batch), "sum", or "none" (per-utterance NLL, shape (B,)).

    >>> logits = torch.zeros(1, 1, 1, 2)  # one frame, no labels: p(blank) = 1/2
    >>> round(float(rnnt_loss(logits, torch.zeros(1, 0, dtype=torch.long),
    ...                       torch.tensor([1]), torch.tensor([0]))), 4)
    0.6931
    """
    _check_inputs(logits, targets, logit_lengths, target_lengths, reduction)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    targets = targets.long()
    logit_lengths = logit_lengths.to(logits.device).long()
    target_lengths = target_lengths.to(logits.device).long()

    blank_lp, label_lp = gather_blank_and_label_log_probs(logits, targets, blank)
    nll = lattice_nll(blank_lp, label_lp, logit_lengths, target_lengths).to(logits.dtype)
    return reduce_nll(nll, reduction)


def ctc_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    """CTC negative log-likelihood of raw logits (B, T, V), computed in float32 or float64.

    Same conventions as :func:`rnnt_loss`: "mean" is the mean of per-utterance NLLs over the batch
    (not torch's per-target-length mean). Impossible alignments give 0 (``zero_infinity=True``).

    >>> logits = torch.zeros(1, 2, 3)
    >>> round(float(ctc_loss(logits, torch.tensor([[1]]), torch.tensor([2]), torch.tensor([1]))), 4)
    1.0986
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    log_probs = F.log_softmax(logits, dim=-1).transpose(0, 1)  # (T, B, V)
    nll = F.ctc_loss(
        log_probs,
        targets.long(),
        logit_lengths.long(),
        target_lengths.long(),
        blank=blank,
        reduction="none",
        zero_infinity=True,
    )
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    return nll.mean()
