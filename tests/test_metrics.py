"""WER/CER against hand-computed examples, the empty-reference guard and macro averages."""

from __future__ import annotations

import math

import pytest

from asr_pathways.metrics import aligned_hits, error_rates, hypothesis_diversity, macro_average, unseen_word_recall


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


def test_unseen_word_recall_by_hand():
    train_vocab = {"the", "cat", "sat", "on", "mat", "a"}
    frames = {"the", "on", "a"}
    refs = ["the cat sat on the zebra", "a quokka ran", "the mat", ""]
    hyps = ["the cat sit on the zebra", "a kwoka ran", "", "noise"]
    # alignment: utt 1 hits the cat on the zebra (sat -> sit substituted); utt 2 hits a, ran; utt 3 nothing
    assert aligned_hits(refs[0], hyps[0]) == [True, True, False, True, True, True]
    assert aligned_hits(refs[1], hyps[1]) == [True, False, True]
    assert aligned_hits(refs[2], hyps[2]) == [False, False]
    r = unseen_word_recall(refs, hyps, train_vocab, frames)
    # reference tokens: 11; hits 5 + 2 + 0 = 7
    assert (r["words"], r["recall"]) == (11, 7 / 11)
    # frame: the the on | a | the -> 5 tokens, hits the the on a = 4
    assert (r["frame_words"], r["frame_recall"]) == (5, 4 / 5)
    # slot: cat sat zebra | quokka ran | mat -> 6 tokens, hits cat zebra ran = 3
    assert (r["slot_words"], r["slot_recall"]) == (6, 3 / 6)
    # unseen (not in train_vocab): zebra, quokka, ran -> 3 tokens, hits zebra ran = 2 (all of them slot words)
    assert (r["unseen_words"], r["unseen_recall"], r["unseen_share"]) == (3, 2 / 3, 3 / 11)
    assert (r["unseen_slot_words"], r["unseen_slot_recall"], r["unseen_slot_share"]) == (3, 2 / 3, 3 / 6)
    # nothing unseen: nan recall, zero share
    r = unseen_word_recall(["the cat"], ["the cat"], train_vocab)
    assert r["unseen_words"] == 0 and math.isnan(r["unseen_recall"]) and r["unseen_share"] == 0.0 and r["recall"] == 1.0
    with pytest.raises(ValueError):
        unseen_word_recall(["a"], [], train_vocab)


def test_hypothesis_diversity_by_hand():
    fr = [("le chat dort", "è"), ("le chien court", "è"), ("la vache mange", "è"), ("un oiseau chante", "un oiseau chante"),
          ("le loup hurle", "")]
    it = [("il gatto dorme", "il gatto dorme"), ("il cane corre", "il  cane corre "), ("la mucca mangia", "la mucca")]
    rows = [{"id": f"fr{i}", "language": "fr", "ref": r, "hyp": h} for i, (r, h) in enumerate(fr)]
    rows += [{"id": f"it{i}", "language": "it", "ref": r, "hyp": h} for i, (r, h) in enumerate(it)]
    d = hypothesis_diversity(rows)
    # fr: è, "un oiseau chante", "" -> 3 distinct of 5, 1 empty; it: 3 distinct of 3 (whitespace normalised)
    f, i = d["per_language"]["fr"], d["per_language"]["it"]
    assert (f["utterances"], f["distinct"], f["empty"]) == (5, 3, 1)
    assert f["distinct_share"] == pytest.approx(0.6) and f["empty_share"] == pytest.approx(0.2)
    assert (f["most_common"], f["most_common_share"]) == ("è", pytest.approx(0.6))
    assert f["ref_distinct_share"] == 1.0 and not f["degenerate"]
    assert (i["distinct"], i["distinct_share"], i["empty"]) == (3, 1.0, 0)
    assert (d["utterances"], d["distinct"], d["empty"]) == (8, 6, 1)
    assert d["distinct_share"] == pytest.approx(6 / 8) and d["empty_share"] == pytest.approx(1 / 8)
    assert not d["degenerate"] and d["worst_language"] == "fr"
    # one more "è" in fr: 3 distinct of 6 = 50% is still not below the threshold; two more: 3 of 7 is
    more = [{"id": f"x{k}", "language": "fr", "ref": f"phrase {k}", "hyp": "è"} for k in range(2)]
    assert not hypothesis_diversity(rows + more[:1])["per_language"]["fr"]["degenerate"]
    d = hypothesis_diversity(rows + more)
    assert d["per_language"]["fr"]["degenerate"] and not d["per_language"]["it"]["degenerate"]
    assert d["degenerate"]  # any degenerate language makes the run degenerate
    assert d["distinct_share"] == pytest.approx(6 / 10)  # though overall 60% are distinct
    # restricted to it: not degenerate
    assert not hypothesis_diversity(rows + more, languages=["it"])["degenerate"]
    # mostly empty: degenerate by the empty share
    empty = [{"language": "nl", "hyp": ""}] * 3 + [{"language": "nl", "hyp": "een"}, {"language": "nl", "hyp": "twee"}]
    e = hypothesis_diversity(empty)
    assert e["empty_share"] == pytest.approx(0.6) and e["degenerate"] and "ref_distinct_share" not in e
    assert hypothesis_diversity([])["utterances"] == 0 and not hypothesis_diversity([])["degenerate"]
    # the same two hypotheses in every language: no language is degenerate, the pooled hypotheses are (2 of 6)
    same = [{"language": l, "hyp": h} for l in ("en", "fr", "it") for h in ("a", "b")]
    s = hypothesis_diversity(same)
    assert not any(v["degenerate"] for v in s["per_language"].values())
    assert s["distinct_share"] == pytest.approx(1 / 3) and s["degenerate"]
