"""``prune --method dynamic --scores finetune`` on the tiny preset: every language scored on a copy of
the model fine-tuned on its own batches (asr_pathways/methods/finetune_scores.py).

One LAP mask (35%) copied to both languages, T = 2, adaptation at step 1, a prune to 70%: events
init, adapt@1, prune@2, adapt@3, so 3 scoring events x 2 languages x K batches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from asr_pathways.checkpoint import load_checkpoint
from asr_pathways.cli import main
from asr_pathways.data.batches import LanguageStream
from asr_pathways.methods.finetune_scores import FinetuneScores
from test_methods_pipeline import assert_same_run, history

K = 2
SCORED_EVENTS = 3  # adapt@1, prune@2, adapt@3


def command(runs: dict[str, Path], out: Path, scores: str, *extra: str) -> list[str]:
    return ["prune", "--method", "dynamic", "--from", str(runs["dense"]), "--masks-from", str(runs["lap"]),
            "--init-sparsity", "0.35", "--target", "0.7", "--prune-step", "0.35", "--round-steps", "2", "--adapt-at", "1",
            "--scores", scores, "--score-steps", str(K), "--out", str(out), "--device", "cpu", "--max-duration", "4",
            "--eval-split", "none", *extra]


def trainer_digest(trainer: Any) -> str:
    """The main trainer's weights, AdamW state, data positions, step and RNG states, hashed."""
    h = hashlib.sha256()
    for k, v in trainer.model.state_dict().items():
        h.update(k.encode() + v.detach().cpu().numpy().tobytes())
    for st in trainer.optimizer.state.values():
        for k, v in sorted(st.items()):
            h.update(k.encode() + (v.detach().cpu().numpy().tobytes() if isinstance(v, torch.Tensor) else repr(v).encode()))
    h.update(repr([s.state_dict() for s in trainer.streams.values()]).encode() + repr(trainer.step).encode())
    h.update(torch.get_rng_state().numpy().tobytes() + trainer.aug_generator.get_state().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def recorded(tiny_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finetune run and an own-updates run of the same command, with every batch drawn from any
    stream recorded (stream seed, language, cut ids), and the main trainer hashed around every scoring."""
    root = tmp_path_factory.mktemp("finetune")
    out: dict[str, Any] = {"untouched": []}
    real_next, real_weights = LanguageStream.next, FinetuneScores.weights
    batches: list[tuple[int, str, tuple[str, ...]]] = []

    def next_batch(self):
        b = real_next(self)
        batches.append((self.seed, self.language, tuple(b.cut_ids)))
        return b

    def weights(self, pathway, candidates, event):
        before = trainer_digest(self.trainer)
        w = real_weights(self, pathway, candidates, event)
        out["untouched"].append(before == trainer_digest(self.trainer))
        return w

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LanguageStream, "next", next_batch)
        mp.setattr(FinetuneScores, "weights", weights)
        for scores in ("finetune", "own-updates"):
            batches.clear()
            assert main(command(tiny_runs, root / scores, scores, "--no-progress")) == 0
            out[scores] = (root / scores, list(batches))
    out["root"] = root
    return out


def test_finetune_makes_a_shared_start_language_specific(recorded: dict[str, Any], tiny_runs: dict[str, Path]):
    """(a) From one LAP mask copied to both languages, the first adaptation already tells them apart;
    with --scores shared the same command keeps them equal."""
    run, _ = recorded["finetune"]
    rows = history(run)
    assert [r["kind"] for r in rows[::2]] == ["init", "adapt", "prune", "adapt"] and {r["scores"] for r in rows} == {"finetune"}
    assert rows[0]["iou"]["en|fr"] == 1.0 and rows[2]["iou"]["en|fr"] < 1.0
    assert all(abs(r["sparsity"] - r["requested_sparsity"]) < 0.01 for r in rows)
    shared = recorded["root"] / "shared"
    assert main(command(tiny_runs, shared, "shared", "--no-progress", "--stop-after-events", "2")) == 0
    assert history(shared)[2]["iou"]["en|fr"] == 1.0


def test_scoring_leaves_the_main_training_alone(recorded: dict[str, Any]):
    """(b) The main trainer draws the same batches in the same order as with own-updates, takes the
    same number of optimizer steps, and its weights, AdamW state, data positions and RNG states are
    bit for bit the same before and after every scoring fine-tune; the scoring batches come from
    streams of their own, one seed per (event, language)."""
    ft_run, ft_batches = recorded["finetune"]
    ou_run, ou_batches = recorded["own-updates"]
    main_seeds = {seed for seed, _, _ in ou_batches}
    assert len(main_seeds) == 2  # one training stream per language
    assert [b for b in ft_batches if b[0] in main_seeds] == ou_batches
    scoring = [b for b in ft_batches if b[0] not in main_seeds]
    assert len(scoring) == SCORED_EVENTS * 2 * K
    assert len({(seed, lang) for seed, lang, _ in scoring}) == SCORED_EVENTS * 2  # a fresh stream per event and language
    assert recorded["untouched"] == [True] * (SCORED_EVENTS * 2)
    for run in (ft_run, ou_run):
        cost = json.loads((run / "cost.json").read_text())["own"]
        assert load_checkpoint(run).meta["step"] == cost["optimizer_steps"] == 4 and cost["language_batches"] == 8


def test_finetune_cost_counts_scoring_batches(recorded: dict[str, Any]):
    """(e) score_batches = events x languages x K, kept apart from the model's steps and batches."""
    cost = json.loads((recorded["finetune"][0] / "cost.json").read_text())
    assert cost["own"]["score_batches"] == cost["per_run"]["."]["score_batches"] == SCORED_EVENTS * 2 * K
    assert cost["own"]["score_seconds"] > 0 and cost["own"]["attribution_seconds"] == 0
    other = json.loads((recorded["own-updates"][0] / "cost.json").read_text())["own"]
    assert other["score_batches"] == 0 and other["score_seconds"] == 0


def test_finetune_resume_matches_uninterrupted(recorded: dict[str, Any], tiny_runs: dict[str, Path], capsys):
    """(c) Stopped after the first adaptation and resumed: the same weights, masks and history as the
    uninterrupted run (the scoring needs no state of its own); one console line per scoring event."""
    full, _ = recorded["finetune"]
    part = recorded["root"] / "finetune-part"
    assert main(command(tiny_runs, part, "finetune", "--no-progress", "--stop-after-events", "2")) == 0
    assert not (part / "cost.json").exists()
    torch.manual_seed(1234)  # a new process would start from another RNG state
    capsys.readouterr()
    assert main(command(tiny_runs, part, "finetune")) == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if "--scores finetune" in l]
    assert len(lines) == 2 and "event 2 (prune, step 2)" in lines[0] and f"2 languages x {K} steps" in lines[0]
    assert_same_run(full, part, steps=4)
    assert json.loads((part / "cost.json").read_text())["own"]["score_batches"] == SCORED_EVENTS * 2 * K


@pytest.mark.parametrize("args, flag", [(["--scores", "finetune", "--score-steps", "0"], "--score-steps"),
                                        (["--method", "adaptive", "--scores", "finetune"], "--scores")])
def test_finetune_options_are_checked(tiny_runs: dict[str, Path], tmp_path: Path, capsys, args: list[str], flag: str):
    """(d) K < 1 and finetune scores for a monolingual method are refused before anything is written."""
    out = tmp_path / "refused"
    argv = ["prune", "--method", "dynamic", "--from", str(tiny_runs["dense"]), "--masks-from", str(tiny_runs["lap"]),
            "--init-sparsity", "0.35", "--out", str(out), "--device", "cpu", "--no-progress", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert flag in err and ("at least one" in err if flag == "--score-steps" else "dynamic only" in err)
    assert not out.exists()
