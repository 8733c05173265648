"""The report's header, its tables (1, 2, 3 and the 8-language Table 2) and the paper's claims.

Each ``*_section`` function returns the Markdown lines of one section (or ``None`` when the run
has nothing for it) and records its numbers in ``draft.results`` (written to results.json).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..asr.searches import decoding_label
from ..report import fmt_mean_std, markdown_table, mean_std, plot_cost, plot_wer_bars
from .plan import Context, Planner, _levels
from .budget import arm_budget
from .claims import PAPER, Claim, benchmark_claims
from .results import DEGENERATE_TEXT, Results, compare, table1_methods, table2_methods, table_rows
from .stats import Gate, verdict

Lines = list[str]


@dataclass
class Draft:
    """What the sections of one report share: the runs, where plots go, and what was found so far."""

    planner: Planner
    layout: dict[str, Any]
    ctx: Context
    res: Results
    results: dict[str, Any] = field(default_factory=dict)  # results.json
    files: dict[str, str] = field(default_factory=dict)  # plot name -> path relative to the report
    claims: list[list[str]] = field(default_factory=list)  # rows of the claims tables
    claims_data: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pr(self) -> Any:
        return self.ctx.profile

    @property
    def out(self) -> Path:
        return self.ctx.out

    @property
    def plots(self) -> Path:
        return self.ctx.out / "plots"

    @property
    def full(self) -> bool:
        """The paper's tables (False: the demo's reduced ones)."""
        return any(p in self.ctx.parts for p in ("table1", "table2", "table3", "ablations"))

    @property
    def t1(self) -> list[tuple[str, str]]:
        return table1_methods(self.pr, self.full)

    @property
    def t2(self) -> list[tuple[str, str]]:
        return table2_methods(self.pr, self.full)

    def label_of(self, key: str) -> str:
        return {n: l for l, n in [*self.t2, *self.t1]}.get(key, key)

    def claim(self, title: str, base: str, method: str, paper: str, kind: str, sk: dict | None = None,
              lg: tuple[str, ...] | None = None, de: str = "dense-eval", role: str = "headline", matched: str = "—") -> None:
        """Compare ``method`` with ``base`` and add a row to the claims: the relative reduction, the
        seed-level t-interval, the paired bootstrap and the verdict (:func:`.stats.verdict`, on the wider)."""
        r = compare(self.res, self.layout["seeds"] if sk is None else sk, base, method, self.pr.languages if lg is None else lg, de)
        if r is None:
            return
        n = len(r["seeds"])
        if r["degenerate"]:
            r["degenerate_note"]["labels"] = [self.label_of(a) for a in r["degenerate_note"]["arms"]]
            arms = " and ".join(r["degenerate_note"]["labels"])
            self.claims.append([title, role, n, paper, r["degenerate_note"]["message"], "—", "—", matched,
                                f"not compared ({arms}: degenerate output)"])
            r["verdict"] = "not compared"
        else:
            t = r["t_interval"]
            r["verdict"] = verdict(r["interval"], t, Gate(r["dense_wer"], r["wer_base"], r["wer_method"]), kind)
            iv = r.get("interval") or r["ci"]
            r["bootstrap_excludes_zero"] = r.get("excludes_zero")  # the paired bootstrap's alone
            r["excludes_zero"] = bool(iv[0] > 0 or iv[1] < 0)  # the interval the verdict uses (the wider)
            self.claims.append([title, role, n, paper, f"{100 * r['relative']:+.1f}%",
                                f"[{100 * t[0]:+.1f}, {100 * t[1]:+.1f}]" if t else "— (one seed)",
                                f"[{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}]", matched, r["verdict"]])
        self.claims_data.append({"title": title, "base": base, "method": method, "paper": paper, "kind": kind, "role": role,
                                 "matched": matched, **r})

    def benchmark_claim(self, c: Claim) -> None:
        """A comparison of :func:`.claims.benchmark_claims`, with whether its arms are matched (first seed with both)."""
        from .budget import mismatch

        seeds = self.layout["seeds"]
        both = [k for k in seeds.values() if c.base in k or c.base == "dense-eval"]
        both = [k for k in both if c.method in k]
        if not both:
            return
        why = mismatch(self.planner, both[0], c) if c.match != "none" else None
        matched = "—" if c.match == "none" else ("yes" if why is None else f"no: {why}")
        if c.match == "total" and why is None:
            matched = "batches only"
        lg = self.planner.mono_languages if c.mono else self.pr.languages
        self.claim(c.title, c.base, c.method, c.paper, c.kind, lg=lg, role=c.role, matched=matched)


CLAIM_HEADER = ["comparison", "role", "seeds", "paper", "ours: relative reduction", "seed t-interval (95%)",
                "bootstrap interval (95%)", "arms matched", "verdict"]
CLAIM_ALIGN = ["l", "l", "r", "r", "r", "r", "r", "l", "l"]


def card_line(corpus: Path) -> str:
    try:
        card = json.loads((corpus / "card.json").read_text())
    except (OSError, json.JSONDecodeError):
        return f"corpus {corpus}"
    parts = []
    for l, per in card.get("languages", {}).items():
        tr, te = per.get("train", {}), per.get("test", {})
        parts.append(f"{l} {tr.get('hours', 0):.2f} h train / {te.get('utterances', 0)} test utts")
    return f"corpus `{corpus}`: " + "; ".join(parts)


def dense_line(dense: Path) -> str:
    try:
        from ..runs import read_run_config

        rc = read_run_config(dense)
        meta = json.loads((dense / "checkpoint.json").read_text()) if (dense / "checkpoint.json").is_file() else {}
        step = meta.get("step", rc.train.get("steps"))
        return f"dense θ_ML `{dense}`: preset {rc.preset}, {step} steps, languages {','.join(rc.languages)}"
    except Exception:  # noqa: BLE001 - a description only
        return f"dense θ_ML `{dense}`"


def forest_rows(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparisons the forest plot shows: not degenerate, and not those against or of a dense model (controls whose
    size would squash the method comparisons; the claims table has them)."""
    return [c for c in claims if not c.get("degenerate") and "dense" not in c["title"]]


