"""The project's import graph, parsed from the source (lazy imports inside functions
included; imports under ``if TYPE_CHECKING:`` left out, as they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "rnngraph": ROOT / "rnngraph",
    "rnngraph_onnx": ROOT / "backends" / "rnngraph_onnx",
    "rnngraph_tvm": ROOT / "backends" / "rnngraph_tvm",
}

KNOWN_CYCLE = {"rnngraph.analysis", "rnngraph.graph", "rnngraph.serialize", "rnngraph.verify"}
"""The core's one remaining cycle (issue 19): ``Graph.save`` imports serialize, which
builds graphs and verifies them. Shrink it; never grow it. (The op modules' cycle, through
their adjoint rules, is gone: the rules live in ``ops/_adjoints.py``.)"""


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, root in PACKAGES.items():
        for f in root.rglob("*.py"):
            parts = [pkg, *f.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


def import_graph() -> nx.DiGraph:
    """Module -> module for every import the source makes of the project's modules."""
    mods = _modules()
    g = nx.DiGraph()
    for m, f in mods.items():
        g.add_node(m)
        tree = ast.parse(f.read_text())
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for b in node.body
            for n in ast.walk(b)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                # (a submodule importing its own package's __init__ is not a cycle of ours)
                if name and name != m and not m.startswith(name + "."):
                    g.add_edge(m, name)
    return g


def test_no_import_cycles_but_the_known_one() -> None:
    cycles = [c for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    unknown = [sorted(c) for c in cycles if c != KNOWN_CYCLE]
    assert not unknown, f"new import cycles: {unknown}"
    assert len(cycles) <= 1


def test_the_finder_sees_a_cycle(tmp_path: Path, monkeypatch) -> None:
    """The parser finds a cycle through a lazy import (so the test above can fail)."""
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from demo.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from demo import a\n")
    monkeypatch.setitem(PACKAGES, "demo", pkg)
    cycles = [c for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert {"demo.a", "demo.b"} in cycles
