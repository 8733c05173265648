"""The benchmark's own plots: the forest plot of every comparison, and WER against deployed size and
against per-language sparsity. Matplotlib, PNG, written atomically; whiskers only where there are
seeds to make them (one seed: points alone, and the axis label says so).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..report import _save, mean_std

ROLE_COLOURS = {"headline": "tab:blue", "twin": "tab:green", "control": "tab:orange", "secondary": "tab:gray"}


def plot_forest(rows: Sequence[Mapping[str, Any]], path: str | Path, title: str = "Relative WER reduction") -> Path:
    """One line per comparison: the estimate (dot), the seed-level t-interval (thick) and the bootstrap interval (thin).

    ``rows``: ``{"title", "role", "relative", "t_interval" (or None), "ci"}`` (fractions); the
    x axis is in %. A comparison without a seed-level interval (one seed) shows the bootstrap alone.
    """
    from matplotlib.figure import Figure

    n = max(1, len(rows))
    fig = Figure(figsize=(9, 0.34 * n + 1.4))
    ax = fig.add_subplot(1, 1, 1)
    for i, r in enumerate(rows):
        colour = ROLE_COLOURS.get(r.get("role", ""), "black")
        lo, hi = r["ci"]
        if not (math.isnan(lo) or math.isnan(hi)):
            ax.plot([100 * lo, 100 * hi], [i, i], color=colour, linewidth=1.2, alpha=0.7)
        t = r.get("t_interval")
        if t is not None:
            ax.plot([100 * t[0], 100 * t[1]], [i, i], color=colour, linewidth=4.0, alpha=0.45, solid_capstyle="butt")
        if not math.isnan(r["relative"]):
            ax.plot([100 * r["relative"]], [i], "o", color=colour, markersize=4)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["title"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("relative WER reduction % (> 0: the method has fewer errors)\n"
                  "thick: seed-level t-interval (none with one seed); thin: paired bootstrap; dot: estimate")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, linewidth=3, label=k) for k, c in ROLE_COLOURS.items()
               if any(r.get("role") == k for r in rows)]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, title="role")
    return _save(fig, path)


MARKERS = ("o", "s", "^", "D")  # with tab20's colours: up to 80 series tell apart


def plot_wer_vs(points: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path, x: str, xlabel: str,
                title: str, lines: Mapping[str, Sequence[str]] | None = None) -> Path:
    """WER (mean over seeds) against ``x`` for every method: ``points`` label → {x: [per seed], "wer": [per seed]}.

    Whiskers (± std over seeds) only where a method has more than one seed. ``lines``: name → labels
    of points joined by a line (e.g. ASR Pathways at every per-language sparsity)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 5))
    ax = fig.add_subplot(1, 1, 1)
    cmap = __import__("matplotlib").colormaps["tab20"]
    xy: dict[str, tuple[float, float]] = {}
    seeds = 1
    for j, (label, v) in enumerate(points.items()):
        (mx, sx), (my, sy) = mean_std(v.get(x, [])), mean_std(v.get("wer", []))
        if math.isnan(mx) or math.isnan(my):
            continue
        k = len(v.get("wer", []))
        seeds = max(seeds, k)
        ax.errorbar([100 * mx], [100 * my], yerr=[100 * sy] if k > 1 else None, xerr=[100 * sx] if k > 1 else None,
                    fmt=MARKERS[(j // 20) % len(MARKERS)], color=cmap(j % 20), label=label, capsize=2, markersize=5)  # 20 colours × markers
        xy[label] = (100 * mx, 100 * my)
    for name, labels in (lines or {}).items():
        pts = sorted(xy[l] for l in labels if l in xy)
        if len(pts) > 1:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "--", color="gray", linewidth=0.8, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("WER % (mean over seeds" + (", ± std)" if seeds > 1 else "; one seed: no whiskers)"))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return _save(fig, path)
