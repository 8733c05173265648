"""Text generator and MLS-style normalisation."""

import math
from collections import Counter

import pytest

from asr_pathways.data.normalize import normalize_text
from asr_pathways.data.text import MAX_WORDS, MIN_WORDS, LanguageText, SentenceGenerator, lexicon

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
