"""Block selection: exact counts, candidates, block structure, ties, edge blocks, global scope."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from asr_pathways.sparsity import MaskSet, block_scores, block_sparsity, magnitude_mask, select_masks
from asr_pathways.sparsity.blocks import _prefix_prune, block_candidates

SET = settings(max_examples=120, deadline=None)


def _blocks_of(w2: torch.Tensor, block):
    R, C = block
    rows, cols = w2.shape
    for i in range(-(-rows // R)):
        for j in range(-(-cols // C)):
            yield i, j, (slice(i * R, (i + 1) * R), slice(j * C, (j + 1) * C))


def ref_select(weights: dict, s: float, block, norm: str, cands: dict | None, scope: str) -> dict:
    """Brute force: order (forced first, score, index), prefix closest to s * size, ties to fewer."""
    per = {}
    for n, w in weights.items():
        w2 = w.reshape(w.shape[0], -1).double()
        c2 = cands[n].reshape(w.shape[0], -1) if cands and n in cands else None
        items = []
        for i, j, sl in _blocks_of(w2, block):
            sub = w2[sl]
            sc = sub.abs().sum() if norm == "l1" else sub.square().sum().sqrt()
            forced = c2 is not None and not bool(c2[sl].all())
            items.append((-1.0 if forced else float(sc.float()), forced, sub.numel(), (i, j)))
        per[n] = items
    groups = [[n] for n in weights] if scope == "layer" else [list(weights)]
    keep = {n: torch.ones(w.reshape(w.shape[0], -1).shape, dtype=torch.bool) for n, w in weights.items()}
    for g in groups:
        allb = [(sc, gi, f, sz, n, ij) for gi, (n, (sc, f, sz, ij)) in enumerate((n, it) for n in g for it in per[n])]
        allb.sort(key=lambda t: (t[0], t[1]))
        total = sum(b[3] for b in allb)
        target = s * total
        cum, best_k, best_d = 0, 0, abs(target)
        for k, b in enumerate(allb, 1):
            cum += b[3]
            d = abs(cum - target)
            if d < best_d - 1e-9:
                best_k, best_d = k, d
        n_forced = sum(b[2] for b in allb)
        if best_k < n_forced:
            return None  # impossible
        for sc, gi, f, sz, n, (i, j) in allb[:best_k]:
            R, C = block
            keep[n][i * R : (i + 1) * R, j * C : (j + 1) * C] = False
    return {n: keep[n].reshape(weights[n].shape) for n in weights}


shapes = st.tuples(st.integers(1, 19), st.integers(1, 13))
blocks = st.tuples(st.integers(1, 5), st.integers(1, 4))
sparsities = st.integers(0, 40).map(lambda i: i / 40)


@st.composite
def problem(draw, n_mats=1):
    block = draw(blocks)
    ws, cs = {}, {}
    use_c = draw(st.booleans())
    for k in range(n_mats):
        r, c = draw(shapes)
        g = torch.Generator().manual_seed(draw(st.integers(0, 10**6)))
        vals = draw(st.sampled_from([3, 50]))  # small value sets force ties
        ws[f"m{k}"] = torch.randint(-vals, vals + 1, (r, c), generator=g).double()
        if use_c:
            p = draw(st.sampled_from([0.3, 0.8, 1.0]))
            cs[f"m{k}"] = torch.rand(r, c, generator=g) < p
    return ws, (cs if use_c else None), block, draw(sparsities), draw(st.sampled_from(["l1", "l2"]))


def check_against_bruteforce(pb, scope: str) -> None:
    """select_masks equals the brute-force reference, or both refuse an impossible request."""
    ws, cs, block, s, norm = pb
    ref = ref_select(ws, s, block, norm, cs, scope)
    if ref is None:
        with pytest.raises(ValueError, match="fewer zeros than the candidates allow"):
            select_masks(ws, s, block, norm, scope, cs)
        return
    got = select_masks(ws, s, block, norm, scope, cs)
    for n in ws:
        assert torch.equal(got[n], ref[n]), n
    assert got == MaskSet(ref)


@SET
@given(problem())
def test_layer_matches_bruteforce(pb):
    check_against_bruteforce(pb, "layer")


@SET
@given(problem(n_mats=3))
def test_global_matches_bruteforce(pb):
    check_against_bruteforce(pb, "global")


@SET
@given(problem())
def test_block_structure_candidates_determinism(pb):
    ws, cs, block, s, norm = pb
    try:
        m = select_masks(ws, s, block, norm, "layer", cs)
    except ValueError:
        return
    m2 = select_masks(ws, s, block, norm, "layer", cs)
    assert m == m2
    for n, w in ws.items():
        mk = m[n].reshape(w.shape[0], -1)
        for _, _, sl in _blocks_of(mk, block):
            sub = mk[sl]
            assert bool(sub.all()) or not bool(sub.any())  # constant within blocks
        if cs is not None:
            assert not bool((m[n] & ~cs[n]).any())  # kept only among candidates


@SET
@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from([(8, 1), (2, 2), (1, 1), (4, 3)]), sparsities)
def test_exact_count_uniform_blocks(br, bc, block, s):
    R, C = block
    w = torch.randn(br * R, bc * C, generator=torch.Generator().manual_seed(br * 100 + bc))
    m = magnitude_mask(w, s, block)
    n_blocks = br * bc
    expected = math.floor(s * n_blocks + 0.5 - 1e-9)  # nearest, halves rounded down
    assert block_sparsity(m, block) * n_blocks == pytest.approx(expected)
    assert (~m).sum().item() == expected * R * C  # weight sparsity == block sparsity without edges


def test_edge_blocks_closest_weight_sparsity():
    w = torch.arange(1.0, 11.0).view(10, 1)  # 8x1 blocks: rows 0-7 (8 weights, norm 14.3), rows 8-9 (2, norm 13.5)
    m = magnitude_mask(w, 0.2, (8, 1))  # 2 zeros wanted: the edge block (lowest norm) gives exactly 2
    assert m[:8].all() and not m[8:].any()
    m = magnitude_mask(w, 0.6, (8, 1))  # 6 wanted: prefixes give 0, 2, 10 zeros; 2 and 10 tie -> fewer
    assert m[:8].all() and not m[8:].any()
    m = magnitude_mask(w, 0.7, (8, 1))  # 7 wanted: 10 (d=3) beats 2 (d=5)
    assert not m.any()
    assert block_sparsity(magnitude_mask(w, 0.2, (8, 1)), (8, 1)) == 0.5  # block vs weight sparsity 0.2


def test_sort_and_kth_paths_agree():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        s = torch.randint(0, 4, (200,), generator=g).float()  # many ties
        forced = torch.rand(200, generator=g) < 0.2
        for k_target in [60.0, 100.0, 173.0]:
            a = _prefix_prune(s, forced, None, k_target * 3, 3, "x")
            b = _prefix_prune(s, forced, torch.full((200,), 3, dtype=torch.int64), k_target * 3, 3, "x")
            assert torch.equal(a, b)


def test_ties_broken_by_index():
    w = torch.ones(4, 4)
    m = magnitude_mask(w, 0.5, (1, 1))
    assert m.flatten().tolist() == [False] * 8 + [True] * 8


def test_l1_vs_l2():
    # block a = (3, 0): L1 3, L2 3; block b = (2, 2): L1 4, L2 2.83 -> L1 prunes a, L2 prunes b
    w = torch.tensor([[3.0, 2.0], [0.0, 2.0]])
    assert magnitude_mask(w, 0.5, (2, 1), norm="l1").tolist() == [[False, True], [False, True]]
    assert magnitude_mask(w, 0.5, (2, 1), norm="l2").tolist() == [[True, False], [True, False]]


def test_global_vs_layer():
    ws = {"small": torch.full((8, 4), 0.1), "big": torch.full((8, 4), 5.0)}
    g = select_masks(ws, 0.5, (8, 1), scope="global")
    assert g.sparsity_per_matrix() == {"small": 1.0, "big": 0.0}
    lay = select_masks(ws, 0.5, (8, 1), scope="layer")
    assert lay.sparsity_per_matrix() == {"small": 0.5, "big": 0.5}
    # per-matrix sparsities in layer scope
    d = select_masks(ws, {"small": 0.25, "big": 0.75}, (8, 1))
    assert d.sparsity_per_matrix() == {"small": 0.25, "big": 0.75}


def test_impossible_sparsity_errors():
    w = torch.randn(8, 10)
    cand = torch.ones(8, 10, dtype=torch.bool)
    cand[:, :5] = False  # half the blocks are forced
    with pytest.raises(ValueError, match="fewer zeros than the candidates allow"):
        magnitude_mask(w, 0.3, (8, 1), candidates=cand)
    m = magnitude_mask(w, 0.5, (8, 1), candidates=cand)
    assert torch.equal(m, cand)
    with pytest.raises(ValueError, match="outside"):
        magnitude_mask(w, 1.5)
    with pytest.raises(ValueError, match="2 dimensions"):
        magnitude_mask(torch.randn(5), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        magnitude_mask(torch.tensor([[float("nan"), 1.0]]), 0.5, (1, 1))


def test_conv_and_lowprecision_weights():
    w = torch.randn(16, 3, 5)  # Conv1d weight, pruned as (16, 15)
    m = magnitude_mask(w, 0.5, (8, 1))
    assert m.shape == w.shape and (~m).sum().item() == 16 * 15 // 2
    mb = magnitude_mask(w.bfloat16(), 0.5, (8, 1))
    assert mb.shape == w.shape
    assert block_scores(w, (8, 1)).shape == (2, 15)


def test_block_candidates_all_rule():
    c = torch.ones(8, 2, dtype=torch.bool)
    c[3, 0] = False
    assert block_candidates(c, (8, 1)).tolist() == [[False, True]]


def test_info():
    w = torch.randn(10, 3)
    m, info = select_masks({"w": w}, 0.5, (8, 1), return_info=True)
    i = info["w"]
    assert i.blocks == 6 and i.size == 30 and i.zeros == (~m["w"]).sum().item()
    assert i.sparsity == m.sparsity()
