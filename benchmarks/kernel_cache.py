"""oneDNN kernel compilations per training step, by kernel-cache capacity (the `small` recipe).

    .venv/bin/python benchmarks/kernel_cache.py --corpus data/mls4     # re-execs itself with tcmalloc

oneDNN (PyTorch's CPU kernels) compiles a kernel per operation and shape and caches
``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` of them (1,024 by default; ``import asr_pathways`` sets 16,384).
For each capacity a fresh process trains the preset's new recipe (``benchmarks/train_speed.py``'s
``new`` configuration) for ``--warm`` steps, then counts, over ``--count`` more steps, the kernels
oneDNN compiles (cache misses) and fetches (cache hits) and the milliseconds it reports for them
(``torch.backends.mkldnn.verbose(VERBOSE_ON_CREATION)``). Counts do not depend on the machine's
speed; the milliseconds and the step times do. Also recorded: the process's peak resident memory.
The result goes to benchmarks/results/kernel_cache.json and the ``kernel_cache`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def child(args: argparse.Namespace) -> int:
    """Run in a process whose capacity is set: warm steps, then counted steps; the verbose lines go to stdout."""
    import torch

    from asr_pathways.asr.model import load_preset
    from asr_pathways.asr.tokenizer import tokenizer_for_corpus
    from asr_pathways.data.corpus import Corpus
    from train_speed import make_trainer

    torch.manual_seed(0)
    corpus = Corpus(args.corpus)
    preset = load_preset(args.preset)
    tokenizer = tokenizer_for_corpus(args.corpus, preset["tokenizer"]["vocab_size"])
    trainer = make_trainer(corpus, tokenizer, preset["model"], dict(preset["train"]), Path(tempfile.mkdtemp(prefix="kernel_cache-")))
    t0 = time.perf_counter()
    for _ in range(args.warm):
        trainer.train_step()
    warm_s = time.perf_counter() - t0
    sys.stdout.flush()
    t0 = time.perf_counter()
    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON_CREATION):
        for _ in range(args.count):
            trainer.train_step()
    count_s = time.perf_counter() - t0
    print("RESULT " + json.dumps({"warm_seconds": warm_s, "counted_seconds": count_s,
                                   "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}), flush=True)
    return 0


def count_creations(stdout: str, steps: int) -> dict[str, float]:
    """Per-step kernel compilations (misses), cache hits and the milliseconds oneDNN reports for each, from its log."""
    out = {"misses": 0.0, "miss_ms": 0.0, "hits": 0.0, "hit_ms": 0.0}
    for line in stdout.splitlines():
        parts = line.split(",")
        if not line.startswith("onednn_verbose") or len(parts) < 4 or parts[2] != "primitive":
            continue
        keys = {"create:cache_miss": ("misses", "miss_ms"), "create:cache_hit": ("hits", "hit_ms")}.get(parts[3])
        if keys:
            out[keys[0]] += 1
            out[keys[1]] += float(parts[-1])
    return {k: v / steps for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default="data/mls4", help="corpus folder (asr-pathways corpus synth)")
    p.add_argument("--preset", default="small")
    p.add_argument("--capacities", default="1024,16384", help="kernel-cache capacities to compare, one fresh process each")
    p.add_argument("--warm", type=int, default=400, help="training steps before counting")
    p.add_argument("--count", type=int, default=100, help="training steps counted")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md and the JSON alone")
    args = p.parse_args(argv)
    if args.child:
        return child(args)

    from common import command_line, machine_info, machine_line, write_result, write_section
    from train_speed import _reexec_with_tcmalloc

    _reexec_with_tcmalloc()
    rows = {}
    for cap in [c.strip() for c in args.capacities.split(",") if c.strip()]:
        env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")}
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = cap
        cmd = [sys.executable, __file__, "--child", "--corpus", args.corpus, "--preset", args.preset,
               "--warm", str(args.warm), "--count", str(args.count)]
        print(f"capacity {cap}: {args.warm} + {args.count} steps ...", flush=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"kernel_cache: the run at capacity {cap} failed:\n{proc.stderr[-2000:]}")
        result = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
        rows[cap] = count_creations(proc.stdout, args.count) | result | {"counted_ms_per_step": 1000 * result["counted_seconds"] / args.count}
        r = rows[cap]
        print(f"capacity {cap}: {r['misses']:.1f} compilations ({r['miss_ms']:.1f} ms), {r['hits']:.1f} cache hits per step; "
              f"peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)
    out = {"capacities": rows, "warm_steps": args.warm, "counted_steps": args.count, "preset": args.preset,
           "command": command_line("benchmarks/kernel_cache.py", argv), "machine": machine_info()}
    if args.no_write:
        return 0
    write_result("kernel_cache", out)
    lines = ["## oneDNN kernel cache (`benchmarks/kernel_cache.py`)", "",
             f"`{out['command']}` on {machine_line(out['machine'])}; the `{args.preset}` preset's training recipe, one fresh "
             f"process per capacity, steps {args.warm + 1}–{args.warm + args.count} counted (oneDNN's creation log).", "",
             "| kernel cache | compilations per step | compiling, ms per step | cache hits per step | step, ms (with logging) | peak resident memory |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for cap, r in rows.items():
        lines.append(f"| {int(cap):,} | {r['misses']:.1f} | {r['miss_ms']:.1f} | {r['hits']:.0f} | {r['counted_ms_per_step']:.0f} | "
                     f"{r['peak_rss_gb']:.2f} GB |")
    lines += ["", "Compilation counts do not depend on the machine's speed; milliseconds and step times do (one run each). "
              "Raw numbers: benchmarks/results/kernel_cache.json."]
    write_section("kernel_cache", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
