"""Decode with the ONNX graphs of an export (``export --onnx``) in onnxruntime, greedy or beam.

The three graphs (:mod:`asr_pathways.export.onnx_export`) become the callables the searches take:
the encoder graph gives the encoder output, the predictor graph one step of the LSTM, the joiner
graph the logits from (encoder frame, predictor output); the joiner's projections live inside its
graph, so the searches get identity projections. Needs the optional package ``onnxruntime``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr_pathways.errors import InputError

__all__ = ["OnnxTransducer", "onnx_transducer"]


class OnnxTransducer:
    """encoder / predictor / joiner sessions of one ONNX export folder (CPU, ``threads`` threads)."""

    def __init__(self, folder: str | Path, predictor_layers: int, predictor_dim: int, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise InputError("decoding ONNX graphs needs the optional package onnxruntime",
                             hint="pip install onnxruntime (or asr-pathways[onnx])") from e
        folder = Path(folder)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.sessions = {}
        for name in ("encoder", "predictor", "joiner"):
            path = folder / f"{name}.onnx"
            if not path.is_file():
                raise InputError("ONNX graph missing", path=path, expected="encoder.onnx, predictor.onnx and joiner.onnx")
            self.sessions[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.layers, self.hidden = predictor_layers, predictor_dim

    def _run(self, name: str, *inputs: np.ndarray) -> list[np.ndarray]:
        sess = self.sessions[name]
        return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), inputs)})

    def encode(self, features: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        enc, enc_lens = self._run("encoder", features.float().numpy(), lens.long().numpy())
        return torch.from_numpy(enc), torch.from_numpy(enc_lens)

    def predictor(self, tokens: torch.Tensor, state: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        n = tokens.shape[0]
        if state is None:
            zeros = np.zeros((self.layers, n, self.hidden), dtype=np.float32)
            h, c = zeros, zeros
        else:
            h, c = (s.numpy() for s in state)
        out, h2, c2 = self._run("predictor", tokens.long().numpy(), np.ascontiguousarray(h), np.ascontiguousarray(c))
        return torch.from_numpy(out)[:, None], (torch.from_numpy(h2), torch.from_numpy(c2))

    def joiner(self, enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        (logits,) = self._run("joiner", np.ascontiguousarray(enc.float().numpy()), np.ascontiguousarray(pred.float().numpy()))
        return torch.from_numpy(logits)

    @torch.no_grad()
    def decode(self, features: torch.Tensor, lens: torch.Tensor, decoding: str = "greedy", beam: int = 4) -> list[list[int]]:
        from asr_pathways.asr.beam_search import transducer_search

        enc, enc_lens = self.encode(features, lens)
        identity = lambda x: x  # noqa: E731  (the projections are inside the joiner graph)
        return transducer_search(decoding, enc, enc_lens, self.predictor, identity, self.joiner, beam=beam)


def onnx_transducer(folder: Path, meta: dict[str, Any], threads: int = 1) -> OnnxTransducer:
    """The ONNX graphs in ``folder`` as one transducer; ``meta`` is the export's model.json (its
    ``config`` gives the predictor's shape). :mod:`asr_pathways.loading` wraps it in a Decoder."""
    cfg = meta.get("config") or {}
    return OnnxTransducer(folder, int(cfg.get("predictor_layers", 1)), int(cfg.get("predictor_dim", 256)), threads)
