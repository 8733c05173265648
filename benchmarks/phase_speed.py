"""Pruning-phase speed: the pathway engine of 2026-12-03 against today's, on the demo's phase steps.

    .venv/bin/python benchmarks/phase_speed.py --corpus data/demo --dense runs/demo/dense

A multilingual pathway phase (ASR Pathways, Dynamic ASR Pathways, and the per-language phases of
IMP/LTH with one pathway) trains one monolingual batch per language per step, each inside its
pathway's context, then takes the masked Adam step. Two trainers on copies of the dense model, with
the same masks (random, ``--sparsity`` per language, seeded) and the same data order, take turns step by
step for ``--steps`` steps (seeded random order each step, as ``train_speed.py`` does):

- ``old``: the engine as it was until 2026-12-03 (ENGINE_2026_12 below, written out in full so that the
  comparison can be rerun): the masked weight ``torch.where(m, θ, 0)`` on entering a context and the
  gradient ``torch.where(m, g, 0)``, and a masked Adam step that selects with ``torch.where`` and
  ``masked_fill_``;
- ``new``: the engine as shipped (``θ * m`` with the mask kept as 1/0 per pathway, a masked Adam step that
  selects with ``lerp``).

Both must give the same weights and optimizer state, bit for bit: the script checks every tensor at the
end (``identical`` in the JSON). The ratio new / old of step throughput gets a 95% t-interval over
``--blocks`` consecutive blocks of the interleaved steps.

It also times a trainer's set-up (the streams of every language) with the corpus's cuts as lhotse's lazy
path-prefix map (until 2026-12-03) and as an eager list (today), alternating, ``--setup-repeats`` times.

Writes benchmarks/results/phase_speed.json (top-level ``new_over_old``) and the ``phase_speed``
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402

from asr_pathways.sparsity.pathways import PathwayModel  # noqa: E402


class _WhereMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, mask):  # type: ignore[override]
        ctx.mask = mask
        return torch.where(mask, weight, weight.new_zeros(()))

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return torch.where(ctx.mask, grad, grad.new_zeros(())), None


@torch.no_grad()
def _where_adam_step(optimizer: torch.optim.Optimizer, frozen: dict) -> None:
    """The masked Adam step of 2026-12-03 (AdamW, decoupled weight decay), operation for operation."""
    for group in optimizer.param_groups:
        beta1, beta2 = group["betas"]
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        for p in group["params"]:
            if p.grad is None:
                continue
            grad, state = p.grad, optimizer.state[p]
            if len(state) == 0:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            step_t += 1
            step = float(step_t)
            bc1, bc2_sqrt = 1 - beta1**step, (1 - beta2**step) ** 0.5
            step_size = lr / bc1
            fz = frozen.get(p)
            if fz is None:
                if wd != 0:
                    p.mul_(1 - lr * wd)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
                continue
            exp_avg.lerp_(torch.where(fz, exp_avg, grad), 1 - beta1)
            exp_avg_sq.lerp_(torch.where(fz, exp_avg_sq, grad * grad), 1 - beta2)
            update = exp_avg_sq.sqrt().div_(bc2_sqrt).add_(eps)
            torch.div(exp_avg, update, out=update).mul_(step_size)
            if wd != 0:
                update.add_(p, alpha=lr * wd)
            p.sub_(update.masked_fill_(fz, 0.0))


class OldPathwayModel(PathwayModel):
    """ENGINE_2026_12: the pathway engine's masked forward and masked Adam step until 2026-12-03."""

    def _install(self, pathway: str) -> None:
        ms = self._get(pathway)
        for n in self._names:
            p, m = self._params[n], ms[n]
            with torch.enable_grad():
                t = _WhereMask.apply(p, m)
            mod, attr = self._owner[n]
            mod.__dict__[attr] = t
            fw = getattr(mod, "_flat_weights_names", None)
            if fw is not None and attr in fw:
                mod._flat_weights[fw.index(attr)] = t
            self._installed.append(n)

    def step(self, optimizer, active=None, step_fn=None):
        key = tuple(sorted(set(active if active is not None else self._used)))
        _where_adam_step(optimizer, self._frozen.outside_bool(key))
        self._used = []


def random_masks(names_shapes: dict[str, torch.Size], languages: list[str], sparsity: float, seed: int) -> dict:
    from asr_pathways.sparsity import MaskSet

    g = torch.Generator().manual_seed(seed)
    return {l: MaskSet({n: torch.rand(s, generator=g) >= sparsity for n, s in names_shapes.items()}) for l in languages}


