"""Transcribe audio files with a trained, pruned or exported model: ``asr-pathways transcribe``.

    asr-pathways transcribe runs/pathways test.wav --language fr
    asr-pathways transcribe models/fr clips/ --language fr --format jsonl --decoding beam

MODEL is any folder :func:`asr_pathways.loading.open_model` opens: a run, a monolingual prune run
(with ``--language`` picking its sub-run), a language sub-run, an export (float32/float16) or an
ONNX export. AUDIO is a file in any format Lhotse reads (WAV, FLAC, OGG/Opus, MP3 ...), a folder
(every audio file in it, recursively, sorted) or a list file (``.txt``/``.lst``/``.list``: one path
per line, relative to the list file; blank lines and ``#`` comments skipped). Audio is mixed down to
mono and resampled to 16 kHz; features are the 80-dim Kaldi fbank the models were trained on.

In Python: ``asr_pathways.transcribe(model, audio, language=...)`` (:func:`transcribe`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .asr.searches import DECODING_HELP, DECODINGS, DEFAULT_BEAM
from .errors import InputError

__all__ = ["Transcript", "transcribe", "load_audio", "expand_audio_inputs", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".sph", ".aac", ".webm")
LIST_EXTENSIONS = (".txt", ".lst", ".list")
SAMPLE_RATE = 16000


@dataclass
class Transcript:
    """One file's result: the text, its token ids and where the time went (seconds)."""

    audio: str
    language: str
    text: str
    tokens: list[int]
    duration: float  # seconds of audio
    load_seconds: float
    feature_seconds: float
    decode_seconds: float

    @property
    def rtf(self) -> float:
        """Real-time factor of features + decoding."""
        return (self.feature_seconds + self.decode_seconds) / max(self.duration, 1e-9)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"rtf": self.rtf}


def expand_audio_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Audio files named by ``inputs``: files, folders (recursively, sorted) and list files."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                raise InputError("no audio files in folder", path=p, expected="files ending in " + ", ".join(AUDIO_EXTENSIONS))
            files += found
        elif p.suffix.lower() in LIST_EXTENSIONS and p.is_file():
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                f = Path(line) if Path(line).is_absolute() else p.parent / line
                if not f.is_file():
                    raise InputError("audio file not found", path=p, line=n, expected=f"an existing file ({f})")
                files.append(f)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError("audio not found", path=p, expected="an audio file, a folder of audio files or a list file (.txt/.lst)")
    return files


