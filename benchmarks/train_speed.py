"""Training throughput on real batches: the old recipe, the new one and a fixed-shape reference.

    .venv/bin/python benchmarks/train_speed.py --corpus data/mls4     # re-execs itself with tcmalloc

The configurations of the `small` model are timed in one process, each through ``Trainer.train_step``
(forward, backward, AdamW, bf16 autocast, SpecAugment where the configuration has it), in rounds:
a round runs every configuration in turn (odd rounds in reverse order, so that a drift of the
machine's speed hits all of them alike), each for ``--round-warmup`` untimed steps and then
``--steps`` timed ones. The untimed steps put a configuration in the steady state of a training run:
the new recipe's batches all differ in shape, and its first steps after other configurations ran
can be slow while the allocator and the CPU kernels prepare its sizes and shapes (BENCHMARKS.md,
"Training throughput", the seventh session's reading). Before the rounds the new, quantised and fused
recipes run ``--shape-warmup`` untimed steps, so that oneDNN's kernel cache (16,384 kernels, set on
``import asr_pathways``) holds most of their kernels, as in a training run past its first few hundred
steps (the old recipe does not: new / old is overstated by it). After the rounds the new
recipe runs ``--contiguous`` more steps alone (a diagnostic: a training run's own pace).

Then every configuration but ``old`` takes turns step by step for ``--interleaved`` steps (in a new
seeded random order every step). The headline ratios other than new / old come from these steps: the
machine's drift, which moved a 30-step round's new / fixed between 0.74x and 1.14x within one run,
then falls alike on every configuration. Each ratio gets a 95% t-interval over ``--blocks``
consecutive blocks of the interleaved steps. The old recipe is not interleaved: its many batch
shapes would crowd the others' kernels out of oneDNN's cache, and new / old (~3.5x) does not need it.

- ``old``: the recipe of 2026-11 (RECIPE_2026_11 below, written out in full so that the
  comparison can be rerun after the presets change): one 16-s monolingual batch per language per
  step (four for the 4-language corpus), audio decoded and fbank computed for every batch, dropout
  0.1, the full RNN-T loss.
- ``new``: the `small` preset as shipped (mixed-language batches bucketed by duration and token
  count, cached features, and whatever model/loss settings the preset has).
- ``fixed``: the ``new`` model and loss on fixed-shape batches of 16 utterances x 4 s (real
  features and tokens cropped to 400 frames and to the corpus's mean tokens per 4 s): no padding,
  no loading; the reference that real batches are compared with.
- ``repeated`` (diagnostic): the ``new`` recipe with one of its real batches (the median-sized of 20)
  repeated every step: its shape and padding, but no loading and no new shapes. ``new`` vs
  ``repeated`` is what loading and changing shapes cost; ``repeated`` vs ``fixed`` what the batch's
  make-up costs (more, shorter utterances, padding). The ``new`` row also times its batch loading
  (``MixedStream.next``) apart.
- ``quantised``: the ``new`` recipe with batch shapes padded to multiples (QUANTISED below).
- ``fused``: the ``new`` recipe with torch's fused AdamW kernel instead of the single-tensor loop
  (``train.fused_adamw``, off in the presets), on another data order (seed + 1); fused / new is
  what the fused optimizer would save. With new's own data order, each of its steps compiled the
  kernels of the batch shape new ran next, and in the interleaved steps both ran faster than new
  alone (234 against 199 audio-s/s, the first run of 2026-12-03): a bias in favour of new.

Throughput is audio seconds (valid frames, before padding) per wall second of ``train_step``.
Not timed: building the feature cache (once per corpus, in ``make_trainer``) and the first
epoch plan's tokenisation; the ``new`` row's gain comes from all of its settings together.
The result goes to benchmarks/results/train_speed.json (top-level ``new_over_old`` and
``new_over_fixed``) and the ``train_speed`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# The `small` recipe as it was on 2026-11-27 (BENCHMARKS.md "Dense multilingual baseline", 75 audio-s/s).
RECIPE_2026_11 = {
    "model": {
        "feature_dim": 80, "subsampling_channels": 64, "d_model": 144, "num_layers": 6, "num_heads": 4,
        "ff_mult": 4, "conv_kernel": 15, "dropout": 0.1, "predictor_dim": 256, "predictor_layers": 1,
        "joiner_dim": 256, "scale_input": False, "ctc_weight": 0.3, "loss": "rnnt",
    },
    "train": {
        "lr": 1.0e-3, "weight_decay": 1.0e-3, "warmup_steps": 200, "steps": 1500, "max_duration": 16.0,
        "languages_per_step": 0, "grad_clip": 5.0, "bf16": True, "spec_augment": True,
        "batching": "language", "feature_cache": False,
    },
}


# ratios reported: numerator, denominator (where both configurations ran)
RATIOS = (("new", "fixed"), ("new", "repeated"), ("repeated", "fixed"), ("quantised", "new"), ("fused", "new"))

# the new recipe with every batch's frames padded up to a multiple of 64 (0.64 s) and labels to a multiple of 8:
# fewer distinct shapes, more padding
QUANTISED = {"frame_multiple": 64, "token_multiple": 8}


def _reexec_with_tcmalloc() -> None:
    if "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        return
    libs = glob.glob("/usr/lib/*/libtcmalloc_minimal.so.4")
    if libs:
        os.environ["LD_PRELOAD"] = libs[0]
        os.execv(sys.executable, [sys.executable, *sys.argv])


class RepeatedBatch:
    """One batch, returned every step (the ``repeated`` diagnostic)."""

    def __init__(self, batch) -> None:
        self.batch = batch

    def next(self):
        return self.batch

    def state_dict(self):
        return {}


class TimedStream:
    """Wraps a batch stream and adds up the seconds its ``next()`` takes (loading inside a step)."""

    def __init__(self, stream) -> None:
        self.stream, self.seconds = stream, 0.0

    def next(self):
        t0 = time.perf_counter()
        b = self.stream.next()
        self.seconds += time.perf_counter() - t0
        return b

    def state_dict(self):
        return self.stream.state_dict()


class FixedShapeStream:
    """Batches of ``batch`` utterances of exactly ``frames`` feature frames and ``tokens`` labels,
    cut from real batches of ``source`` (no padding; the same batch every step, like a kernel timing)."""

    def __init__(self, source, batch: int, frames: int, tokens: int) -> None:
        import torch

        from asr_pathways.data.batches import Batch

        feats, toks, texts, ids = [], [], [], []
        for _ in range(10_000):
            if len(feats) >= batch:
                break
            b = source.next()
            for k in range(len(b.cut_ids)):
                if int(b.feature_lens[k]) >= frames and int(b.token_lens[k]) >= tokens and len(feats) < batch:
                    feats.append(b.features[k, :frames])
                    toks.append(b.tokens[k, :tokens])
                    texts.append(b.texts[k])
                    ids.append(b.cut_ids[k])
        if len(feats) < batch:
            raise SystemExit(f"fewer than {batch} utterances of at least {frames} frames and {tokens} tokens in the corpus")
        self.batch = Batch(
            language="mixed", features=torch.stack(feats), feature_lens=torch.full((batch,), frames),
            tokens=torch.stack(toks), token_lens=torch.full((batch,), tokens), texts=texts, cut_ids=ids,
            languages=["mixed"] * batch,
        )

    def next(self):
        return self.batch

    def state_dict(self):
        return {}


def make_trainer(corpus, tokenizer, model_cfg: dict, train_cfg: dict, out: Path):
    from asr_pathways.runs import build_model
    from asr_pathways.train import Trainer, TrainConfig

    cfg = TrainConfig.from_dict(dict(train_cfg), source="train_speed")
    model = build_model(model_cfg, tokenizer.vocab_size)
    return Trainer(model, tokenizer, corpus, list(corpus.languages), cfg, out, progress=False)


def grid_padding(batches, factor: int = 4) -> float:
    """Share of the (B, T, U+1) transducer grid that is padding, over ``batches`` (``factor``: the
    model's subsampling, feature frames per encoder frame)."""
    pad = total = 0.0
    for b in batches:
        t = (b.feature_lens.float() / factor).ceil()
        u = b.token_lens.float() + 1
        full = len(b.cut_ids) * float(t.max()) * float(u.max())
        total += full
        pad += full - float((t * u).sum())
    return pad / max(total, 1.0)


def bucket_fill(corpus, tokenizer, weights, max_duration: float, factor: int, counts=(10, 30, 100)) -> dict[int, dict[str, float]]:
    """For each number of duration buckets, what one epoch of mixed batches holds (no features loaded):
    the share of padded frames that are speech, the speech seconds per batch and the padding of the
    (B, T, U+1) transducer grid at ``factor`` feature frames per encoder frame."""
    from asr_pathways.data.batches import MixedStream

    sources = {lang: (corpus.cuts(lang, "train"), None) for lang in corpus.languages}
    out = {}
    for n in counts:
        m = MixedStream(sources, tokenizer, max_duration, weights, seed=0, num_buckets=n)
        plan = m.plan(0)
        speech = padded = grid_valid = grid_full = 0.0
        for b in plan:
            durs = [m.durations[lang][i] for lang, i in b]
            frames = [math.ceil(d * 100 / factor) for d in durs]
            labels = [m._token_count(lang, i) + 1 for lang, i in b]
            speech += sum(durs)
            padded += len(durs) * max(durs)
            grid_valid += sum(t * u for t, u in zip(frames, labels))
            grid_full += len(b) * max(frames) * max(labels)
        out[n] = {"frame_fill": speech / padded, "speech_seconds_per_batch": speech / len(plan),
                  "grid_padding": 1 - grid_valid / grid_full, "batches_per_epoch": len(plan)}
    return out


def interleave(trainers: dict, names: list[str], steps: int, seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """``names`` take turns step by step for ``steps`` steps each, in a new random order every step
    (seeded), so that the machine's drift, which moves a 30-step round's rate by up to ±15% here,
    falls alike on every configuration, and so that no configuration always runs right after the
    same other one (what one leaves in the caches for the next is spread evenly); per configuration,
    each timed step's seconds and audio seconds."""
    import random

    rng = random.Random(seed)
    out = {n: {"seconds": [], "audio": []} for n in names}
    for _ in range(steps):
        order = list(names)
        rng.shuffle(order)
        for n in order:
            t0 = time.perf_counter()
            info = trainers[n].train_step()
            out[n]["seconds"].append(time.perf_counter() - t0)
            out[n]["audio"].append(info["audio_seconds"])
    return out


def block_ratios(num: dict[str, list[float]], den: dict[str, list[float]], blocks: int) -> list[float]:
    """Throughput ratio num / den in each of ``blocks`` consecutive runs of interleaved steps.

    >>> block_ratios({"seconds": [1, 1, 2, 2], "audio": [2, 2, 2, 2]}, {"seconds": [1] * 4, "audio": [1] * 4}, 2)
    [2.0, 1.0]
    """
    n = len(num["seconds"])
    if not 1 <= blocks <= n:
        raise ValueError(f"block_ratios: {blocks} blocks of {n} steps; expected 1 to {n}")
    edges = [round(i * n / blocks) for i in range(blocks + 1)]
    rate = lambda t, a, b: sum(t["audio"][a:b]) / sum(t["seconds"][a:b])  # noqa: E731
    return [rate(num, a, b) / rate(den, a, b) for a, b in zip(edges, edges[1:])]


def main(argv: list[str] | None = None) -> int:
    _reexec_with_tcmalloc()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default="data/mls4", help="corpus folder (asr-pathways corpus synth)")
    p.add_argument("--preset", default="small", help="preset whose settings are the new recipe")
    p.add_argument("--rounds", type=int, default=2, help="rounds; each times every configuration once, in turn (odd rounds in reverse order)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per configuration per round")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per configuration first")
    p.add_argument("--round-warmup", type=int, default=60,
                   help="untimed steps at the start of every configuration's round, so that it is timed in the steady state "
                        "of a training run: after the other configurations ran, the allocator's and the CPU kernels' caches "
                        "hold their sizes and shapes (the new recipe's every batch has a new shape)")
    p.add_argument("--shape-warmup", type=int, default=300,
                   help="untimed steps of the new, quantised and fused recipes before the rounds: a training run past its first few "
                        "hundred steps has most of its kernels in oneDNN's kernel cache (sized by ONEDNN_PRIMITIVE_CACHE_CAPACITY, "
                        "which `import asr_pathways` sets; BENCHMARKS.md). The old recipe, whose batches vary in shape too, "
                        "does not get them (it takes 0.7-0.8 s a step), so it is timed colder: new / old is overstated by this")
    p.add_argument("--contiguous", type=int, default=60,
                   help="after the rounds, time the new recipe alone for this many consecutive steps (diagnostic; 0: skip)")
    p.add_argument("--interleaved", type=int, default=240,
                   help="after the rounds, new, fixed, repeated (quantised, fused) take turns step by step for this many steps "
                        "each, in a new random order every step (seed 0): every headline ratio but new / old comes from these steps, with a "
                        "95%% interval over --blocks consecutive blocks (0: from the rounds, as before 2026-12-03). The old "
                        "recipe stays in the rounds only (its many batch shapes would crowd the others' kernels out of the cache)")
    p.add_argument("--blocks", type=int, default=8, help="blocks of interleaved steps for the interval of a ratio")
    p.add_argument("--quantised", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the new recipe with batch shapes padded to multiples (QUANTISED)")
    p.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the new recipe with torch's fused AdamW kernel instead of the single-tensor loop (fused / "
                        "new: what the fused optimizer would save; the presets keep the single-tensor loop)")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md and the JSON alone")
    args = p.parse_args(argv)
    if args.interleaved and not 2 <= args.blocks <= args.interleaved:
        p.error(f"--blocks {args.blocks}: expected 2 to --interleaved ({args.interleaved}) blocks")

    import torch

    from asr_pathways.asr.model import load_preset
    from asr_pathways.asr.tokenizer import tokenizer_for_corpus
    from asr_pathways.data.corpus import Corpus
    from common import command_line, machine_info, machine_line, write_result, write_section

    torch.manual_seed(0)
    corpus = Corpus(args.corpus)
    preset = load_preset(args.preset)
    tokenizer = tokenizer_for_corpus(args.corpus, preset["tokenizer"]["vocab_size"])
    tmp = Path(tempfile.mkdtemp(prefix="train_speed-"))
    new_train = dict(preset["train"])
    trainers = {
        "old": make_trainer(corpus, tokenizer, RECIPE_2026_11["model"], RECIPE_2026_11["train"], tmp / "old"),
        "new": make_trainer(corpus, tokenizer, preset["model"], new_train, tmp / "new"),
        "fixed": make_trainer(corpus, tokenizer, preset["model"], new_train | {"batching": "mixed"}, tmp / "fixed"),
    }
    if args.quantised:
        trainers["quantised"] = make_trainer(corpus, tokenizer, preset["model"], new_train | QUANTISED, tmp / "quantised")
    if args.fused and not new_train.get("fused_adamw", False):
        # another data order (seed + 1): with new's own order its every step would put new's next batch shape into the
        # kernel cache, and both would run faster interleaved than alone (234 against 199 audio-s/s, 2026-12-03)
        fused = new_train | {"fused_adamw": True, "seed": int(new_train.get("seed", 0)) + 1}
        trainers["fused"] = make_trainer(corpus, tokenizer, preset["model"], fused, tmp / "fused")
    trainers["repeated"] = make_trainer(corpus, tokenizer, preset["model"], new_train, tmp / "repeated")
    # the corpus's mean tokens per second sets the fixed batches' label length
    sample = [trainers["new"].mixed.next() if trainers["new"].mixed else next(iter(trainers["new"].streams.values())).next() for _ in range(20)]
    tokens_per_s = sum(float(b.token_lens.sum()) for b in sample) / sum(float(b.feature_lens.sum()) / 100 for b in sample)
    fixed_tokens = max(1, round(4.0 * tokens_per_s))
    trainers["fixed"].mixed = FixedShapeStream(trainers["fixed"].mixed, 16, 400, fixed_tokens)
    padding = {"new": grid_padding(sample, int(preset["model"].get("subsampling_factor", 4)))}
    padding["old"] = grid_padding([s.next() for s in trainers["old"].streams.values() for _ in range(5)])
    median = sorted(sample, key=lambda b: float(b.feature_lens.sum()))[len(sample) // 2]
    trainers["repeated"].mixed = RepeatedBatch(median)
    padding["repeated"] = grid_padding([median], int(preset["model"].get("subsampling_factor", 4)))
    load = TimedStream(trainers["new"].mixed)

    fills = bucket_fill(corpus, tokenizer, trainers["new"].weights, float(new_train["max_duration"]),
                        int(preset["model"].get("subsampling_factor", 4)))
    timing = {k: {"seconds": [], "audio": [], "steps": 0, "rounds": []} for k in trainers}
    for name, tr in trainers.items():
        for _ in range(args.warmup + (args.shape_warmup if name in ("new", "quantised", "fused") else 0)):
            tr.train_step()
    trainers["new"].mixed = load  # from here on its loading is timed too
    t_start = time.perf_counter()
    for r in range(args.rounds):
        order = list(trainers.items()) if r % 2 == 0 else list(trainers.items())[::-1]  # ABC, CBA, ...: drift cancels
        for name, tr in order:
            untimed_load = load.seconds
            for _ in range(args.round_warmup):
                tr.train_step()
            load.seconds = untimed_load  # the untimed steps' loading is not counted either
            for _ in range(args.steps):
                t0 = time.perf_counter()
                info = tr.train_step()
                timing[name]["seconds"].append(time.perf_counter() - t0)
                timing[name]["audio"].append(info["audio_seconds"])
                timing[name]["steps"] += 1
            n = args.steps
            timing[name]["rounds"].append(sum(timing[name]["audio"][-n:]) / sum(timing[name]["seconds"][-n:]))
        print(f"round {r + 1}/{args.rounds} (this round's rates): " + ", ".join(f"{n} {t['rounds'][-1]:.1f} audio-s/s" for n, t in timing.items()), flush=True)
    wall = time.perf_counter() - t_start
    loading_seconds = load.seconds  # the timed steps' loading (the contiguous steps below load through it too)
    # diagnostic: the new recipe alone for a stretch of consecutive steps, as in a training run
    contiguous = {"seconds": 0.0, "audio": 0.0, "steps": args.contiguous}
    for _ in range(args.contiguous):
        t0 = time.perf_counter()
        contiguous["audio"] += trainers["new"].train_step()["audio_seconds"]
        contiguous["seconds"] += time.perf_counter() - t0
    paired = None
    if args.interleaved:
        from asr_pathways.bench.stats import t_interval

        names = [n for n in ("new", "fixed", "repeated", "quantised", "fused") if n in trainers]
        t0 = time.perf_counter()
        steps = interleave(trainers, names, args.interleaved)
        paired = {"names": names, "steps": args.interleaved, "blocks": args.blocks, "wall_seconds": time.perf_counter() - t0,
                  "audio_seconds_per_second": {n: sum(v["audio"]) / sum(v["seconds"]) for n, v in steps.items()}, "ratios": {}}
        for a, b in RATIOS:
            if a in steps and b in steps:
                blocks = block_ratios(steps[a], steps[b], args.blocks)
                lo, hi = t_interval([math.log(x) for x in blocks]) or (math.nan, math.nan)
                paired["ratios"][f"{a}_over_{b}"] = {
                    "ratio": paired["audio_seconds_per_second"][a] / paired["audio_seconds_per_second"][b],
                    "blocks": blocks, "interval95": [math.exp(lo), math.exp(hi)]}
        paired["seconds_per_step"] = {n: v["seconds"] for n, v in steps.items()}  # for an audit of the ratios
        paired["audio_seconds_per_step"] = {n: v["audio"] for n, v in steps.items()}
        print("interleaved: " + ", ".join(f"{k} {v['ratio']:.3f}x [{v['interval95'][0]:.3f}, {v['interval95'][1]:.3f}]"
                                          for k, v in paired["ratios"].items()), flush=True)
    rows = {}
    for name, t in timing.items():
        rows[name] = {
            "audio_seconds_per_second": sum(t["audio"]) / sum(t["seconds"]),
            "seconds_per_step_median": statistics.median(t["seconds"]),
            "audio_seconds_per_step": sum(t["audio"]) / t["steps"],
            "steps": t["steps"],
            "audio_seconds_per_second_by_round": t["rounds"],
        }
    for name in ("old", "new", "repeated"):
        rows[name]["grid_padding"] = padding[name]
    rows["new"]["loading_seconds_per_step"] = loading_seconds / timing["new"]["steps"]
    for name in ("quantised", "fused"):
        if name in rows:
            rows[name]["grid_padding"] = float("nan")
    rows["fixed"]["grid_padding"] = 0.0
    by_rounds = {f"{a}_over_{b}": rows[a]["audio_seconds_per_second"] / rows[b]["audio_seconds_per_second"]
                 for a, b in RATIOS if a in rows}
    headline = {k: paired["ratios"][k]["ratio"] for k in paired["ratios"]} if paired else by_rounds
    result = {
        "new_over_old": rows["new"]["audio_seconds_per_second"] / rows["old"]["audio_seconds_per_second"],
        **headline,
        "ratios_from": "interleaved" if paired else "rounds",
        "rounds_ratios": by_rounds,
        **({"interleaved": paired} if paired else {}),
        "configurations": rows,
        **({"new_contiguous": {"audio_seconds_per_second": contiguous["audio"] / contiguous["seconds"], "steps": contiguous["steps"],
                               "over_fixed": contiguous["audio"] / contiguous["seconds"] / rows["fixed"]["audio_seconds_per_second"]}}
           if args.contiguous else {}),
        "old_recipe": RECIPE_2026_11,
        "new_recipe": {"preset": args.preset, "model": preset["model"], "train": new_train},
        "fixed_shape": {"batch": 16, "frames": 400, "tokens": fixed_tokens},
        "bucket_fill": {str(n): v for n, v in fills.items()},
        "command": command_line("benchmarks/train_speed.py", argv),
        "machine": machine_info(),
        "seed": 0,
        "rounds": args.rounds, "steps_per_round": args.steps, "warmup": args.warmup, "round_warmup": args.round_warmup,
        "shape_warmup": args.shape_warmup,
        "wall_seconds": wall + (paired["wall_seconds"] if paired else 0.0),
    }
    print(f"new/old {result['new_over_old']:.2f}x, new/fixed {result['new_over_fixed']:.2f}x, "
          + ", ".join(f"{k} {v['audio_seconds_per_second']:.1f} audio-s/s" for k, v in rows.items())
          + (f"; new alone {result['new_contiguous']['audio_seconds_per_second']:.1f} audio-s/s" if args.contiguous else ""))
    if args.no_write:
        return 0
    write_result("train_speed", result)
    interleaved_note = f"; then {paired['steps']} interleaved steps per configuration ({', '.join(paired['names'])})" if paired else ""
    lines = [
        "## Training throughput (`benchmarks/train_speed.py`)", "",
        f"`{result['command']}` on {machine_line(result['machine'])}; seed 0; {args.rounds} rounds (every other one in reverse order) of "
        f"{args.steps} steps per configuration after {args.warmup} warm-up steps"
        f"{f', each round after {args.round_warmup} untimed steps' if args.round_warmup else ''}"
        f"{f'; new, quantised and fused first ran {args.shape_warmup} more untimed steps (as a training run past its first steps, most of their kernels cached; old did not, so new / old is overstated)' if args.shape_warmup else ''}"
        f"{interleaved_note}"
        f"; oneDNN kernel cache {result['machine'].get('onednn_primitive_cache', '?')}; wall time {result['wall_seconds']:.0f} s.", "",
        "| configuration | what it is | audio-s/s | s/step (median) | audio-s/step | padding of the (B,T,U+1) grid |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    what = {
        "old": "recipe of 2026-11: 4 monolingual 16-s batches/step, inline fbank, dropout 0.1, full RNN-T loss, single-tensor AdamW",
        "new": f"`{args.preset}` preset: one mixed-language batch/step (duration + token buckets), cached fbank, "
               f"pruned RNN-T loss, dropout 0, 32 subsampling channels, {new_train.get('num_buckets', 10)} duration buckets, "
               f"SpecAugment {'on' if new_train.get('spec_augment', True) else 'off'} (docs/training.md)",
        "fixed": f"new model, loss and settings, fixed 16 x 4 s batches, {fixed_tokens} tokens, no padding or loading",
        "repeated": "new, one of its real batches (median size of 20) repeated every step: no loading, one shape (diagnostic)",
        "fused": "new, with torch's fused AdamW kernel instead of the single-tensor loop (train setting fused_adamw, off in the "
                 "presets), on another data order (seed + 1) so that it does not compile new's next shapes for it",
        "quantised": f"new, every batch padded to a multiple of {QUANTISED['frame_multiple']} frames and "
                     f"{QUANTISED['token_multiple']} labels (train settings frame_multiple, token_multiple)",
    }
    for name, r in rows.items():
        lines.append(f"| {name} | {what[name]} | {r['audio_seconds_per_second']:.1f} | {r['seconds_per_step_median']:.3f} | "
                     f"{r['audio_seconds_per_step']:.1f} | {'—' if r['grid_padding'] != r['grid_padding'] else format(100 * r['grid_padding'], '.0f') + '%'} |")
    quant = f" quantised / new = {result['quantised_over_new']:.2f}x (the preset does not pad to multiples: in a 2,800-step training run on the demo corpus padding was not faster, BENCHMARKS.md)." if "quantised_over_new" in result else ""
    by_round = ", ".join(f"{n / f:.2f}x" for n, f in zip(rows["new"]["audio_seconds_per_second_by_round"],
                                                          rows["fixed"]["audio_seconds_per_second_by_round"]))
    rr = result["rounds_ratios"]
    if paired:
        pr = paired["ratios"]
        head = (f"**new / old = {result['new_over_old']:.2f}x** (rounds); **new / fixed = {pr['new_over_fixed']['ratio']:.2f}x, "
                f"95% interval [{pr['new_over_fixed']['interval95'][0]:.2f}, {pr['new_over_fixed']['interval95'][1]:.2f}]** "
                f"(interleaved: {', '.join(paired['names'])} took turns step by step, in a new random order every step, "
                f"after the rounds, {paired['steps']} steps each; the interval is a t-interval over {paired['blocks']} consecutive "
                f"blocks of those steps: it holds how the ratio varied between blocks of this run, not the variance between "
                f"runs, nor a bias that a turn order could still carry). "
                f"From the rounds alone (round by round: {by_round}): new / fixed {rr['new_over_fixed']:.2f}x.")
        table = ["", "| ratio (interleaved) | value | 95% interval over blocks | blocks (min–max) | from the rounds |",
                 "| --- | ---: | --- | --- | ---: |"]
        for k, v in pr.items():
            table.append(f"| {k.replace('_over_', ' / ')} | {v['ratio']:.3f}x | [{v['interval95'][0]:.3f}, {v['interval95'][1]:.3f}] | "
                         f"{min(v['blocks']):.2f}–{max(v['blocks']):.2f} | {rr.get(k, math.nan):.3f}x |")
    else:
        head = (f"**new / old = {result['new_over_old']:.2f}x; new / fixed = {result['new_over_fixed']:.2f}x** "
                f"(round by round: {by_round}; the machine's speed drifts within a run).")
        table = []
    lines += ["", head + quant + " "
              f"Diagnostics: new / repeated = {result['new_over_repeated']:.2f}x (what loading and changing shapes cost; the new "
              f"recipe's loading takes {1000 * rows['new']['loading_seconds_per_step']:.1f} ms per step, of a "
              f"{1000 * rows['new']['audio_seconds_per_step'] / rows['new']['audio_seconds_per_second']:.0f} ms mean step), repeated / fixed = "
              f"{result['repeated_over_fixed']:.2f}x (the batch's make-up). "
              + (f"The new recipe alone for {args.contiguous} consecutive steps after the rounds (as in a training run; not "
                 f"interleaved, so the machine's drift is not shared): {result['new_contiguous']['audio_seconds_per_second']:.1f} "
                 f"audio-s/s, {result['new_contiguous']['over_fixed']:.2f}x the fixed row's. " if args.contiguous else "") +
              "Not timed: the one-off feature-cache build and the first epoch plan. The fixed batches are all 4-s utterances, "
              "so new / fixed also includes attention's and the LSTM's dependence on length, not only padding and loading. "
              + (f"In the interleaved steps new ran at {paired['audio_seconds_per_second']['new']:.1f} audio-s/s and fixed at "
                 f"{paired['audio_seconds_per_second']['fixed']:.1f}. " if paired else "") +
              "The table's rates come from the rounds. Raw numbers: benchmarks/results/train_speed.json."] + table
    lines += ["", f"Padding by number of duration buckets (`num_buckets`; one epoch of the `new` recipe's mixed batches, "
              f"{float(new_train['max_duration']):g} s padded per batch; the preset uses {new_train.get('num_buckets', 10)}):", "",
              "| duration buckets | speech share of padded frames | speech s per batch | padding of the (B,T,U+1) grid | batches per epoch |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for n, f in fills.items():
        lines.append(f"| {n} | {100 * f['frame_fill']:.1f}% | {f['speech_seconds_per_batch']:.1f} | {100 * f['grid_padding']:.1f}% | "
                     f"{f['batches_per_epoch']} |")
    write_section("train_speed", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
