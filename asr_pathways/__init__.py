"""asr-pathways: prune a multilingual ASR model into per-language sparse pathways.

Dynamic ASR Pathways (adaptive masking, arXiv 2309.13018) and the baselines it is measured
against: IMP, lottery-ticket rewinding, language-agnostic pruning and ASR Pathways.
"""

import os as _os

__version__ = "0.1.0"

# oneDNN (PyTorch's CPU kernels) compiles a kernel per operation and shape and keeps 1,024 of them by
# default. A training run's batches come in a few hundred shapes per epoch (duration buckets), each with
# ~15-30 kernels, so the default cache thrashes: 28.7 kernel compilations and ~15-20 ms per step of the
# `small` recipe, against 7.1 and ~3 ms with 16,384 (after 400 steps; BENCHMARKS.md "Training throughput").
# Read by oneDNN at its first kernel, so set here, before any tensor work; a value already set wins.
# The cost is memory: ~0.65 GB more resident in that measurement.
ONEDNN_PRIMITIVE_CACHE_CAPACITY = "16384"
_os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_PRIMITIVE_CACHE_CAPACITY)

__all__ = ["__version__", "transcribe"]


def __getattr__(name: str):
    """``asr_pathways.transcribe`` (see :func:`asr_pathways.transcription.transcribe`), imported on
    first use so that ``import asr_pathways`` (and ``asr-pathways --help``) stays fast."""
    if name == "transcribe":
        from .transcription import transcribe

        return transcribe
    raise AttributeError(f"module 'asr_pathways' has no attribute {name!r}")
