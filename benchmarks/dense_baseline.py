"""Dense baselines: the multilingual RNN-T trained from scratch, and monolingual fine-tunes of it.

    python benchmarks/dense_baseline.py --corpus data/mls4 --steps 2000 --mono-steps 200

Trains with `asr-pathways train` (tcmalloc preloaded, bf16 autocast on CPU), evaluates every
language of the test split (unseen speakers and sentences), and records WER/CER per language and
their average, training audio-seconds per second, peak memory and wall time, into
benchmarks/results/dense_baseline.json and the `dense_baseline` section of BENCHMARKS.md.
Build the corpus first: `asr-pathways corpus synth --out data/mls4` (the default 4 languages).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import command_line, machine_info, machine_line, write_result, write_section  # noqa: E402
from asr_pathways.runtime import tcmalloc_path  # noqa: E402


def train(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "asr_pathways.cli", "train", *args], check=True)
    return time.perf_counter() - t0


def summarise_metrics(run: Path) -> dict[str, float]:
    """Training speed and memory from the run's own logs, so a resumed run reports its training."""
    from asr_pathways.checkpoint import meta_from_json

    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
    rates = [r["audio_seconds_per_second"] for r in rows[1:]] or [rows[0]["audio_seconds_per_second"]]
    meta = meta_from_json(run)
    return {
        "train_seconds": float(meta.get("train_seconds", 0.0)),
        "audio_seconds_per_second": sum(rates) / len(rates),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
        "final_loss": rows[-1]["loss"],
        "train_audio_hours": sum(r.get("audio_seconds", 0.0) for r in rows) / 3600,
    }


def frame_and_slot_recall(hyps_path: Path, languages: list[str], corpus: Path | str | None = None) -> dict[str, dict[str, float]]:
    """Per language, the share of reference words recognised (aligned as equal by jiwer), split into
    *frame* words (the closed-class words of the text generator's sentence frames and joiners) and
    *slot* words (everything else: the lexicon's content words). Tells whether a model has learned
    only the frames (language-model-like) or also the open-vocabulary words (acoustics to spelling).
    A lexicon word that also occurs in a frame counts as a frame word (an approximation).

    With ``corpus`` (its training text), also the words never seen in training: their share of the
    test words (``unseen_share``, ``unseen_slot_share``) and the recall on them (``unseen_recall``,
    ``unseen_slot_recall``). See :func:`asr_pathways.metrics.unseen_word_recall`."""
    from asr_pathways.data.corpus import Corpus
    from asr_pathways.data.text import frame_words
    from asr_pathways.metrics import unseen_word_recall

    rows = [json.loads(l) for l in hyps_path.read_text().splitlines() if l.strip()]
    out = {}
    for lang in languages:
        try:
            fw = frame_words(lang)
        except Exception:
            continue
        train_vocab: set[str] | None = None
        if corpus is not None and "train" in Corpus(corpus).splits(lang):
            train_vocab = {w for t in Corpus(corpus).texts("train", [lang]) for w in t.split()}
        mine = [r for r in rows if r["language"] == lang]
        r = unseen_word_recall([x["ref"] for x in mine], [x["hyp"] for x in mine], train_vocab or set(), fw)
        keys = ["frame_recall", "slot_recall", "frame_words", "slot_words"]
        if train_vocab is not None:
            keys += ["unseen_share", "unseen_recall", "unseen_words", "unseen_slot_share", "unseen_slot_recall", "unseen_slot_words"]
        out[lang] = {k: r[k] for k in keys}
    return out


def utterance_bootstrap(hyps_path: Path, draws: int = 2000, seed: int = 0) -> dict[str, float]:
    """95% interval of the macro-average WER (percent) over test utterances resampled within each
    language (one trained model: it covers the test sample, not seed variance), and the share of
    resamples above 20%."""
    import random

    from asr_pathways.report import read_hyps

    per = {lang: list(scores.values()) for lang, scores in read_hyps(hyps_path).items()}

    def macro(sample: dict[str, list[tuple[int, int]]]) -> float:
        return 100 * sum(sum(e for e, _ in v) / max(1, sum(n for _, n in v)) for v in sample.values()) / len(sample)

    rng = random.Random(seed)
    vals = sorted(macro({l: [v[rng.randrange(len(v))] for _ in v] for l, v in per.items()}) for _ in range(draws))
    return {"low": vals[int(0.025 * draws)], "high": vals[int(0.975 * draws) - 1], "share_above_20": sum(x > 20 for x in vals) / draws,
            "draws": draws}


