"""Batched greedy decoding for RNN-T and CTC.

Every weight is used through a normal module call at the moment it is needed (nothing is cached
across calls), so decoding inside ``with pathway_model.pathway("fr"):`` uses that pathway's masked
weights. Only activations (projected encoder frames, the current predictor output) are reused.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["greedy_decode", "ctc_greedy_search", "rnnt_greedy_search"]

PredictorState = tuple[torch.Tensor, ...]


def ctc_greedy_search(logits: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path per frame, repeats collapsed, blanks dropped. logits/log-probs (B, T, V).

    >>> logits = torch.tensor([[[0., 1, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]])
    >>> ctc_greedy_search(logits, torch.tensor([5]))
    [[1, 1, 2]]
    >>> ctc_greedy_search(logits, torch.tensor([2]))
    [[1]]
    """
    best = logits.argmax(dim=-1)  # (B, T)
    previous = torch.cat([best.new_full((best.shape[0], 1), blank), best[:, :-1]], dim=1)
    valid = torch.arange(best.shape[1], device=best.device)[None, :] < lengths.to(best.device)[:, None]
    keep = (best != blank) & (best != previous) & valid
    return [row[mask].tolist() for row, mask in zip(best.cpu(), keep.cpu())]


def _select_state(state: PredictorState, index: torch.Tensor) -> PredictorState:
    """State tensors are (layers, B, H) like nn.LSTM's: select along dim 1."""
    return tuple(s.index_select(1, index) for s in state)


def _update_state(state: PredictorState, index: torch.Tensor, new: PredictorState) -> PredictorState:
    updated = []
    for old, fresh in zip(state, new):
        merged = old.clone()
        merged[:, index] = fresh.to(old.dtype)
        updated.append(merged)
    return tuple(updated)


@torch.no_grad()
def rnnt_greedy_search(
    enc_projected: torch.Tensor,
    enc_lens: torch.Tensor,
    predictor: Callable[[torch.Tensor, PredictorState | None], tuple[torch.Tensor, PredictorState]],
    pred_proj: Callable[[torch.Tensor], torch.Tensor],
    joiner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    blank: int = 0,
    max_symbols_per_frame: int = 5,
) -> list[list[int]]:
    """Batched greedy transducer search.

    Args:
        enc_projected: encoder output already passed through the joiner's encoder projection (B, T, J).
        enc_lens: valid frames per utterance (B,).
        predictor: ``predictor(tokens (n, 1), state) -> (out (n, 1, P), state)``; state tensors are
            (layers, n, H) (``nn.LSTM`` layout); ``state=None`` means the initial state.
        pred_proj: ``pred_proj(out (n, P)) -> (n, J)``.
        joiner: ``joiner(enc (n, J), pred (n, J)) -> logits (n, V)``.
        max_symbols_per_frame: at most this many labels are emitted on one frame.

    At each frame, every utterance emits its best non-blank label and stays on the frame, or moves
    on when blank wins (or the symbol limit is reached). Only utterances that emitted advance their
    predictor; the others keep their state and output.
    """
    batch, frames, _ = enc_projected.shape
    device = enc_projected.device
    enc_lens = enc_lens.to(device)
    hyps: list[list[int]] = [[] for _ in range(batch)]
    start = torch.full((batch, 1), blank, dtype=torch.long, device=device)
    pred_out, state = predictor(start, None)
    pred_projected = pred_proj(pred_out[:, 0])
    for t in range(frames):
        active = enc_lens > t
        for _ in range(max_symbols_per_frame):
            if not bool(active.any()):
                break
            index = active.nonzero(as_tuple=True)[0]
            logits = joiner(enc_projected[index, t], pred_projected[index])
            best = logits.argmax(dim=-1)
            emitted = best != blank
            if not bool(emitted.any()):
                break
            emit_index = index[emitted]
            tokens = best[emitted]
            for b, token in zip(emit_index.tolist(), tokens.tolist()):
                hyps[b].append(token)
            new_out, new_state = predictor(tokens[:, None], _select_state(state, emit_index))
            state = _update_state(state, emit_index, new_state)
            pred_projected = pred_projected.clone()
            pred_projected[emit_index] = pred_proj(new_out[:, 0]).to(pred_projected.dtype)
            active = torch.zeros_like(active)
            active[emit_index] = True  # those that emitted stay on this frame
    return hyps


@torch.no_grad()
def greedy_decode(
    model: nn.Module,
    features: torch.Tensor,
    feature_lens: torch.Tensor,
    method: str = "auto",
    max_symbols_per_frame: int = 5,
) -> list[list[int]]:
    """Greedy token ids per utterance from raw features (B, T, F).

    ``method``: "rnnt" (predictor + joiner), "ctc" (CTC head), or "auto" (RNN-T when the model has
    a joiner, CTC otherwise). Runs in the model's current mode; call ``model.eval()`` first.
    """
    if method not in ("auto", "rnnt", "ctc"):
        raise ValueError(f"method must be 'auto', 'rnnt' or 'ctc', got {method!r}")
    has_transducer = getattr(model, "joiner", None) is not None
    if method == "auto":
        method = "rnnt" if has_transducer else "ctc"
    blank = getattr(model, "blank_id", 0)
    enc, enc_lens = model.encode(features, feature_lens)
    if method == "ctc":
        if getattr(model, "ctc_head", None) is None:
            raise ValueError("this model has no CTC head (ctc_weight is 0 and loss is 'rnnt')")
        return ctc_greedy_search(model.ctc_head(enc).float(), enc_lens, blank=blank)
    if not has_transducer:
        raise ValueError("this model has no transducer (loss is 'ctc'): use method='ctc'")
    return rnnt_greedy_search(
        model.joiner.enc_proj(enc),
        enc_lens,
        model.predictor,
        model.joiner.pred_proj,
        model.joiner,
        blank=blank,
        max_symbols_per_frame=max_symbols_per_frame,
    )
