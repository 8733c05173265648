"""One declaration per command-line option: help, default and choices live on dataclass fields.

A command's options are the fields of a dataclass, each made with :func:`option` (the pattern of
open_lth's hparams). From that one declaration come the argparse arguments
(:func:`add_arguments`), the dataclass built from the parsed arguments (:func:`from_args`), the
command line that rebuilds it (:func:`to_argv`, recorded by every run), and the check of every
choice (:func:`check_choices`).

Types follow the annotation: ``int``, ``float``, ``str``, ``bool``, ``list[str]`` / ``list[int]``
(written comma-separated) and ``X | None``. A bool that defaults to ``False`` is a ``--flag``; one
that defaults to ``True`` is ``--no-flag``; ``bool | None`` gets both ``--flag`` and ``--no-flag``
(``None``: leave it to another source such as a preset).

>>> from dataclasses import dataclass
>>> @dataclass
... class Opts:
...     out: str = option(help="output folder")
...     steps: int = option(100, help="optimizer steps")
...     langs: list[str] = option(list, help="languages", default_text="all of them")
...     progress: bool = option(True, help="progress bars")
>>> p = argparse.ArgumentParser(allow_abbrev=False, formatter_class=HelpFormatter)
>>> add_arguments(p, Opts)
>>> o = from_args(Opts, p.parse_args(["--out", "x", "--steps", "5", "--langs", "en,fr", "--no-progress"]))
>>> o
Opts(out='x', steps=5, langs=['en', 'fr'], progress=False)
>>> to_argv(o)
['--out', 'x', '--steps', '5', '--langs', 'en,fr', '--no-progress']
>>> from_args(Opts, p.parse_args(to_argv(o))) == o
True
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import MISSING, Field, fields
from typing import Any, Callable, Iterable, Sequence

from .errors import InputError

__all__ = ["option", "ArgumentParser", "add_arguments", "from_args", "to_argv", "values_to_argv", "check_choices", "flag_of", "defining",
           "HelpFormatter"]


def option(
    default: Any = MISSING,
    *,
    help: str,
    choices: Sequence[Any] | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    group: str | None = None,
    default_text: str | None = None,
    defining: bool = True,
    cli: bool = True,
    record: bool = True,
) -> Any:
    """A dataclass field that is also a command-line option (``help`` is plain text: write ``%`` as is).

    ``default``: the value, or a zero-argument callable such as ``list`` (a default factory); no
    default makes the option required. ``flag``: the option's name on the command line (default
    ``--field-name``; ``--no-field-name`` for a bool that defaults to True). ``default_text``: what
    the help says the default is (when it is not the value itself, e.g. "the preset's").
    ``defining=False``: the option does not change what a run computes (a resumed run may change
    it). ``cli=False``: not a command-line option. ``record=False``: left out of the recorded
    command line (``--restart``).
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "flag": flag, "metavar": metavar,
            "group": group, "default_text": default_text, "defining": defining, "cli": cli, "record": record}
    if callable(default) and default is not MISSING:
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and shows each default once.

    An option's default is added as ``(default: X)`` unless its help already says what the default
    is, or the default is ``None``, ``True`` or ``False`` (the help says what happens then).
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        d = action.default
        if ("default" in text or d is None or isinstance(d, bool) or d == argparse.SUPPRESS or action.required
                or not action.option_strings or d == []):
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with :class:`HelpFormatter` and no prefix matching (``--step`` is not taken for
    ``--steps``); the subcommand parsers it makes are of this class too."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("allow_abbrev", False)
        kw.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kw)


# ------------------------------------------------------------------------------------ types
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``(inner type, optional)`` of an annotation: ``int | None`` -> ``(int, True)``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), len(args) < len(typing.get_args(tp))
    return tp, False


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) in (list, tuple)


def _item_type(tp: Any) -> Callable[[str], Any]:
    args = typing.get_args(tp)
    return args[0] if args and args[0] in (int, float, str) else str


def _comma_list(item: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        return [item(x.strip()) for x in text.split(",") if x.strip()]

    parse.__name__ = f"comma-separated {getattr(item, '__name__', 'value')}s"
    return parse


def _cli_fields(cls: type) -> list[Field]:
    return [f for f in fields(cls) if f.metadata.get("cli", False)]


def flag_of(cls_or_obj: Any, name: str, tristate: bool = False) -> str:
    """The command-line flag of field ``name`` (as the user types it; ``tristate``: the positive
    flag of a bool that also has ``--no-...``).

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class O:
    ...     source: str = option(help="where from", flag="--from")
    ...     progress: bool = option(True, help="bars")
    >>> flag_of(O, "source"), flag_of(O, "progress")
    ('--from', '--no-progress')
    """
    cls = cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj)
    f = next(f for f in fields(cls) if f.name == name)
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    base = "--" + f.name.replace("_", "-")
    tp, optional = _base_type(_hints(cls)[f.name])
    if tp is bool and not optional and not tristate and f.default is True:
        return "--no-" + f.name.replace("_", "-")
    return base


