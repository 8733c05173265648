"""The report of `asr-pathways bench` (:mod:`benchmarks.paper`): reads the finished runs and writes
``OUT/report.md``, ``OUT/results.json`` and ``OUT/plots/*.png`` (and the BENCHMARKS.md section).

Every number comes from the runs' own files: ``hyps_test.jsonl`` (per-utterance word errors, the
WER of every cell and the paired bootstrap; the share of distinct hypotheses), ``masks_summary.json`` (union sparsity, IoU),
``history.jsonl`` (weights revived and dropped), ``cost.json`` (Table 3) and the benchmark's
``bench_job.json`` records (wall time of the dense fine-tuning runs).

Degenerate output: a run whose hypotheses are not transcripts (a model that emits one token, or
nothing, for most utterances) is flagged by :func:`asr_pathways.metrics.hypothesis_diversity`: in some
evaluated language (or over all of them) fewer than 50% of the utterances have distinct hypotheses, or more than 50% are
empty (the test sentences are all different). The tables show the share of distinct hypotheses of
every row; a comparison (claims, ablations) with a degenerate arm prints "degenerate output (N%
distinct hypotheses): not compared" instead of a relative reduction, and is left out of the "Why"
section. results.json keeps the raw numbers with ``degenerate`` flags.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from asr_pathways.metrics import DEGENERATE_MAX_EMPTY_SHARE, DEGENERATE_MIN_DISTINCT_SHARE
from benchmarks.paper import PAPER, Context, Planner, Profile, _levels

# ------------------------------------------------------------------------------------ collect
DEGENERATE_TEXT = (f"⚠ degenerate = in some language (or over all of them) fewer than {100 * DEGENERATE_MIN_DISTINCT_SHARE:.0f}% of the test utterances "
                   f"get distinct hypotheses or more than {100 * DEGENERATE_MAX_EMPTY_SHARE:.0f}% get an empty one (the test sentences are all different): the model emits the same few strings, its WER "
                   "says nothing about the method, and comparisons with it are not made.")
METHOD_LABELS_T1 = [
    ("dense θ_ML", "dense-eval"), ("dense mono, continued", "dense-mono"), ("IMP-70%", "imp"), ("LTH-70%", "lth"),
    ("adaptive from IMP-50%", "adapt-imp50"), ("adaptive from IMP-70%", "adapt-imp70"),
    ("adaptive from LTH-50%", "adapt-lth50"), ("adaptive from LTH-70%", "adapt-lth70"),
]
METHOD_LABELS_T2 = [
    ("dense θ_ML", "dense-eval"), ("dense multi, continued", "dense-multi"), ("LAP-70%", "lap"),
    ("ASR Pathways (LTH-70%)", "pathways"), ("Dynamic from LTH-50%", "dyn-lth50"), ("Dynamic from LTH-70%", "dyn-lth70"),
    ("Dynamic from LAP-50%", "dyn-lap50"), ("Dynamic from LAP-70%", "dyn-lap70"),
]
METHOD_LABELS_DEMO_MONO = [("dense θ_ML", "dense-eval"), ("IMP-70%", "imp"), ("adaptive from IMP-50%", "adapt-imp50")]
METHOD_LABELS_DEMO_MULTI = [("dense θ_ML", "dense-eval"), ("ASR Pathways (LTH-70%)", "pathways"), ("Dynamic from LTH-70%", "dyn-lth70")]


def _relabel(labels: list[tuple[str, str]], pr: Profile) -> list[tuple[str, str]]:
    """Names of keys follow the profile's levels (mid/target), labels too."""
    mid, tgt = round(100 * pr.mid), round(100 * pr.target)
    out = []
    for label, key in labels:
        label = label.replace("50%", f"{mid}%").replace("70%", f"{tgt}%")
        key = key.replace("50", str(mid)).replace("70", str(tgt)) if key.startswith(("adapt-", "dyn-")) else key
        out.append((label, key))
    return out


