"""Benchmark profiles: the sizes of one benchmark run, read from ``bench/profiles/NAME.yaml``.

The profiles ship with the package (like the model presets in ``configs/``): ``tiny`` (CI smoke
test), ``small`` (a 2-core CPU), ``gpu`` (one GPU, the targeted subset in at most 6 hours), ``base``
(one GPU, every table at full size) and ``demo`` (``asr-pathways demo``). A YAML
file names only what differs from the defaults of :class:`Profile`.

>>> pr = load_profile("tiny")
>>> pr.name, pr.T, pr.languages
('tiny', 2, ('en', 'fr', 'it', 'nl'))
>>> pr.method_key("adapt", "imp", pr.mid), pr.percent(pr.target)
('adapt-imp50', '70%')
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..asr.searches import DECODINGS
from ..errors import InputError
from ..train_config import LANGUAGE_LOSS

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
BENCH_PROFILES = ("tiny", "small", "gpu", "base")  # what `asr-pathways bench --profile` offers (demo: `asr-pathways demo`)
PARTS = ("table1", "table2", "table3", "ablations", "table2_8lang")
DEMO_PARTS = ("demo_mono", "demo_multi")


@dataclass(frozen=True)
class EightLanguages:
    """The 8-language Table 2 (beyond the paper): its own corpus and dense model."""

    languages: tuple[str, ...] = ("en", "fr", "it", "nl", "de", "es", "pt", "pl")
    hours: str = "1"
    test_utts: int = 500
    dev_utts: int = 50
    dense_steps: int = 1500
    corpus_dir: str | None = None  # None: OUT/corpus8
    seeds: tuple[int, ...] | None = None  # None: the profile's seeds
    eval_utts: int | None = None  # None: the profile's eval_utts


@dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark run. ``None`` paths are placed under the benchmark's ``--out``."""

    name: str
    preset: str
    languages: tuple[str, ...] = ("en", "fr", "it", "nl")
    hours: str = "en=8,fr=4,nl=4,it=1"
    lexicon_size: int | None = None  # content words of the synthetic corpus (None: `corpus synth`'s default)
    test_utts: int = 500
    dev_utts: int = 250
    corpus_dir: str | None = None
    dense_dir: str | None = None
    dense_steps: int = 3000
    max_duration: float | None = None  # batch seconds of audio (None: the preset's / the dense run's)
    phase_max_duration: float | None = None  # seconds per language batch of the pruning phases and dense controls
    # (prune --max-duration; None: max_duration, else the dense run's batch)
    T: int = 10  # steps per pruning round
    n: int = 5  # adaptation step within a round
    p: float = 0.25  # prune step (absolute)
    target: float = 0.7
    mid: float = 0.5
    block: str = "8x1"
    language_loss: str = "equal"  # multilingual phases and the multilingual dense control: prune/train --language-loss
    seeds: tuple[int, ...] = (0, 1, 2)  # the headline comparisons' seeds
    secondary_seeds: tuple[int, ...] | None = None  # LTH-initialised adaptive, runs from the target, --scores shared,
    # the per-language sparsity curve (None: every seed)
    literal_seeds: tuple[int, ...] | None = None  # the --scores finetune rows (Dynamic from the middle level, with twins;
    # None: the secondary seeds)
    mono_languages: tuple[str, ...] | None = None  # languages of the monolingual claim (None: all)
    union_sparsity: float | None = None  # per-language sparsity of the union-matched ASR Pathways (None: none)
    eval_utts: int | None = 500  # test utterances per language (first N; the same for every method)
    decoding: str = "greedy"  # search of every evaluation: greedy, beam or modified_beam (asr/searches.py)
    beam: int = 4  # hypotheses kept by a beam search
    ablation_language: str = "fr"
    ablation_seeds: tuple[int, ...] | None = (0,)  # None: every seed
    ablation_eval_utts: int | None = 250
    parts: tuple[str, ...] = ("table1", "table2", "table3", "ablations")
    eight: EightLanguages | None = None
    device: str = "cpu"
    # planning constants (seconds), used only by the plan's arithmetic
    step_seconds: float = 0.5  # one monolingual batch, forward + backward + optimizer share
    eval_seconds_per_utt: float = 0.05
    overhead_seconds: float = 8.0  # per run: loading corpus manifests, model, checkpoints
    budget_minutes: float | None = None
    threads: int | None = None  # torch threads while the benchmark runs (None: leave as is)
    note: str = ""

    @staticmethod
    def percent(sparsity: float) -> str:
        """``0.7`` -> ``"70%"`` (how levels appear in labels)."""
        return f"{round(100 * sparsity)}%"

    @staticmethod
    def method_key(kind: str, source: str, sparsity: float) -> str:
        """The key of a run that starts from ``source``'s masks at ``sparsity``: ``adapt-imp50``, ``dyn-lap70``."""
        return f"{kind}-{source}{round(100 * sparsity)}"


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _build(cls: type, d: dict[str, Any], path: Path) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise InputError(f"unknown keys {unknown}", path=path, expected=f"some of {sorted(known)}")
    return cls(**{k: _tuple(v) for k, v in d.items()})


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``tiny``, ``small``, ``base``, ``demo``) or a YAML file of one."""
    import yaml

    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
        raise InputError(f"unknown benchmark profile {str(name_or_path)!r}", field="--profile", expected=", ".join(names))
    d = yaml.safe_load(path.read_text()) or {}
    if isinstance(d.get("eight"), dict):
        d["eight"] = _build(EightLanguages, d["eight"], path)
    pr = _build(Profile, d, path)
    if pr.language_loss not in LANGUAGE_LOSS:
        raise InputError(f"unknown language_loss {pr.language_loss!r}", path=path, field="language_loss", expected=" or ".join(LANGUAGE_LOSS))
    for key in ("max_duration", "phase_max_duration"):
        if getattr(pr, key) is not None and not getattr(pr, key) > 0:
            raise InputError(f"{key} is {getattr(pr, key)!r}", path=path, field=key, expected="seconds of audio per batch, above 0 (or leave it out)")
    if pr.decoding not in DECODINGS:
        raise InputError(f"unknown decoding {pr.decoding!r}", path=path, field="decoding", expected=" or ".join(DECODINGS))
    if pr.beam < 1:
        raise InputError(f"beam is {pr.beam!r}", path=path, field="beam", expected="a whole number >= 1")
    bad = [x for x in pr.parts if x not in PARTS + DEMO_PARTS]
    if bad:
        raise InputError(f"unknown part(s) {bad}", path=path, field="parts", expected=", ".join(PARTS + DEMO_PARTS))
    return pr
