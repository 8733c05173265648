"""Features and batches: Kaldi-compatible fbank, monolingual duration-bucketed batch streams.

Fbank settings (lhotse's ``FbankConfig`` defaults, which match Kaldi's ``compute-fbank-feats``
with ``--dither=0 --snip-edges=false --num-mel-bins=80 --high-freq=-400``): 25 ms Povey window,
10 ms shift, pre-emphasis 0.97, DC offset removed, FFT size rounded to a power of two, 80 mel
bins from 20 Hz to Nyquist − 400 Hz, log of the mel energies floored at 1e-10, no dither (so
features are deterministic), frames = round(samples / 160).

Batching: a :class:`LanguageStream` sorts its cuts by duration into ``num_buckets`` buckets of
equal count; every epoch it shuffles each bucket with ``random.Random(f"{seed}|{language}|{epoch}")``,
packs consecutive cuts into batches whose *padded* duration (cuts × longest cut) stays within
``max_duration`` seconds (a single longer cut forms a batch alone), then shuffles the batches.
Its state is just (epoch, position), so ``load_state_dict`` resumes exactly. A
:class:`MixedStream` does the same over every language at once, bucketing by token count too (the
dense recipe's batches); pathway phases keep monolingual streams, since each language's batch goes
through its own mask. Features come from a :class:`~asr_pathways.data.features.FeatureCache` when
one is given.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

if TYPE_CHECKING:
    from .features import SplitFeatures

NUM_MEL_BINS = 80
SAMPLE_RATE = 16000


@functools.lru_cache(maxsize=4)
def _fbank_module(sampling_rate: int):
    from lhotse.features.kaldi.layers import Wav2LogFilterBank

    m = Wav2LogFilterBank(sampling_rate=sampling_rate, num_filters=NUM_MEL_BINS, dither=0.0, snip_edges=False)
    m.eval()
    return m


def compute_fbank(samples: np.ndarray | torch.Tensor, sampling_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Kaldi-compatible 80-dim log-mel filterbank of mono ``samples`` (floats in [-1, 1]): (T, 80) float32."""
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32) if not isinstance(samples, torch.Tensor) else samples, dtype=torch.float32)
    x = x.reshape(1, -1)
    with torch.no_grad():
        return _fbank_module(sampling_rate)(x)[0].contiguous()


@dataclass
class Batch:
    """One monolingual batch. ``features`` (B, T, 80) float32 zero-padded; ``tokens`` (B, U) 0-padded."""

    language: str
    features: torch.Tensor
    feature_lens: torch.Tensor
    tokens: torch.Tensor
    token_lens: torch.Tensor
    texts: list[str]
    cut_ids: list[str]
    languages: list[str] = field(default_factory=list)  # per utterance (mixed batches differ)

    @property
    def duration(self) -> float:
        return float(self.feature_lens.sum()) / 100.0


def _cut_text(cut) -> str:
    return " ".join(s.text for s in cut.supervisions if s.text)


def _pack(order: Sequence[int], durations: Sequence[float], max_duration: float) -> list[list[int]]:
    """Pack ``order`` into consecutive batches with len × max duration ≤ ``max_duration``."""
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = 0.0
    for i in order:
        d = durations[i]
        if cur and (len(cur) + 1) * max(longest, d) > max_duration:
            batches.append(cur)
            cur, longest = [], 0.0
        cur.append(i)
        longest = max(longest, d)
    if cur:
        batches.append(cur)
    return batches


def _collate(language: str, feats: "list[torch.Tensor | np.ndarray]", toks: list[list[int]], texts: list[str], ids: list[str], languages: list[str] | None = None) -> Batch:
    """Pad and stack; a (T, 80) matrix is a tensor or a view of the feature cache, copied once into the batch."""
    B = len(feats)
    T = max(f.shape[0] for f in feats)
    U = max(1, max(len(t) for t in toks))
    features = torch.zeros(B, T, NUM_MEL_BINS, dtype=torch.float32)
    tokens = torch.zeros(B, U, dtype=torch.long)
    out = features.numpy()
    for b, (f, t) in enumerate(zip(feats, toks)):
        out[b, : f.shape[0]] = f.numpy() if isinstance(f, torch.Tensor) else f
        tokens[b, : len(t)] = torch.tensor(t, dtype=torch.long)
    return Batch(
        language=language,
        features=features,
        feature_lens=torch.tensor([f.shape[0] for f in feats], dtype=torch.long),
        tokens=tokens,
        token_lens=torch.tensor([len(t) for t in toks], dtype=torch.long),
        texts=texts,
        cut_ids=ids,
        languages=languages if languages is not None else [language] * B,
    )


