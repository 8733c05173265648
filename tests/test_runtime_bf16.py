"""Process-level runtime settings: bf16 autocast only where the hardware runs it natively; the size of
oneDNN's kernel cache."""

import os
import subprocess
import sys

import pytest
import torch

import asr_pathways
from asr_pathways.runtime import bf16_supported


def test_bf16_supported_follows_the_cpu_instructions(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert bf16_supported("cpu") is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert bf16_supported("cpu") is True
    assert bf16_supported("meta") is False


def _onednn_cache_after_import(env: dict[str, str]) -> str:
    code = "import os, asr_pathways; print(os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_package_enlarges_onednn_kernel_cache_unless_set():
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")}
    assert _onednn_cache_after_import(env) == asr_pathways.ONEDNN_PRIMITIVE_CACHE_CAPACITY == "16384"
    assert _onednn_cache_after_import(env | {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "512"}) == "512"


def test_onednn_kernel_cache_size_takes_effect_when_set_before_the_first_kernel():
    """oneDNN reads the capacity at its first kernel: 600 float32 convolution shapes (each a convolution and its
    layout reorders, ~1,800 kernels) run twice compile once with the package's capacity; with oneDNN's default of
    1,024 the second pass compiles again what the first evicted."""
    code = (
        "import torch\n"
        "import asr_pathways\n"
        "w = torch.randn(4, 4, 3, 3)\n"
        "run = lambda: [torch.nn.functional.conv2d(torch.zeros(16, 4, 3, t), w) for t in range(5, 605)]\n"
        "run()\n"
        "with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON_CREATION):\n"
        "    run()\n"
    )
    counts = {}
    for name, extra in (("package", {}), ("default", {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024"})):
        env = {k: v for k, v in os.environ.items()
               if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")} | extra
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        counts[name] = out.count("cache_miss")
    if counts["default"] == 0:
        pytest.skip("this torch build does not run these convolutions through oneDNN")
    assert counts["default"] > 500  # the second pass recompiles what the 1,024-kernel cache evicted
    assert counts["package"] < counts["default"] / 10


def test_the_older_dnnl_spelling_is_respected():
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"} | {"DNNL_PRIMITIVE_CACHE_CAPACITY": "256"}
    assert _onednn_cache_after_import(env) == "None"
