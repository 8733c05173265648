"""Mask algebra laws, sparsity, IoU, revived/dropped, save/load."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

from asr_pathways.errors import InputError
from asr_pathways.sparsity import (
    MaskSet, dropped, intersection, iou, iou_per_matrix, own_plus_residual, revived, union,
)

SET = settings(max_examples=80, deadline=None)
SHAPES = {"a.weight": (5, 7), "b.weight_ih_l0": (8, 3), "c.in_proj_weight": (1, 4)}


@st.composite
def masksets(draw, n=3):
    seed = draw(st.integers(0, 10**6))
    ps = [draw(st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0])) for _ in range(n)]
    g = torch.Generator().manual_seed(seed)
    return [MaskSet({k: torch.rand(s, generator=g) < p for k, s in SHAPES.items()}) for p in ps]


@SET
@given(masksets())
def test_algebra_laws(ms):
    a, b, c = ms
    assert a | b == b | a and a & b == b & a
    assert (a | b) | c == a | (b | c) and (a & b) & c == a & (b & c)
    assert a & (b | c) == (a & b) | (a & c)
    assert ~(a | b) == (~a) & (~b) and ~(a & b) == (~a) | (~b)
    assert a - b == a & ~b and a.difference(b) == a - b
    assert union(a, b, c) == a | b | c and intersection(a, b, c) == a & b & c
    assert (a & b).issubset(a) and a.issubset(a | b)
    assert (a | b).kept() + (a & b).kept() == a.kept() + b.kept()  # inclusion-exclusion
    assert (a | b).sparsity() <= min(a.sparsity(), b.sparsity()) + 1e-12


@SET
@given(masksets())
def test_iou(ms):
    a, b, _ = ms
    v = iou(a, b)
    assert 0.0 <= v <= 1.0 and v == pytest.approx(iou(b, a))
    assert iou(a, a) == 1.0
    uni = (a | b).kept()
    assert v == pytest.approx((a & b).kept() / uni if uni else 1.0)
    per = iou_per_matrix(a, b)
    assert set(per) == set(SHAPES) and all(0 <= x <= 1 for x in per.values())


@SET
@given(masksets())
def test_revived_dropped(ms):
    before, after, _ = ms
    rv, dr = revived(before, after), dropped(before, after)
    assert (rv & before).kept() == 0 and (dr & after).kept() == 0
    assert rv.issubset(after) and dr.issubset(before)
    assert after == (before - dr) | rv
    assert after.kept() == before.kept() - dr.kept() + rv.kept()
    assert revived(after, before) == dr


@SET
@given(masksets(n=3))
def test_own_plus_residual(ms):
    paths = dict(zip(["en", "fr", "it"], ms))
    c = own_plus_residual(paths, "fr")
    assert paths["fr"].issubset(c)
    assert c == paths["fr"] | ~(paths["en"] | paths["it"])


def test_sparsity_views():
    m = MaskSet({"encoder.layers.0.self_attn.in_proj_weight": torch.tensor([[True, False], [False, False]]),
                 "predictor.lstm.weight_hh_l0": torch.ones(2, 2, dtype=torch.bool)})
    assert m.sparsity() == 3 / 8
    assert m.sparsity_per_matrix() == {"encoder.layers.0.self_attn.in_proj_weight": 0.75, "predictor.lstm.weight_hh_l0": 0.0}
    assert m.sparsity_per_group() == {"encoder.attn": 0.75, "predictor": 0.0}
    assert m.sparsity_per_group(lambda n: "all") == {"all": 3 / 8}
    net = torch.nn.Linear(3, 4)  # 16 parameters
    assert m.sparsity_over_model(net) == 3 / 16 and m.sparsity_over_model(30) == 0.1
    assert m.kept_per_matrix()["predictor.lstm.weight_hh_l0"] == 4


def test_construction_and_errors():
    p = {"w": torch.zeros(2, 3), "v": torch.zeros(4)}
    one = MaskSet.ones_like(p)
    assert one.sparsity() == 0.0 and MaskSet.zeros_like(p).sparsity() == 1.0
    assert MaskSet.ones_like(torch.nn.Linear(2, 2).named_parameters()).names == ["weight", "bias"]
    assert MaskSet({"w": torch.tensor([1, 0])})["w"].dtype == torch.bool
    with pytest.raises(ValueError, match="0/1"):
        MaskSet({"w": torch.tensor([2, 0])})
    with pytest.raises(ValueError, match="different matrices"):
        one | MaskSet({"w": torch.ones(2, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape"):
        one | MaskSet({"w": torch.ones(3, 2, dtype=torch.bool), "v": torch.ones(4, dtype=torch.bool)})
    assert one == one.clone() and one != ~one and one.to("cpu") == one
    assert one != MaskSet({"w": torch.ones(2, 3, dtype=torch.bool)})


@SET
@given(masksets(n=1))
def test_save_load_roundtrip(tmp_path_factory, ms):
    m = ms[0]
    path = tmp_path_factory.mktemp("m") / "fr.safetensors"
    m.save(path, {"language": "fr", "step": 3})
    back, meta = MaskSet.load(path, with_metadata=True)
    assert back == m and back.names == m.names
    assert meta["language"] == "fr" and meta["format"] == "asr-pathways/maskset"
    assert MaskSet.from_state_dict(m.state_dict()) == m


def test_load_rejects_non_masks(tmp_path):
    from asr_pathways.io import save_tensors

    save_tensors(tmp_path / "x.safetensors", {"w": torch.zeros(2)})
    with pytest.raises(InputError, match="not a mask file"):
        MaskSet.load(tmp_path / "x.safetensors")
    with pytest.raises(InputError, match="not found"):
        MaskSet.load(tmp_path / "missing.safetensors")