def record_name(*, seed: int, steps: int, preset_steps: int, preset: str = "small", corpus: str = "data/mls4",
                eval_max_utts: int | None = None) -> str:
    """The result file and BENCHMARKS.md section of a run. ``dense_baseline``, the acceptance record, is the ``small``
    preset's own steps on ``data/mls4``'s whole test split with seed 0; any other run names what differs
    (``_PRESET``, ``_CORPUS``, ``_stepsS``, ``_uttsN``, ``_seedN``), so that no probe overwrites it.

    >>> record_name(seed=0, steps=7000, preset_steps=7000), record_name(seed=1, steps=7000, preset_steps=7000)
    ('dense_baseline', 'dense_baseline_seed1')
    >>> record_name(seed=2, steps=2800, preset_steps=7000, preset="tiny", corpus="data/my corpus", eval_max_utts=20)
    'dense_baseline_tiny_my-corpus_steps2800_utts20_seed2'
    """
    name = "dense_baseline"
    if preset != "small":
        name += f"_{preset}"
    if Path(corpus).name != "mls4":
        name += "_" + re.sub(r"[^A-Za-z0-9.-]+", "-", Path(corpus).name)
    if steps != preset_steps:
        name += f"_steps{steps}"
    if eval_max_utts:
        name += f"_utts{eval_max_utts}"
    return name + (f"_seed{seed}" if seed else "")


