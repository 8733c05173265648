"""Open any model folder for decoding: a run, a monolingual prune run, an export, an ONNX export.

``open_model(path)`` accepts

- a **run folder** (``asr-pathways train`` or a multilingual ``prune`` run: ``checkpoint.safetensors``
  + ``config.yaml`` + ``tokenizer.model``): its languages are its pathways (per-language masks), or
  its training languages for a dense run or a LAP run (one ``shared`` mask);
- a **monolingual prune run** (``imp``/``lth``/``adaptive``: ``lang/{lang}/`` sub-runs) or one of
  its **language sub-runs** (``RUN/lang/fr``);
- an **export folder** (``asr-pathways export``: ``model.json`` + ``weights.safetensors``, float32,
  float16 or bfloat16): its languages are its pathways, or the languages its model card names;
- an **ONNX export** (the ``onnx/`` folder that ``export --onnx`` writes, or its export folder with
  ``engine="onnx"``).

``source.decoder(language)`` gives a :class:`Decoder` for one language. A language the model has no
pathway for is an :class:`~asr_pathways.errors.InputError` that lists the model's languages: a
pruned model never silently decodes a language with its dense weights.

Engines: ``torch`` decodes θ ⊙ m_l with the model's own modules (what training-time evaluation
computes); ``sparse`` runs every pruned matrix through the block-sparse kernels with the lean
batch-1 loop (:mod:`asr_pathways.export.fast`; same transcripts to float rounding); ``onnx`` runs
the ONNX graphs in onnxruntime. ``auto``: sparse for an export on the CPU, onnx for an ONNX
folder, torch otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .errors import InputError

__all__ = ["ENGINES", "Decoder", "ModelSource", "open_model"]

ENGINES = ("auto", "torch", "sparse", "onnx")
SHARED, DENSE = "shared", "dense"


@dataclass
class Decoder:
    """Decodes one language: ``batch(features (B, T, 80), lens)`` and ``one(features (T, 80))``."""

    language: str
    engine: str
    batch_fn: Callable[[torch.Tensor, torch.Tensor, str, int], list[list[int]]]
    one_fn: Callable[[torch.Tensor, str, int], list[int]] | None = None
    model: nn.Module | None = None

    def batch(self, features: torch.Tensor, lens: torch.Tensor, decoding: str = "greedy", beam: int = 4) -> list[list[int]]:
        return self.batch_fn(features, lens, decoding, beam)

    def one(self, features: torch.Tensor, decoding: str = "greedy", beam: int = 4) -> list[int]:
        if self.one_fn is not None:
            return self.one_fn(features, decoding, beam)
        return self.batch_fn(features[None], torch.tensor([features.shape[0]]), decoding, beam)[0]


def _torch_decoder(language: str, model: nn.Module, engine: str, device: torch.device) -> Decoder:
    from .asr.beam_search import decode_batch

    def batch(features: torch.Tensor, lens: torch.Tensor, decoding: str, beam: int) -> list[list[int]]:
        return decode_batch(model, features.to(device), lens.to(device), decoding=decoding, beam=beam)

    one = None
    if engine == "sparse":
        from .export.fast import decode_one

        one = lambda f, decoding, beam: decode_one(model, f, decoding, beam)  # noqa: E731
    return Decoder(language, engine, batch, one, model)


@dataclass
class ModelSource:
    """An opened model folder (see module doc). ``languages`` None: any language (one model for all)."""

    path: Path
    kind: str  # run | monolingual | export | onnx
    tokenizer: Any
    languages: list[str] | None
    corpus: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _opened: dict[str, Any] = field(default_factory=dict, repr=False)
    _cache: dict[tuple[str, str], Decoder] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------------------- languages
    def check_language(self, language: str) -> None:
        """Raise an InputError naming the model's languages when ``language`` is not one of them."""
        if self.languages is not None and language not in self.languages:
            raise InputError(
                f"this model has no pathway for language {language!r}", path=self.path, field="--language",
                expected="one of " + ", ".join(self.languages),
                hint="a pruned model decodes a language only through its own pathway",
            )

    def resolve_engine(self, engine: str) -> str:
        if engine not in ENGINES:
            raise InputError(f"unknown engine {engine!r}", field="--engine", expected=", ".join(ENGINES))
        if self.kind == "onnx":
            if engine not in ("auto", "onnx"):
                raise InputError(f"an ONNX folder decodes with onnxruntime only, not {engine!r}", path=self.path, field="--engine")
            return "onnx"
        if engine == "onnx":
            if self.kind != "export" or not (self.path / "onnx" / "encoder.onnx").is_file():
                raise InputError("no ONNX graphs here", path=self.path, field="--engine",
                                 expected="an export made with `asr-pathways export ... --onnx`")
            return "onnx"
        if engine == "auto":
            return "sparse" if self.kind == "export" and self.device.type == "cpu" else "torch"
        return engine

    # ---------------------------------------------------------------------------- decoders
    def decoder(self, language: str, engine: str = "auto") -> Decoder:
        """A decoder for ``language`` (checked against :attr:`languages`)."""
        self.check_language(language)
        engine = self.resolve_engine(engine)
        key = (language, engine)
        if key not in self._cache:
            self._cache.clear()  # one language at a time: keeps memory at one model
            self._cache[key] = self._build(language, engine)
        return self._cache[key]

    def _build(self, language: str, engine: str) -> Decoder:
        if self.kind == "monolingual":
            sub = open_model(self.path / "lang" / language, self.device)
            return sub.decoder(language, engine)
        if engine == "onnx":
            from .export.onnx_decode import onnx_transducer

            onnx = onnx_transducer(self.path if self.kind == "onnx" else self.path / "onnx", self.meta)
            return Decoder(language, "onnx", lambda f, l, decoding, beam: onnx.decode(f, l, decoding, beam))
        model, mask = self._pathway_model(language)
        if engine == "sparse":
            from .export.fast import sparse_decoding_model

            model = sparse_decoding_model(model, mask, inplace=True)
        return _torch_decoder(language, model.to(self.device), engine, self.device)

    def _pathway_model(self, language: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        """A fresh model holding θ ⊙ m for ``language``, and m (empty for a dense model)."""
        if self.kind == "export":
            cm = self._opened["compact"]
            names = cm.pathways
            pathway = language if language in names else names[0]
            return cm.model(pathway), cm.masks(pathway)
        from .export.compact import masked_state_dict
        from .runs import build_model

        run = self._opened["run"]
        masks = run.masks
        mask = masks.get(language) if language in masks else masks.get(SHARED, {})
        model = build_model(run.config.model, run.tokenizer.vocab_size)
        model.load_state_dict(masked_state_dict(run.model, mask) if mask else run.model.state_dict())
        return model.eval(), dict(mask)


def _run_languages(masks: dict[str, Any], trained: list[str]) -> list[str]:
    if not masks:
        return list(trained)
    own = [name for name in masks if name != SHARED]
    return own + [l for l in trained if l not in own] if SHARED in masks else own


def _read_source_corpus(meta: dict[str, Any]) -> str | None:
    card = meta.get("card") or {}
    if card.get("corpus"):
        return str(card["corpus"])
    source = meta.get("source_run")
    if source and (Path(source) / "config.yaml").is_file():
        from .runs import read_run_config

        return read_run_config(Path(source)).corpus
    return None


def _export_languages(meta: dict[str, Any]) -> list[str] | None:
    card = meta.get("card") or {}
    if card.get("languages"):
        return list(card["languages"])
    own = [p for p in meta.get("pathways", []) if p not in (SHARED, DENSE)]
    return own or None


def open_model(path: str | Path, device: str | torch.device = "cpu") -> ModelSource:
    """Open a run, monolingual prune run, language sub-run, export or ONNX folder (see module doc)."""
    from .checkpoint import CHECKPOINT_NAME

    path = Path(path)
    device = torch.device(device)
    if not path.exists():
        raise InputError("model folder not found", path=path, expected="a run, export or ONNX folder")
    if path.is_file():
        raise InputError("expected a folder, got a file", path=path, expected="a run, export or ONNX folder")
    if (path / "encoder.onnx").is_file():
        from .asr.tokenizer import Tokenizer
        from .io import read_json

        parent = path.parent
        if not (parent / "model.json").is_file():
            raise InputError("ONNX graphs without their export's model.json", path=parent / "model.json",
                             expected="the onnx/ folder inside an `asr-pathways export --onnx` folder")
        meta = read_json(parent / "model.json")
        tok = parent / (meta.get("tokenizer") or "tokenizer.model")
        if not tok.is_file():
            raise InputError("tokenizer not found", path=tok, expected="tokenizer.model beside model.json")
        return ModelSource(path, "onnx", Tokenizer(tok), _export_languages(meta), _read_source_corpus(meta), meta, device)
    if (path / "model.json").is_file() and (path / "weights.safetensors").is_file():
        from .asr.tokenizer import Tokenizer
        from .export.compact import CompactModel

        cm = CompactModel.load(path)
        if cm.tokenizer_path is None or not cm.tokenizer_path.is_file():
            raise InputError("the export has no tokenizer", path=path, expected="tokenizer.model (export from a run folder)")
        src = ModelSource(path, "export", Tokenizer(cm.tokenizer_path), _export_languages(cm.meta), _read_source_corpus(cm.meta), cm.meta, device)
        src._opened["compact"] = cm
        return src
    if (path / CHECKPOINT_NAME).is_file():
        from .runs import load_run

        run = load_run(path)
        src = ModelSource(path, "run", run.tokenizer, _run_languages(run.masks, run.config.languages), run.config.corpus,
                          {"config": run.config, "masks": sorted(run.masks)}, device)
        src._opened["run"] = run
        return src
    subs = sorted(p.name for p in (path / "lang").glob("*") if (p / CHECKPOINT_NAME).is_file()) if (path / "lang").is_dir() else []
    if subs:
        from .runs import load_tokenizer, read_run_config

        first = path / "lang" / subs[0]
        return ModelSource(path, "monolingual", load_tokenizer(first), subs, read_run_config(first).corpus, {}, device)
    raise InputError(
        "not a model folder", path=path,
        expected=f"{CHECKPOINT_NAME} (a run), lang/{{lang}}/{CHECKPOINT_NAME} (a monolingual prune run), "
        "model.json + weights.safetensors (an export) or encoder.onnx (an ONNX export)",
    )
