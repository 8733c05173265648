"""Real corpora: Multilingual LibriSpeech (through lhotse's MLS recipe) and a folder of audio files.

Both importers validate every item first and raise :class:`InputError` naming the file and line
of the first problem (missing or unreadable audio, a transcript line without a tab, an empty
transcript, an unknown language, a wrong sample rate); with ``skip_bad`` they skip such items and
count them in the card instead. An id listed twice is a bad item at every line that lists it; an
id whose audio file is found twice (two folders, two extensions) is a bad item; a language left
without a single good item is an error, with or without ``skip_bad``. Every item is checked before
the first write. Recordings read the original audio files through symbolic links in
``CORPUS/audio/{lang}/{split}/``, so manifests hold paths inside the corpus folder only (reading
refuses anything else); audio that is not 16 kHz (Opus files usually say 48 kHz) gets a lhotse
resampling transform to 16 kHz, applied when the audio is loaded.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .corpus import SPLITS, check_language_code, finish_build, start_build, write_split
from .normalize import normalize_text

SAMPLE_RATE = 16000
MLS_LANGUAGES = {
    "english": "en", "german": "de", "dutch": "nl", "french": "fr",
    "spanish": "es", "italian": "it", "portuguese": "pt", "polish": "pl",
}
AUDIO_EXTENSIONS = (".flac", ".wav", ".opus", ".ogg")
# ISO 639-1 codes accepted as language codes by import-dir
ISO_639_1 = set(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz "
    "ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik "
    "io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml "
    "mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd "
    "se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi "
    "vo wa wo xh yi yo za zh zu".split()
)


def check_language(code: str, path: str | Path | None = None, line: int | None = None) -> str:
    """Return ``code`` if it is an ISO 639-1 language code (optionally with a region: ``pt-br``)."""
    check_language_code(code, path, line)
    base = code.split("-")[0].lower()
    if base not in ISO_639_1:
        raise InputError(f"unknown language code {code!r}", path=path, line=line, field="language", expected="an ISO 639-1 code such as en, fr, it, nl, de, es, pt, pl")
    return code


class _Bad:
    """Collects bad items: raise at once, or record them when skipping."""

    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.items: dict[tuple[str, str], list[dict]] = {}

    def __call__(self, lang: str, split: str, err: InputError) -> None:
        if not self.skip:
            raise err
        self.items.setdefault((lang, split), []).append({"path": err.path, "line": err.line, "reason": str(err)})


def _check_audio(path: Path, transcript: Path, line: int, allow_resample: bool) -> tuple[int, int] | InputError:
    """(sampling rate, channels) of an audio file, or the error that describes what is wrong."""
    import soundfile as sf

    if not path.is_file():
        return InputError(f"missing audio file {path}", path=transcript, line=line, expected="an audio file for this transcript line")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises several types
        return InputError(f"unreadable audio file {path} ({str(e).strip()})", path=transcript, line=line, expected="a FLAC, WAV or Opus file")
    if info.channels != 1:
        return InputError(f"audio file {path} has {info.channels} channels", path=transcript, line=line, expected="mono audio")
    is_opus = path.suffix.lower() in (".opus", ".ogg")
    if info.samplerate != SAMPLE_RATE and not (is_opus or allow_resample):
        return InputError(f"audio file {path} has sample rate {info.samplerate} Hz", path=transcript, line=line, field="sample_rate", expected=f"{SAMPLE_RATE} Hz (or pass --resample)")
    return info.samplerate, info.channels


def _parse_transcripts(path: Path, lang: str, split: str, bad: _Bad):
    """Yield (line number, id, normalised text) for the good lines of an ``id<TAB>text`` file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read transcript file ({e})", path=path, expected="a UTF-8 file of `id<TAB>text` lines") from None
    rows: list[tuple[int, str, str]] = []
    for i, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            bad(lang, split, InputError("transcript line without a tab", path=path, line=i, expected="`id<TAB>text`"))
            continue
        uid, text = line.split("\t", 1)
        uid = uid.strip()
        norm = normalize_text(text)
        if not uid:
            bad(lang, split, InputError("empty utterance id", path=path, line=i, expected="`id<TAB>text`"))
        elif "/" in uid or "\\" in uid or uid.startswith("."):
            bad(lang, split, InputError(f"utterance id {uid!r} is not a file name", path=path, line=i, expected="an id without '/', '\\' or a leading '.'"))
        elif not norm:
            bad(lang, split, InputError(f"empty transcript for {uid!r}", path=path, line=i, expected="a transcript with at least one word"))
        else:
            rows.append((i, uid, norm))
    lines_of: dict[str, list[int]] = {}
    for i, uid, _ in rows:
        lines_of.setdefault(uid, []).append(i)
    for i, uid, norm in rows:
        where = lines_of[uid]
        if len(where) > 1:  # which text is right is unknown: every copy is a bad item
            bad(lang, split, InputError(f"utterance id {uid!r} is listed {len(where)} times (lines {', '.join(map(str, where))})",
                                        path=path, line=i, expected="each id once"))
            continue
        yield i, uid, norm


