"""The learning-rate schedule and optimizer state of the pruning phases (docs/method.md, "Choices").

Every phase is cut into spans (one per round between prunes, or one for the phase); each span warms
up linearly to the peak and decays to ``final_lr_ratio × peak`` at its last step. The peak defaults
to the dense run's × ``--lr-factor``; AdamW moments are fresh unless ``--optimizer-state carry``.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from asr_pathways.checkpoint import load_checkpoint
from asr_pathways.cli import build_parser, main
from asr_pathways.errors import InputError
from asr_pathways.methods import imp
from asr_pathways.methods.cli import command_line, config_from_args
from asr_pathways.methods.config import PruneConfig
from asr_pathways.methods.lr import SpanSchedule, auto_warmup
from asr_pathways.methods.lr import phase_train_config as _phase_train_config
from asr_pathways.methods.phase import SourceRun, carry_optimizer_state

BASE = {"lr": 2e-3, "warmup_steps": 200, "steps": 1500, "final_lr_ratio": 0.05, "max_duration": 16.0, "betas": [0.9, 0.98]}


def _cfg(**kw) -> PruneConfig:
    """A phase config; peak = the source's lr x 0.5 so that the numbers below read easily (not the default factor)."""
    return PruneConfig(**(dict(method="imp", source="runs/dense", out="runs/x", languages=["en"], lr_factor=0.5) | kw))


def phase_train_config(*a, **kw) -> SpanSchedule:
    """The learning-rate function of a phase (its training config: ``_phase_train_config(...)[0]``)."""
    return _phase_train_config(*a, **kw)[1]


def _lrs(tc: SpanSchedule, steps: int | None = None) -> list[float]:
    return [tc.lr_at(s) for s in range(tc.steps if steps is None else steps)]


# ------------------------------------------------------------------------------- the schedule
def test_default_phase_schedule_warms_up_then_decays_to_the_final_ratio():
    tc = phase_train_config(BASE, _cfg(lr_schedule_scope="phase"), total_steps=120)
    peak, lo = 1e-3, 0.05 * 1e-3  # peak: the dense run's × --lr-factor (0.5 here); final: the dense run's ratio
    assert tc.lr == pytest.approx(peak) and tc.schedule == "cosine"
    w = auto_warmup(120, 0.98)
    assert w == 12  # a tenth of the phase
    lrs = _lrs(tc)
    assert lrs[0] == pytest.approx(peak / w)  # warm-up starts low
    assert lrs[:w] == sorted(lrs[:w]) and lrs[w - 1] == pytest.approx(peak)  # ... rises linearly to the peak
    assert lrs[w] == pytest.approx(peak) and max(lrs) == pytest.approx(peak)
    assert all(a >= b for a, b in zip(lrs[w:], lrs[w + 1:]))  # then decays monotonically
    assert lrs[-1] == pytest.approx(lo)  # ... to final_lr_ratio × peak at the last step
    mid = w + (120 - w - 1) / 2  # cosine: half-way at the middle of the decay
    assert tc.lr_at(int(mid)) == pytest.approx(lo + (peak - lo) * 0.5 * (1 + math.cos(math.pi * int(mid - w) / (120 - w - 1))))
    assert tc.spans() == [{"start": 0, "steps": 120, "warmup_steps": 12}]


def test_linear_constant_and_explicit_options():
    lin = phase_train_config(BASE, _cfg(lr=1.0, lr_schedule="linear", warmup_steps=0, final_lr_ratio=0.0, lr_schedule_scope="phase"), 11)
    assert _lrs(lin) == [pytest.approx(1 - k / 10) for k in range(11)]  # no warm-up: the first step at the peak
    const = phase_train_config(BASE, _cfg(lr_factor=1.0, lr_schedule="constant", warmup_steps=0, lr_schedule_scope="phase"), 50)
    assert _lrs(const) == [pytest.approx(2e-3)] * 50  # the former schedule
    w4 = phase_train_config(BASE, _cfg(lr=1.0, warmup_steps=4, lr_schedule="constant", lr_schedule_scope="phase"), 10)
    assert _lrs(w4)[:5] == [pytest.approx(x) for x in (0.25, 0.5, 0.75, 1.0, 1.0)]
    capped = phase_train_config(BASE, _cfg(lr=1.0, warmup_steps=50, final_lr_ratio=0.1, lr_schedule_scope="phase"), 10)
    assert capped.warmup_of(10) == 9 and capped.lr_at(9) == pytest.approx(0.1)  # warm-up leaves a step of decay
    assert phase_train_config({"lr": 1.0}, _cfg(), 10).lr == pytest.approx(0.5)
    default = PruneConfig(method="imp", source="runs/dense", out="runs/x", languages=["en"])
    assert phase_train_config({"lr": 1.0}, default, 10).lr == pytest.approx(default.lr_factor)


