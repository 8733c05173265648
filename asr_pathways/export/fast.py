"""Whole-model sparse decoding: every pruned weight matrix runs sparse, and a lean batch-1 loop.

:func:`sparse_decoding_model` turns a model holding θ ⊙ m (and its mask m) into one where

- every pruned ``nn.Linear`` (feed-forward, convolution-module pointwise layers, joiner) is a
  :class:`~asr_pathways.export.sparse_linear.BlockSparseLinear`;
- every ``nn.MultiheadAttention`` is a :class:`~asr_pathways.export.attention.LinearSelfAttention`
  whose ``in_proj``/``out_proj`` are BlockSparseLinear when pruned;
- the predictor's ``nn.LSTM`` is a :class:`~asr_pathways.export.module_lstm.ModuleLSTM` whose
  per-layer ``[W_ih | W_hh]`` gate module is BlockSparseLinear when pruned;
- the convolution module's depthwise ``Conv1d`` (never pruned) is an :class:`UnfoldDepthwiseConv1d`,
  the same function without ``F.conv1d``'s batch-1 overhead.

Weights that the mask does not name stay dense (``nn.Linear``), so with an empty mask the same
function gives the *dense* model through the same modules: the fair baseline of the speed
benchmark (same loop, dense weights). Each BlockSparseLinear picks, per call shape, the C++ kernel
or dense ``F.linear`` (``mode="auto"``), so the result is never slower than dense by design.

:func:`lean_greedy` is greedy RNN-T decoding of one utterance with as few tensor operations per
step as the model allows: the joiner's encoder projection computed once for all frames, the
joiner scored on :data:`LOOKAHEAD` frames at once while the predictor output stays the same (it
only changes when a label is emitted), the predictor stepped only on a label. It makes the same
choices as :func:`~asr_pathways.asr.decode.greedy_decode` for a batch of one (scores equal to
float rounding).

Transcripts of the sparse model equal those of the masked dense model up to float rounding of
the kernels (tests check them equal on tiny models; BENCHMARKS.md on the ``small``/``base`` presets).
"""

from __future__ import annotations

import copy
from typing import Mapping

import torch
from torch import nn

from .attention import LinearSelfAttention, linear_copy
from .module_lstm import ModuleLSTM
from .sparse_linear import BlockSparseLinear

__all__ = ["sparse_decoding_model", "lean_greedy", "decode_one", "sparse_layer_count", "LOOKAHEAD"]

# frames scored at once by lean_greedy while no label is emitted (4: the kernel's per-row path,
# so a frame's scores do not depend on how many frames were scored with it)
LOOKAHEAD = 4


def _make(weight: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor | None, mode: str) -> nn.Module:
    """BlockSparseLinear holding weight ⊙ mask when ``mask`` is given, else a dense nn.Linear."""
    if mask is None:
        return linear_copy(weight, bias)
    m = mask.to(weight.device, torch.bool).reshape(weight.shape)
    layer = BlockSparseLinear.from_dense(weight * m, m, bias)
    layer.mode = mode
    return layer


