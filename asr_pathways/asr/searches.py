"""The decoding searches by name, their defaults and labels (no torch import: command-line options use it).

The searches themselves are in :mod:`asr_pathways.asr.beam_search` and :mod:`asr_pathways.asr.decode`.

>>> decoding_label("beam", 8)
'beam 8'
>>> decoding_label("greedy", 8)
'greedy'
"""

from __future__ import annotations

__all__ = ["DECODINGS", "DEFAULT_BEAM", "DECODING_HELP", "decoding_label"]

DECODINGS = ("greedy", "beam", "modified_beam")
DEFAULT_BEAM = 4
DECODING_HELP = ("greedy search; beam: beam search with up to 5 labels per frame (the transducer's own lattice); "
                 "modified_beam: one label per frame, as icefall")


def decoding_label(decoding: str, beam: int) -> str:
    """"greedy", "beam 4" or "modified_beam 4": how a result was decoded."""
    return decoding if decoding == "greedy" else f"{decoding} {beam}"
