"""The espeak-ng voices of the synthetic corpus: speakers per split, one utterance's plan, its audio.

Every utterance is a pure function of (seed, language, split, index) (:func:`plan_utterance`); its
audio (:func:`render_audio`) is espeak-ng's output trimmed, resampled with the drawn speed, set to
the drawn gain, with coloured noise at the drawn SNR. Train, dev and test speakers are disjoint:
each split draws its voice variants from its own set.

>>> Speaker("en-us", "m1", 150, 40).id
'en-us+m1-s150-p40'
"""

from __future__ import annotations

import functools
import random
import subprocess
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .text import LanguageText

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050

# espeak-ng voice variants (files in espeak-ng-data/voices/!v) per split; disjoint sets make the
# split speakers disjoint. Robotic, whispering and novelty variants are left out.
TRAIN_VARIANTS = (
    "m1", "m2", "m4", "m5", "m6", "m7", "f1", "f3", "f4", "f5", "klatt", "klatt4",
    "adam", "andy", "benjamin", "boris", "caleb", "david", "ed", "gene", "grandpa", "gustave",
    "iven", "jacky", "max", "michael", "norbert", "paul", "quincy", "rob", "robert", "travis", "victor", "zac",
)
# espeak-ng rates (its -s, nominally words per minute) drawn per speaker. After edge silence is
# trimmed, espeak-ng speaks about 1.3x its nominal rate on these short-word sentences (measured:
# -s 140 -> ~186 wpm, -s 205 -> ~264 wpm in English; 0.33-0.40 BPE-256 tokens per 40 ms frame).
# Slower rates (100-160) were tried: an English-only small RNN-T reached the same dev WER after 800
# steps (80.1% vs 79.0%), so the faster, cheaper range stays.
RATE_RANGE = (130, 206, 5)
DEV_VARIANTS = ("klatt3", "john", "aunty", "mike", "pablo")
TEST_VARIANTS = ("m3", "m8", "f2", "klatt2", "edward", "linda", "steph")
SPLIT_VARIANTS = {"train": TRAIN_VARIANTS, "dev": DEV_VARIANTS, "test": TEST_VARIANTS}


@dataclass(frozen=True)
class Speaker:
    """An espeak-ng speaker: voice (language/accent), variant, rate (words/min), pitch (0-99)."""

    voice: str
    variant: str
    rate: int
    pitch: int

    @property
    def id(self) -> str:
        return f"{self.voice}+{self.variant}-s{self.rate}-p{self.pitch}"


@dataclass(frozen=True)
class Utterance:
    """Everything that determines one synthesised utterance."""

    id: str
    lang: str
    split: str
    index: int
    text: str
    speaker: Speaker
    speed: float
    gain_db: float
    snr_db: float
    noise_color: float
    noise_seed: int
    rel_path: str


