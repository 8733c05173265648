"""`asr-pathways export RUN_DIR --out MODEL_DIR [--language fr] [--onnx]`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="run folder (runs/NAME) holding checkpoint.safetensors with pathway masks")
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    p.add_argument("--language", default=None, help="export only this pathway (a single-language model)")
    p.add_argument("--onnx", action="store_true", help="also write encoder/predictor/joiner ONNX graphs (needs --language)")


def run(args: argparse.Namespace) -> int:
    from asr_pathways.errors import InputError
    from asr_pathways.runs import TOKENIZER_NAME, load_run

    from .compact import CompactModel, export_pathways

    loaded = load_run(args.run)
    if not loaded.masks:
        raise InputError("the run has no pathway masks", path=args.run, expected="a run written by `asr-pathways prune`")
    languages = [args.language] if args.language else None
    tok = Path(args.run) / TOKENIZER_NAME
    meta = export_pathways(
        loaded.model, loaded.masks, args.out, loaded.config.model,
        tokenizer_path=tok if tok.is_file() else None, languages=languages,
        extra_meta={"source_run": str(args.run)},
    )
    s = meta["sizes"]
    print(
        f"exported {', '.join(meta['pathways'])} to {args.out}: {s['weights_bytes'] / 1e6:.2f} MB "
        f"({s['ratio_to_dense']:.3f}x the dense float32 model, {s['dense_float32_bytes'] / 1e6:.2f} MB)"
    )
    if args.onnx:
        if not args.language:
            raise InputError("--onnx exports one pathway", field="--onnx", hint="add --language LANG")
        from .onnx_export import export_onnx

        paths = export_onnx(CompactModel.load(args.out).model(args.language), Path(args.out) / "onnx")
        print("ONNX graphs:", ", ".join(str(p) for p in paths.values()))
    return 0
