"""Issue 16, cases 1, 4 and 8 (language codes): what a corpus may make reading do, and inputs that must not vanish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import make_audio_dir, write_audio
from hostile_helpers import TRAIN, cli, copy_tree, one_line, read_jsonl_gz, snapshot, write_jsonl_gz

from asr_pathways.data.corpus import ALLOW_ABSOLUTE_AUDIO_ENV, Corpus


def _set_first_source(corpus: Path, source: dict) -> Path:
    p = corpus / "manifests" / "en" / "cuts_train.jsonl.gz"
    cuts = read_jsonl_gz(p)
    cuts[0]["recording"]["sources"][0].update(source)
    write_jsonl_gz(p, cuts)
    return p


# ----------------------------------------------------------------------------------- case 1
@pytest.mark.parametrize("kind", ["command", "url", "escape", "absolute"])
def test_case1_a_corpus_cannot_run_fetch_or_reach_outside(kind, tiny_corpus, tmp_path, capsys):
    corpus = copy_tree(tiny_corpus, tmp_path / "corpus")
    pwned = tmp_path / "PWNED"
    source, fragment = {
        "command": ({"type": "command", "source": f"id > {pwned}"}, "has a 'command' audio source"),
        "url": ({"type": "url", "source": "http://127.0.0.1:9/x.flac"}, "has a 'url' audio source"),
        "escape": ({"type": "file", "source": "../../../../etc/hostname"}, "reads audio outside the corpus folder"),
        "absolute": ({"type": "file", "source": "/etc/hostname"}, "reads audio from an absolute path"),
    }[kind]
    manifest = _set_first_source(corpus, source)
    before = snapshot(tmp_path)
    rc, err = cli(capsys, "train", "--corpus", corpus, "--out", tmp_path / "run", "--steps", "1", *TRAIN)
    line = one_line(err, "train")
    assert rc == 2
    assert fragment in line and str(manifest) in line
    assert not pwned.exists()
    assert snapshot(tmp_path) == before  # nothing written: no run folder, no file anywhere else


def test_case1_absolute_audio_only_when_the_user_opts_in(tiny_corpus, tmp_path, monkeypatch):
    corpus = copy_tree(tiny_corpus, tmp_path / "corpus")
    first = read_jsonl_gz(corpus / "manifests" / "en" / "cuts_train.jsonl.gz")[0]
    original = (corpus / first["recording"]["sources"][0]["source"]).resolve()
    _set_first_source(corpus, {"source": str(original)})
    with pytest.raises(Exception, match="absolute path"):
        Corpus(corpus).cuts("en", "train")
    monkeypatch.setenv(ALLOW_ABSOLUTE_AUDIO_ENV, "1")
    cut = next(iter(Corpus(corpus).cuts("en", "train")))
    assert cut.load_audio().shape[1] == cut.num_samples


# ----------------------------------------------------------------------------------- case 4
def _audio(tmp_path: Path, n: int = 6) -> tuple[Path, Path]:
    return make_audio_dir(tmp_path, n=n)


def test_case4_an_id_listed_twice_is_an_error_naming_both_lines(tmp_path, capsys):
    audio, tr = _audio(tmp_path)
    lines = tr.read_text().splitlines()
    tr.write_text("\n".join(lines + [lines[0].split("\t")[0] + "\tanother text"]) + "\n")
    rc, err = cli(capsys, "corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr}", "--out", tmp_path / "c")
    assert rc == 2
    assert "utterance id 'spk0_utt000' is listed 2 times (lines 1, 7)" in one_line(err, "corpus")
    assert not (tmp_path / "c").exists()


def test_case4_an_id_listed_twice_is_two_bad_items_with_skip_bad(tmp_path, capsys):
    audio, tr = _audio(tmp_path)
    lines = tr.read_text().splitlines()
    tr.write_text("\n".join(lines + [lines[0].split("\t")[0] + "\tanother text"]) + "\n")
    rc, _ = cli(capsys, "corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr}", "--out", tmp_path / "c", "--skip-bad")
    assert rc == 0
    card = json.loads((tmp_path / "c" / "card.json").read_text())
    assert card["bad_items_total"] == 2
    assert sorted(b["line"] for b in card["bad_items"]) == [1, 7]
    ids = [c["id"] for c in read_jsonl_gz(tmp_path / "c" / "manifests" / "en" / "cuts_train.jsonl.gz")]
    assert "spk0_utt000" not in ids and len(ids) == 5


def test_case4_a_file_name_in_two_folders_is_ambiguous(tmp_path, capsys):
    audio, tr = _audio(tmp_path)
    write_audio(audio / "other" / "spk1_utt001.flac", 0.3, 16000)
    rc, err = cli(capsys, "corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr}", "--out", tmp_path / "c")
    line = one_line(err, "corpus")
    assert rc == 2
    assert f"{tr}:2: ambiguous audio for 'spk1_utt001'" in line
    assert str(audio / "spk1_utt001.flac") in line and str(audio / "other" / "spk1_utt001.flac") in line
    rc, _ = cli(capsys, "corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr}", "--out", tmp_path / "c", "--skip-bad")
    assert rc == 0
    card = json.loads((tmp_path / "c" / "card.json").read_text())
    assert card["bad_items_total"] == 1 and "ambiguous" in card["bad_items"][0]["reason"]


def test_case4_a_corpus_inside_its_audio_folder_does_not_make_its_own_links_ambiguous(tmp_path, capsys):
    audio, tr = _audio(tmp_path)
    argv = ["corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr}", "--out", audio / "corpus"]
    assert cli(capsys, *argv)[0] == 0
    assert cli(capsys, *argv)[0] == 0  # the rerun does not see spk0_utt000.flac twice
    assert json.loads((audio / "corpus" / "card.json").read_text())["bad_items_total"] == 0


def test_case4_a_language_without_good_items_is_an_error(tmp_path, capsys):
    audio, tr = _audio(tmp_path)
    fr = tmp_path / "fr.tsv"
    fr.write_text("nobody_000\tbonjour\nnobody_001\tmerci\n")
    rc, err = cli(capsys, "corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en={tr},fr={fr}",
                  "--out", tmp_path / "c", "--skip-bad")
    assert rc == 2
    assert f"{fr}: no usable item for language 'fr' (2 bad; first: " in one_line(err, "corpus")
    assert not (tmp_path / "c").exists()  # checked before anything was written


def test_case4_an_empty_train_split_is_an_error_in_train(tiny_corpus, tmp_path, capsys):
    corpus = copy_tree(tiny_corpus, tmp_path / "corpus")
    write_jsonl_gz(corpus / "manifests" / "fr" / "cuts_train.jsonl.gz", [])
    rc, err = cli(capsys, "train", "--corpus", corpus, "--out", tmp_path / "run", "--steps", "1", *TRAIN)
    assert rc == 2
    assert "the train split of language 'fr' is empty" in one_line(err, "train")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------- case 8
def test_case8_a_language_code_cannot_be_a_path(tmp_path, capsys):
    work = tmp_path / "a" / "b" / "c"
    audio, tr = _audio(work)
    before = snapshot(tmp_path)
    rc, err = cli(capsys, "corpus", "import-dir", "--audio-dir", audio, "--transcripts", f"en-../../../../x={tr}",
                  "--out", work / "corpus")
    assert rc == 2
    assert "bad language code 'en-../../../../x'" in one_line(err, "corpus")
    assert snapshot(tmp_path) == before