def make_trainer(engine: str, dense: Path, corpus, masks: dict, max_duration: float, steps: int, out: Path):
    from asr_pathways.asr.prunable import prunable_parameters
    from asr_pathways.checkpoint import load_checkpoint
    from asr_pathways.runs import build_model, load_tokenizer, read_run_config
    from asr_pathways.train import Trainer, TrainConfig

    rc = read_run_config(dense)
    tok = load_tokenizer(dense)
    model = build_model(rc.model, tok.vocab_size)
    model.load_state_dict(load_checkpoint(dense).model)
    names = list(dict(prunable_parameters(model)))
    cls = OldPathwayModel if engine == "old" else PathwayModel
    pm = cls(model, names, masks=copy.deepcopy(masks))
    known = set(TrainConfig.__dataclass_fields__)
    d = {k: v for k, v in rc.train.items() if k in known}
    d.update(batching="language", max_duration=max_duration, steps=steps, languages_per_step=0, loss_warmup_steps=0,
             warmup_steps=0, eval_every=0, keep_checkpoints=0, lr=2e-4, fused_adamw=False)
    cfg = TrainConfig.from_dict(d, source="phase_speed")
    langs = list(masks)
    return Trainer(model, tok, corpus, langs, cfg, out, pathways=pm, pathway_of=lambda l: l, progress=False)


def setup_times(corpus_dir: str, repeats: int, max_duration: float) -> dict[str, list[float]]:
    """Seconds to read every language's train cuts and build its stream: lazy (old) and eager (today)."""
    from asr_pathways.data.batches import language_streams
    from asr_pathways.data.corpus import Corpus

    class LazyCorpus(Corpus):
        def cuts(self, lang, split):  # Corpus.cuts until 2026-12-03: the lazy manifest, then lhotse's lazy prefix map
            from lhotse import CutSet

            from asr_pathways.data.corpus import check_recording, manifest_path

            if (lang, split) not in self._cuts:
                p = manifest_path(self.path, lang, "cuts", split)
                cuts = CutSet.from_file(p) or CutSet([])
                for cut in cuts:
                    check_recording(cut.recording, self.path, p, self.allow_absolute_audio)
                self._cuts[(lang, split)] = cuts.with_recording_path_prefix(str(self.path.resolve()))
            return self._cuts[(lang, split)]

    out: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(repeats):
        for name, cls in (("old", LazyCorpus), ("new", Corpus))[:: 1 if r % 2 == 0 else -1]:  # alternating order
            c = cls(corpus_dir)
            t0 = time.perf_counter()
            c_langs = c.languages
            language_streams(c, c_langs, _Tok(), max_duration, 0)
            out[name].append(time.perf_counter() - t0)
    return out


