"""Mask reports: JSON, Markdown and PNG plots (per-layer sparsity, language × language overlap,
weights revived and dropped between two mask sets).

>>> import torch
>>> from asr_pathways.sparsity import MaskSet
>>> en = MaskSet({"w": torch.tensor([True, True, False, False])})
>>> fr = MaskSet({"w": torch.tensor([True, False, True, False])})
>>> r = mask_report({"en": en, "fr": fr})
>>> r["union"]["sparsity"], r["iou"]["en"]["fr"]
(0.25, 0.3333333333333333)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .masks import MaskSet, intersection, iou, iou_per_matrix, union
from .select import group_of

__all__ = ["mask_report", "transition_report", "to_markdown", "transition_markdown", "write_report",
           "write_transition_report", "plot_sparsity_per_layer", "plot_overlap", "plot_transition", "short_name"]

GroupsArg = Mapping[str, str] | Callable[[str], str] | None


def _group_fn(groups: GroupsArg) -> Callable[[str], str]:
    if groups is None:
        return group_of
    if isinstance(groups, Mapping):
        return lambda n: groups.get(n, "other")
    return groups


def mask_report(
    masks: Mapping[str, MaskSet],
    groups: GroupsArg = None,
    total_params: int | None = None,
    block: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Sparsity per pathway (over P, per group, per matrix, over all parameters when
    ``total_params`` is known), the union (deployed model), the weights shared by all, and the
    pairwise IoU. ``block`` adds block sparsity (pruned blocks / blocks) next to weight sparsity."""
    if not masks:
        raise ValueError("mask_report: no masks")
    gf = _group_fn(groups)
    langs = list(masks)
    per: dict[str, Any] = {}
    for l, ms in masks.items():
        row: dict[str, Any] = {
            "sparsity": ms.sparsity(), "kept": ms.kept(), "size": ms.numel(),
            "per_group": ms.sparsity_per_group(gf), "per_matrix": ms.sparsity_per_matrix(),
        }
        if total_params:
            row["sparsity_over_model"] = ms.sparsity_over_model(total_params)
        if block is not None:
            from .blocks import block_grid, block_sparsity

            nb = {n: block_grid(t.shape, block) for n, t in ms.items()}
            tot = sum(a * b for a, b in nb.values())
            pr = sum(block_sparsity(t, block) * nb[n][0] * nb[n][1] for n, t in ms.items())
            row["block_sparsity"] = pr / tot if tot else 0.0
        per[l] = row
    u = union(*masks.values())
    inter = intersection(*masks.values())
    out: dict[str, Any] = {
        "languages": langs,
        "matrices": list(next(iter(masks.values())).names),
        "groups": {n: gf(n) for n in next(iter(masks.values())).names},
        "pathways": per,
        "union": {"sparsity": u.sparsity(), "kept": u.kept(), "per_group": u.sparsity_per_group(gf),
                  "per_matrix": u.sparsity_per_matrix()},
        "shared_by_all": {"kept": inter.kept(), "fraction_of_union": inter.kept() / u.kept() if u.kept() else 0.0,
                          "per_group": inter.sparsity_per_group(gf), "per_matrix": inter.sparsity_per_matrix()},
        "iou": {a: {b: iou(masks[a], masks[b]) for b in langs} for a in langs},
    }
    if total_params:
        out["union"]["sparsity_over_model"] = u.sparsity_over_model(total_params)
        out["total_params"] = total_params
    return out