def phase_lr_factor() -> str:
    from ..methods.config import PruneConfig

    return f"{PruneConfig.lr_factor:g}"


def continued_steps(d: Draft) -> str:
    """The optimizer steps of the multilingual dense control, from its command (the same in every seed)."""
    for keys in d.layout["seeds"].values():
        if "dense-multi" in keys:
            argv = d.planner.jobs[keys["dense-multi"]].argv
            return argv[argv.index("--steps") + 1]
    return "?"


# ------------------------------------------------------------------------------------ sections
def header_section(d: Draft, wall: float, command: str, machine: dict[str, Any]) -> Lines:
    from .machine import machine_line

    pr, ctx, records = d.pr, d.ctx, d.res.records
    run_wall = sum(float(r.get("wall_seconds") or 0.0) for r in records.values())
    d.results.update({"profile": asdict(pr), "command": command, "machine": machine, "seeds": list(ctx.seeds),
                      "wall_seconds": wall, "runs_wall_seconds": run_wall, "corpus": str(ctx.corpus), "dense": str(ctx.dense),
                      "tables": {}})
    return [f"# Paper tables — profile `{pr.name}`", "",
            f"Command: `{command}`  ", f"Machine: {machine_line(machine)}  ",
            f"Seeds: {list(ctx.seeds)} · wall time of this invocation {wall / 60:.1f} min; sum of the recorded wall times of the "
            f"{len(records)} runs of this benchmark folder {run_wall / 60:.1f} min (runs reused from earlier invocations included; "
            f"a corpus or dense model passed with --corpus/--dense was built elsewhere and is not in it)  ",
            f"Data: {card_line(ctx.corpus)}  ", f"{dense_line(ctx.dense)}  ",
            f"Schedule: target {pr.target:g}, blocks {pr.block}, T = {pr.T} steps per round, n = {pr.n}, p = {pr.p:g} "
            f"(levels {', '.join(f'{x:g}' for x in _levels(0, pr.target, pr.p))}); every compared pipeline trains "
            f"{d.planner.full_rounds * pr.T} steps' worth of language batches per language (upstream pruning included) and "
            f"{pr.T} steps at its final mask (adaptive and Dynamic from {pr.percent(pr.mid)}: no adaptation in the final round); "
            f"seeds: headline {list(ctx.seeds)}, secondary {list(pr.secondary_seeds) if pr.secondary_seeds is not None else 'all'}; "
            f"pruning phases' peak learning rate: the dense run's × {phase_lr_factor()} (`prune --lr-factor`; a warm-up and "
            f"cosine decay per round), and the dense controls train with the same peak; rows of the secondary seeds average "
            f"fewer seeds than the headline rows (the claims table compares each pair on the seeds both have); "
            f"monolingual claim on {', '.join(d.planner.mono_languages)}; evaluation on "
            f"{f'the first {ctx.eval_utts}' if ctx.eval_utts else 'all'} test utterances per language, once per final model, "
            f"decoded with {decoding_label(pr.decoding, pr.beam).replace('_', ' ')} search.", "",
            f"_{pr.note}_", "",
            "Cells: WER % mean ± std over seeds (one value: one seed). Relative reductions: (WER_base − WER) / WER_base of the "
            "macro-average WER, with the seed-level t-interval and the paired bootstrap over test utterances and seeds "
            "(2000 replicates), both 95%. "
            f"distinct hyps % = distinct hypotheses / test utterances of the row's languages (mean over seeds); {DEGENERATE_TEXT}", ""]


