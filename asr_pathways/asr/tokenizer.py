"""One SentencePiece model for all languages, with id 0 reserved for the transducer blank.

SentencePiece ids are shifted by one: our id = SentencePiece id + 1, so ``encode`` never returns
0 and ``vocab_size`` (= pieces + 1) counts the blank. SentencePiece's own id 0 is its ``<unk>``
(our id 1); it appears only for characters never seen in training. Training uses the identity
normalisation (the text is already MLS-normalised), character coverage 1.0 and one thread, so
the model is deterministic and ``decode(encode(t)) == t`` for normalised text whose characters
occur in the training text.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Iterable, Sequence

BLANK_ID = 0


class Tokenizer:
    """SentencePiece wrapper with the blank at id 0 (see the module docstring)."""

    def __init__(self, model: str | Path | bytes) -> None:
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor()
        if isinstance(model, (bytes, bytearray)):
            self.sp.LoadFromSerializedProto(bytes(model))
            self.path = None
        else:
            self.path = Path(model)
            self.sp.Load(str(self.path))

    @property
    def vocab_size(self) -> int:
        """Number of ids including the blank (SentencePiece pieces + 1)."""
        return self.sp.get_piece_size() + 1

    def encode(self, text: str) -> list[int]:
        """Token ids (all ≥ 1) of ``text``."""
        return [i + 1 for i in self.sp.encode(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; blanks (0) and out-of-range ids are dropped."""
        n = self.sp.get_piece_size()
        return self.sp.decode([int(i) - 1 for i in ids if 0 < int(i) <= n])

    def id_to_piece(self, i: int) -> str:
        return "<blank>" if i == BLANK_ID else self.sp.id_to_piece(int(i) - 1)


def train_sentencepiece(texts: Iterable[str], vocab_size: int, model_type: str = "unigram") -> bytes:
    """Train a SentencePiece model with ``vocab_size - 1`` pieces (the blank is the extra id)."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([t for t in texts if t]),
        model_writer=buf,
        vocab_size=vocab_size - 1,
        model_type=model_type,
        character_coverage=1.0,
        normalization_rule_name="identity",
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return buf.getvalue()


def tokenizer_for_corpus(corpus_dir: str | Path, vocab_size: int = 256, model_type: str = "unigram") -> Tokenizer:
    """The tokenizer of a corpus: trained once on the training text of every language, cached.

    Cached as ``CORPUS/tokenizer/spm{V}.model`` with ``spm{V}.json`` recording a hash of the
    training text; a changed corpus retrains. Files are written atomically.
    """
    from ..data.corpus import Corpus
    from ..io import atomic_write_bytes, atomic_write_json

    corpus = Corpus(corpus_dir)
    texts = corpus.texts("train")
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    stem = f"spm{vocab_size}" if model_type == "unigram" else f"spm{vocab_size}-{model_type}"
    model_path = Path(corpus_dir) / "tokenizer" / f"{stem}.model"
    meta_path = model_path.with_suffix(".json")
    meta = {"vocab_size": vocab_size, "model_type": model_type, "train_text_sha256": digest, "sentences": len(texts), "blank_id": BLANK_ID}
    if model_path.is_file() and meta_path.is_file():
        try:
            if json.loads(meta_path.read_text()) == meta:
                return Tokenizer(model_path)
        except json.JSONDecodeError:
            pass
    data = train_sentencepiece(texts, vocab_size, model_type)
    atomic_write_bytes(model_path, data)
    atomic_write_json(meta_path, meta)
    return Tokenizer(model_path)
