"""The RNN-T model family: Conv2d subsampling, Conformer encoder, LSTM predictor, joiner, CTC head.

Parameter names (what the mask engine selects from):

- ``subsampling.conv1/conv2/proj``: the convolutional front-end (not meant to be pruned).
- ``encoder.layers.N.{ff1,ff2}.linear{1,2}.weight``, ``encoder.layers.N.self_attn.in_proj_weight``,
  ``encoder.layers.N.self_attn.out_proj.weight``, ``encoder.layers.N.conv.pointwise{1,2}.weight``:
  the encoder's weight matrices (``...depthwise.weight`` is a 3-D conv kernel; norms and biases 1-D).
- ``predictor.embedding.weight`` (token embedding, not meant to be pruned),
  ``predictor.lstm.weight_ih_lK`` / ``weight_hh_lK``.
- ``joiner.enc_proj.weight``, ``joiner.pred_proj.weight``, ``joiner.output.weight``.
- ``ctc_head.weight`` (only when the model has a CTC head).
- ``simple_am_proj.weight`` / ``simple_lm_proj.weight`` (only with ``rnnt_loss: pruned``): the
  trivial joiner of the pruned RNN-T loss, used in training only (never by decoding); top-level,
  outside encoder/predictor/joiner, so that :meth:`RNNTModel.weight_matrix_names` leaves them out.

:meth:`RNNTModel.weight_matrix_names` lists the 2-D Linear/LSTM/attention weights of encoder,
predictor and joiner: the default candidates for pruning.

>>> cfg = ModelConfig.from_dict(load_preset("tiny")["model"])
>>> model = RNNTModel(cfg, vocab_size=16)
>>> out = model(torch.randn(2, 40, 80), torch.tensor([40, 25]),
...             torch.tensor([[3, 4, 5], [6, 0, 0]]), torch.tensor([3, 1]))
>>> sorted(out), out["loss"].shape
(['ctc', 'loss', 'rnnt'], torch.Size([]))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from asr_pathways.asr.conformer import ConformerEncoder, Conv2dSubsampling, lengths_to_padding_mask
from asr_pathways.asr.loss import ctc_loss, rnnt_loss
from asr_pathways.asr.pruned_loss import pruned_loss_scales, pruned_rnnt_losses
from asr_pathways.errors import InputError

__all__ = [
    "ModelConfig",
    "load_preset",
    "available_presets",
    "RNNTModel",
    "Predictor",
    "Joiner",
    "normalize_features",
    "count_parameters",
]

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
LOSS_KINDS = ("rnnt", "ctc")
RNNT_LOSS_KINDS = ("full", "pruned")


def available_presets() -> list[str]:
    """Names of the YAML presets shipped in ``asr_pathways/configs``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a preset by name (``tiny``, ``small``, ``base``) or a YAML file path; all its sections.

    >>> sorted(load_preset("tiny"))
    ['model', 'tokenizer', 'train']
    """
    text = str(name_or_path)
    looks_like_path = text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text
    path = Path(text) if looks_like_path else PRESET_DIR / f"{text}.yaml"
    if not path.is_file():
        if looks_like_path:
            raise InputError("preset file not found", path=path, expected="a YAML file")
        raise InputError(
            f"unknown preset {text!r}",
            expected="one of " + ", ".join(available_presets()),
            hint="or pass the path of a YAML file",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        raise InputError(f"invalid YAML: {error}", path=path, line=None if line is None else line + 1) from error
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError("a preset must map section names to mappings", path=path, expected="model:, tokenizer:, train:")
    return data


@dataclass
class ModelConfig:
    """The ``model:`` section of a preset. Defaults are the ``small`` preset."""

    feature_dim: int = 80
    subsampling_channels: int = 64
    # 4: 40 ms encoder frames; 8: pairs of them stacked, 80 ms frames (half the encoder and joiner work)
    subsampling_factor: int = 4
    d_model: int = 144
    num_layers: int = 6
    num_heads: int = 4
    ff_mult: int = 4
    conv_kernel: int = 15
    dropout: float = 0.1
    predictor_dim: int = 256
    predictor_layers: int = 1
    joiner_dim: int = 256
    scale_input: bool = False  # multiply the subsampled input by sqrt(d_model) before adding positions
    ctc_weight: float = 0.3  # auxiliary CTC loss weight: loss = rnnt + ctc_weight * ctc
    loss: str = "rnnt"  # "rnnt" or "ctc" (CTC-only: no predictor or joiner)
    # Transducer loss: "full" (joiner on every (frame, label position): (B, T, U+1, V)) or "pruned"
    # (k2's pruned RNN-T: a simple trivial-joiner loss chooses prune_range positions per frame,
    # the joiner runs on those only; see asr/pruned_loss.py). Ignored when loss is "ctc".
    rnnt_loss: str = "full"
    prune_range: int = 5  # label positions per frame kept by the pruned loss (>= 2)
    simple_loss_scale: float = 0.5  # pruned: rnnt = simple_loss_scale * simple + pruned after warm-up

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            expected = type(field.default)
            ok = isinstance(value, (int, float)) if expected is float else isinstance(value, expected)
            if not ok or (expected is not bool and isinstance(value, bool)):
                raise InputError(
                    f"{field.name} has the wrong type ({type(value).__name__})",
                    field=f"model.{field.name}",
                    expected=expected.__name__,
                )
        if self.loss not in LOSS_KINDS:
            raise InputError(f"unknown loss {self.loss!r}", field="model.loss", expected=" or ".join(LOSS_KINDS))
        if self.rnnt_loss not in RNNT_LOSS_KINDS:
            raise InputError(
                f"unknown rnnt_loss {self.rnnt_loss!r}", field="model.rnnt_loss", expected=" or ".join(RNNT_LOSS_KINDS)
            )
        if self.subsampling_factor not in Conv2dSubsampling.FACTORS:
            raise InputError(
                f"unknown subsampling_factor {self.subsampling_factor}",
                field="model.subsampling_factor",
                expected=" or ".join(map(str, Conv2dSubsampling.FACTORS)),
            )
        if self.prune_range < 2:
            raise InputError(
                f"prune_range must be >= 2, got {self.prune_range}",
                field="model.prune_range",
                expected="an integer >= 2",
            )
        if not 0 <= self.simple_loss_scale <= 1:
            raise InputError(
                f"simple_loss_scale must lie in [0, 1], got {self.simple_loss_scale}",
                field="model.simple_loss_scale",
                expected="a number in [0, 1]",
            )
        if self.ctc_weight < 0:
            raise InputError("ctc_weight must be >= 0", field="model.ctc_weight", expected="a number >= 0")
        if self.d_model % self.num_heads != 0:
            raise InputError(
                f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}", field="model.num_heads"
            )
        if self.conv_kernel % 2 != 1:
            raise InputError(f"conv_kernel must be odd, got {self.conv_kernel}", field="model.conv_kernel")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a mapping; unknown keys are an error that lists the known ones.

        >>> ModelConfig.from_dict({"d_model": 64, "num_heads": 2}).d_model
        64
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"unknown model field(s): {', '.join(unknown)}",
                field="model",
                expected="fields among " + ", ".join(sorted(known)),
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def uses_transducer(self) -> bool:
        return self.loss == "rnnt"

    @property
    def uses_pruned_rnnt(self) -> bool:
        return self.uses_transducer and self.rnnt_loss == "pruned"

    @property
    def uses_ctc(self) -> bool:
        return self.loss == "ctc" or self.ctc_weight > 0


def normalize_features(features: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-utterance, per-dimension mean/variance normalisation over valid frames; padding -> 0.

    >>> x = normalize_features(torch.randn(1, 50, 3) * 4 + 2, torch.tensor([50]))
    >>> bool(x.mean(1).abs().max() < 1e-4), bool((x.std(1, unbiased=False) - 1).abs().max() < 1e-3)
    (True, True)
    """
    features = features.float()
    valid = (~lengths_to_padding_mask(lengths, features.shape[1]))[..., None].to(features.dtype)
    count = lengths.clamp(min=1).to(features.dtype)[:, None, None]
    mean = (features * valid).sum(1, keepdim=True) / count
    centred = (features - mean) * valid
    var = centred.pow(2).sum(1, keepdim=True) / count
    return centred * torch.rsqrt(var + eps)


