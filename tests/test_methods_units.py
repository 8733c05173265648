"""Pure pieces of the pruning recipes: candidate sets, sparsity levels, schedules, option checks."""

from __future__ import annotations

import pytest
import torch

from asr_pathways.errors import InputError
from asr_pathways.methods.config import PruneConfig
from asr_pathways.methods.phase import candidate_sets
from asr_pathways.methods.records import find_level_mask, level_name
from asr_pathways.methods.schedule import build_schedule, sparsity_levels
from asr_pathways.sparsity.masks import MaskSet


def _ms(row: list[int]) -> MaskSet:
    return MaskSet({"w": torch.tensor(row, dtype=torch.bool)})


def test_candidate_set_formula_own_plus_residual():
    # 3 languages over 6 weights; C_l = m_l ∪ (1 − ∪_{k≠l} m_k)
    masks = {"en": _ms([1, 1, 0, 0, 0, 0]), "fr": _ms([0, 1, 1, 0, 0, 0]), "it": _ms([0, 0, 0, 1, 0, 0])}
    c = candidate_sets(masks, "own+residual")
    assert c["en"]["w"].int().tolist() == [1, 1, 0, 0, 1, 1]  # fr's 2 and it's 3 are taken; 4, 5 are residual
    assert c["fr"]["w"].int().tolist() == [0, 1, 1, 0, 1, 1]  # en's 0 is not a candidate, shared 1 is (own)
    assert c["it"]["w"].int().tolist() == [0, 0, 0, 1, 1, 1]
    for lang, m in masks.items():  # brute force over every weight
        others = [masks[k]["w"] for k in masks if k != lang]
        for i in range(6):
            expected = bool(m["w"][i]) or not any(bool(o[i]) for o in others)
            assert bool(c[lang]["w"][i]) == expected
    own = candidate_sets(masks, "own")
    assert all(own[l] == masks[l] for l in masks)
    assert all(v is None for v in candidate_sets(masks, "all").values())  # None = every weight of P
    single = candidate_sets({"en": _ms([1, 0, 0])}, "own+residual")
    assert single["en"]["w"].all()  # one pathway: own+residual is all of P
    with pytest.raises(InputError, match="candidate"):
        candidate_sets(masks, "mine")


def test_sparsity_levels_absolute_and_fraction():
    assert sparsity_levels(0.0, 0.7, 0.1) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert sparsity_levels(0.5, 0.7, 0.1) == [0.5, 0.6, 0.7]
    assert sparsity_levels(0.7, 0.7, 0.1) == [0.7]
    assert sparsity_levels(0.0, 0.7, 0.3) == [0.0, 0.3, 0.6, 0.7]  # the last step is capped at the target
    frac = sparsity_levels(0.0, 0.5, 0.2, "fraction")
    assert frac[:3] == [0.0, 0.2, pytest.approx(0.36)] and frac[-1] == 0.5
    assert all(b > a for a, b in zip(frac, frac[1:]))


def test_schedule_imp_and_adaptive():
    imp = build_schedule([0.0, 0.1, 0.2], 5)
    assert [(e.step, e.kind, e.sparsity) for e in imp.events] == [(0, "init", 0.0), (5, "prune", 0.1), (10, "prune", 0.2)]
    assert imp.total_steps == 15  # two pruning rounds and the final round
    lth = build_schedule([0.0, 0.1], 5, snapshot_step=2)
    assert [(e.step, e.kind) for e in lth.events] == [(0, "init"), (2, "snapshot"), (5, "prune")]
    ad = build_schedule([0.5, 0.6], 10, [3, 7])
    assert [(e.step, e.kind, e.sparsity) for e in ad.events] == [
        (0, "init", 0.5), (3, "adapt", 0.5), (7, "adapt", 0.5), (10, "prune", 0.6), (13, "adapt", 0.6), (17, "adapt", 0.6)]
    assert ad.total_steps == 20  # the final round adapts but does not prune
    zt = build_schedule([0.0, 0.5], 4, finalize=True)
    assert zt.events[-1].kind == "finalize" and zt.events[-1].step == 8
    assert [e.index for e in ad.events] == list(range(len(ad.events)))


def _cfg(**kw) -> PruneConfig:
    base = dict(method="imp", source="runs/dense", out="runs/x", languages=["en", "fr"])
    return PruneConfig(**(base | kw))


def test_options_are_checked():
    _cfg().validate()
    _cfg(method="adaptive", masks_from="runs/lth", pruned_weights="zero_trainable").validate()  # one mask per phase
    _cfg(method="lap", pruned_weights="zero_trainable").validate()  # one shared mask
    with pytest.raises(InputError, match="single mask"):
        _cfg(method="dynamic", masks_from="runs/lth", pruned_weights="zero_trainable").validate()
    with pytest.raises(InputError, match="fixed masks"):
        _cfg(method="pathways", masks_from="runs/lth", pruned_weights="zero_trainable").validate()
    with pytest.raises(InputError, match="masks-from"):
        _cfg(method="dynamic").validate()
    with pytest.raises(InputError, match="adapt-at"):
        _cfg(method="adaptive", masks_from="r", round_steps=4, adapt_at=[4]).validate()
    with pytest.raises(InputError, match="init-sparsity"):
        _cfg(method="adaptive", masks_from="r", init_sparsity=0.8, target=0.7).validate()
    with pytest.raises(InputError, match="block"):
        _cfg(block="8by1").validate()
    assert _cfg(method="dynamic", masks_from="r").start_sparsity() == 0.7
    assert _cfg(method="adaptive", masks_from="r", round_steps=10).adaptation_steps() == [5]
    assert _cfg(stop_after_events=3, device="cuda").defining() == _cfg().defining()


def test_level_files(tmp_path):
    assert level_name(0.5) == "sparsity_0.50" and level_name(0.271) == "sparsity_0.2710"
    m = _ms([1, 0])
    m.save(tmp_path / "masks" / "shared" / "sparsity_0.50.safetensors")
    assert find_level_mask(tmp_path, "fr", 0.5).parent.name == "shared"  # a LAP mask serves every language
    with pytest.raises(InputError, match="shared:0.5"):
        find_level_mask(tmp_path, "fr", 0.7)


def test_phase_learning_rate_options():
    from asr_pathways.methods.lr import phase_train_config

    base = {"lr": 1.0, "warmup_steps": 50, "steps": 1000, "seed": 3, "max_duration": 20.0}
    tc, lr = phase_train_config(base, _cfg(lr=0.5, warmup_steps=2, lr_schedule="constant", lr_schedule_scope="phase", round_steps=10),
                                total_steps=30)
    assert tc.steps == 30 and tc.seed == 0 and tc.languages_per_step == 1
    assert lr(0) == pytest.approx(0.25) and lr(25) == pytest.approx(0.5)  # warm-up once, then constant
    _, per_round = phase_train_config(base, _cfg(lr_schedule="linear", warmup_steps=0, round_steps=10, lr_factor=0.5), 30, prune_steps=[10, 20])
    assert [per_round(s) for s in (0, 10, 20)] == [pytest.approx(0.5)] * 3  # restarts at every prune
    assert per_round(9) < per_round(10)
    assert phase_train_config(base, _cfg(), 30)[0].lr == pytest.approx(4.0)  # default peak: the source's × --lr-factor 4
    multi, _ = phase_train_config(base, _cfg(method="lap", languages_per_step=0, max_duration=4.0), 10)
    assert multi.languages_per_step == 0 and multi.max_duration == 4.0 and multi.language_loss == "equal"
    assert phase_train_config(base, _cfg(method="lap", language_loss="weighted"), 10)[0].language_loss == "weighted"
