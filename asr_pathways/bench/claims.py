"""The comparisons of the claims table: which run is compared with which, how, and why.

Roles: ``headline`` (the paper's comparisons: adaptive vs IMP, Dynamic vs ASR Pathways,
LAP-initialised Dynamic vs LTH-initialised Dynamic and vs ASR Pathways), ``twin`` (an adaptive or
Dynamic arm against its ``--candidates own`` twin: the same masks, steps and data order without
revival, the primary contrast for "does adaptation help"), ``control`` (ASR Pathways with the LAP
mask held fixed, ASR Pathways at a union-matched sparsity, the dense models continued), and
``secondary`` (LTH-initialised adaptive, runs from the target, the ``--scores shared`` and
``--scores finetune`` variants with their own twins).

``match``: what :mod:`.budget` checks for the arms of a comparison: ``both`` (language batches,
upstream included, and steps at the final mask), ``total`` (language batches only: a dense model, or
a run from the target whose last adaptation leaves fewer steps at its final mask), ``none`` (θ_ML).

>>> from .profiles import load_profile
>>> cs = benchmark_claims(load_profile("small"))
>>> [c.title for c in cs if c.role == "headline"][:2]
['adaptive (IMP-50%) vs IMP-70%', 'Dynamic (LTH-50%) vs ASR Pathways (LTH-70%)']
"""

from __future__ import annotations

from dataclasses import dataclass

from .profiles import Profile

PAPER = {  # the paper's numbers (relative WER reductions)
    "adaptive_vs_imp": "5.3%",
    "dynamic_vs_pathways": "2–5.8%",
    "lap_adapt_vs_lth": "≈ 0",
}


@dataclass(frozen=True)
class Claim:
    """One comparison: ``method`` against ``base`` (run names of a seed's keys; ``dense-eval`` is θ_ML)."""

    title: str
    base: str
    method: str
    paper: str
    kind: str  # better | approx | control (:func:`.stats.verdict`)
    role: str  # headline | twin | control | secondary
    match: str = "both"  # both | total | none
    mono: bool = False  # on the monolingual claim's languages