class _Loader:
    """Features and tokens for a list of cuts: from a :class:`FeatureCache` split when given,
    else audio decoded and fbank computed inline; tokens encoded once per cut."""

    def __init__(self, cuts: Sequence, tokenizer, language: str, features: "SplitFeatures | None" = None) -> None:
        self.cuts = cuts
        self.tokenizer = tokenizer
        self.language = language
        self.features = features
        self._tok: dict[int, list[int]] = {}

    def tokens(self, i: int) -> list[int]:
        if i not in self._tok:
            self._tok[i] = self.tokenizer.encode(_cut_text(self.cuts[i]))
        return self._tok[i]

    def fbank(self, i: int) -> torch.Tensor:
        cut = self.cuts[i]
        if self.features is not None:
            return self.features.get(cut.id)
        audio = cut.load_audio()
        if cut.sampling_rate != SAMPLE_RATE:
            raise ValueError(f"cut {cut.id} is at {cut.sampling_rate} Hz, expected {SAMPLE_RATE}")
        return compute_fbank(audio[0], SAMPLE_RATE)

    def frames(self, i: int) -> "torch.Tensor | np.ndarray":
        """Like :meth:`fbank`, but a cached utterance comes as a view of the cache (no copy; read-only)."""
        return self.features.view(self.cuts[i].id) if self.features is not None else self.fbank(i)

    def make(self, idx: Sequence[int]) -> Batch:
        feats = [self.frames(i) for i in idx]
        toks = [self.tokens(i) for i in idx]
        texts = [_cut_text(self.cuts[i]) for i in idx]
        return _collate(self.language, feats, toks, texts, [self.cuts[i].id for i in idx])


class LanguageStream:
    """Endless monolingual batches of one language, duration-bucketed, exactly resumable."""

    def __init__(self, cuts: Iterable, tokenizer, language: str, max_duration: float, seed: int = 0, num_buckets: int = 10, features: "SplitFeatures | None" = None) -> None:
        self.cuts = sorted(cuts, key=lambda c: (c.duration, c.id))
        if not self.cuts:
            raise ValueError(f"no cuts for language {language!r}")
        self.language = language
        self.max_duration = float(max_duration)
        self.seed = int(seed)
        self.num_buckets = max(1, min(num_buckets, len(self.cuts)))
        self._durations = [float(c.duration) for c in self.cuts]
        self._loader = _Loader(self.cuts, tokenizer, language, features)
        self.epoch = 0
        self.position = 0
        self._plan: list[list[int]] | None = None
        self._plan_epoch = -1

    def plan(self, epoch: int) -> list[list[int]]:
        """The batches (lists of cut indices) of ``epoch``, a function of (seed, language, epoch)."""
        if self._plan_epoch != epoch:
            rng = random.Random(f"{self.seed}|{self.language}|{epoch}")
            n = len(self.cuts)
            bounds = [round(k * n / self.num_buckets) for k in range(self.num_buckets + 1)]
            batches: list[list[int]] = []
            for a, b in zip(bounds[:-1], bounds[1:]):
                idx = list(range(a, b))
                rng.shuffle(idx)
                batches += _pack(idx, self._durations, self.max_duration)
            rng.shuffle(batches)
            self._plan, self._plan_epoch = batches, epoch
        return self._plan  # type: ignore[return-value]

    def next_indices(self) -> list[int]:
        """Advance and return the cut indices of the next batch (no audio is loaded)."""
        plan = self.plan(self.epoch)
        if self.position >= len(plan):
            self.epoch += 1
            self.position = 0
            plan = self.plan(self.epoch)
        idx = plan[self.position]
        self.position += 1
        return idx

    def next(self) -> Batch:
        """The next batch: audio loaded, fbank computed, tokens encoded."""
        return self._loader.make(self.next_indices())

    __next__ = next

    def __iter__(self) -> Iterator[Batch]:
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"language": self.language, "seed": self.seed, "epoch": self.epoch, "position": self.position, "num_cuts": len(self.cuts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("language", self.language) != self.language or state.get("num_cuts", len(self.cuts)) != len(self.cuts):
            raise ValueError(f"batch state is for {state.get('language')} with {state.get('num_cuts')} cuts, this stream is {self.language} with {len(self.cuts)}")
        self.seed = int(state.get("seed", self.seed))
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])