@functools.lru_cache(maxsize=64)
def espeak_voices(lang: str) -> tuple[str, ...]:
    """espeak-ng voices (language codes such as ``en-gb``, ``en-us``) for ``lang``, sorted.

    Raises :class:`InputError` when espeak-ng has no voice for ``lang`` or is not installed.
    """
    try:
        out = subprocess.run(["espeak-ng", f"--voices={lang}"], capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise InputError("the espeak-ng program is not installed", expected="espeak-ng on PATH", hint="apt-get install espeak-ng") from None
    voices = set()
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 5 or cols[1] == "variant":
            continue
        code, file = cols[1], cols[4]
        if file.startswith("mb/"):
            continue  # mbrola voices are not installed
        if code == lang or code.startswith(lang + "-"):
            voices.add(code)
    if not voices:
        raise InputError(f"unknown language code {lang!r}: espeak-ng has no voice for it", field="languages", expected="an espeak-ng language code such as en, fr, it, nl, de, es, pt, pl (see `espeak-ng --voices`)")
    return tuple(sorted(voices))


def speaker_pool(lang: str, split: str, seed: int, n: int) -> list[Speaker]:
    """``n`` distinct speakers of one language and split, from (seed, lang, split)."""
    rng = random.Random(f"{seed}|{lang}|{split}|speakers")
    voices = espeak_voices(lang)
    variants = SPLIT_VARIANTS[split]
    pool: list[Speaker] = []
    seen: set[Speaker] = set()
    while len(pool) < n:
        s = Speaker(rng.choice(voices), rng.choice(variants), rng.randrange(*RATE_RANGE), rng.randrange(20, 81, 2))
        if s not in seen:
            seen.add(s)
            pool.append(s)
    return pool


def plan_utterance(text: LanguageText, pools: dict[str, list[Speaker]], seed: int, lang: str, split: str, index: int) -> Utterance:
    """The utterance ``index`` of (lang, split): every draw keyed by (seed, lang, split, index)."""
    rng = random.Random(f"{seed}|{lang}|{split}|{index}|audio")
    spk = rng.choice(pools[split])
    uid = f"{lang}_{split}_{index:06d}"
    return Utterance(
        id=uid,
        lang=lang,
        split=split,
        index=index,
        text=text.sentence(split, index),
        speaker=spk,
        speed=round(rng.uniform(0.92, 1.08), 4),
        gain_db=round(rng.uniform(-14.0, -2.0), 2),
        snr_db=round(rng.uniform(15.0, 40.0), 2),
        noise_color=round(rng.uniform(0.0, 0.95), 3),
        noise_seed=rng.getrandbits(63),
        rel_path=f"audio/{lang}/{split}/{uid}.flac",
    )


def espeak_wav(text: str, speaker: Speaker) -> np.ndarray:
    """espeak-ng's 22,050 Hz mono samples for ``text`` as float32 in [-1, 1]: the program's output, from an
    in-process worker where libespeak-ng loads (the same samples, :mod:`.espeak_worker`), else the program."""
    from .espeak_worker import synthesize

    pcm16 = synthesize(f"{speaker.voice}+{speaker.variant}", speaker.rate, speaker.pitch, text)
    if pcm16 is not None:
        return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
    cmd = ["espeak-ng", "-b", "1", "-v", f"{speaker.voice}+{speaker.variant}", "-s", str(speaker.rate), "-p", str(speaker.pitch), "--stdout"]
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
    data = proc.stdout
    pos = data.find(b"data")  # espeak-ng's streamed header has a placeholder length: parse by hand
    if data[:4] != b"RIFF" or pos < 0:
        raise RuntimeError("espeak-ng did not write a WAV stream")
    pcm = data[pos + 8 :]
    pcm = pcm[: len(pcm) // 2 * 2]
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def render_audio(u: Utterance) -> np.ndarray:
    """Synthesise and post-process one utterance: int16 samples at 16 kHz."""
    import soxr
    from scipy.signal import lfilter

    x = espeak_wav(u.text, u.speaker)
    if x.size == 0 or float(np.max(np.abs(x))) < 1e-4:
        raise RuntimeError("espeak-ng produced silence")
    loud = np.flatnonzero(np.abs(x) > 1e-3)
    margin = int(0.15 * ESPEAK_RATE)
    x = x[max(0, loud[0] - margin) : loud[-1] + margin]
    y = soxr.resample(x.astype(np.float64), ESPEAK_RATE * u.speed, SAMPLE_RATE, quality="HQ")
    y *= 10 ** (u.gain_db / 20) / max(float(np.max(np.abs(y))), 1e-9)
    rng = np.random.Generator(np.random.PCG64(u.noise_seed))
    noise = lfilter([1.0 - u.noise_color], [1.0, -u.noise_color], rng.standard_normal(y.size))
    sig_rms = float(np.sqrt(np.mean(y**2)))
    noise *= sig_rms / max(float(np.sqrt(np.mean(noise**2))), 1e-12) / 10 ** (u.snr_db / 20)
    y = np.clip(y + noise, -1.0, 32767 / 32768)
    return np.round(y * 32768).astype(np.int16)