class Results:
    """Reads the finished runs: per-utterance errors, WER, masks summaries, history and cost."""

    def __init__(self, planner: Planner, layout: dict[str, Any], records: dict[str, dict[str, Any]]) -> None:
        self.pl = planner
        self.layout = layout
        self.records = records
        self._scores: dict[str, Any] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._diversity: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}

    def folder(self, key: str) -> Path:
        return self.pl.jobs[key].folder

    def scores(self, key: str | list[str]) -> dict[str, dict[str, tuple[int, int]]]:
        from asr_pathways.report import read_hyps

        if isinstance(key, list):
            merged: dict[str, Any] = {}
            for k in key:
                merged.update(self.scores(k))
            return merged
        if key not in self._scores:
            self._scores[key] = read_hyps(self.folder(key) / "hyps_test.jsonl")
        return self._scores[key]

    def rows(self, key: str | list[str]) -> list[dict[str, Any]]:
        """The lines of the run's ``hyps_test.jsonl`` (id, language, ref, hyp); a list of runs (one per language): all of them."""
        if isinstance(key, list):
            return [r for k in key for r in self.rows(k)]
        if key not in self._rows:
            p = self.folder(key) / "hyps_test.jsonl"
            self._rows[key] = [json.loads(l) for l in p.read_text().splitlines() if l.strip()]
        return self._rows[key]

    def diversity(self, key: str | list[str], langs: tuple[str, ...] | list[str]) -> dict[str, Any]:
        """:func:`asr_pathways.metrics.hypothesis_diversity` of one run (or runs, one per language) on ``langs``."""
        from asr_pathways.metrics import hypothesis_diversity

        k = (tuple(key) if isinstance(key, list) else (key,), tuple(langs))
        if k not in self._diversity:
            self._diversity[k] = hypothesis_diversity(self.rows(key), languages=langs)
        return self._diversity[k]

    def method_keys(self, keys: dict[int, dict[str, Any]], name: str, dense_eval: str = "dense-eval") -> dict[int, Any]:
        """seed → run key of one method (θ_ML's evaluation for every seed)."""
        out = {}
        for seed, k in keys.items():
            if name == "dense-eval":
                out[seed] = dense_eval
            elif name in k:
                out[seed] = k[name]
        return out

    def method_diversity(self, keys: dict[int, dict[str, Any]], name: str, langs: tuple[str, ...] | list[str],
                         dense_eval: str = "dense-eval") -> dict[int, dict[str, Any]]:
        """seed → hypothesis diversity of one method on ``langs``."""
        return {s: self.diversity(k, langs) for s, k in self.method_keys(keys, name, dense_eval).items()}

    def method_scores(self, keys: dict[int, dict[str, Any]], name: str, dense_eval: str = "dense-eval") -> dict[int, Any]:
        """seed → per-utterance scores of one method (θ_ML's scores repeated for every seed)."""
        out = {}
        for seed, k in keys.items():
            if name == "dense-eval":
                out[seed] = self.scores(dense_eval)
            elif name in k:
                out[seed] = self.scores(k[name])
        return out

    def summary(self, key: str) -> dict[str, Any]:
        p = self.folder(key) / "masks_summary.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def cost(self, key: str | list[str]) -> dict[str, float]:
        """Optimizer steps, batches, wall and mask seconds, language-specific pruning rounds (upstream included)."""
        keys = key if isinstance(key, list) else [key]
        tot = {"optimizer_steps": 0.0, "language_batches": 0.0, "wall_seconds": 0.0, "mask_seconds": 0.0,
               "language_specific_pruning_rounds": 0.0, "adapt_events": 0.0}
        for k in keys:
            job = self.pl.jobs[k]
            cf = job.folder / "cost.json"
            if cf.is_file():
                c = json.loads(cf.read_text())
                for f in ("optimizer_steps", "language_batches", "wall_seconds", "mask_seconds", "language_specific_pruning_rounds"):
                    tot[f] += float(c["total"].get(f, 0))
                tot["adapt_events"] += float(c["own"].get("adapt_events", 0))
            else:  # a train run: steps and batches from the plan, wall time from the benchmark's record
                rec = self.records.get(k) or {}
                multi = "--languages-per-step" in job.argv and job.argv[job.argv.index("--languages-per-step") + 1] == "0"
                steps = job.batches // max(1, len(job.languages)) if multi else job.batches
                tot["optimizer_steps"] += steps
                tot["language_batches"] += job.batches
                tot["wall_seconds"] += float(rec.get("wall_seconds") or math.nan)
        return tot

    def history(self, key: str) -> list[dict[str, Any]]:
        from asr_pathways.methods.common import read_history

        return read_history(self.folder(key))


def degenerate_note(arms: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any] | None:
    """``None`` when no run of any arm is degenerate; else the message and the numbers behind it.

    ``arms``: arm name → seed → :func:`asr_pathways.metrics.hypothesis_diversity`. The message gives the
    lowest share of distinct hypotheses of a degenerate language (or of a degenerate run's pooled
    hypotheses) among the degenerate runs, and their empty share when more than half are empty."""
    def numbers(v: dict[str, Any]) -> dict[str, Any]:
        return {f: v[f] for f in ("distinct_share", "empty_share", "most_common", "most_common_share")}

    bad: dict[str, dict[str, Any]] = {}
    for arm, per_seed in arms.items():
        for seed, d in per_seed.items():
            if d.get("degenerate"):  # the degenerate languages, or the pooled numbers when only those are
                langs = {l: numbers(v) for l, v in d["per_language"].items() if v["degenerate"]}
                bad.setdefault(arm, {})[str(seed)] = langs or {"all": numbers(d)}
    if not bad:
        return None
    worst = [v for per_seed in bad.values() for per_lang in per_seed.values() for v in per_lang.values()]
    distinct = min(v["distinct_share"] for v in worst)
    empty = max(v["empty_share"] for v in worst)
    extra = f", {100 * empty:.0f}% empty" if empty > DEGENERATE_MAX_EMPTY_SHARE else ""
    return {"message": f"degenerate output ({100 * distinct:.0f}% distinct hypotheses{extra}): not compared",
            "arms": sorted(bad), "runs": bad, "distinct_share": distinct, "empty_share": empty}


def _fmt_distinct(divs: dict[int, dict[str, Any]]) -> str:
    """Mean share of distinct hypotheses over seeds (%), with a mark when a run is degenerate."""
    from asr_pathways.report import fmt_mean_std

    if not divs:
        return "—"
    cell = fmt_mean_std([d["distinct_share"] for d in divs.values()], digits=0)
    return cell + (" ⚠ degenerate" if any(d["degenerate"] for d in divs.values()) else "")