def link_audio(out: Path, lang: str, split: str, name: str, target: Path) -> str:
    """Link ``target`` into the corpus as ``audio/{lang}/{split}/{name}``; returns that relative path.

    Imported corpora read their audio through these links, so their manifests hold paths inside
    the corpus folder only (see :func:`asr_pathways.data.corpus.check_recording`).
    """
    rel = Path("audio") / lang / split / name
    link = out / rel
    target = Path(target).resolve()
    if not (link.is_symlink() and os.readlink(link) == str(target)):
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.parent / f".{name}.tmp{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, link)
    return rel.as_posix()


def _require_items(lang: str, found: int, bad: _Bad, where: Path) -> None:
    """An import that would leave a language without a single item is an error, not an empty manifest."""
    if found:
        return
    skipped = [b for (l, _), items in bad.items.items() if l == lang for b in items]
    first = f"; first: {skipped[0]['reason']}" if skipped else ""
    raise InputError(f"no usable item for language {lang!r} ({len(skipped)} bad{first})", path=where,
                     expected="at least one good item per language")


def _cuts_from(recs: dict, sups: dict):
    from lhotse import MonoCut

    cuts = []
    for rid in sorted(recs):
        r, s = recs[rid], sups[rid]
        cuts.append(MonoCut(id=rid, start=0.0, duration=r.duration, channel=0, recording=r, supervisions=[s]))
    return [recs[k] for k in sorted(recs)], [sups[k] for k in sorted(sups)], cuts


# ---------------------------------------------------------------------------------------------
# MLS


def _mls_folders(src: Path, languages: Sequence[str] | None, fmt: str) -> dict[str, tuple[str, Path, bool]]:
    """code -> (MLS name, folder, is_opus) for the language folders to import."""
    if not src.is_dir():
        raise InputError("not a folder", path=src, expected="an MLS root with mls_{language}[_opus] folders")
    found: dict[str, list[tuple[str, Path, bool]]] = {}
    for d in sorted(src.glob("mls_*")):
        if not d.is_dir() or "_lm_" in d.name:
            continue
        m = re.fullmatch(r"mls_([a-z]+)(_opus)?", d.name)
        if not m or m.group(1) not in MLS_LANGUAGES:
            raise InputError("unknown MLS language folder", path=d, expected="mls_{" + ",".join(MLS_LANGUAGES) + "}[_opus]")
        found.setdefault(MLS_LANGUAGES[m.group(1)], []).append((m.group(1), d, bool(m.group(2))))
    if not found:
        raise InputError("no MLS language folders found", path=src, expected="folders named mls_{language} or mls_{language}_opus")
    if languages:
        for code in languages:
            if code not in MLS_LANGUAGES.values():
                raise InputError(f"unknown language code {code!r}", field="languages", expected="one of " + ",".join(sorted(MLS_LANGUAGES.values())))
            if code not in found:
                raise InputError(f"no MLS folder for language {code!r}", path=src, expected=f"mls_{[k for k, v in MLS_LANGUAGES.items() if v == code][0]}[_opus]")
    out = {}
    for code, opts in found.items():
        if languages and code not in languages:
            continue
        if fmt == "opus":
            opts = [o for o in opts if o[2]] or opts
        elif fmt == "flac":
            opts = [o for o in opts if not o[2]] or opts
        out[code] = opts[0]
    return out


