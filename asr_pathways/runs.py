"""Open a run folder (``runs/NAME``): its config, tokenizer, model weights and masks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .errors import InputError
from .train import RunConfig, build_model, read_run_config

TOKENIZER_NAME = "tokenizer.model"


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
