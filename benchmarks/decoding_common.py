"""What the decoding benchmarks share: utterances (a corpus split or synthetic features), timers,
WER of hypotheses, random-weight models with magnitude masks, and publishing a result (JSON +
the BENCHMARKS.md section)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from benchmarks.common import write_result, write_section


def publish(section: str, res: dict[str, Any], markdown: Callable[[dict[str, Any]], str], write: bool = True) -> int:
    """Write benchmarks/results/SECTION.json and the SECTION part of BENCHMARKS.md (unless not
    ``write``), print the Markdown; the exit status 0."""
    text = markdown(res)
    if write:
        write_result(section, res)
        write_section(section, text)
    print(text)
    return 0


@dataclass
class Utterance:
    id: str
    language: str
    features: torch.Tensor  # (T, 80) log-mel
    text: str | None = None

    @property
    def seconds(self) -> float:
        return self.features.shape[0] / 100.0


def corpus_utterances(corpus: str | Path, language: str, split: str = "test", limit: int | None = None) -> list[Utterance]:
    """The first ``limit`` utterances of a corpus split (sorted by id), with cached fbank features."""
    from asr_pathways.data.batches import _cut_text
    from asr_pathways.data.corpus import Corpus
    from asr_pathways.data.features import FeatureCache

    every = Corpus(corpus).cuts(language, split)
    feats = FeatureCache(corpus, progress=False).split(language, split, every)  # the cache holds the whole split
    cuts = sorted(every, key=lambda c: c.id)[: limit or None]
    return [Utterance(c.id, language, feats.get(c.id).clone(), _cut_text(c)) for c in cuts]


def synthetic_utterances(n: int, seconds: float, seed: int = 1, language: str = "xx") -> list[Utterance]:
    """``n`` utterances of random log-mel features (what a random-weight model needs: any input)."""
    g = torch.Generator().manual_seed(seed)
    frames = int(seconds * 100)
    return [Utterance(f"synthetic-{i}", language, torch.randn(frames, 80, generator=g) - 5.0) for i in range(n)]


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(the fastest of ``repeats`` calls in seconds, the last result)."""
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def wer_of(refs: list[str], hyps: list[str]) -> dict[str, Any]:
    from asr_pathways.metrics import error_rates

    return error_rates(refs, hyps)


def random_model(preset: str, seed: int = 0):
    """(random-weight RNNTModel of a preset in eval mode, its ``model:`` section)."""
    from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset

    sections = load_preset(preset)
    cfg = sections["model"]
    torch.manual_seed(seed)
    model = RNNTModel(ModelConfig.from_dict(cfg), int(sections.get("tokenizer", {}).get("vocab_size", 256))).eval()
    with torch.no_grad():  # a random model that is not one-hot confident, so that blank and labels compete
        model.joiner.output.weight.mul_(4)
    return model, cfg


def magnitude_masks(model, sparsity: float) -> dict[str, torch.Tensor]:
    """8x1-block magnitude masks of every prunable weight matrix at ``sparsity``."""
    from asr_pathways.sparsity.blocks import magnitude_mask

    params = dict(model.named_parameters())
    return {n: magnitude_mask(params[n].detach(), sparsity) for n in model.weight_matrix_names()}


def tune_emission(model, utts: list[Utterance], tokens_per_second: float) -> float:
    """Set the joiner's blank bias (bisection) so that greedy decoding emits about
    ``tokens_per_second`` labels per second of audio: a random model's loop then does the work a
    trained one does. Returns the bias."""
    from asr_pathways.export.fast import lean_greedy

    target = tokens_per_second * sum(u.seconds for u in utts)
    lo, hi = -10.0, 30.0
    with torch.no_grad():
        for _ in range(14):
            mid = (lo + hi) / 2
            model.joiner.output.bias[0] = mid
            emitted = sum(len(lean_greedy(model, u.features)) for u in utts)
            lo, hi = (mid, hi) if emitted > target else (lo, mid)
        model.joiner.output.bias[0] = (lo + hi) / 2
    return (lo + hi) / 2
