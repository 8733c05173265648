"""Compact export of a pathway model: each pruned weight stored once, plus a block bitmap per pathway.

Layout of an exported model folder::

    MODEL_DIR/
      model.json             format, model config, vocab size, pathways, per-weight shape, block and
                             kept blocks per pathway, a SHA-256 per tensor (verified on load:
                             export/integrity.py)
      weights.safetensors    dense/<name>             non-prunable parameters and buffers (float32,
                                                      or the export's ``dtype``)
                             values/<name>            (nnzb, R) values of the blocks kept by *any*
                                                      exported pathway (the union), block-row order
                             bitmap/<pathway>/<name>  uint8, packed bits (LSB first) over the block
                                                      grid (ceil(out/R), in): 1 = block kept
      tokenizer.model        copied from the run (when given)

A prunable weight W (out, in) (tensors with more dims are viewed as (shape[0], -1)) uses R x 1 blocks
with R = 8 when every exported mask of W is 8x1-structured, else R = 1 (unstructured, exact for any
mask). The union's block grid is the OR of the pathways' bitmaps, so the stored values are located
without storing the union separately. Loading pathway l gives exactly θ ⊙ m_l, the weights the
training-time ``PathwayModel`` uses inside ``with pm.pathway(l):``.

``export_pathways(..., languages=["fr"])`` writes a single-pathway model: only fr's blocks.

``dtype="float16"`` (or ``"bfloat16"``; CLI ``--dtype``) stores every floating tensor at half
width, for half the bytes. Loading then gives θ ⊙ m_l rounded to that type (and cast back to
float32 for computation): exactly the training-time weights passed through ``.to(dtype)``, not the
training-time weights themselves. The default, ``float32``, is lossless.

Only what decoding needs is written: an RNN-T model's CTC head (``ctc_head.*``, an auxiliary
training loss that RNN-T greedy decoding never reads; ``greedy_decode(method="auto")`` decodes with
the transducer whenever there is a joiner) is dropped unless ``keep_ctc=True`` (CLI ``--keep-ctc``);
the exported config then says ``ctc_weight: 0`` and ``model.json`` lists the dropped tensors. The
pruned RNN-T loss's trivial joiner (``simple_am_proj``/``simple_lm_proj``) is always dropped and
the config says ``rnnt_loss: full`` (the loss does not change what decoding computes). A
CTC-only model keeps its head (it is its decoder). A run without masks exports as one pathway named
``dense`` that stores every weight dense.

``model.json["sizes"]`` breaks the file down: ``values_bytes`` (kept blocks of the prunable weights),
``bitmap_bytes``, ``dense_remainder_bytes`` (never-pruned tensors: front-end, embedding, norms,
biases, depthwise convolutions), ``header_bytes``; ``ratio_to_dense`` is against the *full* dense
float32 model (CTC head included), ``ratio_to_dense_decoding`` against the dense float32 tensors
this file holds. ``sparsity_prunable`` is the fraction of the prunable weights that are zero in the
stored pathways (the union for several), ``sparsity_all_parameters`` the same zeros over every
parameter of the full model.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from asr_pathways.errors import InputError
from asr_pathways.io import atomic_write_bytes, atomic_write_json, load_tensors, read_json, save_tensors

from .bits import pack_bits, unpack_bits
from .integrity import checksums, verify
from .sparse_linear import BlockSparseLinear, is_block_structured

__all__ = [
    "FORMAT",
    "pack_bits",
    "unpack_bits",
    "block_grid_of",
    "export_pathways",
    "CompactModel",
    "masked_state_dict",
    "use_sparse_kernels",
    "dense_float32_bytes",
    "folder_bytes",
]

FORMAT = "asr-pathways/compact"
FORMAT_VERSION = 2  # 2: model.json holds a checksum per tensor and kept_blocks per weight (export/integrity.py)
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
WEIGHTS_NAME = "weights.safetensors"
META_NAME = "model.json"
TOKENIZER_NAME = "tokenizer.model"


# ----------------------------------------------------------------------------- blocks


def _as_2d(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1) if t.dim() != 2 else t


def block_grid_of(mask2d: torch.Tensor, rows: int) -> torch.Tensor:
    """(ceil(out/rows), in) bool: block (i, j) holds a kept entry of rows rows*i .. rows*i+rows-1."""
    out, inn = mask2d.shape
    pad = (-out) % rows
    m = mask2d.bool()
    if pad:
        m = torch.cat([m, m.new_zeros(pad, inn)], 0)
    return m.view(-1, rows, inn).any(1)


def _expand_grid(grid: torch.Tensor, rows: int, out: int) -> torch.Tensor:
    return grid.repeat_interleave(rows, 0)[:out]


def _padded_blocks(w2d: torch.Tensor, rows: int) -> torch.Tensor:
    out, inn = w2d.shape
    pad = (-out) % rows
    if pad:
        w2d = torch.cat([w2d, w2d.new_zeros(pad, inn)], 0)
    return w2d.reshape(-1, rows, inn)  # (nbr, rows, in)


# ----------------------------------------------------------------------------- export


def _mask_dict(m: Any) -> dict[str, torch.Tensor]:
    return {str(k): v for k, v in (m.items() if hasattr(m, "items") else dict(m).items())}


def export_pathways(
    model: nn.Module,
    masks: Mapping[str, Mapping[str, torch.Tensor]],
    out_dir: str | Path,
    config_dict: Mapping[str, Any],
    tokenizer_path: str | Path | None = None,
    languages: list[str] | None = None,
    extra_meta: Mapping[str, Any] | None = None,
    keep_ctc: bool = False,
    dtype: str = "float32",
) -> dict[str, Any]:
    """Write a compact model for the pathways ``languages`` (default: all of ``masks``).

    ``model`` holds the shared weights θ; ``masks`` maps pathway -> MaskSet (or dict name -> bool
    tensor; True = kept); ``config_dict`` is the ``model:`` section (what ``ModelConfig.from_dict``
    takes). ``dtype`` is the storage type of the floating tensors (``float32``, ``float16`` or
    ``bfloat16``). Returns the metadata written to ``model.json`` (with ``sizes``).
    """
    if dtype not in STORAGE_DTYPES:
        raise InputError(f"unknown storage dtype {dtype!r}", field="dtype", expected=", ".join(STORAGE_DTYPES))
    store = STORAGE_DTYPES[dtype]
    out_dir = Path(out_dir)
    masks = {str(k): _mask_dict(v) for k, v in masks.items()}
    if languages is None:
        languages = sorted(masks)
    missing = [l for l in languages if l not in masks]
    if missing:
        raise InputError(
            f"no pathway named {', '.join(missing)}", field="language", expected="one of " + ", ".join(sorted(masks))
        )
    if not languages:
        raise InputError("nothing to export: no pathway masks", expected="a run pruned into pathways")
    full_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    config_dict = dict(config_dict)
    state = dict(full_state)
    dropped: list[str] = []
    transducer = getattr(model, "joiner", None) is not None
    if transducer and not keep_ctc:
        dropped = sorted(k for k in state if k.startswith("ctc_head."))
        for k in dropped:
            del state[k]
        if "ctc_weight" in config_dict or dropped:
            config_dict["ctc_weight"] = 0.0
    # the pruned RNN-T loss's trivial joiner serves training only: decoding never reads it
    simple = sorted(k for k in state if k.startswith(("simple_am_proj.", "simple_lm_proj.")))
    for k in simple:
        del state[k]
    dropped += simple
    if simple or config_dict.get("rnnt_loss") == "pruned":
        config_dict["rnnt_loss"] = "full"
    names = sorted({n for l in languages for n in masks[l]})
    unknown = [n for n in names if n not in state]
    if unknown:
        raise InputError(f"masks name unknown weights: {unknown[:5]}", field="masks")
    tensors: dict[str, torch.Tensor] = {}
    prunable: dict[str, Any] = {}
    for name, t in state.items():
        if name not in names:
            tensors[f"dense/{name}"] = t.to(store) if t.is_floating_point() else t
    for name in names:
        w = state[name].float()
        w2 = _as_2d(w)
        # a pathway without a mask for this weight keeps it dense
        ms = [_as_2d(masks[l][name].bool().cpu()) if name in masks[l] else torch.ones_like(w2, dtype=torch.bool) for l in languages]
        for m in ms:
            if m.shape != w2.shape:
                raise InputError(f"mask of {name} has shape {tuple(m.shape)}, weight {tuple(w2.shape)}", field="masks")
        rows = 8 if all(is_block_structured(m, (8, 1)) for m in ms) else 1
        grids = [block_grid_of(m, rows) for m in ms]
        union = torch.stack(grids).any(0)
        bi, bj = union.nonzero(as_tuple=True)
        tensors[f"values/{name}"] = _padded_blocks(w2, rows)[bi, :, bj].to(store).contiguous()
        for l, g in zip(languages, grids):
            tensors[f"bitmap/{l}/{name}"] = pack_bits(g)
        kept = int(sum(m.sum() for m in ms))  # kept entries, summed over the exported pathways
        prunable[name] = {"shape": list(w.shape), "block": [rows, 1], "stored_blocks": int(bi.numel()), "kept": kept,
                          "kept_blocks": {l: int(g.sum()) for l, g in zip(languages, grids)}}
    out_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config_dict,
        "vocab_size": int(getattr(model, "vocab_size", 0)) or None,
        "pathways": list(languages),
        "prunable": prunable,
        "tokenizer": None,
        "dropped": dropped,
        "dtype": dtype,
        "checksums": checksums(tensors),
    }
    meta.update(dict(extra_meta or {}))
    save_tensors(out_dir / WEIGHTS_NAME, tensors, {"format": FORMAT, "format_version": FORMAT_VERSION})
    if tokenizer_path is not None:
        atomic_write_bytes(out_dir / TOKENIZER_NAME, Path(tokenizer_path).read_bytes())
        meta["tokenizer"] = TOKENIZER_NAME
    meta["sizes"] = size_report(tensors, out_dir / WEIGHTS_NAME, full_state, state, prunable, len(languages))
    atomic_write_json(out_dir / META_NAME, meta)
    return meta


def size_report(
    tensors: Mapping[str, torch.Tensor], weights_path: Path, full_state: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor], prunable: Mapping[str, Any], n_pathways: int,
) -> dict[str, Any]:
    """Sizes of an export: the file broken down, ratios to the dense model, sparsity (see module doc)."""
    nbytes = lambda prefix: sum(t.numel() * t.element_size() for k, t in tensors.items() if k.startswith(prefix))  # noqa: E731
    file_bytes = weights_path.stat().st_size
    values, bitmaps, rest = nbytes("values/"), nbytes("bitmap/"), nbytes("dense/")
    full = sum(t.numel() * 4 for t in full_state.values())
    decoding = sum(t.numel() * 4 for t in state.values())
    params_all = sum(t.numel() for t in full_state.values() if t.is_floating_point())
    n_prunable = sum(math.prod(i["shape"]) for i in prunable.values())
    kept = sum(i["kept"] for i in prunable.values()) / max(1, n_pathways)  # mean over pathways
    zeros = n_prunable - kept
    return {
        "weights_bytes": file_bytes,
        "values_bytes": values,
        "bitmap_bytes": bitmaps,
        "dense_remainder_bytes": rest,
        "header_bytes": file_bytes - values - bitmaps - rest,
        "dense_float32_bytes": full,
        "dense_float32_decoding_bytes": decoding,
        "ratio_to_dense": file_bytes / full,
        "ratio_to_dense_decoding": file_bytes / decoding,
        "prunable_parameters": n_prunable,
        "all_parameters": params_all,
        "sparsity_prunable": zeros / n_prunable if n_prunable else 0.0,
        "sparsity_all_parameters": zeros / params_all if params_all else 0.0,
    }


def dense_float32_bytes(model: nn.Module) -> int:
    """Bytes of the model's state as float32 tensors (what a dense float32 checkpoint stores)."""
    return sum(t.numel() * 4 for t in model.state_dict().values())


