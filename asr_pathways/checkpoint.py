"""Checkpoints: one safetensors file holding weights, optimizer state, masks and JSON metadata.

A checkpoint is a single file written atomically (temp file + rename), so it is either the old
one or the new one, never half of each. Loading uses safetensors and JSON only: no code from a
file is ever executed. A readable copy of the metadata is written beside it as ``*.json``.

Layout of the tensor names:
- ``model/<param or buffer name>``
- ``opt/<param name>/<state key>`` (AdamW ``exp_avg``, ``exp_avg_sq``, ``step``)
- ``mask/<pathway>/<param name>`` (bool)
- ``rng/torch`` (uint8 CPU RNG state)
- ``extra/<hook>/<key>`` (tensors of the trainer hooks' state, :mod:`asr_pathways.hooks`)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import InputError
from .io import atomic_write_json, load_tensors, save_tensors
from .optimizer import keep_implementation

CHECKPOINT_NAME = "checkpoint.safetensors"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """What a checkpoint holds, as plain Python values and tensors."""

    model: dict[str, torch.Tensor]
    meta: dict[str, Any]
    optimizer: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    masks: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    rng_torch: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    masks: dict[str, dict[str, torch.Tensor]] | None = None,
    save_rng: bool = True,
    extra: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``model`` (+ optimizer, masks, RNG, ``extra`` tensors) and ``meta`` to ``path`` atomically."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        tensors[f"model/{name}"] = t
    meta = dict(meta)
    meta["format_version"] = FORMAT_VERSION
    if optimizer is not None:
        opt_tensors, opt_meta = _optimizer_to_tensors(model, optimizer)
        tensors.update(opt_tensors)
        meta["optimizer"] = opt_meta
    for pathway, mask in (masks or {}).items():
        for name, m in mask.items():
            tensors[f"mask/{pathway}/{name}"] = m.to(torch.bool)
    for key, t in (extra or {}).items():
        tensors[f"extra/{key}"] = t
    if save_rng:
        tensors["rng/torch"] = torch.get_rng_state()
    save_tensors(path, tensors, meta)
    atomic_write_json(path.with_suffix(".json"), meta)
    return path


def load_checkpoint(path: str | Path, require_complete: bool = True) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (safetensors; no code executed).

    ``require_complete``: refuse the checkpoint of a run whose command has not finished (its folder,
    or the run folder two levels up for ``RUN/lang/fr``, holds an in-progress marker); a run resuming
    itself passes False.
    """
    from .folders import check_complete

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if require_complete:
        for folder in (path.parent, path.parent.parent.parent)[: 2 if path.parent.parent.name == "lang" else 1]:
            check_complete(folder, "run")
    if not path.is_file():
        raise InputError(
            "checkpoint not found", path=path, expected=f"a run folder holding {CHECKPOINT_NAME}",
            hint="Train one first with `asr-pathways train`",
        )
    try:
        tensors, meta = load_tensors(path)
    except InputError:
        raise
    except Exception as e:  # safetensors raises its own error types on corrupt files
        raise InputError(f"cannot read checkpoint ({e})", path=path, expected="a safetensors file") from None
    ck = Checkpoint(model={}, meta=meta)
    for key, t in tensors.items():
        kind, _, rest = key.partition("/")
        if kind == "model":
            ck.model[rest] = t
        elif kind == "opt":
            pname, _, skey = rest.rpartition("/")
            ck.optimizer.setdefault(pname, {})[skey] = t
        elif kind == "mask":
            pathway, _, pname = rest.partition("/")
            ck.masks.setdefault(pathway, {})[pname] = t.to(torch.bool)
        elif kind == "extra":
            ck.extra[rest] = t
        elif key == "rng/torch":
            ck.rng_torch = t
    return ck


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load ``state`` into ``model``; raise :class:`InputError` naming ``path`` and the tensors that do not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} is {tuple(state[k].shape)}, the model's {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = ([f"missing {missing[:3]}"] if missing else []) + ([f"unknown {unexpected[:3]}"] if unexpected else []) + shapes[:3]
        raise InputError("the weights do not fit the model: " + "; ".join(parts), path=path,
                         expected="a checkpoint of the same model configuration")
    model.load_state_dict(state)


def _optimizer_to_tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    names = {id(p): n for n, p in model.named_parameters()}
    tensors: dict[str, torch.Tensor] = {}
    groups = []
    sd = optimizer.state_dict()
    index_to_name: dict[int, str] = {}
    i = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            index_to_name[i] = names[id(p)]
            i += 1
    for idx, state in sd["state"].items():
        pname = index_to_name[idx]
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt/{pname}/{k}"] = v
            else:
                tensors[f"opt/{pname}/{k}"] = torch.tensor(v)
    for g in sd["param_groups"]:
        groups.append({k: v for k, v in g.items() if k != "params"} | {"params": [index_to_name[j] for j in g["params"]]})
    return tensors, {"param_groups": groups}


def restore_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, ck: Checkpoint) -> None:
    """Load optimizer state saved by :func:`save_checkpoint` into ``optimizer``."""
    opt_meta = ck.meta.get("optimizer")
    if opt_meta is None:
        return
    name_to_index: dict[str, int] = {}
    names = {id(p): n for n, p in model.named_parameters()}
    i = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            name_to_index[names[id(p)]] = i
            i += 1
    state = {}
    for pname, st in ck.optimizer.items():
        if pname not in name_to_index:
            raise InputError(f"optimizer state for unknown parameter {pname!r}", field="optimizer")
        state[name_to_index[pname]] = dict(st)
    groups = []
    for g in opt_meta["param_groups"]:
        g = dict(g)
        g["params"] = [name_to_index[n] for n in g["params"]]
        groups.append(g)
    # fused or single-tensor: this optimizer's choice, not the saved one's
    optimizer.load_state_dict({"state": state, "param_groups": keep_implementation(groups, optimizer)})


def meta_from_json(path: str | Path) -> dict[str, Any]:
    """Read the metadata of a checkpoint without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get("json", "{}"))
