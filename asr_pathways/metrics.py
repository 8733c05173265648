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
from typing import Any, Collection, Iterable, Mapping

import jiwer

__all__ = [
    "DEGENERATE_MAX_EMPTY_SHARE", "DEGENERATE_MIN_DISTINCT_SHARE", "aligned_hits", "error_rates", "hypothesis_diversity",
    "macro_average", "unseen_word_recall",
]

# A set of hypotheses is *degenerate* (the model emits one or a few fixed strings, not transcripts) when, in any
# language or over all of them, fewer than half of the utterances have distinct hypotheses or more than half are empty. The test
# sentences of the synthetic corpus are all different (asr_pathways.data.text makes them distinct), so a working
# recogniser gives nearly one distinct hypothesis per utterance; a collapsed one (a single token, or nothing, for
# every input) gives a handful. WER comparisons between degenerate models measure nothing.
DEGENERATE_MIN_DISTINCT_SHARE = 0.5
DEGENERATE_MAX_EMPTY_SHARE = 0.5


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


def aligned_hits(ref: str, hyp: str) -> list[bool]:
    """For each word of ``ref``, whether jiwer's word alignment with ``hyp`` marks it as equal
    (recognised). An empty hypothesis recognises nothing.

    >>> aligned_hits("the cat sat down", "a cat sat")
    [False, True, True, False]
    """
    ref, hyp = _normalise(ref), _normalise(hyp)
    equal = [False] * len(ref.split())
    if ref and hyp:
        for chunk in jiwer.process_words(ref, hyp).alignments[0]:
            if chunk.type == "equal":
                for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                    equal[i] = True
    return equal


