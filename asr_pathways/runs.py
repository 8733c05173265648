"""Open a run folder (``runs/NAME``): its config, tokenizer, model weights and masks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .errors import InputError
from .io import atomic_write_text

TOKENIZER_NAME = "tokenizer.model"


def build_model(model_section: dict[str, Any], vocab_size: int) -> nn.Module:
    from .asr.model import ModelConfig, RNNTModel

    return RNNTModel(ModelConfig.from_dict(dict(model_section)), vocab_size)


@dataclass
class RunConfig:
    """Everything that defines a run; written to ``runs/NAME/config.yaml``."""

    preset: str
    model: dict[str, Any]
    train: dict[str, Any]
    tokenizer: dict[str, Any]
    corpus: str
    languages: list[str]
    init: str | None = None
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def write_run_config(out: Path, rc: RunConfig) -> None:
    import yaml

    atomic_write_text(out / "config.yaml", yaml.safe_dump(asdict(rc), sort_keys=False))


def read_run_config(run: Path) -> RunConfig:
    import yaml

    p = Path(run) / "config.yaml"
    if not p.is_file():
        raise InputError("run config not found", path=p, expected="a run folder written by asr-pathways train or prune")
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML ({str(e).splitlines()[0]})", path=p) from None
    known = {f.name: f for f in fields(RunConfig)}
    required = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
    if not isinstance(d, dict) or set(d) - set(known) or any(n not in d for n in required):
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise InputError(f"not a run config (keys {keys})", path=p, expected=f"the keys {sorted(known)} (written by asr-pathways)")
    return RunConfig(**d)


@dataclass
class LoadedRun:
    path: Path
    config: RunConfig
    model: nn.Module
    tokenizer: Any
    masks: dict[str, dict[str, torch.Tensor]]
    meta: dict[str, Any]


def load_tokenizer(run: str | Path) -> Any:
    from .asr.tokenizer import Tokenizer

    p = Path(run) / TOKENIZER_NAME
    if not p.is_file():
        raise InputError("tokenizer not found", path=p, expected="the SentencePiece model copied into every run folder")
    return Tokenizer(p)


def copy_tokenizer(src_model: str | Path, run: str | Path) -> Path:
    from .io import atomic_write_bytes

    dst = Path(run) / TOKENIZER_NAME
    if not dst.is_file() or dst.read_bytes() != Path(src_model).read_bytes():
        atomic_write_bytes(dst, Path(src_model).read_bytes())
    return dst


def load_run(run: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Load a trained or pruned run: model with its final weights, tokenizer and masks."""
    run = Path(run)
    if not (run / CHECKPOINT_NAME).is_file():
        raise InputError("no checkpoint in run folder", path=run, expected=f"{CHECKPOINT_NAME} (train a model first with `asr-pathways train`)")
    rc = read_run_config(run)
    tok = load_tokenizer(run)
    model = build_model(rc.model, tok.vocab_size)
    ck = load_checkpoint(run / CHECKPOINT_NAME)
    model.load_state_dict(ck.model)
    model.to(device).eval()
    return LoadedRun(run, rc, model, tok, ck.masks, ck.meta)