def render(result: dict, corpus_card: dict) -> str:
    """The ``dense_baseline`` (or ``dense_baseline_steps{S}``, ``_seed{N}``) section of BENCHMARKS.md from a result record."""
    ml = result["multilingual"]
    seed = int(result.get("seed", 0))
    name = result.get("record") or record_name(seed=seed, steps=result["steps"], preset_steps=result["steps"])  # older records
    preset_steps = result.get("preset_steps", result["steps"])
    steps_note = f", {result['steps']:,} steps (not the preset's {preset_steps:,})" if result["steps"] != preset_steps else ""
    lines = [
        f"## Dense multilingual baseline (RNN-T, `{result.get('preset', 'small')}` preset)" + steps_note + (f", seed {seed}" if seed else ""),
        "",
        f"`{result['command']}` on {machine_line(result['machine'])}; seed {result['seed']}.",
        "",
        f"Training: {result['steps']} steps, {ml['train_seconds'] / 60:.1f} min of optimizer steps "
        f"({ml['wall_s'] / 60:.1f} min wall for this invocation, including start-up and test decoding), "
        f"{ml['audio_seconds_per_second']:.0f} audio-seconds per second, {ml['train_audio_hours']:.1f} h of audio seen, "
        f"peak RSS {ml['peak_rss_mb']:.0f} MB, final training loss {ml['final_loss']:.3f}.",
        "",
        "| language | train hours | test utterances | WER % (multilingual) | CER % | WER % (monolingual fine-tune) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lang, r in ml["languages"].items():
        hours = corpus_card["languages"].get(lang, {}).get("train", {}).get("hours", float("nan"))
        mono = result["monolingual"].get(lang)
        mono_s = f"{100 * mono['wer']:.2f}" if mono else "—"
        lines.append(f"| {lang} | {hours:.2f} | {r['utterances']} | {100 * r['wer']:.2f} | {100 * r['cer']:.2f} | {mono_s} |")
    avg = ml["average"]
    mono_avg = ""
    if result["monolingual"]:
        vals = [v["wer"] for v in result["monolingual"].values()]
        mono_avg = f"{100 * sum(vals) / len(vals):.2f}"
    lines.append(f"| **average** | | | **{100 * avg['wer']:.2f}** | {100 * avg['cer']:.2f} | {mono_avg or '—'} |")
    bs = ml.get("bootstrap")
    if bs:
        lines += ["", f"Average test WER, 95% interval over test utterances (resampled within each language, {bs['draws']} draws; "
                  f"one trained model, so seed variance is not in it): [{bs['low']:.2f}, {bs['high']:.2f}]; "
                  f"{100 * bs['share_above_20']:.0f}% of the resamples are above 20%."]
    wc = ml.get("word_classes") or {}
    if wc:
        lines += ["", "What the multilingual model recognises: share of test reference words aligned as correct, for the "
                  "closed-class words of the generator's sentence frames, for the lexicon (slot) words, and for the test words "
                  "never seen in the training text (their share of the test words and of the test slot words, and the recall on "
                  "them; in this corpus every unseen word is a slot word).", "",
                  "| language | frame words | recall | slot words | recall | unseen words | share of words | share of slot words | recall |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        pct = lambda x: "—" if x != x else f"{100 * x:.1f}%"  # noqa: E731  (nan: no such words)
        for lang, r in wc.items():
            lines.append(f"| {lang} | {r['frame_words']} | {pct(r['frame_recall'])} | {r['slot_words']} | {pct(r['slot_recall'])} | "
                         f"{r.get('unseen_words', '—')} | {pct(r.get('unseen_share', math.nan))} | {pct(r.get('unseen_slot_share', math.nan))} | "
                         f"{pct(r.get('unseen_recall', math.nan))} |")
    if result.get('mono_steps', 0):
        lines += ["", f"Monolingual models: fine-tuned from the multilingual model for {result.get('mono_steps', 0)} steps per language (lr 5e-4)."]
    lines += ["", f"Raw numbers: benchmarks/results/{name}.json."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="data/mls4")
    p.add_argument("--preset", default="small")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps (default: the preset's). Only the small preset's own steps on data/mls4's whole test "
                        "split with seed 0 write the acceptance record (dense_baseline); any other run writes its own record "
                        "and section, named by what differs (e.g. dense_baseline_steps2800, dense_baseline_seed1)")
    p.add_argument("--seed", type=int, default=0,
                   help="training seed; a seed other than 0 writes its own record and section (..._seedN)")
    p.add_argument("--mono-steps", type=int, default=0, help="fine-tune a monolingual model per language for this many steps (0: skip)")
    p.add_argument("--out", default="runs/bench-dense")
    p.add_argument("--eval-max-utts", type=int, default=None)
    p.add_argument("--render-only", action="store_true",
                   help="rewrite the BENCHMARKS.md section from benchmarks/results/dense_baseline.json (or the record that "
                        "the run's --preset, --corpus, --steps, --eval-max-utts and --seed name; no training, no decoding; adds the "
                        "utterance bootstrap from --out's hyps_test.jsonl when the record lacks it)")
    args = p.parse_args(argv)
    from asr_pathways.asr.model import load_preset

    preset_steps = int(load_preset(args.preset)["train"]["steps"])
    if args.steps is None:
        args.steps = preset_steps
    name = record_name(seed=args.seed, steps=args.steps, preset_steps=preset_steps, preset=args.preset, corpus=args.corpus,
                       eval_max_utts=args.eval_max_utts)
    if args.render_only:
        result = json.loads((ROOT / f"benchmarks/results/{name}.json").read_text())
        hyps = Path(args.out) / "hyps_test.jsonl"
        if hyps.is_file() and "bootstrap" not in result["multilingual"]:
            result["multilingual"]["bootstrap"] = utterance_bootstrap(hyps)
            write_result(name, result)
        text = render(result, json.loads((Path(args.corpus) / "card.json").read_text()))
        write_section(name, text)
        print(text)
        return 0
    out = Path(args.out)
    common = ["--corpus", args.corpus, "--seed", str(args.seed)] + (["--eval-max-utts", str(args.eval_max_utts)] if args.eval_max_utts else [])
    wall = train(["--preset", args.preset, "--out", str(out), "--steps", str(args.steps), *common])
    result = {
        "benchmark": "dense_baseline",
        "command": command_line("benchmarks/dense_baseline.py", argv),
        "machine": machine_info() | {"tcmalloc": tcmalloc_path() is not None},  # the train command preloads it
        "seed": args.seed,
        "record": name,
        "preset": args.preset,
        "steps": args.steps,
        "preset_steps": preset_steps,
        "mono_steps": args.mono_steps,
        "multilingual": {"wall_s": wall, **summarise_metrics(out), **json.loads((out / "wer_test.json").read_text())},
        "monolingual": {},
    }
    result["multilingual"]["bootstrap"] = utterance_bootstrap(out / "hyps_test.jsonl")
    result["multilingual"]["word_classes"] = frame_and_slot_recall(out / "hyps_test.jsonl", list(result["multilingual"]["languages"]), args.corpus)
    corpus_card = json.loads((Path(args.corpus) / "card.json").read_text())
    if args.mono_steps:
        for lang in result["multilingual"]["languages"]:
            mono = out.parent / f"{out.name}-mono-{lang}"
            w = train(["--init", str(out), "--languages", lang, "--steps", str(args.mono_steps), "--out", str(mono),
                       "--lr", "5e-4", "--warmup-steps", "20", *common])
            result["monolingual"][lang] = {"wall_s": w, **json.loads((mono / "wer_test.json").read_text())["languages"][lang]}
    result["average_wer"] = 100 * result["multilingual"]["average"]["wer"]  # percent, macro average over languages
    result["train_minutes"] = result["multilingual"]["train_seconds"] / 60
    write_result(name, result)

    text = render(result, corpus_card)
    write_section(name, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
