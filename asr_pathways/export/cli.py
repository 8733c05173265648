"""`asr-pathways export RUN --out MODEL_DIR [--language fr] [--keep-ctc] [--dtype float16] [--onnx]`.

RUN may be any run folder:

- a multilingual prune run (``pathways``, ``dynamic``; ``runs/NAME/checkpoint.safetensors`` holds one
  mask per language): all pathways, or with ``--language fr`` only fr's;
- a LAP run (one ``shared`` mask): the shared pathway; ``--language fr`` names it ``fr`` in the
  export (the same mask for every language);
- a monolingual prune run (``imp``, ``lth``, ``adaptive``: one complete run per language under
  ``RUN/lang/{lang}/``, each with its own weights): ``--language`` picks the sub-run (required when
  there are several), or pass ``RUN/lang/fr`` itself;
- a dense run (``asr-pathways train``, no masks): exported dense, as one pathway named ``dense``
  (useful as a baseline and for ONNX); ``--language`` is an error there, as no pathway exists.

Every export carries a model card (:mod:`asr_pathways.export.card`): ``model.json["card"]`` and a
``README.md`` with its languages, WER per language, method, sparsity per pathway and union, size
and the commands that made it. ``asr-pathways transcribe`` and ``evaluate`` take the folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DENSE_PATHWAY = "dense"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="run folder: a prune run (per-language or shared masks, or lang/{lang}/ sub-runs) or a dense run")
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    p.add_argument("--language", default=None, help="export only this pathway (a single-language model); picks the sub-run of a monolingual prune run")
    p.add_argument("--keep-ctc", action="store_true", help="keep the CTC head of an RNN-T model (dropped by default: RNN-T decoding does not use it)")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32",
                   help="storage type of the weights: float32 is lossless; float16/bfloat16 halve the file and round every weight to that type")
    p.add_argument("--onnx", action="store_true", help="also write encoder/predictor/joiner ONNX graphs of the exported pathway (needs --language when several are exported)")


def resolve_run(run: Path, language: str | None) -> Path:
    """The folder holding the checkpoint: ``run`` itself, or its monolingual sub-run ``lang/{language}``."""
    from asr_pathways.checkpoint import CHECKPOINT_NAME
    from asr_pathways.errors import InputError

    run = Path(run)
    if (run / CHECKPOINT_NAME).is_file():
        return run
    subs = sorted(p.name for p in (run / "lang").glob("*") if (p / CHECKPOINT_NAME).is_file()) if (run / "lang").is_dir() else []
    if not subs:
        raise InputError(
            "no checkpoint in run folder", path=run,
            expected=f"{CHECKPOINT_NAME} (a train or prune run) or lang/{{lang}}/{CHECKPOINT_NAME} (a monolingual prune run)",
        )
    if language is None:
        if len(subs) == 1:
            return run / "lang" / subs[0]
        raise InputError(
            "a monolingual prune run holds one model per language", path=run, field="--language",
            expected="one of " + ", ".join(subs), hint=f"add --language {subs[0]}",
        )
    if language not in subs:
        raise InputError(f"no sub-run for language {language!r}", path=run / "lang", field="--language", expected="one of " + ", ".join(subs))
    return run / "lang" / language


def select_masks(masks: dict, language: str | None, run: Path) -> tuple[dict, list[str] | None]:
    """(masks to export, languages) for ``--language``; a LAP ``shared`` mask serves any language."""
    from asr_pathways.errors import InputError
    from asr_pathways.methods.records import SHARED

    if not masks:
        if language is not None:
            raise InputError(
                "this run has no pathway masks (a dense run): there is no language pathway to pick", path=run,
                field="--language", hint="omit --language to export the dense model, or export a prune run",
            )
        return {DENSE_PATHWAY: {}}, None
    if language is None:
        return masks, None
    if language in masks:
        return masks, [language]
    if set(masks) == {SHARED} or len(masks) == 1:
        (only,) = masks.values()
        return {language: only}, [language]
    raise InputError(f"no pathway named {language}", path=run, field="--language", expected="one of " + ", ".join(sorted(masks)))


def run(args: argparse.Namespace) -> int:
    from asr_pathways.errors import InputError
    from asr_pathways.runs import TOKENIZER_NAME, load_run

    from .compact import CompactModel, export_pathways

    folder = resolve_run(args.run, args.language)
    loaded = load_run(folder)
    masks, languages = select_masks(loaded.masks, args.language, folder)
    tok = folder / TOKENIZER_NAME
    meta = export_pathways(
        loaded.model, masks, args.out, loaded.config.model,
        tokenizer_path=tok if tok.is_file() else None, languages=languages,
        extra_meta={"source_run": str(folder), "source_masks": sorted(loaded.masks)}, keep_ctc=args.keep_ctc,
        dtype=args.dtype,
    )
    s = meta["sizes"]
    mb = lambda b: f"{b / 1e6:.3f} MB"  # noqa: E731
    print(
        f"exported {', '.join(meta['pathways'])} from {folder} to {args.out} ({args.dtype}): {mb(s['weights_bytes'])} = "
        f"{s['ratio_to_dense']:.3f}x the full dense float32 model ({mb(s['dense_float32_bytes'])}), "
        f"{s['ratio_to_dense_decoding']:.3f}x its decoding part ({mb(s['dense_float32_decoding_bytes'])})\n"
        f"  prunable values {mb(s['values_bytes'])} + bitmaps {mb(s['bitmap_bytes'])} + dense remainder "
        f"{mb(s['dense_remainder_bytes'])} + header {mb(s['header_bytes'])}\n"
        f"  sparsity: {s['sparsity_prunable']:.1%} of the prunable weights = {s['sparsity_all_parameters']:.1%} of all "
        f"parameters" + (f"; dropped {', '.join(meta['dropped'])} (--keep-ctc keeps it)" if meta["dropped"] else "")
    )
    if args.onnx:
        pathways = meta["pathways"]
        if len(pathways) != 1:
            raise InputError("--onnx exports one pathway", field="--onnx", hint="add --language LANG")
        from .onnx_export import export_onnx

        paths = export_onnx(CompactModel.load(args.out).model(pathways[0]), Path(args.out) / "onnx")
        print("ONNX graphs:", ", ".join(str(p) for p in paths.values()))
    write_model_card(args.out, folder, loaded.config, paths if args.onnx else None)
    return 0


def write_model_card(out: Path, folder: Path, run_config, onnx_paths: dict | None) -> None:
    """model.json["card"] + README.md: languages, WER per language, method, sparsity, size, commands."""
    import shlex
    import sys

    from .card import build_card, write_card
    from .compact import CompactModel

    command = "asr-pathways " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["export"] else ""
    card = build_card(CompactModel.load(out), run_config, folder, command or f"asr-pathways export {folder} --out {out}")
    if onnx_paths:
        card["onnx"] = {"folder": "onnx", "pathway": card["pathways"][0],
                        "bytes": {name: Path(p).stat().st_size for name, p in onnx_paths.items()}}
    readme = write_card(out, card)
    print(f"model card: {readme}")
