"""Two-process gloo DDP run with pathways: identical masks and parameters, correct all-reduced
gradients, frozen coordinates unchanged, gradient accumulation across languages with no_sync."""

from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from asr_pathways.sparsity import MaskSet, PathwayModel, broadcast_masks, prunable_parameters

LANGS = ["en", "fr"]


class Net(nn.Module):
    def __init__(self, d: int = 12) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.lstm = nn.LSTM(d, d, batch_first=True)
        self.out = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, _ = self.attn(x, x, x, need_weights=False)
        o, _ = self.lstm(x + a)
        return self.out(o)


def _flat(ts) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).float() for t in ts])


def _gather_equal(t: torch.Tensor) -> bool:
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return all(torch.equal(out[0], o) for o in out[1:])


def _worker(rank: int, world: int, init_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        torch.manual_seed(0)
        net = Net()
        names = list(prunable_parameters(net))
        params = dict(net.named_parameters())
        # rank 1 starts with different masks: broadcast must make them identical
        g = torch.Generator().manual_seed(100 + rank)
        local = {l: MaskSet({n: torch.rand(params[n].shape, generator=g) < 0.5 for n in names}) for l in LANGS}
        masks = broadcast_masks(local, src=0)
        pm = PathwayModel(net, names, masks)
        assert _gather_equal(_flat(pm.masks_state_dict().values()))
        ref_net = copy.deepcopy(net)  # a plain single-process copy for the gradient check
        ref_pm = PathwayModel(ref_net, names, masks)
        ddp = nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.1)
        start = {n: p.detach().clone() for n, p in net.named_parameters()}
        union = pm.union_mask(LANGS)
        dg = torch.Generator().manual_seed(7 + rank)  # different data on every rank
        for step in range(3):
            batches = {l: torch.randn(2, 4, 12, generator=dg) for l in LANGS}
            opt.zero_grad()
            for i, l in enumerate(LANGS):  # one batch per language, gradients summed; sync on the last
                sync = i == len(LANGS) - 1
                ctx = ddp.no_sync() if not sync else torch.enable_grad()
                with ctx:
                    with pm.pathway(l):
                        loss = ddp(batches[l]).square().mean()
                    loss.backward()
            if step == 0:  # DDP gradients == mean over ranks of the local masked gradients
                ref_net.zero_grad()
                for l in LANGS:
                    with ref_pm.pathway(l):
                        ref_net(batches[l]).square().mean().backward()
                for n, p in net.named_parameters():
                    gref = dict(ref_net.named_parameters())[n].grad.clone()
                    dist.all_reduce(gref)
                    torch.testing.assert_close(p.grad, gref / world, rtol=1e-5, atol=1e-6)
            pm.step(opt, LANGS)
        assert _gather_equal(_flat(net.parameters()))
        assert _gather_equal(_flat(pm.masks_state_dict().values()))
        for n in names:  # frozen coordinates unchanged, moments zero there
            fz = ~union[n]
            assert torch.equal(params[n][fz], start[n][fz])
            st = opt.state[params[n]]
            assert not bool(st["exp_avg"][fz].any()) and not bool(st["exp_avg_sq"][fz].any())
            assert bool((params[n][~fz] != start[n][~fz]).any())
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_pathways(tmp_path):
    init_file = str(tmp_path / "pg_init")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(2, init_file), nprocs=2, join=True)
