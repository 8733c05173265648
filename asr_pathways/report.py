"""Method comparisons: per-utterance word errors, paired bootstrap confidence intervals, Markdown
tables and matplotlib plots (WER by method and language, weights revived and dropped over training).

Mask plots (sparsity per layer, overlap heatmap) come from :mod:`asr_pathways.sparsity.report`.

The relative WER reduction of a method over a baseline is ``(WER_base − WER_method) / WER_base``
(docs/method.md), computed on the macro-average WER over languages (each language's WER is pooled over
its utterances: total word errors / total reference words).

>>> word_errors("the cat sat", "the cat sat down"), word_errors("", "oops"), word_errors("a b c", "a c")
(1, 1, 1)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "word_errors", "utterance_errors", "read_hyps", "macro_wer", "paired_bootstrap", "mean_std", "fmt_mean_std",
    "markdown_table", "plot_wer_bars", "plot_mask_changes", "plot_cost",
]

# per-utterance scores of one run: {language: {utterance id: (word errors, reference words)}}
UttScores = dict[str, dict[str, tuple[int, int]]]


# ------------------------------------------------------------------------------- word errors
def word_errors(ref: str, hyp: str) -> int:
    """Word-level edit distance (substitutions + deletions + insertions), whitespace-normalised.

    The same count as jiwer's (and :func:`asr_pathways.metrics.error_rates`); an empty reference
    counts every hypothesis word as an insertion.
    """
    r, h = ref.split(), hyp.split()
    if not r:
        return len(h)
    if not h:
        return len(r)
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1]


def utterance_errors(rows: Iterable[Mapping[str, str]]) -> UttScores:
    """``{"id", "language", "ref", "hyp"}`` rows (hyps_{split}.jsonl) → per-utterance (errors, words)."""
    out: UttScores = {}
    for r in rows:
        out.setdefault(r["language"], {})[r["id"]] = (word_errors(r["ref"], r["hyp"]), len(r["ref"].split()))
    return out


def read_hyps(path: str | Path) -> UttScores:
    """Per-utterance word errors of ``hyps_{split}.jsonl`` (a file, or a run folder holding hyps_test.jsonl)."""
    p = Path(path)
    if p.is_dir():
        p = p / "hyps_test.jsonl"
    return utterance_errors(json.loads(l) for l in p.read_text().splitlines() if l.strip())


def language_wer(scores: Mapping[str, tuple[int, int]], ids: Iterable[str] | None = None) -> float:
    keys = list(scores) if ids is None else [i for i in ids if i in scores]
    e = sum(scores[k][0] for k in keys)
    w = sum(scores[k][1] for k in keys)
    return e / w if w else (0.0 if e == 0 else math.inf)


def macro_wer(scores: UttScores, languages: Sequence[str] | None = None, ids: Mapping[str, Iterable[str]] | None = None) -> float:
    """Unweighted mean over languages of each language's pooled WER (optionally on a subset of ids)."""
    langs = list(languages) if languages is not None else sorted(scores)
    return float(np.mean([language_wer(scores[l], None if ids is None else ids.get(l)) for l in langs]))


