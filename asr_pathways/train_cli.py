"""`asr-pathways train`: train a dense RNN-T, multilingual or fine-tuned on some languages.

    asr-pathways train --preset small --corpus data/mls4 --out runs/dense
    asr-pathways train --init runs/dense --languages fr --steps 500 --out runs/mono-fr

A run folder that already holds a checkpoint is resumed when every setting that defines the run
(model, data, optimisation, seed) is the same; a change is refused unless ``--restart``, which
starts the folder clean (checkpoint, metrics and TensorBoard logs). Under
``torchrun --nproc_per_node N`` the same command trains with DDP (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from .errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, help="corpus folder written by `asr-pathways corpus ...`")
    p.add_argument("--out", required=True, help="run folder to write (resumed if it holds a checkpoint)")
    p.add_argument("--preset", default="small", help="model/training preset: tiny, small, base, or a YAML file")
    p.add_argument("--languages", help="comma-separated languages to train on (default: every language of the corpus)")
    p.add_argument("--init", help="start from the weights (and tokenizer) of this run folder, e.g. for monolingual fine-tuning")
    p.add_argument("--steps", type=int, help="optimizer steps (default: the preset's)")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--warmup-steps", type=int, help="linear warm-up steps")
    p.add_argument("--lr-schedule", choices=["cosine", "linear", "constant"], help="decay after warm-up")
    p.add_argument("--max-duration", type=float, help="seconds of audio per batch")
    p.add_argument("--language-weights", help="auto (hours^0.5), uniform, hours, or en=2,fr=1")
    p.add_argument("--languages-per-step", type=int, help="monolingual batches per optimizer step (0 = all languages)")
    p.add_argument("--batching", choices=["language", "mixed"], help="mixed: one mixed-language batch per step, bucketed by duration and token count; language: one monolingual batch per language of the step (default: the preset's)")
    p.add_argument("--feature-cache", dest="feature_cache", action="store_true", default=None, help="compute fbank once per corpus split into CORPUS/features and reuse it (the default)")
    p.add_argument("--no-feature-cache", dest="feature_cache", action="store_false", help="decode audio and compute fbank for every batch")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--seed", type=int, default=0, help="random seed (data order, init, augmentation)")
    p.add_argument("--bf16", dest="bf16", action="store_true", default=None, help="bf16 autocast for encoder/joiner")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in float32")
    p.add_argument("--spec-augment", dest="spec_augment", action="store_true", default=None, help="SpecAugment time/frequency masks (the preset's default)")
    p.add_argument("--no-spec-augment", dest="spec_augment", action="store_false", help="train without SpecAugment")
    p.add_argument("--vocab-size", type=int, help="SentencePiece vocabulary size including blank (default: the preset's)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    p.add_argument("--restart", action="store_true", help="delete the run in --out (checkpoint, metrics, TensorBoard logs) and start over")
    p.add_argument("--eval-split", default="test", help="split to evaluate at the end ('none' to skip)")
    p.add_argument("--eval-max-utts", type=int, default=None, help="evaluate at most this many utterances per language")


_FLAG_TO_TRAIN = {
    "steps": "steps", "lr": "lr", "warmup_steps": "warmup_steps", "lr_schedule": "lr_schedule",
    "max_duration": "max_duration", "language_weights": "language_weights",
    "languages_per_step": "languages_per_step", "checkpoint_every": "checkpoint_every", "seed": "seed", "bf16": "bf16",
    "spec_augment": "spec_augment", "batching": "batching", "feature_cache": "feature_cache",
}


def resolve_config(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    from .asr.model import load_preset
    from .train import TrainConfig

    preset = load_preset(args.preset)
    train = dict(preset.get("train", {}))
    for flag, key in _FLAG_TO_TRAIN.items():
        v = getattr(args, flag, None)
        if v is not None:
            train[key] = v
    flags = {key: "--" + flag.replace("_", "-") for flag, key in _FLAG_TO_TRAIN.items() if getattr(args, flag, None) is not None}
    TrainConfig.from_dict(train, source=str(args.preset), flags=flags)  # validate early, naming the flag
    tok = dict(preset.get("tokenizer", {"vocab_size": 256}))
    if args.vocab_size:
        tok["vocab_size"] = args.vocab_size
    return dict(preset["model"]), train, tok


def check_arguments(args: argparse.Namespace) -> None:
    """Numeric options outside the training config: ``--steps`` > 0, ``--vocab-size`` > 1, ``--eval-max-utts`` > 0."""
    for name, lo in (("steps", 1), ("vocab_size", 2), ("eval_max_utts", 1)):
        v = getattr(args, name, None)
        if v is not None and v < lo:
            raise InputError(f"{v} is out of range", field="--" + name.replace("_", "-"), expected=f"a number >= {lo}")


# settings that change no result: a resumed run may use other values
NON_DEFINING_TRAIN = ("log_every", "checkpoint_every", "eval_every")


def changed_settings(old: Any, new: Any) -> list[str]:
    """``name: old -> new`` for every defining setting of two :class:`RunConfig` that differs."""
    def defining(rc: Any) -> dict[str, Any]:
        return {
            "model": rc.model, "tokenizer": rc.tokenizer, "languages": list(rc.languages),
            "corpus": str(Path(rc.corpus).resolve()), "init": str(Path(rc.init).resolve()) if rc.init else None,
            **{f"train.{k}": v for k, v in rc.train.items() if k not in NON_DEFINING_TRAIN},
        }

    a, b = defining(old), defining(new)
    norm = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731  (YAML reads tuples back as lists)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if norm(a.get(k)) != norm(b.get(k))]


def run(args: argparse.Namespace) -> int:
    import torch

    from . import folders
    from .checkpoint import CHECKPOINT_NAME
    from .data.corpus import Corpus
    from .evaluate import evaluate, wer_table, write_evaluation
    from .runs import TOKENIZER_NAME, copy_tokenizer, load_tokenizer
    from .runtime import init_distributed, pick_device, seed_everything, shutdown_distributed
    from .train import RunConfig, Trainer, TrainConfig, build_model, read_run_config, write_run_config

    out = Path(args.out)
    check_arguments(args)
    device = pick_device(args.device)
    dist_info = init_distributed(device)
    corpus = Corpus(args.corpus)
    languages = args.languages.split(",") if args.languages else list(corpus.languages)
    unknown = [l for l in languages if l not in corpus.languages]
    if unknown:
        raise InputError(f"languages {unknown} are not in the corpus", path=args.corpus, field="--languages", expected=f"some of {corpus.languages}")

    if args.init:
        folders.check_complete(args.init, "run")
        init_cfg = read_run_config(Path(args.init))
        model_cfg, tok_cfg = init_cfg.model, init_cfg.tokenizer
        _, train_cfg, _ = resolve_config(args)
        train_cfg["loss_warmup_steps"] = 0  # the --init model is past its loss warm-up
    else:
        model_cfg, train_cfg, tok_cfg = resolve_config(args)
    cfg = TrainConfig.from_dict(train_cfg)
    rc = RunConfig(
        preset=str(args.preset), model=model_cfg, train=asdict(cfg) | {"betas": list(cfg.betas)}, tokenizer=tok_cfg,
        corpus=str(args.corpus), languages=languages, init=args.init,
        command="asr-pathways " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    # every check before the first write: a refused command leaves the folder as it was
    resume = (out / CHECKPOINT_NAME).is_file() and not args.restart
    if resume:
        changed = changed_settings(read_run_config(out), rc)
        if changed:
            raise InputError(
                "the run folder holds a run with other settings (" + "; ".join(changed) + ")", path=out,
                hint="Use another --out, or --restart to start it over (its checkpoint and logs are deleted)",
            )
    elif not folders.is_empty(out) and not (out / "config.yaml").is_file():
        raise InputError("the output folder exists and is not a run folder", path=out, hint="Choose another --out")
    if args.init:
        tokenizer = load_tokenizer(args.init)
        tok_src = Path(args.init) / TOKENIZER_NAME
    else:
        from .asr.tokenizer import tokenizer_for_corpus

        tokenizer = tokenizer_for_corpus(args.corpus, tok_cfg["vocab_size"]) if dist_info.is_main else None
        if dist_info.enabled:
            import torch.distributed as dist

            dist.barrier()
            tokenizer = tokenizer_for_corpus(args.corpus, tok_cfg["vocab_size"])
        tok_src = Path(tokenizer.path)
    seed_everything(cfg.seed)
    model = build_model(model_cfg, tokenizer.vocab_size)
    trainer = Trainer(model, tokenizer, corpus, languages, cfg, out, device=device, dist_info=dist_info, desc=out.name)
    if dist_info.is_main:
        if not resume:  # --restart, or a run that never reached its first checkpoint: start clean, logs included
            folders.clear(out)
        out.mkdir(parents=True, exist_ok=True)
        folders.begin(out, rc.command)
        copy_tokenizer(tok_src, out)
        if not resume:
            write_run_config(out, rc)
    if resume:
        trainer.restore()
        if dist_info.is_main:
            print(f"resuming {out} at step {trainer.step}/{cfg.steps}")
    elif args.init:
        trainer.restore(Path(args.init), weights_only=True)
    trainer.train_until(cfg.steps)
    trainer.close()
    if dist_info.is_main and args.eval_split != "none":
        result = evaluate(model, tokenizer, corpus, languages, args.eval_split, max_utts=args.eval_max_utts, device=device)
        write_evaluation(out, result, title=f"{out.name} — {args.eval_split}")
        print(wer_table(result, title=f"{out.name} — {args.eval_split}"))
    if dist_info.is_main:
        folders.finish(out)
    shutdown_distributed()
    return 0
