"""Modified beam search for RNN-T (at most one label per encoder frame), as icefall decodes.

The search keeps ``beam`` hypotheses (label sequences). At every frame, each hypothesis is
extended by every vocabulary entry: blank keeps its labels, a label appends itself. The ``beam``
best extensions over all hypotheses (scored by their accumulated log-probability) survive;
extensions that end up with the same label sequence are merged by adding their probabilities
(``logaddexp``), since they are two alignments of one transcript. At the end the hypothesis with
the best length-normalised score ``log p / (labels + 1)`` is returned (the ``+ 1`` counts the
blank start symbol, as icefall counts its decoder context).

With ``beam=1`` the search is exactly greedy decoding restricted to one label per frame
(``greedy_decode(..., max_symbols_per_frame=1)``): the single best extension of the single
hypothesis is its argmax.

The predictor is called only for new label sequences, batched over the hypotheses of a frame;
its state tensors are (layers, n, H) like ``nn.LSTM``'s, the same convention as
:func:`asr_pathways.asr.decode.rnnt_greedy_search`, so both searches run on any model whose
predictor, predictor projection and joiner are callables (PyTorch modules or ONNX sessions).

>>> import torch
>>> from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset
>>> _ = torch.manual_seed(0)
>>> model = RNNTModel(ModelConfig.from_dict(load_preset("tiny")["model"]), vocab_size=16).eval()
>>> feats, lens = torch.randn(2, 60, 80), torch.tensor([60, 41])
>>> beam1 = decode_batch(model, feats, lens, decoding="beam", beam=1)
>>> beam1 == decode_batch(model, feats, lens, decoding="greedy", max_symbols_per_frame=1)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

__all__ = ["modified_beam_search", "decode_batch", "DECODINGS", "DEFAULT_BEAM"]

DECODINGS = ("greedy", "beam")
DEFAULT_BEAM = 4

PredictorState = tuple[torch.Tensor, ...]
Predictor = Callable[[torch.Tensor, "PredictorState | None"], tuple[torch.Tensor, PredictorState]]


@dataclass
class _Hyp:
    """One hypothesis: its labels, log-probability, projected predictor output and state."""

    tokens: tuple[int, ...]
    log_prob: float
    pred: torch.Tensor  # (1, J): pred_proj(predictor output after the last label)
    state: PredictorState  # tensors (layers, 1, H)


def _logaddexp(a: float, b: float) -> float:
    hi, lo = (a, b) if a >= b else (b, a)
    return hi if lo == -math.inf else hi + math.log1p(math.exp(lo - hi))


@torch.no_grad()
def _search_one(
    enc: torch.Tensor, predictor: Predictor, pred_proj: Callable[[torch.Tensor], torch.Tensor],
    joiner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], beam: int, blank: int,
) -> list[int]:
    """Modified beam search over one utterance's projected encoder frames ``enc`` (T, J)."""
    start = torch.full((1, 1), blank, dtype=torch.long, device=enc.device)
    out, state = predictor(start, None)
    hyps = {(): _Hyp((), 0.0, pred_proj(out[:, 0]), tuple(state))}
    for t in range(enc.shape[0]):
        current = list(hyps.values())
        preds = torch.cat([h.pred for h in current])  # (n, J)
        logits = joiner(enc[t : t + 1].expand(len(current), -1), preds).float()
        scores = logits.log_softmax(dim=-1) + torch.tensor([h.log_prob for h in current])[:, None]
        vocab = scores.shape[1]
        values, indices = scores.reshape(-1).topk(min(beam, scores.numel()))
        merged: dict[tuple[int, ...], _Hyp] = {}
        pending: list[tuple[tuple[int, ...], _Hyp, int]] = []  # (new labels, parent, label): need the predictor
        for value, index in zip(values.tolist(), indices.tolist()):
            parent = current[index // vocab]
            token = index % vocab
            key = parent.tokens if token == blank else parent.tokens + (token,)
            if key in merged:
                merged[key].log_prob = _logaddexp(merged[key].log_prob, value)
            else:
                merged[key] = _Hyp(key, value, parent.pred, parent.state)  # a new label: replaced below
                if token != blank:
                    pending.append((key, parent, token))
        if pending:
            tokens = torch.tensor([[tok] for _, _, tok in pending], dtype=torch.long, device=enc.device)
            states = tuple(torch.cat([p.state[i] for _, p, _ in pending], dim=1) for i in range(len(pending[0][1].state)))
            out, new_state = predictor(tokens, states)
            projected = pred_proj(out[:, 0])
            for j, (key, _, _) in enumerate(pending):
                merged[key].pred = projected[j : j + 1]
                merged[key].state = tuple(s[:, j : j + 1] for s in new_state)
        hyps = merged
    best = max(hyps.values(), key=lambda h: h.log_prob / (len(h.tokens) + 1))
    return list(best.tokens)


@torch.no_grad()
def modified_beam_search(
    enc_projected: torch.Tensor,
    enc_lens: torch.Tensor,
    predictor: Predictor,
    pred_proj: Callable[[torch.Tensor], torch.Tensor],
    joiner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    beam: int = DEFAULT_BEAM,
    blank: int = 0,
) -> list[list[int]]:
    """Label ids per utterance; arguments as :func:`~asr_pathways.asr.decode.rnnt_greedy_search`.

    ``enc_projected`` (B, T, J) is the encoder output through the joiner's encoder projection,
    ``enc_lens`` (B,) its valid frames. Utterances are searched one after the other (each search
    batches its hypotheses).
    """
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    lens = enc_lens.tolist()
    return [_search_one(enc_projected[b, : int(lens[b])], predictor, pred_proj, joiner, beam, blank) for b in range(enc_projected.shape[0])]


@torch.no_grad()
def decode_batch(
    model: nn.Module,
    features: torch.Tensor,
    feature_lens: torch.Tensor,
    decoding: str = "greedy",
    beam: int = DEFAULT_BEAM,
    max_symbols_per_frame: int = 5,
) -> list[list[int]]:
    """Token ids per utterance from raw features (B, T, F) with ``decoding`` "greedy" or "beam".

    Greedy runs :func:`~asr_pathways.asr.decode.greedy_decode` (RNN-T, or CTC for a CTC-only
    model); beam runs :func:`modified_beam_search` with ``beam`` hypotheses (RNN-T only).
    """
    from .decode import greedy_decode

    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
    if decoding == "greedy":
        return greedy_decode(model, features, feature_lens, max_symbols_per_frame=max_symbols_per_frame)
    if getattr(model, "joiner", None) is None:
        raise ValueError("beam search needs a transducer (predictor + joiner); this model is CTC-only: use greedy")
    enc, enc_lens = model.encode(features, feature_lens)
    return modified_beam_search(
        model.joiner.enc_proj(enc), enc_lens, model.predictor, model.joiner.pred_proj, model.joiner,
        beam=beam, blank=getattr(model, "blank_id", 0),
    )
