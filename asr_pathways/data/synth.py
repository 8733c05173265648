"""The built-in multilingual corpus, synthesised with the ``espeak-ng`` program.

Every utterance is a pure function of (seed, language, split, index): its sentence, its speaker
(voice/accent, variant, rate, pitch) and its gain, speed and noise are drawn from generators keyed
by those four values, never from process order, so any number of worker threads gives the same
bytes. Train, dev and test speakers are disjoint because each split draws its variants from its
own set (test holds out m3, m8, f2, klatt2, ...). The training split of a language is the shortest
prefix of utterances 0, 1, 2, ... whose audio reaches the requested hours; dev and test have fixed
utterance counts.

Audio: espeak-ng writes 22,050 Hz 16-bit WAV to stdout; we trim edge silence, change speed by
resampling to 16 kHz with soxr (one call: the input is declared at 22050*speed Hz), set the peak
gain, add coloured Gaussian noise at a drawn SNR, and write 16 kHz mono 16-bit FLAC atomically.
An interrupted build resumes: finished FLAC files are kept and only their length is read; the
manifests and the card are written last, atomically.

:func:`text_statistics` (``asr-pathways corpus text-stats``) gives the open-vocabulary statistics of
the card (test words never seen in training) from the text alone, without building the audio;
docs/corpus.md explains the text options and their defaults with these measurements.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..io import AtomicPath, atomic_write_json
from .corpus import check_language_code, finish_build, start_build, write_split
from .espeak_worker import close_workers
from .text import LanguageText, check_word_weights, frame_words, open_vocabulary_stats, read_user_text, word_counts
from .voices import SAMPLE_RATE, Utterance, espeak_voices, plan_utterance, render_audio, speaker_pool

DEFAULT_HOURS = {"en": 8.0, "fr": 4.0, "nl": 4.0, "it": 2.0}
DEFAULT_LANGUAGES = ("en", "fr", "it", "nl")
BUILD_VERSION = 1

@dataclass
class SynthConfig:
    """Options of ``asr-pathways corpus synth`` (see its --help)."""

    out: Path
    languages: Sequence[str] = DEFAULT_LANGUAGES
    hours: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_HOURS))
    seed: int = 0
    jobs: int = 0  # 0: every core
    test_utts: int = 500
    dev_utts: int | None = None  # None: half of test_utts
    text_dir: Path | None = None
    skip_bad: bool = False
    train_speakers: int = 120
    eval_speakers: int = 20
    lexicon_size: int = 4000  # content words the sentence generator draws from (per language)
    word_weights: str = "real"  # slot words drawn with wordfreq's frequencies ("real") or 1/(rank+20)^0.7 ("flat")
    progress: bool = True

    def dev_count(self) -> int:
        return self.dev_utts if self.dev_utts is not None else max(1, self.test_utts // 2)

    def hours_for(self, lang: str) -> float:
        if lang in self.hours:
            return float(self.hours[lang])
        if "*" in self.hours:
            return float(self.hours["*"])
        return float(DEFAULT_HOURS.get(lang, 1.0))


def _render_to_file(out: Path, u: Utterance) -> tuple[int | None, str | None]:
    """Make ``u``'s FLAC unless it exists; returns (samples, None) or (None, error)."""
    import soundfile as sf

    path = out / u.rel_path
    if path.is_file():
        try:
            return sf.info(str(path)).frames, None
        except Exception:  # a foreign or broken file: remake it
            path.unlink()
    try:
        pcm = render_audio(u)
    except RuntimeError as e:
        return None, str(e)
    with AtomicPath(path) as tmp:
        sf.write(str(tmp), pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return int(pcm.size), None


def _fingerprint(cfg: SynthConfig, lang: str, user_lines: list[str] | None) -> dict[str, Any]:
    return {
        "version": BUILD_VERSION,
        "seed": cfg.seed,
        "test_utts": cfg.test_utts,
        "dev_utts": cfg.dev_count(),
        "train_speakers": cfg.train_speakers,
        "eval_speakers": cfg.eval_speakers,
        **({} if cfg.lexicon_size == 4000 else {"lexicon_size": cfg.lexicon_size}),  # absent: 4000, as before the option
        # absent: flat, the only weighting before the option, so older corpora are refused by the new default
        **({} if user_lines is not None or cfg.word_weights == "flat" else {"word_weights": cfg.word_weights}),
        "text": "generator" if user_lines is None else hashlib.sha256("\n".join(user_lines).encode()).hexdigest(),
    }


def _manifest_items(lang: str, done: list[tuple[Utterance, int]]):
    from lhotse import AudioSource, MonoCut, Recording, SupervisionSegment

    recs, sups, cuts = [], [], []
    for u, n in done:
        dur = n / SAMPLE_RATE
        rec = Recording(id=u.id, sources=[AudioSource(type="file", channels=[0], source=u.rel_path)], sampling_rate=SAMPLE_RATE, num_samples=n, duration=dur)
        sup = SupervisionSegment(
            id=u.id, recording_id=u.id, start=0.0, duration=dur, channel=0, text=u.text, language=lang, speaker=u.speaker.id,
            custom={"speed": u.speed, "gain_db": u.gain_db, "snr_db": u.snr_db},
        )
        recs.append(rec)
        sups.append(sup)
        cuts.append(MonoCut(id=u.id, start=0.0, duration=dur, channel=0, recording=rec, supervisions=[sup]))
    return recs, sups, cuts


def build_corpus(cfg: SynthConfig, command: str | None = None) -> dict:
    """Build (or resume) the corpus described by ``cfg``; returns the card.

    Every option is checked before the first write; the corpus is marked in progress until the
    card is written (``command`` is what the marker tells a reader to rerun).
    """
    from ..progress import progress_bar

    out = Path(cfg.out)
    langs = list(dict.fromkeys(cfg.languages))
    for lang in langs:
        check_language_code(lang)
        espeak_voices(lang)  # unknown codes fail before any work
    if cfg.test_utts < 1:
        raise InputError("--test-utts must be at least 1", field="test_utts", expected="a positive integer")
    check_word_weights(cfg.word_weights)
    prepared = {lang: _prepare_language(cfg, out, lang) for lang in langs}
    start_build(out, command or f"asr-pathways corpus synth --out {out} (with the same options)")
    jobs = cfg.jobs or os.cpu_count() or 1
    est_total = sum(cfg.hours_for(l) * 3600 + (cfg.test_utts + cfg.dev_count()) * 3.5 for l in langs)
    bar = progress_bar(total=round(est_total), unit="audio-s", desc="synth", disable=not cfg.progress)
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for lang in langs:
                _build_language(cfg, out, lang, pool, jobs, bar, *prepared[lang])
    finally:
        close_workers()  # the espeak-ng workers are not needed after the build (a demo trains in this process next)
    bar.close()
    settings = {
        "source": "espeak-ng synth", "seed": cfg.seed, "languages": ",".join(langs),
        "hours": ",".join(f"{l}={cfg.hours_for(l):g}" for l in langs),
        "test_utts": cfg.test_utts, "dev_utts": cfg.dev_count(),
        "train_speakers": cfg.train_speakers, "eval_speakers": cfg.eval_speakers,
        "text": "user text files" if cfg.text_dir else f"template generator, {cfg.lexicon_size}-word lexicon, {cfg.word_weights} word weights",
    }
    return finish_build(out, settings)


def _prepare_language(cfg: SynthConfig, out: Path, lang: str) -> tuple[list[str] | None, Path | None, list[dict]]:
    """Read a language's user text and refuse a folder built with other settings (before any write).

    Returns (user lines or None, their file or None, the bad lines skipped).
    """
    bad: list[dict] = []
    user_lines = None
    user_path = None
    if cfg.text_dir is not None:
        user_path = Path(cfg.text_dir) / f"{lang}.txt"
        if user_path.is_file():
            user_lines = read_user_text(user_path, skip_bad=cfg.skip_bad, bad=bad)
    fp = _fingerprint(cfg, lang, user_lines)
    fp_path = out / "audio" / lang / "build.json"
    if fp_path.is_file():
        old = json.loads(fp_path.read_text())
        if old != fp:
            diff = {k: (old.get(k), fp.get(k)) for k in sorted(set(old) | set(fp)) if old.get(k) != fp.get(k)}
            raise InputError(
                f"this folder was built with other settings {diff}", path=fp_path,
                expected="the same --seed, --test-utts, --dev-utts, speakers, text, --lexicon-size and --word-weights as before "
                "(a corpus built before --word-weights existed used flat weights)",
                hint="use a new --out folder (hours may change freely)",
            )
    return user_lines, user_path, bad


def _build_language(cfg: SynthConfig, out: Path, lang: str, pool: ThreadPoolExecutor, jobs: int, bar,
                    user_lines: list[str] | None, user_path: Path | None, bad: list[dict]) -> None:
    fp_path = out / "audio" / lang / "build.json"
    if not fp_path.is_file():
        atomic_write_json(fp_path, _fingerprint(cfg, lang, user_lines))
    text = LanguageText(lang, cfg.seed, cfg.test_utts, cfg.dev_count(), user_lines, str(user_path) if user_path else None,
                        lexicon_size=cfg.lexicon_size, word_weights=cfg.word_weights)
    pools = {
        "train": speaker_pool(lang, "train", cfg.seed, cfg.train_speakers),
        "dev": speaker_pool(lang, "dev", cfg.seed, cfg.eval_speakers),
        "test": speaker_pool(lang, "test", cfg.seed, cfg.eval_speakers),
    }
    for split in ("test", "dev", "train"):
        split_bad = bad if split == "train" else []
        target_s = cfg.hours_for(lang) * 3600.0 if split == "train" else None
        count = cfg.test_utts if split == "test" else cfg.dev_count() if split == "dev" else None
        done: list[tuple[Utterance, int]] = []
        total_s, i, finished = 0.0, 0, False
        while not finished:
            if count is not None:
                n = min(count - i, 16 * jobs)
            else:
                n = int(min(16 * jobs, max(jobs, math.ceil((target_s - total_s) / 3.0))))
            plans = [plan_utterance(text, pools, cfg.seed, lang, split, j) for j in range(i, i + n)]
            for u, (samples, err) in zip(plans, pool.map(lambda u: _render_to_file(out, u), plans)):
                if finished:  # drain the batch: no render may still be writing when we clean up below
                    continue
                if err is not None:
                    e = InputError(f"espeak-ng could not synthesise utterance {u.id} ({err})", path=u.rel_path, field="text", expected=f"speech for {u.text!r}")
                    if not cfg.skip_bad:
                        raise e
                    split_bad.append({"path": u.rel_path, "line": None, "reason": str(e)})
                    continue
                done.append((u, samples))
                total_s += samples / SAMPLE_RATE
                bar.update(round(samples / SAMPLE_RATE))
                if target_s is not None and total_s >= target_s:
                    finished = True
            i += n
            if count is not None and i >= count:
                finished = True
            if target_s is not None and target_s <= 0:
                finished = True
        keep = {out / u.rel_path for u, _ in done}
        split_dir = out / "audio" / lang / split
        if split_dir.is_dir():
            for p in split_dir.iterdir():  # beyond the cut-off, or left by a bigger earlier build
                if p.suffix == ".flac" and p not in keep:  # (also temp files of an interrupted build)
                    p.unlink(missing_ok=True)
        write_split(out, lang, split, *_manifest_items(lang, done), bad_items=split_bad)


def _language_text(cfg: SynthConfig, lang: str) -> LanguageText:
    user_lines, user_path = None, None
    if cfg.text_dir is not None:
        user_path = Path(cfg.text_dir) / f"{lang}.txt"
        if user_path.is_file():
            user_lines = read_user_text(user_path, skip_bad=cfg.skip_bad, bad=[])
        else:
            user_path = None
    return LanguageText(lang, cfg.seed, cfg.test_utts, cfg.dev_count(), user_lines, str(user_path) if user_path else None,
                        lexicon_size=cfg.lexicon_size, word_weights=cfg.word_weights)


def text_statistics(cfg: SynthConfig, calibrate_utts: int = 60) -> dict[str, dict[str, Any]]:
    """The open-vocabulary statistics of the corpus ``cfg`` describes, from its text, without building it.

    The training split is the prefix of training sentences whose audio reaches the requested hours.
    Its length is estimated here: the first ``calibrate_utts`` training utterances of each language
    are synthesised (the same speakers and speeds as a build would use) and a line
    seconds = a + b * characters is fitted to them; sentences are then added until their estimated
    durations reach the hours. Returns, per language: ``train_utts`` (estimated), ``seconds_per_char``,
    ``train_vocabulary``, and the :func:`~asr_pathways.data.text.open_vocabulary_stats` of ``dev`` and
    ``test`` against the training text (as the card of the built corpus reports them).
    """
    langs = list(dict.fromkeys(cfg.languages))
    check_word_weights(cfg.word_weights)
    out: dict[str, dict[str, Any]] = {}
    jobs = cfg.jobs or os.cpu_count() or 1
    for lang in langs:
        text = _language_text(cfg, lang)
        target_s = cfg.hours_for(lang) * 3600.0
        n_cal = max(2, calibrate_utts)
        pools = {"train": speaker_pool(lang, "train", cfg.seed, cfg.train_speakers)}
        plans = [plan_utterance(text, pools, cfg.seed, lang, "train", i) for i in range(n_cal)]

        def seconds(u: Utterance) -> float | None:
            try:
                return render_audio(u).size / SAMPLE_RATE
            except RuntimeError:  # espeak-ng could not say it: a build would stop or skip it
                return None

        try:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                secs = list(pool.map(seconds, plans))
        finally:
            close_workers()
        fit = [(len(u.text), t) for u, t in zip(plans, secs) if t is not None]
        if len(fit) < 2:
            raise InputError(f"espeak-ng could not synthesise the {lang!r} calibration sentences", field="languages")
        b, a = np.polyfit(np.asarray([c for c, _ in fit], float), np.asarray([t for _, t in fit], float), 1)
        train: list[str] = []
        total = 0.0
        while total < target_s:
            s = text.sentence("train", len(train))
            train.append(s)
            measured = secs[len(train) - 1] if len(train) <= n_cal else None
            total += measured if measured is not None else max(0.5, a + b * len(s))
        counts = word_counts(train)
        fw = frame_words(lang)
        out[lang] = {
            "train_hours": cfg.hours_for(lang), "train_utts": len(train), "seconds_per_char": round(float(b), 4),
            "seconds_intercept": round(float(a), 3), "train_vocabulary": len(counts),
            "dev": open_vocabulary_stats(text.dev, counts, fw), "test": open_vocabulary_stats(text.test, counts, fw),
        }
    return out


def parse_hours(spec: str | None, languages: Sequence[str]) -> dict[str, float]:
    """``"en=8,fr=4"`` or ``"0.5"`` (every language) → {lang: hours}; missing languages get defaults."""
    if not spec:
        return {l: DEFAULT_HOURS.get(l, 1.0) for l in languages}
    out: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, _, val = part.rpartition("=")
        try:
            h = float(val)
        except ValueError:
            raise InputError(f"bad hours entry {part!r}", field="hours", expected="LANG=HOURS[,LANG=HOURS...] or one number for every language") from None
        if h < 0:
            raise InputError(f"negative hours in {part!r}", field="hours", expected="hours >= 0")
        if key:
            out[key] = h
        else:
            out.update({l: h for l in languages})
    for l in languages:
        out.setdefault(l, DEFAULT_HOURS.get(l, 1.0))
    return out
