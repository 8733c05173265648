"""The training loop shared by every method: single process or DDP, dense or through pathways.

One optimizer step runs one monolingual batch for each language of the step's plan. With
pathways, each batch goes through its own language's mask and the gradients are summed before
the step (the ASR Pathways update ``θ ← θ − η Σ_l m_l ⊙ ∇L_l``); the pathway engine then makes sure
that no coordinate outside the active masks moved. Checkpoints hold weights, optimizer, masks,
data positions and RNG state, so a resumed run continues exactly as an uninterrupted one.

Example (tiny, on a corpus made by ``asr-pathways corpus synth``)::

    trainer = Trainer.create(TrainSetup(corpus="data/demo", out="runs/x", preset="tiny"))
    trainer.train_until(trainer.cfg.steps)
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from .checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint, load_model_state, restore_optimizer, save_checkpoint
from .errors import InputError
from .io import atomic_write_text
from .runtime import DistInfo

MIXED_STATE = "*mixed*"  # key of the mixed-batch stream's state among the per-language data states


@dataclass
class TrainConfig:
    """Optimisation and data settings (the ``train:`` section of a preset)."""

    lr: float = 2e-3
    weight_decay: float = 1e-3
    warmup_steps: int = 300
    steps: int = 3000
    max_duration: float = 64.0
    grad_clip: float = 5.0
    bf16: bool = True
    spec_augment: bool = True
    log_every: int = 25
    checkpoint_every: int = 250
    eval_every: int = 0
    seed: int = 0
    lr_schedule: str = "cosine"  # cosine | linear | constant (after warm-up)
    final_lr_ratio: float = 0.05
    languages_per_step: int = 1  # monolingual batches per step; 0 = one batch for every language
    language_weights: str = "auto"  # auto (hours^0.5) | uniform | hours | "en=2,fr=1"
    betas: tuple[float, float] = (0.9, 0.98)
    # "language": one monolingual batch per language of the step's plan (what pathway phases need);
    # "mixed": one mixed-language batch per step, bucketed by duration and token count (dense only)
    batching: str = "language"
    feature_cache: bool = True  # fbank computed once per corpus split and memory-mapped (data/features.py)
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
        for key, choices in (("lr_schedule", ("cosine", "linear", "constant")), ("batching", ("language", "mixed"))):
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
    "max_duration": (0, False, None), "grad_clip": (0, True, None), "log_every": (1, True, None),
    "checkpoint_every": (0, True, None), "eval_every": (0, True, None), "seed": (0, True, None),
    "final_lr_ratio": (0, True, 1), "languages_per_step": (0, True, None), "loss_warmup_steps": (0, True, None),
}
MAX_NONFINITE_STEPS = 3  # consecutive steps with a non-finite loss or gradient norm before training stops


class NonFiniteError(InputError):
    """Training diverged: the loss or gradient norm stayed non-finite (the settings, usually the lr, are to blame)."""


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


def build_model(model_section: dict[str, Any], vocab_size: int) -> nn.Module:
    from .asr.model import ModelConfig, RNNTModel

    return RNNTModel(ModelConfig.from_dict(dict(model_section)), vocab_size)


@dataclass
class RunConfig:
    """Everything that defines a run; written to ``runs/NAME/config.yaml``."""

    preset: str
    model: dict[str, Any]
    train: dict[str, Any]
    tokenizer: dict[str, Any]
    corpus: str
    languages: list[str]
    init: str | None = None
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def write_run_config(out: Path, rc: RunConfig) -> None:
    import yaml

    atomic_write_text(out / "config.yaml", yaml.safe_dump(asdict(rc), sort_keys=False))


def read_run_config(run: Path) -> RunConfig:
    import yaml

    p = Path(run) / "config.yaml"
    if not p.is_file():
        raise InputError("run config not found", path=p, expected="a run folder written by asr-pathways train or prune")
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML ({str(e).splitlines()[0]})", path=p) from None
    known = {f.name: f for f in fields(RunConfig)}
    required = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
    if not isinstance(d, dict) or set(d) - set(known) or any(n not in d for n in required):
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise InputError(f"not a run config (keys {keys})", path=p, expected=f"the keys {sorted(known)} (written by asr-pathways)")
    return RunConfig(**d)


class Trainer:
    """Owns model, optimizer, data streams, optional pathways, step counter and logs.

    ``plan(step) -> list[str]`` gives the languages of one optimizer step (default: sample
    ``languages_per_step`` languages by weight, deterministically from (seed, step)).
    ``pathway_of(language) -> str | None`` names the mask a language's batch goes through
    (None: dense forward).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        corpus: Any,
        languages: list[str],
        cfg: TrainConfig,
        out: str | Path,
        *,
        device: torch.device | None = None,
        dist_info: DistInfo | None = None,
        pathways: Any | None = None,
        pathway_of: Callable[[str], str | None] | None = None,
        plan: Callable[[int], list[str]] | None = None,
        progress: bool = True,
        desc: str = "train",
    ) -> None:
        from .data.batches import LanguageStream, MixedStream

        self.device = device or torch.device("cpu")
        self.dist = dist_info or DistInfo()
        self.cfg = cfg
        self.out = Path(out)
        self.languages = list(languages)
        self.tokenizer = tokenizer
        self.corpus = corpus
        self.model = model.to(self.device)
        self.pathways = pathways
        self.pathway_of = pathway_of or (lambda lang: None)
        self.progress = progress and self.dist.is_main
        self.desc = desc
        self.step = 0
        self.audio_seconds = 0.0
        self.train_seconds = 0.0
        self.recipe_state: dict[str, Any] = {}
        if cfg.batching not in ("language", "mixed"):
            raise InputError(f"unknown batching {cfg.batching!r}", field="train.batching", expected="language or mixed")
        if cfg.batching == "mixed" and (pathways is not None or plan is not None):
            raise InputError("mixed-language batches cannot go through per-language pathways", field="train.batching", expected="language for a pruning phase")
        self.features = None
        if cfg.feature_cache and getattr(corpus, "path", None) is not None:
            from .data.features import FeatureCache

            self.features = FeatureCache(corpus.path, progress=self.progress)
        hours = {}
        sources = {}
        self.streams = {}
        for i, lang in enumerate(self.languages):
            cuts = corpus.cuts(lang, "train")
            if len(cuts) == 0:
                raise InputError(f"the train split of language {lang!r} is empty", path=getattr(corpus, "path", None),
                                 expected="at least one training utterance per language", hint="Leave the language out (--languages)")
            feats = self.features.split(lang, "train", cuts) if self.features is not None else None
            sources[lang] = (cuts, feats)
            hours[lang] = sum(c.duration for c in cuts) / 3600.0
            seed = cfg.seed * 1_000_003 + 7919 * (i + 1) + 104_729 * self.dist.rank
            self.streams[lang] = LanguageStream(cuts, tokenizer, lang, cfg.max_duration, seed, features=feats)
        self.weights = parse_language_weights(cfg.language_weights, self.languages, hours)
        self.mixed: MixedStream | None = None
        if cfg.batching == "mixed":
            seed = cfg.seed * 1_000_003 + 104_729 * self.dist.rank
            self.mixed = MixedStream(sources, tokenizer, cfg.max_duration, self.weights, seed)
        self.plan = plan or self._default_plan
        self.ddp: nn.Module | None = None
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = self._make_optimizer()
        self.spec_augment = None
        if cfg.spec_augment:
            from .asr.specaugment import SpecAugment

            self.spec_augment = SpecAugment()
        from .runtime import bf16_supported

        # bf16 autocast where the hardware runs it natively; float32 elsewhere (same results up to rounding)
        self.bf16 = bool(cfg.bf16) and bf16_supported(self.device)
        if cfg.bf16 and not self.bf16 and self.dist.is_main:
            print(f"note: this {self.device.type} has no native bf16 kernels; training in float32", flush=True)
        self.aug_generator = torch.Generator().manual_seed(cfg.seed * 31 + 17 + self.dist.rank)
        self._tb = None
        self._metrics_path = self.out / "metrics.jsonl"
        self.nonfinite: list[tuple[int, float, float]] = []  # (step, loss, grad norm) of consecutive skipped steps
        self.checkpoint_step: int | None = None  # step of the last checkpoint written or restored
        # objects with optional after_backward(trainer, lang), before_step(trainer, langs) and
        # after_step(trainer, langs) methods; recipes use them to observe each language's update
        self.hooks: list[Any] = []

    def _call_hooks(self, name: str, *args: Any) -> None:
        for h in self.hooks:
            fn = getattr(h, name, None)
            if fn is not None:
                fn(self, *args)

    # ----------------------------------------------------------------------------------- set-up
    def _make_optimizer(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for _, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            (decay if p.dim() >= 2 else no_decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=self.cfg.lr_at(0), betas=self.cfg.betas, eps=1e-8)

    def reset_optimizer(self) -> None:
        """Fresh AdamW moments (used after a lottery-ticket rewind)."""
        self.optimizer = self._make_optimizer()

    def _default_plan(self, step: int) -> list[str]:
        k = self.cfg.languages_per_step
        if k <= 0 or k >= len(self.languages):
            return list(self.languages)
        rng = np.random.default_rng([self.cfg.seed, step, 12345])
        p = np.array([self.weights[l] for l in self.languages])
        idx = rng.choice(len(self.languages), size=k, replace=False, p=p)
        return [self.languages[i] for i in sorted(idx)]

    @property
    def tb(self):
        if self._tb is None and self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.out / "tensorboard"))
        return self._tb

    # ------------------------------------------------------------------------------ one step
    def _pathway_ctx(self, lang: str):
        name = self.pathway_of(lang)
        if name is None or self.pathways is None:
            return contextlib.nullcontext()
        return self.pathways.pathway(name)

    def _loss_kwargs(self) -> dict[str, float]:
        """``warmup`` (fraction of the loss warm-up done) for a model with the pruned RNN-T loss."""
        if not getattr(getattr(self.model, "cfg", None), "uses_pruned_rnnt", False):
            return {}
        n = self.cfg.loss_warmup_steps
        return {"warmup": 1.0 if n <= 0 else min(1.0, self.step / n)}

    def train_step(self) -> dict[str, float]:
        """One optimizer step over the languages of ``plan(step)`` (or one mixed batch); returns the losses."""
        langs = ["mixed"] if self.mixed is not None else self.plan(self.step)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        net = self.ddp if self.ddp is not None else self.model
        totals: dict[str, float] = {}
        audio = 0.0
        for i, lang in enumerate(langs):
            batch = self.mixed.next() if self.mixed is not None else self.streams[lang].next()
            feats = batch.features.to(self.device)
            lens = batch.feature_lens.to(self.device)
            if self.spec_augment is not None:
                feats = self.spec_augment(feats, lens, generator=self.aug_generator)
            sync = contextlib.nullcontext()
            if self.ddp is not None and i < len(langs) - 1:
                sync = self.ddp.no_sync()
            with sync:
                with self._pathway_ctx(lang), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    out = net(feats, lens, batch.tokens.to(self.device), batch.token_lens.to(self.device), **self._loss_kwargs())
                out["loss"].backward()
            self._call_hooks("after_backward", lang)
            for k, v in out.items():
                if v is not None:
                    totals[f"{k}/{lang}"] = float(v.detach())
                    totals[k] = totals.get(k, 0.0) + float(v.detach())
            totals["tokens"] = totals.get("tokens", 0.0) + float(batch.token_lens.sum())
            totals["utterances"] = totals.get("utterances", 0.0) + len(batch.cut_ids)
            audio += float(batch.feature_lens.sum()) * 0.01
        for g in self.optimizer.param_groups:
            g["lr"] = self.cfg.lr_at(self.step)
        if self.cfg.grad_clip > 0:
            totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip))
        else:
            totals["grad_norm"] = float(torch.nn.utils.get_total_norm([p.grad for p in self.model.parameters() if p.grad is not None]))
        if not self._finite_step(totals):
            return self._skip_step(totals, audio)
        self.nonfinite = []
        active = [n for n in (self.pathway_of(l) for l in langs) if n is not None]
        self._call_hooks("before_step", langs)
        if self.pathways is not None and active:
            self.pathways.step(self.optimizer, active=sorted(set(active)))
        else:
            self.optimizer.step()
        self._call_hooks("after_step", langs)
        self.step += 1
        self.audio_seconds += audio * self.dist.world_size
        totals["audio_seconds"] = audio
        totals["lr"] = self.optimizer.param_groups[0]["lr"]
        return totals

    def _finite_step(self, totals: dict[str, float]) -> bool:
        """Whether the step's loss and gradient norm are finite (on every rank under DDP)."""
        ok = math.isfinite(totals.get("loss", 0.0)) and math.isfinite(totals["grad_norm"])
        if self.dist.enabled:
            import torch.distributed as dist

            flag = torch.tensor([0.0 if ok else 1.0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            ok = bool(flag.item() == 0.0)
        return ok

    def _skip_step(self, totals: dict[str, float], audio: float) -> dict[str, float]:
        """A step whose loss or gradient is not finite changes no weight; a few in a row stop training."""
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite.append((self.step + 1, totals.get("loss", math.nan), totals["grad_norm"]))
        lr = self.optimizer.param_groups[0]["lr"]
        if len(self.nonfinite) >= MAX_NONFINITE_STEPS:
            steps = ", ".join(str(n) for n, _, _ in self.nonfinite)
            last = self.nonfinite[-1]
            kept = "no checkpoint was written" if self.checkpoint_step is None else f"the checkpoint of step {self.checkpoint_step} is kept"
            raise NonFiniteError(
                f"training diverged: the loss or gradient norm was not finite at steps {steps} (last: loss {last[1]}, "
                f"gradient norm {last[2]}, learning rate {lr:.3g}); no update was applied at those steps and {kept}", path=self.out,
                hint=f"Lower the learning rate (--lr, peak {self.cfg.lr:g}) and run again with --restart",
            )
        self.step += 1
        self.audio_seconds += audio * self.dist.world_size
        kept = {k: v for k, v in totals.items() if math.isfinite(v)}
        return kept | {"nonfinite_steps": 1.0, "audio_seconds": audio, "lr": lr}

    # ------------------------------------------------------------------------------ the loop
    def train_until(self, target_step: int, desc: str | None = None) -> None:
        """Run optimizer steps until ``self.step == target_step``, logging and checkpointing."""
        if self.step >= target_step:
            return
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=target_step, initial=self.step, desc=desc or self.desc, unit="step", dynamic_ncols=True)
        window: list[dict[str, float]] = []
        t_window = time.perf_counter()
        while self.step < target_step:
            t0 = time.perf_counter()
            info = self.train_step()
            self.train_seconds += time.perf_counter() - t0
            window.append(info)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{info.get('loss', math.nan):.3f}", lr=f"{info['lr']:.1e}")
            if self.step % self.cfg.log_every == 0 or self.step == target_step:
                self._log(window, time.perf_counter() - t_window)
                window, t_window = [], time.perf_counter()
            if self.cfg.checkpoint_every > 0 and self.step % self.cfg.checkpoint_every == 0 and not self.nonfinite:
                self.save()
        if bar is not None:
            bar.close()
        self.save()

    def _log(self, window: list[dict[str, float]], seconds: float) -> None:
        if not window or not self.dist.is_main:
            return
        keys = sorted({k for w in window for k in w})
        row: dict[str, Any] = {"step": self.step}
        for k in keys:
            vals = [w[k] for w in window if k in w]
            row[k] = sum(vals) if k in ("audio_seconds", "nonfinite_steps") else sum(vals) / len(vals)
        row["audio_seconds_per_second"] = row.get("audio_seconds", 0.0) * self.dist.world_size / max(seconds, 1e-9)
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        row["time"] = time.time()
        self._metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "time") and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, self.step)
            self.tb.flush()

    # ------------------------------------------------------------------------ checkpoints
    def masks_state(self) -> dict[str, dict[str, torch.Tensor]]:
        if self.pathways is None:
            return {}
        return {name: dict(mask.items()) for name, mask in self.pathways.masks.items()}

    def save(self, path: str | Path | None = None) -> None:
        """Write the checkpoint (rank 0) with everything needed to resume exactly."""
        data_states = [{l: s.state_dict() for l, s in self.streams.items()}]
        if self.mixed is not None:
            data_states[0][MIXED_STATE] = self.mixed.state_dict()
        gen_states = [self.aug_generator.get_state().tolist()]
        if self.dist.enabled:
            import torch.distributed as dist

            all_data: list[Any] = [None] * self.dist.world_size
            all_gen: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(all_data, data_states[0])
            dist.all_gather_object(all_gen, gen_states[0])
            data_states, gen_states = all_data, all_gen
        if not self.dist.is_main:
            if self.dist.enabled:
                import torch.distributed as dist

                dist.barrier()
            return
        bad = [n for n, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            raise NonFiniteError(
                f"the weights hold non-finite values at step {self.step} ({', '.join(bad[:3])}); the checkpoint was not written",
                path=self.out, hint=f"Lower the learning rate (--lr, peak {self.cfg.lr:g}) and run again with --restart",
            )
        meta = {
            "step": self.step,
            "audio_seconds": self.audio_seconds,
            "train_seconds": self.train_seconds,
            "languages": self.languages,
            "data_states": data_states,
            "aug_generator": gen_states,
            "recipe": self.recipe_state,
            "world_size": self.dist.world_size,
        }
        save_checkpoint(Path(path) if path else self.out / CHECKPOINT_NAME, self.model, meta, self.optimizer, self.masks_state())
        if path is None:
            self.checkpoint_step = self.step
        if self.dist.enabled:
            import torch.distributed as dist

            dist.barrier()

    def restore(self, path: str | Path | None = None, weights_only: bool = False) -> Checkpoint:
        """Resume from a checkpoint (default: this run's); ``weights_only`` loads parameters only."""
        ck = load_checkpoint(Path(path) if path else self.out / CHECKPOINT_NAME, require_complete=path is not None)
        load_model_state(self.model, ck.model, path or self.out / CHECKPOINT_NAME)
        if weights_only:
            return ck
        restore_optimizer(self.model, self.optimizer, ck)
        meta = ck.meta
        self.step = int(meta["step"])
        self.checkpoint_step = self.step
        self.audio_seconds = float(meta.get("audio_seconds", 0.0))
        self.train_seconds = float(meta.get("train_seconds", 0.0))
        self.recipe_state = dict(meta.get("recipe", {}))
        data_states = meta.get("data_states", [])
        if len(data_states) != self.dist.world_size:
            raise InputError(
                f"checkpoint was written by {len(data_states)} processes, this run has {self.dist.world_size}",
                field="world_size", expected="the same number of processes to resume exactly",
            )
        for lang, st in data_states[self.dist.rank].items():
            if lang == MIXED_STATE and self.mixed is not None:
                self.mixed.load_state_dict(st)
            elif lang in self.streams:
                self.streams[lang].load_state_dict(st)
        gen = meta.get("aug_generator")
        if gen:
            self.aug_generator.set_state(torch.tensor(gen[self.dist.rank], dtype=torch.uint8))
        if ck.rng_torch is not None:
            torch.set_rng_state(ck.rng_torch)
        if self.pathways is not None and ck.masks:
            from .sparsity.masks import MaskSet

            for name, m in ck.masks.items():
                self.pathways.set_mask(name, MaskSet(m))
        self._truncate_metrics()
        return ck

    def _truncate_metrics(self) -> None:
        """Drop log rows written after the checkpoint we resumed from (they will be redone)."""
        if not self.dist.is_main or not self._metrics_path.is_file():
            return
        keep = []
        for line in self._metrics_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= self.step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue
        atomic_write_text(self._metrics_path, "".join(l + "\n" for l in keep))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def iter_metrics(run: str | Path) -> Iterator[dict[str, Any]]:
    p = Path(run) / "metrics.jsonl"
    if p.is_file():
        for line in p.read_text().splitlines():
            if line.strip():
                yield json.loads(line)
