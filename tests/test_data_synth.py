"""espeak-ng corpus generator: determinism, disjoint splits, languages, resume, bad input."""

import gzip
import hashlib
import json
from pathlib import Path

import pytest
import soundfile as sf

from asr_pathways.data.corpus import Corpus
from asr_pathways.data.synth import SynthConfig, build_corpus, parse_hours
from asr_pathways.errors import InputError


def tiny(out, langs=("en", "fr"), hours=0.004, **kw):
    kw = {"test_utts": 3, "dev_utts": 2, "train_speakers": 8, "eval_speakers": 3, "progress": False, **kw}
    return SynthConfig(out=Path(out), languages=list(langs), hours={l: hours for l in langs}, **kw)


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "c"
    card = build_corpus(tiny(out, jobs=2))
    return out, card


def test_determinism_across_jobs(built, tmp_path):
    out, _ = built
    out2 = tmp_path / "c2"
    build_corpus(tiny(out2, jobs=1))
    h1, h2 = tree_hashes(out), tree_hashes(out2)
    assert h1 == h2
    assert any(k.endswith(".flac") for k in h1) and any(k.endswith("cuts_train.jsonl.gz") for k in h1)


def test_layout_and_manifests(built):
    out, card = built
    c = Corpus(out)
    assert c.languages == ["en", "fr"]
    for lang in c.languages:
        train = c.cuts(lang, "train")
        assert sum(cut.duration for cut in train) >= 0.004 * 3600
        assert len(c.cuts(lang, "test")) == 3 and len(c.cuts(lang, "dev")) == 2
        cut = train[0]
        sup = cut.supervisions[0]
        assert sup.language == lang and sup.speaker and sup.text
        audio = cut.load_audio()
        assert audio.shape == (1, cut.num_samples) and cut.sampling_rate == 16000
        info = sf.info(str(out / "audio" / lang / "train" / f"{cut.id}.flac"))
        assert info.samplerate == 16000 and info.channels == 1 and info.format == "FLAC"
        for split in ("train", "dev", "test"):
            stats = card["languages"][lang][split]
            assert stats["utterances"] == len(c.cuts(lang, split)) and stats["speakers"] >= 1 and stats["vocabulary"] > 0
    assert (out / "card.md").read_text().startswith("# Corpus card")
    # manifests store paths relative to the corpus folder
    line = gzip.open(out / "manifests/en/recordings_train.jsonl.gz", "rt").readline()
    assert json.loads(line)["sources"][0]["source"].startswith("audio/en/train/")


def test_disjoint_splits(built):
    out, _ = built
    c = Corpus(out)
    for lang in c.languages:
        spk = {s: {cut.supervisions[0].speaker for cut in c.cuts(lang, s)} for s in ("train", "dev", "test")}
        txt = {s: {cut.supervisions[0].text for cut in c.cuts(lang, s)} for s in ("train", "dev", "test")}
        assert not spk["train"] & spk["test"] and not spk["train"] & spk["dev"] and not spk["dev"] & spk["test"]
        assert not txt["train"] & (txt["dev"] | txt["test"])


@pytest.mark.parametrize("lang", ["de", "es", "pt", "pl"])
def test_other_languages(tmp_path, lang):
    card = build_corpus(tiny(tmp_path / lang, langs=(lang,), hours=0.001, test_utts=2, dev_utts=1))
    st = card["languages"][lang]
    assert st["train"]["utterances"] >= 1 and st["test"]["utterances"] == 2 and st["dev"]["utterances"] == 1


def test_resume_keeps_finished_files(tmp_path):
    out = tmp_path / "r"
    build_corpus(tiny(out, langs=("nl",), hours=0.002))  # a smaller, "interrupted" build
    flacs = sorted((out / "audio/nl/train").glob("*.flac"))
    before = {p: p.stat().st_mtime_ns for p in flacs}
    victim = flacs[-1]
    victim_hash = hashlib.sha256(victim.read_bytes()).hexdigest()
    victim.unlink()
    for p in (out / "manifests").rglob("*"):
        if p.is_file():
            p.unlink()
    build_corpus(tiny(out, langs=("nl",), hours=0.004))
    for p, t in before.items():
        if p != victim:
            assert p.stat().st_mtime_ns == t, f"{p.name} was rewritten"
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim_hash
    assert len(list((out / "audio/nl/train").glob("*.flac"))) > len(flacs)
    assert not list(out.rglob(".*tmp*"))
    # the result equals a fresh build with the final settings
    fresh = tmp_path / "fresh"
    build_corpus(tiny(fresh, langs=("nl",), hours=0.004))
    assert tree_hashes(out) == tree_hashes(fresh)


def test_changed_settings_refused(built):
    out, _ = built
    with pytest.raises(InputError, match="other settings"):
        build_corpus(tiny(out, seed=1))


def test_unknown_language():
    with pytest.raises(InputError, match="unknown language code 'xx'"):
        build_corpus(tiny("/nonexistent-never-made", langs=("xx",)))


def test_text_dir_bad_line_and_skip(tmp_path):
    tdir = tmp_path / "text"
    tdir.mkdir()
    lines = [f"Sentence number {w} is here" for w in ["one", "two", "three", "four", "five", "six", "seven"]]
    lines.insert(3, "12345 !!")
    (tdir / "en.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as e:
        build_corpus(tiny(tmp_path / "a", langs=("en",), text_dir=tdir, test_utts=2, dev_utts=1))
    assert str(tdir / "en.txt") in str(e.value) and e.value.line == 4 and ":4" in str(e.value)
    card = build_corpus(tiny(tmp_path / "b", langs=("en",), hours=0.001, text_dir=tdir, test_utts=2, dev_utts=1, skip_bad=True))
    assert card["bad_items_total"] == 1 and card["languages"]["en"]["train"]["bad_items"] == 1
    texts = Corpus(tmp_path / "b").texts("train") + Corpus(tmp_path / "b").texts("test")
    assert all(t.startswith("sentence number") for t in texts)


def test_parse_hours():
    assert parse_hours("en=8,fr=0.5", ["en", "fr", "it"]) == {"en": 8.0, "fr": 0.5, "it": 1.0}
    assert parse_hours("0.25", ["en", "nl"]) == {"en": 0.25, "nl": 0.25}
    with pytest.raises(InputError, match="hours"):
        parse_hours("en=lots", ["en"])


def test_cli_synth_and_card(tmp_path, capsys):
    from asr_pathways.cli import main

    rc = main(["corpus", "synth", "--out", str(tmp_path / "c"), "--languages", "it", "--hours", "0.001", "--test-utts", "2", "--dev-utts", "1", "--no-progress"])
    assert rc == 0
    assert "| it | train |" in capsys.readouterr().out
    assert main(["corpus", "card", str(tmp_path / "c")]) == 0
    assert "| it | test |" in capsys.readouterr().out
