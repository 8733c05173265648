"""Seeded sentence generators: hand-written per-language frames filled with lexicon words.

A sentence is one frame (a short clause of closed-class words with ``W`` slots), optionally joined
to a second frame by a conjunction, with every slot filled by a content word drawn from a lexicon
(wordfreq's top words for the language, filtered of junk; 4,000 words per language by default,
``lexicon_size``; ``asr-pathways corpus synth --lexicon-size``).

Slot words are drawn with their real relative frequencies (``word_weights="real"``, the default):
each lexicon word is weighted by wordfreq's frequency for it, so the text has the head and the long
tail real text has (in the 4,000-word lexicons the 1,000 most frequent words take 68-72% of the slot
draws; in real text the 1,000 most frequent words cover ~70% of running words).
``word_weights="flat"`` is the weighting of older corpora, 1/(rank+20)^0.7: a lighter head (58% of
draws from the top 1,000) and a flatter tail. docs/corpus.md has the measurements: how many test
words each setting leaves unseen in training. The frames keep the entropy far below uniform word
salad, so a small model can learn it.

Every draw comes from ``random.Random(key)`` with a string key, so a sentence depends only on its
key (seed, language, split, index), never on the order in which sentences are made.

:func:`frame_words` gives the closed-class words of a language's frames (every other word of a
generated sentence is a *slot* word) and :func:`open_vocabulary_stats` measures how many held-out
words (and slot words) were never, or rarely, seen in the training text; the corpus card reports it.
"""

from __future__ import annotations

import bisect
import functools
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Collection, Iterable, Mapping

import yaml

from ..errors import InputError
from .normalize import normalize_text

MIN_WORDS = 5
MAX_WORDS = 20

# Letters a word may use, per language (besides a-z); words with other letters are dropped as
# foreign tokens. Languages not listed accept any alphabetic characters.
_EXTRA_LETTERS = {
    "en": "",
    "fr": "àâæçéèêëîïôœùûüÿ",
    "it": "àèéìíîòóùú",
    "nl": "áéíóúàèëïöü",
    "de": "äöüß",
    "es": "áéíóúüñ",
    "pt": "áâãàçéêíóôõú",
    "pl": "ąćęłńóśźż",
}
_APOSTROPHE_LANGS = {"en", "fr", "it"}
_VOWELS = set("aeiouyàâæéèêëîïôœùûüÿáíóúìòäöãõąęåø")

_JUNK = {"haha", "hehe", "hihi", "lol", "xd", "ok", "okay", "http", "https", "www", "com", "html"}
_SKIP_TOP = 60

WORD_WEIGHTS = ("real", "flat")  # how slot words are weighted: wordfreq's frequencies, or 1/(rank+20)^0.7
RARE_COUNT = 5  # a held-out word seen fewer than this many times in training is "rare" (corpus card)

_GENERIC_FRAMES = ["W W W W W", "W W W W W W", "W W W W W W W", "W W W W W W W W"]


@dataclass(frozen=True)
class Templates:
    """Frames (``W`` marks a slot) and joining words of one language."""

    frames: tuple[tuple[str, ...], ...]
    joiners: tuple[str, ...]


def load_templates(lang: str) -> Templates:
    """The frames written for ``lang`` (asr_pathways/data/templates/LANG.yaml) or generic ones."""
    base = lang.split("-")[0]
    try:
        raw = resources.files("asr_pathways.data").joinpath("templates").joinpath(f"{base}.yaml").read_text("utf-8")
        data = yaml.safe_load(raw)
        frames = tuple(tuple(f.split()) for f in data["frames"])
        joiners = tuple(data.get("joiners", []))
    except FileNotFoundError:
        frames = tuple(tuple(f.split()) for f in _GENERIC_FRAMES)
        joiners = ()
    return Templates(frames=frames, joiners=joiners)


@functools.lru_cache(maxsize=64)
def frame_words(lang: str) -> frozenset[str]:
    """The closed-class words of ``lang``'s frames and joiners; every other word of a generated
    sentence is a *slot* (lexicon) word. A lexicon word that also occurs in a frame counts as a
    frame word (an approximation). Languages without frames (generic ``W W W...``) have none."""
    t = load_templates(lang)
    return frozenset({w for f in t.frames for w in f if w != "W"} | {w for j in t.joiners for w in j.split()})


def _is_good_word(w: str, lang: str) -> bool:
    base = lang.split("-")[0]
    if len(w) < 2 or any(ch.isdigit() for ch in w) or w != normalize_text(w) or " " in w:
        return False
    if "'" in w and base not in _APOSTROPHE_LANGS:
        return False
    if base in _EXTRA_LETTERS:
        allowed = set("abcdefghijklmnopqrstuvwxyz'") | set(_EXTRA_LETTERS[base])
        if not set(w) <= allowed:
            return False
    elif not all(ch == "'" or unicodedata.category(ch)[0] in "LM" for ch in w):
        return False
    if base in _EXTRA_LETTERS and not (set(w) & _VOWELS):
        return False  # abbreviations such as "mr", "tv", "nhs"
    if len(set(w.replace("'", ""))) == 1:
        return False  # "aa", "ww"
    return True


