"""The report's analysis sections: masks (sparsity per layer, overlap), weights revived and dropped,
the ablations, and "Why" (what the numbers show, in a few data-driven bullets).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ..report import fmt_mean_std, macro_wer, markdown_table, paired_bootstrap, plot_mask_changes
from .profiles import Profile
from .results import degenerate_note, fmt_rel
from .tables import Draft, Lines


def module_of(name: str) -> str:
    """``encoder.layers.3.ff1.linear1.weight`` → ``enc3.ff``; ``joiner.output.weight`` → ``joiner``."""
    m = re.match(r"encoder\.layers\.(\d+)\.([a-z_]+?)\d*\.", name)
    if m:
        kind = {"self_attn": "attn", "ff": "ff", "conv": "conv"}.get(m.group(2), m.group(2))
        return f"enc{m.group(1)}.{kind}"
    return name.split(".")[0]


def _module_order(g: str) -> tuple[int, int, str]:
    m = re.match(r"enc(\d+)\.(.*)", g)
    return (0, int(m.group(1)), m.group(2)) if m else (1, 0, g)


def masks_section(d: Draft) -> Lines | None:
    """Sparsity per layer and overlap between languages of up to three multilingual runs (first seed)."""
    from ..sparsity.masks import MaskSet
    from ..sparsity.report import mask_report, plot_overlap, plot_sparsity_per_layer, write_report

    seeds_keys = d.layout["seeds"]
    if not seeds_keys:
        return None
    pr, first = d.pr, min(seeds_keys)
    k = seeds_keys[first]
    shown = [(n, l) for l, n in [*d.t2, *d.t1] if n in k and not n.startswith("dense")]
    mask_runs: list[tuple[str, str]] = []
    for want in ("pathways", pr.method_key("dyn", "lth", pr.mid), pr.method_key("dyn", "lap", pr.mid), pr.method_key("dyn", "lth", pr.target)):
        for name, label in shown:
            if name == want and len(mask_runs) < 3 and name not in [m for m, _ in mask_runs]:
                mask_runs.append((name, label))
    overlap: dict[str, dict[str, Any]] = {}
    for name, label in mask_runs:
        folder = d.res.folder(k[name]) / "masks"
        ms = {l: MaskSet.load(folder / f"{l}.safetensors") for l in pr.languages if (folder / f"{l}.safetensors").is_file()}
        if not ms:
            continue
        rep = mask_report(ms)
        folder_out = d.plots / f"masks-{name}"
        write_report(rep, folder_out, title=f"{label} (seed {first})", plots=False)  # report.json/.md: every matrix
        coarse = mask_report(ms, groups=module_of)  # the plot: one row per layer and module kind (readable at any depth)
        rows = sorted(coarse["union"]["per_group"], key=_module_order)
        d.files[f"masks-{name}"] = str(plot_sparsity_per_layer({
            "matrices": rows, "languages": coarse["languages"],
            "pathways": {l: {"per_matrix": coarse["pathways"][l]["per_group"]} for l in coarse["languages"]},
            "union": {"per_matrix": coarse["union"]["per_group"]},
            "shared_by_all": {"per_matrix": coarse["shared_by_all"]["per_group"]},
        }, folder_out / "sparsity_per_layer.png").relative_to(d.out))
        overlap[label] = layer_overlap(rep, coarse, rows)
        d.files[f"overlap-{name}"] = str(plot_overlap(rep, folder_out / "overlap_iou.png").relative_to(d.out))
    if not mask_runs:
        return None
    md = ["## Masks (seed %d)" % first, "", overlap_table(overlap), ""] if overlap else ["## Masks (seed %d)" % first, ""]
    d.results["tables"]["overlap"] = overlap
    for name, label in mask_runs:
        if f"masks-{name}" in d.files:
            md += [f"**{label}**: sparsity per layer and module kind (every matrix, the union and the IoU in "
                   f"`{Path(d.files[f'masks-{name}']).parent}/report.md`), and the overlap between languages.", "",
                   f"![sparsity per layer, {label}]({d.files[f'masks-{name}']}) ![overlap, {label}]({d.files[f'overlap-{name}']})", ""]
    return md


def layer_overlap(rep: dict[str, Any], coarse: dict[str, Any], rows: list[str]) -> dict[str, Any]:
    """Mean pairwise IoU, and per layer the share of the deployed (union) weights that every language keeps."""
    langs = rep["languages"]
    pairs = [rep["iou"][a][b] for i, a in enumerate(langs) for b in langs[i + 1:]]
    inter, uni = coarse["shared_by_all"]["per_group"], coarse["union"]["per_group"]
    shared = {g: (1 - inter[g]) / (1 - uni[g]) if uni[g] < 1 else 1.0 for g in rows}
    return {"mean_iou": sum(pairs) / len(pairs) if pairs else 1.0, "union_sparsity": rep["union"]["sparsity"],
            "shared_by_all_of_union": rep["shared_by_all"]["fraction_of_union"], "per_layer_shared": shared}


def overlap_table(overlap: dict[str, dict[str, Any]]) -> str:
    """One row per run: mean IoU, union sparsity, and the per-layer shared share (least, median, most shared layer)."""
    rows = []
    for label, v in overlap.items():
        per = sorted(v["per_layer_shared"].items(), key=lambda kv: kv[1])
        med = per[len(per) // 2] if per else ("—", math.nan)
        cell = lambda kv: f"{100 * kv[1]:.1f}% ({kv[0]})"  # noqa: E731
        rows.append([label, f"{v['mean_iou']:.3f}", f"{100 * v['union_sparsity']:.1f}", f"{100 * v['shared_by_all_of_union']:.1f}",
                     cell(per[0]) if per else "—", cell(med) if per else "—", cell(per[-1]) if per else "—"])
    return markdown_table(["run", "mean IoU", "union sparsity %", "kept by every language, % of union", "least shared layer",
                           "median layer", "most shared layer"], rows)


def mask_changes_section(d: Draft) -> Lines | None:
    """Weights revived and dropped at every event of an adaptive and two Dynamic runs (first seed)."""
    seeds_keys = d.layout["seeds"]
    if not seeds_keys:
        return None
    pr, first = d.pr, min(seeds_keys)
    k = seeds_keys[first]
    dyn_mid, dyn_tgt = pr.method_key("dyn", "lth", pr.mid), pr.method_key("dyn", "lth", pr.target)
    hist_runs = {}
    for name in (pr.method_key("adapt", "imp", pr.mid), dyn_mid if dyn_mid in k else dyn_tgt, pr.method_key("dyn", "lap", pr.mid)):
        if name in k:
            rows_h = [r for r in d.res.history(k[name]) if r.get("run", "") in ("", ) or name.startswith("adapt")]
            hist_runs[f"{d.label_of(name)} (seed {first})"] = rows_h
    if not hist_runs:
        return None
    d.files["mask_changes"] = str(plot_mask_changes(hist_runs, d.plots / "mask_changes.png").relative_to(d.out))
    return ["## Weights revived and dropped over training", "",
            "Every adapt/prune event: bars above 0 = weights revived (pruned before, kept after), below 0 (hatched) = dropped, "
            "as % of the prunable weights, one colour per language (history.jsonl).", "",
            f"![revived and dropped]({d.files['mask_changes']})", ""]


def ablations_section(d: Draft) -> Lines | None:
    """One option of adaptive masking (or of a Dynamic run) changed at a time, against the run it changes."""
    layout, planner, res, pr = d.layout, d.planner, d.res, d.pr
    if not layout.get("ablations"):
        return None
    langs = pr.languages
    mid = round(100 * pr.mid)
    md: Lines = []
    abl_rows, abl_data = [], {}
    mono = d.planner.mono_languages
    A = pr.ablation_language if pr.ablation_language in mono else mono[0]
    names = list(next(iter(layout["ablations"].values())))
    for short in names:
        per_seed_m, per_seed_b, desc, hist = {}, {}, "", []
        for s, ab in layout["ablations"].items():
            key, base_key, desc = ab[short]
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
            "base": {s: res.diversity(ab[short][1], lg) for s, ab in layout["ablations"].items() if s in per_seed_b},
            "ablation": {s: res.diversity(ab[short][0], lg) for s, ab in layout["ablations"].items() if s in per_seed_m},
        })
        rv = sum(h.get("revived", 0) for h in hist if h.get("kind") in ("adapt", "prune"))
        sp = [h.get("sparsity") for h in hist if h.get("kind") in ("adapt", "prune", "finalize")]
        cost = [res.cost(ab[short][0])["wall_seconds"] for ab in layout["ablations"].values()]
        abl_rows.append([desc, fmt_mean_std(wb), fmt_mean_std(wm), note["message"] if note else fmt_rel(r), f"{100 * sp[-1]:.1f}" if sp else "—",
                         f"{rv / max(1, len(per_seed_m)):,.0f}", fmt_mean_std(cost, scale=1, digits=0)])
        abl_data[short] = {"description": desc, "wer_base": wb, "wer": wm, "relative": r, "revived_per_seed": rv / max(1, len(per_seed_m)),
                           "degenerate": note is not None, **({"degenerate_note": note} if note else {})}
    if abl_rows:
        md += ["## Ablations", "",
               f"Monolingual ablations change one option of adaptive masking from IMP-{mid}% on {A} (base = that language in the "
               f"Table 1 run, the same run except for the option; WER on {pr.ablation_eval_utts or 'all'} utterances); the Dynamic "
               "ablations change one option of a Table 2 run. Block and scope ablations start from the 8x1 layer-wise IMP masks and "
               "re-select with the ablated shape/scope at the first adaptation. The IMP row changes the round length of the baseline "
               "itself (base: IMP-70% in Table 1): how much of the cost of pruning is too little recovery time. The p and T rows "
               "train more steps than their base (more rounds, longer rounds: see wall s), so they are not budget-matched; a WER "
               "above 100% (insertions) marks a broken run, not a small effect. Intervals: paired bootstrap over utterances and "
               f"seeds only (no seed-level t-interval here). Seeds: {sorted(layout['ablations'])}.", "",
               markdown_table(["ablation", "base WER %", "WER %", "relative reduction vs base [95% CI]", "final sparsity %",
                               "weights revived", "wall s"], abl_rows), ""]
        d.results["tables"]["ablations"] = abl_data
    return md or None


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
        widths = [(c.get("interval") or c["ci"])[1] - (c.get("interval") or c["ci"])[0] for c in main]
        iv = lambda c: c.get("interval") or c["ci"]  # noqa: E731 - the interval the verdict uses
        resolved = [c for c in main if iv(c)[0] > 0 or iv(c)[1] < 0]
        line = (f"Method comparisons: |relative difference| {100 * min(rels):.1f}–{100 * max(rels):.1f}%, widths of the wider 95% interval "
                f"{100 * min(widths):.1f}–{100 * max(widths):.1f}%; {len(resolved)} of {len(main)} comparisons exclude 0")
        line += (": " + "; ".join(f"{c['title']} ({'better' if iv(c)[0] > 0 else 'worse'})" for c in resolved) + ".") if resolved else "."
        if widths and min(widths) > 0.06:
            line += " The paper's effects (2–6% relative) are smaller than these CI widths: this run cannot resolve them."
        out.append(line)
    for c in ctrl:
        if "vs θ_ML" in c["title"]:
            lo, hi = c.get("interval") or c["ci"]
            if abs(c["relative"]) < 1e-9 and biggest < 1e-9:
                verdict = "neither extra training nor the methods changed WER."
            elif hi < 0:
                verdict = ("the dense model trained on with the pruning phases' schedule (their peak, warm-up, decay and "
                           "batches) ends worse than θ_ML: the schedule itself costs accuracy, so a pruned arm's gap to θ_ML "
                           "mixes pruning with that cost (the rows against the continued dense model separate them).")
            elif abs(c["relative"]) > biggest:
                verdict = ("extra training alone moves WER by more than any difference between methods, so methods must be "
                           "compared at equal training steps (as these tables do) and against the continued dense model.")
            else:
                verdict = "extra training alone moves WER less than the largest difference between methods."
            out.append(f"{cap(c['title'])}: {ci(c)} — {verdict}")
        else:
            out.append(f"{cap(c['title'])}: {ci(c)} (negative = pruning costs accuracy at the same schedule and batches).")
    twins = [c for c in main if "own twin" in c["title"] and "twin" in c["title"].split(" vs ")[-1]]
    if twins:
        ivs = [c.get("interval") or c["ci"] for c in twins]
        decided = [c["title"] + ("" if c.get("matched") in ("yes", "—") else f" (arms not matched: {c['matched']})")
                   for c, (lo, hi) in zip(twins, ivs) if lo > 0 or hi < 0]
        out.append(f"Adaptation's own share (each adaptive/Dynamic arm against its --candidates own twin: the same masks, steps "
                   f"and data without revival): {len(twins)} contrasts, {100 * min(c['relative'] for c in twins):+.1f}% to "
                   f"{100 * max(c['relative'] for c in twins):+.1f}%; "
                   + (f"{len(decided)} exclude 0: {'; '.join(decided)}." if decided else "every interval contains 0."))
    t2 = results.get("tables", {}).get("table2", {})
    for k, v in t2.items():
        # twins have no revival to credit; --scores shared keeps equal masks equal by construction
        if "LAP" in k and k.startswith("Dynamic") and "own twin" not in k and "scores shared" not in k and v.get("mean_iou"):
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


def why_section(d: Draft) -> Lines | None:
    why = investigate(d.results, d.claims_data, d.pr)
    d.results["why"] = why
    return ["## Why (what the numbers show)", "", why, ""] if why else None