def test_auto_warmup():
    assert [auto_warmup(n, 0.98) for n in (1, 2, 10, 11, 30, 120, 1000, 5000)] == [0, 1, 1, 2, 3, 12, 100, 100]
    assert auto_warmup(5000, 0.999) == 500  # 2 / (1 - β2) for another β2
    assert auto_warmup(5, 1.0) == 1


def test_round_scope_restarts_at_every_prune():
    cfg = _cfg(round_steps=30, target=0.7, prune_step=0.25)  # levels 0, 0.25, 0.5, 0.7: 4 rounds of 30
    sched = imp.schedule(cfg)
    prunes = [e.step for e in sched.events if e.kind == "prune"]
    assert prunes == [30, 60, 90] and sched.total_steps == 120
    tc = phase_train_config(BASE, cfg, sched.total_steps, prunes)
    assert tc.span_starts == [0, 30, 60, 90]
    lrs = _lrs(tc)
    one = lrs[:30]
    assert lrs == one * 4  # every round: the same warm-up and decay
    assert one[0] == pytest.approx(1e-3 / 3) and one[2] == pytest.approx(1e-3) and one[-1] == pytest.approx(0.05e-3)
    assert [s["warmup_steps"] for s in tc.spans()] == [3] * 4
    whole = phase_train_config(BASE, _cfg(round_steps=30, target=0.7, prune_step=0.25, lr_schedule_scope="phase"), 120, prunes)
    assert whole.span_starts == [0] and whole.lr_at(30) < whole.lr_at(29)  # no restart at the prunes
    assert whole.lr_at(119) == pytest.approx(0.05e-3) and whole.lr_at(12) == pytest.approx(1e-3)


def test_round_scope_without_prunes_is_one_span():
    # ASR Pathways: --steps 100 with --round-steps 30: no prune, so the phase is one span
    tc = phase_train_config(BASE, _cfg(method="pathways", masks_from="r", round_steps=30), 100, [])
    assert tc.spans() == [{"start": 0, "steps": 100, "warmup_steps": 10}]
    assert tc.lr_at(99) == pytest.approx(0.05e-3) and tc.lr_at(30) > tc.lr_at(60)
    # adaptive from the middle level: rounds of T with adaptations inside; the schedule restarts only at prunes
    from asr_pathways.methods.schedule import build_schedule

    s = build_schedule([0.5, 0.7], 20, [5, 15])
    tc = phase_train_config(BASE, _cfg(method="adaptive", masks_from="r", round_steps=20), s.total_steps,
                            [e.step for e in s.events if e.kind == "prune"])
    assert tc.span_starts == [0, 20]


def test_resumed_phase_replays_the_same_sequence():
    """The rate is a function of the step: a config rebuilt as a resumed process does gives the
    same rates from any step on, whatever steps ran before."""
    cfg = _cfg(round_steps=7, target=0.5, prune_step=0.25)
    sched = imp.schedule(cfg)
    prunes = [e.step for e in sched.events if e.kind == "prune"]
    first = phase_train_config(BASE, cfg, sched.total_steps, prunes)
    full = _lrs(first)
    for k in (3, 7, 11):
        again = phase_train_config(BASE, cfg, sched.total_steps, prunes)
        assert [again.lr_at(s) for s in range(k, sched.total_steps)] == full[k:]


# ------------------------------------------------------------------------------ options
def test_options_are_checked():
    _cfg().validate()
    for kw, flag in ((dict(lr_schedule="step"), "--lr-schedule"), (dict(lr_schedule_scope="epoch"), "--lr-schedule-scope"),
                     (dict(lr_factor=0.0), "--lr-factor"), (dict(lr=-1.0), "--lr"), (dict(warmup_steps=-1), "--warmup-steps"),
                     (dict(final_lr_ratio=1.5), "--final-lr-ratio"), (dict(optimizer_state="keep"), "--optimizer-state")):
        with pytest.raises(InputError) as e:
            _cfg(**kw).validate()
        assert e.value.field == flag