def import_mls(src: str | Path, out: str | Path, languages: Sequence[str] | None = None, fmt: str = "auto", skip_bad: bool = False,
               num_jobs: int = 1, command: str | None = None) -> dict:
    """Import an MLS tree (FLAC or Opus) through ``lhotse.recipes.prepare_mls``; returns the card.

    The tree is checked line by line first; the good items are then staged (symlinks, cleaned
    transcripts, complete metainfo.txt, all three splits) so that lhotse's recipe, which stops at
    the first oddity, sees only valid input. ``fmt``: ``auto`` (a language's FLAC folder if both
    exist), ``flac`` or ``opus``.
    """
    from lhotse.recipes import prepare_mls

    src, out = Path(src), Path(out)
    folders = _mls_folders(src, languages, fmt)
    bad = _Bad(skip_bad)
    scanned = {code: _scan_mls(code, folder, is_opus, bad) for code, (_, folder, is_opus) in sorted(folders.items())}
    for code, per in scanned.items():
        _require_items(code, sum(len(v) for v in per.values()), bad, folders[code][1])
    start_build(out, command or f"asr-pathways corpus import-mls {src} --out {out}")
    staging = Path(tempfile.mkdtemp(prefix=".staging-mls-", dir=out))
    try:
        for code, (name, folder, is_opus) in sorted(folders.items()):
            ext = ".opus" if is_opus else ".flac"
            genders = {}
            meta = folder / "metainfo.txt"
            if meta.is_file():
                for line in meta.read_text(encoding="utf-8").splitlines():
                    parts = [p.strip() for p in line.split("|")]
                    if len(parts) >= 2:
                        genders[parts[0]] = parts[1]
            stage = staging / f"mls_{name}{'_opus' if is_opus else ''}"
            originals: dict[str, tuple[str, Path]] = {}
            texts: dict[str, str] = {}
            speakers: set[str] = set()
            for split in SPLITS:
                (stage / split / "audio").mkdir(parents=True, exist_ok=True)
                lines = []
                for uid, text, audio in scanned[code][split]:
                    spk, book, _ = uid.split("_")
                    link = stage / split / "audio" / spk / book / f"{uid}{ext}"
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(audio)
                    originals[uid] = (split, audio)
                    texts[uid] = text
                    speakers.add(spk)
                    lines.append(f"{uid}\t{text}")
                (stage / split / "transcripts.txt").write_text("".join(l + "\n" for l in lines), encoding="utf-8")
            (stage / "metainfo.txt").write_text("SPEAKER | GENDER\n" + "".join(f"{s} | {genders.get(s, 'U')}\n" for s in sorted(speakers)), encoding="utf-8")
            manifests = prepare_mls(staging, opus=is_opus, num_jobs=num_jobs)[name]
            for split in SPLITS:
                recs, sups = {}, {}
                m = manifests.get(split)
                if m is not None:
                    for r in m["recordings"]:
                        r.sources[0].source = link_audio(out, code, split, f"{r.id}{ext}", originals[r.id][1])
                        if r.sampling_rate != SAMPLE_RATE:
                            r = r.resample(SAMPLE_RATE)
                        recs[r.id] = r
                    for s in m["supervisions"]:
                        s.language = code
                        s.text = texts[s.id]
                        s.duration = recs[s.recording_id].duration
                        sups[s.id] = s
                items = bad.items.get((code, split), [])
                if recs or items:
                    write_split(out, code, split, *_cuts_from(recs, sups), bad_items=items)
            shutil.rmtree(stage)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return finish_build(out, {"source": "mls", "path": src.name, "languages": ",".join(sorted(folders)), "format": fmt})


def _scan_mls(code: str, folder: Path, is_opus: bool, bad: _Bad) -> dict[str, list[tuple[str, str, Path]]]:
    """The good items of one MLS language folder per split: (id, normalised text, audio file)."""
    ext = ".opus" if is_opus else ".flac"
    per: dict[str, list[tuple[str, str, Path]]] = {}
    for split in SPLITS:
        tr = folder / split / "transcripts.txt"
        items = per.setdefault(split, [])
        if tr.is_file():
            for lineno, uid, text in _parse_transcripts(tr, code, split, bad):
                parts = uid.split("_")
                if len(parts) != 3:
                    bad(code, split, InputError(f"utterance id {uid!r} is not SPEAKER_BOOK_UTTERANCE", path=tr, line=lineno, expected="MLS ids such as 1234_5678_000012"))
                    continue
                audio = folder / split / "audio" / parts[0] / parts[1] / f"{uid}{ext}"
                chk = _check_audio(audio, tr, lineno, allow_resample=False)
                if isinstance(chk, InputError):
                    bad(code, split, chk)
                    continue
                items.append((uid, text, audio.resolve()))
        elif (folder / split).exists():
            bad(code, split, InputError("missing transcripts.txt", path=tr, expected="train/, dev/ and test/ each with transcripts.txt"))
    return per


# ---------------------------------------------------------------------------------------------
# a folder of audio files


