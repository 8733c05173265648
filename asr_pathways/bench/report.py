"""The benchmark's report: ``OUT/report.md``, ``OUT/results.json`` and ``OUT/plots/*.png``.

A :class:`Report` is a list of Markdown sections, each with an id (``header``, ``table1``,
``table2``, ``claims``, ``size``, ``table3``, ``masks``, ``mask_changes``, ``ablations``, ``table2_8lang``,
``why``), so that ``demo`` and the BENCHMARKS.md section pick what they show by id. The sections
are built by :mod:`.tables`, :mod:`.deployed` and :mod:`.analysis` from the finished runs (:class:`.results.Results`).

>>> r = Report({"header": "# T\\n", "table1": "## Table 1\\n![plot](p.png)\\n| a |\\n"})
>>> r.text("table1", images=False)
'## Table 1\\n| a |\\n'
>>> r.ids()
['header', 'table1']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import analysis, deployed, tables
from .contents import refresh_contents
from .plan import Context, Planner
from .results import Results

# section id -> builder, in the order of the report
SECTIONS: list[tuple[str, Callable[[tables.Draft], list[str] | None]]] = [
    ("table1", tables.table1_section),
    ("table2", tables.table2_section),
    ("claims", tables.claims_section),
    ("size", deployed.size_section),
    ("table3", tables.cost_section),
    ("masks", analysis.masks_section),
    ("mask_changes", analysis.mask_changes_section),
    ("ablations", analysis.ablations_section),
    ("table2_8lang", tables.eight_section),
    ("why", analysis.why_section),
]
FIGURE_SECTIONS = ("masks", "mask_changes")  # left out of the BENCHMARKS.md section


@dataclass
class Report:
    """Markdown sections by id, in report order."""

    sections: dict[str, str] = field(default_factory=dict)

    def ids(self) -> list[str]:
        return list(self.sections)

    def text(self, *ids: str, images: bool = True) -> str:
        """The Markdown of the given sections (all when none is named); ``images=False`` drops image lines."""
        parts = [self.sections[i] for i in (ids or self.sections) if i in self.sections]
        text = "\n".join(parts)
        if not images:
            text = "".join(l for l in text.splitlines(keepends=True) if not l.startswith("!["))
        return text

    @property
    def markdown(self) -> str:
        return self.text()


def build_report(planner: Planner, layout: dict[str, Any], records: dict[str, dict[str, Any]], ctx: Context,
                 wall: float, command: str, machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """Tables (JSON + Markdown) and plots into ``OUT/report.md``, ``OUT/results.json``, ``OUT/plots/``.

    Returns the results (what results.json holds) with ``report`` (a :class:`Report`) and
    ``report_markdown`` added.
    """
    from ..io import atomic_write_json, atomic_write_text
    from .machine import machine_info

    d = tables.Draft(planner, layout, ctx, Results(planner, layout, records))
    report = Report({"header": "\n".join(tables.header_section(d, wall, command, machine or machine_info()))})
    for sid, build in SECTIONS:
        lines = build(d)
        if lines:
            report.sections[sid] = "\n".join(lines)
    results = d.results
    results["files"] = d.files
    results.setdefault("why", "")
    atomic_write_json(ctx.out / "results.json", results)
    atomic_write_text(ctx.out / "report.md", report.markdown)
    return results | {"report": report, "report_markdown": report.markdown}


# ------------------------------------------------------------------------------------ BENCHMARKS.md
def write_markdown_section(path: str | Path, name: str, body: str) -> Path:
    """Replace (or append) the ``<!-- name:start -->``...``<!-- name:end -->`` section of a Markdown file, and
    refresh its contents block if it has one (``bench/contents.py``)."""
    from ..io import atomic_write_text

    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    if start in text and end in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    return atomic_write_text(path, refresh_contents(text))


def write_benchmarks_section(results: dict[str, Any], ctx: Context, path: str | Path) -> Path:
    """The report's tables (no figures) as the ``paper_tables`` section of ``path`` (e.g. BENCHMARKS.md)."""
    from .machine import machine_line

    report: Report = results["report"]
    ids = [i for i in report.ids() if i not in FIGURE_SECTIONS]
    body = [f"## Paper tables (`asr-pathways bench --profile {ctx.profile.name}`)", "",
            f"Report with plots: `{ctx.out / 'report.md'}` (raw numbers: `{ctx.out / 'results.json'}`). "
            f"Machine: {machine_line(results['machine'])}.", ""]
    for line in report.text(*ids, images=False).splitlines()[1:]:  # the report's title is replaced by this section's
        body.append(line.replace("## ", "### ", 1) if line.startswith("## ") else line)
    return write_markdown_section(path, "paper_tables", "\n".join(body))