def _parse(argv: list[str]) -> PruneConfig:
    args = build_parser("prune").parse_args(argv)
    return config_from_args(args)


def test_command_line_round_trips_the_schedule_options():
    argv = ["prune", "--method", "lth", "--from", "runs/dense", "--out", "runs/x", "--languages", "en,fr",
            "--lr-factor", "0.25", "--lr-schedule", "linear", "--lr-schedule-scope", "phase", "--warmup-steps", "7",
            "--final-lr-ratio", "0.1", "--optimizer-state", "carry"]
    cfg = _parse(argv)
    assert (cfg.lr_factor, cfg.lr_schedule, cfg.lr_schedule_scope, cfg.warmup_steps, cfg.final_lr_ratio, cfg.optimizer_state) == (
        0.25, "linear", "phase", 7, 0.1, "carry")
    rebuilt = command_line(cfg)  # the command recorded in prune.json
    for flag in ("--lr-factor 0.25", "--lr-schedule linear", "--lr-schedule-scope phase", "--warmup-steps 7",
                 "--final-lr-ratio 0.1", "--optimizer-state carry"):
        assert flag in rebuilt
    again = _parse(shlex.split(rebuilt)[1:])
    assert {k: v for k, v in again.__dict__.items() if k != "command"} == {k: v for k, v in cfg.__dict__.items() if k != "command"}
    defaults = _parse(argv[:9])
    assert (defaults.lr, defaults.lr_factor, defaults.lr_schedule, defaults.lr_schedule_scope, defaults.warmup_steps,
            defaults.final_lr_ratio, defaults.optimizer_state) == (None, 4.0, "cosine", "round", None, None, "fresh")
    assert "--lr" not in command_line(defaults)  # defaults are not spelled out
    assert _parse(shlex.split(command_line(defaults))[1:]).defining() == defaults.defining()


def test_carry_needs_optimizer_state():
    src = SourceRun(Path("runs/dense"), None, {}, {})
    with pytest.raises(InputError, match="no optimizer state"):
        carry_optimizer_state(SimpleNamespace(), src)