def _index_audio(audio_dir: Path, skip: Path | None = None) -> dict[str, list[Path]]:
    """id (file stem) -> every audio file of that name under ``audio_dir`` (more than one: ambiguous),
    leaving out the folder ``skip`` (the corpus being written, whose audio links would double every id)."""
    if not audio_dir.is_dir():
        raise InputError("not a folder", path=audio_dir, expected="a folder of audio files (FLAC, WAV, Opus)")
    skip = skip.resolve() if skip is not None else None
    index: dict[str, list[Path]] = {}
    for p in sorted(audio_dir.rglob("*")):
        if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file():
            if skip is not None and p.parent.resolve().is_relative_to(skip):
                continue
            index.setdefault(p.stem, []).append(p)
    return index


def auto_split(speaker: str) -> str:
    """Deterministic speaker-level split: crc32(speaker) % 10 == 8 → dev, 9 → test, else train."""
    k = zlib.crc32(speaker.encode("utf-8")) % 10
    return "dev" if k == 8 else "test" if k == 9 else "train"


def import_dir(audio_dir: str | Path, transcripts: dict[str, str | Path], out: str | Path, split: str = "train", skip_bad: bool = False,
               resample: bool = False, command: str | None = None) -> dict:
    """Import a folder of audio files plus one ``id<TAB>text`` file per language; returns the card.

    Each id names the audio file ``ID.flac|.wav|.opus|.ogg`` anywhere under ``audio_dir``. The
    speaker is the part of the id before the first ``_`` (the whole id without one). ``split``
    puts every item in ``train``, ``dev`` or ``test``, or ``auto`` splits by speaker (see
    :func:`auto_split`). Manifests of other splits already in ``out`` are kept, so several calls
    (one per split) can fill one corpus. Every item is checked before anything is written; the
    audio is linked into ``out/audio/{lang}/{split}/``. An id listed twice, or found as two audio
    files, is a bad item; a language left without items is an error.
    """
    from lhotse import Recording, SupervisionSegment

    if split not in ("train", "dev", "test", "auto"):
        raise InputError(f"unknown split {split!r}", field="split", expected="train, dev, test or auto")
    audio_dir, out = Path(audio_dir), Path(out)
    for lang in transcripts:
        check_language(lang)
    index = _index_audio(audio_dir, skip=out)
    bad = _Bad(skip_bad)
    collected: dict[str, dict[str, tuple[dict, dict]]] = {}
    originals: dict[tuple[str, str], Path] = {}
    for lang, tpath in sorted(transcripts.items()):
        tpath = Path(tpath)
        if not tpath.is_file():
            raise InputError("transcript file not found", path=tpath, expected="a file of `id<TAB>text` lines")
        per: dict[str, tuple[dict, dict]] = {}
        for lineno, uid, text in _parse_transcripts(tpath, lang, split if split != "auto" else "train", bad):
            speaker = uid.split("_")[0]
            sp = split if split != "auto" else auto_split(speaker)
            found = index.get(uid, [])
            if not found:
                bad(lang, sp, InputError(f"missing audio file for {uid!r}", path=tpath, line=lineno, expected=f"{uid}.flac (or .wav/.opus/.ogg) under {audio_dir}"))
                continue
            if len(found) > 1:
                bad(lang, sp, InputError(f"ambiguous audio for {uid!r}: {', '.join(str(p) for p in found)}", path=tpath, line=lineno,
                                         expected=f"one audio file named {uid} under {audio_dir}"))
                continue
            audio = found[0]
            chk = _check_audio(audio, tpath, lineno, allow_resample=resample)
            if isinstance(chk, InputError):
                bad(lang, sp, chk)
                continue
            rec = Recording.from_file(audio.resolve(), recording_id=uid)
            if rec.sampling_rate != SAMPLE_RATE:
                rec = rec.resample(SAMPLE_RATE)
            sup = SupervisionSegment(id=uid, recording_id=uid, start=0.0, duration=rec.duration, channel=0, text=text, language=lang, speaker=speaker)
            recs, sups = per.setdefault(sp, ({}, {}))
            recs[uid], sups[uid] = rec, sup
            originals[(lang, uid)] = audio
        _require_items(lang, sum(len(r) for r, _ in per.values()), bad, tpath)
        collected[lang] = per
    start_build(out, command or f"asr-pathways corpus import-dir --audio-dir {audio_dir} --out {out} --split {split}")
    for lang, per in collected.items():
        for sp in sorted(set(per) | {s for (l, s) in bad.items if l == lang}):
            recs, sups = per.get(sp, ({}, {}))
            for uid, rec in recs.items():
                src = originals[(lang, uid)]
                rec.sources[0].source = link_audio(out, lang, sp, uid + src.suffix.lower(), src)
            write_split(out, lang, sp, *_cuts_from(recs, sups), bad_items=bad.items.get((lang, sp), []))
    return finish_build(out, {"source": "dir", "path": audio_dir.name, "split": split})