def _commit() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + (" with uncommitted changes" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class _Tok:
    def encode(self, text: str) -> list[int]:
        return [1]


def main(argv: list[str] | None = None) -> int:
    from train_speed import _reexec_with_tcmalloc, block_ratios, interleave

    _reexec_with_tcmalloc()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default="data/demo", help="corpus folder (make demo builds data/demo)")
    p.add_argument("--dense", default="runs/demo/dense", help="a trained dense run (make demo trains runs/demo/dense)")
    p.add_argument("--sparsity", type=float, default=0.5, help="each pathway's sparsity (random masks)")
    p.add_argument("--max-duration", type=float, default=16.0, help="seconds per monolingual batch (the demo's phases: 16)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps of each trainer first")
    p.add_argument("--steps", type=int, default=60, help="timed steps of each trainer (interleaved)")
    p.add_argument("--blocks", type=int, default=6, help="blocks of interleaved steps for the interval")
    p.add_argument("--setup-repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-write", action="store_true", help="print only")
    a = p.parse_args(argv)

    from common import command_line, machine_info, machine_line, write_result, write_section

    from asr_pathways.asr.prunable import prunable_parameters
    from asr_pathways.bench.stats import t_interval
    from asr_pathways.checkpoint import load_checkpoint
    from asr_pathways.data.corpus import Corpus
    from asr_pathways.runs import build_model, load_tokenizer, read_run_config

    t_start = time.perf_counter()
    torch.manual_seed(a.seed)
    corpus = Corpus(a.corpus)
    languages = list(read_run_config(a.dense).languages)
    probe = build_model(read_run_config(a.dense).model, load_tokenizer(a.dense).vocab_size)
    shapes = {n: q.shape for n, q in dict(prunable_parameters(probe)).items()}
    masks = random_masks(shapes, languages, a.sparsity, a.seed)
    tmp = Path(tempfile.mkdtemp())
    total = a.warmup + a.steps
    trainers = {e: make_trainer(e, Path(a.dense), corpus, masks, a.max_duration, total, tmp / e) for e in ("old", "new")}
    for _ in range(a.warmup):
        for e in ("old", "new"):
            trainers[e].train_step()
    runs = interleave(trainers, ["old", "new"], a.steps, seed=a.seed)
    m_old, m_new = trainers["old"].model, trainers["new"].model
    so, sn = trainers["old"].optimizer.state, trainers["new"].optimizer.state
    pairs = [*zip(m_old.state_dict().values(), m_new.state_dict().values()),
             *((so[po][k], sn[pn][k]) for po, pn in zip(m_old.parameters(), m_new.parameters()) if po in so
               for k in ("exp_avg", "exp_avg_sq", "step"))]
    identical = all(torch.equal(x, y) for x, y in pairs)  # equal values (+0 equals -0)
    bitwise = all(x.dtype == y.dtype and torch.equal(x.view(-1).view(torch.uint8), y.view(-1).view(torch.uint8))
                  for x, y in pairs if x.is_floating_point())  # the same bits
    ratios = block_ratios(runs["new"], runs["old"], a.blocks)
    lo, hi = t_interval(ratios) or (float("nan"), float("nan"))
    rate = {e: sum(r["audio"]) / sum(r["seconds"]) for e, r in runs.items()}
    ms = {e: 1000 * statistics.median(r["seconds"]) for e, r in runs.items()}
    setup = setup_times(a.corpus, a.setup_repeats, a.max_duration)
    result = {
        "command": command_line("benchmarks/phase_speed.py", argv), "machine": machine_info(), "seed": a.seed,
        "commit": _commit(), "corpus": a.corpus, "dense": a.dense, "languages": languages, "sparsity": a.sparsity, "max_duration": a.max_duration,
        "steps": a.steps, "warmup": a.warmup, "blocks": a.blocks,
        "audio_seconds_per_second": rate, "median_step_ms": ms, "block_ratios": ratios,
        "new_over_old": rate["new"] / rate["old"], "new_over_old_interval": [lo, hi], "identical": identical,
        "bitwise_identical": bitwise,
        "setup_seconds": setup, "setup_old_over_new": statistics.median(setup["old"]) / statistics.median(setup["new"]),
        "wall_seconds": time.perf_counter() - t_start,
    }
    print(f"new / old {result['new_over_old']:.3f}x [{lo:.3f}, {hi:.3f}]; steps {ms['old']:.0f} vs {ms['new']:.0f} ms (median); "
          f"identical {identical} (bitwise {bitwise}); set-up old {statistics.median(setup['old']):.2f} s, new {statistics.median(setup['new']):.2f} s")
    if a.no_write:
        return 0
    write_result("phase_speed", result)
    body = "\n".join([
        "## Pruning-phase speed (`benchmarks/phase_speed.py`)", "",
        f"Command: `{result['command']}` (`.venv/bin/python`; needs `make demo`'s corpus and dense model, or others given with "
        f"`--corpus`/`--dense`), commit {result['commit']}. Machine: {machine_line(result['machine'])}. Seed {a.seed}; wall time "
        f"{result['wall_seconds']:.0f} s.", "",
        f"A pathway phase of the demo's size: {len(languages)} languages ({', '.join(languages)}), one {a.max_duration:g}-s monolingual "
        f"batch per language per step, random masks at {a.sparsity:.0%} per pathway, {a.steps} timed steps of each engine "
        f"taking turns (after {a.warmup} untimed), the same data order; `old` is the engine of commit 7b5d251 (`torch.where` "
        "masks, a `where`/`masked_fill_` masked Adam step), `new` the one of the commit above (on the CPU: float masks, `lerp` "
        "selection). Both trainers share one corpus object, so the manifests read once show only in the set-up row.", "",
        "| measure | old | new | new / old |", "| --- | ---: | ---: | ---: |",
        f"| audio-s per s | {rate['old']:.1f} | {rate['new']:.1f} | **{result['new_over_old']:.3f}x** [{lo:.3f}, {hi:.3f}] |",
        f"| median step (ms) | {ms['old']:.0f} | {ms['new']:.0f} | |",
        f"| trainer set-up (s, median of {a.setup_repeats}) | {statistics.median(setup['old']):.2f} | {statistics.median(setup['new']):.2f} | |",
        "",
        f"Weights, AdamW moments and step counts after the run: equal values **{identical}**, the same bits **{bitwise}** "
        "(an exact comparison because the demo's model has no dropout, which draws from "
        "the global random generator the two trainers share; SpecAugment draws from each trainer's own seeded generator). Interval: Student t over "
        f"{a.blocks} blocks of consecutive interleaved steps (machine drift inside the run; not variance between runs). "
        "Set-up: every language's train cuts read and their streams built, with the cuts as lhotse's lazy manifest and "
        "path-prefix map (old) or read once into a list (new), in alternating order. "
        f"1-minute load average when the result was written: {result['machine'].get('load_average_1min', float('nan')):.2f}.",
    ])
    write_section("phase_speed", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
