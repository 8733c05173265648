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


def _env_without_cache(**extra: str) -> dict[str, str]:
    """This process's environment without either spelling of the cache variable, plus ``extra``."""
    drop = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY", "_ASR_PATHWAYS_SET_ONEDNN_CACHE")
    return {k: v for k, v in os.environ.items() if k not in drop} | extra


def _onednn_cache_after_import(env: dict[str, str]) -> str:
    code = "import os, asr_pathways; print(os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_package_enlarges_onednn_kernel_cache_unless_set():
    assert _onednn_cache_after_import(_env_without_cache()) == asr_pathways.ONEDNN_PRIMITIVE_CACHE_CAPACITY == "16384"
    assert _onednn_cache_after_import(_env_without_cache(ONEDNN_PRIMITIVE_CACHE_CAPACITY="512")) == "512"


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
        out = subprocess.run([sys.executable, "-c", code], env=_env_without_cache(**extra), capture_output=True, text=True, check=True).stdout
        counts[name] = out.count("cache_miss")
    if counts["default"] == 0:
        pytest.skip("this torch build does not run these convolutions through oneDNN")
    assert counts["default"] > 500  # the second pass recompiles what the 1,024-kernel cache evicted
    assert counts["package"] < counts["default"] / 10


def test_the_older_dnnl_spelling_is_respected():
    assert _onednn_cache_after_import(_env_without_cache(DNNL_PRIMITIVE_CACHE_CAPACITY="256")) == "None"


def test_machine_records_say_who_set_the_cache(monkeypatch):
    from asr_pathways.bench.machine import onednn_cache_capacity

    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY", "_ASR_PATHWAYS_SET_ONEDNN_CACHE"):
        monkeypatch.delenv(name, raising=False)
    assert onednn_cache_capacity() == "1024 (oneDNN default)"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384")
    monkeypatch.setenv("_ASR_PATHWAYS_SET_ONEDNN_CACHE", "16384")
    assert onednn_cache_capacity() == "16384 (set by asr_pathways)"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "512")  # a user's value in a child of a package process
    assert onednn_cache_capacity() == "512 (user)"
