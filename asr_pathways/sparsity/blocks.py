"""Block shapes, block scores and exact magnitude selection (layer-wise or global).

A weight of shape ``(out, *rest)`` is seen as the matrix ``(out, prod(rest))`` (so a Conv weight
``(out, in, k)`` becomes ``(out, in*k)``, an LSTM ``weight_ih_l0`` stays ``(4h, in)``). A block
``(R, C)`` covers ``R`` consecutive rows (output features) of ``C`` consecutive columns (input
features); ``(8, 1)`` = ``W[8i:8i+8, j]``, ``(1, 1)`` is unstructured. When a dimension is not a
multiple of the block, the last blocks of that dimension are *edge blocks*: smaller, scored on the
values they hold.

**Score** of a block: the L2 (default) or L1 norm of its stored values, computed in float32.

**How many blocks are pruned** (the rule is exact and deterministic). Blocks are put in one order:
first every block that is not a candidate (forced), then the candidates by increasing score, ties
broken by the block's index (row-major over the block grid; under ``scope="global"``, matrices in
the order of the ``weights`` mapping). The pruned set is always a prefix of that order; its length
``k`` is the one whose realised weight sparsity ``zeros / size`` is closest to the requested
sparsity ``s`` (ties go to the smaller ``k``). When all blocks have the same size (no edge blocks)
this is simply ``k = round(s * n_blocks)`` with halves rounded down, and weight sparsity equals
block sparsity. With edge blocks the two differ; the reported sparsity (docs/method.md ``s(m)``) is
always the weight sparsity ``zeros / size``, and :func:`block_sparsity` gives the other one.

If that ``k`` is smaller than the number of forced blocks, the request asks for fewer zeros than the
candidates allow, and a ``ValueError`` says so (the sparsity is never silently raised).

A block is a candidate only if *every* weight in it is a candidate, so a returned mask is always a
subset of its candidates.

>>> import torch
>>> w = torch.tensor([[1., -5.], [2., 6.], [3., 7.], [4., 8.]])
>>> magnitude_mask(w, 0.5, block=(2, 1)).int().tolist()  # 4 blocks of 2x1; the 2 weakest are column 0
[[0, 1], [0, 1], [0, 1], [0, 1]]
>>> magnitude_mask(w, 0.25, block=(2, 1)).int().tolist()  # 1 block: rows 0-1 of column 0 (norm 2.24)
[[0, 1], [0, 1], [1, 1], [1, 1]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F

from .masks import MaskSet

Block = tuple[int, int]

__all__ = ["Block", "parse_block", "as_matrix", "block_grid", "block_scores", "block_candidates", "expand_blocks",
           "block_sparsity", "magnitude_mask", "select_masks", "MatrixSelection"]


def parse_block(block: Block | str | int | list) -> Block:
    """``(8, 1)``, ``[8, 1]``, ``"8x1"`` or ``8`` (= ``(8, 1)``) -> ``(8, 1)``.

    >>> parse_block("1x4"), parse_block(8)
    ((1, 4), (8, 1))
    """
    if isinstance(block, str):
        parts = block.lower().replace("×", "x").split("x")
        if len(parts) != 2:
            raise ValueError(f"block {block!r}: expected 'RxC' such as '8x1'")
        r, c = (int(p) for p in parts)
    elif isinstance(block, int):
        r, c = block, 1
    else:
        r, c = (int(v) for v in block)
    if r < 1 or c < 1:
        raise ValueError(f"block {block!r}: both sides must be >= 1")
    return r, c


def as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """The 2-D view ``(out, prod(rest))`` of a weight with at least 2 dimensions."""
    if weight.dim() < 2:
        raise ValueError(f"a prunable weight needs at least 2 dimensions, got shape {tuple(weight.shape)}")
    return weight.reshape(weight.shape[0], -1)


def _matrix_shape(shape: torch.Size | tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"a prunable weight needs at least 2 dimensions, got shape {tuple(shape)}")
    return int(shape[0]), int(math.prod(shape[1:]))


def block_grid(shape: torch.Size | tuple[int, ...], block: Block = (8, 1)) -> tuple[int, int]:
    """Number of block rows and block columns (edge blocks included)."""
    rows, cols = _matrix_shape(shape)
    r, c = parse_block(block)
    return -(-rows // r), -(-cols // c)


def _blocked(m: torch.Tensor, block: Block, fill: float | bool) -> torch.Tensor:
    """``m`` (2-D) padded to whole blocks and viewed as ``(nbr, R, nbc, C)``."""
    r, c = block
    rows, cols = m.shape
    nbr, nbc = -(-rows // r), -(-cols // c)
    pr, pc = nbr * r - rows, nbc * c - cols
    if pr or pc:
        if m.dtype == torch.bool:
            p = torch.full((nbr * r, nbc * c), bool(fill), dtype=torch.bool, device=m.device)
            p[:rows, :cols] = m
            m = p
        else:
            m = F.pad(m, (0, pc, 0, pr), value=float(fill))
    return m.reshape(nbr, r, nbc, c)


def block_scores(weight: torch.Tensor, block: Block = (8, 1), norm: str = "l2") -> torch.Tensor:
    """Float32 ``(n_block_rows, n_block_cols)`` L2 or L1 norms of the stored values of each block."""
    block = parse_block(block)
    ord_ = _norm_ord(norm)
    with torch.no_grad():
        w = weight.detach()
        if w.dtype not in (torch.float32, torch.float64):
            w = w.float()
        b = _blocked(as_matrix(w), block, 0.0)
        # elementwise square/abs + sum over the block dims; torch.linalg.vector_norm over strided
        # dims was ~50x slower on CPU, and fresh large temporaries page-fault under glibc malloc,
        # so (R, 1) blocks accumulate row by row into one small buffer
        r, c = block
        if c == 1 and r <= 64:
            rows = b.squeeze(3)  # (nbr, R, ncol)
            if ord_ == 2:
                out = rows[:, 0].square()
                for i in range(1, r):
                    out.addcmul_(rows[:, i], rows[:, i])
                out.sqrt_()
            else:
                out = rows[:, 0].abs()
                if r > 1:
                    tmp = torch.empty_like(out)
                    for i in range(1, r):
                        out.add_(torch.abs(rows[:, i], out=tmp))
        else:
            v = b.abs() if ord_ == 1 else b.square()
            out = v.sum(dim=(1, 3))
            if ord_ == 2:
                out.sqrt_()
        return out.float()


def _norm_ord(norm: str) -> int:
    n = str(norm).lower()
    if n not in ("l1", "l2"):
        raise ValueError(f"norm {norm!r}: expected 'l1' or 'l2'")
    return 1 if n == "l1" else 2


def block_candidates(candidates: torch.Tensor, block: Block = (8, 1)) -> torch.Tensor:
    """Bool ``(nbr, nbc)``: a block is a candidate iff every weight in it is a candidate."""
    block = parse_block(block)
    b = _blocked(as_matrix(candidates.bool()), block, True)
    return b.all(dim=3).all(dim=1)


def _block_sizes(shape: torch.Size | tuple[int, ...], block: Block, device: torch.device | None = None) -> torch.Tensor | None:
    """Int64 ``(nbr, nbc)`` element counts per block, or None when every block is full."""
    rows, cols = _matrix_shape(shape)
    r, c = block
    nbr, nbc = -(-rows // r), -(-cols // c)
    if rows % r == 0 and cols % c == 0:
        return None
    hr = torch.full((nbr,), r, dtype=torch.int64, device=device)
    hr[-1] = rows - (nbr - 1) * r
    wc = torch.full((nbc,), c, dtype=torch.int64, device=device)
    wc[-1] = cols - (nbc - 1) * c
    return hr[:, None] * wc[None, :]


def expand_blocks(block_mask: torch.Tensor, shape: torch.Size | tuple[int, ...], block: Block = (8, 1)) -> torch.Tensor:
    """Bool block grid ``(nbr, nbc)`` -> bool tensor of the weight's ``shape``."""
    rows, cols = _matrix_shape(shape)
    r, c = parse_block(block)
    nbr, nbc = block_mask.shape
    if c == 1:
        full = block_mask[:, None, :].expand(nbr, r, nbc).reshape(nbr * r, nbc)
    else:
        full = block_mask[:, None, :, None].expand(nbr, r, nbc, c).reshape(nbr * r, nbc * c)
    if full.shape != (rows, cols):
        full = full[:rows, :cols].contiguous()
    return full.view(tuple(shape))


