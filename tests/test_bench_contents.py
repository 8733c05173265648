"""The contents block of BENCHMARKS.md: GitHub anchors, repeats, fences, refresh on write."""

from __future__ import annotations

import sys
from pathlib import Path

from asr_pathways.bench.contents import END, START, contents_block, headings, refresh_contents, slug, with_contents
from asr_pathways.bench.report import write_markdown_section

ROOT = Path(__file__).resolve().parent.parent

DOC = """# Benchmarks

<!-- a:start -->
## Speed (`a.py`)
text
### Table 1 — monolingual
<!-- a:end -->

<!-- b:start -->
## Speed (`a.py`)
```bash
## a shell comment, not a heading
```
<!-- b:end -->

## C# and F# ##
### A write-up between sections
"""


def test_slug_follows_github():
    assert slug("Dense baseline, 7,000 steps (2026-12-02, third session): 19.6%, at the threshold") == (
        "dense-baseline-7000-steps-2026-12-02-third-session-196-at-the-threshold")
    assert slug("Table 1 — monolingual pruning") == "table-1--monolingual-pruning"
    assert slug("`make demo` on an AVX2-only CPU") == "make-demo-on-an-avx2-only-cpu"
    assert slug("snake_case kept") == "snake_case-kept"


def test_headings_number_repeats_and_skip_fences():
    hs = headings(DOC)
    assert [(h.level, h.anchor, h.section) for h in hs] == [
        (1, "benchmarks", None),
        (2, "speed-apy", "a"),
        (3, "table-1--monolingual", "a"),
        (2, "speed-apy-1", "b"),
        (2, "c-and-f", None),
        (3, "a-write-up-between-sections", None),
    ]


def test_contents_lists_level_two_and_hand_written_level_three_and_names_sections_of_repeated_titles():
    block = contents_block(DOC).splitlines()
    assert block[0] == START and block[-1] == END
    assert block[3:-1] == [
        "- [Speed (`a.py`)](#speed-apy) (`a`)",
        "- [Speed (`a.py`)](#speed-apy-1) (`b`)",
        "- [C# and F#](#c-and-f)",
        "  - [A write-up between sections](#a-write-up-between-sections)",
    ]


def test_with_contents_inserts_after_title_and_is_idempotent():
    once = with_contents(DOC)
    assert once.startswith("# Benchmarks\n\n" + START)
    assert with_contents(once) == once
    # the block's own lines are not headings: anchors do not move once it is there
    assert [h.anchor for h in headings(once)] == [h.anchor for h in headings(DOC)]
    assert once.replace(contents_block(DOC) + "\n\n", "") == DOC


def test_repeats_skip_anchors_already_taken_as_github_slugger_does():
    assert [h.anchor for h in headings("## Foo\n## Foo\n## Foo 1\n")] == ["foo", "foo-1", "foo-1-1"]


def test_nested_fences_comments_and_indents():
    text = "````\n```\n## inner\n```\n````\n## after\n<!--\n## hidden\n-->\n   ## indented\n    ## code\n#tag\n"
    assert [h.title for h in headings(text)] == ["after", "indented"]


def test_without_a_title_the_block_goes_on_top_and_not_into_a_section():
    text = "<!-- a:start -->\n## A\n<!-- a:end -->\n"
    out = with_contents(text)
    assert out.startswith(START) and out.endswith(text)
    assert "- [A](#a)" in out


def test_refresh_leaves_a_file_without_a_block_alone():
    assert refresh_contents(DOC) == DOC


def test_writing_a_section_refreshes_the_contents(tmp_path):
    path = tmp_path / "B.md"
    path.write_text(with_contents(DOC))
    write_markdown_section(path, "c", "## New benchmark\n\n| x |\n| --- |\n| 1 |")
    text = path.read_text()
    assert "- [New benchmark](#new-benchmark)" in text.split(END)[0]
    assert text.count(START) == 1 and text.rstrip().endswith("<!-- c:end -->")
    plain = tmp_path / "plain.md"
    write_markdown_section(plain, "c", "## New benchmark")
    assert START not in plain.read_text()


def test_benchmarks_md_contents_are_up_to_date():
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert with_contents(text) == text, "BENCHMARKS.md's contents block is stale: run `python benchmarks/contents.py`"


def test_contents_script_adds_then_checks(tmp_path, capsys):
    sys.path.insert(0, str(ROOT))
    from benchmarks.contents import main

    path = tmp_path / "B.md"
    path.write_text(DOC, encoding="utf-8")
    assert main([str(path), "--check"]) == 1
    assert main([str(path)]) == 0
    assert main([str(path), "--check"]) == 0
    assert path.read_text(encoding="utf-8") == with_contents(DOC)
