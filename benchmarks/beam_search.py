"""Greedy vs beam searches: WER per language and decoding time (batch 1, one thread).

    python benchmarks/beam_search.py --model runs/pathways --beams 4,8
    python benchmarks/beam_search.py --model models/fr --split test --max-utts 200 --searches beam

MODEL is any folder ``asr-pathways evaluate`` takes (run, prune run, language sub-run, export, ONNX
export); the corpus defaults to the model's. Every utterance is decoded alone (batch 1) with greedy
search (up to 5 labels per frame), with beam search (up to 5 labels per frame) and with modified
beam search (one label per frame) at each beam size (``--searches``); WER per language and macro
average, real-time factor of the decoding (features excluded).
Writes benchmarks/results/beam_search.json and the ``beam_search`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import command_line, machine_info, machine_line  # noqa: E402
from benchmarks.decoding_common import corpus_utterances, publish, wer_of  # noqa: E402

SECTION = "beam_search"


def decode_all(decoder: Any, tokenizer: Any, utts: list, decoding: str, beam: int) -> tuple[list[str], float]:
    hyps, seconds = [], 0.0
    with torch.inference_mode():
        for u in utts:
            t = time.perf_counter()
            ids = decoder.one(u.features, decoding, beam)
            seconds += time.perf_counter() - t
            hyps.append(tokenizer.decode(ids))
    return hyps, seconds


LABELS = {"beam": "beam", "modified_beam": "modified beam"}


def configurations(searches: list[str], beams: list[int]) -> list[tuple[str, str, int]]:
    """(key, decoding, beam) of every decoding the benchmark runs, greedy first.

    >>> configurations(["beam", "modified_beam"], [4])
    [('greedy', 'greedy', 1), ('beam4', 'beam', 4), ('modified_beam4', 'modified_beam', 4)]
    """
    return [("greedy", "greedy", 1)] + [(f"{s}{b}", s, b) for s in searches for b in beams]


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    if "searches" in res:
        configs = configurations(res["searches"], res["beams"])[1:]
    else:  # a result from before 2026-12-03: its "beam{b}" keys hold the one-label-per-frame search
        configs = [(f"beam{b}", "modified_beam", b) for b in res["beams"]]
    names = [f"{LABELS[d]} {b}" for _, d, b in configs]
    lines = [
        "## Greedy vs beam search", "",
        f"Command: `{res['command']}` · {machine_line(m)} · model `{res['model']}` ({res['engine']} engine) · "
        f"{res['split']} split of `{res['corpus']}`, {res['utterances']} utterances · batch 1, {res['threads']} thread(s) · "
        f"no randomness (deterministic decoding) · wall {res['wall_s']:.0f} s", "",
        "WER % per language; RTF = decoding seconds / audio seconds (features excluded); relative change against greedy. "
        "Beam: up to 5 labels per frame, as the transducer's lattice allows (`--decoding beam`); modified beam: one label "
        "per frame (`--decoding modified_beam`, as icefall); both merge alignments and pick the length-normalised best.", "",
        "| language | utterances | greedy WER | " + " | ".join(f"{n} WER (rel.)" for n in names) + " | greedy RTF | "
        + " | ".join(f"{n} RTF (x greedy)" for n in names) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: | " + " | ".join("---:" for _ in names) + " |",
    ]
    for lang, r in list(res["languages"].items()) + [("**average**", res["average"])]:
        g = r["greedy"]
        cells = [f"{100 * r[k]['wer']:.2f} ({(r[k]['wer'] - g['wer']) / g['wer'] * 100 if g['wer'] else 0:+.1f}%)" for k, _, _ in configs]
        rtf = [f"{r[k]['rtf']:.4f} ({r[k]['rtf'] / g['rtf'] if g['rtf'] else 0:.2f}x)" for k, _, _ in configs]
        lines.append(f"| {lang} | {r.get('utterances', '')} | {100 * g['wer']:.2f} | " + " | ".join(cells) + f" | {g['rtf']:.4f} | " + " | ".join(rtf) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model folder (run, prune run, sub-run, export, ONNX export)")
    ap.add_argument("--corpus", help="corpus folder (default: the model's)")
    ap.add_argument("--languages", help="comma-separated (default: the model's)")
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--max-utts", type=int, default=200, help="utterances per language")
    ap.add_argument("--beams", default="4", help="comma-separated beam sizes")
    ap.add_argument("--searches", default="beam,modified_beam",
                    help="comma-separated beam searches to compare with greedy: beam, modified_beam")
    ap.add_argument("--engine", default="auto", choices=["auto", "torch", "sparse", "onnx"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    from asr_pathways.loading import open_model
    from asr_pathways.metrics import macro_average

    torch.set_num_threads(args.threads)
    t0 = time.time()
    source = open_model(args.model)
    corpus = args.corpus or source.corpus
    languages = args.languages.split(",") if args.languages else source.languages
    beams = [int(b) for b in args.beams.split(",")]
    searches = args.searches.split(",")
    if bad := [x for x in searches if x not in LABELS]:
        ap.error(f"--searches: unknown {bad}; choose from {', '.join(LABELS)}")
    if any(b < 1 for b in beams):
        ap.error("--beams: every beam size must be >= 1")
    per: dict[str, Any] = {}
    total = 0
    for lang in languages:
        decoder = source.decoder(lang, args.engine)
        utts = corpus_utterances(corpus, lang, args.split, args.max_utts)
        refs = [u.text for u in utts]
        audio = sum(u.seconds for u in utts)
        total += len(utts)
        per[lang] = {"utterances": len(utts), "audio_seconds": audio}
        for name, decoding, beam in configurations(searches, beams):
            hyps, seconds = decode_all(decoder, source.tokenizer, utts, decoding, beam)
            per[lang][name] = wer_of(refs, hyps) | {"seconds": seconds, "rtf": seconds / audio}
        print(f"{lang}: " + " ".join(f"{k} {100 * per[lang][k]['wer']:.2f}%" for k, _, _ in configurations(searches, beams)), flush=True)
    average: dict[str, Any] = {}
    for name, _, _ in configurations(searches, beams):
        average[name] = macro_average({l: r[name] for l, r in per.items()}) | {
            "rtf": sum(r[name]["seconds"] for r in per.values()) / sum(r["audio_seconds"] for r in per.values())}
    res = {"command": command_line("benchmarks/beam_search.py", argv), "machine": machine_info(), "model": str(args.model),
           "engine": source.resolve_engine(args.engine), "corpus": str(corpus), "split": args.split, "utterances": total,
           "threads": args.threads, "beams": beams, "searches": searches, "languages": per, "average": average, "wall_s": time.time() - t0,
           "load_average": os.getloadavg()[0]}
    return publish(SECTION, res, markdown, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
