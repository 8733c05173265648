"""Text generator and MLS-style normalisation."""

import math
import random
from collections import Counter

import pytest

from asr_pathways.data.normalize import normalize_text
from asr_pathways.data.text import (
    MAX_WORDS, MIN_WORDS, LanguageText, SentenceGenerator, frame_words, lexicon, lexicon_frequencies, open_vocabulary_stats,
)
from asr_pathways.errors import InputError

LANGS = ["en", "fr", "it", "nl", "de", "es", "pt", "pl"]


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Hello, World!", "hello world"),
        ("It’s 2024 -- the END.", "it's the end"),
        ("L'homme «rit» 3 fois", "l'homme rit fois"),
        ("'quoted' words''", "quoted words"),
        ("Ça VA? Über straße", "ça va über straße"),
        ("1234 ... !!", ""),
        ("  many\tspaces\n here ", "many spaces here"),
    ],
)
def test_normalize(raw, expected):
    assert normalize_text(raw) == expected


@pytest.mark.parametrize("lang", LANGS)
def test_generator_vocabulary_and_shape(lang):
    gen = SentenceGenerator(lang)
    sents = [gen.sentence(f"0|{lang}|train|{i}|0") for i in range(1500)]
    vocab = Counter(w for s in sents for w in s.split())
    assert len(gen.words) == 4000  # the default lexicon
    assert len(vocab) >= 1500, f"{lang}: only {len(vocab)} distinct words"
    for s in sents[:300]:
        n = len(s.split())
        assert MIN_WORDS <= n <= MAX_WORDS, s
        assert s == normalize_text(s)
        assert not any(ch.isdigit() for ch in s)
        assert all(len(w) > 1 or w in gen_frame_words(gen) for w in s.split()), s
    # lower entropy than uniform word salad over the same lexicon
    total = sum(vocab.values())
    entropy = -sum(c / total * math.log2(c / total) for c in vocab.values())
    assert entropy < math.log2(len(gen.words)) - 1.0
    # deterministic: a sentence depends on its key only
    assert SentenceGenerator(lang).sentence(f"0|{lang}|train|7|0") == sents[7]


def test_lexicon_size_option():
    small, large = SentenceGenerator("en", 200), SentenceGenerator("en", 3000)
    assert small.words == large.words[:200]  # most frequent first, the same filter
    vocab = lambda g: {w for i in range(800) for w in g.sentence(f"0|en|train|{i}|0").split()}  # noqa: E731
    assert len(vocab(small)) < 300 < len(vocab(large))
    with pytest.raises(Exception, match="too small"):
        SentenceGenerator("en", 50)


def gen_frame_words(gen):
    return {w for f in gen.templates.frames for w in f} | {w for j in gen.templates.joiners for w in j.split()}


def test_lexicon_filters_junk():
    for lang in ["en", "fr", "pl"]:
        words = lexicon(lang)
        assert len(words) >= 3000
        for w in words:
            assert len(w) >= 2 and not any(c.isdigit() for c in w) and w == normalize_text(w), w
    assert not any(not w.isascii() for w in lexicon("en"))


def test_heldout_sentences_never_in_train():
    t = LanguageText("it", seed=3, test_n=200, dev_n=100)
    held = set(t.test) | set(t.dev)
    assert len(held) == 300
    train = {t.sentence("train", i) for i in range(3000)}
    assert not held & train


def test_real_word_weights_follow_wordfreq():
    from wordfreq import word_frequency

    gen = SentenceGenerator("it")  # the default: real weights
    assert gen.word_weights == "real"
    freqs = lexicon_frequencies("it")
    assert len(freqs) == len(gen.words) == 4000
    assert freqs[0] == pytest.approx(word_frequency(gen.words[0], "it"), rel=0.02)
    probs = gen.probabilities()
    assert sum(probs) == pytest.approx(1.0)
    for i, j in [(0, 499), (0, 1999), (10, 3999)]:
        assert probs[i] / probs[j] == pytest.approx(freqs[i] / freqs[j], rel=1e-9)
    # drawn: the most frequent slot word comes much more often than the 500th, by about their frequency ratio
    rng = random.Random(0)
    counts = Counter(gen._word(rng) for _ in range(400_000))
    ratio = freqs[0] / freqs[499]
    assert ratio > 5
    drawn = counts[gen.words[0]] / counts[gen.words[499]]
    assert drawn == pytest.approx(ratio, rel=0.25), (drawn, ratio)
    # real weights put more mass on the head than the flat 1/(rank+20)^0.7 weighting
    flat = SentenceGenerator("it", word_weights="flat").probabilities()
    assert flat[0] / flat[499] == pytest.approx((519 / 20) ** 0.7)
    assert sum(probs[:1000]) > 0.65 > 0.6 > sum(flat[:1000])


def test_word_weights_option():
    real, flat = SentenceGenerator("fr"), SentenceGenerator("fr", word_weights="flat")
    assert real.words == flat.words
    keys = [f"0|fr|train|{i}|0" for i in range(50)]
    assert [real.sentence(k) for k in keys] != [flat.sentence(k) for k in keys]
    # the frames drawn are the same (same random draws), only the slot words differ
    assert [len(real.sentence(k).split()) for k in keys] == [len(flat.sentence(k).split()) for k in keys]
    assert LanguageText("fr", 0, 5, 2, word_weights="flat").test == LanguageText("fr", 0, 5, 2, word_weights="flat").test
    assert LanguageText("fr", 0, 5, 2, word_weights="flat").test != LanguageText("fr", 0, 5, 2).test
    with pytest.raises(InputError, match="word weighting"):
        SentenceGenerator("fr", word_weights="zipf")


def test_frame_words():
    fw = frame_words("en")
    assert {"the", "and", "think", "there"} <= fw and "W" not in fw
    assert frame_words("xx") == frozenset()  # generic frames: every word is a slot word
    gen = SentenceGenerator("en")
    slots = [w for i in range(200) for w in gen.sentence(f"0|en|train|{i}|0").split() if w not in fw]
    assert slots and set(slots) <= set(gen.words)


def test_open_vocabulary_stats_by_hand():
    train = {"the": 10, "cat": 4, "sat": 5, "dog": 1}
    held = ["the cat sat", "the dog flew away", ""]
    st = open_vocabulary_stats(held, train, frames={"the", "away"})
    # tokens: the cat sat the dog flew away -> 7; unseen: flew, away -> 2/7
    # slot tokens: cat sat dog flew -> 4; unseen: flew -> 1/4; seen < 5 times: cat(4) dog(1) flew(0) -> 3/4
    assert st == {"words": 7, "unseen_word_share": round(2 / 7, 4), "slot_words": 4, "unseen_slot_share": 0.25, "rare_slot_share": 0.75}
    assert open_vocabulary_stats([], train)["unseen_word_share"] is None
