"""The shape of the package: small modules, no import cycles, no path tricks, readable recipes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "asr_pathways"
MAX_LINES = 400


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def import_graph(root: Path, module_level_only: bool) -> dict[str, set[str]]:
    """Module -> the modules of ``root`` it imports (``if TYPE_CHECKING`` blocks, which never run, and
    imports of a module's own parent packages, which Python initialises first, are left out)."""
    mods = _modules(root)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        tree = ast.parse(f.read_text())
        for n in ast.walk(tree):
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                n.body = []
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for n in (tree.body if module_level_only else ast.walk(tree)):
            if isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - (n.level - 1)]
                    base = ".".join(up + ([n.module] if n.module else []))
                subs = [f"{base}.{a.name}" for a in n.names if f"{base}.{a.name}" in mods]
                targets = subs or [base]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and not m.startswith(t + "."):
                    graph[m].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_is_longer_than_400_lines():
    long = {str(f.relative_to(ROOT)): n for f in PACKAGE.rglob("*.py") if (n := len(f.read_text().splitlines())) > MAX_LINES}
    assert not long, long


@pytest.mark.parametrize("root", [PACKAGE, ROOT / "benchmarks"], ids=["package", "benchmarks"])
def test_no_import_cycles(root: Path):
    assert cycles(import_graph(root, module_level_only=True)) == []
    assert cycles(import_graph(root, module_level_only=False)) == []


def test_the_package_never_reaches_outside_itself():
    for f in PACKAGE.rglob("*.py"):
        text = f.read_text()
        assert "sys.path" not in text, f
        assert not re.search(r"^\s*(from|import) benchmarks\b", text, re.M), f


@pytest.mark.parametrize("method", ["imp", "lth", "lap", "pathways", "adaptive", "dynamic"])
def test_each_method_file_holds_its_own_event_loop(method: str):
    """A recipe reads top to bottom: its run() loops over its own events and says what each does."""
    tree = ast.parse((PACKAGE / "methods" / f"{method}.py").read_text())
    run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
    loops = [n for n in ast.walk(run) if isinstance(n, ast.For) and "pending()" in ast.unparse(n.iter)]
    assert loops, f"{method}.run has no loop over its events"
    body = ast.unparse(loops[0])
    assert "ev.kind" in body and "end_event" in body and "train_until" in body


def test_the_mask_engine_knows_nothing_about_speech():
    graph = import_graph(PACKAGE, module_level_only=False)
    for m, deps in graph.items():
        if m.startswith("asr_pathways.sparsity"):
            assert not [d for d in deps if d.startswith(("asr_pathways.asr", "asr_pathways.data", "asr_pathways.methods"))], m
    text = " ".join(f.read_text() for f in (PACKAGE / "sparsity").glob("*.py"))
    for speech in ("subsampling", "ctc_head", "simple_"):
        assert speech not in text, speech
