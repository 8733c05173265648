"""`asr-pathways` command line: thin subcommands over the library.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
only the module of the invoked subcommand is imported, so ``--help`` is fast.

The boundary: a command holds the advisory lock of its output folder (``--out``, or the module's
``output_folder(args)``) while it runs, and every error ends in one line on stderr: exit 2 for
refused input (bad options or files, a locked folder, a diverged training), 1 for file-system
errors (full disk, unwritable folder) and anything unexpected, 130 when interrupted. ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shlex
import sys
from pathlib import Path

from . import __version__

# name -> (module, one-line help, heavy: preload tcmalloc)
SUBCOMMANDS: dict[str, tuple[str, str, bool]] = {
    "corpus": ("asr_pathways.data.cli", "build the synthetic corpus or import MLS / a folder of audio", False),
    "train": ("asr_pathways.train_cli", "train a dense RNN-T (multilingual, or fine-tune on some languages)", True),
    "evaluate": ("asr_pathways.evaluate", "decode a test set and write WER/CER per language", True),
    "prune": ("asr_pathways.methods.cli", "prune with IMP, LTH, LAP, ASR Pathways, adaptive or Dynamic ASR Pathways", True),
    "masks": ("asr_pathways.sparsity.cli", "report on mask files: sparsity, overlap, plots", False),
    "bench": ("asr_pathways.bench.cli", "run the benchmark that reproduces the paper's tables", True),
    "export": ("asr_pathways.export.cli", "export a compact sparse model (all languages or one)", False),
    "transcribe": ("asr_pathways.transcription", "transcribe audio files with a run, language sub-run, export or ONNX export", True),
    "average": ("asr_pathways.averaging", "average a run's last checkpoints, or keep its best on dev, into a new run folder", True),
    "demo": ("asr_pathways.demo", "the whole pipeline at a reduced size: corpus, dense model, pruning, report", True),
}


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    from .options import ArgumentParser, HelpFormatter

    parser = ArgumentParser(  # no prefix matching, here and in every subcommand's parser
        prog="asr-pathways",
        description="Prune a multilingual ASR model into per-language sparse pathways.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `asr-pathways COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"asr-pathways {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error (also: ASR_PATHWAYS_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text, _) in SUBCOMMANDS.items():
        # HelpFormatter: each default shown once; allow_abbrev=False: --step is not silently taken for --steps
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
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
    args.command_line = "asr-pathways " + " ".join(shlex.quote(a) for a in argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    debug = args.debug or os.environ.get("ASR_PATHWAYS_DEBUG") == "1"
    try:
        with _lock(module, args):
            return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"\nasr-pathways {args.command}: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        code, text = _one_line(e)
        print(f"asr-pathways {args.command}: error: {text}", file=sys.stderr)
        return code


def output_folder(module: object, args: argparse.Namespace) -> Path | None:
    """The folder a command writes: ``module.output_folder(args)`` when defined, else ``--out``."""
    fn = getattr(module, "output_folder", None)
    if fn is not None:
        return fn(args)
    out = getattr(args, "out", None)
    return Path(out) if out else None


def _lock(module: object, args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The advisory lock of the command's output folder (rank 0 only under torchrun)."""
    folder = output_folder(module, args)
    if folder is None or os.environ.get("RANK", "0") != "0":
        return contextlib.nullcontext()
    from .folders import FolderLock

    return FolderLock(folder, args.command_line)


def _one_line(e: Exception) -> tuple[int, str]:
    """(exit code, message) for an error that ends a command: 2 for refused input, 1 otherwise."""
    from .errors import InputError, describe_load_error, describe_os_error

    if isinstance(e, InputError):
        return 2, str(e)
    if isinstance(e, OSError):
        return 1, describe_os_error(e)
    load = describe_load_error(e)
    if load is not None:
        return 2, load
    first = (str(e).strip().splitlines() or [""])[0]
    return 1, f"internal error: {type(e).__name__}: {first} (rerun with --debug for the traceback, and please report it)"


if __name__ == "__main__":
    sys.exit(main())
