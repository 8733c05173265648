"""The espeak-ng worker gives the espeak-ng program's samples to the bit, falls back to the program
where asked, reports bad voices as errors, and serves concurrent callers."""

from __future__ import annotations

import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from asr_pathways.data import espeak_worker
from asr_pathways.data.text import LanguageText
from asr_pathways.data.voices import espeak_wav, plan_utterance, speaker_pool

def _worker_starts() -> bool:
    worker = espeak_worker.start_worker()
    if worker is None:
        return False
    worker.close()
    return True


pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or not _worker_starts(),
                                reason="needs the espeak-ng program and libespeak-ng")


def program_samples(text: str, voice: str, rate: int, pitch: int) -> bytes:
    """What the program writes, as the corpus calls it (text on stdin), without its WAV header."""
    cmd = ["espeak-ng", "-b", "1", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout"]
    data = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=True).stdout
    pcm = data[data.find(b"data") + 8 :]
    return pcm[: len(pcm) // 2 * 2]


def corpus_utterances(n_per_language: int) -> list:
    plans = []
    for lang in ("en", "fr", "it", "nl"):
        text = LanguageText(lang, 0, 10, 10, None, None, lexicon_size=500)
        pools = {s: speaker_pool(lang, s, 0, 12 if s == "train" else 4) for s in ("train", "dev", "test")}
        plans += [plan_utterance(text, pools, 0, lang, split, j) for split in ("train", "test") for j in range(n_per_language)]
    random.Random(0).shuffle(plans)  # voices change from one request to the next, as in a corpus build
    return plans


def test_same_samples_as_the_program() -> None:
    plans = corpus_utterances(4)
    worker = espeak_worker.start_worker()
    assert worker is not None
    try:
        for u in plans:
            voice = f"{u.speaker.voice}+{u.speaker.variant}"
            got = worker.synthesize(voice, u.speaker.rate, u.speaker.pitch, u.text)
            assert got == program_samples(u.text, voice, u.speaker.rate, u.speaker.pitch), u.id
        # the same request twice: the same samples (each utterance starts from the initialised state)
        u = plans[0]
        voice = f"{u.speaker.voice}+{u.speaker.variant}"
        assert worker.synthesize(voice, u.speaker.rate, u.speaker.pitch, u.text) == worker.synthesize(voice, u.speaker.rate, u.speaker.pitch, u.text)
    finally:
        worker.close()


def test_espeak_wav_uses_the_worker_or_the_program_alike(monkeypatch) -> None:
    u = corpus_utterances(1)[0]
    via_worker = espeak_wav(u.text, u.speaker)
    monkeypatch.setenv("ASR_PATHWAYS_ESPEAK", "program")
    assert espeak_worker.synthesize("en", 150, 50, "hello") is None  # the program is asked for
    via_program = espeak_wav(u.text, u.speaker)
    assert via_worker.dtype == np.float32 and np.array_equal(via_worker, via_program)


def test_long_text_is_cut_as_the_program_reads_it() -> None:
    text = " ".join(["bonjour tout le monde"] * 60)  # > 999 bytes: the program synthesises it in pieces
    assert len(text.encode()) > 999
    worker = espeak_worker.start_worker()
    try:
        assert worker.synthesize("fr", 170, 50, text) == program_samples(text, "fr", 170, 50)
    finally:
        worker.close()


@pytest.mark.parametrize("voice", ["xx-nonexistent+zz", "en\tx"])  # unknown; a tab, which must not break the protocol
def test_bad_voice_is_an_error_and_the_worker_goes_on(voice: str) -> None:
    worker = espeak_worker.start_worker()
    try:
        with pytest.raises(RuntimeError, match="no voice"):
            worker.synthesize(voice, 150, 50, "hello")
        assert len(worker.synthesize("en", 150, 50, "hello")) > 1000
    finally:
        worker.close()


def test_concurrent_callers_get_their_own_workers() -> None:
    plans = corpus_utterances(2)
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda u: espeak_wav(u.text, u.speaker), plans))
    for u, x in zip(plans, got):
        voice = f"{u.speaker.voice}+{u.speaker.variant}"
        expected = np.frombuffer(program_samples(u.text, voice, u.speaker.rate, u.speaker.pitch), "<i2").astype(np.float32) / 32768.0
        assert np.array_equal(x, expected), u.id
    espeak_worker.close_workers()


def test_synth_speed_benchmark_tiny(capsys) -> None:
    """The benchmark builds both ways, alternating, and finds every FLAC file byte-identical."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import synth_speed

    argv = ["--pairs", "2", "--hours", "0.002", "--languages", "en", "--test-utts", "2", "--dev-utts", "2", "--no-write"]
    assert synth_speed.main(argv) == 0
    out = capsys.readouterr().out
    assert "| 1 | worker then program |" in out and "| 2 | program then worker |" in out
    assert "byte-identical both ways in 2 of 2 pairs" in out and "0 in the program builds" in out
    with pytest.raises(SystemExit):
        synth_speed.main(["--pairs", "0", "--no-write"])


def test_a_broken_worker_hands_over_to_the_program() -> None:
    u = corpus_utterances(1)[0]
    voice = f"{u.speaker.voice}+{u.speaker.variant}"
    expected = program_samples(u.text, voice, u.speaker.rate, u.speaker.pitch)
    assert espeak_worker.synthesize(voice, u.speaker.rate, u.speaker.pitch, u.text) == expected
    for w in list(espeak_worker._idle):  # kill the idle worker behind the module's back
        w.proc.kill()
        w.proc.wait()
    assert espeak_worker.synthesize(voice, u.speaker.rate, u.speaker.pitch, u.text) is None  # the caller runs the program
    assert espeak_worker.synthesize(voice, u.speaker.rate, u.speaker.pitch, u.text) == expected  # a new worker
    espeak_worker.close_workers()



def test_a_library_that_disagrees_with_the_program_is_not_used(monkeypatch) -> None:
    """Checked once per process on one sentence: a mismatch (another libespeak-ng build) means the program runs."""
    worker = espeak_worker.start_worker()
    try:
        assert espeak_worker.agrees_with_program(worker)
        other = ("en", 175, 50, "A sentence the program says differently.")
        monkeypatch.setattr(espeak_worker.subprocess, "run",
                            lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=b"RIFF....data\x00\x00\x00\x00\x01\x00", stderr=b""))
        assert not espeak_worker.agrees_with_program(worker, other)
    finally:
        worker.close()
    espeak_worker.close_workers()
    monkeypatch.setattr(espeak_worker, "_available", None)
    assert espeak_worker.synthesize("en", 150, 50, "hello") is None  # the check failed: the caller runs the program
    assert espeak_worker._available is False
    monkeypatch.undo()
    espeak_worker._available = None  # the next test starts from an untried state