# ---------------------------------------------------------------------------------- statistics
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaN for none."""
    v = [float(x) for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)


def fmt_mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    """``12.34 ± 0.56`` (scaled; ``±`` omitted for one value); ``—`` for none."""
    m, s = mean_std(values)
    if math.isnan(m):
        return "—"
    if len([x for x in values if x is not None]) < 2:
        return f"{scale * m:.{digits}f}"
    return f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"


def paired_bootstrap(
    base: Mapping[Any, UttScores],
    method: Mapping[Any, UttScores],
    languages: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Relative WER reduction of ``method`` over ``base`` with a paired bootstrap CI.

    ``base`` and ``method`` map a seed to that seed's per-utterance scores. Only the seeds, languages
    and utterances present in both are used (paired). Each bootstrap replicate resamples the seeds
    with replacement and, within each language, the utterances with replacement, using the same
    indices for both methods and every seed; the statistic is ``(W_base − W_method) / W_base`` with
    ``W`` the seed-mean of the macro-average WER over languages.

    Returns ``relative`` (on all the data), ``ci`` (low, high), ``per_seed`` relative reductions
    and their ``mean``/``std``, ``wer_base``/``wer_method`` (seed means), the counts used, and
    ``excludes_zero`` (the CI lies entirely above or below 0).
    """
    seeds = [s for s in base if s in method]
    if not seeds:
        raise ValueError("paired_bootstrap: no seed in common")
    langs = list(languages) if languages is not None else sorted(set.intersection(*[set(base[s]) & set(method[s]) for s in seeds]))
    if not langs:
        raise ValueError("paired_bootstrap: no language in common")
    rng = np.random.default_rng(seed)
    S = len(seeds)
    per_lang = []  # (E_base (S, n), E_method (S, n), words (n,))
    for l in langs:
        ids = sorted(set.intersection(*[set(base[s].get(l, {})) & set(method[s].get(l, {})) for s in seeds]))
        if not ids:
            raise ValueError(f"paired_bootstrap: no utterance of {l!r} in common")
        eb = np.array([[base[s][l][i][0] for i in ids] for s in seeds], dtype=np.float64)
        em = np.array([[method[s][l][i][0] for i in ids] for s in seeds], dtype=np.float64)
        w = np.array([base[s][l][i][1] for i in ids for s in seeds[:1]], dtype=np.float64)
        per_lang.append((eb, em, w))

    def macro(counts_per_lang: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """counts: per language (B, n) weights of the utterances → macro WER (B, S) of base and method."""
        wb, wm = [], []
        for (eb, em, w), c in zip(per_lang, counts_per_lang):
            words = np.maximum(c @ w, 1e-12)[:, None]
            wb.append((c @ eb.T) / words)
            wm.append((c @ em.T) / words)
        return np.mean(wb, axis=0), np.mean(wm, axis=0)

    full_b, full_m = macro([np.ones((1, len(w))) for _, _, w in per_lang])
    per_seed = [float((full_b[0, i] - full_m[0, i]) / full_b[0, i]) if full_b[0, i] > 0 else math.nan for i in range(S)]
    W_b, W_m = float(full_b.mean()), float(full_m.mean())
    rel = (W_b - W_m) / W_b if W_b > 0 else math.nan

    counts = [rng.multinomial(len(w), np.full(len(w), 1.0 / len(w)), size=n_boot).astype(np.float64) for _, _, w in per_lang]
    seed_counts = rng.multinomial(S, np.full(S, 1.0 / S), size=n_boot).astype(np.float64) if S > 1 else np.ones((n_boot, 1))
    bb, bm = macro(counts)
    Wb = (bb * seed_counts).sum(1) / S
    Wm = (bm * seed_counts).sum(1) / S
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(Wb > 0, (Wb - Wm) / Wb, np.nan)
    r = r[~np.isnan(r)]
    lo, hi = (float(np.percentile(r, 100 * alpha / 2)), float(np.percentile(r, 100 * (1 - alpha / 2)))) if len(r) else (math.nan, math.nan)
    m, sd = mean_std(per_seed)
    return {
        "relative": rel, "ci": [lo, hi], "ci_level": 1 - alpha, "per_seed": per_seed, "mean": m, "std": sd,
        "wer_base": W_b, "wer_method": W_m, "seeds": seeds, "languages": langs,
        "utterances": {l: int(len(w)) for l, (_, _, w) in zip(langs, per_lang)}, "n_boot": n_boot,
        "excludes_zero": bool(lo > 0 or hi < 0),
    }


# ---------------------------------------------------------------------------------- Markdown
def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A pipe table; ``align`` per column: ``l`` or ``r`` (default: first left, others right)."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- plots
def _save(fig: Any, path: str | Path) -> Path:
    from .io import AtomicPath

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicPath(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def plot_wer_bars(
    wer: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | Path,
    title: str = "WER by method and language",
    languages: Sequence[str] | None = None,
) -> Path:
    """Grouped bars: one group per language (+ ``average``), one bar per method; error bars = std over seeds.

    ``wer``: method label → {language or "average": [WER per seed] (fractions)}.
    """
    from matplotlib.figure import Figure

    methods = list(wer)
    groups = list(languages) if languages is not None else sorted({g for v in wer.values() for g in v if g != "average"})
    if any("average" in v for v in wer.values()):
        groups.append("average")
    k = len(methods)
    width = 0.84 / max(k, 1)
    fig = Figure(figsize=(min(14.0, max(7.0, 0.3 * k * len(groups) + 3.0)), 4.8))
    ax = fig.add_subplot(1, 1, 1)
    cmap = __import__("matplotlib").colormaps["tab20"]
    tops, lows = [], []
    n_seeds = {mth: max((len([x for x in v if x is not None]) for v in wer[mth].values()), default=0) for mth in methods}
    for j, mth in enumerate(methods):
        xs, ys, es = [], [], []
        for i, g in enumerate(groups):
            m, s = mean_std(wer[mth].get(g, []))
            xs.append(i + (j - (k - 1) / 2) * width)
            ys.append(100 * m if not math.isnan(m) else 0.0)
            es.append(100 * s if not math.isnan(s) and n_seeds[mth] > 1 else 0.0)
        ax.bar(xs, ys, width=width, yerr=es if n_seeds[mth] > 1 else None, capsize=2, label=mth, color=cmap(j % 20),
               edgecolor="white", linewidth=0.4)
        tops += [y + e for y, e in zip(ys, es)]
        lows += [y - e for y, e in zip(ys, es)]
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    many = [n for n in n_seeds.values() if n > 1]
    ylabel = ("WER % (one seed: no whiskers)" if not many else "WER % (mean ± std over seeds)" if len(many) == len(n_seeds)
              else "WER % (mean ± std over seeds;\nno whisker: one seed)")
    if lows and min(lows) > 15 and max(tops) < 150:  # differences of a few % would not show from 0: zoom in, and say so
        lo = 5 * math.floor(0.85 * min(lows) / 5)
        ax.set_ylim(lo, max(tops) * 1.03 + 0.5)
        ylabel += f"\n(axis starts at {lo:g}%)"
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _save(fig, path)


def plot_mask_changes(runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, total: Mapping[str, int] | None = None) -> Path:
    """Weights revived and dropped at every adapt/prune event, from history.jsonl rows.

    ``runs``: panel title → history rows. One panel per run; x = optimizer step of the event, y = %
    of the prunable weights; one colour per language, revived above 0 (solid), dropped below 0
    (hatched). Events ``init`` are skipped (they set the starting masks).
    """
    from matplotlib.figure import Figure

    panels = [(t, [r for r in rows if r.get("kind") in ("adapt", "prune", "finalize")]) for t, rows in runs.items()]
    panels = [(t, rows) for t, rows in panels if rows]
    n = max(1, len(panels))
    fig = Figure(figsize=(9, 2.9 * n + 0.6))
    cmap = __import__("matplotlib").colormaps["tab10"]
    for p, (title, rows) in enumerate(panels or [("no adapt/prune events", [])]):
        ax = fig.add_subplot(n, 1, p + 1)
        langs = sorted({r["language"] for r in rows})
        steps = sorted({int(r["step"]) for r in rows})
        k = max(1, len(langs))
        width = 0.8 / k
        for j, l in enumerate(langs):
            by_step = {int(r["step"]): r for r in rows if r["language"] == l}
            size = lambda r: (r["kept"] / max(1e-12, 1.0 - r["sparsity"])) if r.get("sparsity", 1) < 1 else 1  # noqa: E731
            xs = [i + (j - (k - 1) / 2) * width for i, s in enumerate(steps) if s in by_step]
            rv = [100 * by_step[s]["revived"] / size(by_step[s]) for s in steps if s in by_step]
            dr = [-100 * by_step[s]["dropped"] / size(by_step[s]) for s in steps if s in by_step]
            ax.bar(xs, rv, width=width, color=cmap(j % 10), label=l)
            ax.bar(xs, dr, width=width, color=cmap(j % 10), alpha=0.45, hatch="//", edgecolor="white")
        kinds = {int(r["step"]): r["kind"] for r in rows}
        ax.set_xticks(range(len(steps)))
        ax.set_xticklabels([f"{s}\n{kinds[s]}" for s in steps], fontsize=7)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel("% of P\n(+revived / −dropped)", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        if langs:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, title="language", title_fontsize=7)
    fig.axes[-1].set_xlabel("optimizer step of the event (and its kind)")
    fig.tight_layout()
    return _save(fig, path)


def plot_cost(cost: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path, title: str = "Cost per pipeline") -> Path:
    """Two panels per pipeline (mean over seeds): wall seconds (upstream included), and the share of them spent
    computing masks, written next to its bar; the legend sits outside the axes.

    ``cost``: label → {"wall_seconds": [...], "mask_seconds": [...]}.
    """
    from matplotlib.figure import Figure

    labels = list(cost)
    fig = Figure(figsize=(10, 0.38 * len(labels) + 1.8))
    ax, ax2 = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    wall = [mean_std(cost[l].get("wall_seconds", []))[0] for l in labels]
    mask = [mean_std(cost[l].get("mask_seconds", []))[0] for l in labels]
    wall = [0.0 if math.isnan(x) else x for x in wall]
    mask = [0.0 if math.isnan(x) else x for x in mask]
    share = [100 * m / w if w else 0.0 for m, w in zip(mask, wall)]
    ys = list(range(len(labels)))
    ax.barh(ys, wall, color="tab:blue", label="wall time (upstream included)")
    ax.barh(ys, mask, color="tab:orange", label="of which computing masks")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds (mean over seeds)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    ax2.barh(ys, share, color="tab:orange")
    for y, v in zip(ys, share):
        ax2.text(v, y, f" {v:.1f}%", va="center", fontsize=7)
    ax2.set_xlim(0, max(share + [1.0]) * 1.25)
    ax2.set_xlabel("% of the wall time computing masks")
    ax2.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
