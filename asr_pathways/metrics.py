"""Word and character error rates with jiwer, guarded against empty references, and macro averages.

Empty references: jiwer scores an empty reference as WER 1.0 whatever the hypothesis (and older
versions raise). Here a pair whose reference is empty is not passed to jiwer: each hypothesis word
(character) is counted as an insertion, and the reference contributes 0 words (characters). The
totals are therefore exact edit counts over the whole set. If the references hold no words at all,
the rate is 0.0 without errors and ``inf`` with errors.

Text is whitespace-normalised (runs of spaces collapsed, ends stripped) before scoring; characters
include the spaces between words, as in jiwer's CER.

>>> r = error_rates(["the cat sat", "a b"], ["the cat sat down", "a c"])
>>> r["word_errors"], r["ref_words"], r["insertions"], r["substitutions"], round(r["wer"], 3)
(2, 5, 1, 1, 0.4)
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jiwer

__all__ = ["error_rates", "macro_average"]


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _rate(errors: int, total: int) -> float:
    if total == 0:
        return 0.0 if errors == 0 else math.inf
    return errors / total


def error_rates(refs: list[str], hyps: list[str]) -> dict[str, Any]:
    """WER and CER over a set of utterances, pooled (total errors / total reference length).

    Returns ``wer``, ``cer``, ``word_errors``, ``ref_words``, ``substitutions``, ``deletions``,
    ``insertions`` (word level), ``char_errors``, ``ref_chars``, ``utterances``, ``empty_refs``.

    >>> error_rates([""], ["oops"])["insertions"], error_rates([""], [""])["wer"]
    (1, 0.0)
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    refs = [_normalise(r) for r in refs]
    hyps = [_normalise(h) for h in hyps]
    scored = [i for i, r in enumerate(refs) if r]
    empty = [i for i, r in enumerate(refs) if not r]

    sub = dele = ins = ref_words = 0
    char_errors = ref_chars = 0
    if scored:
        words = jiwer.process_words([refs[i] for i in scored], [hyps[i] for i in scored])
        sub, dele, ins = words.substitutions, words.deletions, words.insertions
        ref_words = words.hits + words.substitutions + words.deletions
        chars = jiwer.process_characters([refs[i] for i in scored], [hyps[i] for i in scored])
        char_errors = chars.substitutions + chars.deletions + chars.insertions
        ref_chars = chars.hits + chars.substitutions + chars.deletions
    for i in empty:  # everything the hypothesis says is inserted
        ins += len(hyps[i].split())
        char_errors += len(hyps[i])
    word_errors = sub + dele + ins
    return {
        "wer": _rate(word_errors, ref_words),
        "cer": _rate(char_errors, ref_chars),
        "word_errors": word_errors,
        "ref_words": ref_words,
        "substitutions": sub,
        "deletions": dele,
        "insertions": ins,
        "char_errors": char_errors,
        "ref_chars": ref_chars,
        "utterances": len(refs),
        "empty_refs": len(empty),
    }


def macro_average(per_language: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Unweighted mean of WER and CER over languages, plus the pooled (micro) rates from the counts.

    >>> m = macro_average({"fr": {"wer": 0.2, "cer": 0.1, "word_errors": 2, "ref_words": 10},
    ...                    "it": {"wer": 0.4, "cer": 0.3, "word_errors": 40, "ref_words": 100}})
    >>> round(m["wer"], 3), round(m["cer"], 3), round(m["pooled_wer"], 4), m["languages"]
    (0.3, 0.2, 0.3818, ['fr', 'it'])
    """
    if not per_language:
        raise ValueError("macro_average needs at least one language")
    languages = sorted(per_language)
    result: dict[str, Any] = {
        "wer": sum(float(per_language[lang]["wer"]) for lang in languages) / len(languages),
        "languages": languages,
    }
    if all("cer" in per_language[lang] for lang in languages):
        result["cer"] = sum(float(per_language[lang]["cer"]) for lang in languages) / len(languages)
    for kind, errors_key, total_key in (("wer", "word_errors", "ref_words"), ("cer", "char_errors", "ref_chars")):
        if all(errors_key in per_language[lang] and total_key in per_language[lang] for lang in languages):
            errors = sum(int(per_language[lang][errors_key]) for lang in languages)
            total = sum(int(per_language[lang][total_key]) for lang in languages)
            result[f"pooled_{kind}"] = _rate(errors, total)
    return result
