"""MLS-style transcript normalisation: lower case, letters and apostrophes only, no digits.

>>> normalize_text("Hello, World! It’s 2024 -- the END.")
"hello world it's the end"
>>> normalize_text("L'homme (qui) «rit»")
"l'homme qui rit"
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = "\u2019\u2018\u02bc\u0060\u00b4"
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower-case ``text``, keep letters (with their combining marks) and inner apostrophes.

    Every other character (punctuation, digits, symbols) becomes a word break; apostrophes at the
    start or end of a word are dropped; runs of spaces collapse to one.
    """
    text = unicodedata.normalize("NFC", text).lower()
    for a in _APOSTROPHES:
        text = text.replace(a, "'")
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] == "L" or cat[0] == "M" or ch == "'":
            out.append(ch)
        else:
            out.append(" ")
    words = []
    for w in "".join(out).split():
        w = w.strip("'")
        w = re.sub("'{2,}", "'", w)
        if w:
            words.append(w)
    return " ".join(words)


def words(text: str) -> list[str]:
    """Words of an already normalised transcript."""
    return text.split()
