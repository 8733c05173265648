"""Beam searches for RNN-T: several labels per frame (the default), or one (icefall's modified search).

:func:`beam_search` (``decoding="beam"``) follows the transducer lattice the loss trains on: at an
encoder frame a hypothesis may emit up to ``max_symbols_per_frame`` labels, each one without moving
on, and leaves the frame by emitting blank. Hypotheses that leave a frame with the same label
sequence are merged by adding their probabilities (``logaddexp``): they are two alignments of one
transcript. Per frame the search keeps the ``beam`` best hypotheses that left it; while it expands
labels inside a frame it keeps the ``beam`` best label extensions, and drops those already below the
``beam``-th best hypothesis that has left the frame (an extension's own score can only fall; its mass
could still have been merged into a surviving transcript, so like every beam this is an
approximation). With a beam wide enough to keep everything, a hypothesis's score is its exact
log-probability summed over every alignment with at most ``max_symbols_per_frame`` labels per frame:
tests/test_beam_search.py checks it against a brute-force enumeration and, where the cap does not
bind, against the RNN-T loss (``asr.loss.rnnt_loss``).

:func:`modified_beam_search` (``decoding="modified_beam"``) emits at most one label per frame and
moves on with it, as icefall decodes. On the ``small`` preset's 80 ms frames, with 0.66-0.80 labels
per frame, that cap deletes labels (BENCHMARKS.md, "Greedy vs beam search").

In both, the best hypothesis at the end is the one with the best length-normalised score
``log p / (labels + 1)`` (the ``+ 1`` counts the blank start symbol, as icefall counts its
decoder context). With ``beam=1`` the modified search is exactly greedy decoding restricted to one
label per frame (``greedy_decode(..., max_symbols_per_frame=1)``).

The predictor is called only for new label sequences, batched over the hypotheses of a step; its
state tensors are (layers, n, H) like ``nn.LSTM``'s, the same convention as
:func:`asr_pathways.asr.decode.rnnt_greedy_search`, so every search runs on any model whose
predictor, predictor projection and joiner are callables (PyTorch modules or ONNX sessions).

>>> import torch
>>> from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset
>>> _ = torch.manual_seed(0)
>>> model = RNNTModel(ModelConfig.from_dict(load_preset("tiny")["model"]), vocab_size=16).eval()
>>> feats, lens = torch.randn(2, 60, 80), torch.tensor([60, 41])
>>> beam1 = decode_batch(model, feats, lens, decoding="modified_beam", beam=1)
>>> beam1 == decode_batch(model, feats, lens, decoding="greedy", max_symbols_per_frame=1)
True
>>> len(decode_batch(model, feats, lens, decoding="beam", beam=4))
2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .searches import DECODINGS, DEFAULT_BEAM

__all__ = ["beam_search", "modified_beam_search", "transducer_search", "decode_batch", "DECODINGS", "DEFAULT_BEAM"]


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


def _expand(pending: list[tuple[_Hyp, int, float]], predictor: Predictor, pred_proj: Callable[[torch.Tensor], torch.Tensor],
            device: torch.device) -> list[_Hyp]:
    """New hypotheses ``parent + label`` with score ``value`` for each (parent, label, value): the
    predictor runs once, batched over them."""
    tokens = torch.tensor([[tok] for _, tok, _ in pending], dtype=torch.long, device=device)
    states = tuple(torch.cat([p.state[i] for p, _, _ in pending], dim=1) for i in range(len(pending[0][0].state)))
    out, new_state = predictor(tokens, states)
    projected = pred_proj(out[:, 0])
    return [_Hyp(p.tokens + (tok,), value, projected[j : j + 1], tuple(st[:, j : j + 1] for st in new_state))
            for j, (p, tok, value) in enumerate(pending)]


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
        scores = logits.log_softmax(dim=-1) + torch.tensor([h.log_prob for h in current], device=logits.device)[:, None]
        vocab = scores.shape[1]
        values, indices = scores.reshape(-1).topk(min(beam, scores.numel()))
        merged: dict[tuple[int, ...], _Hyp] = {}
        pending: list[tuple[_Hyp, int, float]] = []  # (parent, label, score): new label sequences, need the predictor
        for value, index in zip(values.tolist(), indices.tolist()):
            parent = current[index // vocab]
            token = index % vocab
            key = parent.tokens if token == blank else parent.tokens + (token,)
            if key in merged:
                merged[key].log_prob = _logaddexp(merged[key].log_prob, value)
            else:
                merged[key] = _Hyp(key, value, parent.pred, parent.state)  # a new label: its predictor output below
                if token != blank:
                    pending.append((parent, token, value))
        if pending:
            for grown in _expand(pending, predictor, pred_proj, enc.device):
                merged[grown.tokens].pred, merged[grown.tokens].state = grown.pred, grown.state
        hyps = merged
    best = max(hyps.values(), key=lambda h: h.log_prob / (len(h.tokens) + 1))
    return list(best.tokens)


def _frame_sync_search(
    enc: torch.Tensor, lens: list[int], predictor: Predictor, pred_proj: Callable[[torch.Tensor], torch.Tensor],
    joiner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], beam: int, blank: int, max_symbols: int,
) -> list[dict[tuple[int, ...], _Hyp]]:
    """:func:`beam_search` over projected encoder frames ``enc`` (B, T, J) with ``lens`` valid
    frames each: per utterance, the hypotheses left after its last frame, keyed by their labels.

    Utterances are searched side by side: every joiner and predictor call is batched over the
    hypotheses of all utterances still inside their frames."""
    start = torch.full((1, 1), blank, dtype=torch.long, device=enc.device)
    out, state = predictor(start, None)
    first = _Hyp((), 0.0, pred_proj(out[:, 0]), tuple(state))
    hyps: list[dict[tuple[int, ...], _Hyp]] = [{(): first} for _ in lens]
    for t in range(max(lens, default=0)):
        live = [b for b, n in enumerate(lens) if t < n]
        left: dict[int, dict[tuple[int, ...], _Hyp]] = {b: {} for b in live}  # hypotheses that emitted blank at frame t
        active = {b: list(hyps[b].values()) for b in live}  # hypotheses that may still emit labels at frame t
        for emitted in range(max_symbols + 1):
            rows = [(b, h) for b in live for h in active[b]]
            if not rows:
                break
            frames = enc[torch.tensor([b for b, _ in rows], device=enc.device), t]
            log_probs = joiner(frames, torch.cat([h.pred for _, h in rows])).float().log_softmax(dim=-1)
            scores = log_probs + torch.tensor([h.log_prob for _, h in rows], device=log_probs.device)[:, None]
            for (b, h), value in zip(rows, scores[:, blank].tolist()):
                if h.tokens in left[b]:
                    left[b][h.tokens].log_prob = _logaddexp(left[b][h.tokens].log_prob, value)
                else:
                    left[b][h.tokens] = _Hyp(h.tokens, value, h.pred, h.state)
            if emitted == max_symbols:
                break
            scores[:, blank] = -math.inf
            vocab = scores.shape[1]
            pending: list[tuple[_Hyp, int, float]] = []
            owners: list[int] = []
            offset = 0
            for b in live:
                rows_b = scores[offset : offset + len(active[b])]
                parents, offset = active[b], offset + len(active[b])
                if not parents:
                    continue
                done = sorted((h.log_prob for h in left[b].values()), reverse=True)
                floor = done[beam - 1] if len(done) >= beam else -math.inf  # a label only lowers its own score
                values, indices = rows_b.reshape(-1).topk(min(beam, rows_b.numel()))
                for value, index in zip(values.tolist(), indices.tolist()):
                    if value > floor:
                        pending.append((parents[index // vocab], index % vocab, value))
                        owners.append(b)
            active = {b: [] for b in live}
            if pending:
                for b, h in zip(owners, _expand(pending, predictor, pred_proj, enc.device)):
                    active[b].append(h)
        for b in live:
            hyps[b] = dict(sorted(left[b].items(), key=lambda kv: kv[1].log_prob, reverse=True)[:beam])
    return hyps


@torch.no_grad()
def beam_search(
    enc_projected: torch.Tensor,
    enc_lens: torch.Tensor,
    predictor: Predictor,
    pred_proj: Callable[[torch.Tensor], torch.Tensor],
    joiner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    beam: int = DEFAULT_BEAM,
    blank: int = 0,
    max_symbols_per_frame: int = 5,
) -> list[list[int]]:
    """Label ids per utterance, up to ``max_symbols_per_frame`` labels per frame; arguments as
    :func:`~asr_pathways.asr.decode.rnnt_greedy_search`. The utterances of a batch are searched
    side by side (joiner and predictor calls batched over all their hypotheses)."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if max_symbols_per_frame < 1:
        raise ValueError(f"max_symbols_per_frame must be >= 1, got {max_symbols_per_frame}")
    lens = [int(n) for n in enc_lens.tolist()]
    found = _frame_sync_search(enc_projected, lens, predictor, pred_proj, joiner, beam, blank, max_symbols_per_frame)
    return [list(max(h.values(), key=lambda h: h.log_prob / (len(h.tokens) + 1)).tokens) for h in found]


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
    """Token ids per utterance from raw features (B, T, F) with ``decoding`` one of :data:`DECODINGS`.

    Greedy runs :func:`~asr_pathways.asr.decode.greedy_decode` (RNN-T, or CTC for a CTC-only
    model); "beam" runs :func:`beam_search`, "modified_beam" :func:`modified_beam_search`, each with
    ``beam`` hypotheses (RNN-T only).
    """
    from .decode import greedy_decode

    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
    if decoding == "greedy":
        return greedy_decode(model, features, feature_lens, max_symbols_per_frame=max_symbols_per_frame)
    if getattr(model, "joiner", None) is None:
        raise ValueError("beam search needs a transducer (predictor + joiner); this model is CTC-only: use greedy")
    enc, enc_lens = model.encode(features, feature_lens)
    return transducer_search(decoding, model.joiner.enc_proj(enc), enc_lens, model.predictor, model.joiner.pred_proj,
                             model.joiner, beam=beam, blank=getattr(model, "blank_id", 0),
                             max_symbols_per_frame=max_symbols_per_frame)


def transducer_search(decoding: str, enc_projected: torch.Tensor, enc_lens: torch.Tensor, predictor: Predictor,
                      pred_proj: Callable[[torch.Tensor], torch.Tensor], joiner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      beam: int = DEFAULT_BEAM, blank: int = 0, max_symbols_per_frame: int = 5) -> list[list[int]]:
    """Run the search named by ``decoding`` (one of :data:`DECODINGS`) on projected encoder frames."""
    from .decode import rnnt_greedy_search

    if decoding == "greedy":
        return rnnt_greedy_search(enc_projected, enc_lens, predictor, pred_proj, joiner, blank=blank,
                                  max_symbols_per_frame=max_symbols_per_frame)
    if decoding == "beam":
        return beam_search(enc_projected, enc_lens, predictor, pred_proj, joiner, beam=beam, blank=blank,
                           max_symbols_per_frame=max_symbols_per_frame)
    if decoding == "modified_beam":
        return modified_beam_search(enc_projected, enc_lens, predictor, pred_proj, joiner, beam=beam, blank=blank)
    raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