def table1_section(d: Draft) -> Lines | None:
    if not any(p in d.ctx.parts for p in ("table1", "demo_mono")):
        return None
    pr = d.pr
    langs = d.planner.mono_languages if d.full else (pr.ablation_language,)
    rows, data, bars = table_rows(d.res, d.layout["seeds"], d.t1, langs, "dense-eval", with_masks=False)
    if not rows:
        return None
    md = ["## Table 1 — monolingual pruning (one model per language)", "",
          markdown_table(["method", *langs, "average", "distinct hyps %"], rows),
          (f"dense mono, continued = θ_ML fine-tuned on each language for {d.planner.full_rounds * pr.T} steps, as many as IMP/LTH "
           "take per language (the control for extra training). " if "dense mono, continued" in data else "")
          + "Adaptive rows start from the masks of the IMP/LTH run at that level and from θ_ML's weights.", ""]
    d.files["wer_table1"] = str(plot_wer_bars(bars, d.plots / "wer_table1.png", "Table 1 — monolingual: WER by method and language",
                                              langs).relative_to(d.out))
    md += [f"![WER, Table 1]({d.files['wer_table1']})", ""]
    d.results["tables"]["table1"] = data
    return md


def table2_section(d: Draft) -> Lines | None:
    if not any(p in d.ctx.parts for p in ("table2", "demo_multi")):
        return None
    langs = d.pr.languages
    rows, data, bars = table_rows(d.res, d.layout["seeds"], d.t2, langs, "dense-eval", with_masks=True)
    if not rows:
        return None
    md = ["## Table 2 — multilingual (one weight set, a pathway per language)", "",
          markdown_table(["method", *langs, "average", "distinct hyps %", "union sparsity %", "mean IoU"], rows),
          "union sparsity = sparsity of the union of all pathways over the prunable weights (the deployed size); mean IoU = "
          "mean pairwise IoU of the final pathways."
          + (f" dense multi, continued = θ_ML trained on {continued_steps(d)} multilingual steps (one batch per language per "
             "step, as the pathway update), the control." if "dense multi, continued" in data else ""), ""]
    d.files["wer_table2"] = str(plot_wer_bars(bars, d.plots / "wer_table2.png", "Table 2 — multilingual: WER by method and language",
                                              langs).relative_to(d.out))
    md += [f"![WER, Table 2]({d.files['wer_table2']})", ""]
    d.results["tables"]["table2"] = data
    return md


