"""BlockSparseLinear equals dense F.linear(x, weight * mask, bias) for every shape and mask."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from asr_pathways.export.sparse_linear import BlockSparseLinear, is_block_structured, kernel_backend, pack, sparse_linear, unpack


def _check(out, inn, n, sparsity, block, structured, bias, seed, threads=None, mode="kernel"):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inn, generator=g)
    if structured and block == (8, 1):
        m = (torch.rand((out + 7) // 8, inn, generator=g) >= sparsity).repeat_interleave(8, 0)[:out]
    else:
        m = torch.rand(out, inn, generator=g) >= sparsity
    b = torch.randn(out, generator=g) if bias else None
    layer = BlockSparseLinear.from_dense(w, m, b, block=block)
    layer.mode = mode
    x = torch.randn(n, inn, generator=g)
    ref = F.linear(x, w * m, b)
    got = layer(x) if threads is None else sparse_linear(x, layer.indptr, layer.cols, layer.values, out, layer.bias, threads)
    assert got.shape == ref.shape and got.dtype == torch.float32
    tol = 1e-5 * (inn**0.5) * 4
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=tol)
    assert torch.equal(layer.to_dense(), w * m)


def test_kernels_compiled():
    # the C++ build must work on the project's machines; the fallback is for users without g++
    assert kernel_backend() == "cpp"


@settings(max_examples=60, deadline=None)
@given(
    out=st.integers(1, 70),
    inn=st.integers(1, 70),
    n=st.sampled_from([1, 2, 3, 5, 16, 17, 33]),
    sparsity=st.sampled_from([0.0, 0.3, 0.7, 0.95, 1.0]),
    block=st.sampled_from([(8, 1), (1, 1)]),
    structured=st.booleans(),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
    mode=st.sampled_from(["kernel", "auto"]),
)
def test_matches_dense(out, inn, n, sparsity, block, structured, bias, seed, mode):
    _check(out, inn, n, sparsity, block, structured, bias, seed, mode=mode)


@pytest.mark.parametrize("block", [(8, 1), (1, 1)])
@pytest.mark.parametrize("n", [1, 32])
@pytest.mark.parametrize("threads", [1, 2])
def test_large_and_threads(block, n, threads):
    _check(1029, 515, n, 0.7, block, True, True, 3, threads=threads)


def test_sparsity_edges_and_shapes():
    w = torch.randn(19, 12)
    for m in (torch.zeros(19, 12, dtype=torch.bool), torch.ones(19, 12, dtype=torch.bool)):
        layer = BlockSparseLinear.from_dense(w, m, torch.ones(19))
        layer.mode = "kernel"
        x = torch.randn(2, 3, 12)  # leading dims kept
        torch.testing.assert_close(layer(x), F.linear(x, w * m, torch.ones(19)), rtol=1e-5, atol=1e-5)
    empty = BlockSparseLinear.from_dense(w, torch.zeros(19, 12, dtype=torch.bool))
    empty.mode = "kernel"
    assert empty.nnz == 0 and torch.equal(empty(torch.randn(4, 12)), torch.zeros(4, 19))
    # zero-size batch, non-contiguous input, bf16 input
    layer = BlockSparseLinear.from_dense(w, torch.rand(19, 12) > 0.5)
    layer.mode = "kernel"
    assert layer(torch.randn(0, 12)).shape == (0, 19)
    xt = torch.randn(12, 5).t()
    torch.testing.assert_close(layer(xt), F.linear(xt, layer.to_dense()), rtol=1e-5, atol=1e-5)
    xb = torch.randn(3, 12).bfloat16()
    assert layer(xb).dtype == torch.bfloat16


def test_pack_unpack_and_auto_block():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(21, 10, generator=g)
    structured = (torch.rand(3, 10, generator=g) > 0.5).repeat_interleave(8, 0)[:21]
    assert is_block_structured(structured)
    assert BlockSparseLinear.from_dense(w, structured).block == (8, 1)
    p = pack(w, structured)
    assert p["values"].shape == (int(p["indptr"][-1]), 8)
    assert torch.equal(unpack(p["indptr"], p["cols"], p["values"], (21, 10)), w * structured)
    scattered = torch.rand(21, 10, generator=g) > 0.9
    assert not is_block_structured(scattered)
    assert BlockSparseLinear.from_dense(w, scattered).block == (1, 1)


def test_state_dict_round_trip():
    w, m = torch.randn(30, 20), torch.rand(30, 20) > 0.6
    a = BlockSparseLinear.from_dense(w, m, torch.randn(30))
    b = BlockSparseLinear(20, 30, block=(8, 1))
    b.load_state_dict(a.state_dict())
    a.mode = b.mode = "kernel"
    x = torch.randn(4, 20)
    assert torch.equal(a(x), b(x))


def test_torch_fallback(monkeypatch):
    from asr_pathways.export import sparse_linear as sl

    monkeypatch.setattr(sl, "_kernels", lambda: None)
    w, m = torch.randn(13, 9), torch.rand(13, 9) > 0.5
    layer = BlockSparseLinear.from_dense(w, m, torch.randn(13))
    x = torch.randn(3, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(layer(x), F.linear(x, w * m, layer.bias), rtol=1e-5, atol=1e-5)


def test_auto_mode_cost_model():
    from asr_pathways.export.sparse_linear import kernel_wins

    # tiny layers and dense-ish layers stay on F.linear; large sparse ones use the kernel
    assert not kernel_wins(29, 256, 29 * 256 // 3, 1)
    assert not kernel_wins(64, 64, 64 * 64 // 10, 1)
    assert not kernel_wins(576, 144, 576 * 144, 1)  # nothing pruned
    assert kernel_wins(1024, 256, 1024 * 256 * 3 // 10, 1)
    assert kernel_wins(576, 144, 576 * 144 * 3 // 10, 128)
    w = torch.randn(29, 256)
    m = (torch.rand(4, 256) > 0.7).repeat_interleave(8, 0)[:29]
    layer = BlockSparseLinear.from_dense(w, m, torch.randn(29))
    assert not layer.use_kernel(1)
    x = torch.randn(1, 256)
    torch.testing.assert_close(layer(x), F.linear(x, w * m, layer.bias), rtol=1e-5, atol=1e-5)
    assert layer._dense_weight is not None and "_dense_weight" not in layer.state_dict()
    layer.mode = "kernel"
    assert layer.use_kernel(1)
    torch.testing.assert_close(layer(x), F.linear(x, w * m, layer.bias), rtol=1e-5, atol=1e-5)
