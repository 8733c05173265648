"""MLS (FLAC and Opus) and folder imports, with the bad-input errors and --skip-bad."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from data_fixtures import MLS_TEXT, make_audio_dir, make_mls_tree, write_audio  # noqa: E402

from asr_pathways.data.corpus import Corpus  # noqa: E402
from asr_pathways.data.mls import auto_split, import_dir, import_mls  # noqa: E402
from asr_pathways.errors import InputError  # noqa: E402


@pytest.mark.parametrize("opus", [False, True])
def test_import_mls(tmp_path, opus):
    make_mls_tree(tmp_path / "src", "french", opus=opus)
    card = import_mls(tmp_path / "src", tmp_path / "out")
    assert card["languages"]["fr"]["train"]["utterances"] == len(MLS_TEXT["train"])
    c = Corpus(tmp_path / "out")
    assert c.languages == ["fr"]
    for split in ("train", "dev", "test"):
        cuts = c.cuts("fr", split)
        assert len(cuts) == len(MLS_TEXT[split])
        cut = cuts[0]
        assert cut.sampling_rate == 16000
        assert cut.supervisions[0].language == "fr" and cut.supervisions[0].speaker == cut.id.split("_")[0]
        audio = cut.load_audio()
        assert audio.shape[0] == 1 and abs(audio.shape[1] - cut.num_samples) <= 1
        assert cut.recording.sources[0].source.endswith(".opus" if opus else ".flac")
    assert sorted(c.texts("train")) == sorted(MLS_TEXT["train"])


def test_import_mls_two_languages_and_filter(tmp_path):
    make_mls_tree(tmp_path / "src", "german")
    make_mls_tree(tmp_path / "src", "polish", opus=True)
    card = import_mls(tmp_path / "src", tmp_path / "out", languages=["pl"])
    assert list(card["languages"]) == ["pl"]
    with pytest.raises(InputError, match="unknown language code 'xx'"):
        import_mls(tmp_path / "src", tmp_path / "o2", languages=["xx"])


def _break(lang_dir: Path, split: str, line_no: int, new_line: str) -> Path:
    tr = lang_dir / split / "transcripts.txt"
    lines = tr.read_text().splitlines()
    lines[line_no - 1] = new_line
    tr.write_text("\n".join(lines) + "\n")
    return tr


def test_mls_no_tab_error_and_skip(tmp_path):
    d = make_mls_tree(tmp_path / "src", "italian")
    tr = _break(d, "train", 2, "101_7_000001 no tab here")
    with pytest.raises(InputError) as e:
        import_mls(tmp_path / "src", tmp_path / "out")
    assert str(tr) in str(e.value) and ":2" in str(e.value) and "tab" in str(e.value)
    card = import_mls(tmp_path / "src", tmp_path / "out", skip_bad=True)
    assert card["languages"]["it"]["train"]["utterances"] == len(MLS_TEXT["train"]) - 1
    assert card["languages"]["it"]["train"]["bad_items"] == 1 and card["bad_items_total"] == 1


def test_mls_missing_audio_and_wrong_rate(tmp_path):
    d = make_mls_tree(tmp_path / "src", "dutch")
    (d / "test/audio/301/7/301_7_000001.flac").unlink()
    with pytest.raises(InputError) as e:
        import_mls(tmp_path / "src", tmp_path / "out")
    assert str(d / "test/transcripts.txt") in str(e.value) and ":2" in str(e.value) and "missing audio" in str(e.value)
    write_audio(d / "test/audio/301/7/301_7_000001.flac", 0.5, 22050)
    with pytest.raises(InputError) as e:
        import_mls(tmp_path / "src", tmp_path / "out")
    assert "22050" in str(e.value) and "16000 Hz" in str(e.value) and ":2" in str(e.value)


def test_mls_unknown_folder(tmp_path):
    (tmp_path / "src" / "mls_klingon").mkdir(parents=True)
    with pytest.raises(InputError) as e:
        import_mls(tmp_path / "src", tmp_path / "out")
    assert "mls_klingon" in str(e.value)


def test_import_dir(tmp_path):
    audio, tr = make_audio_dir(tmp_path)
    card = import_dir(audio, {"en": tr}, tmp_path / "out", split="train")
    c = Corpus(tmp_path / "out")
    cuts = c.cuts("en", "train")
    assert len(cuts) == 6 and card["languages"]["en"]["train"]["speakers"] == 3
    assert cuts[0].supervisions[0].text.startswith("hello world number")
    assert cuts[0].load_audio().shape[1] == cuts[0].num_samples
    import_dir(audio, {"en": tr}, tmp_path / "out", split="test")
    assert Corpus(tmp_path / "out").splits("en") == ["train", "test"]
    card = import_dir(audio, {"en": tr}, tmp_path / "auto", split="auto")
    for spk in ("spk0", "spk1", "spk2"):
        split = auto_split(spk)
        assert card["languages"]["en"][split]["utterances"] >= 2


@pytest.mark.parametrize(
    "kind,needle",
    [
        ("no_tab", "without a tab"),
        ("empty", "empty transcript"),
        ("missing", "missing audio"),
        ("unreadable", "unreadable audio"),
        ("rate", "sample rate 8000"),
    ],
)
def test_import_dir_bad_input(tmp_path, kind, needle):
    audio, tr = make_audio_dir(tmp_path)
    lines = tr.read_text().splitlines()
    if kind == "no_tab":
        lines[2] = lines[2].replace("\t", " ")
    elif kind == "empty":
        lines[2] = lines[2].split("\t")[0] + "\t 42 !"
    elif kind == "missing":
        lines[2] = "ghost_utt\tsome words"
    elif kind == "unreadable":
        (audio / "spk2_utt002.flac").write_bytes(b"not audio at all")
    elif kind == "rate":
        write_audio(audio / "spk2_utt002.flac", 0.3, 8000)
    tr.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as e:
        import_dir(audio, {"en": tr}, tmp_path / "out")
    msg = str(e.value)
    assert needle in msg and str(tr) in msg and ":3" in msg and e.value.line == 3 and "expected" in msg
    card = import_dir(audio, {"en": tr}, tmp_path / "out", skip_bad=True)
    assert card["languages"]["en"]["train"]["utterances"] == 5 and card["bad_items_total"] == 1
    assert card["bad_items"][0]["line"] == 3


def test_import_dir_resample_flag(tmp_path):
    audio, tr = make_audio_dir(tmp_path, n=3, rate=22050)
    with pytest.raises(InputError, match="--resample"):
        import_dir(audio, {"en": tr}, tmp_path / "out")
    import_dir(audio, {"en": tr}, tmp_path / "out", resample=True)
    cut = Corpus(tmp_path / "out").cuts("en", "train")[0]
    assert cut.sampling_rate == 16000 and cut.load_audio().shape[1] == cut.num_samples


def test_import_dir_unknown_language(tmp_path):
    audio, tr = make_audio_dir(tmp_path, n=2)
    with pytest.raises(InputError, match="unknown language code 'zz'"):
        import_dir(audio, {"zz": tr}, tmp_path / "out")


def test_cli_import_dir(tmp_path, capsys):
    from asr_pathways.cli import main

    audio, tr = make_audio_dir(tmp_path, n=3)
    assert main(["corpus", "import-dir", "--audio-dir", str(audio), "--transcripts", f"en={tr}", "--out", str(tmp_path / "o")]) == 0
    assert "| en | train |" in capsys.readouterr().out
    assert main(["corpus", "import-dir", "--audio-dir", str(audio), "--transcripts", f"en{tr}", "--out", str(tmp_path / "o")]) == 2
