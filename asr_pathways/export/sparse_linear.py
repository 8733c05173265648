"""CPU block-sparse linear layers (8x1 blocks and unstructured 1x1) that beat dense at batch 1.

torch cannot multiply with (8, 1) BSR blocks on the CPU, and its CSR kernels are 3-8x *slower* than
dense at batch 1 (docs: /work/shared/notes/MEASURED.md). This module stores only the kept blocks and
multiplies with a small C++ kernel (``sparse_kernels.cpp``), built on first use by
:mod:`torch.utils.cpp_extension` with ``g++ -O3 -march=native -fopenmp`` and called through ctypes.

Storage (``BlockSparseLinear`` buffers, what :func:`pack` returns):

* ``block=(8, 1)``: a BSR matrix whose blocks are 8 consecutive output rows x 1 input column.
  Block row ``i`` (output rows ``8i .. 8i+7``) holds blocks ``k in [indptr[i], indptr[i+1])`` at
  input column ``cols[k]`` with values ``values[k, 0:8]`` (contiguous). A block is stored when any of
  its 8 entries is kept; dropped entries inside a stored block are stored as 0, so the result equals
  ``F.linear(x, weight * mask, bias)`` for *any* mask, block-structured or not. When ``out_features``
  is not a multiple of 8 the last block row is padded with zero rows that are never written out.
* ``block=(1, 1)``: CSR, ``values`` of shape ``(nnz, 1)``.

Kernels: batch 1 runs one 8-wide vector dot product per block row (``y[8i:8i+8] += x[j] * v[k]``);
batch > 1 transposes the input once and does an 8 x 16 outer-product update per kept block, held in
registers. Results equal dense to float rounding (the summation order differs).

Threads: a call uses ``torch.get_num_threads()`` OpenMP threads (the same libgomp pool as torch)
when it has at least :data:`PARALLEL_MIN_WORK` stored values x batch rows, otherwise one thread:
small batch-1 products are faster single-threaded than the cost of waking a thread pool.

Without a C++ compiler (or with ``ASR_PATHWAYS_SPARSE_BACKEND=torch``) the layer still works and
gives the same results through a dense masked ``F.linear``; :func:`kernel_backend` says which path
is active. Inference only: no gradients flow through the sparse kernel.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["BlockSparseLinear", "pack", "unpack", "kernel_backend", "sparse_linear", "PARALLEL_MIN_WORK"]

# stored values x batch rows from which a call uses torch.get_num_threads() threads
PARALLEL_MIN_WORK = 1 << 18

_SOURCE = Path(__file__).with_name("sparse_kernels.cpp")
_ABI_VERSION = 1


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
def _kernels() -> ctypes.CDLL | None:
    if os.environ.get("ASR_PATHWAYS_SPARSE_BACKEND", "").lower() == "torch":
        return None
    try:
        from torch.utils import cpp_extension

        # the `ninja` wheel installs its binary beside this interpreter; make it findable
        bindir = os.path.dirname(sys.executable)
        if bindir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
        tag = hashlib.sha1((_SOURCE.read_bytes().hex() + _cpu_fingerprint()).encode()).hexdigest()[:10]
        path = cpp_extension.load(
            name=f"asrp_sparse_kernels_{tag}",
            sources=[str(_SOURCE)],
            extra_cflags=["-O3", "-march=native", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
            verbose=False,
        )
        lib = ctypes.CDLL(str(path) if path else _find_built(f"asrp_sparse_kernels_{tag}"))
        if lib.asrp_sparse_abi_version() != _ABI_VERSION:
            raise RuntimeError("stale sparse kernel build")
    except Exception as e:  # no compiler, no write access to the build folder, ...
        warnings.warn(
            f"asr_pathways: block-sparse C++ kernels unavailable ({type(e).__name__}: {e}); "
            "BlockSparseLinear falls back to dense masked F.linear (same results, no speed-up).",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    i64, i32p, fp = ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p
    for fn in ("asrp_bsr8_mv", "asrp_bsr8_mm", "asrp_csr_mv", "asrp_csr_mm"):
        f = getattr(lib, fn)
        f.argtypes = [i64, i32p, i32p, fp, fp, i64, i64, fp, fp, i64, ctypes.c_int]
        f.restype = None
    return lib


def _find_built(name: str) -> str:
    from torch.utils.cpp_extension import _get_build_directory

    return str(Path(_get_build_directory(name, verbose=False)) / f"{name}.so")


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
    in_features = x.shape[-1]
    if lib is None or x.device.type != "cpu":
        w = unpack(indptr.cpu(), cols.cpu(), values.cpu(), (out_features, in_features)).to(x.device, x.dtype)
        return F.linear(x, w, None if bias is None else bias.to(x.dtype))
    lead = x.shape[:-1]
    x2 = x.detach().reshape(-1, in_features)
    if x2.dtype != torch.float32:
        x2 = x2.float()
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    n = x2.shape[0]
    y = torch.empty(n, out_features, dtype=torch.float32)
    if n == 0 or out_features == 0:
        return y.reshape(*lead, out_features).to(x.dtype)
    r = values.shape[1]
    nnz = values.numel()
    if num_threads is None:
        num_threads = torch.get_num_threads() if nnz * n >= PARALLEL_MIN_WORK else 1
    b = None if bias is None else bias.detach()
    if b is not None and (b.dtype != torch.float32 or not b.is_contiguous() or b.device.type != "cpu"):
        b = b.to("cpu", torch.float32).contiguous()
    bptr = b.data_ptr() if b is not None else None
    args_head = (out_features, indptr.data_ptr(), cols.data_ptr(), values.data_ptr())
    if n == 1 or (n <= 4 and r == 8):
        fn = lib.asrp_bsr8_mv if r == 8 else lib.asrp_csr_mv
        if n > 1 and x2.stride(0) < in_features:
            x2 = x2.contiguous()
        fn(*args_head, x2.data_ptr(), x2.stride(0) if n > 1 else in_features, n, bptr, y.data_ptr(), out_features, int(num_threads))
    else:
        np_ = (n + 15) // 16 * 16
        xt = x2.new_zeros(in_features, np_)
        xt[:, :n] = x2.t()
        fn = lib.asrp_bsr8_mm if r == 8 else lib.asrp_csr_mm
        fn(*args_head, xt.data_ptr(), np_, n, bptr, y.data_ptr(), out_features, int(num_threads))
    y = y.reshape(*lead, out_features)
    return y if x.dtype == torch.float32 else y.to(x.dtype)


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_linear(x, self.indptr, self.cols, self.values, self.out_features, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, block={self.block}, "
            f"density={self.density:.3f}, bias={self.bias is not None}"
        )
