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
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .asr.searches import DECODING_HELP, DECODINGS, DEFAULT_BEAM
from .errors import InputError
from .options import add_arguments as add_option_arguments
from .options import flag_of, from_args, option, to_argv, values_to_argv
from .train_config import TrainConfig


@dataclass
class TrainOptions:
    """The options of `asr-pathways train` besides the training settings (:class:`~asr_pathways.train_config.TrainConfig`'s
    options, which override the preset's and are kept in ``overrides``)."""

    corpus: str = option(help="corpus folder written by `asr-pathways corpus ...`")
    out: str = option(help="run folder to write (resumed when it holds the same run)", defining=False)
    preset: str = option("small", help="model/training preset: tiny, small, base, or a YAML file")
    languages: list[str] = option(list, help="comma-separated languages to train on", default_text="every language of the corpus")
    init: str | None = option(None, help="start from the weights (and tokenizer) of this run folder, e.g. for monolingual "
                                         "fine-tuning", metavar="RUN")
    vocab_size: int | None = option(None, help="SentencePiece vocabulary size including blank", default_text="the preset's")
    device: str = option("auto", help="cpu, cuda, cuda:1 or auto", defining=False)
    restart: bool = option(False, help="delete the run in --out (checkpoint, metrics, TensorBoard logs) and start over",
                           defining=False, record=False)
    eval_split: str = option("test", help="split to evaluate at the end", choices=("test", "dev", "none"), defining=False)
    eval_max_utts: int | None = option(None, help="evaluate at most this many utterances per language", defining=False)
    decoding: str = option("greedy", help="search of the evaluation at the end: " + DECODING_HELP, choices=DECODINGS, defining=False)
    beam: int = option(DEFAULT_BEAM, help="hypotheses kept by --decoding beam or modified_beam", defining=False)
    overrides: dict[str, Any] = option(dict, help="TrainConfig options given on the command line", cli=False)

    def argv(self) -> list[str]:
        """The command line that gives these options (what the run records)."""
        return ["train", *to_argv(self), *values_to_argv(TrainConfig, self.overrides)]


