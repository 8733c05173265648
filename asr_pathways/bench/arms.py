"""The runs of one seed of the benchmark, with equal budgets (the arms of the claims in :mod:`.claims`).

Every arm of a claim trains the same language batches (upstream pruning runs included) and the same
steps at its final mask (:mod:`.budget` checks it). With levels 0, p, …, mid, …, target (R rounds
from 0 to the target, ``full_rounds`` with the final one):

- IMP/LTH-target: ``full_rounds`` rounds of T steps; the final mask trains T steps.
- adaptive/Dynamic from the middle level: rounds of T from the IMP/LTH/LAP mask at ``mid`` (reached
  after as many rounds of the upstream run), an adaptation at n in every round, the prune into each
  level re-selected from the candidates, and no adaptation in the final round (``--no-final-adapt``):
  the final mask trains T steps and the total is ``full_rounds`` × T, as IMP's.
- ASR Pathways: the LTH (or LAP) masks at the target, T steps: upstream ``full_rounds − 1`` rounds +
  T = the same total, and T steps at the final mask.
- adaptive/Dynamic from the target (secondary): one round of T steps with an adaptation at n; the
  same total, T − n steps at the final mask (not matched with IMP; matched with its twin).
- every adaptive and Dynamic arm has a twin with ``--candidates own`` (same masks, steps, data
  order: no weight can come back), the contrast for "does adaptation help"; the ``--scores shared``
  variants (secondary seeds) and the ``--scores finetune`` variants (the literal reading, secondary
  seeds, from the middle level) each have their own twin.
- dense continued: θ_ML trained for ``full_rounds`` × T steps (monolingual, or one batch per language).
- union-matched ASR Pathways: LTH to the profile's ``union_sparsity`` (in as many rounds as the target, with the
  prune step that reaches it) and T steps with those masks.

Keys (``s{seed}/NAME``): ``imp``, ``lth``, ``lap``, ``adapt-imp50`` (+ ``-own``), ``dyn-lth50``
(+ ``-own``, ``-shared``, ``-shared-own``, ``-literal``, ``-literal-own``), ``pathways``, ``pathways-lap70``, ``pathways-union``, ``pathways-lth50``,
``dense-mono`` (a list, one run per language), ``dense-multi``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .jobs import Job
    from .plan import Planner

OWN, SHARED, LITERAL = "-own", "-shared", "-literal"  # suffixes: the --candidates own twin, the --scores shared / finetune variants


def twin_arms(pl: "Planner", seed: int, name: str, method: str, dense: Path, corpus: Path, langs: tuple[str, ...],
              extra: list[str], steps: int, ev: int | None, tag: str = "", shared: bool = False,
              literal: bool = False) -> dict[str, str]:
    """An adaptive/Dynamic arm and its ``--candidates own`` twin; ``shared``: also its ``--scores shared`` variant,
    ``literal``: its ``--scores finetune`` variant, each with its own ``--candidates own`` twin."""
    keys = {}
    readings = [("", [])] + ([(SHARED, ["--scores", "shared"])] if shared else []) + \
        ([(LITERAL, ["--scores", "finetune"])] if literal else [])
    for reading, scores in readings:
        for suffix, flags in ((reading, scores), (reading + OWN, [*scores, "--candidates", "own"])):
            k = f"s{seed}/{name}{suffix}{tag}"
            job = pl.prune_job(seed, name + suffix + tag, method, dense, corpus, langs, [*extra, *flags], steps * len(langs), ev)
            job.score_batches = scoring_batches(job) if reading == LITERAL else 0
            pl._add(k, job)
            keys[name + suffix] = k
    return keys


def scoring_batches(job: "Job") -> int:
    """The batches ``--scores finetune`` spends on its scoring fine-tunes (not optimizer steps of the model):
    K per language at every adaptation, prune and finalize event (the plan's time estimate counts them)."""
    from .budget import prune_config, schedule_of

    cfg = prune_config(job)
    events = sum(1 for e in schedule_of(cfg).events if e.kind in ("adapt", "prune", "finalize"))
    return events * len(job.languages) * cfg.score_steps


def upstream(pl: "Planner", seed: int, method: str, dense: Path, corpus: Path, langs: tuple[str, ...], ev: int | None,
             tag: str = "") -> str:
    """The key of the IMP/LTH/LAP run to the target on ``langs`` (added once)."""
    k = f"s{seed}/{method}{tag}"
    extra = ["--lap-base", "lth"] if method == "lap" else []
    pl._add(k, pl.prune_job(seed, method + tag, method, dense, corpus, langs, extra, pl.full_rounds * pl.pr.T * len(langs), ev))
    return k


def monolingual(pl: "Planner", seed: int, dense: Path, corpus: Path, langs: tuple[str, ...], all_langs: tuple[str, ...],
                ev: int | None, secondary: bool) -> dict[str, Any]:
    """IMP, adaptive from IMP-mid and its twin, dense mono continued; ``secondary``: the LTH and from-target arms."""
    pr = pl.pr
    keys: dict[str, Any] = {"imp": upstream(pl, seed, "imp", dense, corpus, langs, ev)}
    sources = [("imp", pr.mid)]
    if secondary:
        keys["lth"] = upstream(pl, seed, "lth", dense, corpus, all_langs, ev)  # the multilingual table's LTH run
        sources += [("lth", pr.mid), ("imp", pr.target), ("lth", pr.target)]
    for m, s in sources:
        flags, steps = pl.adapt_flags(s, matched=True)
        name = pr.method_key("adapt", m, s)
        keys |= twin_arms(pl, seed, name, "adaptive", dense, corpus, langs, ["--masks-from", str(pl.jobs[keys[m]].folder), *flags],
                          steps, ev)
    keys["dense-mono"] = []
    for l in langs:
        name = f"dense-mono-{l}"
        k = f"s{seed}/{name}"
        pl._add(k, pl.continued_job(seed, name, dense, corpus, (l,), pl.full_rounds * pr.T, ev, multilingual=False))
        keys["dense-mono"].append(k)
    return keys


def multilingual(pl: "Planner", seed: int, dense: Path, corpus: Path, langs: tuple[str, ...], ev: int | None,
                 secondary: bool, tag: str = "", literal: bool = False) -> dict[str, Any]:
    """LTH, LAP, ASR Pathways (LTH, LAP fixed, union-matched), Dynamic from LTH/LAP-mid with twins, dense multi continued;
    ``secondary``: the ``--scores shared`` variants, Dynamic from the target, ASR Pathways at the middle level;
    ``literal``: the ``--scores finetune`` variants of Dynamic from the middle level."""
    pr = pl.pr
    T, L = pr.T, len(langs)
    keys: dict[str, Any] = {m: upstream(pl, seed, m, dense, corpus, langs, ev, tag) for m in ("lth", "lap")}

    def pathways(name: str, src: str, sparsity: float, eval_utts: int | None = ev) -> None:
        extra = ["--masks-from", str(pl.jobs[keys[src]].folder), "--steps", str(T), "--init-sparsity", f"{sparsity:g}",
                 "--target", f"{sparsity:g}"]
        k = f"s{seed}/{name}{tag}"
        pl._add(k, pl.prune_job(seed, name + tag, "pathways", dense, corpus, langs, extra, T * L, eval_utts))
        keys[name] = k

    pathways("pathways", "lth", pr.target)
    pathways(pr.method_key("pathways", "lap", pr.target), "lap", pr.target)
    if pr.union_sparsity is not None:  # LTH to the union-matched sparsity in as many rounds as the target's (equal budgets)
        k = f"s{seed}/lth-union{tag}"
        p_union = union_prune_step(pl, pr.union_sparsity)
        pl._add(k, pl.prune_job(seed, "lth-union" + tag, "lth", dense, corpus, langs,
                                ["--target", f"{pr.union_sparsity:g}", "--prune-step", f"{p_union:g}"],
                                len(pl.levels(0.0, pr.union_sparsity, p_union)) * T * L, 0))
        keys["lth-union"] = k
        pathways("pathways-union", "lth-union", pr.union_sparsity)
    starts = [(src, pr.mid) for src in ("lth", "lap")] + ([(src, pr.target) for src in ("lth", "lap")] if secondary else [])
    for src, s in starts:
        flags, steps = pl.adapt_flags(s, matched=True)
        name = pr.method_key("dyn", src, s)
        keys |= twin_arms(pl, seed, name, "dynamic", dense, corpus, langs, ["--masks-from", str(pl.jobs[keys[src]].folder), *flags],
                          steps, ev, tag, shared=secondary, literal=literal and s == pr.mid)
    if secondary:
        pathways(pr.method_key("pathways", "lth", pr.mid), "lth", pr.mid)
    k = f"s{seed}/dense-multi{tag}"
    pl._add(k, pl.continued_job(seed, "dense-multi" + tag, dense, corpus, langs, pl.full_rounds * T, ev, multilingual=True))
    keys["dense-multi"] = k
    return keys


def union_prune_step(pl: "Planner", sparsity: float) -> float:
    """The prune step that reaches ``sparsity`` in as many prunes as the profile's levels reach its target
    (rounded up in the sixth decimal, so that float rounding adds no last round).

    >>> from types import SimpleNamespace
    >>> from .plan import _levels
    >>> pl = SimpleNamespace(pr=SimpleNamespace(target=0.7, p=0.25), levels=lambda a, b=0.7, p=0.25: _levels(a, b, p))
    >>> union_prune_step(pl, 0.77), _levels(0.0, 0.77, union_prune_step(pl, 0.77))
    (0.256667, [0.0, 0.256667, 0.513334, 0.77])
    """
    import math

    prunes = len(pl.levels(0.0, pl.pr.target)) - 1
    return math.ceil(sparsity / prunes * 1e6) / 1e6


def ablations(pl: "Planner", seed: int, dense: Path, corpus: Path, langs: tuple[str, ...]) -> dict[str, tuple[str, str, str]]:
    """name → (job key, base key, description): one option of a headline arm changed at a time."""
    pr = pl.pr
    A = pr.ablation_language if pr.ablation_language in pl.mono_languages else pl.mono_languages[0]
    ev = pr.ablation_eval_utts
    imp = pl.jobs[f"s{seed}/imp"].folder  # the runs of Table 1 and 2 of this seed come first
    T = pr.T
    out: dict[str, tuple[str, str, str]] = {}
    base_key = f"s{seed}/{pr.method_key('adapt', 'imp', pr.mid)}"
    quarter, three = max(1, T // 4), min(T - 1, max(1, (3 * T) // 4))
    variants: list[tuple[str, str, list[str], int]] = []
    for desc, n in ((f"n = {quarter} (T/4)", [quarter]), (f"n = {three} (3T/4)", [three]),
                    (f"n = {max(1, T // 3)},{max(1, 2 * T // 3)} (two adaptations per round)", sorted({max(1, T // 3), max(1, 2 * T // 3)}))):
        if n != [pr.n]:
            flags, steps = pl.adapt_flags(pr.mid, n=n, matched=True)
            variants.append(("n=" + ",".join(map(str, n)), desc, flags, steps))
    for p in (pr.p / 2.5, pr.p / 5):
        p = round(p, 4)
        flags, steps = pl.adapt_flags(pr.mid, p=p, matched=True)
        variants.append((f"p={p:g}", f"p = {p:g} ({len(pl.levels(pr.mid, pr.target, p))} rounds from {pr.mid:g})", flags, steps))
    flags, steps = pl.adapt_flags(pr.mid, matched=True)
    variants += [
        ("zero_trainable", "pruned weights zero_trainable (PARP)", [*flags, "--pruned-weights", "zero_trainable"], steps),
        ("block=1x1", "1x1 blocks (unstructured) in the adaptive phase", [*flags, "--block", "1x1"], steps),
        ("block=16x1", "16x1 blocks in the adaptive phase", [*flags, "--block", "16x1"], steps),
        ("scope=global", "global ranking instead of layer-wise", [*flags, "--scope", "global"], steps),
        ("final-adapt", "an adaptation in the final round too (the paper's schedule; T − n steps at the final mask)",
         [x for x in flags if x != "--no-final-adapt"], steps),
    ]
    long_T, long_n = 3 * T, min(3 * T - 1, 3 * pr.n)
    flags, steps = pl.adapt_flags(pr.mid, T=long_T, n=[long_n], matched=True)
    variants.append((f"T={long_T}", f"rounds of T = {long_T} (3×) in the adaptive phase, n = {long_n}", flags, steps))
    for short, desc, flags, steps in variants:
        name = f"abl-{short.replace('=', '').replace(',', '-')}"
        k = f"s{seed}/{name}"
        pl._add(k, pl.prune_job(seed, name, "adaptive", dense, corpus, (A,), ["--masks-from", str(imp), *flags], steps, ev))
        out[short] = (k, base_key, f"adaptive from IMP-{pr.percent(pr.mid)} on {A}: {desc}")
    name = f"abl-imp-T{long_T}"  # the round length of the baseline itself (base: IMP-target of the table)
    k = f"s{seed}/{name}"
    pl._add(k, pl.prune_job(seed, name, "imp", dense, corpus, (A,), ["--round-steps", str(long_T)], pl.full_rounds * long_T, ev))
    out[f"imp T={long_T}"] = (k, f"s{seed}/imp", f"IMP-{pr.percent(pr.target)} on {A}: rounds of T = {long_T} (3×)")
    flags, steps = pl.adapt_flags(pr.mid, matched=True)
    lth = pl.jobs[f"s{seed}/lth"].folder
    name = "abl-dyn-candall"
    k = f"s{seed}/{name}"
    pl._add(k, pl.prune_job(seed, name, "dynamic", dense, corpus, langs, ["--masks-from", str(lth), *flags, "--candidates", "all"],
                            steps * len(langs), ev))
    out["dyn cand=all"] = (k, f"s{seed}/{pr.method_key('dyn', 'lth', pr.mid)}", f"Dynamic from LTH-{pr.percent(pr.mid)}: candidates all")
    return out