def language_streams(corpus: Any, languages: Sequence[str], tokenizer: Any, max_duration: float, seed: int, rank: int = 0,
                     features: Any = None, num_buckets: int = 10) -> tuple[dict[str, "LanguageStream"], dict[str, tuple[Any, Any]], dict[str, float]]:
    """The training stream of every language (seeded by ``seed``, the language's position and the DDP
    ``rank``), the (cuts, cached features) of each, and its hours of audio; ``num_buckets`` duration buckets
    per language. An empty train split is an error."""
    from ..errors import InputError

    streams, sources, hours = {}, {}, {}
    for i, lang in enumerate(languages):
        cuts = corpus.cuts(lang, "train")
        if len(cuts) == 0:
            raise InputError(f"the train split of language {lang!r} is empty", path=getattr(corpus, "path", None),
                             expected="at least one training utterance per language", hint="Leave the language out (--languages)")
        feats = features.split(lang, "train", cuts) if features is not None else None
        sources[lang] = (cuts, feats)
        hours[lang] = sum(c.duration for c in cuts) / 3600.0
        streams[lang] = LanguageStream(cuts, tokenizer, lang, max_duration, seed * 1_000_003 + 7919 * (i + 1) + 104_729 * rank,
                                       num_buckets=num_buckets, features=feats)
    return streams, sources, hours


def sample_languages(languages: Sequence[str], weights: Mapping[str, float], k: int, seed: int, step: int) -> list[str]:
    """The languages of optimizer step ``step``: all of them (``k <= 0`` or ``k >= len``), else ``k``
    drawn without replacement by ``weights``, deterministically from ``(seed, step)`` (so a resumed
    run draws the same ones), in the order of ``languages``.

    >>> sample_languages(["en", "fr", "it"], {"en": 0.5, "fr": 0.3, "it": 0.2}, 0, seed=0, step=4)
    ['en', 'fr', 'it']
    >>> a = sample_languages(["en", "fr", "it"], {"en": 0.5, "fr": 0.3, "it": 0.2}, 2, seed=0, step=4)
    >>> len(a), a == sample_languages(["en", "fr", "it"], {"en": 0.5, "fr": 0.3, "it": 0.2}, 2, seed=0, step=4)
    (2, True)
    """
    if k <= 0 or k >= len(languages):
        return list(languages)
    rng = np.random.default_rng([seed, step, 12345])
    p = np.array([weights[l] for l in languages])
    idx = rng.choice(len(languages), size=k, replace=False, p=p)
    return [languages[i] for i in sorted(idx)]


