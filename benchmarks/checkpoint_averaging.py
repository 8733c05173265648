"""Checkpoint averaging and best-on-dev selection: WER against the final checkpoint of one run.

    asr-pathways train --preset small --corpus data/mls4 --out runs/avg-small \\
        --keep-checkpoints 5 --eval-every 500          # snapshots every checkpoint_every steps
    python benchmarks/checkpoint_averaging.py --run runs/avg-small --last 2,5

For the run's final checkpoint, the average of its last N kept snapshots (``asr-pathways average
--last N``) and its best weights on dev (``--best-dev``): greedy WER per language on the dev and
test splits, and the relative change against the final checkpoint. The averaged and selected run
folders are written under ``--work`` (default: a temporary folder). Writes
benchmarks/results/checkpoint_averaging.json and the ``checkpoint_averaging`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import command_line, machine_info, machine_line  # noqa: E402
from benchmarks.decoding_common import publish  # noqa: E402

SECTION = "checkpoint_averaging"


def wer(run: Path, split: str, max_utts: int | None, device: str) -> dict[str, Any]:
    from asr_pathways.data.corpus import Corpus
    from asr_pathways.evaluate import evaluate
    from asr_pathways.loading import open_model

    source = open_model(run, device)
    res = evaluate(None, source.tokenizer, Corpus(source.corpus), source.languages, split, max_utts=max_utts, device=device,
                   progress=False, decoder_of=lambda lang: source.decoder(lang, "torch"))
    return {"languages": {l: r["wer"] for l, r in res["languages"].items()}, "average": res["average"]["wer"]}


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "## Checkpoint averaging and best-on-dev", "",
        f"Command: `{res['command']}` · {machine_line(res['machine'])} · run `{res['run']}` (trained with "
        f"`{res['train_command']}`) · greedy decoding, up to {res['max_utts']} utterances per language · wall {res['wall_s']:.0f} s", "",
        "WER % (relative change against the final checkpoint). *last N*: element-wise mean of the last N kept snapshots; "
        f"*best on dev*: the weights with the lowest dev WER among {res['best_dev']['how']}.", "",
    ]
    models = list(res["models"])
    for split in res["splits"]:
        lines += [f"**{split}**", "", "| language | " + " | ".join(models) + " |", "| --- | " + " | ".join("---:" for _ in models) + " |"]
        final = res["models"]["final"][split]
        langs = list(final["languages"]) + ["average"]
        for lang in langs:
            cells = []
            for name in models:
                r = res["models"][name][split]
                v = r["average"] if lang == "average" else r["languages"][lang]
                base = final["average"] if lang == "average" else final["languages"][lang]
                rel = "" if name == "final" or not base else f" ({(v - base) / base * 100:+.1f}%)"
                cells.append(f"{100 * v:.2f}{rel}")
            lines.append(f"| {'**average**' if lang == 'average' else lang} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="run trained with --keep-checkpoints N (and --eval-every K)")
    ap.add_argument("--last", default="5", help="comma-separated N: average the last N snapshots")
    ap.add_argument("--max-utts", type=int, default=None, help="utterances per language and split (default: all)")
    ap.add_argument("--work", type=Path, help="where to write the averaged/selected run folders (default: a temporary folder)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    from asr_pathways.averaging import BEST_NAME, average_run, best_dev_run
    from asr_pathways.runs import read_run_config

    t0 = time.time()
    tmp = tempfile.TemporaryDirectory() if args.work is None else None
    work = Path(tmp.name) if tmp else args.work
    folders = {"final": args.run}
    for n in (int(x) for x in args.last.split(",")):
        average_run(args.run, work / f"last{n}", n)
        folders[f"last {n}"] = work / f"last{n}"
    how = "the dev evaluations logged during training" if (args.run / BEST_NAME).is_file() else "the kept snapshots and the final checkpoint"
    best = best_dev_run(args.run, work / "best-dev", max_utts=args.max_utts or 200, device=args.device)
    folders["best on dev"] = work / "best-dev"
    models = {}
    for name, folder in folders.items():
        models[name] = {split: wer(folder, split, args.max_utts, args.device) for split in ("dev", "test")}
        print(f"{name}: test {100 * models[name]['test']['average']:.2f}% dev {100 * models[name]['dev']['average']:.2f}%", flush=True)
    res = {"command": command_line("benchmarks/checkpoint_averaging.py", argv), "machine": machine_info(), "run": str(args.run),
           "train_command": read_run_config(args.run).command, "max_utts": args.max_utts, "splits": ["dev", "test"],
           "best_dev": {"how": how, "step": best.get("step"), "dev_wer": best.get("dev_wer")}, "models": models,
           "seeds": "deterministic decoding (the run's own seed is in its config)", "wall_s": time.time() - t0}
    if tmp:
        tmp.cleanup()
    return publish(SECTION, res, markdown, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
