"""CPU block-sparse linear layers (8x1 blocks and unstructured 1x1) that beat dense at batch 1.

torch cannot multiply with (8, 1) BSR blocks on the CPU, and its CSR kernels are 3-8x *slower* than
dense at batch 1 (docs: /work/shared/notes/MEASURED.md). This module stores only the kept blocks and
multiplies with a small C++ kernel (``sparse_kernels.cpp``), built on first use by
:mod:`torch.utils.cpp_extension` with ``g++ -O3 -march=native -fopenmp`` as a Python extension
module (pybind11 from torch's headers; ~30 s once, cached per source, CPU and torch version). Its
``linear`` takes the tensors and does reshaping, allocation and transposition in C++: a call costs
about 1 µs more than ``F.linear`` (the earlier ctypes binding cost ~10 µs).

Storage (``BlockSparseLinear`` buffers, what :func:`pack` returns):

* ``block=(8, 1)``: a BSR matrix whose blocks are 8 consecutive output rows x 1 input column.
  Block row ``i`` (output rows ``8i .. 8i+7``) holds blocks ``k in [indptr[i], indptr[i+1])`` at
  input column ``cols[k]`` with values ``values[k, 0:8]`` (contiguous). A block is stored when any of
  its 8 entries is kept; dropped entries inside a stored block are stored as 0, so the result equals
  ``F.linear(x, weight * mask, bias)`` for *any* mask, block-structured or not. When ``out_features``
  is not a multiple of 8 the last block row is padded with zero rows that are never written out.
* ``block=(1, 1)``: CSR, ``values`` of shape ``(nnz, 1)``.

Kernels: batch 1 runs one 8-wide vector dot product per block row (``y[8i:8i+8] += x[j] * v[k]``);
batch > 4 transposes the input once (8x8 AVX tiles) and does an 8 x 16 outer-product update per kept
block, held in registers. Results equal dense to float rounding (the summation order differs).

Never slower than dense: ``BlockSparseLinear.mode = "auto"`` (the default) decides per call, from
the layer's shape, its stored values and the number of input rows n, whether the kernel or dense
``F.linear`` on the (lazily built, cached) dense weight ⊙ mask is faster, with the cost model
:data:`COST_TABLE_US` (:func:`kernel_wins`). In the ``small`` preset at 70%, batch-1 decoding keeps
the predictor/joiner matrices of 256x256 and up and the encoder layers (n = frames) on the kernel,
and tiny layers (the 29-row joiner output of a toy vocabulary, 64x64 test models) on dense.
``mode = "kernel"`` / ``"dense"`` force one path (tests, benchmarks).

Threads: a call uses ``torch.get_num_threads()`` OpenMP threads (the same libgomp pool as torch)
when it has at least :data:`PARALLEL_MIN_WORK` stored values x batch rows, otherwise one thread:
small batch-1 products are faster single-threaded than the cost of waking a thread pool.

Without a C++ compiler (or with ``ASR_PATHWAYS_SPARSE_BACKEND=torch``) the layer still works and
gives the same results through a dense masked ``F.linear``; :func:`kernel_backend` says which path
is active. Inference only: no gradients flow through the sparse kernel.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "BlockSparseLinear", "pack", "unpack", "kernel_backend", "sparse_linear", "kernel_wins", "PARALLEL_MIN_WORK",
    "COST_TABLE_US",
]

# stored values x batch rows from which a call uses torch.get_num_threads() threads
PARALLEL_MIN_WORK = 1 << 18

# Per-call choice between the kernel and dense F.linear (``BlockSparseLinear.mode == "auto"``).
# Predicted µs for a call with n input rows (1 thread), fitted by least squares (non-negative) on
# layers of 64x64 .. 1024x256 at 50/70/90% 8x1-block sparsity, n in {1, 2, 4, ..., 128}, on the
# development machine (Intel Xeon with AVX-512, torch 2.13, MKL); see benchmarks/sparse_inference.py:
#   dense(n)  = a + b * out * in / 1000        kernel(n) = c + d * stored / 1000 + e * in / 1000
# For n between two rows the row below is used with its per-element terms scaled by n / n_row
# (n > 128: the last row, scaled). The kernel is used when kernel(n) * KERNEL_MARGIN < dense(n), so a
# layer too small to win (the per-call cost of ~1 µs more than F.linear) or too dense stays dense.
# 1x1 (CSR) weights count each stored value twice (gathers). Matrices over ~1 MB make dense
# memory-bound and slower than predicted: the rule errs towards dense there, never towards the kernel.
COST_TABLE_US = (
    # n,   a,     b,     c,      d,     e
    (1, 2.912, 0.058, 4.135, 0.060, 0.0),
    (2, 3.166, 0.039, 4.347, 0.119, 0.0),
    (4, 2.875, 0.087, 4.741, 0.233, 0.0),
    (8, 3.771, 0.144, 5.564, 0.217, 1.735),
    (16, 1.613, 0.329, 5.993, 0.245, 0.210),
    (32, 1.939, 0.502, 6.878, 0.514, 1.227),
    (64, 2.181, 0.832, 9.655, 0.984, 6.017),
    (128, 1.322, 1.561, 15.443, 2.095, 6.350),
)
KERNEL_MARGIN = 1.1

_SOURCE = Path(__file__).with_name("sparse_kernels.cpp")
_ABI_VERSION = 2


# ----------------------------------------------------------------------------- kernel loading


def _cpu_fingerprint() -> str:
    """Flags of this CPU, so a build made with -march=native is never reused on another CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def _kernels():
    """The compiled extension module (``linear``), or None when it cannot be built."""
    if os.environ.get("ASR_PATHWAYS_SPARSE_BACKEND", "").lower() == "torch":
        return None
    try:
        from torch.utils import cpp_extension

        # the `ninja` wheel installs its binary beside this interpreter; make it findable
        bindir = os.path.dirname(sys.executable)
        if bindir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
        tag = hashlib.sha1(
            (_SOURCE.read_bytes().hex() + _cpu_fingerprint() + torch.__version__).encode()
        ).hexdigest()[:10]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cpp_extension's notes about compiler versions
            mod = cpp_extension.load(
                name=f"asrp_sparse_ext_{tag}",
                sources=[str(_SOURCE)],
                extra_cflags=["-O3", "-march=native", "-fopenmp"],
                extra_ldflags=["-fopenmp"],
                is_python_module=True,
                verbose=False,
            )
        if getattr(mod, "ABI_VERSION", None) != _ABI_VERSION:
            raise RuntimeError("stale sparse kernel build")
    except Exception as e:  # no compiler, no write access to the build folder, ...
        warnings.warn(
            f"asr_pathways: block-sparse C++ kernels unavailable ({type(e).__name__}: {e}); "
            "BlockSparseLinear falls back to dense masked F.linear (same results, no speed-up).",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return mod


def kernel_backend() -> str:
    """``"cpp"`` when the compiled kernels are in use, ``"torch"`` for the dense fallback."""
    return "cpp" if _kernels() is not None else "torch"


# ----------------------------------------------------------------------------- packing


def _norm_block(block) -> tuple[int, int]:
    b = tuple(int(v) for v in block)
    if b not in ((8, 1), (1, 1)):
        raise ValueError(f"block must be (8, 1) or (1, 1), got {block}")
    return b  # type: ignore[return-value]


def is_block_structured(mask: torch.Tensor, block=(8, 1)) -> bool:
    """True when every 8x1 block of ``mask`` is all kept or all dropped (edge block: its real rows)."""
    r = _norm_block(block)[0]
    if r == 1:
        return True
    out, inn = mask.shape
    pad = (-out) % r
    m = mask.bool()
    if pad:
        m = torch.cat([m, m[-1:].expand(pad, inn)], 0)
    m = m.view(-1, r, inn)
    return bool((m.all(1) == m.any(1)).all())


def pack(weight: torch.Tensor, mask: torch.Tensor | None = None, block=(8, 1)) -> dict[str, torch.Tensor]:
    """Pack ``weight * mask`` (out, in) into ``{"indptr", "cols", "values"}`` (see module doc).

    ``values`` has shape (nnzb, R) float32 for blocks (R, 1); ``indptr`` has ceil(out/R) + 1 int32
    entries, ``cols`` nnzb int32 entries (sorted within each block row).
    """
    r = _norm_block(block)[0]
    w = weight.detach().to("cpu", torch.float32)
    if w.dim() != 2:
        raise ValueError(f"weight must be 2-D, got shape {tuple(w.shape)}")
    out, inn = w.shape
    m = torch.ones_like(w, dtype=torch.bool) if mask is None else mask.detach().to("cpu").bool()
    if m.shape != w.shape:
        raise ValueError(f"mask shape {tuple(m.shape)} != weight shape {tuple(w.shape)}")
    if out * inn >= 2**31:
        raise ValueError("matrices with 2**31 or more entries are not supported")
    wm = torch.where(m, w, torch.zeros((), dtype=w.dtype))
    pad = (-out) % r
    if pad:
        wm = torch.cat([wm, wm.new_zeros(pad, inn)], 0)
        m = torch.cat([m, m.new_zeros(pad, inn)], 0)
    nbr = (out + pad) // r
    keep = m.view(nbr, r, inn).any(1)  # (nbr, in): block kept
    counts = keep.sum(1)
    indptr = torch.zeros(nbr + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(counts, 0)
    bi, bj = keep.nonzero(as_tuple=True)  # row-major order: sorted by block row, then column
    values = wm.view(nbr, r, inn)[bi, :, bj].contiguous()  # (nnzb, r)
    return {"indptr": indptr.to(torch.int32), "cols": bj.to(torch.int32), "values": values}


def unpack(indptr: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Dense (out, in) float32 weight from packed blocks (inverse of :func:`pack` on kept entries)."""
    out, inn = int(shape[0]), int(shape[1])
    r = values.shape[1]
    nbr = indptr.numel() - 1
    dense = torch.zeros(nbr, inn, r, dtype=values.dtype)
    rows = torch.repeat_interleave(torch.arange(nbr), (indptr[1:] - indptr[:-1]).long())
    dense[rows, cols.long()] = values
    return dense.permute(0, 2, 1).reshape(nbr * r, inn)[:out].contiguous()


# ----------------------------------------------------------------------------- the product


def sparse_linear(
    x: torch.Tensor,
    indptr: torch.Tensor,
    cols: torch.Tensor,
    values: torch.Tensor,
    out_features: int,
    bias: torch.Tensor | None = None,
    num_threads: int | None = None,
) -> torch.Tensor:
    """``x @ W.T + bias`` for packed W (see :func:`pack`); x: (..., in_features), any float dtype."""
    lib = _kernels()
    if lib is None or x.device.type != "cpu":
        w = unpack(indptr.cpu(), cols.cpu(), values.cpu(), (out_features, x.shape[-1])).to(x.device, x.dtype)
        return F.linear(x, w, None if bias is None else bias.to(x.dtype))
    return lib.linear(x.detach(), indptr, cols, values, bias, out_features, num_threads or 0, PARALLEL_MIN_WORK)


def predicted_us(out_features: int, in_features: int, stored: int, n: int, block=(8, 1)) -> tuple[float, float]:
    """(dense µs, kernel µs) predicted by :data:`COST_TABLE_US` for a call with ``n`` input rows."""
    row = COST_TABLE_US[0]
    for r in COST_TABLE_US:
        if r[0] <= n:
            row = r
    nr, a, b, c, d, e = row
    scale = max(n, 1) / nr
    if tuple(block) == (1, 1):
        stored = 2 * stored
    dense = a + b * scale * out_features * in_features / 1000
    kernel = c + scale * (d * stored + e * in_features) / 1000
    return dense, kernel


def kernel_wins(out_features: int, in_features: int, stored: int, n: int, block=(8, 1)) -> bool:
    """Whether the cost model predicts the kernel to beat dense ``F.linear`` by :data:`KERNEL_MARGIN`."""
    dense, kernel = predicted_us(out_features, in_features, stored, n, block)
    return kernel * KERNEL_MARGIN < dense


class BlockSparseLinear(nn.Module):
    """A Linear layer that stores and multiplies only its kept 8x1 (or 1x1) blocks, on the CPU.

    ``forward(x)`` equals ``F.linear(x, weight * mask, bias)`` to float rounding for any input shape
    (..., in_features). Build with :meth:`from_dense` or :meth:`from_linear`; the packed arrays are
    buffers, so ``state_dict()`` holds exactly what is stored.
    """

    def __init__(self, in_features: int, out_features: int, block=(8, 1), bias: bool = True) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.block = _norm_block(block)
        r = self.block[0]
        nbr = (self.out_features + r - 1) // r
        self.register_buffer("indptr", torch.zeros(nbr + 1, dtype=torch.int32))
        self.register_buffer("cols", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("values", torch.zeros(0, r, dtype=torch.float32))
        if bias:
            self.register_buffer("bias", torch.zeros(self.out_features, dtype=torch.float32))
        else:
            self.bias = None
        #: "auto" (cost model per call, see :func:`kernel_wins`), "kernel" (always) or "dense" (always)
        self.mode = "auto"
        self._choice: dict[int, bool] = {}
        self._dense_weight: torch.Tensor | None = None
        self._dense_bias: torch.Tensor | None = None

    @classmethod
    def from_dense(
        cls, weight: torch.Tensor, mask: torch.Tensor | None = None, bias: torch.Tensor | None = None, block="auto"
    ) -> "BlockSparseLinear":
        """From a dense (out, in) weight, an optional bool mask (True = kept) and an optional bias.

        ``block="auto"`` picks 8x1 unless the mask is unstructured *and* 8x1 storage would hold more
        than 1.5x the kept entries (then 1x1 CSR).
        """
        out, inn = weight.shape
        if block == "auto":
            block = (8, 1)
            if mask is not None and not is_block_structured(mask, (8, 1)):
                kept = int(mask.bool().sum())
                packed8 = int(pack(torch.ones_like(weight, dtype=torch.float32), mask, (8, 1))["values"].numel())
                if packed8 > 1.5 * max(kept, 1):
                    block = (1, 1)
        layer = cls(inn, out, block=block, bias=bias is not None)
        p = pack(weight, mask, layer.block)
        layer.indptr, layer.cols, layer.values = p["indptr"], p["cols"], p["values"]
        layer._choice.clear()
        if bias is not None:
            layer.bias = bias.detach().to("cpu", torch.float32).clone().contiguous()
        return layer

    @classmethod
    def from_linear(cls, linear: nn.Linear, mask: torch.Tensor | None = None, block="auto") -> "BlockSparseLinear":
        return cls.from_dense(linear.weight, mask, linear.bias, block=block)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # packed sizes (and the block shape) vary with the mask: take the stored ones
        for name in ("indptr", "cols", "values"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key]))
        self.block = _norm_block((self.values.shape[1], 1))
        self._choice.clear()
        self._dense_weight = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def nnz(self) -> int:
        """Stored values (kept blocks x block size, including zeros inside partly kept blocks)."""
        return int(self.values.numel())

    @property
    def density(self) -> float:
        return self.nnz / max(1, self.in_features * self.out_features)

    def to_dense(self) -> torch.Tensor:
        """The dense (out, in) weight ``weight * mask``."""
        return unpack(self.indptr, self.cols, self.values, (self.out_features, self.in_features))

    def use_kernel(self, n: int) -> bool:
        """Whether a call with ``n`` input rows runs the kernel (else dense ``F.linear``), per :attr:`mode`."""
        if self.mode != "auto":
            return self.mode == "kernel"
        hit = self._choice.get(n)
        if hit is None:
            hit = kernel_wins(self.out_features, self.in_features, self.values.numel(), n, self.block)
            if len(self._choice) < 4096:
                self._choice[n] = hit
        return hit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lib = _kernels()
        if lib is not None and x.device.type == "cpu" and self.use_kernel(x.numel() // max(1, self.in_features)):
            return lib.linear(x, self.indptr, self.cols, self.values, self.bias, self.out_features, 0, PARALLEL_MIN_WORK)
        w = self._dense_weight
        if w is None or w.dtype != x.dtype or w.device != x.device:
            # built on first use and kept (not in the state_dict); same values as the packed blocks
            w = self._dense_weight = self.to_dense().to(x.device, x.dtype)
            self._dense_bias = None if self.bias is None else self.bias.to(x.device, x.dtype)
        return F.linear(x, w, self._dense_bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, block={self.block}, "
            f"density={self.density:.3f}, bias={self.bias is not None}, mode={self.mode}"
        )