def unseen_word_recall(
    refs: list[str], hyps: list[str], train_vocab: Collection[str], frame_words: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """Recall (share of reference words aligned as equal, :func:`aligned_hits`) by word class.

    Classes of reference word tokens: all (``words``, ``recall``), ``frame`` (in ``frame_words``: the
    closed-class words of the text generator's sentence frames), ``slot`` (the others: content
    words), ``unseen`` (not in ``train_vocab``, the training text's words) and ``unseen_slot``.
    Returns ``{class}_words`` (count) and ``{class}_recall`` (``nan`` for an empty class) for each,
    plus ``unseen_share`` and ``unseen_slot_share`` (share of all / of slot tokens never seen in
    training). Recall on unseen words is the model's open-vocabulary ability: spelling words it
    never heard from their sound.

    >>> r = unseen_word_recall(["the cat sat on the mat"], ["the cat sat on a mat"], {"the", "cat", "on"}, {"the", "on"})
    >>> r["recall"], r["slot_recall"], r["unseen_words"], r["unseen_recall"], r["unseen_share"]
    (0.8333333333333334, 1.0, 2, 1.0, 0.3333333333333333)
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    classes = ("all", "frame", "slot", "unseen", "unseen_slot")
    hit = dict.fromkeys(classes, 0)
    total = dict.fromkeys(classes, 0)
    for ref, hyp in zip(refs, hyps):
        for w, ok in zip(_normalise(ref).split(), aligned_hits(ref, hyp)):
            unseen = w not in train_vocab
            kinds = ["all", "frame" if w in frame_words else "slot"]
            if unseen:
                kinds += ["unseen"] + (["unseen_slot"] if kinds[1] == "slot" else [])
            for k in kinds:
                total[k] += 1
                hit[k] += int(ok)
    out: dict[str, Any] = {}
    for k in classes:
        name = "" if k == "all" else f"{k}_"
        out[f"{name}words"] = total[k]
        out[f"{name}recall"] = hit[k] / total[k] if total[k] else math.nan
    out["unseen_share"] = total["unseen"] / total["all"] if total["all"] else math.nan
    out["unseen_slot_share"] = total["unseen_slot"] / total["slot"] if total["slot"] else math.nan
    return out


def _diversity_counts(refs: list[str], hyps: list[str]) -> dict[str, Any]:
    n = len(hyps)
    distinct = len(set(hyps))
    empty = sum(1 for h in hyps if not h)
    top, top_n = ("", 0)
    if hyps:
        counts: dict[str, int] = {}
        for h in hyps:
            counts[h] = counts.get(h, 0) + 1
        top, top_n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    out: dict[str, Any] = {
        "utterances": n,
        "distinct": distinct,
        "distinct_share": distinct / n if n else math.nan,
        "empty": empty,
        "empty_share": empty / n if n else math.nan,
        "most_common": top,
        "most_common_share": top_n / n if n else math.nan,
    }
    if refs:
        out["ref_distinct_share"] = len(set(refs)) / len(refs)
    out["degenerate"] = bool(n) and (out["distinct_share"] < DEGENERATE_MIN_DISTINCT_SHARE
                                     or out["empty_share"] > DEGENERATE_MAX_EMPTY_SHARE)
    return out


def hypothesis_diversity(rows: Iterable[Mapping[str, Any]], languages: Collection[str] | None = None) -> dict[str, Any]:
    """How varied a model's hypotheses are: the share of distinct and of empty hypotheses, overall and per language.

    ``rows`` are ``{"language", "hyp"}`` mappings (optionally ``"ref"``), e.g. the lines of ``hyps_<split>.jsonl``;
    ``languages`` keeps only those languages. Hypotheses are whitespace-normalised before comparing.
    Returns, overall and under ``per_language[lang]``: ``utterances``, ``distinct`` (distinct hypothesis strings),
    ``distinct_share`` (distinct / utterances), ``empty``, ``empty_share``, ``most_common`` (the most frequent
    hypothesis) and ``most_common_share``, ``ref_distinct_share`` (the same share for the references, when given) and
    ``degenerate`` (:data:`DEGENERATE_MIN_DISTINCT_SHARE`, :data:`DEGENERATE_MAX_EMPTY_SHARE`). The overall
    ``degenerate`` is true when the pooled hypotheses or any language's are degenerate; ``worst_language`` is the language with the lowest
    distinct share (``None`` without utterances).

    >>> rows = [{"language": "fr", "hyp": "è"}] * 3 + [{"language": "fr", "hyp": "le chat"},
    ...         {"language": "it", "hyp": "il gatto"}, {"language": "it", "hyp": ""}]
    >>> d = hypothesis_diversity(rows)
    >>> d["distinct"], round(d["distinct_share"], 3), d["per_language"]["fr"]["distinct_share"], d["degenerate"]
    (4, 0.667, 0.5, False)
    >>> d = hypothesis_diversity(rows + [{"language": "fr", "hyp": "è"}])
    >>> d["per_language"]["fr"]["distinct_share"], d["degenerate"], d["worst_language"], d["most_common"]
    (0.4, True, 'fr', 'è')
    """
    keep = None if languages is None else set(languages)
    by_lang: dict[str, tuple[list[str], list[str]]] = {}
    with_refs = True
    for r in rows:
        lang = str(r["language"])
        if keep is not None and lang not in keep:
            continue
        refs, hyps = by_lang.setdefault(lang, ([], []))
        hyps.append(_normalise(str(r.get("hyp") or "")))
        if "ref" in r:
            refs.append(_normalise(str(r["ref"] or "")))
        else:
            with_refs = False
    all_refs = [x for lang in sorted(by_lang) for x in by_lang[lang][0]] if with_refs else []
    all_hyps = [x for lang in sorted(by_lang) for x in by_lang[lang][1]]
    out = _diversity_counts(all_refs, all_hyps)
    out["per_language"] = {lang: _diversity_counts(refs if with_refs else [], hyps) for lang, (refs, hyps) in sorted(by_lang.items())}
    out["degenerate"] = out["degenerate"] or any(v["degenerate"] for v in out["per_language"].values())
    out["worst_language"] = min(out["per_language"], key=lambda l: out["per_language"][l]["distinct_share"]) if by_lang else None
    return out
