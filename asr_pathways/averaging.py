"""Checkpoint averaging and best-on-dev selection: snapshots kept during training, dev WER logged.

During training (``train.keep_checkpoints: N`` and/or ``train.eval_every: K`` in a preset; CLI
``--keep-checkpoints N --eval-every K``) the :class:`CheckpointKeeper` hook

- every ``checkpoint_every`` steps writes a weights-only snapshot ``RUN/checkpoints/step-NNNNNNN.safetensors``
  (model + masks, no optimizer) and keeps the last N;
- every K steps decodes the dev split (``eval_max_utts`` utterances per language), logs its WER to
  TensorBoard (``dev/wer`` and ``dev/wer/<lang>``) and ``RUN/dev_wer.jsonl``, and keeps the best
  weights so far in ``RUN/best.safetensors``.

Afterwards ``asr-pathways average RUN --last N --out RUN_AVG`` writes a run folder whose weights are
the element-wise mean of the last N snapshots (masks: the newest snapshot's), and
``asr-pathways average RUN --best-dev --out RUN_BEST`` one holding the best weights on dev (from
``best.safetensors``, or by decoding dev with every kept snapshot). Either folder works with
``evaluate``, ``export`` and ``transcribe``.

>>> import torch
>>> a, b = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(7)}, {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
>>> average_states([a, b])
{'w': tensor([2., 4.]), 'n': tensor(9)}
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Sequence

import torch

from .errors import InputError

__all__ = ["CheckpointKeeper", "average_states", "snapshots", "average_run", "best_dev_run", "SNAPSHOT_DIR", "BEST_NAME"]

SNAPSHOT_DIR = "checkpoints"
BEST_NAME = "best.safetensors"
DEV_LOG = "dev_wer.jsonl"
_STEP = re.compile(r"^step-(\d+)\.safetensors$")


def snapshots(run: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's kept snapshots, oldest first."""
    folder = Path(run) / SNAPSHOT_DIR
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.safetensors") if (m := _STEP.match(p.name))] if folder.is_dir() else []
    return sorted(found)


