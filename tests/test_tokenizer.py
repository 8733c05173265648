"""SentencePiece tokenizer: blank id 0 reserved, exact round trip, deterministic cached training."""

from pathlib import Path

import pytest

from asr_pathways.asr.tokenizer import Tokenizer, tokenizer_for_corpus, train_sentencepiece
from asr_pathways.data.text import SentenceGenerator
from asr_pathways.data.corpus import write_split


def _texts():
    out = []
    for lang in ("en", "fr", "pl"):
        g = SentenceGenerator(lang)
        out += [g.sentence(f"0|{lang}|train|{i}|0") for i in range(400)]
    return out


def test_round_trip_and_blank():
    texts = _texts()
    model = train_sentencepiece(texts, 200)
    assert model == train_sentencepiece(texts, 200)  # deterministic
    tok = Tokenizer(model)
    assert tok.vocab_size == 200
    for t in texts[::7]:
        ids = tok.encode(t)
        assert ids and min(ids) >= 1 and max(ids) < tok.vocab_size
        assert tok.decode(ids) == t
        assert tok.decode([0] + ids + [0]) == t  # blanks are ignored
    assert tok.id_to_piece(0) == "<blank>"


def test_tokenizer_for_corpus_caches(tmp_path):
    from lhotse import SupervisionSegment

    texts = _texts()
    for lang, chunk in (("en", texts[:400]), ("fr", texts[400:800])):
        sups = [SupervisionSegment(id=f"{lang}{i}", recording_id=f"{lang}{i}", start=0, duration=1.0, text=t, language=lang) for i, t in enumerate(chunk)]
        write_split(tmp_path, lang, "train", [], sups, [])
    tok = tokenizer_for_corpus(tmp_path, 128)
    path = tmp_path / "tokenizer" / "spm128.model"
    assert path.is_file() and tok.vocab_size == 128
    mtime = path.stat().st_mtime_ns
    tok2 = tokenizer_for_corpus(tmp_path, 128)
    assert path.stat().st_mtime_ns == mtime and tok2.encode(texts[3]) == tok.encode(texts[3])
    assert not list((tmp_path / "tokenizer").glob(".*"))
