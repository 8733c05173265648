"""A table of contents for a long Markdown file of results (BENCHMARKS.md), kept in a marked block.

The block lists the file's level-2 headings as links, in order, with the anchors GitHub gives them
(github-slugger: lower case, punctuation dropped, spaces as hyphens, ``-1``, ``-2``... for repeats),
and, indented, the level-3 headings written by hand between the scripts' sections (a write-up, not a
table of a script's output). Level-2 headings that occur more than once also name the
``<!-- name:start -->`` section they sit in, so that the many runs of one benchmark stay apart.
``write_markdown_section`` refreshes the block of a file that has one; ``python benchmarks/contents.py``
adds or refreshes it after a hand edit.

Limits: ATX headings only (``## Title``, up to 3 spaces of indent; setext underlines are not read),
and anchors are made from the heading's Markdown source, so emphasis, links and HTML entities in a
heading would give an anchor other than GitHub's (BENCHMARKS.md's headings use code spans only,
which slug as GitHub slugs them).

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
_BLOCK = re.compile(re.escape(START) + ".*?" + re.escape(END), flags=re.S)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$")
_MARKER = re.compile(r"^<!-- ([^ ]+):(start|end) -->$")


@dataclass(frozen=True)
class Heading:
    """One heading: its level (1-6), text as written, GitHub anchor, and the marked section it sits in."""

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


def _unique(base: str, seen: dict[str, int]) -> str:
    """github-slugger's de-duplication: ``base``, then ``base-1``, ``base-2``... skipping anchors already taken."""
    anchor = base
    while anchor in seen:
        seen[base] += 1
        anchor = f"{base}-{seen[base]}"
    seen[anchor] = 0
    return anchor


def headings(text: str) -> list[Heading]:
    """Every heading of ``text`` outside code fences, HTML comments and the contents block, with its anchor."""
    found: list[Heading] = []
    seen: dict[str, int] = {}
    fence: str | None = None
    comment = False
    section: str | None = None
    for line in _BLOCK.sub("", text).splitlines():
        f = _FENCE.match(line)
        if fence is not None:  # inside a fence: only a fence of the same character, at least as long, closes it
            if f and f.group(1)[0] == fence[0] and len(f.group(1)) >= len(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if f:
            fence = f.group(1)
            continue
        marker = _MARKER.match(line.strip())
        if marker:
            section = marker.group(1) if marker.group(2) == "start" else None
            continue
        if comment:
            comment = "-->" not in line
            continue
        if line.lstrip().startswith("<!--") and "-->" not in line:
            comment = True
            continue
        m = _HEADING.match(line)
        if m:
            title = m.group(2) or ""
            found.append(Heading(len(m.group(1)), title, _unique(slug(title), seen), section))
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
    if not _BLOCK.search(text):
        return text
    return _BLOCK.sub(lambda _: contents_block(text), text, count=1)


def with_contents(text: str) -> str:
    """``text`` with a contents block: refreshed where it has one, else inserted after a first-line ``# Title``
    (at the very top when the file does not start with one)."""
    if _BLOCK.search(text):
        return refresh_contents(text)
    first, _, rest = text.partition("\n")
    if re.match(r"^# ", first):
        return f"{first}\n\n{contents_block(text)}\n\n{rest.lstrip(chr(10))}"
    return f"{contents_block(text)}\n\n{text}"