# ----------------------------------------------------------------------------------- identity
def identity(defining: Mapping[str, Any]) -> str:
    """The identity of a run: a hash of the configuration that defines what it computes.

    The one rule by which ``train``, every pruning phase and the benchmark's cache decide whether a
    folder holds "the same run" (to resume or reuse it) or another one (an error, or a new folder).
    Keys are sorted, so the order in which options were given does not matter.

    >>> identity({"lr": 0.001, "steps": 10}) == identity({"steps": 10, "lr": 0.001})
    True
    >>> identity({"lr": 0.001}) == identity({"lr": 0.002}), len(identity({}))
    (False, 16)
    """
    text = json.dumps(defining, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ between two defining configurations.

    >>> differences({"train": {"lr": 1, "steps": 5}, "seed": 0}, {"train": {"lr": 2, "steps": 5}, "seed": 0})
    ['train.lr']
    """
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, f"{prefix}{k}.")
        elif json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            out.append(f"{prefix}{k}")
    return out


# ----------------------------------------------------------------------------------- opening
RUN_RECORD = "run.json"
NON_DEFINING_TRAIN = ("log_every", "checkpoint_every", "eval_every", "keep_checkpoints", "dev_max_utts")  # change no result: a resumed run may use others
LATER_TRAIN = {"frame_multiple": 1, "token_multiple": 1, "language_loss": "equal", "fused_adamw": False}  # added later: left out while at their default


def train_defining(rc: RunConfig) -> dict[str, Any]:
    """What defines a training run: model, tokenizer, data (corpus, languages, --init) and every
    training setting but the logging and checkpointing frequencies (settings added after runs existed
    are left out while they hold their default, so that those runs keep their identity and resume)."""
    train = {k: list(v) if isinstance(v, tuple) else v for k, v in rc.train.items()
             if k not in NON_DEFINING_TRAIN and not (k in LATER_TRAIN and v == LATER_TRAIN[k])}
    return {
        "model": rc.model, "tokenizer": rc.tokenizer, "languages": list(rc.languages),
        "corpus": str(Path(rc.corpus).resolve()), "init": str(Path(rc.init).resolve()) if rc.init else None, "train": train,
    }


@dataclass
class RunFolder:
    """A run folder opened by :func:`open_run_folder`: its identity, and whether it holds a checkpoint."""

    path: Path
    identity: str
    defining: dict[str, Any]
    kind: str
    resumed: bool
    is_main: bool = True

    def claim(self) -> None:
        """Record the run's identity (``run.json``): called right before the run's first write."""
        from .io import atomic_write_json

        if self.is_main and not (self.path / RUN_RECORD).is_file():
            atomic_write_json(self.path / RUN_RECORD, {"kind": self.kind, "identity": self.identity, "defining": self.defining})


def recorded_identity(path: str | Path) -> dict[str, Any] | None:
    """``run.json`` of a run folder (kind, identity, defining), or None."""
    p = Path(path) / RUN_RECORD
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        raise InputError("not a valid run record", path=p, expected="JSON written by asr-pathways") from None
    if not isinstance(rec, dict) or "identity" not in rec:
        raise InputError("not a valid run record", path=p, expected="the keys kind, identity, defining")
    return rec


def _started(path: Path) -> bool:
    """Whether a run folder holds work worth keeping (a checkpoint, or a finished prune run)."""
    return (path / "cost.json").is_file() or any(path.rglob(CHECKPOINT_NAME))


def _barrier(dist: Any) -> None:
    if dist is not None and getattr(dist, "enabled", False):
        import torch.distributed as tdist

        if tdist.is_initialized():
            tdist.barrier()


def open_run_folder(path: str | Path, defining: dict[str, Any], *, kind: str, restart: bool = False, dist: Any = None,
                    legacy: dict[str, Any] | None = None) -> RunFolder:
    """The one way to open a run folder (``train``, ``prune`` and each of its phases).

    The folder must be missing or empty, or hold the same run: the same :func:`identity` of the
    ``defining`` configuration (recorded in ``run.json``; ``legacy``: the defining configuration of
    a folder written before run.json existed). Another run is an error naming the settings that
    differ, unless ``restart`` (the folder is emptied, logs included) or the other run never wrote
    a checkpoint (it failed before: the folder starts clean). A folder that is not a run folder is
    never touched. Nothing is written here: :meth:`RunFolder.claim` records the identity right
    before the run's first write, so a command refused by a check leaves nothing behind. Under DDP
    every rank checks and rank 0 alone empties the folder.
    """
    from . import folders

    path = Path(path)
    defining = json.loads(json.dumps(defining, default=str))  # plain JSON values, as recorded
    ident = identity(defining)
    is_main = dist is None or getattr(dist, "is_main", True)
    rec = recorded_identity(path)
    old = rec["defining"] if rec is not None else legacy
    old_identity = rec["identity"] if rec is not None else (identity(legacy) if legacy is not None else None)
    clear = False
    if old_identity is None:
        if not folders.is_empty(path):
            raise InputError("the output folder exists and is not a run folder", path=path, hint="Choose another folder")
    elif restart:
        clear = True
    elif old_identity != ident:
        if _started(path):
            changed = [f"{k}: {_at(old or {}, k)!r} -> {_at(defining, k)!r}" for k in differences(old or {}, defining)]
            raise InputError(
                f"the run folder holds a run with other settings ({'; '.join(changed) or 'unknown settings'})", path=path,
                hint="Use another output folder, or --restart to start it over (its checkpoints and logs are deleted)",
            )
        clear = True  # the other run never reached a checkpoint: nothing to keep
    _barrier(dist)  # every rank has seen the folder as it was
    if clear and is_main:
        folders.clear(path)
    _barrier(dist)
    return RunFolder(path, ident, defining, kind, resumed=not clear and old_identity is not None and _started(path), is_main=is_main)


def _at(d: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, Mapping):
            return None
        d = d.get(part)  # type: ignore[assignment]
    return d
