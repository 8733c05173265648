"""Do pruned pathways recover? IMP-70% on one language and ASR Pathways at 70% on all, against dense.

    .venv/bin/python benchmarks/pruning_recovery.py --dense runs/bench-dense --corpus data/mls4

From a dense run (benchmarks/dense_baseline.py), with the pruning phases' default schedule
(warm-up and cosine decay per round, peak = dense peak x --lr-factor (4), fresh AdamW moments; docs/method.md):

1. ``imp`` on ``--language`` (default fr): prune 0.25 -> 0.5 -> 0.7 every T steps, then T more
   steps at 70% (``--round-steps``, default 60: twice the `small` benchmark's T = 30);
2. ``lth`` on every language: the same rounds with rewinding, the per-language 70% masks;
3. ``pathways`` on every language from the LTH-70% masks (fixed), 2T steps of the pathway update;
4. ``dense-continued-LANG`` and ``dense-continued``: the dense model trained on with the phases'
   peak, warm-up, cosine decay and monolingual batches, for IMP's steps on LANG and for the
   pathways run's 2T steps on every language: the controls for what extra training alone does.
   (IMP restarts its schedule every round; the controls run one span.)

Each run is evaluated on the whole ``--eval-split`` (test by default; choose T with ``--eval-split dev``,
then report test); the result is the relative WER gap to the dense
model, (WER_pruned − WER_dense) / WER_dense, per language and macro-averaged, written to
benchmarks/results/pruning_recovery.json and the ``pruning_recovery`` section of BENCHMARKS.md.
One seed: the intervals of the benchmark issue are out of scope here.

Variants of the phases (each writes its own dev record, named after the options that differ from the
defaults): ``--final-lr-ratio`` (pruning runs and controls alike), ``--optimizer-state``, ``--block``,
``--scope`` (pruning runs only: the dense controls start with fresh moments and have no masks), ``--language-loss``
(the multilingual runs: ASR Pathways and its control); ``--parts mono`` or ``--parts multi`` runs half of the runs above.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import command_line, machine_info, machine_line, write_result, write_section  # noqa: E402
from asr_pathways.io import atomic_write_json  # noqa: E402
from asr_pathways.runtime import tcmalloc_path  # noqa: E402


def finished(run: Path) -> bool:
    """A run that trained to the end and was evaluated (on any split)."""
    return any(run.glob("wer_*.json"))


def cli(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "asr_pathways.cli", *args], check=True)
    return time.perf_counter() - t0


def wer(run: Path, split: str) -> dict:
    path = run / f"wer_{split}.json"
    if not path.is_file():  # the dense run was evaluated on another split: evaluate it now
        cli(["evaluate", str(run), "--split", split, "--out", str(run)])
    return json.loads(path.read_text())


def diversity(run: Path, split: str) -> dict:
    """Distinct and empty hypotheses over every ``hyps_<split>.jsonl`` under ``run`` (degenerate output check)."""
    from asr_pathways.metrics import hypothesis_diversity

    own = run / f"hyps_{split}.jsonl"  # a multi-language run's own file holds every language; else its sub-runs'
    files = [own] if own.is_file() else sorted(run.glob(f"**/hyps_{split}.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    d = hypothesis_diversity(rows)
    return {"distinct_share": d["distinct_share"], "empty_share": d["empty_share"], "degenerate": d["degenerate"]}


def section_heading(*, split: str, T: int, mono_f: float, multi_f: float, parts: str, seed: int, variant: dict[str, str],
                    prune_step: float = 0.25, target: float = 0.7, language: str = "fr") -> str:
    """The section's heading: the runs' settings (those off their defaults), so that the records of one script stay
    apart in BENCHMARKS.md's contents.

    >>> section_heading(split="dev", T=240, mono_f=4.0, multi_f=4.0, parts="mono", seed=1, variant={"block": "1x1"})
    '## Pruned pathways against the dense model (`benchmarks/pruning_recovery.py`, dev: T = 240, peak × 4, mono, seed 1, --block 1x1)'
    """
    settings = [f"{split}: T = {T}", f"peak × {mono_f:g}" + (f" (multilingual × {multi_f:g})" if multi_f != mono_f else "")]
    settings += [parts] if set(parts.split(",")) != {"mono", "multi"} else []
    settings += [f"seed {seed}"] if seed else []
    settings += [f"--prune-step {prune_step:g}"] if prune_step != 0.25 else []
    settings += [f"--target {target:g}"] if target != 0.7 else []
    settings += [f"--language {language}"] if language != "fr" else []
    settings += [f"--{k} {v}" for k, v in variant.items()]
    return f"## Pruned pathways against the dense model (`benchmarks/pruning_recovery.py`, {', '.join(settings)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dense", default="runs/bench-dense", help="dense run folder (with wer_test.json)")
    p.add_argument("--corpus", default="data/mls4")
    p.add_argument("--language", default="fr", help="language of the monolingual IMP run")
    p.add_argument("--round-steps", type=int, default=60, help="T: steps per pruning round")
    p.add_argument("--target", type=float, default=0.7)
    p.add_argument("--prune-step", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/recovery", help="folder for the pruning runs")
    p.add_argument("--eval-split", choices=("dev", "test"), default="test",
                   help="split every run is evaluated on: dev to choose T, test to report (default: test)")
    p.add_argument("--reuse", action="store_true",
                   help="keep runs in --out that finished (e.g. those a dev pass chose) and only evaluate them on --eval-split")
    p.add_argument("--lr-factor", type=float, default=None,
                   help="phase peak = dense peak x this for the monolingual runs (IMP, LTH, the fr control) (default: prune's --lr-factor)")
    p.add_argument("--multi-lr-factor", type=float, default=None,
                   help="the same for the multilingual runs (ASR Pathways, the multilingual control) (default: --lr-factor)")
    p.add_argument("--final-lr-ratio", type=float, default=None,
                   help="learning rate at the last step of every span / its peak, for the pruning runs and the controls alike "
                        "(default: the dense run's, 0.05)")
    p.add_argument("--optimizer-state", choices=("fresh", "carry"), default=None,
                   help="AdamW moments the pruning runs start with (prune's --optimizer-state; default: fresh; the dense controls always start fresh)")
    p.add_argument("--block", default=None, help="block shape of the masks (prune's --block; default 8x1)")
    p.add_argument("--scope", choices=("layer", "global"), default=None, help="prune's --scope (default: layer)")
    p.add_argument("--language-loss", choices=("equal", "weighted"), default=None,
                   help="the multilingual runs' weighting of the languages in a step (ASR Pathways and the multilingual control; "
                        "prune's and train's --language-loss; default: equal)")
    p.add_argument("--mono-max-duration", type=float, default=None,
                   help="seconds of audio per batch of the monolingual IMP run and its dense control (prune's --max-duration; "
                        "default: prune's, the dense run's batch, 64 s for the small preset; 16 s before 2026-12-03)")
    p.add_argument("--multi-max-duration", type=float, default=None,
                   help="seconds of audio per language batch of ASR Pathways and the multilingual dense control (a step holds one "
                        "per language; default: prune's, the dense run's batch)")
    p.add_argument("--lth-max-duration", type=float, default=None,
                   help="seconds of audio per batch of the LTH run whose masks ASR Pathways starts from (default: prune's)")
    p.add_argument("--parts", default="mono,multi",
                   help="mono: IMP and its control; multi: LTH, ASR Pathways and the multilingual control (default: both)")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    if not parts or parts - {"mono", "multi"}:
        p.error(f"--parts {args.parts!r}: expected mono, multi or mono,multi")
    if args.language_loss is not None and "multi" not in parts:
        p.error("--language-loss weighs the languages of a multilingual step; --parts mono has none (add multi)")
    if args.mono_max_duration is not None and "mono" not in parts:
        p.error("--mono-max-duration sets the IMP run's batch; --parts multi has none (add mono)")
    if (args.multi_max_duration is not None or args.lth_max_duration is not None) and "multi" not in parts:
        p.error("--multi-max-duration and --lth-max-duration set the multilingual part's batches; --parts mono has none (add multi)")
    from asr_pathways.methods.config import PruneConfig

    mono_f = args.lr_factor if args.lr_factor is not None else PruneConfig.lr_factor
    multi_f = args.multi_lr_factor if args.multi_lr_factor is not None else mono_f
    split = args.eval_split
    dense, out = Path(args.dense), Path(args.out)
    T = args.round_steps
    common = ["--from", str(dense), "--corpus", args.corpus, "--target", f"{args.target:g}", "--prune-step", f"{args.prune_step:g}",
              "--round-steps", str(T), "--seed", str(args.seed), "--eval-split", split]
    # the options that differ from the defaults, as written on the command line (also in the record's name)
    variant = {k: f"{v:g}" if isinstance(v, float) else str(v)
               for k, v in (("final-lr-ratio", args.final_lr_ratio), ("optimizer-state", args.optimizer_state),
                            ("block", args.block), ("scope", args.scope), ("language-loss", args.language_loss),
                            ("mono-max-duration", args.mono_max_duration), ("multi-max-duration", args.multi_max_duration),
                            ("lth-max-duration", args.lth_max_duration)) if v is not None}
    multi_only = ["--language-loss", variant["language-loss"]] if "language-loss" in variant else []  # mono phases have one language per step
    mono_only = ["--max-duration", variant["mono-max-duration"]] if "mono-max-duration" in variant else []
    multi_batch = ["--max-duration", variant["multi-max-duration"]] if "multi-max-duration" in variant else []
    lth_batch = ["--max-duration", variant["lth-max-duration"]] if "lth-max-duration" in variant else []
    for k, v in variant.items():
        if k not in ("language-loss", "mono-max-duration", "multi-max-duration", "lth-max-duration"):
            common += [f"--{k}", v]
    dense_wer = wer(dense, split)
    languages = list(dense_wer["languages"])
    walls = {}
    def run_or_reuse(name: str, folder: Path, argv: list[str]) -> None:
        if args.reuse and finished(folder):
            walls[name] = float(json.loads((folder / "wall.json").read_text())["wall_s"]) if (folder / "wall.json").is_file() else float("nan")
            return
        walls[name] = cli(argv)
        atomic_write_json(folder / "wall.json", {"wall_s": walls[name]})

    if "mono" in parts:
        run_or_reuse("imp", out / f"imp-{args.language}",
                     ["prune", "--method", "imp", *common, "--lr-factor", repr(mono_f), "--languages", args.language, "--out", str(out / f"imp-{args.language}"), *mono_only])
    if "multi" in parts:
        run_or_reuse("lth", out / "lth", ["prune", "--method", "lth", *common, "--lr-factor", repr(mono_f), "--languages", ",".join(languages), "--out", str(out / "lth"), *lth_batch])
        run_or_reuse("pathways", out / "pathways",
                     ["prune", "--method", "pathways", *common, "--lr-factor", repr(multi_f), "--languages", ",".join(languages), "--masks-from", str(out / "lth"),
                      "--steps", str(2 * T), "--out", str(out / "pathways"), *multi_only, *multi_batch])
    # the control: dense, trained on with the phases' schedule (as benchmarks/paper.py's continued jobs)
    from asr_pathways.methods.schedule import sparsity_levels
    from asr_pathways.runs import read_run_config

    rc = read_run_config(dense)
    from asr_pathways.methods.lr import phase_batch_seconds

    batch = phase_batch_seconds(rc.train)  # as the phases' batches (prune's default)
    def continued(name: str, langs: list[str], steps: int, per_step: str, factor: float, extra: list[str] = (), batch: float = batch) -> None:
        run_or_reuse(name, out / name, ["train", "--init", str(dense), "--corpus", args.corpus, "--languages", ",".join(langs),
                           "--steps", str(steps), "--seed", str(args.seed), "--warmup-steps", str(max(1, -(-steps // 10))),
                           "--lr-schedule", "cosine", "--batching", "language", "--languages-per-step", per_step,
                           "--lr", repr(factor * float(rc.train["lr"])), "--max-duration", repr(batch),
                           "--eval-split", split, "--out", str(out / name)]
                     + (["--final-lr-ratio", variant["final-lr-ratio"]] if "final-lr-ratio" in variant else []) + list(extra))

    imp_steps = len(sparsity_levels(0.0, args.target, args.prune_step)) * T  # IMP's rounds, the last one at the target
    runs = {}
    if "mono" in parts:
        continued(f"dense-continued-{args.language}", [args.language], imp_steps, "1", mono_f,
                  batch=args.mono_max_duration if args.mono_max_duration is not None else batch)
        runs |= {"imp": out / f"imp-{args.language}", f"dense-continued-{args.language}": out / f"dense-continued-{args.language}"}
    if "multi" in parts:
        continued("dense-continued", languages, 2 * T, "0", multi_f, multi_only,
                  batch=args.multi_max_duration if args.multi_max_duration is not None else batch)
        runs |= {"lth": out / "lth", "pathways": out / "pathways", "dense-continued": out / "dense-continued"}
    rows = {}
    for name, run in runs.items():
        w = wer(run, split)
        per = {}
        for lang, r in w["languages"].items():
            d = dense_wer["languages"][lang]["wer"]
            per[lang] = {"wer": 100 * r["wer"], "dense_wer": 100 * d, "relative_gap": (r["wer"] - d) / d}
        langs = list(per)
        rows[name] = {
            "languages": per,
            "average_wer": sum(v["wer"] for v in per.values()) / len(per),
            "dense_average_wer": sum(v["dense_wer"] for v in per.values()) / len(per),
            "relative_gap": sum(v["relative_gap"] for v in per.values()) / len(per),
            "wall_s": walls[name],
            "evaluated": langs,
            "hypotheses": diversity(run, split),
        }
    result = {
        "command": command_line("benchmarks/pruning_recovery.py", argv),
        "lr_factor": mono_f,
        "multi_lr_factor": multi_f,
        "machine": machine_info() | {"tcmalloc": tcmalloc_path() is not None},  # the asr-pathways commands preload it
        "seed": args.seed,
        "round_steps": T,
        "variant": variant,
        # seconds of audio per language batch of each run (the phases' default changed from 16 to 64 s on 2026-12-03)
        "batch_seconds": {k: v for k, v in (("imp", args.mono_max_duration or batch), (f"dense-continued-{args.language}", args.mono_max_duration or batch),
                                             ("lth", args.lth_max_duration or batch), ("pathways", args.multi_max_duration or batch),
                                             ("dense-continued", args.multi_max_duration or batch)) if k in rows},
        "eval_split": split,
        "dense": str(dense),
        "dense_average_wer": 100 * dense_wer["average"]["wer"],
        "dense_hypotheses": diversity(dense, split),
        "runs": rows,
        "within_10_percent": {k: rows[k]["relative_gap"] <= 0.10 and not rows[k]["hypotheses"]["degenerate"] for k in ("imp", "pathways") if k in rows},
    }
    # dev runs (choosing T) are kept apart, one record per T; test is the reported result
    suffix = (("" if parts == {"mono", "multi"} else f"_{args.parts}") + (f"_seed{args.seed}" if args.seed else "")
              + (f"_p{args.prune_step:g}" if args.prune_step != p.get_default("prune_step") else "") + "".join({"final-lr-ratio": "_final", "mono-max-duration": "_batch", "multi-max-duration": "_mbatch", "lth-max-duration": "_lbatch"}.get(k, "_") + v for k, v in variant.items()))
    record = ("pruning_recovery" if split == "test" else f"pruning_recovery_dev_T{T}_lr{mono_f:g}"
              + (f"_multi{multi_f:g}" if multi_f != mono_f else "")) + suffix
    write_result(record, result)
    lines = [
        section_heading(split=split, T=T, mono_f=mono_f, multi_f=multi_f, parts=args.parts, seed=args.seed, variant=variant,
                        prune_step=args.prune_step, target=args.target, language=args.language), "",
        f"`{result['command']}` on {machine_line(result['machine'])}; seed {args.seed}; T = {T} steps per round, "
        f"prune step {args.prune_step:g}, target {args.target:g}, "
        f"{''.join(f'--{k} {v}, ' for k, v in variant.items())}phase peak = dense peak × {mono_f:g} (monolingual runs), × {multi_f:g} (multilingual runs); whole {split} split. Relative gap = (WER − WER_dense) / WER_dense, "
        "per language, then averaged.", "",
        "| run | languages | WER % | dense WER % | relative gap | distinct hyps | wall (min; reused: the run's training) |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    what = {"imp": f"IMP-{round(100 * args.target)}% ({args.language}), {imp_steps // T} rounds of T",
            "lth": f"LTH-{round(100 * args.target)}% per language (rewinding)",
            "pathways": f"ASR Pathways-{round(100 * args.target)}% from the LTH masks, 2T steps",
            f"dense-continued-{args.language}": f"dense, trained on {args.language} for as many steps as IMP (control; one warm-up + cosine span, IMP restarts per round)",
            "dense-continued": "dense, trained on 2T steps, all languages (control for ASR Pathways)"}
    for name, r in rows.items():
        lines.append(f"| {what[name]} | {','.join(r['evaluated'])} | {r['average_wer']:.2f} | {r['dense_average_wer']:.2f} | "
                     f"{100 * r['relative_gap']:+.1f}% | {100 * r['hypotheses']['distinct_share']:.0f}%"
                     f"{' (degenerate)' if r['hypotheses']['degenerate'] else ''} | "
                     f"{'reused' if r['wall_s'] != r['wall_s'] else format(r['wall_s'] / 60, '.1f')} |")
    lines += ["", "Per language (WER %, relative gap):", "", "| run | " + " | ".join(languages) + " |", "| --- |" + " ---: |" * len(languages)]
    for name, r in rows.items():
        cells = [f"{r['languages'][l]['wer']:.1f} ({100 * r['languages'][l]['relative_gap']:+.1f}%)" if l in r["languages"] else "—" for l in languages]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Raw numbers: benchmarks/results/{record}.json."]
    write_section(record, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