def _fmt_rel(r: dict[str, Any]) -> str:
    if r is None or math.isnan(r.get("relative", math.nan)):
        return "—"
    lo, hi = r["ci"]
    return f"{100 * r['relative']:+.1f}% [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def _verdict(r: dict[str, Any], kind: str) -> str:
    lo, hi = r["ci"]
    if kind == "approx":
        return "consistent (CI contains 0)" if lo <= 0 <= hi else ("better than the baseline" if lo > 0 else "worse than the baseline")
    if lo > 0:
        return "reproduced (CI above 0)"
    if hi < 0:
        return "contradicted (CI below 0)"
    return "not resolved (CI contains 0)"


def table_rows(res: Results, seeds_keys: dict[int, dict[str, Any]], labels: list[tuple[str, str]], langs: tuple[str, ...],
               dense_eval: str, with_masks: bool) -> tuple[list[list[str]], dict[str, Any], dict[str, dict[str, list[float]]]]:
    from asr_pathways.report import fmt_mean_std, language_wer, macro_wer

    rows, data, bars = [], {}, {}
    for label, name in labels:
        sc = res.method_scores(seeds_keys, name if name != "dense-mono" else "__mono__", dense_eval)
        if name == "dense-mono":
            sc = {s: res.scores(k["dense-mono"]) for s, k in seeds_keys.items() if "dense-mono" in k}
        if not sc:
            continue
        per_lang = {l: [language_wer(sc[s][l]) for s in sc if l in sc[s]] for l in langs}
        avg = [macro_wer(sc[s], langs) for s in sc]
        bars[label] = {**per_lang, "average": avg}
        if name == "dense-mono":
            div = {s: res.diversity(k["dense-mono"], langs) for s, k in seeds_keys.items() if "dense-mono" in k}
        else:
            div = res.method_diversity(seeds_keys, name, langs, dense_eval)
        row = [label] + [fmt_mean_std(per_lang[l]) for l in langs] + [f"**{fmt_mean_std(avg)}**", _fmt_distinct(div)]
        entry: dict[str, Any] = {
            "key": name, "wer": per_lang, "average": avg, "seeds": list(sc),
            "distinct_share": [d["distinct_share"] for d in div.values()],
            "distinct_share_per_language": {l: [d["per_language"][l]["distinct_share"] for d in div.values() if l in d["per_language"]]
                                            for l in langs},
            "empty_share": [d["empty_share"] for d in div.values()],
            "most_common_hypothesis": [[d["most_common"], d["most_common_share"]] for d in div.values()],
            "degenerate": any(d["degenerate"] for d in div.values()),
        }
        if with_masks:
            us, io = [], []
            for s, k in seeds_keys.items():
                if name in k and not name.startswith("dense"):
                    summ = res.summary(k[name])
                    if summ:
                        us.append(summ.get("union_sparsity", math.nan))
                        vals = list(summ.get("iou", {}).values())
                        io.append(sum(vals) / len(vals) if vals else 1.0)
            if name.startswith("dense"):
                us, io = [0.0], [1.0]
            row += [fmt_mean_std(us, digits=1), fmt_mean_std(io, scale=1, digits=3)]
            entry |= {"union_sparsity": us, "mean_iou": io}
        rows.append(row)
        data[label] = entry
    return rows, data, bars


def compare(res: Results, seeds_keys: dict[int, dict[str, Any]], base: str, method: str, langs: tuple[str, ...], dense_eval: str) -> dict[str, Any] | None:
    from asr_pathways.report import paired_bootstrap

    def get(name: str) -> dict[int, Any]:
        if name == "dense-mono":
            return {s: res.scores(k["dense-mono"]) for s, k in seeds_keys.items() if "dense-mono" in k}
        return res.method_scores(seeds_keys, name, dense_eval)

    b, m = get(base), get(method)
    if not b or not m or not (set(b) & set(m)):
        return None
    r = paired_bootstrap(b, m, languages=list(langs))

    def div(name: str) -> dict[int, dict[str, Any]]:
        if name == "dense-mono":
            return {s: res.diversity(k["dense-mono"], langs) for s, k in seeds_keys.items() if "dense-mono" in k and s in r["seeds"]}
        return {s: d for s, d in res.method_diversity(seeds_keys, name, langs, dense_eval).items() if s in r["seeds"]}

    db, dm = div(base), div(method)
    note = degenerate_note({base: db, method: dm})
    r["distinct_share_base"] = [d["distinct_share"] for d in db.values()]
    r["distinct_share_method"] = [d["distinct_share"] for d in dm.values()]
    r["degenerate"] = note is not None
    if note is not None:
        r["degenerate_note"] = note
    return r


# ------------------------------------------------------------------------------------ report
def module_of(name: str) -> str:
    """``encoder.layers.3.ff1.linear1.weight`` → ``enc3.ff``; ``joiner.output.weight`` → ``joiner``."""
    import re

    m = re.match(r"encoder\.layers\.(\d+)\.([a-z_]+?)\d*\.", name)
    if m:
        kind = {"self_attn": "attn", "ff": "ff", "conv": "conv"}.get(m.group(2), m.group(2))
        return f"enc{m.group(1)}.{kind}"
    return name.split(".")[0]


def _module_order(g: str) -> tuple[int, int, str]:
    import re

    m = re.match(r"enc(\d+)\.(.*)", g)
    return (0, int(m.group(1)), m.group(2)) if m else (1, 0, g)


def _card_line(corpus: Path) -> str:
    try:
        card = json.loads((corpus / "card.json").read_text())
    except (OSError, json.JSONDecodeError):
        return f"corpus {corpus}"
    parts = []
    for l, per in card.get("languages", {}).items():
        tr, te = per.get("train", {}), per.get("test", {})
        parts.append(f"{l} {tr.get('hours', 0):.2f} h train / {te.get('utterances', 0)} test utts")
    return f"corpus `{corpus}`: " + "; ".join(parts)


