"""``--scores own-updates``: the per-language update accumulators on a small model (no speech)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from asr_pathways.methods.scores import UpdateAttribution
from asr_pathways.runtime import DistInfo
from asr_pathways.sparsity.masks import MaskSet
from asr_pathways.sparsity.pathways import PathwayModel


def _setup(langs: list[str], seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 5))
    names = ["0.weight", "2.weight"]
    params = {n: p for n, p in net.named_parameters() if n in names}
    g = torch.Generator().manual_seed(seed + 1)
    masks = {l: MaskSet({n: torch.rand(p.shape, generator=g) < 0.6 for n, p in params.items()}) for l in langs}
    pm = PathwayModel(net, names, masks)
    opt = torch.optim.AdamW(net.parameters(), lr=0.05, weight_decay=0.1)
    attr = UpdateAttribution(params, langs, lambda l: l)
    data = {l: (torch.randn(8, 6, generator=g), torch.randn(8, 5, generator=g)) for l in langs}
    return net, params, masks, pm, opt, attr, data


def _step(trainer, net, pm, opt, attr, data, langs, grads_out=None):
    """One trainer step as Trainer.train_step runs it: backward per language, hooks, masked step."""
    opt.zero_grad(set_to_none=True)
    for lang in langs:
        x, y = data[lang]
        with pm.pathway(lang):
            ((net(x) - y) ** 2).mean().backward()
        attr.after_backward(trainer, lang)
    if grads_out is not None:
        grads_out.append({n: p.grad.clone() for n, p in attr.params.items()})
    attr.before_step(trainer, langs)
    pm.step(opt, active=langs)
    attr.after_step(trainer, langs)
    trainer.step += 1


def test_accumulators_split_every_update_among_languages():
    langs = ["en", "fr", "it"]
    net, params, masks, pm, opt, attr, data = _setup(langs)
    trainer = SimpleNamespace(step=0, dist=DistInfo())
    ref0 = {n: p.detach().clone() for n, p in params.items()}
    had_grad = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    plans = [langs, ["en", "fr"], langs, ["it"], langs, ["fr", "it"]]
    for plan in plans:
        sums = {n: sum(masks[l][n].float() for l in plan) for n in params}
        for n in params:
            had_grad[n] &= sums[n] > 0  # a coordinate inside some active mask gets a (non-zero) gradient
        _step(trainer, net, pm, opt, attr, data, plan)
    for n, p in params.items():
        total = attr._views(attr.ref)[n] + sum(attr._views(attr.delta[l])[n] for l in langs)
        # θ_ref + Σ_l Δ_l = θ everywhere; Σ_l Δ_l = θ − θ_ref(start) where a gradient arrived at every step
        assert torch.allclose(total, p.detach(), atol=1e-6), n
        delta_sum = sum(attr._views(attr.delta[l])[n] for l in langs)
        moved = p.detach() - ref0[n]
        assert had_grad[n].any()
        assert torch.allclose(delta_sum[had_grad[n]], moved[had_grad[n]], atol=1e-6), n
        for l in langs:  # a language's score only moves where its own data had a gradient
            assert torch.count_nonzero(attr._views(attr.delta[l])[n][~masks[l][n]]) == 0, (n, l)
    attr.reset()
    for l in langs:
        assert torch.count_nonzero(attr.delta[l]) == 0
        for n, p in params.items():
            assert torch.equal(attr.weights(l)[n], p.detach())


def test_share_is_gradient_magnitude_fraction():
    """One step, two languages: Δ_l = u ⊙ |g_l| / (|g_en| + |g_fr|), g_l from separate backward passes."""
    langs = ["en", "fr"]
    net, params, masks, pm, opt, attr, data = _setup(langs, seed=3)
    per_lang = {}
    for lang in langs:  # the gradient of each language alone, by hand
        net.zero_grad(set_to_none=True)
        x, y = data[lang]
        with pm.pathway(lang):
            ((net(x) - y) ** 2).mean().backward()
        per_lang[lang] = {n: p.grad.clone() for n, p in params.items()}
    before = {n: p.detach().clone() for n, p in params.items()}
    trainer = SimpleNamespace(step=0, dist=DistInfo())
    _step(trainer, net, pm, opt, attr, data, langs)
    for n, p in params.items():
        u = p.detach() - before[n]
        s = per_lang["en"][n].abs() + per_lang["fr"][n].abs()
        for l in langs:
            want = torch.where(s > 0, u * per_lang[l][n].abs() / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(u))
            assert torch.allclose(attr._views(attr.delta[l])[n], want, atol=1e-7), (n, l)


def test_single_language_equals_plain_magnitude():
    net, params, masks, pm, opt, attr, data = _setup(["en"], seed=5)
    trainer = SimpleNamespace(step=0, dist=DistInfo())
    for _ in range(4):
        _step(trainer, net, pm, opt, attr, data, ["en"])
    for n, p in params.items():
        assert torch.allclose(attr.weights("en")[n], p.detach(), atol=1e-7), n


def test_state_round_trip(tmp_path):
    from asr_pathways.io import load_tensors, save_tensors

    langs = ["en", "fr"]
    net, params, masks, pm, opt, attr, data = _setup(langs, seed=7)
    trainer = SimpleNamespace(step=0, dist=DistInfo())
    _step(trainer, net, pm, opt, attr, data, langs)
    save_tensors(tmp_path / "s.safetensors", attr.state_tensors(), attr.state_meta())
    other = UpdateAttribution(params, langs, lambda l: l)
    tensors, meta = load_tensors(tmp_path / "s.safetensors")
    other.load_state_tensors(tensors, meta)
    for l in langs:
        assert torch.equal(other.delta[l], attr.delta[l])
    assert torch.equal(other.ref, attr.ref)
    with pytest.raises(ValueError, match="other parameters or pathways"):
        UpdateAttribution(params, ["en", "it"], lambda l: l).load_state_tensors(tensors, meta)


def test_scores_option_is_checked():
    from asr_pathways.errors import InputError
    from asr_pathways.methods.config import PruneConfig

    base = dict(source="runs/dense", out="runs/x", languages=["en", "fr"])
    assert PruneConfig(method="dynamic", masks_from="r", **base).default_scores() == "own-updates"
    assert PruneConfig(method="adaptive", masks_from="r", **base).default_scores() == "shared"
    PruneConfig(method="adaptive", masks_from="r", scores="own-updates", **base).validate()
    with pytest.raises(InputError, match="scores"):
        PruneConfig(method="dynamic", masks_from="r", scores="mine", **base).validate()
    with pytest.raises(InputError, match="scores"):
        PruneConfig(method="lth", scores="own-updates", **base).validate()
