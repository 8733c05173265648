"""The trainer on a tiny real corpus: loss falls, resume is exact, checkpoints round-trip, DDP agrees."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr_pathways.asr.model import load_preset
from asr_pathways.asr.tokenizer import tokenizer_for_corpus
from asr_pathways.checkpoint import load_checkpoint, save_checkpoint
from asr_pathways.data.corpus import Corpus
from asr_pathways.runtime import seed_everything
from asr_pathways.runs import build_model
from asr_pathways.train import TrainConfig, Trainer, parse_language_weights


def make_trainer(corpus_dir: Path, out: Path, steps: int = 12, **overrides) -> Trainer:
    preset = load_preset("tiny")
    train = dict(preset["train"]) | {"steps": steps, "checkpoint_every": 0, "log_every": 2} | overrides
    cfg = TrainConfig.from_dict(train)
    seed_everything(cfg.seed)
    tok = tokenizer_for_corpus(corpus_dir, preset["tokenizer"]["vocab_size"])
    model = build_model(preset["model"], tok.vocab_size)
    corpus = Corpus(corpus_dir)
    return Trainer(model, tok, corpus, corpus.languages, cfg, out, progress=False)


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_lr_schedule_warmup_and_decay():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, steps=110, final_lr_ratio=0.0)
    assert cfg.lr_at(0) == pytest.approx(0.1)
    assert cfg.lr_at(9) == pytest.approx(1.0)
    assert cfg.lr_at(60) == pytest.approx(0.5)
    assert cfg.lr_at(110) == pytest.approx(0.0, abs=1e-12)
    assert TrainConfig(lr=1.0, warmup_steps=0, lr_schedule="constant").lr_at(500) == 1.0


def test_language_weights():
    w = parse_language_weights("auto", ["en", "it"], {"en": 4.0, "it": 1.0})
    assert w["en"] == pytest.approx(2 / 3)
    assert parse_language_weights("uniform", ["en", "it"], {})["it"] == 0.5
    assert parse_language_weights("en=3,it=1", ["en", "it"], {})["en"] == 0.75
    with pytest.raises(ValueError, match="language_weights"):
        parse_language_weights("en=3", ["en", "it"], {})


def test_loss_falls(tiny_corpus, tmp_path):
    tr = make_trainer(tiny_corpus, tmp_path / "run", steps=40, lr=3e-3, spec_augment=False)
    losses = []
    while tr.step < 40:
        losses.append(tr.train_step()["loss"])
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)


@pytest.mark.parametrize("batching", ["language", "mixed"])
def test_resume_is_exact(tiny_corpus, tmp_path, batching):
    full = make_trainer(tiny_corpus, tmp_path / "full", steps=10, batching=batching, max_duration=6.0)
    full.train_until(10)
    reference = params(full.model)

    part = make_trainer(tiny_corpus, tmp_path / "part", steps=10, batching=batching, max_duration=6.0)
    part.train_until(5)  # saves a checkpoint at the end of train_until
    del part
    torch.manual_seed(999)  # a resumed process starts from another RNG state
    resumed = make_trainer(tiny_corpus, tmp_path / "part", steps=10, batching=batching, max_duration=6.0)
    resumed.restore()
    assert resumed.step == 5
    resumed.train_until(10)
    for k, v in params(resumed.model).items():
        assert torch.equal(v, reference[k]), k
    rows = [json.loads(l) for l in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})  # no duplicated log rows


def test_mixed_batches_mix_languages_in_one_step(tiny_corpus, tmp_path):
    tr = make_trainer(tiny_corpus, tmp_path / "run", steps=4, batching="mixed", max_duration=30.0)
    for _ in range(4):  # one mixed batch per step, whatever the number of languages
        before = tr.mixed.state_dict()["position"]
        info = tr.train_step()
        assert tr.mixed.state_dict()["position"] in (before + 1, 1) and "loss/mixed" in info
    seen = {l for b in tr.mixed.plan(0) for l, _ in b}
    assert seen == set(tr.languages)
    with pytest.raises(ValueError, match="pathways"):
        Trainer(tr.model, tr.tokenizer, tr.corpus, tr.languages, tr.cfg, tmp_path / "y", progress=False, plan=lambda s: tr.languages)


def _step_gradients(tr: Trainer) -> dict[str, torch.Tensor]:
    """The gradients one train_step accumulates (read before the optimizer step by a hook)."""
    from asr_pathways.hooks import TrainHook

    class Grab(TrainHook):
        def before_step(self, trainer, langs):
            self.g = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}

    grab = Grab()
    tr.hooks.append(grab)
    tr.train_step()
    return grab.g


def test_weighted_language_loss_scales_each_language_by_k_times_its_weight(tiny_corpus, tmp_path):
    kw = dict(steps=2, batching="language", languages_per_step=0, max_duration=6.0, spec_augment=False, grad_clip=0.0)
    weighted = make_trainer(tiny_corpus, tmp_path / "w", language_loss="weighted", language_weights="en=3,fr=1", **kw)
    assert weighted.languages == ["en", "fr"]
    assert (weighted.loss_scale("en"), weighted.loss_scale("fr")) == (pytest.approx(1.5), pytest.approx(0.5))  # K x w_l
    g = _step_gradients(weighted)
    per_lang = {}
    for lang in ("en", "fr"):  # each language's own gradient, on the same first batch, from the same weights
        one = make_trainer(tiny_corpus, tmp_path / lang, **kw)
        one.plan = lambda step, lang=lang: [lang]
        per_lang[lang] = _step_gradients(one)
    for n, v in g.items():
        torch.testing.assert_close(v, 1.5 * per_lang["en"][n] + 0.5 * per_lang["fr"][n], rtol=1e-4, atol=1e-6)
    # uniform weights: K x 1/K = 1, the same step as equal weighting, bit for bit
    equal = make_trainer(tiny_corpus, tmp_path / "e", **kw)
    uniform = make_trainer(tiny_corpus, tmp_path / "u", language_loss="weighted", language_weights="uniform", **kw)
    equal.train_step(), uniform.train_step()
    for k, v in params(uniform.model).items():
        assert torch.equal(v, params(equal.model)[k]), k
    for name, other in (("m", dict(batching="mixed", languages_per_step=0, language_loss="weighted")),  # drawn by the weights
                        ("s", dict(batching="language", languages_per_step=1, language_loss="weighted")),  # sampled by them
                        ("q", dict(batching="language", languages_per_step=0, language_loss="equal"))):
        tr = make_trainer(tiny_corpus, tmp_path / name, steps=2, language_weights="en=3,fr=1", **other)
        assert (tr.loss_scale("en"), tr.loss_scale("fr")) == (1.0, 1.0), name
    every = make_trainer(tiny_corpus, tmp_path / "k2", steps=2, languages_per_step=2, language_loss="weighted",
                         language_weights="en=3,fr=1")  # k >= K: every language in every step, as with 0
    assert every.loss_scale("en") == pytest.approx(1.5)


def test_checkpoint_round_trip(tiny_corpus, tmp_path):
    tr = make_trainer(tiny_corpus, tmp_path / "run", steps=3)
    tr.train_until(3)
    path = save_checkpoint(tmp_path / "ck.safetensors", tr.model, {"step": 3, "note": "x"}, tr.optimizer, {"fr": {"w": torch.ones(2, 2, dtype=torch.bool)}})
    ck = load_checkpoint(path)
    assert ck.meta["note"] == "x" and ck.meta["step"] == 3
    for k, v in tr.model.state_dict().items():
        assert torch.equal(ck.model[k], v)
    assert ck.masks["fr"]["w"].dtype == torch.bool
    fresh = make_trainer(tiny_corpus, tmp_path / "run2", steps=3)
    fresh.model.load_state_dict(ck.model)
    from asr_pathways.checkpoint import restore_optimizer

    restore_optimizer(fresh.model, fresh.optimizer, ck)
    a, b = tr.optimizer.state_dict(), fresh.optimizer.state_dict()
    for idx, st in a["state"].items():
        for key, val in st.items():
            assert torch.equal(torch.as_tensor(val), torch.as_tensor(b["state"][idx][key])), (idx, key)
    assert (tmp_path / "ck.json").is_file()


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "checkpoint.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint.safetensors"):
        load_checkpoint(bad)


DDP_SCRIPT = r"""
import hashlib, json, os, sys, torch
from pathlib import Path
from asr_pathways.asr.model import load_preset
from asr_pathways.asr.tokenizer import tokenizer_for_corpus
from asr_pathways.data.corpus import Corpus
from asr_pathways.runtime import init_distributed, seed_everything, shutdown_distributed
from asr_pathways.runs import build_model
from asr_pathways.train import TrainConfig, Trainer

