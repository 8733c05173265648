"""Mask reports and the `asr-pathways masks` command."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from asr_pathways.errors import InputError
from asr_pathways.sparsity import MaskSet, own_plus_residual, prunable_parameters, select_masks
from asr_pathways.sparsity.report import mask_report, transition_report, write_report, write_transition_report


def _model() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Module()
    m.encoder = nn.Module()
    m.encoder.layers = nn.ModuleList()
    for _ in range(2):
        layer = nn.Module()
        layer.self_attn = nn.MultiheadAttention(16, 2)
        layer.ff = nn.Linear(16, 32)
        m.encoder.layers.append(layer)
    m.predictor = nn.LSTM(8, 16)
    m.joiner = nn.Linear(16, 10)
    return m


def _masks(model):
    ws = {n: p.detach() for n, p in prunable_parameters(model).items()}
    out = {}
    for i, lang in enumerate(["en", "fr", "it"]):
        g = torch.Generator().manual_seed(i)
        noisy = {n: w + 0.5 * torch.randn(w.shape, generator=g) for n, w in ws.items()}
        out[lang] = select_masks(noisy, 0.5 + 0.1 * i, (8, 1))
    return out


def test_report_numbers(tmp_path):
    model = _model()
    masks = _masks(model)
    total = sum(p.numel() for p in model.parameters())
    rep = mask_report(masks, total_params=total, block=(8, 1))
    assert rep["pathways"]["fr"]["sparsity"] == pytest.approx(masks["fr"].sparsity())
    assert rep["pathways"]["en"]["block_sparsity"] == pytest.approx(0.5, abs=0.02)  # edge blocks in joiner (10 rows)
    assert rep["union"]["sparsity"] <= min(r["sparsity"] for r in rep["pathways"].values())
    assert rep["iou"]["en"]["en"] == 1.0 and rep["iou"]["en"]["fr"] == rep["iou"]["fr"]["en"]
    assert set(rep["pathways"]["en"]["per_group"]) == {"encoder.attn", "encoder.ff", "predictor", "joiner"}
    files = write_report(rep, tmp_path)
    assert json.loads(files["json"].read_text())["languages"] == ["en", "fr", "it"]
    assert "| **union** |" in files["markdown"].read_text()
    for k in ("sparsity_png", "overlap_png"):
        assert files[k].read_bytes()[:4] == b"\x89PNG"


def test_transition(tmp_path):
    masks = _masks(_model())
    after = masks["en"] & own_plus_residual(masks, "en")
    rep = transition_report(masks["fr"], masks["en"])
    assert rep["revived"] == (masks["en"] - masks["fr"]).kept()
    assert sum(g["dropped"] for g in rep["per_group"].values()) == rep["dropped"]
    files = write_transition_report(rep, tmp_path)
    assert files["png"].exists() and "revived" in files["markdown"].read_text()
    assert after.issubset(masks["en"])


def test_cli(tmp_path, capsys):
    from asr_pathways.cli import main

    masks = _masks(_model())
    for l, m in masks.items():
        m.save(tmp_path / "masks" / f"{l}.safetensors")
    assert main(["masks", "report", str(tmp_path / "masks"), "--out", str(tmp_path / "rep"), "--block", "8x1"]) == 0
    assert (tmp_path / "rep" / "overlap_iou.png").exists()
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["languages"] == ["en", "fr", "it"]
    files = [str(tmp_path / "masks" / f"{l}.safetensors") for l in ("en", "fr")]
    assert main(["masks", "report", *files, "--names", "EN", "FR", "--out", str(tmp_path / "r2"), "--no-plots"]) == 0
    assert main(["masks", "diff", *files, "--out", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "changes.json").exists()
    assert main(["masks", "show", files[0]]) == 0
    assert "sparsity" in capsys.readouterr().out
    assert main(["masks", "report", *files, "--names", "x", "--out", str(tmp_path / "r3")]) == 2
    assert main(["masks", "report", files[0], files[0], "--out", str(tmp_path / "r3")]) == 2
