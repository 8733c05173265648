"""``asr-pathways masks``: reports on mask files (sparsity, overlap, plots, changes).

    asr-pathways masks report runs/dyn/masks/*.safetensors --out reports/masks
    asr-pathways masks report a.safetensors b.safetensors --names en fr --out DIR --block 8x1
    asr-pathways masks diff runs/imp/masks/fr.safetensors runs/dyn/masks/fr.safetensors --out DIR
    asr-pathways masks show runs/dyn/masks/fr.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="masks_command", metavar="ACTION")
    r = sub.add_parser("report", help="sparsity per pathway/group/matrix, union, IoU; JSON, Markdown, PNG",
                       description="Sparsity per pathway, group and matrix, the union of the pathways and their pairwise "
                                   "IoU, as JSON, Markdown and plots.")
    r.add_argument("files", nargs="+", help="mask files (.safetensors) or folders holding them; one per language")
    r.add_argument("--names", nargs="+", help="language names, in the order of the files (default: file names)")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--block", default=None, help="also report block sparsity for this block shape, e.g. 8x1")
    r.add_argument("--total-params", type=int, default=None, help="all parameters of the model, for sparsity over the whole model")
    r.add_argument("--no-plots", action="store_true", help="JSON and Markdown only")
    d = sub.add_parser("diff", help="weights revived and dropped between two mask files",
                       description="Weights revived (pruned before, kept after) and dropped between two masks of one "
                                   "pathway, per matrix and group.")
    d.add_argument("before", help="the mask before (.safetensors), e.g. runs/imp/masks/fr.safetensors")
    d.add_argument("after", help="the mask after, e.g. runs/dyn/masks/fr.safetensors")
    d.add_argument("--out", required=True, help="output folder (JSON, Markdown and a plot)")
    d.add_argument("--no-plots", action="store_true", help="JSON and Markdown only")
    s = sub.add_parser("show", help="print the sparsity of mask files", description="Print the sparsity of mask files.")
    s.add_argument("files", nargs="+", help="mask files (.safetensors) or folders holding them")


def _expand(files: list[str]) -> list[Path]:
    from ..errors import InputError

    out: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            found = sorted(p.glob("*.safetensors"))
            if not found:
                raise InputError("no .safetensors files in this folder", path=p)
            out += found
        else:
            out.append(p)
    return out


def _load(paths: list[Path], names: list[str] | None):
    from ..errors import InputError
    from .masks import MaskSet

    if names is not None and len(names) != len(paths):
        raise InputError(f"{len(names)} names for {len(paths)} mask files", field="--names", expected="one name per file")
    labels = names or [p.name.removesuffix(".safetensors") for p in paths]
    dup = sorted({l for l in labels if labels.count(l) > 1})
    if dup:
        raise InputError(f"several mask files are named {dup}", field="--names", hint="name the languages with --names")
    masks = {l: MaskSet.load(p) for l, p in zip(labels, paths)}
    first = next(iter(masks.values()))
    for l, m in masks.items():
        if set(m) != set(first) or any(m[n].shape != first[n].shape for n in first):
            raise InputError(f"mask {l!r} covers other matrices or shapes than {labels[0]!r}", path=paths[labels.index(l)],
                             expected="masks of the same model and prunable set")
    return masks


def run(args: argparse.Namespace) -> int:
    from .blocks import parse_block
    from .report import mask_report, to_markdown, transition_report, write_report, write_transition_report

    cmd = getattr(args, "masks_command", None)
    if cmd == "report":
        masks = _load(_expand(args.files), args.names)
        block = parse_block(args.block) if args.block else None
        rep = mask_report(masks, total_params=args.total_params, block=block)
        files = write_report(rep, args.out, plots=not args.no_plots)
        print(to_markdown(rep))
        for k, v in files.items():
            print(f"wrote {v}")
        return 0
    if cmd == "diff":
        masks = _load([Path(args.before), Path(args.after)], ["before", "after"])
        rep = transition_report(masks["before"], masks["after"])
        files = write_transition_report(rep, args.out, plots=not args.no_plots)
        for k, v in files.items():
            print(f"wrote {v}")
        print(f"revived {rep['revived']:,}  dropped {rep['dropped']:,}  IoU {rep['iou']:.4f}")
        return 0
    if cmd == "show":
        paths = _expand(args.files)
        masks = _load(paths, [str(p) for p in paths])
        for l, m in masks.items():
            print(f"{l}: {len(m)} matrices, {m.numel():,} weights, sparsity {m.sparsity():.4f}")
            for g, s in m.sparsity_per_group().items():
                print(f"  {g:<16} {s:.4f}")
        return 0
    print("asr-pathways masks: choose an action: report, diff or show (see --help)", file=sys.stderr)
    return 2
