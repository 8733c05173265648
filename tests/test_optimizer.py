"""AdamW: fused on request for dense training, single-tensor under pathways, and a resume keeps the trainer's choice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr_pathways.asr.model import load_preset
from asr_pathways.asr.prunable import prunable_parameters
from asr_pathways.asr.tokenizer import tokenizer_for_corpus
from asr_pathways.checkpoint import load_checkpoint, restore_optimizer
from asr_pathways.data.corpus import Corpus
from asr_pathways.optimizer import make_adamw
from asr_pathways.runs import build_model
from asr_pathways.runtime import seed_everything
from asr_pathways.sparsity.pathways import PathwayModel
from asr_pathways.train import TrainConfig, Trainer


def trainer(corpus_dir: Path, out: Path, pathways: bool = False, **overrides) -> Trainer:
    preset = load_preset("tiny")
    cfg = TrainConfig.from_dict(dict(preset["train"]) | {"steps": 4, "checkpoint_every": 0, "batching": "language"} | overrides)
    seed_everything(cfg.seed)
    tok = tokenizer_for_corpus(corpus_dir, preset["tokenizer"]["vocab_size"])
    model = build_model(preset["model"], tok.vocab_size)
    corpus = Corpus(corpus_dir)
    pm = PathwayModel(model, list(prunable_parameters(model))) if pathways else None
    return Trainer(model, tok, corpus, corpus.languages, cfg, out, progress=False, pathways=pm)


def test_fused_and_single_tensor_adamw_take_the_same_steps():
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 4)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [make_adamw(m, lr=1e-2, weight_decay=0.1, betas=(0.9, 0.98), fused=f) for m, f in zip(models, (True, False))]
    assert opts[0].param_groups[0]["fused"] and not opts[1].param_groups[0]["fused"]
    for step in range(20):
        grads = [torch.randn_like(p) for p in models[0].parameters()]
        for m, opt in zip(models, opts):
            for p, g in zip(m.parameters(), grads):
                p.grad = g.clone()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_fused_adamw_is_opt_in_for_dense_training_and_never_under_pathways(tiny_corpus, tmp_path):
    assert not trainer(tiny_corpus, tmp_path / "default").optimizer.param_groups[0]["fused"]  # presets: single-tensor
    assert trainer(tiny_corpus, tmp_path / "dense", fused_adamw=True).optimizer.param_groups[0]["fused"] is True
    # the pathway engine runs its own masked single-tensor update, which a fused optimizer would refuse
    assert not trainer(tiny_corpus, tmp_path / "phase", pathways=True, fused_adamw=True).optimizer.param_groups[0]["fused"]


@pytest.mark.parametrize("saved_fused", [True, False])
def test_a_resume_keeps_the_trainers_own_implementation(tiny_corpus, tmp_path, saved_fused):
    first = trainer(tiny_corpus, tmp_path / "run", fused_adamw=saved_fused)
    first.train_until(2)  # writes a checkpoint
    resumed = trainer(tiny_corpus, tmp_path / "other", fused_adamw=not saved_fused)
    resumed.model.load_state_dict(first.model.state_dict())
    restore_optimizer(resumed.model, resumed.optimizer, load_checkpoint(tmp_path / "run" / "checkpoint.safetensors"))
    assert bool(resumed.optimizer.param_groups[0]["fused"]) is (not saved_fused)
    saved, loaded = first.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert saved.keys() == loaded.keys()
    for idx in saved:
        torch.testing.assert_close(saved[idx]["exp_avg"], loaded[idx]["exp_avg"], rtol=0, atol=0)
        step = loaded[idx]["step"]  # where and how torch keeps it depends on the loaded group's fused flag
        assert step.dtype == torch.float32 and step.device.type == "cpu" and float(step) == 2.0
    resumed.train_step()  # and it steps
