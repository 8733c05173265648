"""asr-pathways: prune a multilingual ASR model into per-language sparse pathways.

Dynamic ASR Pathways (adaptive masking, arXiv 2309.13018) and the baselines it is measured
against: IMP, lottery-ticket rewinding, language-agnostic pruning and ASR Pathways.
"""

import os as _os

__version__ = "0.1.0"

# oneDNN (PyTorch's CPU kernels) compiles a kernel per operation and shape and keeps 1,024 of them by
# default. An epoch of the `small` recipe's batches has ~1,070 distinct shapes (174 batch x frames pairs), and
# a step uses ~250 kernels, so the default cache thrashes: 28.7 kernel compilations and ~15-20 ms per step,
# against 7.1 and ~3 ms with 16,384 (`python benchmarks/kernel_cache.py`; BENCHMARKS.md). oneDNN reads the
# value at its first kernel, so it is set here, before any tensor work, unless the user set it (either
# spelling). The cost is memory: >= 0.65 GB more resident at step 500 of that measurement. The variable is
# inherited by child processes.
ONEDNN_PRIMITIVE_CACHE_CAPACITY = "16384"
if "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in _os.environ and "DNNL_PRIMITIVE_CACHE_CAPACITY" not in _os.environ:
    _os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = ONEDNN_PRIMITIVE_CACHE_CAPACITY
    _os.environ["_ASR_PATHWAYS_SET_ONEDNN_CACHE"] = ONEDNN_PRIMITIVE_CACHE_CAPACITY  # machine records say who set it

__all__ = ["__version__", "transcribe"]


def __getattr__(name: str):
    """``asr_pathways.transcribe`` (see :func:`asr_pathways.transcription.transcribe`), imported on
    first use so that ``import asr_pathways`` (and ``asr-pathways --help``) stays fast."""
    if name == "transcribe":
        from .transcription import transcribe

        return transcribe
    raise AttributeError(f"module 'asr_pathways' has no attribute {name!r}")
