"""The masked Adam/AdamW step: exact at frozen coordinates, torch's update everywhere else."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

from asr_pathways.sparsity.masked_adam import masked_adam_step, supports_masked_adam


def _params(seed: int, shapes=((7, 5), (3,), (4, 4))):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]


def _grads(params, seed):
    g = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["adam", "adamw"]), st.sampled_from([0.0, 0.1]))
def test_frozen_exact_and_free_matches_torch(seed, kind, wd):
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    ours, ref = _params(seed), _params(seed)
    opt_ours = cls(ours, lr=1e-2, weight_decay=wd, betas=(0.9, 0.98))
    opt_ref = cls(ref, lr=1e-2, weight_decay=wd, betas=(0.9, 0.98))
    g = torch.Generator().manual_seed(seed + 1)
    frozen = {ours[0]: torch.rand(7, 5, generator=g) < 0.6, ours[2]: torch.rand(4, 4, generator=g) < 0.3}
    for step in range(4):
        before = [(p.detach().clone(), {k: v.clone() for k, v in opt_ours.state.get(p, {}).items()}) for p in ours]
        _grads(ours, seed + 10 + step)
        _grads(ref, seed + 10 + step)
        masked_adam_step(opt_ours, frozen)
        opt_ref.step()
        for (old_p, old_state), p, r in zip(before, ours, ref):
            fz = frozen.get(p)
            if fz is None:  # no frozen coordinate: bit for bit what torch computes
                assert torch.equal(p, r)
                continue
            assert torch.equal(p[fz], old_p[fz])
            for key in ("exp_avg", "exp_avg_sq"):
                old = old_state.get(key, torch.zeros_like(p))
                assert torch.equal(opt_ours.state[p][key][fz], old[fz])
        for p, r in zip(ours, ref):  # state in torch's format, step counts advance as torch's
            assert set(opt_ours.state[p]) == set(opt_ref.state[r])
            assert opt_ours.state[p]["step"].dtype == opt_ref.state[r]["step"].dtype
            assert float(opt_ours.state[p]["step"]) == step + 1


def test_free_coordinates_match_torch_when_nothing_is_frozen_yet():
    """With a frozen mask that is all False the masked path must agree with torch (to rounding)."""
    ours, ref = _params(3), _params(3)
    opt_ours = torch.optim.AdamW(ours, lr=1e-2, weight_decay=0.1)
    opt_ref = torch.optim.AdamW(ref, lr=1e-2, weight_decay=0.1)
    none_frozen = {p: torch.zeros(p.shape, dtype=torch.bool) for p in ours}
    for step in range(5):
        _grads(ours, step)
        _grads(ref, step)
        masked_adam_step(opt_ours, none_frozen)
        opt_ref.step()
    for p, r in zip(ours, ref):
        torch.testing.assert_close(p, r, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(opt_ours.state[p]["exp_avg_sq"], opt_ref.state[r]["exp_avg_sq"], rtol=1e-6, atol=1e-9)


def test_unsupported_optimizers_are_refused():
    ps = _params(0)
    assert not supports_masked_adam(torch.optim.SGD(ps, lr=0.1))
    assert not supports_masked_adam(torch.optim.AdamW(ps, lr=0.1, amsgrad=True))
    assert not supports_masked_adam(torch.optim.AdamW(ps, lr=torch.tensor(0.1)))
    hooked = torch.optim.AdamW(ps, lr=0.1)
    hooked.register_step_post_hook(lambda *a: None)
    assert not supports_masked_adam(hooked)
    with pytest.raises(ValueError, match="plain torch.optim.Adam"):
        masked_adam_step(torch.optim.SGD(ps, lr=0.1), {})


def _assert_same_weights_and_moments(a, opt_a, b, opt_b):
    """The two runs' weights and AdamW moments are equal, bit for bit."""
    for p, q in zip(a, b):
        assert torch.equal(p, q)
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(opt_a.state[p][key], opt_b.state[q][key])


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_float_masks_step_as_bool_masks_bit_for_bit(kind):
    """Frozen masks given as 1/0 in the weights' dtype (the pathway engine's cached form) give the same
    weights and moments as bool masks, bit for bit."""
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    a, b = _params(5), _params(5)
    opt_a, opt_b = cls(a, lr=1e-2, weight_decay=0.1), cls(b, lr=1e-2, weight_decay=0.1)
    g = torch.Generator().manual_seed(6)
    fz = [torch.rand(7, 5, generator=g) < 0.5, torch.rand(4, 4, generator=g) < 0.5]
    for step in range(4):
        _grads(a, 20 + step)
        _grads(b, 20 + step)
        masked_adam_step(opt_a, {a[0]: fz[0], a[2]: fz[1]})
        masked_adam_step(opt_b, {b[0]: fz[0].float(), b[2]: fz[1].float()})
    _assert_same_weights_and_moments(a, opt_a, b, opt_b)


