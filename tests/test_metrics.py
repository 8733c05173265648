"""WER/CER against hand-computed examples, the empty-reference guard and macro averages."""

from __future__ import annotations

import math

import pytest

from asr_pathways.metrics import error_rates, macro_average


def test_hand_computed_word_and_character_errors():
    # "the cat sat on the mat" -> "the bat sat on mat": 1 substitution (cat/bat), 1 deletion (the)
    r = error_rates(["the cat sat on the mat"], ["the bat sat on mat"])
    assert (r["substitutions"], r["deletions"], r["insertions"]) == (1, 1, 0)
    assert r["ref_words"] == 6 and r["word_errors"] == 2
    assert r["wer"] == pytest.approx(2 / 6)
    # characters: c->b (1) and "the " deleted (4) over 22 characters
    assert r["ref_chars"] == 22 and r["char_errors"] == 5
    assert r["cer"] == pytest.approx(5 / 22)


def test_pooled_over_utterances_and_whitespace_normalised():
    r = error_rates(["a b c", "d e"], ["a  b c ", "d x e"])
    assert r["word_errors"] == 1 and r["insertions"] == 1 and r["ref_words"] == 5
    assert r["wer"] == pytest.approx(0.2)
    assert r["utterances"] == 2


def test_empty_hypothesis_is_all_deletions():
    r = error_rates(["one two three"], [""])
    assert r["deletions"] == 3 and r["wer"] == 1.0
    assert r["char_errors"] == 13 and r["cer"] == 1.0


def test_empty_reference_counts_insertions_instead_of_jiwer_one():
    r = error_rates(["hello world", ""], ["hello world", "extra words here"])
    assert r["empty_refs"] == 1
    assert r["insertions"] == 3 and r["ref_words"] == 2
    assert r["wer"] == pytest.approx(1.5)
    assert r["char_errors"] == len("extra words here")
    assert error_rates([""], [""])["wer"] == 0.0
    assert math.isinf(error_rates(["  "], ["x"])["wer"])


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        error_rates(["a"], [])


def test_macro_average_is_unweighted_and_pooled_is_weighted():
    per = {
        "en": error_rates(["a b c d"], ["a b c x"]),  # 1/4
        "fr": error_rates(["a b"], ["a b"]),  # 0/2
    }
    m = macro_average(per)
    assert m["wer"] == pytest.approx(0.125)
    assert m["pooled_wer"] == pytest.approx(1 / 6)
    assert m["languages"] == ["en", "fr"]
    assert "cer" in m and "pooled_cer" in m
    with pytest.raises(ValueError):
        macro_average({})
