"""bf16 autocast is used only where the hardware runs it natively."""

import torch

from asr_pathways.runtime import bf16_supported


def test_bf16_supported_follows_the_cpu_instructions(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert bf16_supported("cpu") is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert bf16_supported("cpu") is True
    assert bf16_supported("meta") is False
