"""`asr-pathways` command line: thin subcommands over the library.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
only the module of the invoked subcommand is imported, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

# name -> (module, one-line help, heavy: preload tcmalloc)
SUBCOMMANDS: dict[str, tuple[str, str, bool]] = {
    "corpus": ("asr_pathways.data.cli", "build the synthetic corpus or import MLS / a folder of audio", False),
    "train": ("asr_pathways.train_cli", "train a dense RNN-T (multilingual, or fine-tune on some languages)", True),
    "evaluate": ("asr_pathways.evaluate", "decode a test set and write WER/CER per language", True),
    "prune": ("asr_pathways.methods.cli", "prune with IMP, LTH, LAP, ASR Pathways, adaptive or Dynamic ASR Pathways", True),
    "masks": ("asr_pathways.sparsity.cli", "report on mask files: sparsity, overlap, plots", False),
    "bench": ("asr_pathways.bench_cli", "run the benchmark that reproduces the paper's tables", True),
    "export": ("asr_pathways.export.cli", "export a compact sparse model (all languages or one)", False),
    "demo": ("asr_pathways.demo", "the whole pipeline at a reduced size: corpus, dense model, pruning, report", True),
}


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr-pathways",
        description="Prune a multilingual ASR model into per-language sparse pathways.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `asr-pathways COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"asr-pathways {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text, _) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if name == selected:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    if selected in SUBCOMMANDS and SUBCOMMANDS[selected][2] and "-h" not in argv and "--help" not in argv:
        from .runtime import ensure_tcmalloc

        ensure_tcmalloc()
    parser = build_parser(selected if selected in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    from .errors import InputError

    try:
        return int(module.run(args) or 0)
    except InputError as e:
        print(f"asr-pathways {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nasr-pathways {args.command}: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
