"""What is prunable in the built-in RNN-T model: the engine's defaults, less the speech-specific parts.

The mask engine (:mod:`asr_pathways.sparsity.select`) knows nothing about speech: by default it
prunes the weight matrices of any model (Linear, attention and LSTM weights), not biases, norms or
embeddings. This model adds what docs/method.md leaves out: the convolutional front-end
(``*subsampling*``), the auxiliary CTC head (``ctc_head*``) and the pruned RNN-T loss's trivial
joiner (``simple_*``, used in training only).

>>> from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset
>>> names = list(prunable_parameters(RNNTModel(ModelConfig.from_dict(load_preset("tiny")["model"]), 16)))
>>> sorted({n.split(".")[0] for n in names})
['encoder', 'joiner', 'predictor']
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..sparsity.select import DEFAULT_EXCLUDE, DEFAULT_INCLUDE
from ..sparsity.select import prunable_parameters as engine_prunable_parameters

PRUNABLE_INCLUDE: tuple[str, ...] = DEFAULT_INCLUDE
PRUNABLE_EXCLUDE: tuple[str, ...] = DEFAULT_EXCLUDE + (
    "*subsampling*",  # convolutional front-end
    "ctc_head*",  # auxiliary CTC output layer (not encoder / predictor / joiner)
    "simple_*",  # the pruned RNN-T loss's trivial joiner (training only, never decoded with)
)


def prunable_parameters(model: nn.Module, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
                        shapes: str = "matrix") -> dict[str, nn.Parameter]:
    """The prunable weights of the built-in model (``include``/``exclude`` replace the defaults)."""
    return engine_prunable_parameters(model, PRUNABLE_INCLUDE if include is None else include,
                                      PRUNABLE_EXCLUDE if exclude is None else exclude, shapes)