def train_options() -> list[str]:
    """The :class:`TrainConfig` fields that `train` exposes as options."""
    return [f.name for f in fields(TrainConfig) if f.metadata.get("cli")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_option_arguments(p, TrainOptions)
    g = p.add_argument_group("training settings", "Each overrides the preset's value (--preset).")
    add_option_arguments(g, TrainConfig, defaults={k: None for k in train_options()}, default_text="the preset's")


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    overrides = {k: getattr(args, k) for k in train_options() if getattr(args, k, None) is not None}
    return from_args(TrainOptions, args, overrides=overrides)


def resolve_config(opts: TrainOptions) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The model, train and tokenizer sections: the preset's, with the options' overrides (checked)."""
    from .asr.model import load_preset

    preset = load_preset(opts.preset)
    train = dict(preset.get("train", {})) | opts.overrides
    flags = {key: flag_of(TrainConfig, key, tristate=True) for key in opts.overrides}
    TrainConfig.from_dict(train, source=str(opts.preset), flags=flags)  # validate early, naming the flag
    tok = dict(preset.get("tokenizer", {"vocab_size": 256}))
    if opts.vocab_size:
        tok["vocab_size"] = opts.vocab_size
    return dict(preset["model"]), train, tok


def check_arguments(opts: TrainOptions) -> None:
    """Numeric options outside the training config: ``--steps`` > 0, ``--vocab-size`` > 1, ``--eval-max-utts`` > 0."""
    for name, v, lo in (("steps", opts.overrides.get("steps"), 1), ("vocab_size", opts.vocab_size, 2),
                        ("eval_max_utts", opts.eval_max_utts, 1), ("beam", opts.beam, 1)):
        if v is not None and v < lo:
            raise InputError(f"{v} is out of range", field="--" + name.replace("_", "-"), expected=f"a number >= {lo}")


def run(args: argparse.Namespace) -> int:
    import torch

    from . import folders
    from .data.corpus import Corpus
    from .evaluate import evaluate, wer_table, write_evaluation
    from .runs import (TOKENIZER_NAME, RunConfig, build_model, copy_tokenizer, load_tokenizer, open_run_folder, read_run_config,
                       train_defining, write_run_config)
    from .runtime import init_distributed, pick_device, seed_everything, shutdown_distributed
    from .train import Trainer

    opts = options_from_args(args)
    out = Path(opts.out)
    check_arguments(opts)
    device = pick_device(opts.device)
    dist_info = init_distributed(device)
    corpus = Corpus(opts.corpus)
    languages = list(opts.languages) or list(corpus.languages)
    unknown = [l for l in languages if l not in corpus.languages]
    if unknown:
        raise InputError(f"languages {unknown} are not in the corpus", path=opts.corpus, field="--languages", expected=f"some of {corpus.languages}")
    for lang in languages:  # the manifests are checked before anything (even the corpus's tokenizer) is written
        corpus.cuts(lang, "train")

    if opts.init:
        folders.check_complete(opts.init, "run")
        init_cfg = read_run_config(Path(opts.init))
        model_cfg, tok_cfg = init_cfg.model, init_cfg.tokenizer
        _, train_cfg, _ = resolve_config(opts)
        train_cfg["loss_warmup_steps"] = 0  # the --init model is past its loss warm-up
    else:
        model_cfg, train_cfg, tok_cfg = resolve_config(opts)
    if opts.decoding != "greedy" and opts.eval_split != "none" and model_cfg.get("loss") == "ctc":
        raise InputError("beam search needs a transducer; this model is CTC-only", field="--decoding", expected="greedy")
    cfg = TrainConfig.from_dict(train_cfg)
    rc = RunConfig(
        preset=str(opts.preset), model=model_cfg, train=asdict(cfg) | {"betas": list(cfg.betas)}, tokenizer=tok_cfg,
        corpus=str(opts.corpus), languages=languages, init=opts.init,
        command="asr-pathways " + " ".join(shlex.quote(a) for a in opts.argv()),
    )
    # every check before the first write: a refused command leaves the folder as it was
    legacy = train_defining(read_run_config(out)) if (out / "config.yaml").is_file() else None  # written before run.json
    folder = open_run_folder(out, train_defining(rc), kind="train", restart=opts.restart, dist=dist_info, legacy=legacy)
    resume = folder.resumed
    if opts.init:
        tokenizer = load_tokenizer(opts.init)
        tok_src = Path(opts.init) / TOKENIZER_NAME
    else:
        from .asr.tokenizer import tokenizer_for_corpus

        tokenizer = tokenizer_for_corpus(opts.corpus, tok_cfg["vocab_size"]) if dist_info.is_main else None
        if dist_info.enabled:
            import torch.distributed as dist

            dist.barrier()
            tokenizer = tokenizer_for_corpus(opts.corpus, tok_cfg["vocab_size"])
        tok_src = Path(tokenizer.path)
    seed_everything(cfg.seed)
    model = build_model(model_cfg, tokenizer.vocab_size)
    trainer = Trainer(model, tokenizer, corpus, languages, cfg, out, device=device, dist_info=dist_info, desc=out.name)
    if resume:  # a checkpoint that does not fit is refused before the folder is marked in progress
        trainer.restore()
    elif opts.init:
        trainer.restore(Path(opts.init), weights_only=True)
    if dist_info.is_main:
        if not resume:  # --restart, or a run that never reached its first checkpoint: start clean, logs included
            folders.clear(out)
        out.mkdir(parents=True, exist_ok=True)
        folder.claim()
        folders.begin(out, rc.command)
        copy_tokenizer(tok_src, out)
        if not resume:
            write_run_config(out, rc)
        if resume:
            print(f"resuming {out} at step {trainer.step}/{cfg.steps}")
    trainer.train_until(cfg.steps)
    trainer.close()
    if dist_info.is_main and opts.eval_split != "none":
        result = evaluate(model, tokenizer, corpus, languages, opts.eval_split, max_utts=opts.eval_max_utts, device=device,
                          decoding=opts.decoding, beam=opts.beam)
        write_evaluation(out, result, title=f"{out.name} — {opts.eval_split}")
        print(wer_table(result, title=f"{out.name} — {opts.eval_split}"))
    if dist_info.is_main:
        folders.finish(out)
    shutdown_distributed()
    return 0