@functools.lru_cache(maxsize=32)
def lexicon(lang: str, size: int = 4000) -> tuple[str, ...]:
    """Up to ``size`` frequent words of ``lang`` from wordfreq, most frequent first, filtered.

    Dropped: the 60 most frequent words (function words; the frames hold those), tokens with digits or non-letters, single letters, words without a vowel
    (abbreviations), words with letters foreign to the language, and (for languages other than
    English) English words that are more frequent in English than in ``lang``.
    """
    from wordfreq import available_languages, top_n_list, zipf_frequency

    base = lang.split("-")[0]
    if base not in available_languages():
        raise InputError(
            f"no word list for language {lang!r}",
            field="languages",
            expected="a language with a wordfreq list, or a text file LANG.txt given with --text-dir",
        )
    out: list[str] = []
    skipped_function_words = 0
    for w in top_n_list(base, size * 3):
        if not _is_good_word(w, base) or w in _JUNK:
            continue
        if skipped_function_words < _SKIP_TOP:
            skipped_function_words += 1  # the most frequent words are function words: frames hold those
            continue
        if base != "en" and zipf_frequency(w, "en") > zipf_frequency(w, base) + 0.5:
            continue
        out.append(w)
        if len(out) >= size:
            break
    return tuple(out)


@functools.lru_cache(maxsize=32)
def lexicon_frequencies(lang: str, size: int = 4000) -> tuple[float, ...]:
    """wordfreq's frequency (share of running words in the language) of each word of
    ``lexicon(lang, size)``, in the same order."""
    from wordfreq import get_frequency_dict, word_frequency

    base = lang.split("-")[0]
    freqs = get_frequency_dict(base)  # the list top_n_list ranks ("best")
    return tuple(float(freqs.get(w) or word_frequency(w, base)) for w in lexicon(lang, size))


def check_word_weights(word_weights: str) -> str:
    if word_weights not in WORD_WEIGHTS:
        raise InputError(f"unknown word weighting {word_weights!r}", field="word_weights", expected=" or ".join(WORD_WEIGHTS))
    return word_weights


class SentenceGenerator:
    """Deterministic sentences for one language: ``sentence(key)`` depends on ``key`` only.

    ``word_weights``: ``"real"`` draws each slot word with its wordfreq frequency (relative to the
    other lexicon words); ``"flat"`` with weight 1/(rank + zipf_offset)^zipf_exponent (the weighting
    before real frequencies became the default). The random draws are the same either way; only
    the word a draw maps to differs.
    """

    def __init__(
        self, lang: str, lexicon_size: int = 4000, word_weights: str = "real", zipf_exponent: float = 0.7, zipf_offset: float = 20.0,
    ) -> None:
        self.lang = lang
        self.templates = load_templates(lang)
        check_word_weights(word_weights)
        self.word_weights = word_weights
        if lexicon_size < 100:
            raise InputError(f"lexicon size {lexicon_size} is too small", field="lexicon_size", expected="at least 100 words")
        self.words = lexicon(lang, lexicon_size)
        if len(self.words) < 100:
            raise InputError(f"word list for {lang!r} too small ({len(self.words)} words)", field="languages")
        if word_weights == "real":
            weights = list(lexicon_frequencies(lang, lexicon_size))
        else:
            weights = [1.0 / (r + zipf_offset) ** zipf_exponent for r in range(len(self.words))]
        self._cum: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            self._cum.append(total)

    def probabilities(self) -> list[float]:
        """The probability of each lexicon word (``self.words`` order) being drawn for a slot."""
        prev, out = 0.0, []
        for c in self._cum:
            out.append((c - prev) / self._cum[-1])
            prev = c
        return out

    def _word(self, rng: random.Random) -> str:
        return self.words[bisect.bisect_right(self._cum, rng.random() * self._cum[-1])]

    def _fill(self, frame: tuple[str, ...], rng: random.Random) -> list[str]:
        return [self._word(rng) if t == "W" else t for t in frame]

    def sentence(self, key: str) -> str:
        """One normalised sentence of MIN_WORDS..MAX_WORDS words, a function of ``key`` alone."""
        rng = random.Random(key)
        t = self.templates
        words = self._fill(rng.choice(t.frames), rng)
        while len(words) < MIN_WORDS or (t.joiners and len(words) < 12 and rng.random() < 0.35):
            nxt = self._fill(rng.choice(t.frames), rng)
            join = rng.choice(t.joiners).split() if t.joiners else []
            if len(words) + len(join) + len(nxt) > MAX_WORDS:
                if len(words) >= MIN_WORDS:
                    break
                nxt = nxt[: MAX_WORDS - len(words) - len(join)]
            words += join + nxt
        return normalize_text(" ".join(words[:MAX_WORDS]))


