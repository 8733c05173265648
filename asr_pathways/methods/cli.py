"""`asr-pathways prune`: IMP, LTH, LAP, ASR Pathways, adaptive masking or Dynamic ASR Pathways.

    asr-pathways prune --method lth --from runs/dense --languages en,fr,it,nl --target 0.7 --out runs/lth
    asr-pathways prune --method dynamic --from runs/dense --masks-from runs/lap --init-sparsity 0.5 \\
        --target 0.7 --out runs/dynamic

Running the same command again resumes an interrupted run from the checkpoint written right after
its last prune/adapt event; ``--restart`` starts over.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from ..options import add_arguments as add_option_arguments
from ..options import from_args, to_argv
from .config import GROUP_HELP, PruneConfig

EPILOG = """\
methods (docs/method.md):
  imp       per language: rounds of T steps with the mask fixed, prune p more, ..., final round
  lth       imp + rewind the weights to θ_ML (or --rewind-step) and reset the optimizer after each prune
  lap       imp/lth (--lap-base) on pooled multilingual batches; one mask "shared" by all languages
  pathways  fixed per-language masks (--masks-from) + multilingual pathway update for --steps
  adaptive  per language, from a mask (--masks-from, --init-sparsity): train n, adapt at the same
            sparsity from all weights, train T-n, prune; a final round adapts without pruning
  dynamic   adaptive masking of every language's pathway inside multilingual training;
            candidates own+residual (default), all, or own; scores own-updates (default: each
            language ranks blocks on the weights moved by its own share of the updates) or shared

output (runs/NAME):
  run.json (identity) prune.json history.jsonl cost.json masks_summary.json wer_SPLIT.{json,md} hyps_SPLIT.jsonl
  masks/{lang}.safetensors          final mask per language (lap: also masks/shared.safetensors)
  masks/{pathway}/sparsity_S.safetensors   every level reached, for --masks-from ... --init-sparsity S
  lap/pathways/dynamic: the folder is a run folder (config.yaml, checkpoint.safetensors, ...)
  imp/lth/adaptive:     lang/{lang}/ is a complete run folder per language (final weights + mask)

examples:
  asr-pathways prune --method lth --from runs/dense --target 0.7 --out runs/lth
  asr-pathways prune --method adaptive --from runs/dense --masks-from runs/lth --init-sparsity 0.5 --out runs/adapt50
  asr-pathways prune --method pathways --from runs/dense --masks-from runs/lth --steps 2000 --out runs/pathways
  asr-pathways prune --method lap --from runs/dense --target 0.7 --out runs/lap
  asr-pathways prune --method dynamic --from runs/dense --masks-from runs/lap --init-sparsity 0.7 --out runs/dyn-lap70
  torchrun --standalone --nproc_per_node 2 -m asr_pathways.cli prune --method dynamic ...   (DDP; same files)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every option of :class:`~.config.PruneConfig`, in its groups."""
    p.epilog = EPILOG
    add_option_arguments(p, PruneConfig, group_help=GROUP_HELP)


def command_line(cfg: PruneConfig) -> str:
    """The command that makes the run ``cfg`` describes (options at their default are left out)."""
    return "asr-pathways " + " ".join(shlex.quote(a) for a in ["prune", *to_argv(cfg)])


def config_from_args(args: argparse.Namespace) -> PruneConfig:
    cfg = from_args(PruneConfig, args)
    cfg.command = command_line(cfg)
    return cfg


def run(args: argparse.Namespace) -> int:
    """Under ``torchrun --nproc_per_node N`` every phase trains with DDP (gloo on CPU, nccl on GPU):
    masks are broadcast from rank 0 at every event, rank 0 writes every file, and rank 0 alone
    evaluates once training is over."""
    import os

    from ..runtime import shutdown_distributed
    from . import recipe
    from .job import StopRequested

    cfg = config_from_args(args)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    try:
        out = recipe(cfg.method)(cfg)
    except StopRequested as e:
        if main_rank:
            print(f"asr-pathways prune: {e}; run the same command again to resume.", file=sys.stderr)
        shutdown_distributed()
        return 0
    shutdown_distributed()
    if cfg.progress and main_rank:
        print(f"run folder: {out}")
    return 0
