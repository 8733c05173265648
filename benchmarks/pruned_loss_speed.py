"""Full vs pruned RNN-T loss: forward + backward time of joiner + loss, per thread count; one JSON line.

    .venv/bin/python benchmarks/pruned_loss_speed.py            # re-execs itself with tcmalloc when installed
    .venv/bin/python benchmarks/pruned_loss_speed.py --threads 1,2 --repeats 15

Synthetic encoder output enc (B, T, J) and predictor output pred (B, U+1, J), both requiring grad,
the model's Joiner(J, J, J, V), and for the pruned loss the two simple projections Linear(J, V).
full = joiner on (B, T, U+1) + ``rnnt_loss``; pruned = ``pruned_rnnt_losses`` (simple loss, prune
ranges, joiner on (B, T, S), pruned loss) with ``0.5 * simple + pruned``; each followed by
``backward()``. Full and pruned alternate within one process (load from other processes hits both
alike); reported: median and best of ``--repeats`` timed runs after ``--warmup`` untimed ones, and
the ratio of medians.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def measure(args: argparse.Namespace, threads: int) -> dict:
    import torch

    from asr_pathways.asr.loss import rnnt_loss
    from asr_pathways.asr.model import Joiner
    from asr_pathways.asr.pruned_loss import pruned_rnnt_losses

    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    b, t, u, v, j = args.batch, args.frames, args.labels, args.vocab, args.joiner_dim
    joiner = Joiner(j, j, j, v)
    am_proj, lm_proj = torch.nn.Linear(j, v), torch.nn.Linear(j, v)
    enc = torch.randn(b, t, j).requires_grad_()
    pred = torch.randn(b, u + 1, j).requires_grad_()
    targets = torch.randint(1, v, (b, u))
    enc_lens, target_lens = torch.full((b,), t), torch.full((b,), u)

    def full() -> None:
        logits = joiner(joiner.enc_proj(enc)[:, :, None], joiner.pred_proj(pred)[:, None])
        rnnt_loss(logits, targets, enc_lens, target_lens).backward()

    def pruned() -> None:
        out = pruned_rnnt_losses(
            am_proj(enc), lm_proj(pred), joiner.enc_proj(enc), joiner.pred_proj(pred), joiner,
            targets, enc_lens, target_lens, prune_range=args.prune_range,
        )
        (0.5 * out.simple + out.pruned).mean().backward()

    times: dict[str, list[float]] = {"full": [], "pruned": []}
    for step in range(args.warmup + args.repeats):
        for name, fn in (("full", full), ("pruned", pruned)):
            for p in (enc, pred, *joiner.parameters(), *am_proj.parameters(), *lm_proj.parameters()):
                p.grad = None
            start = time.perf_counter()
            fn()
            if step >= args.warmup:
                times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(x) for k, x in times.items()}
    return {
        "threads": threads,
        "full_ms": round(med["full"] * 1000, 1),
        "pruned_ms": round(med["pruned"] * 1000, 1),
        "full_best_ms": round(min(times["full"]) * 1000, 1),
        "pruned_best_ms": round(min(times["pruned"]) * 1000, 1),
        "speedup": round(med["full"] / med["pruned"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--labels", type=int, default=30)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--joiner-dim", type=int, default=256)
    ap.add_argument("--prune-range", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    libs = sorted(glob.glob("/usr/lib/*/libtcmalloc_minimal.so.4"))
    if libs and "tcmalloc" not in os.environ.get("LD_PRELOAD", "") and not os.environ.get("_PRUNED_SPEED_REEXEC"):
        env = dict(os.environ, LD_PRELOAD=(libs[0] + " " + os.environ.get("LD_PRELOAD", "")).strip())
        env["_PRUNED_SPEED_REEXEC"] = "1"
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    from common import machine_info

    b, t, u, v = args.batch, args.frames, args.labels, args.vocab
    result = {
        "benchmark": "pruned_loss_speed",
        "shape": {"B": b, "T": t, "U": u, "V": v, "J": args.joiner_dim, "prune_range": args.prune_range},
        # the largest tensors: joiner logits, float32
        "full_logits_mb": round(b * t * (u + 1) * v * 4 / 2**20, 1),
        "pruned_logits_mb": round(b * t * min(args.prune_range, u + 1) * v * 4 / 2**20, 1),
        "runs": [measure(args, int(n)) for n in args.threads.split(",")],
        "machine": machine_info(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