def average_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating tensors (in float64, cast back); other tensors from the last state."""
    if not states:
        raise ValueError("nothing to average")
    keys = set(states[-1])
    for s in states:
        if set(s) != keys:
            raise InputError("checkpoints hold different tensors", field="model", expected="snapshots of one run")
    out = {}
    for k in states[-1]:
        last = states[-1][k]
        if last.is_floating_point():
            if any(s[k].shape != last.shape for s in states):
                raise InputError(f"tensor {k} changes shape between checkpoints", field=k)
            out[k] = (sum(s[k].double() for s in states) / len(states)).to(last.dtype)
        else:
            out[k] = last.clone()
    return out


class CheckpointKeeper:
    """Trainer hook: weights-only snapshots (last ``keep``) and dev WER every ``eval_every`` steps."""

    name = "checkpoint_keeper"

    def __init__(self, keep: int, every: int, eval_every: int = 0, eval_max_utts: int | None = 200) -> None:
        self.keep, self.every, self.eval_every, self.eval_max_utts = int(keep), int(every), int(eval_every), eval_max_utts
        self.best_wer: float | None = None
        self.best_step: int | None = None

    def after_backward(self, trainer: Any, lang: str) -> None:
        pass

    def before_step(self, trainer: Any, langs: list[str]) -> None:
        pass

    def after_step(self, trainer: Any, langs: list[str]) -> None:
        step = trainer.step + 1  # the step just taken (the trainer increments after its hooks)
        if not trainer.dist.is_main:
            return
        if self.keep > 0 and self.every > 0 and step % self.every == 0:
            self.snapshot(trainer, trainer.out / SNAPSHOT_DIR / f"step-{step:07d}.safetensors", step)
            for _, old in snapshots(trainer.out)[: -self.keep]:
                old.unlink(missing_ok=True)
                old.with_suffix(".json").unlink(missing_ok=True)
        if self.eval_every > 0 and step % self.eval_every == 0:
            self.dev_eval(trainer, step)

    def snapshot(self, trainer: Any, path: Path, step: int, extra: dict[str, Any] | None = None) -> None:
        from .checkpoint import save_checkpoint

        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, trainer.model, {"step": step, "languages": trainer.languages, **(extra or {})},
                        masks=trainer.masks_state(), save_rng=False)

    def dev_eval(self, trainer: Any, step: int) -> None:
        from .evaluate import evaluate
        from .io import atomic_write_text

        res = evaluate(trainer.model, trainer.tokenizer, trainer.corpus, trainer.languages, "dev", pathways=trainer.pathways,
                       pathway_of=trainer.pathway_of, max_utts=self.eval_max_utts, device=trainer.device, progress=False)
        trainer.model.train()
        wer = float(res["average"]["wer"])
        row = {"step": step, "wer": wer, "languages": {l: r["wer"] for l, r in res["languages"].items()}}
        log = trainer.out / DEV_LOG
        rows = [l for l in log.read_text().splitlines() if l.strip() and json.loads(l)["step"] < step] if log.is_file() else []
        atomic_write_text(log, "".join(r + "\n" for r in rows + [json.dumps(row)]))
        log = getattr(trainer, "log", None)
        if log is not None:
            log.add_scalars(step, {"dev/wer": wer, **{f"dev/wer/{lang}": w for lang, w in row["languages"].items()}})
        if self.best_wer is None or wer < self.best_wer:
            self.best_wer, self.best_step = wer, step
            self.snapshot(trainer, trainer.out / BEST_NAME, step, {"dev_wer": wer, "dev_max_utts": self.eval_max_utts})

    def state_dict(self) -> dict[str, Any]:
        return {"best_wer": self.best_wer, "best_step": self.best_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_wer, self.best_step = state.get("best_wer"), state.get("best_step")


# ------------------------------------------------------------------------------ new run folders
def _write_run(src: Path, out: Path, state: dict[str, torch.Tensor], masks: dict, meta: dict[str, Any]) -> Path:
    """A run folder ``out`` with ``src``'s config and tokenizer and the given weights and masks."""
    from .checkpoint import CHECKPOINT_NAME, save_checkpoint
    from .runs import TOKENIZER_NAME, build_model, load_tokenizer, read_run_config

    rc = read_run_config(src)
    model = build_model(rc.model, load_tokenizer(src).vocab_size)
    model.load_state_dict(state)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", TOKENIZER_NAME):
        shutil.copyfile(src / name, out / name)
    return save_checkpoint(out / CHECKPOINT_NAME, model, meta, masks=masks, save_rng=False)


def average_run(run: str | Path, out: str | Path, last: int) -> dict[str, Any]:
    """Write ``out``: a run folder with the mean of ``run``'s last ``last`` snapshots."""
    from .checkpoint import load_checkpoint

    run, out = Path(run), Path(out)
    kept = snapshots(run)
    if len(kept) < max(1, last):
        raise InputError(f"the run keeps {len(kept)} snapshot(s), {last} asked", path=run / SNAPSHOT_DIR, field="--last",
                         hint="train with --keep-checkpoints N (snapshots every --checkpoint-every steps)")
    chosen = kept[-last:]
    cks = [load_checkpoint(p) for _, p in chosen]
    masks = cks[-1].masks
    same_masks = all(set(c.masks) == set(masks) and all(torch.equal(c.masks[k][n], masks[k][n]) for k in masks for n in masks[k]) for c in cks)
    meta = {"step": chosen[-1][0], "averaged_steps": [s for s, _ in chosen], "masks_identical": same_masks, "source_run": str(run)}
    _write_run(run, out, average_states([c.model for c in cks]), masks, meta)
    return meta