def read_user_text(path: Path, skip_bad: bool = False, bad: list | None = None) -> list[str]:
    """Normalised, de-duplicated lines of a user text file (one sentence per line), in file order.

    A line that normalises to nothing is an :class:`InputError` (or, with ``skip_bad``, recorded in
    ``bad`` and skipped). Blank lines are ignored.
    """
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read text file ({e})", path=path, expected="a UTF-8 text file, one sentence per line") from None
    seen: set[str] = set()
    out: list[str] = []
    for i, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        t = normalize_text(line)
        if not t:
            err = InputError("sentence has no letters after normalisation", path=path, line=i, expected="a sentence with words")
            if not skip_bad:
                raise err
            if bad is not None:
                bad.append({"path": str(path), "line": i, "reason": str(err)})
            continue
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


class LanguageText:
    """The sentences of one language for train, dev and test, with no held-out sentence in train.

    Dev and test are made first (``test_n`` and ``dev_n`` distinct sentences); a training sentence
    that equals a held-out one (after normalisation) is redrawn with the next attempt number.
    With ``user_lines`` the lines are shuffled from the seed: test first, then dev, the rest is
    train (cycled when more training sentences are needed than lines).
    """

    def __init__(
        self, lang: str, seed: int, test_n: int, dev_n: int, user_lines: list[str] | None = None,
        user_path: str | None = None, lexicon_size: int = 4000, word_weights: str = "real",
    ) -> None:
        self.lang, self.seed = lang, seed
        self.user_lines = user_lines
        if user_lines is not None:
            lines = list(user_lines)
            random.Random(f"{seed}|{lang}|user-text").shuffle(lines)
            if len(lines) < test_n + dev_n + 1:
                raise InputError(
                    f"only {len(lines)} distinct sentences",
                    path=user_path,
                    expected=f"at least {test_n + dev_n + 1} (test {test_n} + dev {dev_n} + 1 for train)",
                )
            self.test = lines[:test_n]
            self.dev = lines[test_n : test_n + dev_n]
            self._train = lines[test_n + dev_n :]
            self.gen = None
        else:
            self.gen = SentenceGenerator(lang, lexicon_size, word_weights)
            held: set[str] = set()
            self.test = self._distinct("test", test_n, held)
            self.dev = self._distinct("dev", dev_n, held)
            self._held = held

    def _distinct(self, split: str, n: int, held: set[str]) -> list[str]:
        out = []
        for i in range(n):
            for attempt in range(1000):
                s = self.gen.sentence(f"{self.seed}|{self.lang}|{split}|{i}|{attempt}")
                if s not in held:
                    break
            held.add(s)
            out.append(s)
        return out

    def sentence(self, split: str, index: int) -> str:
        """Sentence ``index`` of ``split``."""
        if split == "test":
            return self.test[index]
        if split == "dev":
            return self.dev[index]
        if self.gen is None:
            return self._train[index % len(self._train)]
        for attempt in range(1000):
            s = self.gen.sentence(f"{self.seed}|{self.lang}|train|{index}|{attempt}")
            if s not in self._held:
                return s
        raise RuntimeError("could not draw a training sentence distinct from dev/test")


def word_counts(texts: Iterable[str]) -> Counter:
    """How often each whitespace-separated word occurs in ``texts``."""
    return Counter(w for t in texts for w in t.split())


def open_vocabulary_stats(
    held_texts: Iterable[str], train_counts: Mapping[str, int], frames: Collection[str] = frozenset(), rare_count: int = RARE_COUNT,
) -> dict[str, float | int | None]:
    """How open the vocabulary of held-out text is, given the training text's word counts.

    Over the word tokens of ``held_texts``: ``words`` (count), ``unseen_word_share`` (share never
    seen in training), ``slot_words`` (count of tokens that are not in ``frames``, the closed-class
    frame words), ``unseen_slot_share`` (share of slot tokens never seen in training) and
    ``rare_slot_share`` (share of slot tokens seen fewer than ``rare_count`` times, unseen included).
    Shares are ``None`` when there is nothing to count.

    >>> st = open_vocabulary_stats(["the cat sat", "the dog"], {"the": 9, "cat": 2}, frames={"the"})
    >>> st["words"], st["unseen_word_share"], st["slot_words"], st["unseen_slot_share"], st["rare_slot_share"]
    (5, 0.4, 3, 0.6667, 1.0)
    """
    words = unseen = slots = unseen_slots = rare_slots = 0
    for t in held_texts:
        for w in t.split():
            n = train_counts.get(w, 0)
            words += 1
            unseen += n == 0
            if w not in frames:
                slots += 1
                unseen_slots += n == 0
                rare_slots += n < rare_count
    share = lambda a, b: round(a / b, 4) if b else None  # noqa: E731
    return {
        "words": words,
        "unseen_word_share": share(unseen, words),
        "slot_words": slots,
        "unseen_slot_share": share(unseen_slots, slots),
        "rare_slot_share": share(rare_slots, slots),
    }
