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

The (B, T, U+1, V) logits are read once: a custom autograd function computes the log-normaliser
and gathers the blank and label logits in the forward, and writes the whole gradient with one
softmax in the backward, so no (B, T, U+1, V) log-softmax tensor is kept for autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["rnnt_loss", "ctc_loss", "gather_blank_and_label_log_probs"]

_REDUCTIONS = ("mean", "sum", "none")


class _BlankAndLabelLogProbs(torch.autograd.Function):
    """log-softmax of logits, evaluated only at the blank and at the next label of each position.

    Forward: logits (B, T, U+1, V), targets (B, U) -> blank (B, T, U+1), label (B, T, U).
    Backward: d logits = onehot(blank) g_b + onehot(label) g_l - softmax(logits) (g_b + g_l).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, blank: int):  # type: ignore[override]
        batch, frames, positions, _ = logits.shape
        num_labels = positions - 1
        log_norm = torch.logsumexp(logits, dim=-1)  # (B, T, U+1)
        blank_lp = logits[..., blank] - log_norm
        label_index = targets[:, None, :, None].expand(batch, frames, num_labels, 1)
        label_lp = logits[:, :, :num_labels].gather(-1, label_index).squeeze(-1) - log_norm[:, :, :num_labels]
        ctx.save_for_backward(logits, log_norm, label_index)
        ctx.blank = blank
        return blank_lp, label_lp

    @staticmethod
    def backward(ctx, grad_blank: torch.Tensor | None, grad_label: torch.Tensor | None):  # type: ignore[override]
        logits, log_norm, label_index = ctx.saved_tensors
        num_labels = logits.shape[2] - 1
        if grad_blank is None:
            grad_blank = torch.zeros_like(log_norm)
        if grad_label is None:
            grad_label = torch.zeros_like(log_norm[:, :, :num_labels])
        total = grad_blank.clone()
        total[:, :, :num_labels] += grad_label
        grad_logits = torch.sub(logits, log_norm.unsqueeze(-1)).exp_().mul_(total.unsqueeze(-1)).neg_()
        grad_logits[..., ctx.blank] += grad_blank
        grad_logits[:, :, :num_labels].scatter_add_(-1, label_index, grad_label.unsqueeze(-1))
        return grad_logits, None, None


def gather_blank_and_label_log_probs(
    logits: torch.Tensor, targets: torch.Tensor, blank: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (log p(blank | t, u) of shape (B, T, U+1), log p(y_{u+1} | t, u) of shape (B, T, U)).

    >>> logits = torch.zeros(1, 2, 2, 3)
    >>> b, l = gather_blank_and_label_log_probs(logits, torch.tensor([[2]]))
    >>> torch.allclose(b.exp(), torch.full((1, 2, 2), 1 / 3)), tuple(l.shape)
    (True, (1, 2, 1))
    """
    return _BlankAndLabelLogProbs.apply(logits, targets, blank)


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

    batch_index = torch.arange(batch, device=logits.device)
    last_frame = logit_lengths - 1
    log_likelihood = alphas[batch_index, last_frame, target_lengths] + blank_lp[batch_index, last_frame, target_lengths]
    nll = -log_likelihood
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    return nll.mean()


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