def load_audio(path: str | Path, sampling_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples of ``path`` at ``sampling_rate`` Hz (any format Lhotse reads; resampled)."""
    from lhotse import Recording

    try:
        rec = Recording.from_file(str(path))
        if rec.sampling_rate != sampling_rate:
            rec = rec.resample(sampling_rate)
        samples = rec.load_audio()
    except Exception as e:  # unreadable or unsupported audio: the decoder's own error names the cause
        raise InputError(f"cannot read audio ({type(e).__name__}: {e})", path=path,
                         expected="a WAV, FLAC, OGG/Opus or MP3 file") from None
    return np.asarray(samples, dtype=np.float32).mean(axis=0)


def _open(model: Any, device: str | torch.device) -> Any:
    from .loading import ModelSource, open_model

    return model if isinstance(model, ModelSource) else open_model(model, device)


def transcribe(
    model: Any,
    audio: str | Path | Sequence[str | Path],
    language: str,
    *,
    decoding: str = "greedy",
    beam: int = 4,
    engine: str = "auto",
    device: str | torch.device = "cpu",
) -> list[Transcript]:
    """Transcripts of ``audio`` (a file, folder or list file, or a list of them) in ``language``.

    ``model`` is a folder path (run, monolingual prune run, language sub-run, export, ONNX export)
    or an already opened :class:`~asr_pathways.loading.ModelSource`. ``decoding`` is "greedy",
    "beam" (up to 5 labels per frame) or "modified_beam" (one label per frame), the beam searches
    keeping ``beam`` hypotheses; ``engine`` "auto", "torch", "sparse"
    or "onnx" (see :mod:`asr_pathways.loading`). Files are decoded one at a time (batch 1).

    A runnable example with an untrained tiny model (so the transcript is noise):

    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np, soundfile as sf
    >>> from asr_pathways.asr.model import ModelConfig, RNNTModel, load_preset
    >>> from asr_pathways.asr.tokenizer import Tokenizer, train_sentencepiece
    >>> from asr_pathways.export.compact import export_pathways
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "tok.model").write_bytes(train_sentencepiece(["hello world", "bonjour le monde"] * 20, 16))
    >>> cfg = load_preset("tiny")["model"]
    >>> model = RNNTModel(ModelConfig.from_dict(cfg), Tokenizer(d / "tok.model").vocab_size)
    >>> _ = export_pathways(model, {"dense": {}}, d / "model", cfg, tokenizer_path=d / "tok.model")
    >>> sf.write(d / "a.wav", 0.1 * np.sin(np.arange(8000) / 8.0), 8000)  # 1 s at 8 kHz: resampled
    >>> [result] = transcribe(d / "model", d / "a.wav", language="en")
    >>> result.audio.endswith("a.wav"), isinstance(result.text, str), result.duration
    (True, True, 1.0)
    """
    from .data.batches import compute_fbank

    source = _open(model, device)
    decoder = source.decoder(language, engine)
    items = [audio] if isinstance(audio, (str, Path)) else list(audio)
    results = []
    for path in expand_audio_inputs(items):
        t0 = time.perf_counter()
        samples = load_audio(path)
        t1 = time.perf_counter()
        with torch.inference_mode():
            feats = compute_fbank(samples, SAMPLE_RATE)
            t2 = time.perf_counter()
            ids = decoder.one(feats, decoding, beam)
        t3 = time.perf_counter()
        results.append(Transcript(str(path), language, source.tokenizer.decode(ids), list(ids), len(samples) / SAMPLE_RATE,
                                  t1 - t0, t2 - t1, t3 - t2))
    return results


# ---------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Transcribe audio with a model folder: a run (runs/NAME), a monolingual prune run or its language sub-run "
        "(RUN/lang/fr), an export (asr-pathways export) or its ONNX graphs (EXPORT/onnx)."
    )
    p.add_argument("model", help="model folder: run, prune run, language sub-run, export or ONNX export")
    p.add_argument("audio", nargs="+", help="audio files (WAV, FLAC, OGG/Opus, MP3...), folders of them, or list files (.txt/.lst: one path per line)")
    p.add_argument("--language", required=True, help="language of the audio: picks the model's pathway (an error names the model's languages)")
    p.add_argument("--decoding", choices=DECODINGS, default="greedy", help=DECODING_HELP)
    p.add_argument("--beam", type=int, default=DEFAULT_BEAM, help="hypotheses kept by beam search")
    p.add_argument("--engine", choices=["auto", "torch", "sparse", "onnx"], default="auto",
                   help="torch: the model's own modules; sparse: block-sparse kernels and the lean batch-1 loop; "
                        "onnx: onnxruntime; auto: sparse for an export, onnx for an ONNX folder, torch otherwise")
    p.add_argument("--format", choices=["text", "jsonl"], default="text",
                   help="text: PATH<TAB>TRANSCRIPT lines; jsonl: one JSON object per file with tokens and timings (load, features, decoding, real-time factor)")
    p.add_argument("--out", help="write here instead of standard output")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 (the sparse engine runs on the CPU)")


def output_folder(args: argparse.Namespace) -> None:
    """No folder lock: ``--out`` is a single file, written atomically."""
    return None


def run(args: argparse.Namespace) -> int:
    from .io import atomic_write_text

    if args.beam < 1:
        raise InputError(f"--beam must be at least 1, got {args.beam}", field="--beam")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = transcribe(args.model, args.audio, args.language, decoding=args.decoding, beam=args.beam,
                         engine=args.engine, device=args.device)
    if args.format == "jsonl":
        text = "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in results)
    else:
        text = "".join(f"{r.audio}\t{r.text}\n" for r in results)
    if args.out:
        atomic_write_text(Path(args.out), text)
        print(f"{len(results)} transcripts written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
