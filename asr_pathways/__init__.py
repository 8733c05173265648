"""asr-pathways: prune a multilingual ASR model into per-language sparse pathways.

Dynamic ASR Pathways (adaptive masking, arXiv 2309.13018) and the baselines it is measured
against: IMP, lottery-ticket rewinding, language-agnostic pruning and ASR Pathways.
"""

__version__ = "0.1.0"
