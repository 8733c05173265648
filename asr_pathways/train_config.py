"""Training settings: :class:`TrainConfig`, the ``train:`` section of a preset.

The fields that ``asr-pathways train`` exposes carry their help and choices (``option(...)``,
:mod:`asr_pathways.options`); the command line is generated from them, with "the preset's" as
every default.

>>> cfg = TrainConfig.from_dict({"lr": 1.0, "warmup_steps": 10, "steps": 110, "final_lr_ratio": 0.0})
>>> cfg.lr_at(0), cfg.lr_at(9), cfg.lr_at(60)
(0.1, 1.0, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from .errors import InputError
from .options import option

LR_SCHEDULES = ("cosine", "linear", "constant")
BATCHING = ("language", "mixed")
LANGUAGE_LOSS = ("equal", "weighted")


@dataclass
class TrainConfig:
    """Optimisation and data settings (the ``train:`` section of a preset)."""

    lr: float = option(2e-3, help="peak learning rate")
    weight_decay: float = 1e-3
    warmup_steps: int = option(300, help="linear warm-up steps")
    steps: int = option(3000, help="optimizer steps")
    max_duration: float = option(64.0, help="seconds of audio per batch")
    num_buckets: int = option(10, help="duration buckets the batches are drawn from (more: less padding per batch; "
                                       "docs/training.md)")
    frame_multiple: int = option(1, help="pad every batch's frame count up to a multiple of this (1: no padding beyond the "
                                         "longest utterance); fewer distinct shapes for the CPU kernels (BENCHMARKS.md, "
                                         "training throughput)")
    token_multiple: int = option(1, help="pad every batch's label count up to a multiple of this (1: none)")
    grad_clip: float = 5.0
    bf16: bool = option(True, help="bf16 autocast for encoder and joiner where the hardware has native bf16 kernels "
                                   "(--no-bf16: float32)")
    spec_augment: bool = option(True, help="SpecAugment time and frequency masks")
    log_every: int = 25
    checkpoint_every: int = option(250, help="steps between checkpoints")
    eval_every: int = option(0, help="steps between dev-set evaluations: WER to TensorBoard (dev/wer) and RUN/dev_wer.jsonl, "
                                     "the best weights kept in RUN/best.safetensors (0: never)")
    keep_checkpoints: int = option(0, help="keep the last N weight snapshots in RUN/checkpoints/, one every checkpoint_every "
                                           "steps, for `asr-pathways average` (0: none)")
    dev_max_utts: int = 200  # dev utterances per language decoded every eval_every steps
    seed: int = option(0, help="random seed (data order, initialisation, augmentation)")
    lr_schedule: str = option("cosine", help="decay after the warm-up", choices=LR_SCHEDULES)
    final_lr_ratio: float = option(0.05, help="learning rate at the last step / peak (the decay's floor)")
    languages_per_step: int = option(1, help="monolingual batches per optimizer step (0: one for every language)")
    language_weights: str = option("auto", help="language sampling weights: auto (hours^0.5), uniform, hours, or en=2,fr=1")
    language_loss: str = option("equal", help="with one batch of every language per step (languages_per_step 0): equal: "
                                              "each language's mean batch loss counts once; weighted: it counts K x w_l "
                                              "(K languages, w_l its language weight), so that a step weights the languages "
                                              "as a mixed batch drawn with those weights does, at the same total scale",
                                choices=LANGUAGE_LOSS)
    betas: tuple[float, float] = (0.9, 0.98)
    fused_adamw: bool = option(False, help="dense training runs torch's fused AdamW kernel where the device has one (CPU, "
                                           "CUDA): the same update up to rounding, training steps of the small recipe 1.03x "
                                           "as fast (BENCHMARKS.md). Off in the presets, so that recorded runs reproduce bit "
                                           "for bit. Pruning phases always use their masked single-tensor update")
    batching: str = option("language", help="mixed: one mixed-language batch per step, bucketed by duration and token count "
                                            "(dense training only); language: one monolingual batch per language of the step",
                           choices=BATCHING)
    feature_cache: bool = option(True, help="compute fbank once per corpus split into CORPUS/features and reuse it "
                                            "(--no-feature-cache: decode audio and compute fbank for every batch)")
    # steps over which a pruned RNN-T loss moves from mostly-simple to mostly-pruned (model
    # rnnt_loss: pruned; see asr/pruned_loss.py); 0 = no warm-up (fine-tuning a trained model)
    loss_warmup_steps: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "train config", flags: dict[str, str] | None = None) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown keys {unknown}", path=source, field="train", expected=f"some of {sorted(known)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        cfg = cls(**d)
        cfg.validate(source, flags)
        return cfg

    def validate(self, source: str = "train config", flags: dict[str, str] | None = None) -> None:
        """Raise :class:`InputError` for a value out of range; ``flags`` names the option a field came from."""
        flags = flags or {}
        for key, (lo, inclusive, hi) in _LIMITS.items():
            v = getattr(self, key)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            ok = ok and (v >= lo if inclusive else v > lo) and (hi is None or v <= hi)
            if not ok:
                bound = (">= " if inclusive else "> ") + f"{lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
                raise InputError(f"{v!r} is out of range", path=None if key in flags else source,
                                 field=flags.get(key, f"train.{key}"), expected=f"a number {bound}")
        for key, choices in (("lr_schedule", LR_SCHEDULES), ("batching", BATCHING), ("language_loss", LANGUAGE_LOSS)):
            if getattr(self, key) not in choices:
                raise InputError(f"unknown value {getattr(self, key)!r}", path=None if key in flags else source,
                                 field=flags.get(key, f"train.{key}"), expected=" or ".join(choices))

    def lr_at(self, step: int) -> float:
        """Learning rate for optimizer step ``step`` (0-based)."""
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant":
            return self.lr
        span = max(1, self.steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        lo = self.lr * self.final_lr_ratio
        if self.lr_schedule == "linear":
            return lo + (self.lr - lo) * (1 - t)
        if self.lr_schedule == "cosine":
            return lo + (self.lr - lo) * 0.5 * (1 + math.cos(math.pi * t))
        raise InputError(f"unknown lr_schedule {self.lr_schedule!r}", field="train.lr_schedule", expected="cosine, linear or constant")


# numeric settings: (lower bound, bound allowed, upper bound or None)
_LIMITS: dict[str, tuple[float, bool, float | None]] = {
    "lr": (0, False, None), "weight_decay": (0, True, None), "warmup_steps": (0, True, None), "steps": (0, True, None),
    "max_duration": (0, False, None), "num_buckets": (1, True, None), "frame_multiple": (1, True, None), "token_multiple": (1, True, None), "grad_clip": (0, True, None), "log_every": (1, True, None),
    "checkpoint_every": (0, True, None), "eval_every": (0, True, None), "keep_checkpoints": (0, True, None),
    "dev_max_utts": (1, True, None), "seed": (0, True, None),
    "final_lr_ratio": (0, True, 1), "languages_per_step": (0, True, None), "loss_warmup_steps": (0, True, None),
}


def parse_language_weights(spec: str, languages: list[str], hours: dict[str, float]) -> dict[str, float]:
    """Sampling weights per language: ``auto`` (hours^0.5), ``uniform``, ``hours`` or ``en=2,fr=1``."""
    if spec == "uniform":
        w = {l: 1.0 for l in languages}
    elif spec in ("auto", "hours"):
        power = 0.5 if spec == "auto" else 1.0
        w = {l: max(hours.get(l, 1.0), 1e-6) ** power for l in languages}
    else:
        w = {}
        for item in spec.split(","):
            if "=" not in item:
                raise InputError(f"bad language weight {item!r}", field="language_weights", expected="LANG=WEIGHT pairs such as en=2,fr=1")
            k, v = item.split("=", 1)
            w[k.strip()] = float(v)
        missing = [l for l in languages if l not in w]
        if missing:
            raise InputError(f"no weight for {missing}", field="language_weights", expected="a weight for every training language")
    total = sum(w[l] for l in languages)
    return {l: w[l] / total for l in languages}
