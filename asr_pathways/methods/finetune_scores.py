"""``--scores finetune``: the literal reading of "adapt and prune each language's mask with its own
monolingual data" (Dynamic ASR Pathways; docs/method.md).

At every adapt / prune / finalize event of a dynamic phase, language l is scored on a copy of the
model fine-tuned on l's batches alone:

1. the scratch model (one copy allocated per phase) receives every parameter of θ; its AdamW gets
   the phase's hyper-parameters at the trainer's learning rate of this step and a copy of the phase
   optimizer's moments and step counts (preconditioned like the shared training, not a fresh Adam);
2. K optimizer steps (``--score-steps``) on monolingual batches of l, the forward restricted to l's
   candidate set C_l of this event through the mask engine: C_l is the scratch model's one pathway,
   so the weights outside it count as zero in the forward, get no gradient, and the masked AdamW
   step (:meth:`~asr_pathways.sparsity.pathways.PathwayModel.step`) leaves them and their moments
   as they are; every other parameter trains. Padding, SpecAugment, bf16 autocast and the loss
   warm-up are the trainer's (:meth:`~asr_pathways.train.Trainer.forward_batch`), gradients are
   clipped as in training, and a non-finite step is skipped;
3. :meth:`weights` returns the fine-tuned prunable weights; the phase ranks l's blocks on them
   (``Phase.select``, restricted to C_l).

The real model, its optimizer, the trainer's data streams and the global RNG are left untouched:
the scoring batches come from separate streams over the train split, and the RNG (dropout,
SpecAugment) is forked; both are seeded from (run seed, event index, language). So the main
training sees the same batches as with any other reading, and a resumed run scores an event
exactly as an uninterrupted one with nothing to checkpoint. Cost per event: L × K batches
forward and backward on the copy (``score_batches``, ``score_seconds`` in cost.json), which are
not optimizer steps of the model. Memory: the copy and its AdamW moments (3 × the parameters).

DDP: every rank runs the same fine-tune. The streams and the RNG are seeded without the rank, θ,
the optimizer's moments and the learning rate are the same on every rank, and the scratch model is
not wrapped in DDP (no collective runs), so every rank computes the same masks;
``Phase.apply`` then installs rank 0's masks on every rank (a broadcast), so they are identical even
where kernels might round differently.
"""

from __future__ import annotations

import copy
import time
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from ..sparsity.masks import MaskSet
    from ..train import Trainer

SCORE = "score"  # the scratch model's one pathway: the candidate set being fine-tuned
SEED_TAG = 0x5C0E  # keeps the scoring seeds apart from any other use of (seed, event, language)


