"""A table of contents for a long Markdown file of results (BENCHMARKS.md), kept in a marked block.

The block lists the file's level-2 headings as links, in order, with the anchors GitHub gives them
(lower case, punctuation dropped, spaces as hyphens, ``-1``, ``-2``... for repeats), and, indented,
the level-3 headings written by hand between the scripts' sections (a write-up, not a table of a
script's output). Level-2 headings that
occur more than once also name the ``<!-- name:start -->`` section they sit in, so that the many
runs of one benchmark stay apart. ``write_markdown_section`` refreshes the block of a file that has
one; ``python benchmarks/contents.py`` adds or refreshes it after a hand edit.

>>> text = "# Results\\n\\n## Speed (`x.py`)\\n\\n```\\n## not a heading\\n```\\n## Speed (`x.py`)\\n"
>>> [h.anchor for h in headings(text)]
['results', 'speed-xpy', 'speed-xpy-1']
>>> print(contents_block(with_contents(text)).splitlines()[3])
- [Speed (`x.py`)](#speed-xpy)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

START, END = "<!-- contents:start -->", "<!-- contents:end -->"
INTRO = ("**Contents** (refreshed by every benchmark script that writes a section; after a hand edit run "
         "`python benchmarks/contents.py`):")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_MARKER = re.compile(r"^<!-- ([^ ]+):(start|end) -->$")


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    anchor: str
    section: str | None  # the <!-- name:start --> block it sits in, if any


def slug(title: str) -> str:
    """GitHub's anchor for a heading's text (before de-duplication).

    >>> slug("`make demo` on an AVX2-only CPU (2026-12-03): 27.3 min")
    'make-demo-on-an-avx2-only-cpu-2026-12-03-273-min'
    """
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[Heading]:
    """Every heading of ``text`` outside code fences and outside the contents block, with its anchor."""
    found: list[Heading] = []
    seen: dict[str, int] = {}
    fenced = in_contents = False
    section: str | None = None
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.strip() in (START, END):
            in_contents = line.strip() == START
            continue
        marker = _MARKER.match(line.strip())
        if marker:
            section = marker.group(1) if marker.group(2) == "start" else None
            continue
        m = _HEADING.match(line)
        if in_contents or not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.append(Heading(len(m.group(1)), m.group(2), base if n == 0 else f"{base}-{n}", section))
    return found


def contents_block(text: str) -> str:
    """The contents block (markers included): ``text``'s level-2 headings, and its level-3 headings
    outside marked sections, indented."""
    listed = [h for h in headings(text) if h.level == 2 or (h.level == 3 and h.section is None)]
    counts: dict[str, int] = {}
    for h in listed:
        counts[h.title] = counts.get(h.title, 0) + 1
    lines = [START, INTRO, ""]
    for h in listed:
        where = f" (`{h.section}`)" if counts[h.title] > 1 and h.section else ""
        lines.append(f"{'  ' * (h.level - 2)}- [{h.title}](#{h.anchor}){where}")
    return "\n".join(lines + [END])


def refresh_contents(text: str) -> str:
    """``text`` with its contents block rebuilt; unchanged when it has none."""
    if START not in text or END not in text:
        return text
    return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: contents_block(text), text, count=1, flags=re.S)


def with_contents(text: str) -> str:
    """``text`` with a contents block: refreshed where it has one, else inserted after its first line."""
    if START in text and END in text:
        return refresh_contents(text)
    first, _, rest = text.partition("\n")
    return f"{first}\n\n{contents_block(text)}\n\n{rest.lstrip(chr(10))}"
