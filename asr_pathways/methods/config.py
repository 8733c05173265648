"""The options of `asr-pathways prune`, declared once (help, default, choices) on :class:`PruneConfig`.

The command line (:mod:`.cli`), the command a run records, the identity of a run folder and the
checks all come from these fields (:mod:`asr_pathways.options`). docs/method.md explains the
methods and names the options.

>>> cfg = PruneConfig("dynamic", "runs/dense", "runs/dyn", masks_from="runs/lth")
>>> r = cfg.resolved(["en", "fr"])
>>> r.languages, r.scores, cfg.scores, r.start_sparsity(), r.adaptation_steps()
(['en', 'fr'], 'own-updates', None, 0.7, [100])
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..asr.searches import DECODING_HELP, DECODINGS, DEFAULT_BEAM
from ..errors import InputError
from ..options import check_choices, defining, option
from ..train_config import LANGUAGE_LOSS
from .scores import SCORES

METHODS = ("imp", "lth", "lap", "pathways", "adaptive", "dynamic")
MONOLINGUAL_METHODS = ("imp", "lth", "adaptive")
FROM_MASKS_METHODS = ("pathways", "adaptive", "dynamic")
CANDIDATE_SETS = ("own+residual", "all", "own")
PRUNED_WEIGHTS = ("keep_values", "zero_trainable")
LR_SCHEDULES = ("cosine", "linear", "constant")
LR_SCOPES = ("round", "phase")
OPTIMIZER_STATES = ("fresh", "carry")
LATER_OPTIONS = {"final_steps": None, "final_adapt": True, "score_steps": 10, "language_loss": "equal"}  # name -> default: not in the identity of a run that keeps it

WHAT, SCHEDULE, SELECTION, TRAINING, CONTROL = (
    "what to prune", "schedule", "mask selection", "training of the pruning phases", "evaluation and control")
GROUP_HELP = {
    TRAINING: "Every phase starts from the --from run's weights with fresh AdamW moments (--optimizer-state). Its learning "
              "rate follows spans (--lr-schedule-scope: each round between prunes, or the whole phase): a linear warm-up to "
              "the peak (--warmup-steps), then a decay to --final-lr-ratio x peak at the span's last step (--lr-schedule). "
              "The old behaviour (the dense peak, constant, no warm-up) is --lr-factor 1 --lr-schedule constant "
              "--warmup-steps 0 --lr-schedule-scope phase. docs/method.md, 'Choices of this implementation'.",
}


@dataclass
class PruneConfig:
    """Every option of every method (docs/method.md names them); a method ignores those it does not use."""

    # ----- what to prune
    method: str = option(help="the pruning recipe", choices=METHODS, group=WHAT)
    source: str = option(help="the dense multilingual run (θ_ML) whose weights every method starts from; imp/lth/adaptive "
                              "accept a per-language template such as runs/mono-{lang}", flag="--from", metavar="RUN", group=WHAT)
    out: str = option(help="run folder to write (resumed when it holds the same run)", defining=False, group=WHAT)
    languages: list[str] = option(list, help="comma-separated languages", default_text="the --from run's languages", group=WHAT)
    corpus: str | None = option(None, help="corpus folder", default_text="the --from run's", group=WHAT)
    # ----- schedule
    target: float = option(0.7, help="target sparsity of every pathway (over the prunable weights)", group=SCHEDULE)
    masks_from: str | None = option(None, help="prune run whose saved masks start this one (masks/{lang|shared}/sparsity_S)",
                                    metavar="RUN", group=SCHEDULE)
    init_sparsity: float | None = option(None, help="starting sparsity, a level saved by --masks-from",
                                         default_text="0 for imp/lth/lap, the target for the others", group=SCHEDULE)
    prune_step: float = option(0.1, help="p: sparsity added by each prune", group=SCHEDULE)
    prune_step_mode: str = option("absolute", help="absolute: s + p; fraction: s + p * (1 - s) (a fraction of what remains)",
                                  choices=("absolute", "fraction"), group=SCHEDULE)
    round_steps: int = option(200, help="T: optimizer steps per pruning round", group=SCHEDULE)
    adapt_at: list[int] = option(list, help="adaptive/dynamic: step(s) n within each round at which masks adapt, "
                                            "comma-separated for several adaptations per round", default_text="T/2",
                                 metavar="N,...", group=SCHEDULE)
    steps: int | None = option(None, help="pathways: training steps with the fixed masks", default_text="T", group=SCHEDULE)
    final_steps: int | None = option(None, help="adaptive/dynamic: steps of the final round (at the target, no prune)",
                                     default_text="T", group=SCHEDULE)
    final_adapt: bool = option(True, help="adaptive/dynamic: no adaptation in the final round, so the mask the last prune chose "
                                          "(itself re-selected from the candidates) trains for the whole final round, as IMP's "
                                          "final mask does: the schedule of step-matched comparisons (docs/method.md)",
                               group=SCHEDULE)
    lap_base: str = option("lth", help="lap: without (imp) or with (lth) rewinding", choices=("imp", "lth"), group=SCHEDULE)
    rewind_step: int = option(0, help="lth / lap-lth: rewind to the weights after this many steps of the first round "
                                      "(0: θ_ML itself)", group=SCHEDULE)
    # ----- mask selection
    block: str = option("8x1", help="block shape RxC: R consecutive output rows of C input columns (1x1: unstructured)",
                        group=SELECTION)
    norm: str = option("l2", help="block score", choices=("l2", "l1"), group=SELECTION)
    scope: str = option("layer", help="same sparsity per matrix (layer), or one global ranking", choices=("layer", "global"),
                        group=SELECTION)
    candidates: str = option("own+residual", help="adaptive/dynamic: weights a pathway may choose from at an adaptation "
                                                  "(own+residual: its own plus those no other language uses; one language: "
                                                  "all of P)", choices=CANDIDATE_SETS, group=SELECTION)
    prune_candidates: str = option("same", help="adaptive/dynamic: a prune chooses from the same candidate set, or only "
                                                "within the current mask (own)", choices=("same", "own"), group=SELECTION)
    scores: str | None = option(None, help="adaptive/dynamic: what each pathway's blocks are ranked on at an adaptation or "
                                           "prune. own-updates: the weights at the previous event plus that language's share "
                                           "of every update since (|g_l| / sum_k |g_k| per coordinate), so that each language "
                                           "re-prunes with its own data; finetune (dynamic only): a copy of the model "
                                           "fine-tuned for --score-steps steps on that language's own batches within its "
                                           "candidate set (languages x K extra batches per event, not steps of the model); "
                                           "shared: the stored weights, the same for every language (masks that start equal "
                                           "stay equal)", choices=SCORES,
                                default_text="own-updates for dynamic, shared otherwise", group=SELECTION)
    score_steps: int = option(10, help="--scores finetune: K, the optimizer steps (one batch each) of every language's "
                                       "fine-tune of a model copy at every adaptation and prune", metavar="K", group=SELECTION)
    pruned_weights: str = option("keep_values", help="keep_values: masked forward, stored values kept; zero_trainable (PARP, "
                                                     "single mask only): pruned weights zeroed at each event and trained "
                                                     "between events", choices=PRUNED_WEIGHTS, group=SELECTION)
    include: list[str] | None = option(None, help="comma-separated name patterns of prunable weights",
                                       default_text="the model's, asr.model.PRUNABLE", metavar="PATTERN,...", group=SELECTION)
    exclude: list[str] | None = option(None, help="comma-separated name patterns excluded from pruning",
                                       default_text="the model's", metavar="PATTERN,...", group=SELECTION)
    # ----- training of the pruning phases (docs/method.md, "Choices"; methods/lr.py)
    lr: float | None = option(None, help="peak learning rate of every span of the schedule",
                              default_text="the --from run's peak x --lr-factor", group=TRAINING)
    lr_factor: float = option(4.0, help="default peak = the --from run's peak learning rate x this; chosen on dev (IMP-70% "
                                        "on fr, rounds of 240 steps: x0.5 65.1%, x1 52.5%, x2 42.2%, x4 38.5%, x8 56.5% "
                                        "dev WER; docs/method.md). Ignored with --lr", group=TRAINING)
    lr_schedule: str = option("cosine", help="after the warm-up of every span: decay to --final-lr-ratio x peak at the span's "
                                             "last step (cosine, linear), or stay at the peak (constant)", choices=LR_SCHEDULES,
                              group=TRAINING)
    lr_schedule_scope: str = option("round", help="round: the schedule (warm-up, then decay) restarts after every prune event "
                                                  "(and so after every LTH rewind), each round between prunes is one span; "
                                                  "phase: one span over the whole phase. A phase without prunes (pathways, "
                                                  "adaptive/dynamic from the target) is one span either way",
                                    choices=LR_SCOPES, group=TRAINING)
    warmup_steps: int | None = option(None, help="linear warm-up steps at the start of every span (at most span - 1)",
                                      default_text="a tenth of the span, rounded up, at most 2/(1-beta2) = 100 steps for "
                                                   "AdamW's beta2 = 0.98", group=TRAINING)
    final_lr_ratio: float | None = option(None, help="learning rate of a span's last step / peak",
                                          default_text="the --from run's final_lr_ratio", group=TRAINING)
    optimizer_state: str = option("fresh", help="AdamW moments a phase starts with: fresh (new moments; the warm-up lets the "
                                                "second moments settle before the peak), or carry (the --from run's moments "
                                                "and step counts, read from its checkpoint; coordinates outside the masks "
                                                "keep theirs frozen until revived). After an LTH rewind the moments are "
                                                "always fresh", choices=OPTIMIZER_STATES, group=TRAINING)
    weight_decay: float | None = option(None, help="AdamW weight decay", default_text="the --from run's", group=TRAINING)
    max_duration: float | None = option(None, help="seconds of audio per batch", default_text="the --from run's", group=TRAINING)
    languages_per_step: int = option(0, help="lap/pathways/dynamic: monolingual batches per step (0: one per language; k: k "
                                             "languages sampled by weight)", group=TRAINING)
    language_weights: str | None = option(None, help="sampling weights: auto, uniform, hours, or en=2,fr=1",
                                          default_text="the --from run's", group=TRAINING)
    language_loss: str = option("equal", help="lap/pathways/dynamic with one batch per language per step: equal (each "
                                              "language's mean loss counts once) or weighted (K x its language weight, "
                                              "--language-weights, so the languages are weighted as in a mixed batch "
                                              "drawn with those weights; docs/method.md)", choices=LANGUAGE_LOSS,
                                group=TRAINING)
    checkpoint_every: int | None = option(None, help="extra checkpoints between events", default_text="the --from run's",
                                          defining=False, group=TRAINING)
    seed: int = option(0, help="seed of data order and augmentation", group=TRAINING)
    device: str = option("auto", help="cpu, cuda, cuda:1 or auto", defining=False, group=TRAINING)
    # ----- evaluation and control
    eval_split: str = option("dev", help="split for the WER table at the end: dev while choosing a schedule or learning "
                                         "rate, test once for a final model (the benchmark asks for it)",
                             choices=("test", "dev", "none"),
                             defining=False, group=CONTROL)
    eval_max_utts: int | None = option(None, help="evaluate at most this many utterances per language", defining=False,
                                       group=CONTROL)
    decoding: str = option("greedy", help="search of the evaluation at the end: " + DECODING_HELP, choices=DECODINGS, defining=False, group=CONTROL)
    beam: int = option(DEFAULT_BEAM, help="hypotheses kept by --decoding beam or modified_beam", defining=False, group=CONTROL)
    restart: bool = option(False, help="delete the run in --out and start over", defining=False, record=False, group=CONTROL)
    progress: bool = option(True, help="no progress bars or tables on stdout", defining=False, record=False, group=CONTROL)
    stop_after_events: int | None = option(None, help="stop after this many prune/adapt events, as if interrupted (resume by "
                                                      "running the command again)", defining=False, record=False,
                                           group=CONTROL)
    command: str = option("", help="the command that made the run", defining=False, cli=False)

    # ----- derived values
    @property
    def monolingual(self) -> bool:
        """One phase per language (imp, lth, adaptive), rather than one multilingual phase."""
        return self.method in MONOLINGUAL_METHODS

    @property
    def adaptive(self) -> bool:
        return self.method in ("adaptive", "dynamic")

    @property
    def zero_trainable(self) -> bool:
        return self.pruned_weights == "zero_trainable"

    def start_sparsity(self) -> float:
        if self.init_sparsity is not None:
            return self.init_sparsity
        return self.target if self.method in FROM_MASKS_METHODS else 0.0

    def adaptation_steps(self) -> list[int]:
        if not self.adaptive:
            return []
        return sorted(set(self.adapt_at)) if self.adapt_at else [max(1, self.round_steps // 2)]

    def default_scores(self) -> str:
        """``own-updates`` for dynamic (one weight set, several masks), ``shared`` otherwise."""
        return "own-updates" if self.method == "dynamic" else "shared"

    def defining(self) -> dict[str, Any]:
        """The options that define the result (the identity of the run folder).

        Options added after runs existed are left out while they hold their default, so that those
        runs keep their identity (and resume)."""
        d = defining(self)
        for name, default in LATER_OPTIONS.items():
            if d.get(name) == default:
                d.pop(name, None)
        return d

    # ----- checks
    def resolved(self, source_languages: list[str]) -> "PruneConfig":
        """A checked copy with the defaults that depend on the run filled in (languages, scores)."""
        out = replace(self, languages=list(self.languages or source_languages), scores=self.scores or self.default_scores())
        out.validate()
        return out

    def validate(self) -> None:
        """Raise :class:`InputError` naming the option when a value is out of range or inconsistent."""
        def bad(opt: str, msg: str, expected: str | None = None) -> InputError:
            return InputError(msg, field=opt, expected=expected)

        check_choices(self)
        if not 0.0 <= self.target < 1.0:
            raise bad("--target", f"target sparsity {self.target} is outside [0, 1)")
        s0 = self.start_sparsity()
        if not 0.0 <= s0 <= self.target + 1e-9:
            raise bad("--init-sparsity", f"initial sparsity {s0} must lie in [0, target={self.target}]")
        if self.method in FROM_MASKS_METHODS and not self.masks_from:
            raise bad("--masks-from", f"{self.method} starts from existing masks", "a prune run, e.g. --masks-from runs/lth")
        if s0 > 0 and not self.masks_from:
            raise bad("--masks-from", f"initial sparsity {s0} > 0 needs masks to start from", "--masks-from runs/NAME")
        if self.prune_step <= 0 or (self.prune_step_mode == "fraction" and self.prune_step >= 1):
            raise bad("--prune-step", f"prune step {self.prune_step} must be > 0 (and < 1 as a fraction)")
        if self.round_steps < 1:
            raise bad("--round-steps", f"T = {self.round_steps} must be >= 1")
        if self.beam < 1:
            raise bad("--beam", f"beam {self.beam} must be >= 1", "a whole number >= 1 (hypotheses kept by a beam search)")
        for n in self.adaptation_steps():
            if not 0 < n < self.round_steps:
                raise bad("--adapt-at", f"adaptation step n = {n} must satisfy 0 < n < T = {self.round_steps}")
        if self.final_steps is not None and self.final_steps < 1:
            raise bad("--final-steps", f"final round of {self.final_steps} steps must be >= 1")
        if (self.final_steps is not None or not self.final_adapt) and not self.adaptive:
            raise bad("--final-steps" if self.final_steps is not None else "--no-final-adapt",
                      f"{self.method} has no adaptive final round", "adaptive or dynamic")
        if self.steps is not None and self.steps < 0:
            raise bad("--steps", f"steps = {self.steps} must be >= 0")
        if not 0 <= self.rewind_step < self.round_steps:
            raise bad("--rewind-step", f"rewind step {self.rewind_step} must lie in [0, T = {self.round_steps})")
        try:
            from ..sparsity.blocks import parse_block

            parse_block(self.block)
        except ValueError as e:
            raise bad("--block", str(e), "RxC such as 8x1, 1x1 or 4x4") from None
        if self.scores == "own-updates" and not self.adaptive:
            raise bad("--scores", f"{self.method} has no per-language re-selection to score", "shared (own-updates: adaptive or dynamic)")
        if self.scores == "finetune" and self.method != "dynamic":
            raise bad("--scores", f"--scores finetune fine-tunes a copy of the model on each language's data to tell the "
                                  f"languages' masks apart; {self.method} has no per-language masks on shared weights to "
                                  f"score that way", "shared or own-updates (finetune: dynamic only)")
        if self.score_steps < 1:
            raise bad("--score-steps", f"K = {self.score_steps} scoring steps: each language's fine-tune (--scores finetune) "
                                       f"needs at least one", ">= 1")
        if self.zero_trainable and self.method == "pathways":
            raise bad("--pruned-weights", "ASR Pathways trains fixed masks; zero_trainable would re-select them", "keep_values")
        if self.zero_trainable and self.method == "dynamic" and len(self.languages) != 1:
            raise bad(
                "--pruned-weights",
                f"zero_trainable zeroes pruned weights, which other languages' pathways still use; {self.method} "
                f"with {len(self.languages) or 'several'} languages has one mask per language",
                "keep_values (zero_trainable is only valid with a single mask: imp, lth, adaptive, lap, or one language)",
            )
        if self.lr is not None and not self.lr > 0:
            raise bad("--lr", f"learning rate {self.lr} must be > 0")
        if not self.lr_factor > 0:
            raise bad("--lr-factor", f"learning-rate factor {self.lr_factor} must be > 0")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise bad("--warmup-steps", f"warm-up of {self.warmup_steps} steps must be >= 0")
        if self.final_lr_ratio is not None and not 0.0 <= self.final_lr_ratio <= 1.0:
            raise bad("--final-lr-ratio", f"final learning-rate ratio {self.final_lr_ratio} is outside [0, 1]")
        if "{lang}" in self.source and not self.monolingual:
            raise bad("--from", "a per-language source ({lang}) only makes sense for imp, lth and adaptive")
