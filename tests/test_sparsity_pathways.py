"""PathwayModel: masked forward (LSTM, MultiheadAttention), kept values, frozen coordinates."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from hypothesis import given, settings, strategies as st

from asr_pathways.sparsity import MaskSet, PathwayModel, prunable_parameters, select_masks


class Tiny(nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.subsampling = nn.Conv1d(4, d, 3, padding=1)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.lstm = nn.LSTM(d, d, num_layers=2, batch_first=True)
        self.ff = nn.Linear(d, 8)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = self.subsampling(x.transpose(1, 2)).transpose(1, 2)
        a, _ = self.attn(h, h, h, need_weights=False)
        return self.norm(h + a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o, _ = self.lstm(self.encode(x))
        return self.ff(o)


def make(seed: int = 0):
    torch.manual_seed(seed)
    net = Tiny()
    names = list(prunable_parameters(net))
    return net, names


def random_masks(net, names, seed, p=0.5):
    g = torch.Generator().manual_seed(seed)
    params = dict(net.named_parameters())
    return MaskSet({n: torch.rand(params[n].shape, generator=g) < p for n in names})


def masked_copy(net, ms):
    ref = copy.deepcopy(net)
    with torch.no_grad():
        for n, p in ref.named_parameters():
            if n in ms:
                p.mul_(ms[n])
    return ref


def test_default_prunable_names():
    net, names = make()
    assert names == ["attn.in_proj_weight", "attn.out_proj.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0",
                     "lstm.weight_ih_l1", "lstm.weight_hh_l1", "ff.weight"]


@pytest.mark.parametrize("train", [True, False])
def test_masked_forward_equals_model_holding_masked_weights(train):
    net, names = make()
    ms = random_masks(net, names, 1)
    pm = PathwayModel(net, names, {"fr": ms})
    ref = masked_copy(net, ms)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    x = torch.randn(3, 5, 4)
    net.train(train), ref.train(train)
    ctx = torch.enable_grad() if train else torch.no_grad()
    with ctx:
        with pm.pathway("fr"):
            y = net(x)
            e = net.encode(x)  # methods other than forward see the masked weights too
        y_ref, e_ref = ref(x), ref.encode(x)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    torch.testing.assert_close(e, e_ref, rtol=0, atol=0)
    for n, p in net.named_parameters():  # stored values kept
        assert torch.equal(p, before[n])
    with torch.no_grad():
        assert not torch.equal(net(x), y_ref)  # outside the context the model is dense again
    if train:
        y.square().sum().backward()
        y_ref.square().sum().backward()
        pr = dict(ref.named_parameters())
        for n, p in net.named_parameters():
            g_ref = pr[n].grad * ms[n] if n in ms else pr[n].grad
            torch.testing.assert_close(p.grad, g_ref, rtol=1e-5, atol=1e-6)
            if n in ms:
                assert not bool(p.grad[~ms[n]].any())


def test_masked_weights_and_state_dict_untouched():
    net, names = make()
    ms = random_masks(net, names, 2)
    pm = PathwayModel(net, names, {"en": ms})
    mw = pm.masked_weights("en")
    assert torch.equal(mw["ff.weight"], net.ff.weight.detach() * ms["ff.weight"])
    with pm.pathway("en"):
        sd = net.state_dict()  # checkpoints inside a context hold the stored values, not the masked ones
        assert torch.equal(sd["ff.weight"], net.ff._parameters["weight"].detach())
        assert not torch.equal(sd["ff.weight"], mw["ff.weight"])
        assert set(dict(net.named_parameters())) >= set(names)


def test_gradient_accumulation_in_one_context():
    net, names = make()
    pm = PathwayModel(net, names, {"en": random_masks(net, names, 3)})
    x1, x2 = torch.randn(2, 4, 4), torch.randn(2, 4, 4)
    with pm.pathway("en"):
        net(x1).sum().backward()
        net(x2).sum().backward()  # the masking node keeps its mask: a second backward works
    g_acc = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    for x in (x1, x2):
        with pm.pathway("en"):
            net(x).sum().backward()
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, g_acc[n])


def _snap(net, opt, names):
    ps = dict(net.named_parameters())
    out = {}
    for n in names:
        p = ps[n]
        st_ = opt.state.get(p, {})
        out[n] = {"p": p.detach().clone(), **{k: v.clone() for k, v in st_.items() if torch.is_tensor(v) and v.shape == p.shape}}
    return out


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 1000), st.booleans(), st.sampled_from(["adamw", "sgd"]))
def test_frozen_coordinates_unchanged(seed, amsgrad, opt_name):
    net, names = make(seed)
    langs = ["en", "fr", "it"]
    masks = {l: random_masks(net, names, seed + i, p=0.4) for i, l in enumerate(langs)}
    pm = PathwayModel(net, names, masks)
    if opt_name == "adamw":
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.1, amsgrad=amsgrad)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9, weight_decay=0.1)
    g = torch.Generator().manual_seed(seed)
    changed = {n: torch.zeros_like(m, dtype=torch.bool) for n, m in masks["en"].items()}
    schedule = [["en"], ["fr", "it"], ["en", "fr", "it"], ["it"], ["fr"], ["en", "it"]]
    for active in schedule:
        before = _snap(net, opt, names)
        opt.zero_grad()
        for l in active:
            with pm.pathway(l):
                net(torch.randn(2, 5, 4, generator=g)).square().mean().backward()
        pm.step(opt)  # active = the pathways used since the last step
        after = _snap(net, opt, names)
        u = pm.union_mask(active)
        for n in names:
            frozen = ~u[n]
            for k, v in after[n].items():
                old = before[n].get(k, torch.zeros_like(v))
                assert torch.equal(v[frozen], old[frozen]), (active, n, k)
            changed[n] |= after[n]["p"] != before[n]["p"]
    # coordinates inside the masks did train
    assert all(bool(c.any()) for c in changed.values())


def test_step_inside_context_refreshes_and_custom_step():
    net, names = make()
    pm = PathwayModel(net, names, {"en": random_masks(net, names, 4)})
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    x = torch.randn(2, 3, 4)
    with pm.pathway("en"):
        net(x).sum().backward()
        pm.step(opt, ["en"])
        y = net(x)
    with pm.pathway("en"):
        y2 = net(x)
    torch.testing.assert_close(y, y2, rtol=0, atol=0)
    snap = net.ff.weight.detach().clone()
    with pm.frozen_outside(opt, ["en"]):
        with torch.no_grad():
            net.ff.weight.add_(1.0)
    m = pm.masks["en"]["ff.weight"]
    assert torch.equal(net.ff.weight[~m], snap[~m]) and torch.equal(net.ff.weight[m], snap[m] + 1)


def test_errors_and_checkpoint_state(tmp_path):
    net, names = make()
    pm = PathwayModel(net, names, {"en": random_masks(net, names, 5), "fr": random_masks(net, names, 6)})
    with pm.pathway("en"):
        with pytest.raises(RuntimeError, match="do not nest"):
            with pm.pathway("fr"):
                pass
    with pytest.raises(KeyError, match="no pathway"):
        with pm.pathway("de"):
            pass
    with pytest.raises(ValueError, match="covers different parameters"):
        pm.set_mask("de", MaskSet({"ff.weight": torch.ones(8, 16, dtype=torch.bool)}))
    pm.step(torch.optim.SGD(net.parameters(), lr=0.1))  # "en" was entered with grad enabled
    with torch.no_grad(), pm.pathway("fr"):  # evaluation does not count as use
        pass
    with pytest.raises(ValueError, match="no active pathways"):
        pm.step(torch.optim.SGD(net.parameters(), lr=0.1))
    sd = pm.masks_state_dict()
    pm2 = PathwayModel(net, names)
    pm2.load_masks_state_dict(sd)
    assert pm2.masks["fr"] == pm.masks["fr"] and pm2.pathways == ["en", "fr"]
    pm.save_masks(tmp_path / "masks")
    pm3 = PathwayModel(net, names)
    pm3.load_masks(tmp_path / "masks")
    assert dict(pm3.masks) == dict(pm.masks)
    assert pm.union_mask() == pm.masks["en"] | pm.masks["fr"]


def test_zero_trainable():
    net, names = make()
    m = select_masks({n: p for n, p in net.named_parameters() if n in names}, 0.5)
    pm = PathwayModel(net, names, pruned_weights="zero_trainable")
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    pm.apply_zero(m, optimizer=opt)
    for n, p in net.named_parameters():
        if n in names:
            assert not bool(p[~m[n]].any())  # exactly sparse right after the event
    x = torch.randn(2, 5, 4)
    with pm.pathway("main"):
        y = net(x)
    ref = masked_copy(net, m)  # weights are already zero: forward with all weights == masked
    torch.testing.assert_close(y, ref(x), rtol=0, atol=0)
    opt.zero_grad()
    with pm.pathway("main"):
        net(x).square().sum().backward()
    assert bool(net.ff.weight.grad[~m["ff.weight"]].abs().sum() > 0)  # zeros receive gradients
    pm.step(opt)
    assert bool(net.ff.weight[~m["ff.weight"]].any())  # and may grow back
    with pytest.raises(ValueError, match="single pathway"):
        pm.set_mask("fr", m)
    multi = PathwayModel(net, names, {"en": m, "fr": m})
    with pytest.raises(ValueError, match="single pathway"):
        multi.apply_zero()


def test_plain_step_would_move_frozen_coordinates():
    """Control for the frozen-coordinate test: without pm.step, AdamW decay/momentum move pruned weights."""
    net, names = make()
    ms = random_masks(net, names, 9)
    pm = PathwayModel(net, names, {"en": ms})
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.1)
    for use_pm in (False, True):
        before = net.ff.weight.detach().clone()
        with pm.pathway("en"):
            net(torch.randn(2, 3, 4)).sum().backward()
        pm.step(opt, ["en"]) if use_pm else opt.step()
        frozen = ~ms["ff.weight"]
        moved = bool((net.ff.weight[frozen] != before[frozen]).any())
        assert moved is (not use_pm)


def test_builtin_model_defaults():
    """The speech model's prunable weights (asr.prunable) are the engine's defaults less its front-end,
    CTC head and the pruned loss's joiner, which the engine knows nothing about."""
    from asr_pathways.asr.prunable import prunable_parameters as speech_prunable

    model_mod = pytest.importorskip("asr_pathways.asr.model")
    cfg = model_mod.ModelConfig.from_dict(model_mod.load_preset("small")["model"])
    model = model_mod.RNNTModel(cfg, 64)
    names = list(speech_prunable(model))
    engine = list(prunable_parameters(model))
    assert set(names) < set(engine) and any("subsampling" in n for n in engine) and any(n.startswith("ctc_head") for n in engine)
    assert names and all(p.startswith(("encoder.", "predictor.", "joiner.")) for p in names)
    assert not any(("subsampling" in n) or ("embedding" in n) or ("norm" in n) or n.startswith("ctc_head") for n in names)
    assert any(n.endswith("in_proj_weight") for n in names) and any(n.endswith("out_proj.weight") for n in names)
    assert "predictor.lstm.weight_ih_l0" in names and "predictor.lstm.weight_hh_l0" in names
    assert not any("depthwise" in n for n in names)


def test_replaced_mask_and_new_dtype_are_seen_by_the_next_context():
    """The engine keeps each pathway's masks as 1/0 tensors in the weights' dtype: replacing the mask, or
    converting the module to another dtype, must not leave a stale copy in use."""
    net, names = make()
    first, second = random_masks(net, names, 3), random_masks(net, names, 4)
    pm = PathwayModel(net, names, {"fr": first})
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        with pm.pathway("fr"):
            net(x)  # builds the float copies of the first mask
        pm.set_mask("fr", second)
        with pm.pathway("fr"):
            y = net(x)
        assert torch.equal(y, masked_copy(net, second)(x))
        net.double()
        with pm.pathway("fr"):
            assert net.ff.weight.dtype == torch.float64
            y64 = net(x.double())
        assert torch.equal(y64, masked_copy(net, second)(x.double()))
        net.float()  # back: a float64 copy of the mask would make the masked weight float64
        with pm.pathway("fr"):
            assert all(getattr(mod, "weight").dtype == torch.float32 for mod in (net.ff, net.attn.out_proj))
            y32 = net(x)
        assert torch.equal(y32, masked_copy(net, second)(x))
