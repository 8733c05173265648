"""`asr-pathways prune`: IMP, LTH, LAP, ASR Pathways, adaptive masking or Dynamic ASR Pathways.

    asr-pathways prune --method lth --from runs/dense --languages en,fr,it,nl --target 0.7 --out runs/lth
    asr-pathways prune --method dynamic --from runs/dense --masks-from runs/lap --init-sparsity 0.5 \\
        --target 0.7 --out runs/dynamic

Running the same command again resumes an interrupted run from the checkpoint written right after
its last prune/adapt event; ``--restart`` starts over.
"""

from __future__ import annotations

import argparse
import sys

from .common import (
    CANDIDATE_SETS,
    LR_SCHEDULES,
    LR_SCOPES,
    METHODS,
    OPTIMIZER_STATES,
    PRUNED_WEIGHTS,
    SCORES,
    PruneConfig,
    StopRequested,
    command_line,
)

EPILOG = """\
methods (METHOD.md):
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
  prune.json history.jsonl cost.json masks_summary.json wer_SPLIT.{json,md} hyps_SPLIT.jsonl
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


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None/False ones (their help says what happens)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, True) or action.required:
            return action.help
        return super()._get_help_string(action)



def _list(v: str | None) -> list[str] | None:
    return None if v is None else [x.strip() for x in v.split(",") if x.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = _Formatter
    p.epilog = EPILOG
    g = p.add_argument_group("what to prune")
    g.add_argument("--method", required=True, choices=METHODS, help="the pruning recipe")
    g.add_argument("--from", dest="source", required=True,
                   help="the dense multilingual run (θ_ML) whose weights every method starts from; imp/lth/adaptive accept a "
                        "per-language template such as runs/mono-{lang}")
    g.add_argument("--out", required=True, help="run folder to write (resumed when it holds the same run)")
    g.add_argument("--languages", help="comma-separated languages (default: the --from run's languages)")
    g.add_argument("--corpus", help="corpus folder (default: the --from run's)")
    g = p.add_argument_group("schedule")
    g.add_argument("--target", type=float, default=0.7, help="target sparsity of every pathway (over the prunable weights)")
    g.add_argument("--masks-from", help="prune run whose saved masks start this one (masks/{lang|shared}/sparsity_S)")
    g.add_argument("--init-sparsity", type=float, default=None,
                   help="starting sparsity, a level saved by --masks-from (default: 0 for imp/lth/lap, the target for the others)")
    g.add_argument("--prune-step", type=float, default=0.1, help="p: sparsity added by each prune")
    g.add_argument("--prune-step-mode", choices=["absolute", "fraction"], default="absolute",
                   help="absolute: s + p; fraction: s + p * (1 - s) (a fraction of what remains)")
    g.add_argument("--round-steps", type=int, default=200, help="T: optimizer steps per pruning round")
    g.add_argument("--adapt-at", default=None,
                   help="adaptive/dynamic: step(s) n within each round at which masks adapt, comma-separated for several "
                        "adaptations per round (default: T/2)")
    g.add_argument("--steps", type=int, default=None, help="pathways: training steps with the fixed masks (default: T)")
    g.add_argument("--lap-base", choices=["imp", "lth"], default="lth", help="lap: without or with rewinding")
    g.add_argument("--rewind-step", type=int, default=0,
                   help="lth / lap-lth: rewind to the weights after this many steps of the first round (0: θ_ML itself)")
    g = p.add_argument_group("mask selection")
    g.add_argument("--block", default="8x1", help="block shape RxC: R consecutive output rows of C input columns (1x1: unstructured)")
    g.add_argument("--norm", choices=["l2", "l1"], default="l2", help="block score")
    g.add_argument("--scope", choices=["layer", "global"], default="layer", help="same sparsity per matrix, or one global ranking")
    g.add_argument("--candidates", choices=CANDIDATE_SETS, default="own+residual",
                   help="adaptive/dynamic: weights a pathway may choose from at an adaptation (own+residual: its own plus those no "
                        "other language uses; one language: all of P)")
    g.add_argument("--prune-candidates", choices=["same", "own"], default="same",
                   help="adaptive/dynamic: a prune chooses from the same candidate set, or only within the current mask")
    g.add_argument("--scores", choices=list(SCORES), default=None,
                   help="adaptive/dynamic: what each pathway's blocks are ranked on at an adaptation or prune. own-updates: the "
                        "weights at the previous event plus that language's share of every update since (|g_l| / sum_k |g_k| "
                        "per coordinate), so that each language re-prunes with its own data; shared: the stored weights, the same "
                        "for every language (masks that start equal stay equal). Default: own-updates for dynamic, shared otherwise")
    g.add_argument("--pruned-weights", choices=PRUNED_WEIGHTS, default="keep_values",
                   help="keep_values: masked forward, stored values kept; zero_trainable (PARP, single mask only): pruned weights "
                        "zeroed at each event and trained between events")
    g.add_argument("--include", help="comma-separated name patterns of prunable weights (default: the engine's)")
    g.add_argument("--exclude", help="comma-separated name patterns excluded from pruning (default: the engine's)")
    g = p.add_argument_group(
        "training of the pruning phases",
        "Every phase starts from the --from run's weights with fresh AdamW moments (--optimizer-state). Its learning "
        "rate follows spans (--lr-schedule-scope: each round between prunes, or the whole phase): a linear warm-up to "
        "the peak (--warmup-steps), then a decay to --final-lr-ratio x peak at the span's last step (--lr-schedule). "
        "The old behaviour (the dense peak, constant, no warm-up) is --lr-factor 1 --lr-schedule constant "
        "--warmup-steps 0 --lr-schedule-scope phase. docs/method.md, 'Choices of this implementation'.",
    )
    g.add_argument("--lr", type=float, default=None,
                   help="peak learning rate of every span of the schedule (default: the --from run's peak x --lr-factor)")
    g.add_argument("--lr-factor", type=float, default=0.5,
                   help="default peak = the --from run's peak learning rate x this (the dense run ended at its final_lr_ratio, "
                        "0.05, of that peak; returning to all of it undoes much of its annealing). Ignored with --lr")
    g.add_argument("--lr-schedule", choices=list(LR_SCHEDULES), default="cosine",
                   help="after the warm-up of every span: decay to --final-lr-ratio x peak at the span's last step (cosine, "
                        "linear), or stay at the peak (constant)")
    g.add_argument("--lr-schedule-scope", choices=list(LR_SCOPES), default="round",
                   help="round: the schedule (warm-up, then decay) restarts after every prune event (and so after every LTH "
                        "rewind), each round between prunes is one span; phase: one span over the whole phase. A phase "
                        "without prunes (pathways, adaptive/dynamic from the target) is one span either way")
    g.add_argument("--warmup-steps", type=int, default=None,
                   help="linear warm-up steps at the start of every span (at most span - 1). Default: a tenth of the span "
                        "(rounded up), at most 2/(1-beta2) = 100 steps for AdamW's beta2 = 0.98")
    g.add_argument("--final-lr-ratio", type=float, default=None,
                   help="learning rate of a span's last step / peak (default: the --from run's final_lr_ratio, 0.05)")
    g.add_argument("--optimizer-state", choices=list(OPTIMIZER_STATES), default="fresh",
                   help="AdamW moments a phase starts with: fresh (new moments; the warm-up lets the second moments settle "
                        "before the peak), or carry (the --from run's moments and step counts, read from its checkpoint; "
                        "coordinates outside the masks keep theirs frozen until revived). After an LTH rewind the moments "
                        "are always fresh")
    g.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default: the --from run's)")
    g.add_argument("--max-duration", type=float, default=None, help="seconds of audio per batch (default: the --from run's)")
    g.add_argument("--languages-per-step", type=int, default=0,
                   help="lap/pathways/dynamic: monolingual batches per step (0: one per language; k: k languages sampled by weight)")
    g.add_argument("--language-weights", default=None, help="sampling weights: auto, uniform, hours, or en=2,fr=1")
    g.add_argument("--checkpoint-every", type=int, default=None, help="extra checkpoints between events (default: the --from run's)")
    g.add_argument("--seed", type=int, default=0, help="seed of data order and augmentation")
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    g = p.add_argument_group("evaluation and control")
    g.add_argument("--eval-split", choices=["test", "dev", "none"], default="test", help="split for the WER table at the end")
    g.add_argument("--eval-max-utts", type=int, default=None, help="evaluate at most this many utterances per language")
    g.add_argument("--restart", action="store_true", help="delete the run in --out and start over")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars or tables on stdout")
    g.add_argument("--stop-after-events", type=int, default=None,
                   help="stop after this many prune/adapt events, as if interrupted (resume by running the command again)")


def config_from_args(args: argparse.Namespace, argv: list[str] | None = None) -> PruneConfig:
    adapt = [int(x) for x in _list(args.adapt_at)] if args.adapt_at else []
    cfg = PruneConfig(
        method=args.method, source=args.source, out=args.out, languages=_list(args.languages) or [],
        target=args.target, init_sparsity=args.init_sparsity, masks_from=args.masks_from,
        prune_step=args.prune_step, prune_step_mode=args.prune_step_mode, round_steps=args.round_steps, adapt_at=adapt,
        steps=args.steps, lap_base=args.lap_base, rewind_step=args.rewind_step, block=args.block, norm=args.norm,
        scope=args.scope, candidates=args.candidates, prune_candidates=args.prune_candidates, scores=args.scores,
        pruned_weights=args.pruned_weights,
        include=_list(args.include), exclude=_list(args.exclude), lr=args.lr, lr_factor=args.lr_factor,
        lr_schedule=args.lr_schedule, lr_schedule_scope=args.lr_schedule_scope, warmup_steps=args.warmup_steps,
        final_lr_ratio=args.final_lr_ratio, optimizer_state=args.optimizer_state, weight_decay=args.weight_decay,
        max_duration=args.max_duration, languages_per_step=args.languages_per_step, language_weights=args.language_weights,
        checkpoint_every=args.checkpoint_every, seed=args.seed, corpus=args.corpus, device=args.device,
        eval_split=args.eval_split, eval_max_utts=args.eval_max_utts, progress=args.progress,
        stop_after_events=args.stop_after_events,
    )
    cfg.command = command_line(argv, cfg)
    return cfg


def run(args: argparse.Namespace) -> int:
    """Under ``torchrun --nproc_per_node N`` every phase trains with DDP (gloo on CPU, nccl on GPU):
    masks are broadcast from rank 0 at every event, rank 0 writes every file, and rank 0 alone
    evaluates once training is over."""
    import os

    from ..runtime import shutdown_distributed
    from . import recipe

    cfg = config_from_args(args)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    try:
        out = recipe(cfg.method)(cfg, restart=args.restart)
    except StopRequested as e:
        if main_rank:
            print(f"asr-pathways prune: {e}; run the same command again to resume.", file=sys.stderr)
        shutdown_distributed()
        return 0
    shutdown_distributed()
    if cfg.progress and main_rank:
        print(f"run folder: {out}")
    return 0
