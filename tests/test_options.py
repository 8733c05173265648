"""One source for every option: argparse, the recorded command line and the config round-trip for
every field of `prune` and `train`, and the help texts generated from it read well."""

from __future__ import annotations

import shlex
import typing
from dataclasses import fields

import pytest

from asr_pathways.cli import SUBCOMMANDS, build_parser, main
from asr_pathways.methods.cli import command_line, config_from_args
from asr_pathways.methods.config import PruneConfig
from asr_pathways.options import _base_type, check_choices, from_args
from asr_pathways.train_cli import TrainOptions, options_from_args, train_options
from asr_pathways.train_config import TrainConfig


def _other_value(cls: type, f) -> object:
    """A value of field ``f`` that is not its default (a choice, a number, a list, the other bool)."""
    tp, _ = _base_type(typing.get_type_hints(cls)[f.name])
    default = f.default if f.default_factory is dataclasses_missing() else f.default_factory()
    choices = f.metadata.get("choices")
    if choices:
        return next(c for c in choices if c != default)
    if tp is bool:
        return not default if default is not None else False
    if tp is int:
        return (default or 0) + 3
    if tp is float:
        return round((default or 0.0) + 0.125, 6)
    if typing.get_origin(tp) is list:
        return [1, 4] if typing.get_args(tp)[0] is int else ["a1", "b2"]
    return f"value-of-{f.name}"


def dataclasses_missing():
    from dataclasses import MISSING

    return MISSING


def _cli_fields(cls: type) -> list:
    return [f for f in fields(cls) if f.metadata.get("cli")]


def test_every_prune_option_round_trips():
    """Each field set to a non-default value: the recorded command parses back to the same config."""
    values = {f.name: _other_value(PruneConfig, f) for f in _cli_fields(PruneConfig) if f.metadata.get("record", True)}
    values |= {"method": "dynamic", "source": "runs/dense", "out": "runs/x"}
    cfg = PruneConfig(**values)
    check_choices(cfg)
    recorded = command_line(cfg)
    argv = shlex.split(recorded)[1:]
    for f in _cli_fields(PruneConfig):  # every recorded option is on the command line, under its one flag
        if f.metadata.get("record", True):
            flag = "--from" if f.name == "source" else "--" + f.name.replace("_", "-")
            assert any(a in (flag, "--no-" + flag[2:]) for a in argv), f.name
    again = config_from_args(build_parser("prune").parse_args(argv))
    assert {k: v for k, v in vars(again).items() if k != "command"} == {k: v for k, v in vars(cfg).items() if k != "command"}
    assert again.command == recorded
    # and with every option at its default, nothing but the required ones is recorded
    plain = PruneConfig("imp", "runs/dense", "runs/x")
    assert shlex.split(command_line(plain))[1:] == ["prune", "--method", "imp", "--from", "runs/dense", "--out", "runs/x"]


def test_every_train_option_round_trips():
    opts = TrainOptions(corpus="data/c", out="runs/x", preset="tiny", languages=["en", "fr"], init="runs/dense", vocab_size=99,
                        device="cpu", eval_split="dev", eval_max_utts=5,
                        overrides={f.name: _other_value(TrainConfig, f) for f in _cli_fields(TrainConfig)})
    assert set(opts.overrides) == set(train_options()) and "steps" in opts.overrides and "bf16" in opts.overrides
    argv = opts.argv()
    again = options_from_args(build_parser("train").parse_args(argv))
    assert again == opts
    for name, value in opts.overrides.items():  # bools as --flag / --no-flag, the preset's value otherwise untouched
        if isinstance(value, bool):
            assert ("--" if value else "--no-") + name.replace("_", "-") in argv
    assert options_from_args(build_parser("train").parse_args(["train", "--corpus", "c", "--out", "o"])).overrides == {}


def test_validation_returns_a_resolved_copy():
    cfg = PruneConfig("dynamic", "runs/dense", "runs/x", masks_from="runs/lth")
    r = cfg.resolved(["en", "fr"])
    assert (r.languages, r.scores) == (["en", "fr"], "own-updates") and (cfg.languages, cfg.scores) == ([], None)
    with pytest.raises(Exception, match="--candidates"):
        PruneConfig("dynamic", "runs/dense", "runs/x", masks_from="r", candidates="mine").resolved(["en"])


def _help(*argv: str, capsys) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [*SUBCOMMANDS, "masks diff", "masks show", "masks report", "corpus synth"])
def test_help_texts_read_well(command: str, capsys):
    text = _help(*command.split(), capsys=capsys)
    flat = " ".join(text.split())
    assert "(default: None)" not in flat and "%%" not in text and "(default: True)" not in flat and "(default: False)" not in flat
    for chunk in flat.split("(default:")[1:]:  # never two defaults for one option
        assert "(default:" not in chunk.split("--")[0], chunk[:120]


def test_positional_arguments_have_help(capsys):
    diff = " ".join(_help("masks", "diff", capsys=capsys).split())
    assert "before mask file" in diff.lower() or "the mask before" in diff.lower(), diff
    show = " ".join(_help("masks", "show", capsys=capsys).split())
    assert "mask files" in show.split("positional arguments:")[1]


def test_prune_calls_its_source_as_typed_and_abbreviations_are_refused(capsys):
    text = _help("prune", capsys=capsys)
    assert "--from RUN" in text and "--source" not in text
    with pytest.raises(SystemExit):
        build_parser("train").parse_args(["train", "--corpus", "c", "--out", "o", "--step", "3"])
    assert "unrecognized arguments: --step" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser("prune").parse_args(["prune", "--method", "imp", "--from", "d", "--out", "o", "--targ", "0.5"])


def test_from_args_builds_the_dataclass_directly():
    args = build_parser("bench").parse_args(["bench", "--profile", "small", "--seeds", "0,2", "--no-ablations"])
    from asr_pathways.bench import BenchOptions

    assert from_args(BenchOptions, args) == BenchOptions(profile="small", seeds=[0, 2], ablations=False)
