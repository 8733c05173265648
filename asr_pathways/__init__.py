"""asr-pathways: prune a multilingual ASR model into per-language sparse pathways.

Dynamic ASR Pathways (adaptive masking, arXiv 2309.13018) and the baselines it is measured
against: IMP, lottery-ticket rewinding, language-agnostic pruning and ASR Pathways.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "transcribe"]


def __getattr__(name: str):
    """``asr_pathways.transcribe`` (see :func:`asr_pathways.transcription.transcribe`), imported on
    first use so that ``import asr_pathways`` (and ``asr-pathways --help``) stays fast."""
    if name == "transcribe":
        from .transcription import transcribe

        return transcribe
    raise AttributeError(f"module 'asr_pathways' has no attribute {name!r}")
