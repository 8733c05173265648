"""Mask engine speed: (a) mask selection for a 180M-parameter set of matrices, layer-wise and
global, time and extra peak memory; (b) masked over dense training-step time for the `small` model.

    .venv/bin/python benchmarks/mask_speed.py            # re-execs itself with tcmalloc when installed

(a) 40 x 2048x2048 + 4 x 2048x1536 float32 matrices (180.4M weights), 8x1 blocks, L2, sparsity 0.7.
Each scope runs in a fresh subprocess: the weights are made, then the peak resident set size is
reset (writing "5" to /proc/self/clear_refs resets VmHWM on Linux) and VmRSS read; after each
``select_masks`` call, VmHWM - VmRSS(before) is the extra peak memory, the 180 MB of output masks
included. tracemalloc does not see torch's allocations, hence /proc. Time: best and median of
``--repeats`` calls.
(b) RNNTModel(small preset, vocab 256), synthetic batch B=16, T=400 frames x 80, U=30, bf16 autocast,
AdamW with weight decay. Dense step = zero_grad + forward + backward + optimizer.step; masked step =
the same with ``with pm.pathway("en")`` around the forward and ``pm.step(opt, ["en"])`` (masks 70%
layer-wise, 8x1; for AdamW this is the masked Adam update, and the generic save/step/restore path
is timed on its own beside it). Dense and masked steps alternate in one process, so load from other processes hits
both alike; the ratio of medians is reported.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _proc_status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return -1


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_selection(scope: str, repeats: int, sparsity: float) -> dict:
    import torch

    from asr_pathways.sparsity import select_masks

    torch.manual_seed(0)
    ws = {f"layer{i}.weight": torch.randn(2048, 2048) for i in range(40)}
    ws.update({f"proj{i}.weight": torch.randn(2048, 1536) for i in range(4)})
    n = sum(w.numel() for w in ws.values())
    times, peaks = [], []
    for _ in range(repeats):
        ok = _reset_peak()
        base = _proc_status("VmRSS")
        t = time.perf_counter()
        m = select_masks(ws, sparsity, block=(8, 1), norm="l2", scope=scope)
        times.append(time.perf_counter() - t)
        peaks.append(_proc_status("VmHWM") - base if ok else -1)
        s = m.sparsity()
        del m
    return {"scope": scope, "weights": n, "sparsity_requested": sparsity, "sparsity_realised": s,
            "seconds_best": min(times), "seconds_median": statistics.median(times), "seconds_all": times,
            "extra_peak_mb_first": peaks[0] / 2**20, "extra_peak_mb_max": max(peaks) / 2**20,
            "peak_method": "VmHWM reset via /proc/self/clear_refs" if peaks[0] >= 0 else "unavailable"}


def step_ratio(steps: int, warmup: int, seed: int) -> dict:
    import torch

    from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset
    from asr_pathways.asr.prunable import prunable_parameters
    from asr_pathways.sparsity import PathwayModel, select_masks

    torch.manual_seed(seed)
    cfg = ModelConfig.from_dict(load_preset("small")["model"])
    model = RNNTModel(cfg, 256)
    model.train()
    B, T, U, V = 16, 400, 30, 256
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(B, T, 80, generator=g)
    flens = torch.full((B,), T, dtype=torch.long)
    toks = torch.randint(1, V, (B, U), generator=g)
    tlens = torch.full((B,), U, dtype=torch.long)
    names = list(prunable_parameters(model))
    params = dict(model.named_parameters())
    masks = select_masks({n: params[n].detach() for n in names}, 0.7, (8, 1))
    pm = PathwayModel(model, names, {"en": masks})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-3)

    def dense() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(feats, flens, toks, tlens)
        out["loss"].backward()
        opt.step()

    def masked() -> None:
        opt.zero_grad(set_to_none=True)
        with pm.pathway("en"), torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(feats, flens, toks, tlens)
        out["loss"].backward()
        pm.step(opt, ["en"])

    for _ in range(warmup):
        dense()
        masked()
    td, tm = [], []
    for i in range(steps):
        order = (dense, masked) if i % 2 == 0 else (masked, dense)
        for fn in order:
            t = time.perf_counter()
            fn()
            (td if fn is dense else tm).append(time.perf_counter() - t)
    # the two pieces of overhead on their own
    t = time.perf_counter()
    for _ in range(20):
        with pm.pathway("en"):
            pass
    enter = (time.perf_counter() - t) / 20
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    t = time.perf_counter()
    for _ in range(10):
        opt.step()
    plain = (time.perf_counter() - t) / 10
    t = time.perf_counter()
    for _ in range(10):
        pm.step(opt, ["en"])
    frozen = (time.perf_counter() - t) / 10
    t = time.perf_counter()
    for _ in range(10):
        pm.step(opt, ["en"], step_fn=opt.step)  # the generic path: save, optimizer.step(), restore
    restore = (time.perf_counter() - t) / 10
    return {"model": "RNNTModel small", "params": sum(p.numel() for p in model.parameters()),
            "prunable": sum(params[n].numel() for n in names), "mask_sparsity": masks.sparsity(),
            "batch": {"B": B, "T": T, "U": U, "vocab": V, "bf16": True},
            "dense_step_s_median": statistics.median(td), "masked_step_s_median": statistics.median(tm),
            "ratio_masked_over_dense": statistics.median(tm) / statistics.median(td),
            "dense_steps_s": td, "masked_steps_s": tm,
            "context_enter_ms": 1000 * enter, "optimizer_step_ms": 1000 * plain,
            "pathway_step_ms": 1000 * frozen, "pathway_step_save_restore_ms": 1000 * restore, "steps_each": steps, "warmup_each": warmup, "seed": seed}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sparsity", type=float, default=0.7)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-step", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", choices=["layer", "global"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child_selection(args.child, args.repeats, args.sparsity)))
        return 0
    libs = sorted(glob.glob("/usr/lib/*/libtcmalloc_minimal.so.4"))
    if libs and "tcmalloc" not in os.environ.get("LD_PRELOAD", "") and not os.environ.get("_MASK_SPEED_REEXEC"):
        env = dict(os.environ, LD_PRELOAD=(libs[0] + " " + os.environ.get("LD_PRELOAD", "")).strip(), _MASK_SPEED_REEXEC="1")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    from common import command_line, machine_info, machine_line, write_result, write_section

    t0 = time.perf_counter()
    sel = {}
    for scope in ("layer", "global"):
        r = subprocess.run([sys.executable, __file__, "--child", scope, "--repeats", str(args.repeats), "--sparsity", str(args.sparsity)],
                           capture_output=True, text=True, check=True, cwd=ROOT)
        sel[scope] = json.loads(r.stdout.strip().splitlines()[-1])
        print(json.dumps(sel[scope]), flush=True)
    step = None if args.skip_step else step_ratio(args.steps, args.warmup, args.seed)
    if step:
        print(json.dumps({k: v for k, v in step.items() if not k.endswith("steps_s")}), flush=True)
    wall = time.perf_counter() - t0
    m = machine_info()
    cmd = command_line("benchmarks/mask_speed.py", argv)
    result = {"command": cmd, "machine": m, "selection": sel, "step": step, "wall_seconds": wall, "seed": args.seed}
    if args.no_write:
        return 0
    write_result("mask_speed", result)
    lines = ["## Mask engine speed (`benchmarks/mask_speed.py`)", "",
             f"Command: `{cmd}` (tcmalloc preloaded by the script). Machine: {machine_line(m)}; "
             f"load average at the end {m.get('load_average_1min', float('nan')):.1f} (absolute times move with other work on "
             f"the machine; the ratios, measured in one process, are the numbers to trust). "
             f"Seed {args.seed}; wall time {wall:.0f} s.", "",
             "**Mask selection**, 180.4M weights (40 × 2048×2048 + 4 × 2048×1536 fp32), 8x1 blocks, L2, sparsity "
             f"{args.sparsity} (target ≤ 1.5 s). Extra peak memory = VmHWM − VmRSS before the call (VmHWM reset through "
             "/proc/self/clear_refs, fresh subprocess per scope), the 180 MB of output masks included.", "",
             "| scope | best (s) | median (s) | extra peak memory (MB) | realised sparsity |", "|---|---|---|---|---|"]
    for scope, r in sel.items():
        lines.append(f"| {scope} | {r['seconds_best']:.2f} | {r['seconds_median']:.2f} | {r['extra_peak_mb_max']:.0f} | {r['sparsity_realised']:.6f} |")
    if step:
        lines += ["", f"**Masked training step** over dense, `small` RNN-T ({step['params']/1e6:.2f}M parameters, "
                  f"{step['prunable']/1e6:.2f}M prunable, masks {step['mask_sparsity']:.0%}), B=16, T=400 frames, U=30, "
                  f"vocab 256, bf16 autocast, AdamW; {step['steps_each']} steps each, alternating, after {step['warmup_each']} warm-up "
                  "steps each (target ≤ 1.05).", "",
                  "The masked step uses `pm.step(opt, active)`, which for a plain AdamW runs the masked Adam update "
                  "(`asr_pathways/sparsity/masked_adam.py`); the last column times the generic path that any other "
                  "optimizer takes (save the frozen coordinates, `opt.step()`, write them back), on the same weights.", "",
                  "| dense step (s, median) | masked step (s, median) | ratio | enter context (ms) | AdamW step (ms) | pathway step, masked Adam (ms) | pathway step, save/restore (ms) |",
                  "|---|---|---|---|---|---|---|",
                  f"| {step['dense_step_s_median']:.3f} | {step['masked_step_s_median']:.3f} | **{step['ratio_masked_over_dense']:.3f}** | "
                  f"{step['context_enter_ms']:.2f} | {step['optimizer_step_ms']:.2f} | {step['pathway_step_ms']:.2f} | "
                  f"{step.get('pathway_step_save_restore_ms', float('nan')):.2f} |"]
    write_section("mask_speed", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