def best_dev_run(run: str | Path, out: str | Path, max_utts: int | None = 200, device: str = "cpu") -> dict[str, Any]:
    """Write ``out``: a run folder with ``run``'s best weights on dev (``best.safetensors`` when the
    run logged dev WER, else decoding dev with every kept snapshot and the final checkpoint)."""
    from .checkpoint import CHECKPOINT_NAME, load_checkpoint

    run, out = Path(run), Path(out)
    if (run / BEST_NAME).is_file():
        ck = load_checkpoint(run / BEST_NAME)
        meta = {"step": ck.meta.get("step"), "dev_wer": ck.meta.get("dev_wer"), "selected_from": "best.safetensors", "source_run": str(run)}
        _write_run(run, out, ck.model, ck.masks, meta)
        return meta
    candidates = [p for _, p in snapshots(run)] + [run / CHECKPOINT_NAME]
    scores = []
    for path in candidates:
        ck = load_checkpoint(path)
        scores.append((_dev_wer(run, ck, max_utts, device), int(ck.meta.get("step", 0)), path))
    wer, step, path = min(scores, key=lambda s: (s[0], -s[1]))
    ck = load_checkpoint(path)
    meta = {"step": step, "dev_wer": wer, "selected_from": str(path), "candidates": {str(p): w for w, _, p in scores}, "source_run": str(run)}
    _write_run(run, out, ck.model, ck.masks, meta)
    return meta


def _dev_wer(run: Path, ck: Any, max_utts: int | None, device: str) -> float:
    from .data.corpus import Corpus
    from .evaluate import evaluate, pathways_for_run
    from .runs import build_model, load_tokenizer, read_run_config

    rc = read_run_config(run)
    tok = load_tokenizer(run)
    model = build_model(rc.model, tok.vocab_size)
    model.load_state_dict(ck.model)
    pm, pathway_of = pathways_for_run(model, ck.masks, rc.languages)
    res = evaluate(model, tok, Corpus(rc.corpus), rc.languages, "dev", pathways=pm, pathway_of=pathway_of, max_utts=max_utts,
                   device=device, progress=False)
    return float(res["average"]["wer"])


# ---------------------------------------------------------------------------------------- CLI
def add_arguments(p: Any) -> None:
    p.description = (
        "Write a new run folder from a run's kept checkpoints: the average of the last N snapshots (--last N), or the "
        "weights with the best dev WER (--best-dev). Snapshots are kept by `train --keep-checkpoints N`; dev WER is "
        "logged by `train --eval-every K`. The new folder works with evaluate, export and transcribe."
    )
    p.add_argument("run", help="run folder trained with --keep-checkpoints (and/or --eval-every)")
    p.add_argument("--out", required=True, help="run folder to write")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--last", type=int, help="average the last N kept snapshots")
    how.add_argument("--best-dev", action="store_true", help="keep the weights with the best dev WER (best.safetensors, or "
                     "decode dev with every kept snapshot and the final checkpoint)")
    p.add_argument("--max-utts", type=int, default=200, help="--best-dev without best.safetensors: dev utterances per language")
    p.add_argument("--device", default="cpu", help="--best-dev: device for decoding dev")


def run(args: Any) -> int:
    if args.last is not None and args.last < 1:
        raise InputError(f"--last must be at least 1, got {args.last}", field="--last")
    if Path(args.out).resolve() == Path(args.run).resolve():
        raise InputError("--out must be a new folder, not the run itself", field="--out")
    meta = average_run(args.run, args.out, args.last) if args.last else best_dev_run(args.run, args.out, args.max_utts, args.device)
    what = f"average of steps {meta['averaged_steps']}" if args.last else f"best on dev: step {meta['step']} (WER {100 * meta['dev_wer']:.2f}%)"
    print(f"wrote {args.out}: {what}" + ("" if meta.get("masks_identical", True) else " (masks differ between snapshots: the newest are kept)"))
    return 0