def folder_bytes(path: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- loading


@dataclass
class CompactModel:
    """An exported model folder, loaded: ``state_dict(pathway)``, ``model(pathway)``, ``masks(pathway)``."""

    path: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @classmethod
    def load(cls, path: str | Path) -> "CompactModel":
        path = Path(path)
        meta = read_json(path / META_NAME)
        if meta.get("format") != FORMAT:
            raise InputError("not a compact asr-pathways model", path=path / META_NAME, expected=f"format {FORMAT!r}")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise InputError(
                f"format version {meta['format_version']} is newer than this asr-pathways ({FORMAT_VERSION})",
                path=path / META_NAME, hint="upgrade asr-pathways",
            )
        tensors, _ = load_tensors(path / WEIGHTS_NAME)
        verify(path / WEIGHTS_NAME, meta, tensors)
        return cls(path, meta, tensors)

    @property
    def pathways(self) -> list[str]:
        return list(self.meta["pathways"])

    @property
    def tokenizer_path(self) -> Path | None:
        t = self.meta.get("tokenizer")
        return self.path / t if t else None

    def _check(self, pathway: str) -> None:
        if pathway not in self.pathways:
            raise InputError(f"no pathway {pathway!r} in this model", path=self.path, expected="one of " + ", ".join(self.pathways))

    def block_grid(self, pathway: str, name: str) -> torch.Tensor:
        info = self.meta["prunable"][name]
        shape = info["shape"]
        rows = info["block"][0]
        out, inn = shape[0], math.prod(shape[1:])
        nbr = -(-out // rows)
        return unpack_bits(self.tensors[f"bitmap/{pathway}/{name}"], nbr * inn).view(nbr, inn)

    def masks(self, pathway: str) -> dict[str, torch.Tensor]:
        """Element masks (True = kept) of ``pathway``, shaped like the weights."""
        self._check(pathway)
        out = {}
        for name, info in self.meta["prunable"].items():
            shape = info["shape"]
            grid = self.block_grid(pathway, name)
            out[name] = _expand_grid(grid, info["block"][0], shape[0]).reshape(shape)
        return out

    @property
    def dtype(self) -> str:
        """Storage type of the floating tensors (``float32`` unless exported with ``dtype``)."""
        return str(self.meta.get("dtype", "float32"))

    def state_dict(self, pathway: str) -> dict[str, torch.Tensor]:
        """The full model state (float32) with every pruned weight equal to θ ⊙ m_pathway (rounded
        to the storage type when that is not float32)."""
        self._check(pathway)
        sd = {k[len("dense/"):]: (v.float() if v.is_floating_point() else v) for k, v in self.tensors.items() if k.startswith("dense/")}
        for name, info in self.meta["prunable"].items():
            shape = info["shape"]
            rows = info["block"][0]
            out, inn = shape[0], math.prod(shape[1:])
            grids = [self.block_grid(l, name) for l in self.pathways]
            union = torch.stack(grids).any(0)
            mine = self.block_grid(pathway, name)
            vals = self.tensors[f"values/{name}"]
            keep = mine[union]  # which stored (union) blocks belong to this pathway, in stored order
            bi, bj = mine.nonzero(as_tuple=True)
            blocks = torch.zeros(union.shape[0], rows, inn, dtype=torch.float32)
            blocks[bi, :, bj] = vals[keep].float()
            sd[name] = blocks.reshape(-1, inn)[:out].reshape(shape).clone()
        return sd

    def model(self, pathway: str, sparse_kernels: bool = False, kernel_mode: str = "auto") -> nn.Module:
        """An ``RNNTModel`` in eval mode holding θ ⊙ m_pathway; with ``sparse_kernels`` its pruned
        Linear layers are :class:`BlockSparseLinear` (attention and LSTM stay dense-masked), each in
        ``kernel_mode`` ("auto": kernel or dense F.linear per call, whichever the cost model
        predicts faster; "kernel": always the kernel)."""
        from asr_pathways.asr.model import ModelConfig, RNNTModel

        model = RNNTModel(ModelConfig.from_dict(self.meta["config"]), int(self.meta["vocab_size"]))
        model.load_state_dict(self.state_dict(pathway))
        model.eval()
        if sparse_kernels:
            use_sparse_kernels(model, self.masks(pathway), mode=kernel_mode)
        return model


def masked_state_dict(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with each masked weight multiplied by its mask (θ ⊙ m)."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, m in mask.items():
        sd[name] = sd[name] * m.to(sd[name].device, torch.bool)
    return sd


def use_sparse_kernels(model: nn.Module, mask: Mapping[str, torch.Tensor], mode: str = "auto") -> nn.Module:
    """Replace, in place, every plain ``nn.Linear`` whose weight is in ``mask`` by a
    :class:`BlockSparseLinear` holding weight ⊙ mask. Linear layers used through their weight
    tensors (``nn.MultiheadAttention.out_proj``) and LSTMs are left as they are."""
    mask = dict(mask)
    for mod_name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{mod_name}.{child_name}" if mod_name else child_name
            if type(child) is nn.Linear and f"{full}.weight" in mask:
                m = mask[f"{full}.weight"].to(child.weight.device, torch.bool)
                layer = BlockSparseLinear.from_dense(child.weight * m, m, child.bias)
                layer.mode = mode
                setattr(module, child_name, layer)
    return model


def copy_tokenizer(src: str | Path, out_dir: str | Path) -> Path:
    dst = Path(out_dir) / TOKENIZER_NAME
    shutil.copyfile(src, dst)
    return dst