def event_seed(seed: int, event: int, language: str) -> int:
    """The seed of ``language``'s scoring fine-tune at event ``event`` (no rank: the same on every rank).

    >>> event_seed(0, 3, "en") == event_seed(0, 3, "en") != event_seed(0, 4, "en") != event_seed(0, 3, "fr")
    True
    """
    entropy = [seed & 0xFFFFFFFF, event, zlib.crc32(language.encode()), SEED_TAG]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class FinetuneScores:
    """The scoring fine-tune of one phase: a scratch copy of ``model``, its AdamW and its data.

    ``model`` is copied at once (before the trainer wraps it in DDP); ``bind`` gives the trainer
    whose weights, optimizer, data and forward the fine-tune follows. ``names``: the prunable
    parameters; ``steps``: K; ``seed``: the run's seed.
    """

    def __init__(self, model: nn.Module, names: list[str], steps: int, seed: int) -> None:
        from ..sparsity.pathways import PathwayModel

        self.model = copy.deepcopy(model)
        self.names, self.steps, self.seed = list(names), int(steps), int(seed)
        self.pm = PathwayModel(self.model, self.names)
        self.trainer: Trainer | None = None
        self.event_batches, self.event_seconds, self.event_pathways = 0, 0.0, 0

    @property
    def tr(self) -> Trainer:
        assert self.trainer is not None, "FinetuneScores.bind(trainer) first"
        return self.trainer

    def bind(self, trainer: Trainer) -> "FinetuneScores":
        """Follow ``trainer``: the scratch AdamW mirrors its parameter groups, the streams its corpus."""
        from ..data.batches import language_streams

        self.trainer = trainer
        scratch = dict(zip((id(p) for p in trainer.model.parameters()), self.model.parameters()))
        groups = [{"params": [scratch[id(p)] for p in g["params"]]} for g in trainer.optimizer.param_groups]
        self.pairs = [(p, scratch[id(p)]) for g in trainer.optimizer.param_groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(groups)
        cfg = trainer.cfg
        _, self.sources, _ = language_streams(trainer.corpus, trainer.languages, trainer.tokenizer, cfg.max_duration, self.seed,
                                              features=trainer.features, num_buckets=cfg.num_buckets)
        return self

    def _load(self) -> None:
        """θ, the phase optimizer's moments and step counts, and its hyper-parameters at this step's learning rate."""
        tr = self.tr
        main, lr = tr.optimizer, tr.lr_at(tr.step)
        with torch.no_grad():
            for p, q in self.pairs:
                q.copy_(p)
                src = main.state.get(p)
                if not src:
                    self.optimizer.state.pop(q, None)
                    continue
                dst = self.optimizer.state[q]
                for k, v in src.items():
                    if isinstance(v, torch.Tensor) and isinstance(dst.get(k), torch.Tensor) and dst[k].shape == v.shape:
                        dst[k].copy_(v)
                    else:
                        dst[k] = v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
        for g, h in zip(self.optimizer.param_groups, main.param_groups):
            g.update({k: v for k, v in h.items() if k != "params"}, lr=lr)

    def _stream(self, language: str, seed: int) -> Any:
        from ..data.batches import LanguageStream

        cuts, feats = self.sources[language]
        return LanguageStream(cuts, self.tr.tokenizer, language, self.tr.cfg.max_duration, seed, num_buckets=self.tr.cfg.num_buckets,
                              features=feats)

    def _language(self, pathway: str) -> str:
        langs = [l for l in self.tr.languages if self.tr.pathway_of(l) == pathway]
        if len(langs) != 1:
            raise ValueError(f"--scores finetune needs one language per pathway; {pathway!r} has {langs}")
        return langs[0]

    def weights(self, pathway: str, candidates: MaskSet | None, event: int) -> dict[str, torch.Tensor]:
        """``pathway``'s prunable weights after its fine-tune within ``candidates`` (None: every weight)
        at event ``event``: views of the scratch model, valid until the next call."""
        from ..sparsity.masks import MaskSet

        t0, tr = time.perf_counter(), self.tr
        lang = self._language(pathway)
        seed = event_seed(self.seed, event, lang)
        self._load()
        params = dict(self.model.named_parameters())
        self.pm.set_mask(SCORE, candidates if candidates is not None else MaskSet.ones_like({n: params[n] for n in self.names}))
        stream, gen = self._stream(lang, seed), torch.Generator().manual_seed(seed)
        cuda = [tr.device.index if tr.device.index is not None else torch.cuda.current_device()] if tr.device.type == "cuda" else []
        self.model.train()
        with torch.random.fork_rng(devices=cuda):  # dropout draws from a seeded copy of the RNG; training's is restored
            torch.manual_seed(seed)
            for _ in range(self.steps):
                self._step(stream.next(), gen)
        self.optimizer.zero_grad(set_to_none=True)
        self.event_batches += self.steps
        self.event_pathways += 1
        self.event_seconds += time.perf_counter() - t0
        return {n: params[n].detach() for n in self.names}

    def _step(self, batch: Any, gen: torch.Generator) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with self.pm.pathway(SCORE):
            out = self.tr.forward_batch(self.model, batch, generator=gen)
            out["loss"].backward()
        clip, params = self.tr.cfg.grad_clip, list(self.model.parameters())
        norm = torch.nn.utils.clip_grad_norm_(params, clip) if clip > 0 else \
            torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        if bool(torch.isfinite(out["loss"].detach())) and bool(torch.isfinite(norm)):
            self.pm.step(self.optimizer, active=[SCORE])

    def end_event(self, label: str, verbose: bool) -> dict[str, float]:
        """The event's scoring batches and seconds (to add to the phase's cost); one line on stdout if ``verbose``."""
        out = {"score_batches": self.event_batches, "score_seconds": self.event_seconds}
        if verbose and self.event_pathways:
            print(f"{label}: --scores finetune: {self.event_pathways} languages x {self.steps} steps on a model copy, "
                  f"{self.event_batches} batches in {self.event_seconds:.2f} s", flush=True)
        self.event_batches, self.event_seconds, self.event_pathways = 0, 0.0, 0
        return out
