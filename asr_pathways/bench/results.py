"""Reading the benchmark's finished runs, and the statistics of its tables.

Every number comes from the runs' own files: ``hyps_test.jsonl`` (per-utterance word errors, the
WER of every cell and the paired bootstrap; the share of distinct hypotheses), ``masks_summary.json``
(union sparsity, IoU), ``history.jsonl`` (weights revived and dropped), ``cost.json`` (Table 3) and
the benchmark's ``bench_job.json`` records (wall time of the dense fine-tuning runs).

Degenerate output: a run whose hypotheses are not transcripts (a model that emits one token, or
nothing, for most utterances) is flagged by :func:`asr_pathways.metrics.hypothesis_diversity`: in
some evaluated language (or over all of them) fewer than 50% of the utterances have distinct
hypotheses, or more than 50% are empty (the test sentences are all different). A comparison with a
degenerate arm is reported as "not compared" instead of a relative reduction.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..metrics import DEGENERATE_MAX_EMPTY_SHARE, DEGENERATE_MIN_DISTINCT_SHARE
from .claims import PAPER  # noqa: F401 - re-exported for older imports
from .plan import Planner
from .profiles import Profile

DEGENERATE_TEXT = (f"⚠ degenerate = in some language (or over all of them) fewer than {100 * DEGENERATE_MIN_DISTINCT_SHARE:.0f}% of the test utterances "
                   f"get distinct hypotheses or more than {100 * DEGENERATE_MAX_EMPTY_SHARE:.0f}% get an empty one (the test sentences are all different): the model emits the same few strings, its WER "
                   "says nothing about the method, and comparisons with it are not made.")


# ------------------------------------------------------------------------------------ labels
def _with_twins(label: str, key: str, shared: bool = False) -> list[tuple[str, str]]:
    """A row and its ``--candidates own`` twin; ``shared`` (Dynamic rows): also the ``--scores shared`` and
    ``--scores finetune`` variants with their twins (a report keeps the rows whose runs exist)."""
    rows = [(label, key), (f"{label} (--candidates own twin)", key + "-own")]
    if shared:
        for flag, suffix in (("shared", "-shared"), ("finetune", "-literal")):
            rows += [(f"{label} (--scores {flag})", key + suffix), (f"{label} (--scores {flag}, --candidates own twin)", key + suffix + "-own")]
    return rows


def table1_methods(pr: Profile, full: bool = True) -> list[tuple[str, str]]:
    """(label, run key) of the rows of Table 1 (``full=False``: the demo's monolingual rows)."""
    mid, tgt = pr.percent(pr.mid), pr.percent(pr.target)
    adapt = {(m, s): pr.method_key("adapt", m, s) for m in ("imp", "lth") for s in (pr.mid, pr.target)}
    if not full:
        return [("dense θ_ML", "dense-eval"), (f"IMP-{tgt}", "imp"), (f"adaptive from IMP-{mid}", adapt["imp", pr.mid])]
    rows = [("dense θ_ML", "dense-eval"), ("dense mono, continued", "dense-mono"), (f"IMP-{tgt}", "imp"), (f"LTH-{tgt}", "lth")]
    for m, s in (("imp", pr.mid), ("lth", pr.mid), ("imp", pr.target), ("lth", pr.target)):
        rows += _with_twins(f"adaptive from {m.upper()}-{pr.percent(s)}", adapt[m, s])
    return rows


def table2_methods(pr: Profile, full: bool = True) -> list[tuple[str, str]]:
    """(label, run key) of the rows of Table 2 (``full=False``: the demo's multilingual rows)."""
    mid, tgt = pr.percent(pr.mid), pr.percent(pr.target)
    dyn = {(m, s): pr.method_key("dyn", m, s) for m in ("lth", "lap") for s in (pr.mid, pr.target)}
    if not full:
        return [("dense θ_ML", "dense-eval"), (f"ASR Pathways (LTH-{tgt})", "pathways"), (f"Dynamic from LTH-{tgt}", dyn["lth", pr.target])]
    su = f"LTH-{pr.percent(pr.union_sparsity)}, " if pr.union_sparsity is not None else ""
    rows = [("dense θ_ML", "dense-eval"), ("dense multi, continued", "dense-multi"), (f"LAP-{tgt}", "lap"),
            (f"ASR Pathways (LTH-{tgt})", "pathways"), (f"ASR Pathways (LAP-{tgt}, fixed)", pr.method_key("pathways", "lap", pr.target)),
            (f"ASR Pathways ({su}union-matched)", "pathways-union"), (f"ASR Pathways (LTH-{mid})", pr.method_key("pathways", "lth", pr.mid))]
    for m, s in (("lth", pr.mid), ("lap", pr.mid), ("lth", pr.target), ("lap", pr.target)):
        rows += _with_twins(f"Dynamic from {m.upper()}-{pr.percent(s)}", dyn[m, s], shared=True)
    return rows


# ------------------------------------------------------------------------------------ reading
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
        from ..report import read_hyps

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
        from ..metrics import hypothesis_diversity

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
        """Optimizer steps, batches, wall and mask seconds, language-specific pruning rounds (upstream included), and the
        run's own ``--scores finetune`` scoring batches (forward and backward on a model copy, not optimizer steps)."""
        keys = key if isinstance(key, list) else [key]
        tot = {"optimizer_steps": 0.0, "language_batches": 0.0, "wall_seconds": 0.0, "mask_seconds": 0.0,
               "language_specific_pruning_rounds": 0.0, "adapt_events": 0.0, "score_batches": 0.0}
        for k in keys:
            job = self.pl.jobs[k]
            cf = job.folder / "cost.json"
            if cf.is_file():
                c = json.loads(cf.read_text())
                for f in ("optimizer_steps", "language_batches", "wall_seconds", "mask_seconds", "language_specific_pruning_rounds"):
                    tot[f] += float(c["total"].get(f, 0))
                tot["adapt_events"] += float(c["own"].get("adapt_events", 0))
                tot["score_batches"] += float(c["own"].get("score_batches", 0))
            else:  # a train run: steps and batches from the plan, wall time from the benchmark's record
                rec = self.records.get(k) or {}
                multi = "--languages-per-step" in job.argv and job.argv[job.argv.index("--languages-per-step") + 1] == "0"
                steps = job.batches // max(1, len(job.languages)) if multi else job.batches
                tot["optimizer_steps"] += steps
                tot["language_batches"] += job.batches
                tot["wall_seconds"] += float(rec.get("wall_seconds") or math.nan)
        return tot

    def history(self, key: str) -> list[dict[str, Any]]:
        from ..methods.records import read_history

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



# ------------------------------------------------------------------------------------ statistics
def fmt_distinct(divs: dict[int, dict[str, Any]]) -> str:
    """Mean share of distinct hypotheses over seeds (%), with a mark when a run is degenerate."""
    from ..report import fmt_mean_std

    if not divs:
        return "—"
    cell = fmt_mean_std([d["distinct_share"] for d in divs.values()], digits=0)
    return cell + (" ⚠ degenerate" if any(d["degenerate"] for d in divs.values()) else "")


def fmt_rel(r: dict[str, Any]) -> str:
    if r is None or math.isnan(r.get("relative", math.nan)):
        return "—"
    lo, hi = r["ci"]
    return f"{100 * r['relative']:+.1f}% [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def table_rows(res: Results, seeds_keys: dict[int, dict[str, Any]], labels: list[tuple[str, str]], langs: tuple[str, ...],
               dense_eval: str, with_masks: bool) -> tuple[list[list[str]], dict[str, Any], dict[str, dict[str, list[float]]]]:
    from ..report import fmt_mean_std, language_wer, macro_wer

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
        row = [label] + [fmt_mean_std(per_lang[l]) for l in langs] + [f"**{fmt_mean_std(avg)}**", fmt_distinct(div)]
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
    from ..report import paired_bootstrap

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

    from ..report import macro_wer
    from .stats import t_interval, wider

    r["t_interval"] = t_interval(r["per_seed"])
    r["interval"] = wider(r["t_interval"], (r["ci"][0], r["ci"][1]))
    try:
        r["dense_wer"] = macro_wer(res.scores(dense_eval), list(langs))
    except (KeyError, OSError):  # no θ_ML evaluation in this plan
        r["dense_wer"] = math.nan
    db, dm = div(base), div(method)
    note = degenerate_note({base: db, method: dm})
    r["distinct_share_base"] = [d["distinct_share"] for d in db.values()]
    r["distinct_share_method"] = [d["distinct_share"] for d in dm.values()]
    r["degenerate"] = note is not None
    if note is not None:
        r["degenerate_note"] = note
    return r
