"""Fbank features computed once per corpus split and cached on disk, keyed by the feature settings.

Training reads every utterance many times (one epoch of the 17-hour corpus is a few minutes of
training), so decoding audio and computing fbank inline costs the same work again each epoch. A
:class:`FeatureCache` computes the features of one (language, split) once, writes them to
``CORPUS/features/KEY/LANG/SPLIT.npy`` (all frames, concatenated, float32) with an index
``SPLIT.json`` (cut id -> first frame, frame count), and afterwards serves them from a read-only
memory map. ``KEY`` hashes the feature settings (:data:`FBANK_SETTINGS`) and the bytes of the
split's cut manifest, so changing either builds a new cache instead of reusing a stale one. Both
files are written atomically (temp file + rename), so an interrupted build leaves no partial
cache; two processes building the same split at once write identical bytes.

Building holds one split's frames in memory, briefly twice (about 0.9 GB per 8 hours of audio at
float32; a 100-hour language would need a streaming writer, not written yet). Under DDP every rank
builds a missing split itself; they write identical bytes.

The cached features are bit-identical to :func:`~asr_pathways.data.batches.compute_fbank` on the
same audio (the same function computes them).

>>> import tempfile
>>> from asr_pathways.data.features import FBANK_SETTINGS, settings_key
>>> len(settings_key(FBANK_SETTINGS, b"manifest bytes"))
16
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..io import atomic_write_text

# Everything that changes the numbers a cache holds. Bump "version" when compute_fbank changes.
FBANK_SETTINGS: dict[str, Any] = {
    "kind": "kaldi-fbank",
    "num_mel_bins": 80,
    "sampling_rate": 16000,
    "frame_shift_ms": 10,
    "frame_length_ms": 25,
    "dither": 0.0,
    "snip_edges": False,
    "dtype": "float32",
    "version": 1,
}


def settings_key(settings: dict[str, Any], manifest_bytes: bytes) -> str:
    """16 hex digits identifying (feature settings, manifest content)."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    h.update(hashlib.sha256(manifest_bytes).digest())
    return h.hexdigest()[:16]


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class SplitFeatures:
    """The cached features of one (language, split): ``get(cut_id) -> (T, 80) float32 tensor``."""

    def __init__(self, frames: np.ndarray, index: dict[str, tuple[int, int]], path: Path) -> None:
        self.frames = frames
        self.index = index
        self.path = path

    def __contains__(self, cut_id: str) -> bool:
        return cut_id in self.index

    def num_frames(self, cut_id: str) -> int:
        return self.index[cut_id][1]

    def view(self, cut_id: str) -> np.ndarray:
        """The cut's (T, 80) frames as a view of the cache (no copy; read-only when memory-mapped)."""
        try:
            start, n = self.index[cut_id]
        except KeyError:
            raise InputError(f"cut {cut_id!r} is not in the feature cache", path=self.path, hint="delete the cache folder to rebuild it") from None
        return self.frames[start : start + n]

    def get(self, cut_id: str) -> torch.Tensor:
        """The cut's (T, 80) frames as a float32 tensor of its own."""
        return torch.from_numpy(np.array(self.view(cut_id), dtype=np.float32))


class FeatureCache:
    """Per-corpus feature cache; ``split(lang, split, cuts)`` builds on first use, then memory-maps.

    ``root`` defaults to ``CORPUS/features``. ``progress`` shows a bar while building.
    """

    def __init__(self, corpus_dir: str | Path, root: str | Path | None = None, progress: bool = True) -> None:
        self.corpus_dir = Path(corpus_dir)
        self.root = Path(root) if root is not None else self.corpus_dir / "features"
        self.progress = progress
        self._loaded: dict[tuple[str, str], SplitFeatures] = {}

    def folder(self, lang: str, split: str) -> Path:
        from .corpus import manifest_path

        manifest = manifest_path(self.corpus_dir, lang, "cuts", split)
        if not manifest.is_file():
            raise InputError(f"no {split} cuts for language {lang!r}", path=manifest)
        return self.root / settings_key(FBANK_SETTINGS, manifest.read_bytes()) / lang

    def split(self, lang: str, split: str, cuts: Sequence) -> SplitFeatures:
        """Features of every cut in ``cuts`` (the corpus's ``lang``/``split`` cuts), building if needed."""
        if (lang, split) in self._loaded:
            return self._loaded[(lang, split)]
        folder = self.folder(lang, split)
        npy, idx = folder / f"{split}.npy", folder / f"{split}.json"
        if not (npy.is_file() and idx.is_file()):
            self._build(cuts, lang, split, npy, idx)
        try:
            index = {k: (int(a), int(b)) for k, (a, b) in json.loads(idx.read_text())["cuts"].items()}
            frames = np.load(npy, mmap_mode="r", allow_pickle=False)
        except (ValueError, KeyError, json.JSONDecodeError) as error:
            raise InputError(f"unreadable feature cache ({error})", path=folder, hint="delete this folder; the next run rebuilds it") from error
        if frames.ndim != 2 or frames.shape[1] != FBANK_SETTINGS["num_mel_bins"]:
            raise InputError(f"feature cache has shape {frames.shape}", path=npy, expected=f"(frames, {FBANK_SETTINGS['num_mel_bins']})")
        out = SplitFeatures(frames, index, npy)
        self._loaded[(lang, split)] = out
        return out

    def _build(self, cuts: Sequence, lang: str, split: str, npy: Path, idx: Path) -> None:
        from .batches import SAMPLE_RATE, compute_fbank

        npy.parent.mkdir(parents=True, exist_ok=True)
        cuts = sorted(cuts, key=lambda c: c.id)
        bar = None
        if self.progress:
            from ..progress import progress_bar

            bar = progress_bar(total=len(cuts), desc=f"features {lang}/{split}", unit="utt")
        chunks: list[np.ndarray] = []
        index: dict[str, list[int]] = {}
        start = 0
        for cut in cuts:
            if cut.sampling_rate != SAMPLE_RATE:
                raise InputError(f"cut {cut.id} is at {cut.sampling_rate} Hz", field="sampling_rate", expected=f"{SAMPLE_RATE} Hz (resample on import)")
            f = compute_fbank(cut.load_audio()[0], SAMPLE_RATE).numpy()
            chunks.append(f)
            index[cut.id] = [start, int(f.shape[0])]
            start += int(f.shape[0])
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        frames = np.concatenate(chunks) if chunks else np.zeros((0, FBANK_SETTINGS["num_mel_bins"]), np.float32)
        _atomic_save_npy(npy, frames.astype(np.float32, copy=False))
        # the index last: its presence marks a complete cache
        atomic_write_text(idx, json.dumps({"settings": FBANK_SETTINGS, "language": lang, "split": split, "cuts": index}))
