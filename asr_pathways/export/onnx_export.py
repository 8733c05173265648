"""ONNX export of one pathway: encoder, predictor step and joiner as three graphs.

Graphs (float32, dynamic batch and time):

- ``encoder.onnx``:   features (B, T, 80), feature_lens (B,) int64 -> enc (B, T', d), enc_lens (B,)
- ``predictor.onnx``: token (N, 1) int64, h (L, N, H), c (L, N, H) -> out (N, P), h_out, c_out
                      (initial state: zeros; the first token is blank, id 0)
- ``joiner.onnx``:    enc (N, d), pred (N, P) -> logits (N, V)

Weights are θ ⊙ m_l stored dense: onnxruntime densifies sparse initializers when it loads them
(docs: /work/shared/notes/MEASURED.md), so sparsity buys file size here only through compression.
Needs the optional packages ``onnx`` (for the exporter) and ``onnxruntime`` (to run or check);
they are imported only by these functions.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from asr_pathways.io import atomic_write_bytes

__all__ = ["EncoderGraph", "PredictorStep", "JoinerStep", "export_onnx", "run_onnx", "OPSET"]

OPSET = 17


class TraceableAttention(nn.Module):
    """``nn.MultiheadAttention`` (batch_first, self-attention, eval) in plain ops that trace with
    dynamic batch and time: MHA's own code bakes the example's sizes into its reshapes."""

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        if not mha.batch_first or not mha._qkv_same_embed_dim:
            raise ValueError("only batch_first self-attention with a packed in_proj_weight is supported")
        self.mha = mha

    def forward(self, query, key, value, key_padding_mask=None, need_weights=False, **_):
        m = self.mha
        heads = m.num_heads
        head_dim = m.embed_dim // heads
        q, k, v = nn.functional.linear(query, m.in_proj_weight, m.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.unflatten(-1, (heads, head_dim)).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (head_dim**-0.5)
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        out = torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).flatten(2)
        return m.out_proj(out), None


class EncoderGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        import copy

        self.model = copy.deepcopy(model)
        for module in list(self.model.modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, nn.MultiheadAttention):
                    setattr(module, child_name, TraceableAttention(child))

    def forward(self, features: torch.Tensor, feature_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(features, feature_lens)


class PredictorStep(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.predictor = model.predictor

    def forward(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        out, (h2, c2) = self.predictor(token, (h, c))
        return out[:, 0], h2, c2


class JoinerStep(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.joiner = model.joiner

    def forward(self, enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        return self.joiner(self.joiner.enc_proj(enc), self.joiner.pred_proj(pred))


def _example_inputs(model: nn.Module) -> dict[str, tuple[torch.Tensor, ...]]:
    cfg = model.cfg
    feats = torch.randn(2, 64, cfg.feature_dim)
    lens = torch.tensor([64, 40], dtype=torch.long)
    L, H = cfg.predictor_layers, cfg.predictor_dim
    return {
        "encoder": (feats, lens),
        "predictor": (torch.tensor([[0], [3]], dtype=torch.long), torch.zeros(L, 2, H), torch.zeros(L, 2, H)),
        "joiner": (torch.randn(2, cfg.d_model), torch.randn(2, cfg.predictor_dim)),
    }


_SPECS = {
    "encoder": (
        ["features", "feature_lens"], ["enc", "enc_lens"],
        {"features": {0: "batch", 1: "frames"}, "feature_lens": {0: "batch"}, "enc": {0: "batch", 1: "enc_frames"}, "enc_lens": {0: "batch"}},
    ),
    "predictor": (
        ["token", "h", "c"], ["out", "h_out", "c_out"],
        {"token": {0: "n"}, "h": {1: "n"}, "c": {1: "n"}, "out": {0: "n"}, "h_out": {1: "n"}, "c_out": {1: "n"}},
    ),
    "joiner": (["enc", "pred"], ["logits"], {"enc": {0: "n"}, "pred": {0: "n"}, "logits": {0: "n"}}),
}


def graphs_of(model: nn.Module) -> dict[str, nn.Module]:
    if getattr(model, "joiner", None) is None:
        raise ValueError("ONNX export needs a transducer model (predictor + joiner)")
    return {"encoder": EncoderGraph(model).eval(), "predictor": PredictorStep(model).eval(), "joiner": JoinerStep(model).eval()}


def export_onnx(model: nn.Module, out_dir: str | Path, opset: int = OPSET) -> dict[str, Path]:
    """Write encoder/predictor/joiner ONNX graphs of ``model`` (holding θ ⊙ m_l) into ``out_dir``."""
    try:
        import onnx  # noqa: F401  (the TorchScript exporter needs it)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("ONNX export needs the optional package onnx (pip install onnx onnxruntime)") from e
    out_dir = Path(out_dir)
    model = model.eval()
    examples = _example_inputs(model)
    paths = {}
    # eval-mode nn.MultiheadAttention takes a fused fast path that ONNX cannot express
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        for name, graph in graphs_of(model).items():
            paths[name] = _export_one(graph, examples[name], out_dir / f"{name}.onnx", name, opset)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return paths


def _export_one(graph: nn.Module, example: tuple, path: Path, name: str, opset: int) -> Path:
    import warnings

    inputs, outputs, axes = _SPECS[name]
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, example, buf, input_names=inputs, output_names=outputs, dynamic_axes=axes,
            opset_version=opset, dynamo=False, do_constant_folding=True,
        )
    return atomic_write_bytes(path, buf.getvalue())


def run_onnx(out_dir: str | Path, name: str, *inputs: torch.Tensor, threads: int = 1) -> list[Any]:
    """Run one exported graph in onnxruntime (CPU); returns numpy arrays."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(Path(out_dir) / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])
    feed = {i.name: t.detach().cpu().numpy() for i, t in zip(sess.get_inputs(), inputs)}
    return sess.run(None, feed)