def block_sparsity(mask: torch.Tensor, block: Block = (8, 1)) -> float:
    """Fraction of blocks whose weights are all pruned (compare: weight sparsity = zeros / size)."""
    b = _blocked(as_matrix(mask.bool()), parse_block(block), False)
    pruned = ~b.any(dim=3).any(dim=1)
    return float(pruned.sum().item()) / max(pruned.numel(), 1)


@dataclass
class MatrixSelection:
    """What :func:`select_masks` decided for one matrix (``return_info=True``)."""

    blocks: int
    pruned_blocks: int
    forced_blocks: int
    size: int
    zeros: int
    requested_sparsity: float

    @property
    def sparsity(self) -> float:
        """Weight sparsity ``zeros / size`` (docs/method.md ``s(m)``)."""
        return self.zeros / max(self.size, 1)

    @property
    def block_sparsity(self) -> float:
        return self.pruned_blocks / max(self.blocks, 1)


def _closest_k_uniform(target_blocks: float, n: int) -> int:
    # nearest integer, halves rounded down; the epsilon absorbs float noise such as 0.7*10 = 7.000000000000001
    k = math.floor(target_blocks + 0.5 - 1e-9)
    return max(0, min(n, k))


def _prefix_prune(score: torch.Tensor, forced: torch.Tensor | None, sizes: torch.Tensor | None, target_zeros: float, block_size: int, where: str) -> torch.Tensor:
    """Flat bool ``pruned`` for flat float ``score``: the exact prefix rule of the module docstring."""
    n = score.numel()
    n_forced = int(forced.sum().item()) if forced is not None else 0
    s = score
    if forced is not None and n_forced:
        s = score.masked_fill(forced, -1.0)  # scores are >= 0: forced blocks come first
    total = int(sizes.sum().item()) if sizes is not None else n * block_size
    if sizes is None:
        k = _closest_k_uniform(target_zeros / block_size, n)
        order = None
    else:
        # stable sort = order by (score, index); cumulative zeros of every prefix
        order = torch.sort(s, stable=True).indices
        cum = torch.cat([sizes.new_zeros(1), torch.cumsum(sizes[order], 0)])
        j = int(torch.searchsorted(cum, cum.new_tensor([math.ceil(target_zeros - 1e-9)])).item())
        j = min(j, n)
        # candidates j-1 and j; pick the closer, ties to the smaller
        best = j
        if j > 0 and abs(float(cum[j - 1]) - target_zeros) <= abs(float(cum[j]) - target_zeros) + 1e-9:
            best = j - 1
        k = best
    if k < n_forced:
        forced_zeros = n_forced * block_size if sizes is None else int(sizes[forced].sum().item())
        raise ValueError(
            f"{where}: the requested sparsity {target_zeros / max(total, 1):.6g} asks for fewer zeros than the "
            f"candidates allow: {n_forced} of {n} blocks are outside the candidates and must be pruned, which "
            f"already gives sparsity {forced_zeros / max(total, 1):.6g}; ask for at least that, or widen the candidates"
        )
    if k == 0:
        return torch.zeros(n, dtype=torch.bool, device=score.device)
    if k == n:
        return torch.ones(n, dtype=torch.bool, device=score.device)
    if order is not None:
        pruned = torch.zeros(n, dtype=torch.bool, device=score.device)
        pruned[order[:k]] = True
        return pruned
    t = torch.kthvalue(s.cpu() if s.device.type == "mps" else s, k).values
    pruned = s < t
    need = k - int(pruned.sum().item())
    if need > 0:
        eq = s == t
        if int(eq.sum().item()) == need:  # the usual case: no ties at the threshold
            pruned |= eq
        else:  # ties: the lowest block indices go first
            pruned[torch.nonzero(eq).flatten()[:need]] = True
    return pruned