def _where_reference_step(opt, frozen):
    """The masked AdamW step written with torch.where / masked_fill_ (the engine until 2026-12-03)."""
    with torch.no_grad():
        for group in opt.param_groups:
            b1, b2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                st = opt.state[p]
                if not st:
                    st.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                st["step"] += 1
                k = float(st["step"])
                fz = frozen[p]
                st["exp_avg"].lerp_(torch.where(fz, st["exp_avg"], p.grad), 1 - b1)
                st["exp_avg_sq"].lerp_(torch.where(fz, st["exp_avg_sq"], p.grad * p.grad), 1 - b2)
                upd = st["exp_avg_sq"].sqrt().div_((1 - b2**k) ** 0.5).add_(eps)
                torch.div(st["exp_avg"], upd, out=upd).mul_(lr / (1 - b1**k))
                upd.add_(p, alpha=lr * wd)
                p.sub_(upd.masked_fill_(fz, 0.0))


def test_lerp_selection_equals_the_where_reference():
    a, b = _params(8, shapes=((6, 5), (4, 4))), _params(8, shapes=((6, 5), (4, 4)))
    opt_a, opt_b = torch.optim.AdamW(a, lr=1e-2, weight_decay=0.1), torch.optim.AdamW(b, lr=1e-2, weight_decay=0.1)
    g = torch.Generator().manual_seed(9)
    fz = [torch.rand(6, 5, generator=g) < 0.5, torch.rand(4, 4, generator=g) < 0.5]
    for step in range(5):
        _grads(a, 30 + step)
        _grads(b, 30 + step)
        masked_adam_step(opt_a, {a[0]: fz[0], a[1]: fz[1]})
        _where_reference_step(opt_b, {b[0]: fz[0], b[1]: fz[1]})
    _assert_same_weights_and_moments(a, opt_a, b, opt_b)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_frozen_coordinates_survive_a_non_finite_gradient(bad):
    """An inf or NaN in a gradient (at a frozen or a free coordinate) leaves every frozen coordinate as it was."""
    ps = _params(11, shapes=((5, 4),))
    opt = torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1)
    fz = torch.zeros(5, 4, dtype=torch.bool)
    fz[:2] = True
    _grads(ps, 1)
    masked_adam_step(opt, {ps[0]: fz})
    before = ps[0].detach().clone(), opt.state[ps[0]]["exp_avg"].clone(), opt.state[ps[0]]["exp_avg_sq"].clone()
    _grads(ps, 2)
    ps[0].grad[0, 0] = bad  # a frozen coordinate
    ps[0].grad[4, 3] = bad  # a free one
    masked_adam_step(opt, {ps[0]: fz.float()})
    assert torch.equal(ps[0][fz], before[0][fz])
    assert torch.equal(opt.state[ps[0]]["exp_avg"][fz], before[1][fz])
    assert torch.equal(opt.state[ps[0]]["exp_avg_sq"][fz], before[2][fz])