def transition_report(before: MaskSet, after: MaskSet, groups: GroupsArg = None) -> dict[str, Any]:
    """Weights revived (pruned before, kept after) and dropped (kept before, pruned after)."""
    gf = _group_fn(groups)
    rv, dr = after - before, before - after
    per_matrix = {n: {"revived": int(rv[n].sum()), "dropped": int(dr[n].sum()), "size": rv[n].numel()} for n in before}
    per_group: dict[str, dict[str, int]] = {}
    for n, r in per_matrix.items():
        g = per_group.setdefault(gf(n), {"revived": 0, "dropped": 0, "size": 0})
        for k in r:
            g[k] += r[k]
    return {
        "revived": rv.kept(), "dropped": dr.kept(), "size": before.numel(),
        "sparsity_before": before.sparsity(), "sparsity_after": after.sparsity(),
        "iou": iou(before, after), "per_group": per_group, "per_matrix": per_matrix,
        "iou_per_matrix": iou_per_matrix(before, after),
    }


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def to_markdown(report: Mapping[str, Any], title: str = "Masks") -> str:
    """Markdown tables: sparsity per pathway and group, union, overlap (IoU)."""
    langs = report["languages"]
    groups = sorted({g for r in report["pathways"].values() for g in r["per_group"]})
    lines = [f"## {title}", ""]
    cols = ["pathway", "sparsity (P)"] + (["sparsity (all params)"] if "total_params" in report else [])
    cols += (["block sparsity"] if any("block_sparsity" in r for r in report["pathways"].values()) else []) + groups
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows = [(l, report["pathways"][l]) for l in langs] + [("**union**", report["union"])]
    for name, r in rows:
        cells = [name, _pct(r["sparsity"])]
        if "total_params" in report:
            cells.append(_pct(r.get("sparsity_over_model", float("nan"))))
        if "block sparsity" in cols:
            cells.append(_pct(r["block_sparsity"]) if "block_sparsity" in r else "")
        cells += [_pct(r["per_group"].get(g, float("nan"))) for g in groups]
        lines.append("| " + " | ".join(cells) + " |")
    sh = report["shared_by_all"]
    lines += ["", f"Weights kept by every pathway: {sh['kept']:,} ({_pct(sh['fraction_of_union'])} of the union).", ""]
    if len(langs) > 1:
        lines += ["Overlap (IoU of kept weights):", "", "| | " + " | ".join(langs) + " |", "|" + "---|" * (len(langs) + 1)]
        for a in langs:
            lines.append(f"| {a} | " + " | ".join(f"{report['iou'][a][b]:.3f}" for b in langs) + " |")
        lines.append("")
    return "\n".join(lines)


def transition_markdown(report: Mapping[str, Any], title: str = "Mask changes") -> str:
    lines = [f"## {title}", "",
             f"Sparsity {_pct(report['sparsity_before'])} → {_pct(report['sparsity_after'])}; "
             f"revived {report['revived']:,}, dropped {report['dropped']:,} of {report['size']:,} weights; IoU {report['iou']:.3f}.",
             "", "| group | revived | dropped | size |", "|---|---|---|---|"]
    for g, r in report["per_group"].items():
        lines.append(f"| {g} | {r['revived']:,} | {r['dropped']:,} | {r['size']:,} |")
    return "\n".join(lines) + "\n"


def short_name(name: str) -> str:
    """``encoder.layers.3.self_attn.in_proj_weight`` -> ``enc3.self_attn.in_proj``."""
    import re

    s = re.sub(r"^encoder\.layers\.(\d+)\.", r"enc\1.", name)
    s = re.sub(r"\.weight$", "", s)
    return s.replace("_weight", "")