def _dense_line(dense: Path) -> str:
    try:
        from asr_pathways.train import read_run_config

        rc = read_run_config(dense)
        meta = json.loads((dense / "checkpoint.json").read_text()) if (dense / "checkpoint.json").is_file() else {}
        step = meta.get("step", rc.train.get("steps"))
        return f"dense θ_ML `{dense}`: preset {rc.preset}, {step} steps, languages {','.join(rc.languages)}"
    except Exception:  # noqa: BLE001 - a description only
        return f"dense θ_ML `{dense}`"


def build_report(planner: Planner, layout: dict[str, Any], records: dict[str, dict[str, Any]], ctx: Context,
                 wall: float, command: str) -> dict[str, Any]:
    """Tables (JSON + Markdown) and plots into ``OUT/report.md``, ``OUT/results.json``, ``OUT/plots/``."""
    from asr_pathways.io import atomic_write_json, atomic_write_text
    from asr_pathways.report import fmt_mean_std, markdown_table, mean_std, plot_cost, plot_mask_changes, plot_wer_bars

    from benchmarks.common import machine_info, machine_line

    pr = ctx.profile
    res = Results(planner, layout, records)
    out = ctx.out
    plots = out / "plots"
    langs = pr.languages
    seeds_keys = layout["seeds"]
    machine = machine_info()
    run_wall = sum(float(r.get("wall_seconds") or 0.0) for r in records.values())
    md: list[str] = [f"# Paper tables — profile `{pr.name}`", ""]
    md += [f"Command: `{command}`  ", f"Machine: {machine_line(machine)}  ", f"Seeds: {list(ctx.seeds)} · wall time of this invocation {wall / 60:.1f} min; sum of the recorded wall times of all "
           f"{len(records)} runs (cached ones included, dense training and corpus too) {run_wall / 60:.1f} min  ",
           f"Data: {_card_line(ctx.corpus)}  ", f"{_dense_line(ctx.dense)}  ",
           f"Schedule: target {pr.target:g}, blocks {pr.block}, T = {pr.T} steps per round, n = {pr.n}, p = {pr.p:g} "
           f"(levels {', '.join(f'{x:g}' for x in _levels(0, pr.target, pr.p))}); adaptive phases and ASR Pathways train "
           f"{planner.R * pr.T} steps; evaluation on {f'the first {ctx.eval_utts}' if ctx.eval_utts else 'all'} test utterances per language.", "",
           f"_{pr.note}_", "",
           "Cells: WER % mean ± std over seeds (one value: one seed). Relative reductions: (WER_base − WER) / WER_base of the "
           "macro-average WER, with the 95% CI of a paired bootstrap over test utterances and seeds (2000 replicates). "
           f"distinct hyps % = distinct hypotheses / test utterances of the row's languages (mean over seeds); {DEGENERATE_TEXT}", ""]
    results: dict[str, Any] = {"profile": asdict(pr), "command": command, "machine": machine, "seeds": list(ctx.seeds),
                               "wall_seconds": wall, "runs_wall_seconds": run_wall, "corpus": str(ctx.corpus), "dense": str(ctx.dense), "tables": {}}
    claims: list[list[str]] = []
    claims_data: list[dict[str, Any]] = []
    files: dict[str, str] = {}
    label_of: dict[str, str] = {}  # method key → its label in the tables (filled below)

    def claim(title: str, base: str, method: str, paper: str, kind: str, sk=seeds_keys, lg=langs, de="dense-eval") -> None:
        r = compare(res, sk, base, method, lg, de)
        if r is None:
            return
        if r["degenerate"]:
            r["degenerate_note"]["labels"] = [label_of.get(a, a) for a in r["degenerate_note"]["arms"]]
            arms = " and ".join(r["degenerate_note"]["labels"])
            claims.append([title, paper, r["degenerate_note"]["message"], "—", f"not compared ({arms}: degenerate output)"])
        else:
            claims.append([title, paper, _fmt_rel(r), f"{100 * r['mean']:+.1f} ± {100 * r['std']:.1f}" if len(r["seeds"]) > 1 else f"{100 * r['mean']:+.1f}",
                           _verdict(r, kind)])
        claims_data.append({"title": title, "base": base, "method": method, "paper": paper, "kind": kind, **r})

    # ----- Table 1
    full = any(p in ctx.parts for p in ("table1", "table2", "table3", "ablations"))
    t1_labels = _relabel(METHOD_LABELS_T1 if full else METHOD_LABELS_DEMO_MONO, pr)
    t1_langs = langs if full else (pr.ablation_language,)
    if any(p in ctx.parts for p in ("table1", "demo_mono")):
        rows, data, bars = table_rows(res, seeds_keys, t1_labels, t1_langs, "dense-eval", with_masks=False)
        if rows:
            md += ["## Table 1 — monolingual pruning (one model per language)", "",
                   markdown_table(["method", *t1_langs, "average", "distinct hyps %"], rows),
                   (f"dense mono, continued = θ_ML fine-tuned on each language for {planner.full_rounds * pr.T} steps, as many as IMP/LTH "
                    "take per language (the control for extra training). " if "dense mono, continued" in data else "")
                   + "Adaptive rows start from the masks of the IMP/LTH run at that level and from θ_ML's weights.", ""]
            files["wer_table1"] = str(plot_wer_bars(bars, plots / "wer_table1.png", "Table 1 — monolingual: WER by method and language", t1_langs).relative_to(out))
            md += [f"![WER, Table 1]({files['wer_table1']})", ""]
            results["tables"]["table1"] = data
    # ----- Table 2
    t2_labels = _relabel(METHOD_LABELS_T2 if full else METHOD_LABELS_DEMO_MULTI, pr)
    label_of.update({n: l for l, n in [*t2_labels, *t1_labels]})
    if any(p in ctx.parts for p in ("table2", "demo_multi")):
        rows, data, bars = table_rows(res, seeds_keys, t2_labels, langs, "dense-eval", with_masks=True)
        if rows:
            md += ["## Table 2 — multilingual (one weight set, a pathway per language)", "",
                   markdown_table(["method", *langs, "average", "distinct hyps %", "union sparsity %", "mean IoU"], rows),
                   "union sparsity = sparsity of the union of all pathways over the prunable weights (the deployed size); mean IoU = "
                   "mean pairwise IoU of the final pathways."
                   + (f" dense multi, continued = θ_ML trained on {planner.R * pr.T} multilingual steps (one batch per language per "
                      "step, as the pathway update), the control." if "dense multi, continued" in data else ""), ""]
            files["wer_table2"] = str(plot_wer_bars(bars, plots / "wer_table2.png", "Table 2 — multilingual: WER by method and language", langs).relative_to(out))
            md += [f"![WER, Table 2]({files['wer_table2']})", ""]
            results["tables"]["table2"] = data
    # ----- claims
    mid, tgt = round(100 * pr.mid), round(100 * pr.target)
    if "table1" in ctx.parts:
        claim(f"adaptive (IMP-{mid}%) vs IMP-{tgt}%", "imp", f"adapt-imp{mid}", PAPER["adaptive_vs_imp"], "better")
        claim(f"adaptive (IMP-{tgt}%) vs IMP-{tgt}%", "imp", f"adapt-imp{tgt}", PAPER["adaptive_vs_imp"], "better")
        claim(f"adaptive (LTH-{mid}%) vs LTH-{tgt}%", "lth", f"adapt-lth{mid}", PAPER["adaptive_vs_imp"], "better")
        claim(f"adaptive (LTH-{tgt}%) vs LTH-{tgt}%", "lth", f"adapt-lth{tgt}", PAPER["adaptive_vs_imp"], "better")
        claim(f"control: IMP-{tgt}% vs dense mono continued", "dense-mono", "imp", "—", "approx")
        claim(f"control: adaptive (IMP-{mid}%) vs dense mono continued", "dense-mono", f"adapt-imp{mid}", "—", "approx")
        claim("control: dense mono continued vs θ_ML", "dense-eval", "dense-mono", "—", "approx")
    if "demo_mono" in ctx.parts:
        claim(f"adaptive (IMP-{mid}%) vs IMP-{tgt}% ({pr.ablation_language})", "imp", f"adapt-imp{mid}", PAPER["adaptive_vs_imp"], "better", lg=t1_langs)
    if "table2" in ctx.parts:
        claim(f"Dynamic (LTH-{mid}%) vs ASR Pathways", "pathways", f"dyn-lth{mid}", PAPER["dynamic_vs_pathways"], "better")
        claim(f"Dynamic (LTH-{tgt}%) vs ASR Pathways", "pathways", f"dyn-lth{tgt}", PAPER["dynamic_vs_pathways"], "better")
        claim(f"Dynamic (LAP-{tgt}%) vs ASR Pathways (LTH-{tgt}%)", "pathways", f"dyn-lap{tgt}", PAPER["lap_adapt_vs_lth"], "approx")
        claim(f"Dynamic (LAP-{mid}%) vs ASR Pathways (LTH-{tgt}%)", "pathways", f"dyn-lap{mid}", PAPER["lap_adapt_vs_lth"], "approx")
        claim(f"Dynamic (LAP-{tgt}%) vs Dynamic (LTH-{tgt}%)", f"dyn-lth{tgt}", f"dyn-lap{tgt}", PAPER["lap_adapt_vs_lth"], "approx")
        claim("control: ASR Pathways vs dense multi continued", "dense-multi", "pathways", "—", "approx")
        claim(f"control: Dynamic (LTH-{mid}%) vs dense multi continued", "dense-multi", f"dyn-lth{mid}", "—", "approx")
        claim("control: dense multi continued vs θ_ML", "dense-eval", "dense-multi", "—", "approx")
    if "demo_multi" in ctx.parts:
        claim(f"Dynamic (LTH-{tgt}%) vs ASR Pathways", "pathways", f"dyn-lth{tgt}", PAPER["dynamic_vs_pathways"], "better")
    if claims:
        md += ["## The paper's claims, measured", "",
               markdown_table(["comparison", "paper", "ours: relative reduction [95% CI]", "per seed mean ± std", "verdict"], claims,
                              ["l", "r", "r", "r", "l"]),
               "Positive = the method has fewer word errors than the baseline. `control` rows separate the effect of pruning from "
               "that of extra training." + (f" {DEGENERATE_TEXT}" if any(c["degenerate"] for c in claims_data) else ""), ""]
        results["claims"] = claims_data
    # ----- Table 3
    cost_rows, cost_plot, cost_data = [], {}, {}
    if any(p in ctx.parts for p in ("table3", "demo_mono", "demo_multi")):
        for label, name in [*(t1_labels if any(p in ctx.parts for p in ("table1", "table3", "demo_mono")) else []),
                            *(t2_labels if any(p in ctx.parts for p in ("table2", "table3", "demo_multi")) else [])]:
            if name == "dense-eval" or label in cost_data:
                continue
            per = []
            for s, k in seeds_keys.items():
                if name in k:
                    per.append(res.cost(k[name]))
            if not per:
                continue
            col = {f: [c[f] for c in per] for f in per[0]}
            share = [c["mask_seconds"] / c["wall_seconds"] if c["wall_seconds"] else math.nan for c in per]
            cost_rows.append([label, f"{mean_std(col['optimizer_steps'])[0]:.0f}", f"{mean_std(col['language_batches'])[0]:.0f}",
                              fmt_mean_std(col["wall_seconds"], scale=1, digits=1), fmt_mean_std(share, digits=2),
                              f"{mean_std(col['language_specific_pruning_rounds'])[0]:.0f}", f"{mean_std(col['adapt_events'])[0]:.0f}"])
            cost_plot[label] = {"wall_seconds": col["wall_seconds"], "mask_seconds": col["mask_seconds"]}
            cost_data[label] = col | {"mask_share": share}
        if cost_rows:
            md += ["## Table 3 — cost of each full pipeline", "",
                   markdown_table(["pipeline", "optimizer steps", "language batches", "wall s", "% computing masks",
                                   "language-specific pruning rounds", "adaptations"], cost_rows),
                   "Upstream runs included (an adaptive or Dynamic run counts the IMP/LTH/LAP rounds that made its starting masks, "
                   "from cost.json `total`); the dense model's training is not. Optimizer steps of multilingual runs each hold one "
                   "batch per language (language batches = the compute). Dense rows: wall time measured by the benchmark.", ""]
            files["cost"] = str(plot_cost(cost_plot, plots / "cost.png", "Table 3 — wall time per pipeline").relative_to(out))
            md += [f"![cost]({files['cost']})", ""]
            results["tables"]["table3"] = cost_data
    # ----- masks: sparsity per layer, overlap, revived/dropped
    first = min(seeds_keys) if seeds_keys else None
    if first is not None:
        from asr_pathways.sparsity.masks import MaskSet
        from asr_pathways.sparsity.report import mask_report, plot_overlap, plot_sparsity_per_layer, write_report

        k = seeds_keys[first]
        shown = [(n, l) for l, n in [*t2_labels, *t1_labels] if n in k and not n.startswith("dense")]
        mask_runs = []
        for want in ("pathways", f"dyn-lth{mid}", f"dyn-lap{tgt}", f"dyn-lth{tgt}"):
            for name, label in shown:
                if name == want and len(mask_runs) < 3 and name not in [m for m, _ in mask_runs]:
                    mask_runs.append((name, label))
        for name, label in mask_runs:
            folder = res.folder(k[name]) / "masks"
            ms = {l: MaskSet.load(folder / f"{l}.safetensors") for l in langs if (folder / f"{l}.safetensors").is_file()}
            if not ms:
                continue
            rep = mask_report(ms)
            folder_out = plots / f"masks-{name}"
            write_report(rep, folder_out, title=f"{label} (seed {first})", plots=False)  # report.json/.md: every matrix
            coarse = mask_report(ms, groups=module_of)  # the plot: one row per layer and module kind (readable at any depth)
            rows = sorted(coarse["union"]["per_group"], key=_module_order)
            files[f"masks-{name}"] = str(plot_sparsity_per_layer({
                "matrices": rows, "languages": coarse["languages"],
                "pathways": {l: {"per_matrix": coarse["pathways"][l]["per_group"]} for l in coarse["languages"]},
                "union": {"per_matrix": coarse["union"]["per_group"]},
            }, folder_out / "sparsity_per_layer.png").relative_to(out))
            files[f"overlap-{name}"] = str(plot_overlap(rep, folder_out / "overlap_iou.png").relative_to(out))
        if mask_runs:
            md += ["## Masks (seed %d)" % first, ""]
            for name, label in mask_runs:
                if f"masks-{name}" in files:
                    md += [f"**{label}**: sparsity per layer and module kind (every matrix, the union and the IoU in "
                           f"`{Path(files[f'masks-{name}']).parent}/report.md`), and the overlap between languages.", "",
                           f"![sparsity per layer, {label}]({files[f'masks-{name}']}) ![overlap, {label}]({files[f'overlap-{name}']})", ""]
        hist_runs = {}
        for name in (f"adapt-imp{mid}", f"dyn-lth{mid}" if f"dyn-lth{mid}" in k else f"dyn-lth{tgt}", f"dyn-lap{tgt}"):
            if name in k:
                lab = dict((n, l) for l, n in [*t1_labels, *t2_labels]).get(name, name)
                rows_h = [r for r in res.history(k[name]) if r.get("run", "") in ("", ) or name.startswith("adapt")]
                hist_runs[f"{lab} (seed {first})"] = rows_h
        if hist_runs:
            files["mask_changes"] = str(plot_mask_changes(hist_runs, plots / "mask_changes.png").relative_to(out))
            md += ["## Weights revived and dropped over training", "",
                   "Every adapt/prune event: bars above 0 = weights revived (pruned before, kept after), below 0 (hatched) = dropped, "
                   "as % of the prunable weights, one colour per language (history.jsonl).", "",
                   f"![revived and dropped]({files['mask_changes']})", ""]
    # ----- ablations
    if layout.get("ablations"):
        from asr_pathways.report import macro_wer, paired_bootstrap

        abl_rows, abl_data = [], {}
        A = pr.ablation_language if pr.ablation_language in langs else langs[0]
        names = list(next(iter(layout["ablations"].values())))
        for short in names:
            per_seed_m, per_seed_b, desc, hist = {}, {}, "", []
            for s, d in layout["ablations"].items():
                key, base_key, desc = d[short]
                if key not in planner.jobs or base_key not in planner.jobs:
                    continue
                per_seed_m[s] = res.scores(key)
                per_seed_b[s] = res.scores(base_key)
                hist += res.history(key)
            if not per_seed_m:
                continue
            lg = [A] if not short.startswith("dyn") else list(langs)
            ids = {l: list(next(iter(per_seed_m.values())).get(l, {})) for l in lg}
            wm = [macro_wer(per_seed_m[s], lg, ids) for s in per_seed_m]
            wb = [macro_wer(per_seed_b[s], lg, ids) for s in per_seed_b]
            r = paired_bootstrap(per_seed_b, per_seed_m, languages=lg)
            note = degenerate_note({
                "base": {s: res.diversity(d[short][1], lg) for s, d in layout["ablations"].items() if s in per_seed_b},
                "ablation": {s: res.diversity(d[short][0], lg) for s, d in layout["ablations"].items() if s in per_seed_m},
            })
            rv = sum(h.get("revived", 0) for h in hist if h.get("kind") in ("adapt", "prune"))
            sp = [h.get("sparsity") for h in hist if h.get("kind") in ("adapt", "prune", "finalize")]
            cost = [res.cost(d[short][0])["wall_seconds"] for d in layout["ablations"].values()]
            abl_rows.append([desc, fmt_mean_std(wb), fmt_mean_std(wm), note["message"] if note else _fmt_rel(r), f"{100 * sp[-1]:.1f}" if sp else "—",
                             f"{rv / max(1, len(per_seed_m)):,.0f}", fmt_mean_std(cost, scale=1, digits=0)])
            abl_data[short] = {"description": desc, "wer_base": wb, "wer": wm, "relative": r, "revived_per_seed": rv / max(1, len(per_seed_m)),
                               "degenerate": note is not None, **({"degenerate_note": note} if note else {})}
        if abl_rows:
            md += ["## Ablations", "",
                   f"Monolingual ablations change one option of adaptive masking from IMP-{mid}% on {A} (base = that language in the "
                   f"Table 1 run, the same run except for the option; WER on {pr.ablation_eval_utts or 'all'} utterances); the Dynamic "
                   "ablations change one option of a Table 2 run. Block and scope ablations start from the 8x1 layer-wise IMP masks and "
                   "re-select with the ablated shape/scope at the first adaptation. The IMP row changes the round length of the baseline "
                   "itself (base: IMP-70% in Table 1): how much of the cost of pruning is too little recovery time. Seeds: "
                   f"{sorted(layout['ablations'])}.", "",
                   markdown_table(["ablation", "base WER %", "WER %", "relative reduction vs base [95% CI]", "final sparsity %",
                                   "weights revived", "wall s"], abl_rows), ""]
            results["tables"]["ablations"] = abl_data
    # ----- 8 languages
    if layout.get("eight"):
        e = pr.eight
        assert e is not None
        t8 = _relabel(METHOD_LABELS_T2, pr)
        rows, data, bars = table_rows(res, layout["eight"], [(l, n if n == "dense-eval" else n) for l, n in t8], e.languages,
                                      "dense-eval8", with_masks=True)
        if rows:
            md += ["## Beyond the paper — Table 2 with 8 languages", "",
                   f"{_card_line(ctx.corpus8)}  ", f"{_dense_line(ctx.dense8)}; seeds {sorted(layout['eight'])}.", "",
                   markdown_table(["method", *e.languages, "average", "distinct hyps %", "union sparsity %", "mean IoU"], rows), ""]
            files["wer_table2_8lang"] = str(plot_wer_bars(bars, plots / "wer_table2_8lang.png", "Table 2, 8 languages: WER", e.languages).relative_to(out))
            md += [f"![WER, 8 languages]({files['wer_table2_8lang']})", ""]
            results["tables"]["table2_8lang"] = data
            before = len(claims)
            claim(f"8 languages: Dynamic (LTH-{mid}%) vs ASR Pathways", "pathways", f"dyn-lth{mid}", PAPER["dynamic_vs_pathways"], "better",
                  sk=layout["eight"], lg=e.languages, de="dense-eval8")
            claim(f"8 languages: Dynamic (LAP-{tgt}%) vs ASR Pathways (LTH-{tgt}%)", "pathways", f"dyn-lap{tgt}", PAPER["lap_adapt_vs_lth"], "approx",
                  sk=layout["eight"], lg=e.languages, de="dense-eval8")
            if len(claims) > before:
                md += [markdown_table(["comparison", "paper", "ours: relative reduction [95% CI]", "per seed mean ± std", "verdict"],
                                      claims[before:], ["l", "r", "r", "r", "l"]), ""]
                results["claims"] = claims_data
    # ----- why
    why = investigate(results, claims_data, pr)
    if why:
        md += ["## Why (what the numbers show)", "", why, ""]
    results["files"] = files
    results["why"] = why
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "report.md", "\n".join(md))
    results["report_markdown"] = "\n".join(md)
    return results


