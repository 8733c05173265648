"""Shared helpers for the data tests: miniature MLS trees and audio folders made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

MLS_TEXT = {
    "train": ["the cat sat on the mat", "a dog ran far away", "we like green apples", "it is a sunny day"],
    "dev": ["the house is big"],
    "test": ["she reads a long book", "they walk home now"],
}


def tone(seconds: float, rate: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(path: Path, seconds: float, rate: int, opus: bool = False, freq: float = 220.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if opus:
        sf.write(str(path), tone(seconds, rate, freq), rate, format="OGG", subtype="OPUS")
    else:
        sf.write(str(path), tone(seconds, rate, freq), rate, format="FLAC", subtype="PCM_16")


def make_mls_tree(root: Path, name: str = "french", opus: bool = False, rate: int | None = None) -> Path:
    """A tiny MLS language folder ``root/mls_{name}[_opus]`` with train/dev/test; returns it."""
    rate = rate or (48000 if opus else 16000)
    ext = ".opus" if opus else ".flac"
    lang_dir = root / f"mls_{name}{'_opus' if opus else ''}"
    speakers = {"train": ["101", "102"], "dev": ["201"], "test": ["301"]}
    meta = ["SPEAKER   |   GENDER   | PARTITION  |  MINUTES   |  BOOK ID   |             TITLE              |            CHAPTER"]
    for split, texts in MLS_TEXT.items():
        lines = []
        for i, text in enumerate(texts):
            spk = speakers[split][i % len(speakers[split])]
            uid = f"{spk}_7_{i:06d}"
            write_audio(lang_dir / split / "audio" / spk / "7" / f"{uid}{ext}", 0.5 + 0.1 * i, rate, opus, 200 + 30 * i)
            lines.append(f"{uid}\t{text}")
        (lang_dir / split / "transcripts.txt").write_text("\n".join(lines) + "\n")
        for spk in speakers[split]:
            meta.append(f"{spk} | F | {split} | 1.0 | 7 | title | chapter")
    (lang_dir / "metainfo.txt").write_text("\n".join(meta) + "\n")
    return lang_dir


def make_audio_dir(root: Path, n: int = 6, rate: int = 16000) -> tuple[Path, Path]:
    """A folder of ``n`` FLAC files and an ``id<TAB>text`` transcript; returns (audio dir, transcript)."""
    audio = root / "audio"
    lines = []
    for i in range(n):
        uid = f"spk{i % 3}_utt{i:03d}"
        write_audio(audio / f"{uid}.flac", 0.4 + 0.05 * i, rate, freq=180 + 20 * i)
        lines.append(f"{uid}\tHello World number {i}, again!")
    tr = root / "en.tsv"
    tr.write_text("\n".join(lines) + "\n")
    return audio, tr