def _default_of(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return MISSING


# ------------------------------------------------------------------------------------ argparse
def add_arguments(parser: argparse.ArgumentParser, cls: type, *, defaults: dict[str, Any] | None = None,
                  default_text: str | None = None, group_help: dict[str, str] | None = None) -> None:
    """Add an argument for every option field of ``cls`` (in field order, in their ``group``).

    ``defaults`` overrides the parser's default of some fields, ``default_text`` says what those
    defaults are (``defaults={name: None for ...}, default_text="the preset's"``: options that
    override a preset); ``group_help`` gives a group a description.
    """
    hints = _hints(cls)
    groups: dict[str, Any] = {}
    for f in _cli_fields(cls):
        m = f.metadata
        target = parser
        if m.get("group"):
            if m["group"] not in groups:
                groups[m["group"]] = parser.add_argument_group(m["group"], (group_help or {}).get(m["group"]))
            target = groups[m["group"]]
        tp, optional = _base_type(hints[f.name])
        overridden = f.name in (defaults or {})
        default = defaults[f.name] if overridden else _default_of(f)  # type: ignore[index]
        text = m["help"].replace("%", "%%")
        if overridden and default_text:
            text += f" (default: {default_text})"
        elif m.get("default_text"):
            text += f" (default: {m['default_text']})"
        tristate = optional or (tp is bool and default is None)
        flag = flag_of(cls, f.name, tristate=tristate)
        kw: dict[str, Any] = {"dest": f.name, "help": text}
        if default is MISSING:
            kw["required"] = True
        else:
            kw["default"] = default
        if tp is bool:
            if tristate:
                kw["action"] = argparse.BooleanOptionalAction
            else:
                kw["action"] = "store_false" if flag.startswith("--no-") else "store_true"
            target.add_argument(flag, **kw)
            continue
        if _is_list(tp):
            kw["type"] = _comma_list(_item_type(tp))
            kw["metavar"] = m.get("metavar") or f.name.upper().rstrip("S") + ",..."
        else:
            kw["type"] = tp if tp in (int, float, str) else str
            if m.get("metavar"):
                kw["metavar"] = m["metavar"]
            if m.get("choices"):
                kw["choices"] = list(m["choices"])
        target.add_argument(flag, **kw)


def from_args(cls: type, args: argparse.Namespace, **values: Any) -> Any:
    """An instance of ``cls`` from the parsed arguments (``values`` set the other fields)."""
    kw = {f.name: getattr(args, f.name) for f in _cli_fields(cls) if hasattr(args, f.name)}
    return cls(**(kw | values))


def _text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_text(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def to_argv(obj: Any, *, positional: Iterable[str] = ()) -> list[str]:
    """The command-line arguments that rebuild ``obj`` (options at their default are left out)."""
    cls = type(obj)
    hints = _hints(cls)
    out: list[str] = []
    for f in _cli_fields(cls):
        if not f.metadata.get("record", True):
            continue
        v = getattr(obj, f.name)
        default = _default_of(f)
        if default is not MISSING and v == default:
            continue
        if v is None:
            continue
        tp, optional = _base_type(hints[f.name])
        flag = flag_of(cls, f.name)
        if tp is bool:
            if optional:
                out.append(flag if v else "--no-" + flag.removeprefix("--"))
            elif bool(v) != bool(default):
                out.append(flag)
            continue
        out += [flag, _text(v)]
    return out


def values_to_argv(cls: type, values: dict[str, Any]) -> list[str]:
    """The flags that set ``values`` (field name -> value) of ``cls``'s options, whatever their defaults
    (bools as ``--flag`` / ``--no-flag``): how options that override a preset are recorded."""
    hints = _hints(cls)
    out: list[str] = []
    for f in _cli_fields(cls):
        if f.name not in values or values[f.name] is None:
            continue
        v = values[f.name]
        flag = flag_of(cls, f.name, tristate=True)
        if _base_type(hints[f.name])[0] is bool:
            out.append(flag if v else "--no-" + flag.removeprefix("--"))
        else:
            out += [flag, _text(v)]
    return out


def check_choices(obj: Any) -> None:
    """Raise :class:`InputError` naming the flag when a field's value is not one of its choices."""
    for f in fields(obj):
        choices = f.metadata.get("choices")
        v = getattr(obj, f.name)
        if choices and v is not None and v not in choices:
            raise InputError(f"unknown value {v!r}", field=flag_of(obj, f.name), expected=", ".join(map(str, choices)))


def defining(obj: Any) -> dict[str, Any]:
    """The fields that define what a run computes (``defining=True``), as plain values."""
    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj) if f.metadata.get("defining", True)}


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {k: _plain(x) for k, x in dataclasses.asdict(v).items()}
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v