def _check_sparsity(s: float, name: str) -> float:
    s = float(s)
    if not (0.0 <= s <= 1.0) or math.isnan(s):
        raise ValueError(f"{name}: sparsity {s} is outside [0, 1]")
    return s


def select_masks(
    weights: Mapping[str, torch.Tensor],
    sparsity: float | Mapping[str, float],
    block: Block | str = (8, 1),
    norm: str = "l2",
    scope: str = "layer",
    candidates: Mapping[str, torch.Tensor] | None = None,
    return_info: bool = False,
) -> MaskSet | tuple[MaskSet, dict[str, MatrixSelection]]:
    """Keep the highest-scoring blocks of every matrix in ``weights`` (True = kept).

    - ``scope="layer"``: each matrix gets sparsity ``s`` (``sparsity`` may be a dict name -> s).
    - ``scope="global"``: one ranking of all blocks of all matrices by plain block norm (no
      per-layer normalisation), so that the total weight sparsity over all matrices is ``s``;
      layers with small weights lose more.
    - ``candidates``: name -> bool tensor of the weight's shape (or a :class:`MaskSet`); blocks
      outside the candidates are pruned first; missing names mean "all candidates".

    >>> import torch
    >>> ws = {"a": torch.arange(1., 17.).view(8, 2), "b": torch.ones(8, 2) * 100}
    >>> m = select_masks(ws, 0.5, block=(8, 1), scope="global")
    >>> m.sparsity_per_matrix()
    {'a': 1.0, 'b': 0.0}
    """
    block = parse_block(block)
    if scope not in ("layer", "global"):
        raise ValueError(f"scope {scope!r}: expected 'layer' or 'global'")
    names = list(weights)
    if isinstance(sparsity, Mapping):
        if scope == "global":
            raise ValueError("scope='global' takes one sparsity, not one per matrix")
        missing = [n for n in names if n not in sparsity]
        if missing:
            raise ValueError(f"no sparsity given for {missing[:5]}")
        sp = {n: _check_sparsity(sparsity[n], n) for n in names}
    else:
        s0 = _check_sparsity(sparsity, "select_masks")
        sp = {n: s0 for n in names}
    if candidates is not None:
        extra = [n for n in candidates if n not in weights]
        if extra:
            raise ValueError(f"candidates name matrices that are not among the weights: {extra[:5]}")
    bsize = block[0] * block[1]

    scores, forced, sizes, shapes = {}, {}, {}, {}
    for n in names:
        w = weights[n]
        shapes[n] = tuple(w.shape)
        sc = block_scores(w, block, norm)
        if not math.isfinite(float(sc.sum().item())) and not bool(torch.isfinite(sc).all()):
            raise ValueError(f"{n}: the weight holds NaN or infinite values; cannot rank blocks by magnitude")
        scores[n] = sc.reshape(-1)
        if candidates is not None and n in candidates:
            c = candidates[n]
            if tuple(c.shape) != shapes[n]:
                raise ValueError(f"{n}: candidates have shape {tuple(c.shape)}, the weight {shapes[n]}")
            forced[n] = ~block_candidates(c.to(sc.device), block).reshape(-1)
        else:
            forced[n] = None
        sizes[n] = _block_sizes(shapes[n], block, sc.device)

    pruned: dict[str, torch.Tensor] = {}
    if scope == "layer":
        for n in names:
            numel = math.prod(shapes[n])
            sz = sizes[n].reshape(-1) if sizes[n] is not None else None
            pruned[n] = _prefix_prune(scores[n], forced[n], sz, sp[n] * numel, bsize, n)
    else:
        any_forced = any(f is not None for f in forced.values())
        uniform = all(sizes[n] is None for n in names)
        flat = torch.cat([scores[n] for n in names]) if names else torch.zeros(0)
        fl = None
        if any_forced:
            fl = torch.cat([forced[n] if forced[n] is not None else torch.zeros_like(scores[n], dtype=torch.bool) for n in names])
        sz = None
        if not uniform:
            sz = torch.cat([
                (sizes[n].reshape(-1) if sizes[n] is not None else torch.full_like(scores[n], bsize, dtype=torch.int64))
                for n in names
            ])
        total = sum(math.prod(shapes[n]) for n in names)
        s0 = next(iter(sp.values())) if sp else 0.0
        allp = _prefix_prune(flat, fl, sz, s0 * total, bsize, "global selection")
        off = 0
        for n in names:
            k = scores[n].numel()
            pruned[n] = allp[off : off + k]
            off += k

    out: dict[str, torch.Tensor] = {}
    info: dict[str, MatrixSelection] = {}
    for n in names:
        nbr, nbc = block_grid(shapes[n], block)
        keep = ~pruned[n].view(nbr, nbc)
        out[n] = expand_blocks(keep, shapes[n], block)
        if return_info:
            p = pruned[n]
            zeros = int(p.sum().item()) * bsize if sizes[n] is None else int(sizes[n].reshape(-1)[p].sum().item())
            info[n] = MatrixSelection(
                blocks=p.numel(), pruned_blocks=int(p.sum().item()),
                forced_blocks=int(forced[n].sum().item()) if forced[n] is not None else 0,
                size=math.prod(shapes[n]), zeros=zeros, requested_sparsity=sp[n],
            )
    ms = MaskSet(out, _validate=False)
    return (ms, info) if return_info else ms


def magnitude_mask(
    weight: torch.Tensor,
    sparsity: float,
    block: Block | str = (8, 1),
    norm: str = "l2",
    candidates: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bool mask of ``weight``'s shape (True = kept) pruning the lowest-norm blocks.

    See the module docstring for the exact count rule, tie-breaking and edge blocks.

    >>> import torch
    >>> w = torch.tensor([[3., 1., 2., 4.]])
    >>> magnitude_mask(w, 0.5, block=(1, 1)).tolist()
    [[True, False, False, True]]
    """
    cand = {"w": candidates} if candidates is not None else None
    return select_masks({"w": weight}, sparsity, block, norm, "layer", cand)["w"]