def _save(fig: Any, path: Path) -> Path:
    from ..io import AtomicPath

    with AtomicPath(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return path


def plot_sparsity_per_layer(report: Mapping[str, Any], path: str | Path) -> Path:
    """Per matrix (row): the deployed weights split into kept by every language, kept by some languages
    only (language-specific), and pruned by all (the union's sparsity); a dot per language where its
    own sparsity differs from the others' (with layer-wise pruning every pathway has the target in
    every matrix, so its bar would say nothing). Without ``shared_by_all.per_matrix``: one bar per
    pathway and the union."""
    from matplotlib.figure import Figure

    names = report["matrices"]
    langs = report["languages"]
    inter = (report.get("shared_by_all") or {}).get("per_matrix")
    n = len(names)
    fig = Figure(figsize=(9, max(3.0, 0.28 * n + 1.8)))
    ax = fig.add_subplot(1, 1, 1)
    if inter is None or len(langs) < 2:
        series = [(l, report["pathways"][l]["per_matrix"]) for l in langs] + ([("union", report["union"]["per_matrix"])] if len(langs) > 1 else [])
        k = len(series)
        for j, (label, vals) in enumerate(series):
            ax.barh([i + (j - (k - 1) / 2) * 0.8 / k for i in range(n)], [100 * vals[m] for m in names], height=0.8 / k, label=label,
                    color="0.35" if label == "union" else None)
        ax.set_xlabel("sparsity (% of weights pruned)")
    else:
        uni = report["union"]["per_matrix"]
        shared = [100 * (1 - inter[m]) for m in names]
        specific = [100 * (inter[m] - uni[m]) for m in names]
        pruned = [100 * uni[m] for m in names]
        ax.barh(range(n), shared, color="tab:blue", label="kept by every language")
        ax.barh(range(n), specific, left=shared, color="tab:orange", label="kept by some languages only")
        ax.barh(range(n), pruned, left=[a + b for a, b in zip(shared, specific)], color="0.85", label="pruned by all (union sparsity)")
        cmap = __import__("matplotlib").colormaps["tab10"]
        for j, l in enumerate(langs):
            own = [100 * (1 - report["pathways"][l]["per_matrix"][m]) for m in names]
            mean = [sum(100 * (1 - report["pathways"][x]["per_matrix"][m]) for x in langs) / len(langs) for m in names]
            if max(abs(a - b) for a, b in zip(own, mean)) > 0.5:  # only where pathways differ in size
                ax.plot(own, range(n), "|", color=cmap(j % 10), markersize=9, label=f"{l}: kept %")
        ax.set_xlabel("% of the matrix's weights")
    ax.set_yticks(range(n))
    ax.set_yticklabels([short_name(m) for m in names], fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_title("Deployed weights per layer (union of the pathways)" if inter is not None and len(langs) > 1 else "Sparsity per matrix",
                 pad=30)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=7, frameon=False)
    return _save(fig, Path(path))


def plot_overlap(report: Mapping[str, Any], path: str | Path) -> Path:
    """Language × language IoU heatmap, the colour scale fitted to the off-diagonal values (the diagonal,
    1 by definition, is left grey), the values written in the cells with three decimals."""
    import numpy as np
    from matplotlib.figure import Figure

    langs = report["languages"]
    m = np.array([[report["iou"][a][b] for b in langs] for a in langs], dtype=float)
    off = m[~np.eye(len(langs), dtype=bool)]
    lo, hi = (float(off.min()), float(off.max())) if off.size else (0.0, 1.0)
    if hi - lo < 1e-3:  # equal values: a small band around them, so the scale still reads
        lo, hi = lo - 5e-4, hi + 5e-4
    s = max(3.5, 0.8 * len(langs) + 2)
    fig = Figure(figsize=(s + 1, s))
    ax = fig.add_subplot(1, 1, 1)
    cmap = __import__("matplotlib").colormaps["viridis"].with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_array(m, mask=np.eye(len(langs), dtype=bool)), vmin=lo, vmax=hi, cmap=cmap)
    ax.set_xticks(range(len(langs)))
    ax.set_xticklabels(langs)
    ax.set_yticks(range(len(langs)))
    ax.set_yticklabels(langs)
    for i in range(len(langs)):
        for j in range(len(langs)):
            bright = i == j or (m[i][j] - lo) / (hi - lo) > 0.6
            ax.text(j, i, f"{m[i][j]:.3f}", ha="center", va="center", fontsize=9, color="black" if bright else "white")
    ax.set_title(f"Pathway overlap (IoU of kept weights)\ncolour scale {lo:.3f}–{hi:.3f}: the off-diagonal range", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _save(fig, Path(path))


def plot_transition(report: Mapping[str, Any], path: str | Path) -> Path:
    """Revived and dropped weights per group (% of the group's size)."""
    from matplotlib.figure import Figure

    groups = list(report["per_group"])
    fig = Figure(figsize=(8, max(2.5, 0.5 * len(groups) + 1.2)))
    ax = fig.add_subplot(1, 1, 1)
    ys = range(len(groups))
    rv = [100 * report["per_group"][g]["revived"] / max(report["per_group"][g]["size"], 1) for g in groups]
    dr = [100 * report["per_group"][g]["dropped"] / max(report["per_group"][g]["size"], 1) for g in groups]
    ax.barh([y - 0.2 for y in ys], rv, height=0.4, label="revived", color="tab:green")
    ax.barh([y + 0.2 for y in ys], dr, height=0.4, label="dropped", color="tab:red")
    ax.set_yticks(list(ys))
    ax.set_yticklabels(groups)
    ax.invert_yaxis()
    ax.set_xlabel("% of the group's weights")
    ax.set_title(f"Revived {report['revived']:,} / dropped {report['dropped']:,} weights")
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, Path(path))


def write_report(report: Mapping[str, Any], out_dir: str | Path, title: str = "Masks", plots: bool = True) -> dict[str, Path]:
    """``report.json``, ``report.md``, ``sparsity_per_layer.png``, ``overlap_iou.png`` (atomically)."""
    from ..io import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    files = {"json": atomic_write_json(out / "report.json", report),
             "markdown": atomic_write_text(out / "report.md", to_markdown(report, title))}
    if plots:
        files["sparsity_png"] = plot_sparsity_per_layer(report, out / "sparsity_per_layer.png")
        files["overlap_png"] = plot_overlap(report, out / "overlap_iou.png")
    return files


def write_transition_report(report: Mapping[str, Any], out_dir: str | Path, title: str = "Mask changes", plots: bool = True) -> dict[str, Path]:
    """``changes.json``, ``changes.md``, ``changes.png``."""
    from ..io import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    files = {"json": atomic_write_json(out / "changes.json", report),
             "markdown": atomic_write_text(out / "changes.md", transition_markdown(report, title))}
    if plots:
        files["png"] = plot_transition(report, out / "changes.png")
    return files