class UnfoldDepthwiseConv1d(nn.Module):
    """A depthwise ``nn.Conv1d`` (groups = channels, stride 1, "same" padding) as one unfold,
    multiply and sum: on (1, 144, 75) inputs about 5x faster than ``F.conv1d`` at batch 1 on the
    CPU, same result to float rounding. ``forward(x (B, C, T)) -> (B, C, T)``."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        k = conv.kernel_size[0]
        if conv.groups != conv.in_channels or conv.out_channels != conv.in_channels or conv.stride[0] != 1 \
                or conv.dilation[0] != 1 or conv.padding != (k // 2,) or k % 2 != 1:
            raise ValueError("only an odd-kernel depthwise Conv1d with stride 1 and same padding is supported")
        self.kernel_size = k
        self.register_buffer("weight", conv.weight.detach()[:, 0, :].clone())  # (C, K)
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.kernel_size // 2
        frames = torch.nn.functional.pad(x.transpose(1, 2), (0, 0, pad, pad))  # (B, T + 2p, C)
        y = (frames.unfold(1, self.kernel_size, 1) * self.weight).sum(-1)  # (B, T, C)
        if self.bias is not None:
            y = y + self.bias
        return y.transpose(1, 2)


def sparse_decoding_model(
    model: nn.Module, mask: Mapping[str, torch.Tensor], mode: str = "auto", inplace: bool = False
) -> nn.Module:
    """The model with every weight named in ``mask`` (True = kept) running sparse (see module doc).

    ``model`` should hold θ ⊙ m already (``CompactModel.model(pathway)``); the sparse modules
    apply ``mask`` again, so θ works too. ``mode`` is each BlockSparseLinear's
    ("auto", "kernel" or "dense"). Returns a deep copy in eval mode unless ``inplace``.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    mask = dict(mask)
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            if isinstance(child, nn.MultiheadAttention):
                names = {"in_proj": f"{full}.in_proj_weight", "out_proj": f"{full}.out_proj.weight"}
                new: nn.Module = LinearSelfAttention.from_mha(child, lambda kind, w, b: _make(w, b, mask.get(names[kind]), mode))
                setattr(parent, child_name, new)
            elif isinstance(child, nn.LSTM):
                def cell(k: int, w: torch.Tensor, b: torch.Tensor, full: str = full, lstm: nn.LSTM = child) -> nn.Module:
                    ih, hh = mask.get(f"{full}.weight_ih_l{k}"), mask.get(f"{full}.weight_hh_l{k}")
                    if ih is None and hh is None:
                        return _make(w, b, None, mode)
                    ih = torch.ones_like(getattr(lstm, f"weight_ih_l{k}"), dtype=torch.bool) if ih is None else ih.bool()
                    hh = torch.ones_like(getattr(lstm, f"weight_hh_l{k}"), dtype=torch.bool) if hh is None else hh.bool()
                    return _make(w, b, torch.cat([ih, hh], dim=1), mode)

                setattr(parent, child_name, ModuleLSTM.from_lstm(child, cell))
            elif isinstance(child, nn.Conv1d) and child.groups == child.in_channels > 1:
                setattr(parent, child_name, UnfoldDepthwiseConv1d(child))
            elif type(child) is nn.Linear and f"{full}.weight" in mask:
                setattr(parent, child_name, _make(child.weight.detach(), None if child.bias is None else child.bias.detach(), mask[f"{full}.weight"], mode))
    return model


def sparse_layer_count(model: nn.Module) -> tuple[int, int]:
    """(BlockSparseLinear modules, all linear-like modules: Linear + BlockSparseLinear)."""
    sparse = sum(isinstance(m, BlockSparseLinear) for m in model.modules())
    return sparse, sparse + sum(type(m) is nn.Linear for m in model.modules())


@torch.inference_mode()
def lean_greedy(model: nn.Module, features: torch.Tensor, max_symbols_per_frame: int = 5) -> list[int]:
    """Greedy RNN-T token ids of one utterance ``features`` (T, F): same result as
    ``greedy_decode(model, features[None], [T])[0]``, with less work per step."""
    feats = features[None] if features.dim() == 2 else features
    enc, enc_lens = model.encode(feats, torch.tensor([feats.shape[1]]))
    joiner, predictor = model.joiner, model.predictor
    enc_proj = joiner.enc_proj(enc[0, : int(enc_lens[0])])  # (T', J)
    embedding = predictor.embedding.weight
    lstm = predictor.lstm
    blank = getattr(model, "blank_id", 0)

    def step(token: int, state):
        x = embedding[token : token + 1]  # (1, D)
        if isinstance(lstm, ModuleLSTM):
            if state is None:
                state = lstm.initial_state(1, x)
            return lstm.step(x, state)
        out, state = lstm(x[:, None], state)
        return out[:, 0], state

    out, state = step(blank, None)
    pred = joiner.pred_proj(out)
    output = joiner.output
    hyp: list[int] = []
    frames, t = enc_proj.shape[0], 0
    while t < frames:
        # the predictor output only changes when a label is emitted: score the next few frames at once
        ahead = output(torch.tanh(enc_proj[t : t + LOOKAHEAD] + pred)).argmax(-1).tolist()
        first = next((j for j, k in enumerate(ahead) if k != blank), None)
        if first is None:
            t += len(ahead)
            continue
        t += first
        token, emitted = ahead[first], 0
        while token != blank:  # emit on frame t until blank or the symbol limit
            hyp.append(token)
            out, state = step(token, state)
            pred = joiner.pred_proj(out)
            emitted += 1
            if emitted >= max_symbols_per_frame:
                break
            token = int(output(torch.tanh(enc_proj[t : t + 1] + pred)).argmax())
        t += 1
    return hyp


@torch.inference_mode()
def decode_one(model: nn.Module, features: torch.Tensor, decoding: str = "greedy", beam: int = 4) -> list[int]:
    """Token ids of one utterance (T, F): :func:`lean_greedy` for a transducer's greedy decoding,
    else :func:`~asr_pathways.asr.beam_search.decode_batch` on a batch of one."""
    from asr_pathways.asr.beam_search import decode_batch

    if decoding == "greedy" and getattr(model, "joiner", None) is not None:
        return lean_greedy(model, features)
    return decode_batch(model, features[None], torch.tensor([features.shape[0]]), decoding=decoding, beam=beam)[0]
