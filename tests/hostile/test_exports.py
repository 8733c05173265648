"""Issue 16, case 7: a tampered export never loads as a silently different model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from data_fixtures import write_audio
from hostile_helpers import cli, copy_tree, one_line

from asr_pathways.errors import InputError
from asr_pathways.export.compact import CompactModel, export_pathways
from asr_pathways.export.integrity import tensor_checksum
from asr_pathways.runs import load_run
from asr_pathways.sparsity.select import DEFAULT_EXCLUDE, prunable_parameters


@pytest.fixture(scope="module")
def exported(dense_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-pathway export (en, fr) of the tiny dense run with random 8x1 masks."""
    loaded = load_run(dense_run)
    g = torch.Generator().manual_seed(0)
    masks = {}
    for lang in ("en", "fr"):
        masks[lang] = {}
        for name, p in dict(prunable_parameters(loaded.model, exclude=[*DEFAULT_EXCLUDE, "ctc_head.*"])).items():
            w2 = p.reshape(p.shape[0], -1)
            grid = torch.rand(-(-w2.shape[0] // 8), w2.shape[1], generator=g) < 0.5
            masks[lang][name] = grid.repeat_interleave(8, 0)[: w2.shape[0]].reshape(p.shape)
    out = tmp_path_factory.mktemp("export") / "model"
    export_pathways(loaded.model, masks, out, loaded.config.model, tokenizer_path=dense_run / "tokenizer.model")
    return out


def _tamper(model: Path, key: str, change, fix_checksum: bool = False) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    weights = model / "weights.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors[key] = change(tensors[key].clone())
    save_file(tensors, str(weights), metadata=meta)
    if fix_checksum:  # a careful forger also rewrites model.json
        card = json.loads((model / "model.json").read_text())
        card["checksums"][key] = tensor_checksum(tensors[key])
        (model / "model.json").write_text(json.dumps(card))


def _flip_first_bit(t: torch.Tensor) -> torch.Tensor:
    t[0] ^= 1
    return t


def _one_byte_longer(t: torch.Tensor) -> torch.Tensor:
    return torch.cat([t, torch.zeros(1, dtype=t.dtype)])


@pytest.mark.parametrize("change, fix, fragment", [
    (_flip_first_bit, False, "checksum mismatch (expected sha256 "),
    (_flip_first_bit, True, "bitmap keeps "),
    (_one_byte_longer, False, "checksum mismatch (expected sha256 "),
    (_one_byte_longer, True, "bitmap is torch.uint8 of ("),
])
def test_case7_a_tampered_bitmap_is_refused(change, fix, fragment, exported, tmp_path, capsys):
    model = copy_tree(exported, tmp_path / "model")
    key = next(k for k in CompactModel.load(model).tensors if k.startswith("bitmap/en/"))
    _tamper(model, key, change, fix_checksum=fix)
    with pytest.raises(InputError, match="export the model again"):
        CompactModel.load(model)
    write_audio(tmp_path / "a.flac", 0.5, 16000)
    rc, err = cli(capsys, "transcribe", model, tmp_path / "a.flac", "--language", "en")
    assert rc == 2
    line = one_line(err, "transcribe")
    assert f"{model / 'weights.safetensors'}: field {key}: {fragment}" in line
    assert "The file was changed or damaged after export: export the model again" in line


def test_case7_the_kept_block_counts_match_the_masks(exported):
    cm = CompactModel.load(exported)  # an untouched export loads and verifies
    for name, info in cm.meta["prunable"].items():
        for lang in ("en", "fr"):
            assert info["kept_blocks"][lang] == int(cm.block_grid(lang, name).sum())
