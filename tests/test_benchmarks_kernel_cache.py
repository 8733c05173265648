"""benchmarks/kernel_cache.py reads oneDNN's creation log into per-step counts."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from kernel_cache import count_creations  # noqa: E402


def test_count_creations_per_step_from_the_log():
    log = "\n".join([
        "onednn_verbose,v1,info,oneDNN v3",
        "onednn_verbose,v1,primitive,create:cache_miss,cpu,matmul,brg_matmul:avx512_core_bf16,undef,src:bf16,,,32x144:144x576,0.80",
        "onednn_verbose,v1,primitive,create:cache_hit,cpu,matmul,brg_matmul:avx512_core_bf16,undef,src:bf16,,,32x144:144x576,0.01",
        "onednn_verbose,v1,primitive,create:cache_hit,cpu,reorder,jit:uni,undef,src:bf16,,,32x144,0.03",
        "onednn_verbose,v1,primitive,create:cache_miss,cpu,reorder,jit:uni,undef,src:bf16,,,32x144,1.20",
        "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:bf16,,,32x144,5.00",
        "RESULT {}",
    ])
    c = count_creations(log, steps=2)
    assert c == pytest.approx({"misses": 1.0, "miss_ms": 1.0, "hits": 1.0, "hit_ms": 0.02})
