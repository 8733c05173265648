"""The decoding searches by name, their defaults and labels (no torch import: command-line options use it).

The searches themselves are in :mod:`asr_pathways.asr.beam_search` and :mod:`asr_pathways.asr.decode`.

>>> decoding_label("beam", 8)
'beam 8, up to 5 labels per frame'
>>> decoding_label("greedy", 8)
'greedy'
>>> decoding_tag("modified_beam", 4)
'_modified_beam4'
"""

from __future__ import annotations

__all__ = ["DECODINGS", "DEFAULT_BEAM", "DECODING_HELP", "decoding_label", "decoding_tag"]

DECODINGS = ("greedy", "beam", "modified_beam")
DEFAULT_BEAM = 4
DECODING_HELP = ("greedy search; beam: beam search with up to 5 labels per frame (the transducer's own lattice); "
                 "modified_beam: one label per frame, as icefall")


def decoding_label(decoding: str, beam: int) -> str:
    """How a result was decoded, as results record it. Results written before 2026-12-03 that say
    "beam 4" were decoded with one label per frame (today's modified_beam)."""
    if decoding == "greedy":
        return decoding
    return f"{decoding} {beam}, " + ("up to 5 labels per frame" if decoding == "beam" else "one label per frame")


def decoding_tag(decoding: str, beam: int) -> str:
    """The suffix of the result files a search other than greedy writes beside a model: ``_beam4``."""
    return "" if decoding == "greedy" else f"_{decoding}{beam}"