def test_carried_moments_stay_frozen_outside_the_mask():
    """Under carry, a coordinate outside every active mask keeps the dense run's moments (the masked
    Adam step of the pathway engine), and a kept one updates them."""
    from asr_pathways.checkpoint import Checkpoint, _optimizer_to_tensors, restore_optimizer
    from asr_pathways.sparsity.masks import MaskSet
    from asr_pathways.sparsity.pathways import PathwayModel

    torch.manual_seed(0)
    dense = torch.nn.Linear(6, 4)
    opt_dense = torch.optim.AdamW(dense.parameters(), lr=1e-2, betas=(0.9, 0.98))
    for _ in range(3):
        dense(torch.randn(5, 6)).pow(2).sum().backward()
        opt_dense.step()
        opt_dense.zero_grad()
    tensors, meta = _optimizer_to_tensors(dense, opt_dense)
    ck = Checkpoint(model={}, meta={"optimizer": meta}, optimizer={})
    for key, t in tensors.items():
        pname, _, skey = key.rpartition("/")
        ck.optimizer.setdefault(pname.removeprefix("opt/"), {})[skey] = t
    model = torch.nn.Linear(6, 4)
    model.load_state_dict(dense.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    restore_optimizer(model, opt, ck)
    keep = torch.rand(4, 6) < 0.5
    pm = PathwayModel(model, ["weight"], masks={"en": MaskSet({"weight": keep})})
    m0 = opt.state[model.weight]["exp_avg"].clone()
    assert torch.equal(m0, opt_dense.state[dense.weight]["exp_avg"])
    with pm.pathway("en"):
        model(torch.randn(5, 6)).pow(2).sum().backward()
    pm.step(opt, active=["en"])
    m1 = opt.state[model.weight]["exp_avg"]
    assert torch.equal(m1[~keep], m0[~keep]) and not torch.equal(m1[keep], m0[keep])


# ------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def dense(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("schedule") / "dense"
    assert main(["train", "--corpus", str(tiny_corpus), "--out", str(out), "--preset", "tiny", "--steps", "2",
                 "--max-duration", "4", "--eval-split", "none", "--device", "cpu"]) == 0
    return out


FAST = ["--no-progress", "--device", "cpu", "--max-duration", "4", "--eval-split", "none", "--languages", "en"]


@pytest.fixture
def lr_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """(step, learning rate) of every optimizer step taken."""
    from asr_pathways.train import Trainer

    log: list[tuple[int, float]] = []
    orig = Trainer.train_step

    def step(self):
        out = orig(self)
        log.append((self.step - 1, self.optimizer.param_groups[0]["lr"]))
        return out

    monkeypatch.setattr(Trainer, "train_step", step)
    return log


def test_interrupted_phase_runs_the_same_rates(dense: Path, lr_log: list):
    cmd = ["prune", "--method", "imp", "--from", str(dense), "--target", "0.5", "--prune-step", "0.25", "--round-steps", "4", *FAST]
    assert main([*cmd, "--out", str(dense.parent / "full")]) == 0
    full = list(lr_log)
    lr_log.clear()
    part = dense.parent / "part"
    assert main([*cmd, "--out", str(part), "--stop-after-events", "2"]) == 0  # init, prune to 0.25 at step 4
    assert main([*cmd, "--out", str(part)]) == 0
    assert [s for s, _ in full] == list(range(12))
    assert lr_log == full  # each step once, at the same rate
    peak = PruneConfig.lr_factor * float(yaml.safe_load((dense / "config.yaml").read_text())["train"]["lr"])
    rates = [lr for _, lr in full]
    assert rates[:4] == rates[4:8] == rates[8:]  # round scope: 3 rounds of 4 steps
    # rounds of 4 steps: 1 warm-up step (a tenth, rounded up) reaching the peak, then 3 of decay to 5% of it
    assert rates[0] == rates[1] == pytest.approx(peak) and rates[1] > rates[2] > rates[3] == pytest.approx(0.05 * peak)
    rc = yaml.safe_load((part / "lang" / "en" / "config.yaml").read_text())
    info = rc["extra"]["lr_schedule"]
    assert info["scope"] == "round" and info["optimizer_state"] == "fresh" and info["peak_lr"] == pytest.approx(peak)
    assert [s["start"] for s in info["spans"]] == [0, 4, 8]
    assert rc["train"]["lr"] == pytest.approx(peak)
    assert json.loads((part / "prune.json").read_text())["config"]["lr_schedule_scope"] == "round"


def test_optimizer_state_fresh_or_carried(dense: Path):
    cmd = ["prune", "--method", "imp", "--from", str(dense), "--target", "0.5", "--prune-step", "0.5", "--round-steps", "2",
           "--stop-after-events", "1", *FAST]  # stop right after the init event: the checkpoint at step 0
    src = load_checkpoint(dense)
    assert src.optimizer
    assert main([*cmd, "--out", str(dense.parent / "fresh")]) == 0
    assert load_checkpoint(dense.parent / "fresh" / "lang" / "en", require_complete=False).optimizer == {}  # no moments before the first step
    assert main([*cmd, "--out", str(dense.parent / "carry"), "--optimizer-state", "carry", "--weight-decay", "0.5"]) == 0
    ck = load_checkpoint(dense.parent / "carry" / "lang" / "en", require_complete=False)  # stopped: still in progress
    assert ck.optimizer.keys() == src.optimizer.keys()
    for name, st in src.optimizer.items():
        for k, v in st.items():
            assert torch.equal(ck.optimizer[name][k], v), (name, k)
    decay = [g for g in ck.meta["optimizer"]["param_groups"] if g["weight_decay"] > 0]
    assert decay and all(g["weight_decay"] == 0.5 for g in decay)  # the phase's hyper-parameters, not the dense run's


def test_phase_after_a_mixed_batch_dense_run_uses_monolingual_batches_of_the_dense_batch_size():
    base = dict(BASE) | {"batching": "mixed", "max_duration": 64.0, "loss_warmup_steps": 300}
    tc = _phase_train_config(base, _cfg(), total_steps=40)[0]
    assert tc.batching == "language" and tc.max_duration == 64.0 and tc.loss_warmup_steps == 0
    assert _phase_train_config(base, _cfg(max_duration=30.0), total_steps=40)[0].max_duration == 30.0
    # a language-batched source keeps its batch size
    assert _phase_train_config(dict(BASE) | {"max_duration": 20.0}, _cfg(), total_steps=40)[0].max_duration == 20.0
