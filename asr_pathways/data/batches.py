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
Its state is just (epoch, position), so ``load_state_dict`` resumes exactly.
"""

from __future__ import annotations

import bisect
import functools
import random
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

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


class _Loader:
    """Loads audio, computes features and tokens for a list of cuts (tokens cached per cut)."""

    def __init__(self, cuts: Sequence, tokenizer, language: str) -> None:
        self.cuts = cuts
        self.tokenizer = tokenizer
        self.language = language
        self._tok: dict[int, list[int]] = {}

    def make(self, idx: Sequence[int]) -> Batch:
        feats, toks, texts, ids = [], [], [], []
        for i in idx:
            cut = self.cuts[i]
            audio = cut.load_audio()
            if cut.sampling_rate != SAMPLE_RATE:
                raise ValueError(f"cut {cut.id} is at {cut.sampling_rate} Hz, expected {SAMPLE_RATE}")
            feats.append(compute_fbank(audio[0], SAMPLE_RATE))
            text = _cut_text(cut)
            if i not in self._tok:
                self._tok[i] = self.tokenizer.encode(text)
            toks.append(self._tok[i])
            texts.append(text)
            ids.append(cut.id)
        B = len(feats)
        T = max(f.shape[0] for f in feats)
        U = max(1, max(len(t) for t in toks))
        features = torch.zeros(B, T, NUM_MEL_BINS, dtype=torch.float32)
        tokens = torch.zeros(B, U, dtype=torch.long)
        for b, (f, t) in enumerate(zip(feats, toks)):
            features[b, : f.shape[0]] = f
            tokens[b, : len(t)] = torch.tensor(t, dtype=torch.long)
        return Batch(
            language=self.language,
            features=features,
            feature_lens=torch.tensor([f.shape[0] for f in feats], dtype=torch.long),
            tokens=tokens,
            token_lens=torch.tensor([len(t) for t in toks], dtype=torch.long),
            texts=texts,
            cut_ids=ids,
        )


class LanguageStream:
    """Endless monolingual batches of one language, duration-bucketed, exactly resumable."""

    def __init__(self, cuts: Iterable, tokenizer, language: str, max_duration: float, seed: int = 0, num_buckets: int = 10) -> None:
        self.cuts = sorted(cuts, key=lambda c: (c.duration, c.id))
        if not self.cuts:
            raise ValueError(f"no cuts for language {language!r}")
        self.language = language
        self.max_duration = float(max_duration)
        self.seed = int(seed)
        self.num_buckets = max(1, min(num_buckets, len(self.cuts)))
        self._durations = [float(c.duration) for c in self.cuts]
        self._loader = _Loader(self.cuts, tokenizer, language)
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


class MultilingualBatches:
    """Draws a language per step by weight (from (seed, step)) and returns that stream's next batch."""

    def __init__(self, streams: Mapping[str, LanguageStream] | Sequence[LanguageStream], weights: Mapping[str, float] | None = None, seed: int = 0) -> None:
        if not isinstance(streams, Mapping):
            streams = {s.language: s for s in streams}
        self.streams = dict(streams)
        self.languages = sorted(self.streams)
        w = [float((weights or {}).get(l, 1.0)) for l in self.languages]
        if any(x < 0 for x in w) or sum(w) <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {dict(zip(self.languages, w))}")
        total = sum(w)
        self.weights = {l: x / total for l, x in zip(self.languages, w)}
        self._cum = list(np.cumsum([self.weights[l] for l in self.languages]))
        self.seed = int(seed)
        self.step = 0

    def draw_language(self) -> str:
        """The language of the next batch (advances the step counter)."""
        u = random.Random(f"{self.seed}|mix|{self.step}").random()
        self.step += 1
        return self.languages[min(bisect.bisect_right(self._cum, u), len(self.languages) - 1)]

    def next(self) -> Batch:
        return self.streams[self.draw_language()].next()

    __next__ = next

    def __iter__(self) -> Iterator[Batch]:
        return self

    def next_for(self, lang: str) -> Batch:
        """The next batch of ``lang`` (does not advance the language draw)."""
        return self.streams[lang].next()

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "step": self.step, "streams": {l: s.state_dict() for l, s in self.streams.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.seed = int(state.get("seed", self.seed))
        self.step = int(state["step"])
        for l, s in state["streams"].items():
            self.streams[l].load_state_dict(s)


def eval_batches(cuts: Iterable, tokenizer, language: str, max_duration: float) -> Iterator[Batch]:
    """Every cut once, in a fixed order (by duration, then id), packed like training batches."""
    cuts = sorted(cuts, key=lambda c: (c.duration, c.id))
    loader = _Loader(cuts, tokenizer, language)
    for idx in _pack(range(len(cuts)), [float(c.duration) for c in cuts], float(max_duration)):
        yield loader.make(idx)