class MixedStream:
    """Endless mixed-language batches, bucketed by duration and by token count, exactly resumable.

    One epoch draws ``round(N * w_l)`` utterances of each language ``l`` (N: all training cuts,
    ``w_l``: normalised ``weights``; a language drawn more often than it has cuts cycles through
    fresh permutations of them), sorts the pool by duration into ``num_buckets`` equal-count
    buckets, shuffles each bucket, sorts windows of ``sort_window`` utterances by token count (so
    that a batch's utterances have similar label lengths and the (B, T, U+1) transducer grid holds
    little padding), packs them into batches whose padded duration stays within ``max_duration``
    seconds (``sort_by_tokens=False``: duration buckets only), and shuffles the batches. Everything is a function of (seed, epoch); the state is
    (epoch, position).

    ``sources`` maps a language to ``(cuts, features)``; ``features`` is a
    :class:`~asr_pathways.data.features.SplitFeatures` or None (fbank computed inline).
    """

    def __init__(
        self,
        sources: Mapping[str, tuple[Sequence, "SplitFeatures | None"]],
        tokenizer,
        max_duration: float,
        weights: Mapping[str, float] | None = None,
        seed: int = 0,
        num_buckets: int = 10,
        sort_window: int = 256,
        sort_by_tokens: bool = True,
    ) -> None:
        self.languages = sorted(sources)
        self.loaders: dict[str, _Loader] = {}
        self.durations: dict[str, list[float]] = {}
        for lang in self.languages:
            cuts, feats = sources[lang]
            cuts = sorted(cuts, key=lambda c: (c.duration, c.id))
            if not cuts:
                raise ValueError(f"no cuts for language {lang!r}")
            self.loaders[lang] = _Loader(cuts, tokenizer, lang, feats)
            self.durations[lang] = [float(c.duration) for c in cuts]
        w = {l: float((weights or {}).get(l, len(self.durations[l]))) for l in self.languages}
        if any(x < 0 for x in w.values()) or sum(w.values()) <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {w}")
        total = sum(w.values())
        self.weights = {l: x / total for l, x in w.items()}
        self.max_duration = float(max_duration)
        self.seed = int(seed)
        self.num_buckets = max(1, int(num_buckets))
        self.sort_window = max(1, int(sort_window))
        self.sort_by_tokens = bool(sort_by_tokens)
        self.epoch = 0
        self.position = 0
        self._plan: list[list[tuple[str, int]]] | None = None
        self._plan_epoch = -1

    def _token_count(self, lang: str, i: int) -> int:
        return len(self.loaders[lang].tokens(i))

    def _draw(self, lang: str, count: int, epoch: int) -> list[int]:
        n = len(self.durations[lang])
        # a language's draws continue one endless sequence of permutations across epochs
        first = epoch * count
        out: list[int] = []
        cycle, offset = divmod(first, n)
        while len(out) < count:
            perm = list(range(n))
            random.Random(f"{self.seed}|{lang}|cycle{cycle}").shuffle(perm)
            out += perm[offset:]
            cycle, offset = cycle + 1, 0
        return out[:count]

    def plan(self, epoch: int) -> list[list[tuple[str, int]]]:
        """The batches of ``epoch``: lists of (language, cut index)."""
        if self._plan_epoch == epoch:
            return self._plan  # type: ignore[return-value]
        total = sum(len(d) for d in self.durations.values())
        pool: list[tuple[str, int]] = []
        for lang in self.languages:
            count = max(1, round(total * self.weights[lang])) if self.weights[lang] > 0 else 0
            pool += [(lang, i) for i in self._draw(lang, count, epoch)]
        pool.sort(key=lambda li: (self.durations[li[0]][li[1]], li[0], li[1]))
        rng = random.Random(f"{self.seed}|mixed|{epoch}")
        n = len(pool)
        bounds = [round(k * n / self.num_buckets) for k in range(self.num_buckets + 1)]
        batches: list[list[tuple[str, int]]] = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            bucket = pool[a:b]
            rng.shuffle(bucket)
            for w0 in range(0, len(bucket), self.sort_window):
                window = bucket[w0 : w0 + self.sort_window]
                if self.sort_by_tokens:
                    window = sorted(window, key=lambda li: self._token_count(*li))
                durs = [self.durations[l][i] for l, i in window]
                batches += [[window[k] for k in idx] for idx in _pack(range(len(window)), durs, self.max_duration)]
        rng.shuffle(batches)
        self._plan, self._plan_epoch = batches, epoch
        return batches

    def next_items(self) -> list[tuple[str, int]]:
        """Advance and return the (language, cut index) pairs of the next batch (nothing loaded)."""
        plan = self.plan(self.epoch)
        if self.position >= len(plan):
            self.epoch += 1
            self.position = 0
            plan = self.plan(self.epoch)
        items = plan[self.position]
        self.position += 1
        return items

    def next(self) -> Batch:
        items = self.next_items()
        feats = [self.loaders[l].frames(i) for l, i in items]
        toks = [self.loaders[l].tokens(i) for l, i in items]
        texts = [_cut_text(self.loaders[l].cuts[i]) for l, i in items]
        ids = [self.loaders[l].cuts[i].id for l, i in items]
        return _collate("mixed", feats, toks, texts, ids, [l for l, _ in items])

    __next__ = next

    def __iter__(self) -> Iterator[Batch]:
        return self

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "mixed",
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
            "num_cuts": {l: len(d) for l, d in self.durations.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        mine = {l: len(d) for l, d in self.durations.items()}
        if dict(state.get("num_cuts", mine)) != mine:
            raise ValueError(f"mixed batch state is for cuts {state.get('num_cuts')}, this stream has {mine}")
        self.seed = int(state.get("seed", self.seed))
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])


def eval_batches(cuts: Iterable, tokenizer, language: str, max_duration: float, features: "SplitFeatures | None" = None) -> Iterator[Batch]:
    """Every cut once, in a fixed order (by duration, then id), packed like training batches."""
    cuts = sorted(cuts, key=lambda c: (c.duration, c.id))
    loader = _Loader(cuts, tokenizer, language, features)
    for idx in _pack(range(len(cuts)), [float(c.duration) for c in cuts], float(max_duration)):
        yield loader.make(idx)
