"""espeak-ng corpus generator: determinism, disjoint splits, languages, resume, bad input."""

import gzip
import hashlib
import json
from pathlib import Path

import pytest
import soundfile as sf

from asr_pathways.data.corpus import Corpus, card_markdown, write_card, write_split
from asr_pathways.data.synth import DEFAULT_HOURS, SynthConfig, build_corpus, parse_hours
from asr_pathways.data.text import frame_words
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


def test_word_weights_in_fingerprint(built, tmp_path):
    out, card = built
    assert "real word weights" in card["settings"]["text"]
    fp = json.loads((out / "audio/en/build.json").read_text())
    assert fp["word_weights"] == "real"
    with pytest.raises(InputError, match="other settings.*word_weights"):
        build_corpus(tiny(out, word_weights="flat"))
    # a corpus built before the option (no word_weights in build.json) used flat weights: the new default refuses it
    old = tmp_path / "old"
    (old / "audio/en").mkdir(parents=True)
    (old / "audio/en/build.json").write_text(json.dumps({k: v for k, v in fp.items() if k != "word_weights"}))
    with pytest.raises(InputError, match="other settings"):
        build_corpus(tiny(old, langs=("en",)))
    with pytest.raises(InputError, match="word weighting"):
        build_corpus(tiny(tmp_path / "bad", langs=("en",), word_weights="zipf"))


def test_card_open_vocabulary_of_built_corpus(built):
    out, card = built
    c = Corpus(out)
    for lang in c.languages:
        train = [w for t in c.texts("train", [lang]) for w in t.split()]
        seen = {w: train.count(w) for w in set(train)}
        fw = frame_words(lang)
        for split in ("dev", "test"):
            words = [w for t in c.texts(split, [lang]) for w in t.split()]
            slots = [w for w in words if w not in fw]
            st = card["languages"][lang][split]
            assert st["unseen_word_share"] == round(sum(w not in seen for w in words) / len(words), 4)
            assert st["slot_words"] == len(slots) > 0
            assert st["unseen_slot_share"] == round(sum(w not in seen for w in slots) / len(slots), 4)
            assert st["rare_slot_share"] == round(sum(seen.get(w, 0) < 5 for w in slots) / len(slots), 4)
        assert "unseen_word_share" not in card["languages"][lang]["train"]
    assert "Open vocabulary of the test split" in (out / "card.md").read_text()


def test_card_open_vocabulary_by_hand(tmp_path):
    def sups(texts):
        return [{"id": f"u{i}", "recording_id": f"u{i}", "start": 0.0, "duration": 1.0, "channel": 0, "text": t, "speaker": "s"}
                for i, t in enumerate(texts)]

    texts = {
        "train": ["the cat sat", "the cat ran", "a dog sat", "the cat sat", "the cat sat"],
        "dev": ["the cat flew"],
        "test": ["the cat sat", "a dog ran", "the zebra ran and ran"],
    }
    for split, tx in texts.items():
        write_split(tmp_path, "en", split, [], sups(tx), [])
    card = write_card(tmp_path, {"source": "hand"})
    test = card["languages"]["en"]["test"]
    # training counts: the 4, cat 4, sat 4, ran 1, a 1, dog 1; frame words of English: the, a, and
    # test tokens: the cat sat a dog ran the zebra ran and ran -> 11; unseen: zebra, and -> 2/11
    # test slot tokens: cat sat dog ran zebra ran ran -> 7; unseen: zebra -> 1/7; seen < 5 times: all 7 -> 7/7
    assert {"the", "a", "and"} <= frame_words("en") and not {"cat", "sat", "dog", "ran", "zebra", "flew"} & frame_words("en")
    assert test["words"] == 11 and test["unseen_word_share"] == round(2 / 11, 4)
    assert test["slot_words"] == 7 and test["unseen_slot_share"] == round(1 / 7, 4) and test["rare_slot_share"] == 1.0
    dev = card["languages"]["en"]["dev"]
    assert (dev["unseen_word_share"], dev["slot_words"], dev["unseen_slot_share"], dev["rare_slot_share"]) == (round(1 / 3, 4), 2, 0.5, 1.0)
    md = card_markdown(card)
    assert "| en | 11 | 18.2% | 7 | 14.3% | 100.0% |" in md
    assert json.loads((tmp_path / "card.json").read_text())["languages"]["en"]["test"]["unseen_slot_share"] == round(1 / 7, 4)


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
    assert parse_hours("en=8,fr=0.5", ["en", "fr", "it"]) == {"en": 8.0, "fr": 0.5, "it": DEFAULT_HOURS["it"]}
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


def test_cli_text_stats(capsys):
    from asr_pathways.cli import main

    assert main(["corpus", "text-stats", "--languages", "it", "--hours", "0.005", "--test-utts", "20", "--calibrate-utts", "3", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "lexicon 4000, real word weights" in out and "| it | 0.005 |" in out
    assert main(["corpus", "text-stats", "--languages", "it", "--hours", "0.005", "--test-utts", "20", "--calibrate-utts", "3", "--jobs", "1",
                 "--json", "--word-weights", "flat", "--lexicon-size", "1000"]) == 0
    st = json.loads(capsys.readouterr().out)["it"]
    assert st["train_utts"] >= 3 and st["test"]["words"] > 20 and 0 < st["test"]["unseen_slot_share"] <= 1