def investigate(results: dict[str, Any], claims: list[dict[str, Any]], pr: Profile) -> str:
    """Data-driven bullets: are the method differences larger than the CI widths and than the controls' effects?"""
    if not claims:
        return ""

    def cap(t: str) -> str:
        t = t.replace("control: ", "")
        return t[:1].upper() + t[1:]

    def ci(c: dict[str, Any]) -> str:
        return f"{100 * c['relative']:+.1f}% [{100 * c['ci'][0]:+.1f}, {100 * c['ci'][1]:+.1f}]"

    degenerate = [c for c in claims if c.get("degenerate")]
    claims = [c for c in claims if not c.get("degenerate")]
    main = [c for c in claims if not c["title"].startswith(("control", "8 languages"))]
    ctrl = [c for c in claims if c["title"].startswith("control")]
    out = []
    if degenerate:
        out.append(f"{len(degenerate)} comparison(s) not made because an arm's output is degenerate (a model that emits the "
                   "same few hypotheses for most utterances: its WER says nothing about the method): "
                   + "; ".join(f"{c['title']} ({' and '.join(c['degenerate_note'].get('labels', c['degenerate_note']['arms']))}: "
                               f"{100 * c['degenerate_note']['distinct_share']:.0f}% "
                               "distinct hypotheses)" for c in degenerate) + ".")
    biggest = max((abs(c["relative"]) for c in main if not math.isnan(c["relative"])), default=0.0)
    rels = [abs(c["relative"]) for c in main if not math.isnan(c["relative"])]
    if main and rels:
        widths = [c["ci"][1] - c["ci"][0] for c in main]
        resolved = [c for c in main if c["excludes_zero"]]
        line = (f"Method comparisons: |relative difference| {100 * min(rels):.1f}–{100 * max(rels):.1f}%, 95% CI widths "
                f"{100 * min(widths):.1f}–{100 * max(widths):.1f}%; {len(resolved)} of {len(main)} comparisons exclude 0")
        line += (": " + "; ".join(f"{c['title']} ({'better' if c['ci'][0] > 0 else 'worse'})" for c in resolved) + ".") if resolved else "."
        if widths and min(widths) > 0.06:
            line += " The paper's effects (2–6% relative) are smaller than these CI widths: this run cannot resolve them."
        out.append(line)
    for c in ctrl:
        if "vs θ_ML" in c["title"]:
            if abs(c["relative"]) < 1e-9 and biggest < 1e-9:
                verdict = "neither extra training nor the methods changed WER."
            elif abs(c["relative"]) > biggest:
                verdict = ("extra training alone moves WER by more than any difference between methods, so methods must be "
                           "compared at equal training steps (as these tables do) and against the continued dense model.")
            else:
                verdict = "extra training alone moves WER less than the largest difference between methods."
            out.append(f"{cap(c['title'])}: {ci(c)} — {verdict}")
        else:
            out.append(f"{cap(c['title'])}: {ci(c)} (negative = pruning costs accuracy at equal extra training).")
    t2 = results.get("tables", {}).get("table2", {})
    for k, v in t2.items():
        if "LAP" in k and k.startswith("Dynamic") and v.get("mean_iou"):
            m = sum(v["mean_iou"]) / len(v["mean_iou"])
            how = (" — adaptation made them language-specific." if m < 0.9 else
                   " — adaptation made them diverge only slightly." if m < 0.999 else " — they did not diverge.")
            out.append(f"{k}: the pathways start identical (one LAP mask) and end with mean IoU {m:.3f} between languages" + how)
    abl = results.get("tables", {}).get("ablations", {})
    longer = [v for k, v in abl.items() if k.startswith("imp T=")]
    if longer and not longer[0].get("degenerate") and not math.isnan(longer[0]["relative"].get("relative", float("nan"))):
        v = longer[0]
        r = v["relative"]
        wb, wm = sum(v["wer_base"]) / len(v["wer_base"]), sum(v["wer"]) / len(v["wer"])
        out.append(f"Recovery time: {v['description']} gives {100 * wm:.1f}% WER against {100 * wb:.1f}% with T = {pr.T} "
                   f"({ci(r)} relative). "
                   + ("Much of the cost of pruning here is too few steps between prunes, so absolute WERs of every pruned "
                      "model are pessimistic and differences between methods are measured far from convergence."
                      if r["ci"][0] > 0.05 else "Longer rounds change little: the cost of pruning is not a lack of recovery steps."))
    else:
        out.append(f"Rounds are T = {pr.T} steps and n = {pr.n} here (no round-length ablation in this run).")
    return "\n".join(f"- {x}" for x in out)


def write_benchmarks_section(results: dict[str, Any], ctx: Context, command: str, path: Path | None = None) -> Path:
    from benchmarks.common import machine_line, write_section

    md = results["report_markdown"]
    keep = []
    skip = False
    for line in md.splitlines()[1:]:
        if line.startswith("## Masks") or line.startswith("## Weights revived"):
            skip = True
        elif line.startswith("## "):
            skip = False
        if not skip and not line.startswith("!["):
            keep.append(line.replace("## ", "### ", 1) if line.startswith("## ") else line)
    body = [f"## Paper tables (`asr-pathways bench --profile {ctx.profile.name}`)", "",
            f"Report with plots: `{ctx.out / 'report.md'}` (raw numbers: `{ctx.out / 'results.json'}`). "
            f"Machine: {machine_line(results['machine'])}.", "", *keep]
    return write_section("paper_tables", "\n".join(body), path)
