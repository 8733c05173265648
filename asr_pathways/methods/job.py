"""One ``asr-pathways prune`` run: options resolved and checked, inputs loaded, the run folder opened;
then its phases, their evaluation, and the run's tables (masks, summary, WER, cost).

Every check comes before the first write: a command refused by a check leaves nothing behind.
The folder's identity (:func:`asr_pathways.runs.open_run_folder`) is recorded right before the
first file is written; running the same command again resumes the run, another command on the
same folder is refused unless ``--restart``.

Under ``torchrun`` (DDP) every rank trains, masks are broadcast from rank 0 at every event, and
rank 0 alone writes the files and, once every phase is trained, evaluates.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from .config import PruneConfig
from .cost import write_cost
from .phase import Phase, RunContext, SourceRun, StopRequested
from .records import load_level_masks, save_final, write_summary
from .schedule import Schedule

__all__ = ["PruneJob", "StopRequested"]


class PruneJob:
    """The run folder of one prune command, and what its recipe needs besides its own loop."""

    def __init__(self, cfg: PruneConfig, restart: bool = False) -> None:
        from ..data.corpus import Corpus
        from ..runs import open_run_folder
        from ..runtime import init_distributed, pick_device

        device = pick_device(cfg.device)
        dist = init_distributed(device)  # torchrun: DDP training, rank 0 writes every file
        self._sources: dict[str, SourceRun] = {}
        first = self._load_source(cfg, cfg.languages[0] if cfg.languages else None)
        self.cfg = cfg = cfg.resolved(list(first.config.languages))  # a checked copy; the caller's cfg is not changed
        corpus = Corpus(cfg.corpus or first.config.corpus)
        unknown = [l for l in cfg.languages if l not in corpus.languages]
        if unknown:
            raise InputError(f"languages {unknown} are not in the corpus", path=getattr(corpus, "path", None),
                             field="--languages", expected=f"some of {corpus.languages}")
        self.out = Path(cfg.out)
        legacy = None
        if (self.out / "prune.json").is_file():  # a run folder written before run.json existed
            legacy = json.loads((self.out / "prune.json").read_text()).get("defining")
        self.folder = open_run_folder(self.out, cfg.defining(), kind="prune", restart=restart or cfg.restart, dist=dist,
                                      legacy=legacy)
        self.ctx = RunContext(cfg, self.out, device, dist, corpus, identity=self.folder.identity, claim=self.claim)
        self._claimed = False
        self._costs: list[dict[str, Any]] = []
        self._masks: dict[str, Any] = {}
        self._results: list[dict[str, Any]] = []
        self._deferred: list[tuple[Phase, list[str]]] = []
        self._eval_seconds = 0.0
        self._total_params = 0

    # ----- inputs
    def _load_source(self, cfg: PruneConfig, lang: str | None) -> SourceRun:
        path = cfg.source.replace("{lang}", lang) if lang else cfg.source
        if "{lang}" in path:
            raise InputError("--from holds {lang}; give --languages", field="--from")
        if path not in self._sources:
            self._sources[path] = SourceRun.load(path)
        return self._sources[path]

    def source(self, lang: str | None = None) -> SourceRun:
        """The dense run (``--from``; ``{lang}`` is replaced by the language)."""
        return self._load_source(self.cfg, lang)

    @property
    def complete(self) -> bool:
        return (self.out / "cost.json").is_file()

    def claim(self) -> None:
        """Record the run (run.json, prune.json, the in-progress marker) right before its first write (rank 0)."""
        from .. import folders
        from ..io import atomic_write_json

        if self._claimed or not self.ctx.is_main:
            return
        self._claimed = True
        self.folder.claim()
        folders.begin(self.out, self.cfg.command)
        atomic_write_json(self.out / "prune.json", {"config": asdict(self.cfg), "defining": self.cfg.defining(),
                                                    "identity": self.folder.identity, "command": self.cfg.command})

    # ----- phases
    def phase(self, key: str, languages: list[str], pathways: list[str], pathway_of: Callable[[str], str], schedule: Schedule,
              *, scores: str = "shared") -> Phase:
        """A training phase in ``OUT/key`` (``""``: the run folder itself), resumed from its checkpoint if it has one.

        A monolingual phase (one language) starts from that language's source run (``--from`` may
        hold ``{lang}``); a multilingual one from ``--from`` itself. ``scores``: the phase's ``--scores`` reading.
        """
        mono = len(languages) == 1 and self.cfg.monolingual
        source = self.source(languages[0] if mono else None)
        return Phase(self.ctx, key, languages, pathways, pathway_of, schedule, source, monolingual=mono, scores=scores)

    def initial_masks(self, phase: Phase, sparsity: float) -> dict[str, Any]:
        """All-ones masks at sparsity 0, else the ``--masks-from`` run's masks at that level."""
        from ..sparsity.masks import MaskSet

        if sparsity == 0.0 and not self.cfg.masks_from:
            return {name: MaskSet.ones_like(phase.weights()) for name in phase.pathway_names}
        assert self.cfg.masks_from is not None
        return load_level_masks(self.cfg.masks_from, phase.pathway_names, phase.weights(), sparsity, self.ctx.device)

    def phase_trained(self, phase: Phase) -> None:
        """Keep a trained phase's masks and cost; evaluate it now, or (DDP) once every phase is trained."""
        self._masks.update(phase.masks)
        self._costs.append(phase.cost())
        self._total_params = sum(p.numel() for p in phase.model.parameters())
        if self.eval_split() is None:
            return
        if self.ctx.dist.enabled:  # rank 0 evaluates after leaving the process group: no rank waits at a barrier meanwhile
            phase.trainer.optimizer.state.clear()  # only the model is needed to evaluate
            self._deferred.append((phase, phase.languages))
        else:
            self._evaluate(phase, phase.languages)

    # ----- evaluation and the run's tables
    def eval_split(self) -> str | None:
        return None if self.cfg.eval_split == "none" else self.cfg.eval_split

    def _evaluate(self, phase: Phase, languages: list[str]) -> None:
        from ..evaluate import evaluate, write_evaluation

        t0 = time.perf_counter()
        res = evaluate(
            phase.model, phase.tokenizer, self.ctx.corpus, languages, self.eval_split() or "test", pathways=phase.pm,
            pathway_of=phase.pathway_of, max_utts=self.cfg.eval_max_utts, device=self.ctx.device, progress=self.cfg.progress,
            decoding=self.cfg.decoding, beam=self.cfg.beam,
        )
        write_evaluation(phase.folder, res, title=f"{phase.folder.name} — {res['split']}")
        self._results.append(res)
        self._eval_seconds += time.perf_counter() - t0

    def finish(self) -> Path:
        """After the last phase: (rank 0) the deferred evaluations, then masks, summary, WER table and cost."""
        from .. import folders
        from ..runtime import shutdown_distributed

        if self.ctx.dist.enabled:
            shutdown_distributed()
            if not self.ctx.is_main:
                return self.out
        for phase, languages in self._deferred:
            self._evaluate(phase, languages)
        cfg = self.cfg
        save_final(self.out, self._masks, cfg.languages, cfg.method)
        summary = write_summary(self.out, self._masks, self._total_params)
        if self._results:
            self._write_wer()
        cost = write_cost(self.out, cfg, self._costs, self._eval_seconds, list(self._sources.values()))  # marks it complete
        folders.finish(self.out)
        if cfg.progress:
            sp = ", ".join(f"{k} {v:.3f}" for k, v in summary["sparsity"].items())
            own = cost["own"]
            scoring = f", {own['score_seconds']:.1f} s in {own['score_batches']} scoring batches" if own["score_batches"] else ""
            print(f"{self.out}: sparsity {sp}; union {summary['union_sparsity']:.3f}; {own['optimizer_steps']} optimizer "
                  f"steps, {own['wall_seconds']:.1f} s ({own['mask_seconds']:.2f} s computing masks{scoring})")
        return self.out

    def already_complete(self) -> Path:
        """A finished run (cost.json exists): say so and show its table."""
        from ..runtime import shutdown_distributed

        if self.cfg.progress and self.ctx.is_main:
            split = self.eval_split()
            table = self.out / f"wer_{split}.md"
            print(f"{self.out} is complete (cost.json exists); use --restart to redo it")
            if split and table.is_file():
                print(table.read_text())
        if self.ctx.dist.enabled:
            shutdown_distributed()
        return self.out

    def _write_wer(self) -> dict[str, Any]:
        """Merge the per-language results into the run's table (per language + macro average)."""
        from ..evaluate import wer_table, write_evaluation
        from ..metrics import macro_average

        per_lang: dict[str, Any] = {}
        hyps: list[dict[str, str]] = []
        for r in self._results:
            per_lang.update(r["languages"])
            hyps += r["hyps"]
        merged = {"split": self._results[0]["split"], "languages": per_lang, "average": macro_average(per_lang), "hyps": hyps,
                  "decode_seconds": sum(r["decode_seconds"] for r in self._results), "decoding": self._results[0].get("decoding")}
        title = f"{self.out.name} ({self.cfg.method}, target {self.cfg.target:g}) — {merged['split']}"
        write_evaluation(self.out, merged, title=title)
        if self.cfg.progress:
            print(wer_table(merged, title=title))
        return merged