def claims_section(d: Draft) -> Lines | None:
    pr, parts = d.pr, d.ctx.parts
    mid, tgt = pr.percent(pr.mid), pr.percent(pr.target)
    if "table1" in parts or "table2" in parts:
        for c in benchmark_claims(pr):
            if ("table1" in parts) if c.mono else ("table2" in parts):
                d.benchmark_claim(c)
    if "demo_mono" in parts:
        d.claim(f"adaptive (IMP-{mid}) vs IMP-{tgt} ({pr.ablation_language})", "imp", pr.method_key("adapt", "imp", pr.mid),
                PAPER["adaptive_vs_imp"], "better", lg=(pr.ablation_language,))
    if "demo_multi" in parts:
        d.claim(f"Dynamic (LTH-{tgt}) vs ASR Pathways", "pathways", pr.method_key("dyn", "lth", pr.target), PAPER["dynamic_vs_pathways"],
                "better")
    if not d.claims:
        return None
    d.results["claims"] = d.claims_data
    from .plots import plot_forest

    rows = forest_rows(d.claims_data)
    d.files["forest"] = str(plot_forest(rows, d.plots / "forest.png", "Every comparison: relative WER reduction").relative_to(d.out))
    return ["## The paper's claims, measured", "",
            markdown_table(CLAIM_HEADER, d.claims, CLAIM_ALIGN),
            "Positive = the method has fewer word errors than the baseline. Seed t-interval: Student t over the per-seed "
            "relative reductions (none with one seed); bootstrap interval: paired bootstrap over test utterances and seeds. "
            "The verdict uses the wider of the two: \"reproduced\" (\"contradicted\") only when it excludes 0 (for ≈ claims: "
            "when the method is not worse than the baseline by more than 5%), there are at least two seeds, the dense model is "
            "at most 25% WER and both arms are within 25% relative of it; otherwise \"not measurable at this budget\" with "
            "the reason. Arms matched: equal language batches (upstream included) and steps at the final mask, from the plan "
            "(`bench/budget.py`); the twins (`--candidates own`) have the same masks, steps and data order without revival. "
            "`control` rows separate the effect of pruning from that of extra training and of deployed size. The forest plot "
            "shows every comparison except those against a dense model (their much larger differences would squash the scale of the rest)."
            + (f" {DEGENERATE_TEXT}" if any(c["degenerate"] for c in d.claims_data) else ""), "",
            f"![forest plot]({d.files['forest']})", ""]


def cost_section(d: Draft) -> Lines | None:
    parts = d.ctx.parts
    if not any(p in parts for p in ("table3", "demo_mono", "demo_multi")):
        return None
    cost_rows, cost_plot, cost_data = [], {}, {}
    for label, name in [*(d.t1 if any(p in parts for p in ("table1", "table3", "demo_mono")) else []),
                        *(d.t2 if any(p in parts for p in ("table2", "table3", "demo_multi")) else [])]:
        if name == "dense-eval" or label in cost_data:
            continue
        per = [d.res.cost(k[name]) for k in d.layout["seeds"].values() if name in k]
        if not per:
            continue
        col = {f: [c[f] for c in per] for f in per[0]}
        share = [c["mask_seconds"] / c["wall_seconds"] if c["wall_seconds"] else math.nan for c in per]
        first = next(k for k in d.layout["seeds"].values() if name in k)
        b = arm_budget(d.planner, first, name)
        cost_rows.append([label, f"{mean_std(col['optimizer_steps'])[0]:.0f}", f"{mean_std(col['language_batches'])[0]:.0f}",
                          str(b.final_mask_steps) if b else "—",
                          fmt_mean_std(col["wall_seconds"], scale=1, digits=1), fmt_mean_std(share, digits=2),
                          f"{mean_std(col['language_specific_pruning_rounds'])[0]:.0f}", f"{mean_std(col['adapt_events'])[0]:.0f}",
                          f"{mean_std(col['score_batches'])[0]:.0f}"])
        cost_plot[label] = {"wall_seconds": col["wall_seconds"], "mask_seconds": col["mask_seconds"]}
        cost_data[label] = col | {"mask_share": share, "final_mask_steps": b.final_mask_steps if b else None,
                                  "planned_language_batches": b.language_batches if b else None}
    if not cost_rows:
        return None
    md = ["## Table 3 — cost of each full pipeline", "",
          markdown_table(["pipeline", "optimizer steps", "language batches", "steps at the final mask", "wall s", "% computing masks",
                          "language-specific pruning rounds", "adaptations", "scoring batches"], cost_rows),
          "Upstream runs included (an adaptive or Dynamic run counts the IMP/LTH/LAP rounds that made its starting masks, "
          "from cost.json `total`); the dense model's training is not. Optimizer steps of multilingual runs each hold one "
          "batch per language (language batches = the compute). Steps at the final mask: steps after the last event that set "
          "a mask (a dense run: all its steps); the arms of a claim have equal language batches and, where the claims table "
          "says so, equal steps at the final mask. Scoring batches: `--scores finetune`'s fine-tunes of a model copy at its "
          "events (forward and backward, not steps of the model; in its wall time, outside the budget match). Dense rows: wall "
          "time measured by the benchmark.", ""]
    d.files["cost"] = str(plot_cost(cost_plot, d.plots / "cost.png", "Table 3 — wall time per pipeline").relative_to(d.out))
    md += [f"![cost]({d.files['cost']})", ""]
    d.results["tables"]["table3"] = cost_data
    return md