class Predictor(nn.Module):
    """Token embedding (blank id 0 is the start symbol) -> LSTM -> Dropout.

    ``forward(tokens (B, U), state=None) -> (out (B, U, predictor_dim), (h, c))``.
    """

    def __init__(self, vocab_size: int, dim: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        self.lstm = nn.LSTM(dim, dim, num_layers=num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        out, state = self.lstm(self.dropout(self.embedding(tokens)), state)
        return self.dropout(out), state


class Joiner(nn.Module):
    """output(tanh(enc_proj(enc) + pred_proj(pred))).

    ``forward`` takes already projected inputs that broadcast against each other, so decoding can
    project each encoder frame once: ``joiner(joiner.enc_proj(enc)[:, :, None], joiner.pred_proj(pred)[:, None])``.
    """

    def __init__(self, enc_dim: int, pred_dim: int, joiner_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.enc_proj = nn.Linear(enc_dim, joiner_dim)
        self.pred_proj = nn.Linear(pred_dim, joiner_dim)
        self.output = nn.Linear(joiner_dim, vocab_size)

    def forward(self, enc_projected: torch.Tensor, pred_projected: torch.Tensor) -> torch.Tensor:
        return self.output(torch.tanh(enc_projected + pred_projected))


class RNNTModel(nn.Module):
    """Conformer transducer with an optional CTC head; ``vocab_size`` includes blank (id 0).

    ``forward(features (B, T, F), feature_lens, tokens (B, U) 0-padded, token_lens)`` returns
    ``{"loss", "rnnt", "ctc"}``, each a scalar: the mean over the batch of per-utterance negative
    log-likelihoods; ``loss = rnnt + ctc_weight * ctc`` (``loss = ctc`` when ``cfg.loss == "ctc"``).
    A part that is not computed is reported as a constant 0. The losses are float32 even under
    ``torch.autocast(..., dtype=torch.bfloat16)``.

    With ``cfg.rnnt_loss == "pruned"`` the dict also has ``"simple"`` and ``"pruned"`` (batch means
    of the two per-utterance NLLs of asr/pruned_loss.py), and ``rnnt`` is their mix
    ``simple_scale * simple + pruned_scale * pruned`` from :func:`pruned_loss_scales`:
    ``forward(..., warmup=w)`` with w the fraction of the warm-up done (1.0, the default: after it,
    ``cfg.simple_loss_scale * simple + pruned``; 0.0: ``simple + 0.1 * pruned``). ``rnnt`` is then
    not an NLL: compare models on ``pruned`` (or the full loss) instead.
    """

    blank_id = 0

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        if vocab_size < 2:
            raise InputError(f"vocab_size must be >= 2 (blank + one token), got {vocab_size}", field="vocab_size")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.subsampling = Conv2dSubsampling(
            cfg.feature_dim, cfg.subsampling_channels, cfg.d_model, factor=cfg.subsampling_factor
        )
        self.encoder = ConformerEncoder(
            cfg.d_model, cfg.num_layers, cfg.num_heads, cfg.ff_mult, cfg.conv_kernel, cfg.dropout, cfg.scale_input
        )
        self.predictor: Predictor | None = None
        self.joiner: Joiner | None = None
        if cfg.uses_transducer:
            self.predictor = Predictor(vocab_size, cfg.predictor_dim, cfg.predictor_layers, cfg.dropout)
            self.joiner = Joiner(cfg.d_model, cfg.predictor_dim, cfg.joiner_dim, vocab_size)
        self.ctc_head: nn.Linear | None = nn.Linear(cfg.d_model, vocab_size) if cfg.uses_ctc else None
        self.simple_am_proj: nn.Linear | None = None
        self.simple_lm_proj: nn.Linear | None = None
        if cfg.uses_pruned_rnnt:
            self.simple_am_proj = nn.Linear(cfg.d_model, vocab_size)
            self.simple_lm_proj = nn.Linear(cfg.predictor_dim, vocab_size)

    def encode(self, features: torch.Tensor, feature_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw log-mel (B, T, F) -> encoder output (B, ceil(T/4), d_model) and its lengths."""
        feature_lens = feature_lens.to(features.device)
        x = normalize_features(features, feature_lens)
        x, enc_lens = self.subsampling(x, feature_lens)
        return self.encoder(x, enc_lens), enc_lens

    def predict(self, tokens: torch.Tensor) -> torch.Tensor:
        """Predictor outputs (B, U+1, predictor_dim) for the label prefixes; its input is [blank] + tokens."""
        assert self.predictor is not None, "this model has no transducer"
        start = tokens.new_full((tokens.shape[0], 1), self.blank_id)
        pred, _ = self.predictor(torch.cat([start, tokens], dim=1))
        return pred

    def joint_logits(self, enc: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Joiner logits (B, T, U+1, V) for every (frame, label prefix) pair; predictor input is [blank] + tokens."""
        assert self.predictor is not None and self.joiner is not None, "this model has no transducer"
        pred = self.predict(tokens)
        return self.joiner(self.joiner.enc_proj(enc)[:, :, None], self.joiner.pred_proj(pred)[:, None])

    def pruned_transducer_losses(
        self, enc: torch.Tensor, enc_lens: torch.Tensor, tokens: torch.Tensor, token_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch means of the simple and the pruned transducer NLLs (see asr/pruned_loss.py)."""
        assert self.joiner is not None and self.simple_am_proj is not None and self.simple_lm_proj is not None
        pred = self.predict(tokens)
        losses = pruned_rnnt_losses(
            self.simple_am_proj(enc),
            self.simple_lm_proj(pred),
            self.joiner.enc_proj(enc),
            self.joiner.pred_proj(pred),
            lambda enc_part, pred_part: self.joiner(enc_part, pred_part).float(),
            tokens,
            enc_lens,
            token_lens,
            prune_range=self.cfg.prune_range,
            blank=self.blank_id,
        )
        return losses.simple.mean(), losses.pruned.mean()

    def forward(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        tokens: torch.Tensor,
        token_lens: torch.Tensor,
        warmup: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        enc, enc_lens = self.encode(features, feature_lens)
        tokens = tokens.to(enc.device).long()
        token_lens = token_lens.to(enc.device)
        zero = torch.zeros((), device=enc.device, dtype=torch.float32)
        rnnt = ctc = zero
        extra: dict[str, torch.Tensor] = {}
        if self.cfg.uses_transducer:
            max_tokens = int(token_lens.max()) if token_lens.numel() else 0
            tokens = tokens[:, :max_tokens]  # the joiner tensor is (B, T, U+1, V): keep U tight
            if self.cfg.uses_pruned_rnnt:
                simple, pruned = self.pruned_transducer_losses(enc, enc_lens, tokens, token_lens)
                simple_scale, pruned_scale = pruned_loss_scales(warmup, self.cfg.simple_loss_scale)
                rnnt = simple_scale * simple + pruned_scale * pruned
                extra = {"simple": simple, "pruned": pruned}
            else:
                logits = self.joint_logits(enc, tokens).float()
                rnnt = rnnt_loss(logits, tokens, enc_lens, token_lens, blank=self.blank_id, reduction="mean")
        if self.ctc_head is not None:
            ctc = ctc_loss(self.ctc_head(enc).float(), tokens, enc_lens, token_lens, blank=self.blank_id)
        if self.cfg.loss == "ctc":
            loss = ctc
        else:
            loss = rnnt + self.cfg.ctc_weight * ctc if self.ctc_head is not None else rnnt
        return {"loss": loss, "rnnt": rnnt, "ctc": ctc, **extra}

    def weight_matrix_names(self) -> list[str]:
        """2-D weight matrices of encoder, predictor and joiner (Linear, LSTM, attention projections):
        the default pruning candidates. Excludes biases, norms, convolutions, the token embedding,
        the subsampling front-end and the CTC head."""
        return [
            name
            for name, param in self.named_parameters()
            if param.dim() == 2
            and name.split(".")[0] in ("encoder", "predictor", "joiner")
            and not name.startswith("predictor.embedding")
            and "weight" in name.rsplit(".", 1)[-1]
        ]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
