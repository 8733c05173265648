"""`asr-pathways prune` under torchrun: two CPU processes (gloo), Dynamic ASR Pathways from one
LAP-style mask with ``--scores own-updates`` or ``finetune``; every rank must compute the same masks
at every event and end with the same masks and weights, and rank 0 alone writes the run folder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr_pathways.cli import main

# Runs `asr-pathways prune ARGS...` as the CLI does, and makes every rank write a hash of its
# model and masks when its training phase ends (before evaluation and before leaving the group),
# and of the masks it computed at every event (before Phase.apply installs rank 0's).
SCRIPT = r"""
import hashlib, json, sys
from pathlib import Path
import torch
import torch.distributed as dist
from asr_pathways.cli import main
from asr_pathways.methods import phase

dump = Path(sys.argv[1])
real_finish = phase.Phase.finish
real_apply = phase.Phase.apply
computed = []

def mask_digest(masks):
    m = hashlib.sha256()
    for lang in sorted(masks):
        for k, v in sorted(masks[lang].items()):
            m.update(f"{lang}/{k}".encode()); m.update(v.cpu().numpy().tobytes())
    return m.hexdigest()

def digest(model, masks):
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode()); h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest(), mask_digest(masks)

def finish(self):
    real_finish(self)
    rank = dist.get_rank() if dist.is_initialized() else 0
    model_hash, mask_hash = digest(self.model, self.masks)
    (dump / f"rank{rank}.json").write_text(json.dumps({
        "model": model_hash, "masks": mask_hash, "step": self.trainer.step,
        "world": dist.get_world_size() if dist.is_initialized() else 1,
        "data": {l: str(s.state_dict()) for l, s in self.trainer.streams.items()},
        "scores": hashlib.sha256(b"".join(t.cpu().numpy().tobytes() for _, t in sorted(self.attribution.state_tensors().items()))).hexdigest()
                  if self.attribution is not None else None,
        "delta_nonzero": int(sum(torch.count_nonzero(d) for d in self.attribution.delta.values())) if self.attribution is not None else 0,
        "computed": computed,
    }))

def apply(self, ev, new):
    computed.append(mask_digest(new))
    real_apply(self, ev, new)

phase.Phase.finish = finish
phase.Phase.apply = apply
sys.exit(main(sys.argv[2:]))
"""


def _digest(model: dict, masks: dict) -> tuple[str, str]:
    h = hashlib.sha256()
    for k, v in sorted(model.items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    m = hashlib.sha256()
    for lang in sorted(masks):
        for k, v in sorted(masks[lang].items()):
            m.update(f"{lang}/{k}".encode())
            m.update(v.cpu().numpy().tobytes())
    return h.hexdigest(), m.hexdigest()


@pytest.mark.parametrize("scores", ["own-updates", "finetune"])
def test_prune_dynamic_under_torchrun_two_processes(tiny_corpus: Path, tmp_path: Path, scores: str):
    from asr_pathways.checkpoint import load_checkpoint
    from asr_pathways.runs import load_run
    from asr_pathways.sparsity.blocks import select_masks
    from asr_pathways.asr.prunable import prunable_parameters

    dense = tmp_path / "dense"
    assert main(["train", "--corpus", str(tiny_corpus), "--out", str(dense), "--preset", "tiny", "--steps", "2",
                 "--max-duration", "4", "--eval-split", "none", "--device", "cpu"]) == 0
    # a LAP-style starting point: one magnitude mask at 50%, shared by every language
    lap = tmp_path / "lap"
    params = {n: p.detach() for n, p in prunable_parameters(load_run(dense).model).items()}
    select_masks(params, 0.5, block="8x1").save(lap / "masks" / "shared" / "sparsity_0.50.safetensors")

    out, dump = tmp_path / "dyn", tmp_path / "dump"
    dump.mkdir()
    script = tmp_path / "prune_ddp.py"
    script.write_text(SCRIPT)
    args = ["prune", "--method", "dynamic", "--from", str(dense), "--masks-from", str(lap), "--init-sparsity", "0.5",
            "--target", "0.6", "--prune-step", "0.1", "--round-steps", "2", "--adapt-at", "1", "--max-duration", "4",
            "--device", "cpu", "--no-progress", "--eval-split", "test", "--eval-max-utts", "1", "--out", str(out),
            "--scores", scores, "--score-steps", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1", ASR_PATHWAYS_NO_TCMALLOC="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(dump), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0 = json.loads((dump / "rank0.json").read_text())
    r1 = json.loads((dump / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2 and r0["step"] == r1["step"] == 4
    assert r0["model"] == r1["model"] and r0["masks"] == r1["masks"]  # identical weights and masks on both ranks
    assert r0["data"] != r1["data"]  # yet each rank trained on its own batches
    assert len(r0["computed"]) == 4 and r0["computed"] == r1["computed"]  # each rank computed the same masks at every event
    ck = load_checkpoint(out)
    assert ck.meta["world_size"] == 2
    assert _digest(ck.model, ck.masks) == (r0["model"], r0["masks"])  # what rank 0 saved is what both ranks hold
    rows = [json.loads(l) for l in (out / "history.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["init", "init", "adapt", "adapt", "prune", "prune", "adapt", "adapt"]  # written once
    assert rows[2]["iou"]["en|fr"] < 1.0  # per-language scores under DDP: the shared start becomes language-specific
    assert (out / "cost.json").is_file() and (out / "wer_test.json").is_file() and (out / "masks" / "en.safetensors").is_file()
    if scores == "own-updates":
        assert r0["scores"] == r1["scores"] and r0["delta_nonzero"] > 0  # the own-updates accumulators agree too
        assert torch.count_nonzero(ck.extra["attribution/delta/en"]) > 0  # the own-updates state rides in the checkpoint
    else:  # 3 scoring events (adapt, prune, adapt) x 2 languages x 2 steps, counted once (rank 0 writes)
        assert json.loads((out / "cost.json").read_text())["own"]["score_batches"] == 12
    assert not list(out.rglob(".*.tmp"))  # no half-written files left by a second writer