def benchmark_claims(pr: Profile) -> list[Claim]:
    """Every comparison of the benchmark's claims table, in table order (a report keeps those whose runs exist)."""
    mid, tgt = pr.percent(pr.mid), pr.percent(pr.target)
    a = lambda m, s: pr.method_key("adapt", m, s)  # noqa: E731
    y = lambda m, s: pr.method_key("dyn", m, s)  # noqa: E731
    lap_fixed = pr.method_key("pathways", "lap", pr.target)
    su = f", {pr.percent(pr.union_sparsity)} per language" if pr.union_sparsity is not None else ""
    mono, dyn, lap = PAPER["adaptive_vs_imp"], PAPER["dynamic_vs_pathways"], PAPER["lap_adapt_vs_lth"]
    twin = "— (the adaptation's share)"
    C = Claim
    return [
        C(f"adaptive (IMP-{mid}) vs IMP-{tgt}", "imp", a("imp", pr.mid), mono, "better", "headline", mono=True),
        C(f"adaptive (IMP-{mid}) vs its --candidates own twin", a("imp", pr.mid) + "-own", a("imp", pr.mid), twin, "better", "twin",
          mono=True),
        C(f"Dynamic (LTH-{mid}) vs ASR Pathways (LTH-{tgt})", "pathways", y("lth", pr.mid), dyn, "better", "headline"),
        C(f"Dynamic (LTH-{mid}) vs its --candidates own twin", y("lth", pr.mid) + "-own", y("lth", pr.mid), twin, "better", "twin"),
        C(f"Dynamic (LAP-{mid}) vs ASR Pathways (LTH-{tgt})", "pathways", y("lap", pr.mid), lap, "approx", "headline"),
        C(f"Dynamic (LAP-{mid}) vs Dynamic (LTH-{mid})", y("lth", pr.mid), y("lap", pr.mid), lap, "approx", "headline"),
        C(f"Dynamic (LAP-{mid}) vs its --candidates own twin", y("lap", pr.mid) + "-own", y("lap", pr.mid), twin, "better", "twin"),
        # the LAP mask held fixed: Dynamic's weights train 2T steps from θ_ML (the prune into the target inside
        # multilingual training), the fixed-mask arm's T; the twin row above is the contrast that credits revival
        C(f"Dynamic (LAP-{mid}) vs ASR Pathways (LAP-{tgt}, fixed) (adaptation + pruning inside multilingual training)",
          lap_fixed, y("lap", pr.mid), "—", "better", "control"),
        C(f"Dynamic (LTH-{mid}) vs ASR Pathways (union-matched{su})", "pathways-union", y("lth", pr.mid), dyn, "better", "control"),
        C(f"Dynamic (LAP-{mid}) vs ASR Pathways (union-matched{su})", "pathways-union", y("lap", pr.mid), dyn, "better", "control"),
        # is the gain at equal deployed size adaptation's, or any shared mask's?
        C(f"Dynamic (LTH-{mid}) --candidates own twin vs ASR Pathways (union-matched{su})", "pathways-union",
          y("lth", pr.mid) + "-own", "—", "better", "control"),
        C(f"ASR Pathways (LAP-{tgt}, fixed) vs ASR Pathways (union-matched{su})", "pathways-union", lap_fixed, "—", "better",
          "control"),
        C("control: dense mono continued vs θ_ML", "dense-eval", "dense-mono", "—", "control", "control", "none", mono=True),
        C(f"control: IMP-{tgt} vs dense mono continued", "dense-mono", "imp", "—", "control", "control", "total", mono=True),
        C(f"control: adaptive (IMP-{mid}) vs dense mono continued", "dense-mono", a("imp", pr.mid), "—", "control", "control",
          "total", mono=True),
        C("control: dense multi continued vs θ_ML (must not be worse)", "dense-eval", "dense-multi", "—", "control", "control",
          "none"),
        C(f"control: ASR Pathways (LTH-{tgt}) vs dense multi continued", "dense-multi", "pathways", "—", "control", "control",
          "total"),
        C(f"control: Dynamic (LTH-{mid}) vs dense multi continued", "dense-multi", y("lth", pr.mid), "—", "control", "control",
          "total"),
        # secondary: LTH-initialised adaptive, runs from the target, the --scores shared variants
        C(f"adaptive (LTH-{mid}) vs LTH-{tgt}", "lth", a("lth", pr.mid), mono, "better", "secondary", mono=True),
        C(f"adaptive (LTH-{mid}) vs its --candidates own twin", a("lth", pr.mid) + "-own", a("lth", pr.mid), twin, "better",
          "secondary", mono=True),
        C(f"adaptive (IMP-{tgt}) vs IMP-{tgt}", "imp", a("imp", pr.target), mono, "better", "secondary", "total", mono=True),
        C(f"adaptive (IMP-{tgt}) vs its --candidates own twin", a("imp", pr.target) + "-own", a("imp", pr.target), twin, "better",
          "secondary", mono=True),
        C(f"adaptive (LTH-{tgt}) vs LTH-{tgt}", "lth", a("lth", pr.target), mono, "better", "secondary", "total", mono=True),
        C(f"adaptive (LTH-{tgt}) vs its --candidates own twin", a("lth", pr.target) + "-own", a("lth", pr.target), twin, "better",
          "secondary", mono=True),
        C(f"Dynamic (LTH-{mid}, --scores shared) vs ASR Pathways (LTH-{tgt})", "pathways", y("lth", pr.mid) + "-shared", dyn,
          "better", "secondary"),
        C(f"Dynamic (LAP-{mid}, --scores shared) vs ASR Pathways (LTH-{tgt})", "pathways", y("lap", pr.mid) + "-shared", lap,
          "approx", "secondary"),
        C(f"Dynamic (LTH-{mid}): own-updates vs shared scores", y("lth", pr.mid) + "-shared", y("lth", pr.mid), "—", "better",
          "secondary"),
        C(f"Dynamic (LAP-{mid}): own-updates vs shared scores", y("lap", pr.mid) + "-shared", y("lap", pr.mid), "—", "better",
          "secondary"),
        C(f"Dynamic (LTH-{mid}, --scores shared) vs its --candidates own twin", y("lth", pr.mid) + "-shared-own",
          y("lth", pr.mid) + "-shared", twin, "better", "secondary"),
        C(f"Dynamic (LAP-{mid}, --scores shared) vs its --candidates own twin", y("lap", pr.mid) + "-shared-own",
          y("lap", pr.mid) + "-shared", twin, "better", "secondary"),
        # the literal reading: every language scored after a short fine-tune of its own (--scores finetune)
        C(f"Dynamic (LTH-{mid}, --scores finetune) vs ASR Pathways (LTH-{tgt})", "pathways", y("lth", pr.mid) + "-literal", dyn,
          "better", "secondary"),
        C(f"Dynamic (LAP-{mid}, --scores finetune) vs ASR Pathways (LTH-{tgt})", "pathways", y("lap", pr.mid) + "-literal", lap,
          "approx", "secondary"),
        C(f"Dynamic (LTH-{mid}, --scores finetune) vs its --candidates own twin", y("lth", pr.mid) + "-literal-own",
          y("lth", pr.mid) + "-literal", twin, "better", "secondary"),
        C(f"Dynamic (LAP-{mid}, --scores finetune) vs its --candidates own twin", y("lap", pr.mid) + "-literal-own",
          y("lap", pr.mid) + "-literal", twin, "better", "secondary"),
        C(f"Dynamic (LTH-{mid}): own-updates vs finetune scores", y("lth", pr.mid) + "-literal", y("lth", pr.mid), "—", "approx",
          "secondary"),
        C(f"Dynamic (LAP-{mid}): own-updates vs finetune scores", y("lap", pr.mid) + "-literal", y("lap", pr.mid), "—", "approx",
          "secondary"),
        C(f"Dynamic (LTH-{tgt}) vs ASR Pathways (LTH-{tgt})", "pathways", y("lth", pr.target), dyn, "better", "secondary", "total"),
        C(f"Dynamic (LTH-{tgt}) vs its --candidates own twin", y("lth", pr.target) + "-own", y("lth", pr.target), twin, "better",
          "secondary"),
        C(f"Dynamic (LAP-{tgt}) vs ASR Pathways (LAP-{tgt}, fixed)", lap_fixed, y("lap", pr.target), dyn, "better", "secondary",
          "total"),
        C(f"Dynamic (LAP-{tgt}) vs its --candidates own twin", y("lap", pr.target) + "-own", y("lap", pr.target), twin, "better",
          "secondary"),
    ]
