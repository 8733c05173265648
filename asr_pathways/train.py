"""The training loop shared by every method: single process or DDP, dense or through pathways.

One optimizer step runs one monolingual batch for each language of the step's plan. With
pathways, each batch goes through its own language's mask and the gradients are summed before
the step (the ASR Pathways update ``θ ← θ − η Σ_l m_l ⊙ ∇L_l``); the pathway engine then makes sure
that no coordinate outside the active masks moved. Checkpoints hold weights, optimizer, masks,
data positions and RNG state, so a resumed run continues exactly as an uninterrupted one.

Its dependencies are typed: a Tokenizer, a Corpus, a :class:`TrainConfig`, optionally a
PathwayModel, a learning-rate function (default ``cfg.lr_at``) and :class:`~asr_pathways.hooks.TrainHook`
objects, whose state rides in every checkpoint. As ``tests/test_train.py`` builds one::

    preset = load_preset("tiny")
    cfg = TrainConfig.from_dict(preset["train"] | {"steps": 10})
    tok, corpus = tokenizer_for_corpus("data/demo", preset["tokenizer"]["vocab_size"]), Corpus("data/demo")
    trainer = Trainer(build_model(preset["model"], tok.vocab_size), tok, corpus, corpus.languages, cfg, "runs/x")
    trainer.train_until(cfg.steps)
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import nn

from .checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint, load_model_state, restore_optimizer, save_checkpoint
from .errors import InputError
from .hooks import TrainHook, hook_states, load_hook_states
from .metrics_log import MetricsLog
from .optimizer import fused_adamw_available, make_adamw
from .runtime import DistInfo
from .train_config import TrainConfig, parse_language_weights

if TYPE_CHECKING:
    from .asr.tokenizer import Tokenizer
    from .data.corpus import Corpus
    from .sparsity.pathways import PathwayModel

__all__ = ["Trainer", "TrainConfig", "TrainHook", "NonFiniteError", "parse_language_weights"]

MIXED_STATE = "*mixed*"  # key of the mixed-batch stream's state among the per-language data states

MAX_NONFINITE_STEPS = 3  # consecutive steps with a non-finite loss or gradient norm before training stops


class NonFiniteError(InputError):
    """Training diverged: the loss or gradient norm stayed non-finite (the settings, usually the lr, are to blame)."""


class Trainer:
    """Owns model, optimizer, data streams, optional pathways, step counter and logs.

    ``plan(step) -> list[str]`` gives the languages of one optimizer step (default:
    :func:`asr_pathways.data.batches.sample_languages`, ``languages_per_step`` languages drawn by
    weight, deterministically from (seed, step)). ``pathway_of(language) -> str | None`` names the
    mask a language's batch goes through (None: dense forward). ``lr(step)`` is the learning rate
    of optimizer step ``step`` (default ``cfg.lr_at``).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Tokenizer,
        corpus: Corpus,
        languages: list[str],
        cfg: TrainConfig,
        out: str | Path,
        *,
        lr: Callable[[int], float] | None = None,
        device: torch.device | None = None,
        dist_info: DistInfo | None = None,
        pathways: PathwayModel | None = None,
        pathway_of: Callable[[str], str | None] | None = None,
        plan: Callable[[int], list[str]] | None = None,
        hooks: Sequence[TrainHook] = (),
        progress: bool = True,
        desc: str = "train",
    ) -> None:
        from .data.batches import MixedStream, language_streams

        self.device = device or torch.device("cpu")
        self.dist = dist_info or DistInfo()
        self.cfg = cfg
        self.lr_at = lr or cfg.lr_at
        self.hooks: list[TrainHook] = list(hooks)
        if cfg.keep_checkpoints > 0 or cfg.eval_every > 0:  # snapshots for averaging, dev WER, best on dev
            from .averaging import CheckpointKeeper

            self.hooks.append(CheckpointKeeper(cfg.keep_checkpoints, cfg.checkpoint_every, cfg.eval_every, cfg.dev_max_utts))
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
        if cfg.batching == "mixed" and (pathways is not None or plan is not None):
            raise InputError("mixed-language batches cannot go through per-language pathways", field="train.batching", expected="language for a pruning phase")
        self.features = None
        if cfg.feature_cache and getattr(corpus, "path", None) is not None:
            from .data.features import FeatureCache

            self.features = FeatureCache(corpus.path, progress=self.progress)
        self.streams, sources, hours = language_streams(corpus, self.languages, tokenizer, cfg.max_duration, cfg.seed,
                                                        self.dist.rank, self.features, cfg.num_buckets)
        self.weights = parse_language_weights(cfg.language_weights, self.languages, hours)
        self.mixed: MixedStream | None = None
        if cfg.batching == "mixed":
            seed = cfg.seed * 1_000_003 + 104_729 * self.dist.rank
            self.mixed = MixedStream(sources, tokenizer, cfg.max_duration, self.weights, seed, num_buckets=cfg.num_buckets)
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
        self.log = MetricsLog(self.out, tensorboard=self.dist.is_main, world_size=self.dist.world_size)
        self.nonfinite: list[tuple[int, float, float]] = []  # (step, loss, grad norm) of consecutive skipped steps
        self.checkpoint_step: int | None = None  # step of the last checkpoint written or restored

    # ----------------------------------------------------------------------------------- set-up
    def _make_optimizer(self) -> torch.optim.Optimizer:
        # fused where available, for dense training only: the pathway engine runs its own masked single-tensor update
        fused = self.cfg.fused_adamw and self.pathways is None and fused_adamw_available(self.device)
        return make_adamw(self.model, lr=self.lr_at(0), weight_decay=self.cfg.weight_decay, betas=self.cfg.betas, fused=fused)

    def reset_optimizer(self) -> None:
        """Fresh AdamW moments (used after a lottery-ticket rewind)."""
        self.optimizer = self._make_optimizer()

    def loss_scale(self, lang: str) -> float:
        """Factor on ``lang``'s mean batch loss in a step: ``K · w_lang`` with ``language_loss: weighted`` and one
        batch of each of the K languages per step (the languages weighted as in a mixed batch, the total as with
        ``equal``), else 1 (with 0 < languages_per_step < K the sampling already follows the weights)."""
        k = self.cfg.languages_per_step
        if self.cfg.language_loss != "weighted" or self.mixed is not None or 0 < k < len(self.languages):
            return 1.0
        return len(self.languages) * self.weights.get(lang, 0.0)

    def _default_plan(self, step: int) -> list[str]:
        from .data.batches import sample_languages

        return sample_languages(self.languages, self.weights, self.cfg.languages_per_step, self.cfg.seed, step)

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

    def forward_batch(self, net: nn.Module, batch: Any, generator: torch.Generator | None = None) -> dict[str, Any]:
        """``net``'s outputs (``loss`` first) on one batch as a training step computes them: padded to the
        shape multiples, SpecAugment drawn from ``generator`` (default: the trainer's), bf16 autocast."""
        if self.cfg.frame_multiple > 1 or self.cfg.token_multiple > 1:
            from .data.shapes import pad_to_multiples

            batch = pad_to_multiples(batch, self.cfg.frame_multiple, self.cfg.token_multiple)
        feats, lens = batch.features.to(self.device), batch.feature_lens.to(self.device)
        if self.spec_augment is not None:
            feats = self.spec_augment(feats, lens, generator=self.aug_generator if generator is None else generator)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return net(feats, lens, batch.tokens.to(self.device), batch.token_lens.to(self.device), **self._loss_kwargs())

    def train_step(self) -> dict[str, float]:
        """One optimizer step over the languages of ``plan(step)`` (or one mixed batch); returns the losses."""
        langs = ["mixed"] if self.mixed is not None else self.plan(self.step)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        net = self.ddp if self.ddp is not None else self.model
        totals: dict[str, float] = {}
        audio = loss_sum = 0.0
        for i, lang in enumerate(langs):
            batch = self.mixed.next() if self.mixed is not None else self.streams[lang].next()
            sync = self.ddp.no_sync() if self.ddp is not None and i < len(langs) - 1 else contextlib.nullcontext()
            with sync:
                with self._pathway_ctx(lang):
                    out = self.forward_batch(net, batch)
                (out["loss"] * self.loss_scale(lang)).backward()
            for h in self.hooks:
                h.after_backward(self, lang)
            for k, v in out.items():
                if v is not None:
                    totals[f"{k}/{lang}"] = float(v.detach())
                    totals[k] = totals.get(k, 0.0) + float(v.detach())
            totals["tokens"] = totals.get("tokens", 0.0) + float(batch.token_lens.sum())
            totals["utterances"] = totals.get("utterances", 0.0) + len(batch.cut_ids)
            loss_sum += float(out["loss"].detach()) * len(batch.cut_ids)  # the loss is a mean over the batch
            audio += float(batch.feature_lens.sum()) * 0.01
        totals["loss_per_token"] = loss_sum / max(totals["tokens"], 1.0)
        for g in self.optimizer.param_groups:
            g["lr"] = self.lr_at(self.step)
        if self.cfg.grad_clip > 0:
            totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip))
        else:
            totals["grad_norm"] = float(torch.nn.utils.get_total_norm([p.grad for p in self.model.parameters() if p.grad is not None]))
        if not self._finite_step(totals):
            return self._skip_step(totals, audio)
        self.nonfinite = []
        active = [n for n in (self.pathway_of(l) for l in langs) if n is not None]
        for h in self.hooks:
            h.before_step(self, langs)
        if self.pathways is not None and active:
            self.pathways.step(self.optimizer, active=sorted(set(active)))
        else:
            self.optimizer.step()
        for h in self.hooks:
            h.after_step(self, langs)
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
            from .progress import progress_bar

            bar = progress_bar(total=target_step, initial=self.step, desc=desc or self.desc, unit="step")
        window: list[dict[str, float]] = []
        t_window = time.perf_counter()
        while self.step < target_step:
            t0 = time.perf_counter()
            info = self.train_step()
            self.train_seconds += time.perf_counter() - t0
            window.append(info)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({"loss/token": f"{info.get('loss_per_token', math.nan):.3f}", "lr": f"{info['lr']:.1e}"})
            if self.step % self.cfg.log_every == 0 or self.step == target_step:
                if self.dist.is_main:
                    self.log.write(self.step, window, time.perf_counter() - t_window)
                window, t_window = [], time.perf_counter()
            if self.cfg.checkpoint_every > 0 and self.step % self.cfg.checkpoint_every == 0 and not self.nonfinite:
                self.save()
        if bar is not None:
            bar.close()
        self.save()

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
        if not self.dist.is_main:  # a DDP rank other than 0: dist was imported above
            dist.barrier()
            return
        bad = [n for n, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            raise NonFiniteError(
                f"the weights hold non-finite values at step {self.step} ({', '.join(bad[:3])}); the checkpoint was not written",
                path=self.out, hint=f"Lower the learning rate (--lr, peak {self.cfg.lr:g}) and run again with --restart",
            )
        hook_meta, hook_tensors = hook_states(self.hooks)
        meta = {"hooks": hook_meta, "step": self.step, "audio_seconds": self.audio_seconds, "train_seconds": self.train_seconds,
                "languages": self.languages, "data_states": data_states, "aug_generator": gen_states,
                "recipe": self.recipe_state, "world_size": self.dist.world_size}
        save_checkpoint(Path(path) if path else self.out / CHECKPOINT_NAME, self.model, meta, self.optimizer, self.masks_state(),
                        extra=hook_tensors)
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
                try:
                    self.pathways.set_mask(name, MaskSet(m))
                except (ValueError, TypeError) as e:
                    raise InputError(f"the masks do not fit the model: {e}", path=path or self.out / CHECKPOINT_NAME,
                                     expected="a checkpoint of the same model and prunable weights") from None
        load_hook_states(self.hooks, meta.get("hooks", {}), ck.extra)
        if self.dist.is_main:
            self.log.truncate(self.step)
        return ck

    def close(self) -> None:
        self.log.close()
