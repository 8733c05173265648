"""Training-step throughput of a preset on synthetic features (no data loading, no SpecAugment).

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
        .venv/bin/python benchmarks/model_speed.py --preset small --bf16 --steps 8

Batch: ``--batch`` utterances of ``--seconds`` of audio (100 frames per second, 80-dim), with
``--tokens-per-second`` labels each; forward + backward + AdamW. Prints JSON with audio seconds
per second of wall time, the median step time and the RNN-T loss alone (fwd + bwd) at that shape.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from asr_pathways.asr.loss import rnnt_loss
from asr_pathways.asr.model import ModelConfig, RNNTModel, count_parameters, load_preset


def time_calls(fn, steps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--tokens-per-second", type=float, default=7.5)
    parser.add_argument("--vocab", type=int, default=None, help="default: the preset's tokenizer.vocab_size")
    parser.add_argument("--loss", choices=["rnnt", "ctc"], default=None, help="override model.loss")
    parser.add_argument("--bf16", action="store_true", help="CPU bf16 autocast for the model (loss stays fp32)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    preset = load_preset(args.preset)
    values = dict(preset["model"])
    if args.loss:
        values["loss"] = args.loss
    cfg = ModelConfig.from_dict(values)
    vocab = args.vocab or int(preset.get("tokenizer", {}).get("vocab_size", 256))
    torch.manual_seed(0)
    model = RNNTModel(cfg, vocab).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    frames = int(args.seconds * 100)
    labels = max(1, int(args.seconds * args.tokens_per_second))
    features = torch.randn(args.batch, frames, cfg.feature_dim) - 5
    feature_lens = torch.full((args.batch,), frames)
    tokens = torch.randint(1, vocab, (args.batch, labels))
    token_lens = torch.full((args.batch,), labels)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            out = model(features, feature_lens, tokens, token_lens)
        out["loss"].backward()
        optimizer.step()

    step_times = time_calls(step, args.steps)
    enc_frames = (frames + 3) // 4
    logits = torch.randn(args.batch, enc_frames, labels + 1, vocab, requires_grad=True)
    enc_lens = torch.full((args.batch,), enc_frames)
    loss_times = time_calls(lambda: rnnt_loss(logits, tokens, enc_lens, token_lens).backward(), args.steps)
    median = statistics.median(step_times)
    print(
        json.dumps(
            {
                "preset": args.preset,
                "loss": cfg.loss,
                "bf16": args.bf16,
                "params": count_parameters(model),
                "batch": args.batch,
                "seconds_per_utt": args.seconds,
                "labels_per_utt": labels,
                "vocab": vocab,
                "threads": torch.get_num_threads(),
                "step_s_median": round(median, 4),
                "audio_s_per_s": round(args.batch * args.seconds / median, 1),
                "rnnt_loss_fwd_bwd_ms": round(1000 * statistics.median(loss_times), 2),
                "rnnt_loss_shape": [args.batch, enc_frames, labels + 1, vocab],
            }
        )
    )


if __name__ == "__main__":
    main()
