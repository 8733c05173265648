"""Corpus folder: deterministic manifest writing, the corpus card, and the :class:`Corpus` reader.

Layout (docs/architecture.md)::

    CORPUS/card.json  card.md
    CORPUS/audio/{lang}/{split}/*.flac
    CORPUS/manifests/{lang}/{recordings,supervisions,cuts}_{split}.jsonl.gz
    CORPUS/manifests/{lang}/bad_{split}.json      items skipped with --skip-bad

Manifests are gzip files written with ``mtime=0`` and no file name in the header, through an
atomic rename, so two identical builds give byte-identical files and an interrupted write never
leaves a file that a later run trusts. Recording paths inside the corpus are stored relative to
the corpus folder (so the folder can move); :meth:`Corpus.cuts` resolves them.

The card (card.json, card.md) holds per language and split the hours, utterances, speakers,
vocabulary and words, and for dev and test how open their vocabulary is against the training
text: ``unseen_word_share`` (word tokens never seen in training), ``slot_words``,
``unseen_slot_share`` and ``rare_slot_share`` (slot tokens, i.e. not closed-class frame words of
the language's templates, never seen / seen fewer than 5 times in training); see
:func:`asr_pathways.data.text.open_vocabulary_stats`.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import InputError
from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
from .text import RARE_COUNT, frame_words, open_vocabulary_stats, word_counts

SPLITS = ("train", "dev", "test")
MANIFEST_KINDS = ("recordings", "supervisions", "cuts")
# a language code: letters, then optional subtags (pt-br, zh-hans, en-us); never a path
LANGUAGE_CODE_RE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*", re.IGNORECASE)
# set to 1 to read recordings whose audio path is absolute (outside the corpus folder)
ALLOW_ABSOLUTE_AUDIO_ENV = "ASR_PATHWAYS_ALLOW_ABSOLUTE_AUDIO"


def check_language_code(code: str, path: str | Path | None = None, line: int | None = None) -> str:
    """Return ``code`` if it is shaped like a language code (``en``, ``pt-br``); else raise :class:`InputError`."""
    if not isinstance(code, str) or not LANGUAGE_CODE_RE.fullmatch(code):
        raise InputError(f"bad language code {code!r}", path=path, line=line, field="language",
                         expected="letters with optional -subtags, such as en, fr, pt-br")
    return code


def manifest_path(corpus_dir: str | Path, lang: str, kind: str, split: str) -> Path:
    """``CORPUS/manifests/{lang}/{kind}_{split}.jsonl.gz`` (``lang`` checked: it never leaves the folder)."""
    check_language_code(lang)
    return Path(corpus_dir) / "manifests" / lang / f"{kind}_{split}.jsonl.gz"


def start_build(corpus_dir: str | Path, command: str) -> None:
    """Before a build writes anything: clean what an interrupted build left, mark the corpus in progress."""
    from .. import folders

    corpus_dir = Path(corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for stale in corpus_dir.glob(".staging-*"):  # staging trees of a killed import (we hold the folder's lock)
        shutil.rmtree(stale, ignore_errors=True)
    folders.remove_stale_temp(corpus_dir)
    folders.remove_stale_temp(corpus_dir / "manifests", recursive=True)
    folders.begin(corpus_dir, command)


def finish_build(corpus_dir: str | Path, settings: dict) -> dict:
    """Write the card, then mark the corpus complete (the last write of a build); returns the card."""
    from .. import folders

    card = write_card(corpus_dir, settings)
    folders.finish(corpus_dir)
    return card


def check_recording(rec: Any, corpus_dir: Path, manifest: Path, allow_absolute: bool) -> None:
    """Refuse a recording that reading would run, fetch or find outside the corpus folder.

    Only ``file`` sources are read; their path must stay inside ``corpus_dir`` (symbolic links in
    the folder, such as the audio an import links in, are followed), or be absolute when
    ``allow_absolute``.
    """
    root = os.path.normpath(str(corpus_dir.resolve()))
    for src in rec.sources:
        where = f"recording {rec.id!r}"
        if src.type != "file":
            raise InputError(f"{where} has a {src.type!r} audio source, which reading would run or fetch", path=manifest,
                             expected="audio sources of type 'file'", hint="Rebuild the corpus with `asr-pathways corpus`")
        if os.path.isabs(src.source):
            if not allow_absolute:
                raise InputError(
                    f"{where} reads audio from an absolute path ({src.source})", path=manifest,
                    expected="paths inside the corpus folder",
                    hint=f"Re-import the corpus (imports link the audio into it), or set {ALLOW_ABSOLUTE_AUDIO_ENV}=1 if you trust it",
                )
            continue
        full = os.path.normpath(os.path.join(root, src.source))
        if not full.startswith(root + os.sep):
            raise InputError(f"{where} reads audio outside the corpus folder ({src.source})", path=manifest,
                             expected="paths inside the corpus folder")


def _jsonl_gz(items: Iterable[Any]) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        for it in items:
            d = it if isinstance(it, dict) else it.to_dict()
            gz.write((json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    return buf.getvalue()


def write_split(corpus_dir: str | Path, lang: str, split: str, recordings: Sequence, supervisions: Sequence, cuts: Sequence, bad_items: list[dict] | None = None) -> None:
    """Write the three manifests of one language and split (and its skipped items), atomically.

    Cuts are written last, so a folder with a cuts manifest has the other two as well.
    """
    atomic_write_json(Path(corpus_dir) / "manifests" / lang / f"bad_{split}.json", list(bad_items or []))
    for kind, items in (("recordings", recordings), ("supervisions", supervisions), ("cuts", cuts)):
        atomic_write_bytes(manifest_path(corpus_dir, lang, kind, split), _jsonl_gz(items))


def _read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _split_stats(sups: list[dict], bad: int) -> dict[str, Any]:
    vocab: set[str] = set()
    words = 0
    for s in sups:
        w = (s.get("text") or "").split()
        words += len(w)
        vocab.update(w)
    return {
        "utterances": len(sups),
        "hours": round(sum(float(s["duration"]) for s in sups) / 3600.0, 4),
        "speakers": len({s.get("speaker") for s in sups}),
        "vocabulary": len(vocab),
        "words": words,
        "bad_items": bad,
    }


def write_card(corpus_dir: str | Path, settings: dict | None = None) -> dict:
    """Compute the corpus card from the manifests on disk and write card.json and card.md atomically.

    ``settings`` (how the corpus was made) is stored in the card; ``None`` keeps the settings of an
    existing card (adding to them when the value is a dict).
    """
    corpus_dir = Path(corpus_dir)
    old = {}
    if (corpus_dir / "card.json").is_file():
        try:
            old = json.loads((corpus_dir / "card.json").read_text())
        except json.JSONDecodeError:
            old = {}
    card: dict[str, Any] = {"settings": settings if settings is not None else old.get("settings", {}), "languages": {}, "bad_items": []}
    mdir = corpus_dir / "manifests"
    langs = sorted(p.name for p in mdir.iterdir() if p.is_dir()) if mdir.is_dir() else []
    for lang in langs:
        per: dict[str, Any] = {}
        texts: dict[str, list[str]] = {}
        for split in SPLITS:
            sp = manifest_path(corpus_dir, lang, "supervisions", split)
            if not sp.is_file():
                continue
            badp = corpus_dir / "manifests" / lang / f"bad_{split}.json"
            bad = json.loads(badp.read_text()) if badp.is_file() else []
            sups = _read_jsonl_gz(sp)
            texts[split] = [s.get("text") or "" for s in sups]
            per[split] = _split_stats(sups, len(bad))
            card["bad_items"] += [{"language": lang, "split": split, **b} for b in bad]
        if "train" in texts:  # how many held-out words the training text never (or rarely) shows
            counts = word_counts(texts["train"])
            for split in ("dev", "test"):
                if split in texts:
                    st = open_vocabulary_stats(texts[split], counts, frame_words(lang))
                    per[split].update({k: v for k, v in st.items() if k != "words"})
        if per:
            card["languages"][lang] = per
    card["totals"] = {
        split: {
            "hours": round(sum(v[split]["hours"] for v in card["languages"].values() if split in v), 4),
            "utterances": sum(v[split]["utterances"] for v in card["languages"].values() if split in v),
        }
        for split in SPLITS
    }
    card["bad_items_total"] = len(card["bad_items"])
    card["bad_items"] = card["bad_items"][:200]
    atomic_write_json(corpus_dir / "card.json", card)
    atomic_write_text(corpus_dir / "card.md", card_markdown(card))
    return card


def card_markdown(card: dict) -> str:
    """The card as a Markdown table (one row per language and split)."""
    lines = ["# Corpus card", ""]
    s = card.get("settings") or {}
    if s:
        lines += ["Made by: " + ", ".join(f"{k}={v}" for k, v in sorted(s.items()) if not isinstance(v, (dict, list))), ""]
    lines += ["| language | split | hours | utterances | speakers | vocabulary | words | skipped |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for lang, per in card["languages"].items():
        for split, st in per.items():
            lines.append(f"| {lang} | {split} | {st['hours']:.3f} | {st['utterances']} | {st['speakers']} | {st['vocabulary']} | {st['words']} | {st['bad_items']} |")
    tot = card.get("totals", {})
    lines += ["", "Totals: " + ", ".join(f"{k} {v['hours']:.3f} h / {v['utterances']} utterances" for k, v in tot.items())]
    ov = [(lang, per["test"]) for lang, per in card["languages"].items() if "unseen_word_share" in per.get("test", {})]
    if ov:
        pct = lambda x: "—" if x is None else f"{100 * x:.1f}%"  # noqa: E731  (None: nothing to count)
        lines += ["", "Open vocabulary of the test split: words never seen in training; slot words are those outside the "
                  f"closed-class words of the language's sentence frames; rare: seen fewer than {RARE_COUNT} times in training.", "",
                  "| language | test words | unseen | slot words | unseen slot words | rare slot words |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for lang, st in ov:
            lines.append(f"| {lang} | {st['words']} | {pct(st['unseen_word_share'])} | {st['slot_words']} | "
                         f"{pct(st['unseen_slot_share'])} | {pct(st['rare_slot_share'])} |")
    if card.get("bad_items_total"):
        lines += ["", f"Skipped bad items: {card['bad_items_total']}", ""]
        for b in card["bad_items"][:20]:
            lines.append(f"- {b.get('language')}/{b.get('split')}: {b.get('reason')}")
    return "\n".join(lines) + "\n"


class Corpus:
    """Read a corpus folder written by ``asr-pathways corpus synth|import-mls|import-dir``."""

    def __init__(self, path: str | Path, allow_absolute_audio: bool | None = None) -> None:
        from ..folders import check_complete

        self.path = Path(path)
        check_complete(self.path, "corpus")
        if not (self.path / "manifests").is_dir():
            raise InputError("not a corpus folder (no manifests/)", path=self.path, expected="a folder made by `asr-pathways corpus synth` or an import")
        if allow_absolute_audio is None:
            allow_absolute_audio = os.environ.get(ALLOW_ABSOLUTE_AUDIO_ENV) == "1"
        self.allow_absolute_audio = allow_absolute_audio
        self._card: dict | None = None
        self._cuts: dict[tuple[str, str], Any] = {}

    @property
    def languages(self) -> list[str]:
        """Language codes with at least one cuts manifest, sorted."""
        return sorted(p.name for p in (self.path / "manifests").iterdir() if p.is_dir() and any(p.glob("cuts_*.jsonl.gz")))

    def splits(self, lang: str) -> list[str]:
        return [s for s in SPLITS if manifest_path(self.path, lang, "cuts", s).is_file()]

    def cuts(self, lang: str, split: str):
        """The :class:`lhotse.CutSet` of one language and split, with audio paths resolved.

        Every cut must be a single recording read from a file inside the corpus folder (see
        :func:`check_recording`): a manifest never makes reading run a command or fetch a URL.
        """
        from lhotse import CutSet, MonoCut

        if (lang, split) in self._cuts:
            return self._cuts[(lang, split)]
        p = manifest_path(self.path, lang, "cuts", split)
        if not p.is_file():
            raise InputError(f"no {split} cuts for language {lang!r}", path=p, expected=f"one of {self.languages}")
        try:
            # read once into a list: lhotse reads .jsonl.gz lazily, and every pass over a lazy set decompresses
            # and parses the file again (0.2 s per pass over 3,000 cuts; a trainer's set-up makes several)
            lazy = CutSet.from_file(p)  # an empty manifest reads as None
            cuts = CutSet(list(lazy) if lazy is not None else [])
        except (OSError, EOFError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"cannot read the cuts manifest ({type(e).__name__}: {e})", path=p, expected="a manifest written by asr-pathways") from None
        for cut in cuts:
            if not isinstance(cut, MonoCut) or cut.recording is None or cut.has_features:
                raise InputError(f"cut {cut.id!r} is not a single recording", path=p, expected="cuts of one recording each, without precomputed features")
            check_recording(cut.recording, self.path, p, self.allow_absolute_audio)
        self._cuts[(lang, split)] = cuts.with_recording_path_prefix(str(self.path.resolve())).to_eager()  # (the cuts checked above)
        return self._cuts[(lang, split)]

    def texts(self, split: str, languages: Sequence[str] | None = None) -> list[str]:
        """Normalised transcripts of ``split`` for ``languages`` (default: all), in manifest order."""
        out: list[str] = []
        for lang in languages or self.languages:
            p = manifest_path(self.path, lang, "supervisions", split)
            if not p.is_file():
                raise InputError(f"no {split} supervisions for language {lang!r}", path=p)
            out += [s.get("text") or "" for s in _read_jsonl_gz(p)]
        return out

    @property
    def card(self) -> dict:
        if self._card is None:
            p = self.path / "card.json"
            self._card = json.loads(p.read_text()) if p.is_file() else write_card(self.path)
        return self._card
