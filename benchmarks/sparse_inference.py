"""Sparse inference benchmark: per-layer speed (dense vs torch CSR vs BlockSparseLinear), whole-model
greedy decoding real-time factor, and compact export sizes, at 50/70/90% (8x1 blocks).

    .venv/bin/python benchmarks/sparse_inference.py [--quick]

Writes benchmarks/results/sparse_inference.json and the section between
``<!-- sparse_inference:start -->`` and ``<!-- sparse_inference:end -->`` of BENCHMARKS.md.
Times are medians; ratios are what to trust on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr_pathways.export.sparse_linear import BlockSparseLinear, kernel_backend  # noqa: E402
from benchmarks.common import command_line, machine_info, machine_line, write_result, write_section  # noqa: E402

SECTION = "sparse_inference"
SPARSITIES = (0.5, 0.7, 0.9)
# (name, out, in): square references and the layer shapes of the `small` preset
SHAPES = [
    ("1024x1024", 1024, 1024),
    ("2048x2048", 2048, 2048),
    ("small ff.linear1", 576, 144),
    ("small ff.linear2", 144, 576),
    ("small attn.in_proj", 432, 144),
    ("small lstm.weight_ih/hh", 1024, 256),
    ("small joiner.output", 256, 256),
]


def timeit(fn, budget_s: float = 0.08, min_reps: int = 5, max_reps: int = 400) -> float:
    for _ in range(3):
        fn()
    ts = []
    start = time.perf_counter()
    while len(ts) < max_reps and (len(ts) < min_reps or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2] * 1e6


def layer_rows(quick: bool) -> list[dict]:
    """dense F.linear vs torch CSR vs ours (kernel forced) vs ours in "auto" mode (what exports use)."""
    rows = []
    g = torch.Generator().manual_seed(0)
    shapes = SHAPES[:2] if quick else SHAPES
    for name, out, inn in shapes:
        w = torch.randn(out, inn, generator=g)
        b = torch.randn(out, generator=g)
        for s in SPARSITIES:
            mask = (torch.rand((out + 7) // 8, inn, generator=g) >= s).repeat_interleave(8, 0)[:out]
            wm = w * mask
            lin = torch.nn.Linear(inn, out)
            with torch.no_grad():
                lin.weight.copy_(wm)
                lin.bias.copy_(b)
            kern = BlockSparseLinear.from_dense(w, mask, b, block=(8, 1))
            kern.mode = "kernel"
            auto = BlockSparseLinear.from_dense(w, mask, b, block=(8, 1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                csr = wm.to_sparse_csr()
            for threads in (1, 2):
                torch.set_num_threads(threads)
                for batch in (1, 32):
                    x = torch.randn(batch, inn, generator=g)
                    with torch.no_grad():
                        t_dense = timeit(lambda: F.linear(x, wm, b))
                        t_module = timeit(lambda: lin(x))
                        t_csr = timeit(lambda: torch.addmm(b[:, None], csr, x.t()).t())
                        t_ours = timeit(lambda: kern(x))
                        t_auto = timeit(lambda: auto(x))
                    rows.append(dict(
                        layer=name, out=out, inn=inn, sparsity=s, threads=threads, batch=batch,
                        dense_us=t_dense, module_us=t_module, auto_vs_module=t_module / t_auto, csr_us=t_csr, ours_us=t_ours, auto_us=t_auto,
                        auto_uses_kernel=auto.use_kernel(batch),
                        csr_speedup=t_dense / t_csr, ours_speedup=t_dense / t_ours, auto_speedup=t_dense / t_auto,
                        limit=1 / (1 - s),
                    ))
                    print(f"{name:24s} s={s} th={threads} B={batch:2d}: dense {t_dense:8.1f}us  csr {t_csr:8.1f}us  "
                          f"kernel {t_ours:8.1f}us  auto {t_auto:8.1f}us -> {t_dense / t_auto:5.2f}x (limit {1 / (1 - s):.1f}x)", flush=True)
    return rows


def _small_model():
    from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset

    torch.manual_seed(0)
    cfg = load_preset("small")["model"]
    model = RNNTModel(ModelConfig.from_dict(cfg), vocab_size=256).eval()
    with torch.no_grad():  # a random model that emits tokens, so that the predictor runs too
        model.joiner.output.weight.mul_(4)
    return model, cfg


def model_rows(quick: bool) -> tuple[list[dict], list[dict]]:
    """Batch-1 greedy decoding RTF of the small preset (random weights, magnitude 8x1 masks):
    dense (θ ⊙ m in nn.Linear) vs the export with BlockSparseLinear ("auto"), 1 and 2 threads;
    and the single-language export sizes."""
    from asr_pathways.asr.decode import greedy_decode
    from asr_pathways.export.compact import CompactModel, export_pathways
    from asr_pathways.sparsity.blocks import magnitude_mask

    model, cfg = _small_model()
    g = torch.Generator().manual_seed(1)
    seconds = 2.0 if quick else 3.0
    frames = int(seconds * 100)
    utts = [torch.randn(1, frames, 80, generator=g) for _ in range(2 if quick else 3)]
    speed, sizes = [], []
    params = dict(model.named_parameters())
    for s in SPARSITIES:
        masks = {"xx": {n: magnitude_mask(params[n].detach(), s) for n in model.weight_matrix_names()}}
        with tempfile.TemporaryDirectory() as d:
            meta = export_pathways(model, masks, Path(d) / "one", cfg, languages=["xx"])
            meta_ctc = export_pathways(model, masks, Path(d) / "ctc", cfg, languages=["xx"], keep_ctc=True)
            meta_f16 = export_pathways(model, masks, Path(d) / "f16", cfg, languages=["xx"], dtype="float16")
            f16 = CompactModel.load(Path(d) / "f16").model("xx")
            cm = CompactModel.load(Path(d) / "one")
            dense = cm.model("xx")
            sparse = cm.model("xx", sparse_kernels=True)
        layers = [m for m in sparse.modules() if isinstance(m, BlockSparseLinear)]
        with torch.no_grad():  # how far float16 storage moves the encoder output (random weights)
            x, xl = utts[0], torch.tensor([frames])
            e32, e16 = dense.encode(x, xl)[0], f16.encode(x, xl)[0]
            f16_rel = float((e32 - e16).norm() / e32.norm())
        sizes.append(dict(sparsity=s, **meta["sizes"], with_ctc_bytes=meta_ctc["sizes"]["weights_bytes"],
                          with_ctc_ratio=meta_ctc["sizes"]["ratio_to_dense"], f16_bytes=meta_f16["sizes"]["weights_bytes"],
                          f16_ratio=meta_f16["sizes"]["ratio_to_dense"], f16_encoder_rel_error=f16_rel))
        for threads in (1, 2):
            torch.set_num_threads(threads)
            res = {}
            for kind, m in (("dense", dense), ("ours", sparse)):
                greedy_decode(m, utts[0][:, :100], torch.tensor([100]))  # warm-up
                best = None
                for _ in range(2 if threads == 1 else 1):  # 1 thread: best of two passes (less noise)
                    t = time.perf_counter()
                    hyps = [greedy_decode(m, u, torch.tensor([frames]))[0] for u in utts]
                    dt = time.perf_counter() - t
                    best = dt if best is None else min(best, dt)
                res[kind] = best / (seconds * len(utts))
                res[kind + "_hyps"] = hyps
            speed.append(dict(
                sparsity=s, threads=threads, rtf_dense=res["dense"], rtf_ours=res["ours"], speedup=res["dense"] / res["ours"],
                limit=1 / (1 - s), same_transcripts=res["dense_hyps"] == res["ours_hyps"],
                tokens=sum(map(len, res["dense_hyps"])), sparse_layers=len(layers),
                kernel_layers_batch1=sum(m.use_kernel(1) for m in layers),
                kernel_layers_frames=sum(m.use_kernel(frames // 4) for m in layers),
            ))
            r = speed[-1]
            print(f"small model s={s} th={threads}: RTF dense {r['rtf_dense']:.4f} ours {r['rtf_ours']:.4f} "
                  f"({r['speedup']:.2f}x, same transcripts {r['same_transcripts']}, {r['tokens']} tokens)", flush=True)
        print(f"  size {meta['sizes']['ratio_to_dense']:.3f}x of the full dense model", flush=True)
    floor = size_floor(model)
    return speed, sizes, floor


def size_floor(model) -> dict:
    """Smallest exact single-language file for the small preset: kept prunable values + bitmaps +
    the never-pruned tensors decoding needs (no CTC head), all float32, against the full dense model."""
    sd = model.state_dict()
    prunable = set(model.weight_matrix_names())
    P = sum(sd[n].numel() for n in prunable)
    N = sum(v.numel() for k, v in sd.items() if k not in prunable and not k.startswith("ctc_head."))
    C = sum(v.numel() for k, v in sd.items() if k.startswith("ctc_head."))
    total = P + N + C
    bitmap = P / 8 / 8 / 4  # one bit per 8x1 block, in float32 units

    def ratio(s: float) -> float:
        return ((1 - s) * P + N + bitmap) / total

    s_needed = 1 - (0.32 * total - N - bitmap) / P  # prunable sparsity at which the file is 0.32x
    return dict(prunable=P, never_pruned_decoding=N, ctc_head=C, total=total, prunable_fraction=P / total,
                ratio_at_70=ratio(0.7), sparsity_all_at_70=0.7 * P / total, prunable_sparsity_for_0_32=s_needed,
                all_sparsity_for_0_32=s_needed * P / total, ratio_if_all_prunable_at_70=0.3 + 1 / 256)


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "## Sparse inference (8x1 blocks)", "",
        f"Command: `{res['command']}` · {machine_line(m)} · load average (1 min) before/after: "
        f"{res['load_before'][0]:.2f} / {res['load_after'][0]:.2f} · kernels: {res['kernel_backend']} (C++ extension, "
        f"g++ -O3 -march=native -fopenmp via torch.utils.cpp_extension, pybind11) · seeds: weights/masks 0, utterances 1 · "
        f"wall {res['wall_s']:.0f} s · {m['date']}", "",
        "Per layer, median µs per call; speed-up = dense / method; limit = 1/(1−s). Random weights, random 8x1 block masks. "
        "*kernel*: BlockSparseLinear forced onto the C++ kernel; *auto*: the default, which runs dense `F.linear` "
        "when the cost model (`COST_TABLE_US` in `asr_pathways/export/sparse_linear.py`) predicts the kernel cannot win. Speed-ups are against bare `F.linear`; a model calls an `nn.Linear` module, which "
        "costs the same ~1 µs of module overhead as BlockSparseLinear: the last column compares those two.", "",
        "| layer | s | threads | batch | dense µs | torch CSR µs | kernel µs | auto µs (path) | CSR | kernel | auto | limit | nn.Linear µs | auto vs nn.Linear |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["layers"]:
        lines.append(f"| {r['layer']} ({r['out']}×{r['inn']}) | {r['sparsity']:.0%} | {r['threads']} | {r['batch']} | {r['dense_us']:.1f} | "
                     f"{r['csr_us']:.1f} | {r['ours_us']:.1f} | {r['auto_us']:.1f} ({'kernel' if r['auto_uses_kernel'] else 'dense'}) | "
                     f"{r['csr_speedup']:.2f}x | {r['ours_speedup']:.2f}x | **{r['auto_speedup']:.2f}x** | {r['limit']:.1f}x | "
                     f"{r['module_us']:.1f} | {r['auto_vs_module']:.2f}x |")
    lines += ["", "Whole model: `small` preset (3.92 M parameters, random weights, joiner output ×4 so that it emits tokens), every "
              "weight matrix pruned by magnitude with 8x1 blocks, exported for one language and loaded with `sparse_kernels=True`; "
              f"greedy RNN-T decoding at batch 1 of {res['utterances']} synthetic {res['utterance_s']:.0f}-s utterances (random "
              "log-mel features), best of 2 passes at 1 thread, one pass at 2. RTF = decoding time / audio time. Only Linear layers use the kernel: "
              "attention (`nn.MultiheadAttention` reads its weight tensors directly) and the LSTM stay dense-masked, so the "
              "whole-model gain stays below the per-layer gain.", "",
              "| s | threads | RTF dense-masked | RTF exported + kernels | speed-up | limit | same transcripts (tokens) | layers on kernel at batch 1 / on encoder frames |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in res["model"]:
        lines.append(f"| {r['sparsity']:.0%} | {r['threads']} | {r['rtf_dense']:.4f} | {r['rtf_ours']:.4f} | **{r['speedup']:.2f}x** | "
                     f"{r['limit']:.1f}x | {r['same_transcripts']} ({r['tokens']}) | {r['kernel_layers_batch1']} / "
                     f"{r['kernel_layers_frames']} of {r['sparse_layers']} |")
    mb = lambda b: f"{b / 1e6:.3f}"  # noqa: E731
    lines += ["", "Single-language file (`asr-pathways export RUN --language L --out DIR`, CTC head dropped) against the full "
              "dense float32 model (CTC head included); MB = 10^6 bytes.", "",
              "| prunable sparsity | sparsity over all parameters | file MB | ratio to full dense | = prunable values | + bitmaps | "
              "+ dense remainder | + header | with `--keep-ctc` | `--dtype float16` (encoder output rel. error) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in res["sizes"]:
        lines.append(f"| {r['sparsity_prunable']:.1%} | {r['sparsity_all_parameters']:.1%} | {mb(r['weights_bytes'])} | "
                     f"**{r['ratio_to_dense']:.3f}x** | {mb(r['values_bytes'])} | {mb(r['bitmap_bytes'])} | "
                     f"{mb(r['dense_remainder_bytes'])} | {mb(r['header_bytes'])} | {mb(r['with_ctc_bytes'])} ({r['with_ctc_ratio']:.3f}x) | "
                     f"{mb(r.get('f16_bytes', float('nan')))} (**{r.get('f16_ratio', float('nan')):.3f}x**; {r.get('f16_encoder_rel_error', float('nan')):.1e}) |")
    f = res["size_floor"]
    lines += ["", f"**Target 0.32x at 70% is not reachable exactly for this model family.** In the `small` preset the prunable "
              f"set P (encoder, predictor LSTM and joiner matrices) is {f['prunable']:,} of {f['total']:,} parameters "
              f"({f['prunable_fraction']:.1%}); decoding also needs N = {f['never_pruned_decoding']:,} never-pruned values "
              f"(conv front-end, token embedding, norms, biases, depthwise convolutions), and the CTC head ({f['ctc_head']:,}) "
              "is dropped. Stored in float32 with one bit per 8x1 block, the smallest exact file at 70% of P is "
              f"(0.3·P + N + P/64 bits→floats) / total = **{f['ratio_at_70']:.3f}x**, i.e. {f['sparsity_all_at_70']:.1%} sparsity "
              f"over all parameters. 0.32x needs {f['prunable_sparsity_for_0_32']:.1%} sparsity of P "
              f"({f['all_sparsity_for_0_32']:.1%} of all parameters); 0.32x at 70% would need every parameter to be prunable "
              f"(0.3 + 1/256 = {f['ratio_if_all_prunable_at_70']:.3f}x). Going below without changing what is pruned needs "
              "lossy storage, which gives up the exact round trip: `--dtype float16` (last column) meets 0.32x with the "
              "weights rounded to float16 (relative error of the encoder output in the last column)."]
    lines += ["", "Timings come from a shared 2-core VM (see the load averages above): expect ±20% noise, especially with 2 threads."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two layer shapes and shorter decoding (a smoke test)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    t0 = time.time()
    load_before = os.getloadavg()
    backend = kernel_backend()  # build the kernels before timing
    res = {"command": command_line("benchmarks/sparse_inference.py", argv), "machine": machine_info(),
           "kernel_backend": backend, "seeds": {"weights_and_masks": 0, "utterances": 1}, "load_before": load_before}
    res["layers"] = layer_rows(args.quick)
    res["model"], res["sizes"], res["size_floor"] = model_rows(args.quick)
    res["utterances"], res["utterance_s"] = (2, 2.0) if args.quick else (3, 3.0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    res["load_after"] = os.getloadavg()
    res["wall_s"] = time.time() - t0
    if not args.no_write:
        write_result(SECTION, res)
        write_section(SECTION, markdown(res))
    print(markdown(res))
    print(f"done in {res['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
