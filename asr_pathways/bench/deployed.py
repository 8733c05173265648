"""The report's section on size: WER against deployed size (the union of the pathways) for every
multilingual method, WER against per-language sparsity, and the per-language sparsity whose union
matches Dynamic's (how the union-matched control is sized; docs/method.md).

Everything comes from the runs' ``masks_summary.json`` (per-pathway sparsity, union sparsity, and the
same at every level an LTH run saved) and the WERs of Table 2.
"""

from __future__ import annotations

import math
from typing import Any

from ..report import fmt_mean_std, markdown_table, mean_std
from .tables import Draft, Lines


def union_curve(summary: dict[str, Any]) -> dict[float, float]:
    """Per-language sparsity → union sparsity at every level a multilingual prune run saved (masks_summary ``levels``).

    >>> union_curve({"levels": {"sparsity_0.50": {"union_sparsity": 0.4}, "sparsity_0.70": {"union_sparsity": 0.6}}})
    {0.5: 0.4, 0.7: 0.6}
    """
    out = {}
    for name, v in (summary.get("levels") or {}).items():
        try:
            out[float(name.split("_", 1)[1])] = float(v["union_sparsity"])
        except (IndexError, KeyError, ValueError):
            continue
    return dict(sorted(out.items()))


def size_rows(d: Draft) -> dict[str, dict[str, list[float]]]:
    """Table 2's methods: label → per-seed per-language sparsity (mean over pathways), kept share of the union, WER."""
    t2 = d.results.get("tables", {}).get("table2", {})
    out: dict[str, dict[str, list[float]]] = {}
    for label, row in t2.items():
        name = row["key"]
        per, kept = [], []
        for seed, k in d.layout["seeds"].items():
            if seed not in row["seeds"]:
                continue
            if name.startswith("dense"):
                per.append(0.0)
                kept.append(1.0)
            elif name in k and d.res.summary(k[name]):
                s = d.res.summary(k[name])
                per.append(sum(s["sparsity"].values()) / len(s["sparsity"]))
                kept.append(1.0 - s["union_sparsity"])
        if per:
            out[label] = {"sparsity": per, "kept": kept, "wer": row["average"]}
    return out


def size_section(d: Draft) -> Lines | None:
    """WER vs deployed size and vs per-language sparsity, and the union-matched sparsity the data suggest."""
    from .plots import plot_wer_vs

    rows = size_rows(d)
    if len(rows) < 2:
        return None
    table = [[label, fmt_mean_std(v["sparsity"], digits=1), fmt_mean_std(v["kept"], digits=1), fmt_mean_std(v["wer"])]
             for label, v in sorted(rows.items(), key=lambda kv: -mean_std(kv[1]["kept"])[0])]
    pathways = [l for l in rows if l.startswith("ASR Pathways (LTH")]
    d.files["wer_vs_size"] = str(plot_wer_vs(rows, d.plots / "wer_vs_union_size.png", "kept",
                                             "deployed size: kept share of the prunable weights in the union of the pathways (%)",
                                             "WER against deployed size, multilingual methods",
                                             {"ASR Pathways (LTH masks)": pathways}).relative_to(d.out))
    d.files["wer_vs_sparsity"] = str(plot_wer_vs(rows, d.plots / "wer_vs_sparsity.png", "sparsity",
                                                 "per-language sparsity (% of the prunable weights pruned in each pathway)",
                                                 "WER against per-language sparsity",
                                                 {"ASR Pathways (LTH masks)": pathways}).relative_to(d.out))
    md = ["## WER against deployed size", "",
          markdown_table(["method", "per-language sparsity %", "deployed: kept in the union %", "average WER %"], table),
          "Deployed size = the union of the pathways (what a multilingual model ships); per-language sparsity = each "
          "pathway's own. Methods at the same per-language sparsity can ship different sizes: compare rows at equal "
          "deployed size (the union-matched ASR Pathways row is the control for that).", "",
          f"![WER vs deployed size]({d.files['wer_vs_size']}) ![WER vs per-language sparsity]({d.files['wer_vs_sparsity']})", ""]
    md += union_matching_lines(d, rows)
    d.results["tables"]["size"] = rows
    return md


def union_matching_lines(d: Draft, rows: dict[str, dict[str, list[float]]]) -> Lines:
    """The LTH masks' union at every saved level, and the per-language sparsity whose union matches each Dynamic row."""
    from .stats import union_matched_sparsity

    seeds = d.layout["seeds"]
    first = next((k for k in seeds.values() if "lth" in k), None)
    if first is None:
        return []
    curve = union_curve(d.res.summary(first["lth"]))
    if len(curve) < 2:
        return []
    lines = ["Union sparsity of the LTH masks at every saved level (seed %d): " % min(seeds)
             + ", ".join(f"{100 * s:.0f}% → {100 * u:.1f}%" for s, u in curve.items()) + ".  "]
    found = []
    for label, v in rows.items():
        if label.startswith("Dynamic") and "twin" not in label:
            target = 1.0 - mean_std(v["kept"])[0]
            s = union_matched_sparsity(curve, target)
            if s is not None and not math.isnan(target):
                found.append(f"{label} (union sparsity {100 * target:.1f}%): {100 * s:.1f}%")
    if found:
        used = d.pr.union_sparsity
        lines.append("Per-language sparsity of LTH masks whose union would match (linear interpolation between levels): "
                     + "; ".join(found) + "."
                     + (f" This run's union-matched ASR Pathways uses {100 * used:.0f}% (the profile's `union_sparsity`)."
                        if used is not None else ""))
    return [*lines, ""]
