"""Per-language scores for adaptation and pruning events: ``--scores own-updates`` or ``shared``
(``finetune``, the literal reading that fine-tunes a copy per language, is :mod:`.finetune_scores`).

In multilingual training all pathways share one weight set θ, so the plain magnitude score
``|θ|`` is the same for every language. Masks that start equal (Dynamic ASR Pathways initialised
from one LAP mask) then stay equal forever: every adaptation and prune picks the same blocks for
every language. docs/method.md asks instead to "adapt and prune each language's mask with its own
monolingual data". ``own-updates`` does that without extra forward or backward passes:

- ``shared``: the score of every language is computed on the stored weights θ (block norms).
- ``own-updates`` (default of ``dynamic``): the score of language l at an event is computed on
  ``θ_ref + Δ_l``. ``θ_ref`` holds the prunable weights at the previous event (or the start of the
  run); ``Δ_l`` is the part of the updates applied since then that language l's data caused. At
  every optimizer step, with the per-language gradients ``g_k`` (``.grad`` after minus before that
  language's backward, prunable weights only, before clipping) and the applied update
  ``u = θ_after − θ_before`` (AdamW, weight decay, clipping and frozen coordinates included)::

      Δ_l += u ⊙ |g_l| / Σ_k |g_k|          where Σ_k |g_k| > 0
      θ_ref += u                             where Σ_k |g_k| = 0

  The second line: a coordinate that moved although no language had a gradient there in that step
  (momentum, weight decay) moved for nobody in particular; that movement counts for every language
  (it is folded into the shared reference). So ``θ_ref + Σ_l Δ_l = θ`` on every coordinate (up to
  float rounding), ``Σ_l Δ_l`` equals ``θ − θ_ref(event)`` on every coordinate that received a
  gradient at every step, and a language's score moves only through its own data. With a single
  pathway the score is exactly ``θ`` (the recipe then scores ``θ`` directly and keeps no state).
  After every event θ_ref is reset to θ and every Δ_l to zero.

Memory (float32, P = number of prunable weights): ``Δ_l`` for every language (L·P), ``θ_ref`` (P),
the captured gradients of the languages of one step (up to L·P, kept allocated), and two scratch
buffers (P each: the running gradient / θ before the step / the update; and Σ_k |g_k|). For the
tiny preset that is negligible; for a 30 M-parameter model with 4 languages about 1.3 GB.

Under DDP every rank captures its local per-language gradients; the last language's backward is
all-reduced by DDP, so its captured difference is ``mean_r(total) − local partial sum``. Averaging
every captured ``g_k`` over ranks therefore gives exactly the rank-mean of each language's gradient
(the quantity the optimizer sees), the same on every rank; ``u`` is the same on every rank, so the
accumulators are identical everywhere. The state (``θ_ref`` and every ``Δ_l``) rides in every trainer
checkpoint: :class:`UpdateAttribution` is a trainer hook (:class:`asr_pathways.hooks.TrainHook`) and
its ``state_dict`` goes into the checkpoint file.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import torch

from ..errors import InputError
from ..hooks import TrainHook

SCORES = ("own-updates", "shared", "finetune")


class UpdateAttribution(TrainHook):
    """Trainer hook that splits every applied update among the languages of the step.

    ``params``: the prunable parameters (name -> Parameter); ``pathways``: the pathway names;
    ``pathway_of``: a batch's language -> its pathway. All buffers are flat float32 tensors on the
    parameters' device; ``weights(pathway)`` returns ``θ_ref + Δ_pathway`` as name -> tensor views.
    """

    name = "attribution"

    def __init__(self, params: Mapping[str, torch.nn.Parameter], pathways: list[str], pathway_of: Callable[[str], str | None]) -> None:
        self.params = dict(params)
        self.names = list(self.params)
        self.pathways = list(pathways)
        self.pathway_of = pathway_of
        first = next(iter(self.params.values()))
        self.device = first.device
        self.shapes = {n: tuple(p.shape) for n, p in self.params.items()}
        self.numel = sum(p.numel() for p in self.params.values())
        self.ref = torch.zeros(self.numel, dtype=torch.float32, device=self.device)
        self.delta = {k: torch.zeros_like(self.ref) for k in self.pathways}
        self._grads: dict[str, torch.Tensor] = {}  # captured g_k of the current step (allocated once per pathway)
        self._step_paths: list[str] = []
        self._step: int | None = None
        self._a = torch.zeros_like(self.ref)  # running gradient, then θ before the step, then u
        self._b = torch.zeros_like(self.ref)  # Σ_k |g_k|
        self.seconds = 0.0
        self.reset()

    # ----- flat views
    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        out, off = {}, 0
        for n in self.names:
            k = self.params[n].numel()
            out[n] = flat[off : off + k].view(self.shapes[n])
            off += k
        return out

    def _gather(self, dst: torch.Tensor, grads: bool = False) -> None:
        off = 0
        with torch.no_grad():
            for n in self.names:
                p = self.params[n]
                k = p.numel()
                seg = dst[off : off + k]
                if grads:
                    if p.grad is None:
                        seg.zero_()
                    else:
                        seg.copy_(p.grad.detach().reshape(-1))
                else:
                    seg.copy_(p.detach().reshape(-1))
                off += k

    # ----- events
    def reset(self) -> None:
        """θ_ref ← θ, Δ_l ← 0 (after every event)."""
        self._gather(self.ref)
        for d in self.delta.values():
            d.zero_()

    def weights(self, pathway: str) -> dict[str, torch.Tensor]:
        """``θ_ref + Δ_pathway`` (float32, name -> tensor of the parameter's shape)."""
        return self._views(self.ref + self.delta[pathway])

    # ----- trainer hooks
    def _start_step(self, trainer: Any) -> None:
        if self._step != trainer.step:
            self._step = trainer.step
            self._step_paths = []
            self._a.zero_()

    def after_backward(self, trainer: Any, lang: str) -> None:
        t0 = time.perf_counter()
        self._start_step(trainer)
        name = self.pathway_of(lang)
        with torch.no_grad():
            if name is None or name not in self.delta:  # not attributed; keep the running gradient exact
                self._gather(self._a, grads=True)
            elif name in self._step_paths:  # the same pathway twice in one step: add up
                cur = torch.empty_like(self.ref)
                self._gather(cur, grads=True)
                self._grads[name].add_(cur).sub_(self._a)
                self._a.copy_(cur)
            else:
                g = self._grads.get(name)
                if g is None:
                    g = self._grads[name] = torch.zeros_like(self.ref)
                self._gather(g, grads=True)  # .grad now
                g.sub_(self._a)  # minus .grad before this backward
                self._gather(self._a, grads=True)  # the running value for the next difference
                self._step_paths.append(name)
        self.seconds += time.perf_counter() - t0

    def before_step(self, trainer: Any, langs: list[str]) -> None:
        t0 = time.perf_counter()
        self._start_step(trainer)
        dist_info = getattr(trainer, "dist", None)
        if dist_info is not None and dist_info.enabled and self._step_paths:
            import torch.distributed as dist

            for name in self._step_paths:  # same order on every rank (the plan is rank-independent)
                dist.all_reduce(self._grads[name], op=dist.ReduceOp.SUM)
                self._grads[name].div_(dist_info.world_size)
        self._gather(self._a)  # θ before the step
        self.seconds += time.perf_counter() - t0

    def after_step(self, trainer: Any, langs: list[str]) -> None:
        t0 = time.perf_counter()
        u, s = self._a, self._b
        with torch.no_grad():
            off = 0
            for n in self.names:  # u = θ_after − θ_before
                p = self.params[n]
                k = p.numel()
                u[off : off + k].sub_(p.detach().reshape(-1)).neg_()
                off += k
            s.zero_()
            for name in self._step_paths:
                s.add_(self._grads[name].abs_())
            none = s == 0
            self.ref.add_(torch.where(none, u, torch.zeros((), dtype=u.dtype, device=u.device)))
            s.masked_fill_(none, 1.0)
            for name in self._step_paths:
                share = self._grads[name].div_(s)  # |g_l| / Σ_k |g_k| in [0, 1]; 0 where nobody had a gradient
                self.delta[name].addcmul_(u, share)
        self._step_paths = []
        self._step = None
        self.seconds += time.perf_counter() - t0

    # ----- checkpoints
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {"ref": self.ref}
        out.update({f"delta/{k}": v for k, v in self.delta.items()})
        return out

    def state_meta(self) -> dict[str, Any]:
        return {"names": self.names, "shapes": {n: list(s) for n, s in self.shapes.items()}, "pathways": self.pathways}

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
        if list(meta.get("names", [])) != self.names or sorted(meta.get("pathways", [])) != sorted(self.pathways):
            raise ValueError("the saved score state was made for other parameters or pathways")
        with torch.no_grad():
            self.ref.copy_(tensors["ref"])
            for k in self.pathways:
                self.delta[k].copy_(tensors[f"delta/{k}"])

    def state_dict(self) -> dict[str, Any]:
        """θ_ref and every Δ_l (tensors), what they were made for, and the seconds spent (the trainer checkpoints it)."""
        return self.state_tensors() | {"meta": self.state_meta(), "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "ref" not in state:
            raise InputError("the checkpoint holds no --scores own-updates state", hint="Use --restart to start the run over")
        try:
            self.load_state_tensors({k: v for k, v in state.items() if k == "ref" or k.startswith("delta/")}, state.get("meta", {}))
        except (KeyError, ValueError) as e:
            raise InputError(f"the saved score state does not fit this run: {e}", hint="Use --restart to start the run over") from None
        self.seconds = float(state.get("seconds", 0.0))
