"""Seeded sentence generators: hand-written per-language frames filled with lexicon words.

A sentence is one frame (a short clause of closed-class words with ``W`` slots), optionally joined
to a second frame by a conjunction, with every slot filled by a content word drawn from a
Zipf-weighted lexicon (wordfreq's top words for the language, filtered of junk). The result has far
lower entropy than uniform word salad (fixed frames, frequent words more likely), so a small model
can learn it, while the lexicon gives an open-ended vocabulary: 4,000 content words per language by
default (``lexicon_size``; ``asr-pathways corpus synth --lexicon-size``). A 1,000-word lexicon did
not make English easier for the ``small`` model (81% vs 79% dev WER after 800 English-only steps):
it learns the frames first and the slot words' spellings much later, whatever their number.

Every draw comes from ``random.Random(key)`` with a string key, so a sentence depends only on its
key (seed, language, split, index), never on the order in which sentences are made.
"""

from __future__ import annotations

import bisect
import functools
import random
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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


class SentenceGenerator:
    """Deterministic sentences for one language: ``sentence(key)`` depends on ``key`` only."""

    def __init__(self, lang: str, lexicon_size: int = 4000, zipf_exponent: float = 0.7, zipf_offset: float = 20.0) -> None:
        self.lang = lang
        self.templates = load_templates(lang)
        self.words = lexicon(lang, lexicon_size)
        if lexicon_size < 100:
            raise InputError(f"lexicon size {lexicon_size} is too small", field="lexicon_size", expected="at least 100 words")
        if len(self.words) < 100:
            raise InputError(f"word list for {lang!r} too small ({len(self.words)} words)", field="languages")
        weights = [1.0 / (r + zipf_offset) ** zipf_exponent for r in range(len(self.words))]
        self._cum: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            self._cum.append(total)

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
        user_path: str | None = None, lexicon_size: int = 4000,
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
            self.gen = SentenceGenerator(lang, lexicon_size)
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