corpus_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
info = init_distributed(torch.device("cpu"))
preset = load_preset("tiny")
cfg = TrainConfig.from_dict(dict(preset["train"]) | {"steps": 4, "checkpoint_every": 0})
seed_everything(cfg.seed)
tok = tokenizer_for_corpus(corpus_dir, preset["tokenizer"]["vocab_size"])
model = build_model(preset["model"], tok.vocab_size)
corpus = Corpus(corpus_dir)
tr = Trainer(model, tok, corpus, corpus.languages, cfg, out, dist_info=info, progress=False)
tr.train_until(4)
h = hashlib.sha256()
for k, v in sorted(model.state_dict().items()):
    h.update(v.detach().float().numpy().tobytes())
(out / f"rank{info.rank}.json").write_text(json.dumps({"hash": h.hexdigest(), "batches": tr.streams[corpus.languages[0]].state_dict()}, default=str))
shutdown_distributed()
"""


def test_two_process_ddp_identical_parameters(tiny_corpus, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "ddp"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(tiny_corpus), str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((out / "rank0.json").read_text())
    r1 = json.loads((out / "rank1.json").read_text())
    assert r0["hash"] == r1["hash"]
    assert r0["batches"] != r1["batches"]  # the ranks saw different data
    assert (out / "checkpoint.safetensors").is_file()


def test_bf16_falls_back_to_float32_without_native_kernels(tiny_corpus, tmp_path, monkeypatch, capsys):
    import asr_pathways.runtime as runtime

    monkeypatch.setattr(runtime, "bf16_supported", lambda device="cpu": False)
    tr = make_trainer(tiny_corpus, tmp_path / "run", steps=1, bf16=True)
    assert tr.bf16 is False and "float32" in capsys.readouterr().out
    info = tr.train_step()  # the LSTM has no bf16 kernel on such CPUs: this would raise under autocast
    assert math.isfinite(info["loss"])
