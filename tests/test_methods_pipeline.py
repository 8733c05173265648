"""The pruning recipes end to end on the tiny preset and the tiny corpus (``tiny_corpus`` in conftest).

Kept short on purpose (T = 2, a few steps, small batches): the checks are about masks, weights and
bookkeeping, not about WER.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from asr_pathways.checkpoint import load_checkpoint
from asr_pathways.cli import main
from asr_pathways.sparsity.masks import MaskSet

FAST = ["--no-progress", "--device", "cpu", "--max-duration", "4", "--round-steps", "2"]


def prune(*args: str) -> None:
    assert main(["prune", "--eval-split", "test", *args, *FAST]) == 0  # test: these tests read wer_test.*


def level(run: Path, name: str, s: str) -> MaskSet:
    return MaskSet.load(run / "masks" / name / f"sparsity_{s}.safetensors")


def history(run: Path) -> list[dict]:
    return [json.loads(l) for l in (run / "history.jsonl").read_text().splitlines()]


TIMING_KEYS = {"time", "wall_seconds", "train_seconds", "mask_seconds"}


def assert_same_run(full: Path, part: Path, steps: int, languages: tuple[str, ...] = ("en", "fr")) -> list[dict]:
    """A resumed run equals the uninterrupted one: step, weights, masks and history (timings aside).

    Returns the uninterrupted run's history rows without their timings.
    """
    a, b = load_checkpoint(full), load_checkpoint(part)
    assert a.meta["step"] == b.meta["step"] == steps
    for k, v in a.model.items():
        assert torch.equal(v, b.model[k]), k
    for lang in languages:
        assert MaskSet(a.masks[lang]) == MaskSet(b.masks[lang])
    ha = [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history(full)]
    hb = [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history(part)]
    assert ha == hb  # no duplicated or missing history rows
    return ha


@pytest.fixture(scope="module")
def dense(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("methods") / "dense"
    assert main(["train", "--corpus", str(tiny_corpus), "--out", str(out), "--preset", "tiny", "--steps", "2",
                 "--max-duration", "4", "--eval-split", "none", "--device", "cpu"]) == 0
    return out


LTH_CMD = ["--method", "lth", "--target", "0.7", "--prune-step", "0.35", "--eval-max-utts", "2"]


@pytest.fixture(scope="module")
def lth_interrupted(dense: Path) -> tuple[Path, list]:
    """LTH to 70% in two prunes (0 → 0.35 → 0.7), stopped right after each prune of en, then finished.

    Returns the run and en's checkpoint as it was right after each of the two prunes.
    """
    out = dense.parent / "lth"
    cmd = [*LTH_CMD, "--from", str(dense), "--out", str(out)]
    seen = []
    prune(*cmd, "--stop-after-events", "3")  # en: init, snapshot, prune to 0.35
    seen.append(load_checkpoint(out / "lang" / "en", require_complete=False))  # an interrupted run: still in progress
    prune(*cmd, "--stop-after-events", "1")  # resumed: the prune to 0.7
    seen.append(load_checkpoint(out / "lang" / "en", require_complete=False))  # an interrupted run: still in progress
    prune(*cmd)  # resumed: final round of en, then fr, evaluation
    return out, seen


@pytest.fixture(scope="module")
def lth(lth_interrupted: tuple[Path, list]) -> Path:
    return lth_interrupted[0]


def test_lth_rewinds_after_each_prune(lth_interrupted: tuple[Path, list], dense: Path):
    run, seen = lth_interrupted
    src = load_checkpoint(dense).model
    for ck, s, events in zip(seen, ("0.35", "0.70"), (3, 4)):
        assert ck.meta["recipe"]["events_done"] == events
        mask = ck.masks["en"]
        assert MaskSet(mask) == level(run, "en", s)
        for name, w in ck.model.items():
            if name in mask:
                assert torch.equal(w[mask[name]], src[name][mask[name]]), name  # kept weights = θ_ML
        assert not ck.optimizer  # optimizer state reset: no AdamW moments yet
    assert (run / "cost.json").is_file() and (run / "wer_test.md").is_file()


def test_imp_lth_masks_nested_and_exact(lth: Path):
    for lang in ("en", "fr"):
        m0, m1, m2 = (level(lth, lang, s) for s in ("0.00", "0.35", "0.70"))
        assert m0.sparsity() == 0.0 and m2.issubset(m1) and m1.issubset(m0)  # nested round after round
        final = MaskSet.load(lth / "masks" / f"{lang}.safetensors")
        assert final == m2
        for s, m in ((0.35, m1), (0.7, m2)):
            for name, t in m.items():  # every matrix: the closest whole number of 8x1 blocks
                zeros = int((~t).sum())
                assert abs(zeros - s * t.numel()) <= 4, (name, zeros, s * t.numel())
                assert zeros % 8 == 0 or t.shape[0] % 8 != 0
        sub = lth / "lang" / lang
        from asr_pathways.runs import load_run

        lr = load_run(sub)
        assert list(lr.masks) == [lang] and lr.config.languages == [lang]
    cost = json.loads((lth / "cost.json").read_text())
    assert cost["own"]["language_specific_pruning_rounds"] == 4  # 2 prunes x 2 languages
    assert cost["own"]["optimizer_steps"] == 12  # 3 rounds of T = 2 per language
    wer = json.loads((lth / "wer_test.json").read_text())
    assert set(wer["languages"]) == {"en", "fr"} and "average" in wer
    prunes = [r for r in history(lth) if r["kind"] == "prune"]
    assert len(prunes) == 4 and all(r["revived"] == 0 for r in prunes)


def test_imp_zero_trainable_ends_exactly_sparse(dense: Path):
    out = dense.parent / "imp-zero"
    prune("--method", "imp", "--from", str(dense), "--out", str(out), "--languages", "en", "--target", "0.35",
          "--prune-step", "0.35", "--pruned-weights", "zero_trainable", "--eval-split", "none")
    ck = load_checkpoint(out / "lang" / "en")
    mask = ck.masks["en"]
    assert abs(MaskSet(mask).sparsity() - 0.35) < 0.01
    for name, keep in mask.items():
        assert torch.count_nonzero(ck.model[name][~keep]) == 0, name  # the final model is exactly sparse
    kinds = [r["kind"] for r in history(out)]
    assert kinds == ["init", "prune", "finalize"]


@pytest.fixture(scope="module")
def lap(dense: Path) -> Path:
    """LAP (IMP base) to 35%: one shared mask at 0 and 0.35."""
    out = dense.parent / "lap"
    prune("--method", "lap", "--from", str(dense), "--out", str(out), "--target", "0.35", "--prune-step", "0.35",
          "--lap-base", "imp", "--eval-max-utts", "1")
    return out


def test_lap_shared_mask(lap: Path):
    out = lap
    shared = MaskSet.load(out / "masks" / "shared.safetensors")
    assert MaskSet.load(out / "masks" / "en.safetensors") == shared == MaskSet.load(out / "masks" / "fr.safetensors")
    assert abs(shared.sparsity() - 0.35) < 0.01
    ck = load_checkpoint(out)
    assert list(ck.masks) == ["shared"]
    cost = json.loads((out / "cost.json").read_text())
    assert cost["own"]["language_specific_pruning_rounds"] == 0 and cost["own"]["multilingual_prune_events"] == 1
    assert cost["own"]["language_batches"] == 2 * cost["own"]["optimizer_steps"] == 8  # one batch per language per step
    assert json.loads((out / "wer_test.json").read_text())["languages"].keys() == {"en", "fr"}


def test_pathways_update_is_sum_of_masked_gradients(lth: Path, dense: Path):
    """One optimizer step: grads = Σ_l m_l ⊙ ∇L_l(θ ⊙ m_l); nothing outside ∪ m_l moves (Adam state included)."""
    from asr_pathways.methods import pathways
    from asr_pathways.methods.config import PruneConfig
    from asr_pathways.methods.job import PruneJob

    cfg = PruneConfig(method="pathways", source=str(dense), out=str(dense.parent / "pw-lib"), masks_from=str(lth),
                      init_sparsity=0.35, target=0.35, steps=1, max_duration=4.0, progress=False, device="cpu", eval_split="none")
    job = PruneJob(cfg)
    langs = job.cfg.languages
    ph = job.phase("", langs, langs, lambda l: l, pathways.schedule(job.cfg))
    init = next(ph.pending())
    ph.apply(init, job.initial_masks(ph, init.sparsity))  # what the recipe does at its init event
    tr = ph.trainer
    tr.spec_augment = None
    tr.cfg.grad_clip = 0.0
    masks = ph.masks
    assert masks["en"] != masks["fr"]
    union = masks["en"] | masks["fr"]
    assert union.sparsity() > 0
    # the batches the step will draw, computed by hand through θ ⊙ m_l
    expected = {n: torch.zeros_like(p) for n, p in ph.model.named_parameters()}
    for lang in tr.plan(tr.step):
        st = copy.deepcopy(tr.streams[lang].state_dict())
        batch = tr.streams[lang].next()
        tr.streams[lang].load_state_dict(st)
        m = copy.deepcopy(ph.model)
        m.train()
        with torch.no_grad():
            for n, p in m.named_parameters():
                if n in masks[lang]:
                    p.mul_(masks[lang][n])
        m(batch.features, batch.feature_lens, batch.tokens, batch.token_lens)["loss"].backward()
        for n, p in m.named_parameters():
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            expected[n] += g * masks[lang][n] if n in masks[lang] else g
    before = {n: p.detach().clone() for n, p in ph.model.named_parameters()}
    tr.train_step()
    params = dict(ph.model.named_parameters())
    for n, p in params.items():
        got = p.grad if p.grad is not None else torch.zeros_like(p)
        assert torch.allclose(got, expected[n], rtol=1e-4, atol=1e-6), n
    for n, keep in union.items():
        p = params[n]
        assert torch.equal(p.detach()[~keep], before[n][~keep]), n
        st = tr.optimizer.state[p]
        assert torch.count_nonzero(st["exp_avg"][~keep]) == 0 and torch.count_nonzero(st["exp_avg_sq"][~keep]) == 0
        assert not torch.equal(p.detach()[keep], before[n][keep])


def test_pathways_and_adaptive_cli(lth: Path, dense: Path):
    pw = dense.parent / "pathways"
    prune("--method", "pathways", "--from", str(dense), "--out", str(pw), "--masks-from", str(lth), "--target", "0.7",
          "--steps", "2", "--eval-max-utts", "1")
    ck = load_checkpoint(pw)
    assert set(ck.masks) == {"en", "fr"}
    for lang in ("en", "fr"):
        assert MaskSet(ck.masks[lang]) == level(lth, lang, "0.70")  # fixed masks
    cost = json.loads((pw / "cost.json").read_text())
    # upstream: LTH steps up to the prune that made each 70% mask (4 per language; not the final round)
    assert cost["upstream"]["language_specific_pruning_rounds"] == 4 and cost["total"]["optimizer_steps"] == 8 + 2
    assert (pw / "wer_test.md").is_file()

    ad = dense.parent / "adaptive"
    prune("--method", "adaptive", "--from", str(dense), "--out", str(ad), "--masks-from", str(lth), "--languages", "fr",
          "--init-sparsity", "0.35", "--target", "0.7", "--prune-step", "0.35", "--adapt-at", "1", "--eval-split", "none")
    rows = history(ad)
    assert [r["kind"] for r in rows] == ["init", "adapt", "prune", "adapt"]
    assert rows[1]["revived"] == rows[1]["dropped"]  # same sparsity, weights swapped
    final = MaskSet.load(ad / "masks" / "fr.safetensors")
    assert abs(final.sparsity() - 0.7) < 0.01
    cost = json.loads((ad / "cost.json").read_text())
    # upstream: LTH rounds of fr up to 0.35 (1), own: 1 prune
    assert cost["upstream"]["language_specific_pruning_rounds"] == 1 and cost["total"]["language_specific_pruning_rounds"] == 2


@pytest.fixture(scope="module")
def random_masks(dense: Path) -> Path:
    """A fake prune run holding random (not magnitude-based) 50% block masks for en and fr."""
    from asr_pathways.runs import load_run
    from asr_pathways.sparsity.blocks import select_masks
    from asr_pathways.asr.prunable import prunable_parameters

    params = {n: p.detach() for n, p in prunable_parameters(load_run(dense).model).items()}
    run = dense.parent / "random-masks"
    g = torch.Generator().manual_seed(0)
    for lang in ("en", "fr"):
        scores = {n: torch.rand(p.shape, generator=g) for n, p in params.items()}
        select_masks(scores, 0.5, block="8x1").save(run / "masks" / lang / "sparsity_0.50.safetensors")
    return run


@pytest.mark.parametrize("candidates", ["own+residual", "all", "own"])
def test_adaptation_revives_by_candidate_set(dense: Path, random_masks: Path, candidates: str):
    init = {l: level(random_masks, l, "0.50") for l in ("en", "fr")}
    out = dense.parent / f"dyn-{candidates.replace('+', '-')}"
    prune("--method", "dynamic", "--from", str(dense), "--out", str(out), "--masks-from", str(random_masks),
          "--init-sparsity", "0.5", "--target", "0.5", "--adapt-at", "1", "--candidates", candidates,
          "--eval-split", "none", "--stop-after-events", "2")  # init, one adaptation after one step
    adapt = {r["language"]: r for r in history(out) if r["kind"] == "adapt"}
    assert set(adapt) == {"en", "fr"}
    after = {l: level(out, l, "0.50") for l in ("en", "fr")}
    if candidates == "own":
        assert all(r["revived"] == 0 for r in adapt.values())
        assert after["en"] == init["en"] and after["fr"] == init["fr"]
    else:
        assert all(r["revived"] > 0 for r in adapt.values())
    if candidates == "own+residual":  # revived weights come from the residual, never from the other language
        for l, k in (("en", "fr"), ("fr", "en")):
            revived = after[l] - init[l]
            assert revived.kept() == adapt[l]["revived"] > 0 and (revived & init[k]).kept() == 0


def test_dynamic_resume_matches_uninterrupted(lth: Path, dense: Path):
    # default --scores own-updates: the accumulators are reset at each event, checkpointed beside it
    cmd = ["--method", "dynamic", "--from", str(dense), "--masks-from", str(lth), "--init-sparsity", "0.35", "--target", "0.7",
           "--prune-step", "0.35", "--adapt-at", "1", "--eval-split", "none"]
    full, part = dense.parent / "dyn-full", dense.parent / "dyn-part"
    prune(*cmd, "--out", str(full))
    prune(*cmd, "--out", str(part), "--stop-after-events", "2")  # init, adapt at step 1; then "interrupted"
    assert not (part / "cost.json").exists()
    torch.manual_seed(1234)  # a new process would start from another RNG state
    prune(*cmd, "--out", str(part))
    ha = assert_same_run(full, part, steps=4)
    assert [r["kind"] for r in ha[::2]] == ["init", "adapt", "prune", "adapt"]
    summary = json.loads((full / "masks_summary.json").read_text())
    assert set(summary["sparsity"]) == {"en", "fr"} and "en|fr" in summary["iou"]
    assert math.isclose(summary["sparsity"]["en"], 0.7, abs_tol=0.01)


@pytest.mark.parametrize("scores", ["own-updates", "shared"])
def test_dynamic_from_lap_masks_diverge_only_with_own_updates(dense: Path, lap: Path, scores: str):
    """One LAP mask copied to every language: own-updates re-prunes each language with its own
    share of the updates (masks differ after the first adaptation); shared scores are identical for
    every language, so the masks stay identical (IoU 1.0) — the limitation own-updates removes."""
    out = dense.parent / f"dyn-lap-{scores}"
    prune("--method", "dynamic", "--from", str(dense), "--out", str(out), "--masks-from", str(lap), "--init-sparsity", "0.35",
          "--target", "0.35", "--adapt-at", "1", "--scores", scores, "--eval-split", "none", "--stop-after-events", "2")
    rows = history(out)
    assert [r["kind"] for r in rows] == ["init", "init", "adapt", "adapt"] and {r["scores"] for r in rows} == {scores}
    assert rows[0]["iou"]["en|fr"] == 1.0  # the same starting mask
    en, fr = level(out, "en", "0.35"), level(out, "fr", "0.35")
    assert abs(en.sparsity() - 0.35) < 0.01 and abs(fr.sparsity() - 0.35) < 0.01
    if scores == "own-updates":
        assert rows[2]["iou"]["en|fr"] < 1.0 and en != fr
        assert all(r["revived"] > 0 for r in rows[2:])
        assert json.loads((out / "prune.json").read_text())["config"]["scores"] == "own-updates"
    else:
        assert rows[2]["iou"]["en|fr"] == 1.0 and en == fr


def test_dynamic_from_lap_own_updates_resume_is_exact(dense: Path, lap: Path, monkeypatch: pytest.MonkeyPatch):
    """Interrupted between events (accumulators non-zero, restored from the side file): the same
    masks, weights and history as an uninterrupted run."""
    from asr_pathways.train import Trainer

    cmd = ["prune", "--method", "dynamic", "--from", str(dense), "--masks-from", str(lap), "--init-sparsity", "0.35",
           "--target", "0.7", "--prune-step", "0.35", "--round-steps", "4", "--adapt-at", "2", "--eval-split", "none",
           "--no-progress", "--device", "cpu", "--max-duration", "4"]
    full, part = dense.parent / "dyn-lap-full", dense.parent / "dyn-lap-part"
    assert main([*cmd, "--out", str(full)]) == 0
    real_step = Trainer.train_step
    interrupted = []

    def step_then_interrupt(self):
        if self.step == 3 and not interrupted:  # after the checkpoint at step 3 (between adapt@2 and prune@4)
            interrupted.append(True)
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", step_then_interrupt)
    assert main([*cmd, "--out", str(part), "--checkpoint-every", "1"]) == 130
    assert interrupted and not (part / "cost.json").exists()
    ck = load_checkpoint(part, require_complete=False)
    assert ck.meta["step"] == 3 and ck.meta["recipe"]["events_done"] == 2
    # the accumulators ride in the checkpoint itself (the attribution hook's state)
    assert torch.count_nonzero(ck.extra["attribution/delta/en"]) > 0 and torch.count_nonzero(ck.extra["attribution/delta/fr"]) > 0
    assert ck.meta["hooks"]["attribution"]["meta"]["pathways"] == ["en", "fr"]
    torch.manual_seed(1234)
    assert main([*cmd, "--out", str(part)]) == 0
    ha = assert_same_run(full, part, steps=8)
    final = load_checkpoint(full)
    assert MaskSet(final.masks["en"]) != MaskSet(final.masks["fr"])
    assert [r["kind"] for r in ha[::2]] == ["init", "adapt", "prune", "adapt"]
    assert ha[2]["iou"]["en|fr"] < 1.0
    cost = json.loads((full / "cost.json").read_text())
    assert cost["own"]["attribution_seconds"] > 0


def test_a_refused_prune_leaves_nothing_and_the_corrected_command_runs(lth: Path, dense: Path, capsys):
    """Every check comes before the first write: a command refused at its first event (no mask at
    that level) leaves no folder, so the corrected command is not taken for "another run"."""
    out = dense.parent / "refused"
    cmd = ["prune", "--method", "pathways", "--from", str(dense), "--out", str(out), "--masks-from", str(lth), "--steps", "1",
           "--eval-split", "none", *FAST]
    assert main([*cmd, "--init-sparsity", "0.5", "--target", "0.7"]) == 2
    assert "no mask for 'en' at sparsity 0.5" in capsys.readouterr().err
    assert not out.exists()
    assert main([*cmd, "--init-sparsity", "0.35", "--target", "0.35"]) == 0
    assert json.loads((out / "run.json").read_text())["kind"] == "prune" and (out / "cost.json").is_file()
