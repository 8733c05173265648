"""Corpus synthesis with espeak-ng in-process (the worker) against the espeak-ng program: wall time and identity.

    python benchmarks/synth_speed.py                      # 4 pairs of 0.25-h-per-language builds
    python benchmarks/synth_speed.py --pairs 2 --hours 0.1 --no-write

Each pair builds the same corpus twice into fresh folders, once with the worker
(``asr_pathways/data/espeak_worker.py``) and once with the program (``ASR_PATHWAYS_ESPEAK=program``),
in the same process, the order alternating from pair to pair so that the machine's drift does not
favour one. Reports the build times, the per-pair ratio worker / program with a 95% t-interval over
the pairs and its mean by order, whether every FLAC file came out byte-identical both ways, and how
many utterances the workers synthesised (none in the program builds, or it stops). Writes
benchmarks/results/synth_speed.json and the ``synth_speed`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import command_line, machine_info, machine_line  # noqa: E402
from benchmarks.decoding_common import publish  # noqa: E402

SECTION = "synth_speed"
MODES = ("worker", "program")


def build(out: Path, mode: str, args: argparse.Namespace) -> tuple[float, int]:
    """(seconds to build the corpus into ``out`` with ``mode``, "worker" or "program"; utterances the
    workers synthesised)."""
    from asr_pathways.data import espeak_worker
    from asr_pathways.data.synth import SynthConfig, build_corpus

    cfg = SynthConfig(out=out, languages=args.languages.split(","), hours={"*": args.hours}, seed=args.seed, jobs=args.jobs,
                      test_utts=args.test_utts, dev_utts=args.dev_utts, lexicon_size=args.lexicon_size, progress=False)
    previous = os.environ.get("ASR_PATHWAYS_ESPEAK")
    os.environ["ASR_PATHWAYS_ESPEAK"] = "program" if mode == "program" else "library"
    served = espeak_worker.served
    try:
        t0 = time.perf_counter()
        build_corpus(cfg)
        return time.perf_counter() - t0, espeak_worker.served - served
    finally:
        espeak_worker.close_workers()
        if previous is None:
            os.environ.pop("ASR_PATHWAYS_ESPEAK", None)
        else:
            os.environ["ASR_PATHWAYS_ESPEAK"] = previous


def same_audio(a: Path, b: Path) -> tuple[int, int]:
    """(FLAC files in ``a``, of them byte-identical in ``b``)."""
    files = sorted(p.relative_to(a) for p in (a / "audio").rglob("*.flac"))
    same = sum(1 for f in files if (b / f).is_file() and filecmp.cmp(a / f, b / f, shallow=False))
    return len(files), same


def markdown(res: dict[str, Any]) -> str:
    lo, hi = res["ratio_interval"] or (float("nan"), float("nan"))
    by_order = "; ".join(f"{order}: {v:.3f}x" for order, v in res["ratio_by_order"].items())
    rows = "\n".join(f"| {i + 1} | {p['order']} | {p['worker']:.1f} | {p['program']:.1f} | {p['worker'] / p['program']:.3f} |"
                     for i, p in enumerate(res["pairs"]))
    return (
        "## Corpus synthesis: espeak-ng in-process vs the program\n\n"
        f"Command: `{res['command']}` · {machine_line(res['machine'])} · {res['languages']} × {res['hours']:g} h of training "
        f"audio, {res['test_utts']} test and {res['dev_utts']} dev utterances per language, {res['jobs']} jobs, seed "
        f"{res['seed']} · wall {res['wall_s']:.0f} s\n\n"
        "Each pair builds the same corpus twice into fresh folders, with the worker (libespeak-ng initialised once, a "
        "forked child per utterance) and with the espeak-ng program per utterance (`ASR_PATHWAYS_ESPEAK=program`), the "
        "order alternating. Ratio: worker / program build time of the pair; interval: 95% t over the pairs.\n\n"
        "| pair | order | worker (s) | program (s) | worker / program |\n| ---: | --- | ---: | ---: | ---: |\n"
        f"{rows}\n\n"
        f"**worker / program = {res['ratio_mean']:.3f}x, 95% interval [{lo:.3f}, {hi:.3f}]** (mean by order: {by_order}). "
        f"The corpus's {res['files']:,} FLAC files came out byte-identical both ways in {res['identical_pairs']} of "
        f"{len(res['pairs'])} pairs (the same deterministic corpus each time). Utterances the workers synthesised: "
        f"{res['worker_utterances']:,} in the worker builds, {res['program_utterances']} in the program builds.\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=4, help="pairs of builds (one each way per pair)")
    ap.add_argument("--hours", type=float, default=0.25, help="training hours per language")
    ap.add_argument("--languages", default="en,fr,it,nl")
    ap.add_argument("--test-utts", type=int, default=150)
    ap.add_argument("--dev-utts", type=int, default=20)
    ap.add_argument("--lexicon-size", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=0, help="parallel syntheses (0: every core)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    if args.pairs < 1 or args.hours <= 0:
        ap.error("--pairs must be >= 1 and --hours above 0")
    from asr_pathways.bench.stats import t_interval
    from asr_pathways.data.espeak_worker import start_worker

    probe = start_worker()
    if probe is None:
        ap.error("libespeak-ng cannot be loaded here: there is no worker to compare with the program")
    probe.close()
    t0 = time.time()
    pairs: list[dict[str, Any]] = []
    files = identical_pairs = 0
    served = {mode: 0 for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="synth_speed-") as tmp:
        for i in range(args.pairs):
            order = MODES if i % 2 == 0 else MODES[::-1]
            pair: dict[str, Any] = {"order": " then ".join(order)}
            for mode in order:
                shutil.rmtree(Path(tmp) / mode, ignore_errors=True)
                pair[mode], n_served = build(Path(tmp) / mode, mode, args)
                served[mode] += n_served
                print(f"pair {i + 1}: {mode} {pair[mode]:.1f} s", flush=True)
            pairs.append(pair)
            files, same = same_audio(Path(tmp) / "worker", Path(tmp) / "program")
            identical_pairs += int(same == files)
    if served["worker"] == 0 or served["program"] != 0:
        raise SystemExit(f"synth_speed: the worker builds used the worker for {served['worker']} utterances and the program "
                         f"builds for {served['program']}: the comparison would not be what it says")
    ratios = [p["worker"] / p["program"] for p in pairs]
    by_order = {order: [r for p, r in zip(pairs, ratios) if p["order"] == order] for order in dict.fromkeys(p["order"] for p in pairs)}
    res = {"command": command_line("benchmarks/synth_speed.py", argv), "machine": machine_info(), "languages": args.languages,
           "hours": args.hours, "test_utts": args.test_utts, "dev_utts": args.dev_utts, "jobs": args.jobs or os.cpu_count(),
           "seed": args.seed, "pairs": pairs, "ratio_mean": sum(ratios) / len(ratios), "ratio_interval": t_interval(ratios),
           "ratio_by_order": {k: sum(v) / len(v) for k, v in by_order.items()}, "files": files, "identical_pairs": identical_pairs,
           "worker_utterances": served["worker"], "program_utterances": served["program"], "wall_s": time.time() - t0}
    return publish(SECTION, res, markdown, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
