"""An LSTM whose weights are ordinary modules, so that a pruned predictor runs sparse.

``nn.LSTM`` runs one fused kernel over its weight tensors; a pruned ``weight_ih``/``weight_hh``
cannot go through the block-sparse kernel there. :class:`ModuleLSTM` computes the same function
(unidirectional, batch first, eval) one step at a time with, per layer, one linear module over
the concatenated input and hidden state, ``[x, h] -> 4H`` gates (``[W_ih | W_hh]``, bias
``b_ih + b_hh``), so a layer costs one kernel call per step. At batch 1 this is also much cheaper
than ``nn.LSTM``'s per-call overhead (about 300 µs per step on the development machine, against
tens of µs here): see BENCHMARKS.md (whole-model speed).

Gate order is ``nn.LSTM``'s: input, forget, cell, output. Results equal ``nn.LSTM`` to float
rounding (the two products are summed in one dot product).

>>> import torch
>>> lstm = torch.nn.LSTM(8, 6, num_layers=2, batch_first=True).eval()
>>> mine = ModuleLSTM.from_lstm(lstm)
>>> x, h0 = torch.randn(3, 4, 8), (torch.randn(2, 3, 6), torch.randn(2, 3, 6))
>>> with torch.no_grad():
...     (ref, (h1, c1)), (out, (h2, c2)) = lstm(x, h0), mine(x, h0)
>>> all(torch.allclose(a, b, atol=1e-5) for a, b in ((ref, out), (h1, h2), (c1, c2)))
True
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["ModuleLSTM"]


class ModuleLSTM(nn.Module):
    """Drop-in for an eval-mode ``nn.LSTM(batch_first=True)``: ``forward(x (B, U, D), state)``."""

    def __init__(self, cells: list[nn.Module], hidden_size: int) -> None:
        super().__init__()
        self.cells = nn.ModuleList(cells)
        self.hidden_size = hidden_size
        self.num_layers = len(cells)

    @classmethod
    def from_lstm(
        cls, lstm: nn.LSTM, make_linear: Callable[[int, torch.Tensor, torch.Tensor], nn.Module] | None = None
    ) -> "ModuleLSTM":
        """From a unidirectional, batch-first ``nn.LSTM`` with biases and no projection.

        ``make_linear(layer, weight, bias)`` builds layer ``layer``'s gate module from the
        concatenated ``[W_ih | W_hh]`` (4H, D + H) and ``b_ih + b_hh``; default ``nn.Linear``.
        """
        if not lstm.batch_first or lstm.bidirectional or not lstm.bias or lstm.proj_size:
            raise ValueError("only a unidirectional batch-first nn.LSTM with biases and no projection is supported")

        from .attention import linear_copy

        make = make_linear or (lambda _layer, w, b: linear_copy(w, b))
        cells = []
        for k in range(lstm.num_layers):
            w = torch.cat([getattr(lstm, f"weight_ih_l{k}").detach(), getattr(lstm, f"weight_hh_l{k}").detach()], dim=1)
            b = getattr(lstm, f"bias_ih_l{k}").detach() + getattr(lstm, f"bias_hh_l{k}").detach()
            cells.append(make(k, w, b))
        return cls(cells, lstm.hidden_size)

    def initial_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = like.new_zeros(self.num_layers, batch, self.hidden_size)
        return zeros, zeros.clone()

    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One time step: ``x`` (B, D), state tensors (layers, B, H) -> (top-layer h (B, H), state)."""
        h_all, c_all = state
        hs, cs = [], []
        inp = x
        hidden = self.hidden_size
        for k, cell in enumerate(self.cells):
            gates = cell(torch.cat([inp, h_all[k]], dim=-1))
            act = torch.sigmoid(gates)
            c = act[:, hidden : 2 * hidden] * c_all[k] + act[:, :hidden] * torch.tanh(gates[:, 2 * hidden : 3 * hidden])
            inp = act[:, 3 * hidden :] * torch.tanh(c)
            hs.append(inp)
            cs.append(c)
        return inp, (torch.stack(hs), torch.stack(cs))

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if state is None:
            state = self.initial_state(x.shape[0], x)
        outs = []
        for t in range(x.shape[1]):
            out, state = self.step(x[:, t], state)
            outs.append(out)
        return torch.stack(outs, dim=1), state
