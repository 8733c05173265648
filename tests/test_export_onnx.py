"""ONNX export of one pathway: encoder, predictor step and joiner agree with PyTorch in onnxruntime."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset  # noqa: E402
from asr_pathways.export.compact import CompactModel, export_pathways  # noqa: E402
from asr_pathways.export.onnx_export import export_onnx, graphs_of, run_onnx  # noqa: E402
from asr_pathways.sparsity.blocks import magnitude_mask  # noqa: E402


def test_onnx_parity(tmp_path):
    torch.manual_seed(0)
    cfg = load_preset("tiny")["model"]
    model = RNNTModel(ModelConfig.from_dict(cfg), vocab_size=29).eval()
    masks = {"fr": {n: magnitude_mask(p.detach(), 0.7) for n, p in model.named_parameters() if n in model.weight_matrix_names()}}
    export_pathways(model, masks, tmp_path / "m", cfg)
    pathway = CompactModel.load(tmp_path / "m").model("fr")
    paths = export_onnx(pathway, tmp_path / "onnx")
    assert sorted(paths) == ["encoder", "joiner", "predictor"]
    graphs = graphs_of(pathway)
    g = torch.Generator().manual_seed(1)
    # shapes differ from the export examples: dynamic axes must work
    feats, lens = torch.randn(3, 53, 80, generator=g), torch.tensor([53, 30, 17])
    L, H = cfg["predictor_layers"], cfg["predictor_dim"]
    cases = {
        "encoder": (feats, lens),
        "predictor": (torch.tensor([[0], [5], [7], [1]]), torch.randn(L, 4, H, generator=g), torch.randn(L, 4, H, generator=g)),
        "joiner": (torch.randn(5, cfg["d_model"], generator=g), torch.randn(5, cfg["predictor_dim"], generator=g)),
    }
    for name, inputs in cases.items():
        with torch.no_grad():  # the encoder against the model itself (its attention is rewritten for export)
            ref = pathway.encode(*inputs) if name == "encoder" else graphs[name](*inputs)
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = run_onnx(tmp_path / "onnx", name, *inputs)
        assert len(got) == len(ref)
        for a, b in zip(got, ref):
            torch.testing.assert_close(torch.from_numpy(a).to(b.dtype), b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("frames", [53, 57])  # 14 and 15 frames after 4x: both parities of the 8x stacking
def test_onnx_encoder_with_8x_subsampling_takes_any_length(tmp_path, frames):
    torch.manual_seed(0)
    cfg = dict(load_preset("tiny")["model"]) | {"subsampling_factor": 8}
    model = RNNTModel(ModelConfig.from_dict(cfg), vocab_size=29).eval()
    export_onnx(model, tmp_path / "onnx")
    feats, lens = torch.randn(2, frames, 80, generator=torch.Generator().manual_seed(1)), torch.tensor([frames, frames - 20])
    with torch.no_grad():
        enc, enc_lens = model.encode(feats, lens)
    got_enc, got_lens = run_onnx(tmp_path / "onnx", "encoder", feats, lens)
    assert got_lens.tolist() == enc_lens.tolist()
    torch.testing.assert_close(torch.from_numpy(got_enc), enc, rtol=1e-4, atol=1e-4)