def eight_section(d: Draft) -> Lines | None:
    """Table 2 with 8 languages (its own corpus and dense model), with its claims."""
    if not d.layout.get("eight"):
        return None
    pr = d.pr
    e = pr.eight
    assert e is not None
    rows, data, bars = table_rows(d.res, d.layout["eight"], table2_methods(pr), e.languages, "dense-eval8", with_masks=True)
    if not rows:
        return None
    md = ["## Beyond the paper — Table 2 with 8 languages", "",
          f"{card_line(d.ctx.corpus8)}  ", f"{dense_line(d.ctx.dense8)}; seeds {sorted(d.layout['eight'])}.", "",
          markdown_table(["method", *e.languages, "average", "distinct hyps %", "union sparsity %", "mean IoU"], rows), ""]
    d.files["wer_table2_8lang"] = str(plot_wer_bars(bars, d.plots / "wer_table2_8lang.png", "Table 2, 8 languages: WER",
                                                    e.languages).relative_to(d.out))
    md += [f"![WER, 8 languages]({d.files['wer_table2_8lang']})", ""]
    d.results["tables"]["table2_8lang"] = data
    mid, tgt = pr.percent(pr.mid), pr.percent(pr.target)
    before = len(d.claims)
    d.claim(f"8 languages: Dynamic (LTH-{mid}) vs ASR Pathways", "pathways", pr.method_key("dyn", "lth", pr.mid),
            PAPER["dynamic_vs_pathways"], "better", sk=d.layout["eight"], lg=e.languages, de="dense-eval8")
    d.claim(f"8 languages: Dynamic (LAP-{mid}) vs ASR Pathways (LTH-{tgt})", "pathways", pr.method_key("dyn", "lap", pr.mid),
            PAPER["lap_adapt_vs_lth"], "approx", sk=d.layout["eight"], lg=e.languages, de="dense-eval8")
    d.claim(f"8 languages: Dynamic (LTH-{mid}) vs its --candidates own twin", pr.method_key("dyn", "lth", pr.mid) + "-own",
            pr.method_key("dyn", "lth", pr.mid), "—", "better", sk=d.layout["eight"], lg=e.languages, de="dense-eval8", role="twin")
    if len(d.claims) > before:
        md += [markdown_table(CLAIM_HEADER, d.claims[before:], CLAIM_ALIGN), ""]
        d.results["claims"] = d.claims_data
        from .plots import plot_forest  # every comparison, these included

        d.files["forest"] = str(plot_forest(forest_rows(d.claims_data), d.plots / "forest.png",
                                            "Every comparison: relative WER reduction").relative_to(d.out))
    return md
