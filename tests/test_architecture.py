"""The project's import graph, parsed from the source (lazy imports inside functions
included; imports under ``if TYPE_CHECKING:`` left out, as they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest
from rnngraph_onnx._lowering import LOWERING

from rnngraph.ir.registry import ADJOINT, OPS, REFERENCE, TANGENT

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "rnngraph": ROOT / "rnngraph",
    "rnngraph_onnx": ROOT / "backends" / "rnngraph_onnx",
    "rnngraph_tvm": ROOT / "backends" / "rnngraph_tvm",
}


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


def test_no_import_cycles() -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


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


STAGES = [
    {"rnngraph.errors", "rnngraph.files", "rnngraph.plot"},
    {"rnngraph.ir"},
    {"rnngraph.ops"},
    {"rnngraph.trees"},
    {"rnngraph.cells"},
    {"rnngraph.passes"},
    {"rnngraph.program"},
    {"rnngraph.runtime"},
    {"rnngraph.autodiff"},
    {"rnngraph.training", "rnngraph.quant"},
    {"rnngraph.tools", "rnngraph.__main__"},
]
"""The pipeline's stages in order (see docs/architecture.md): a module may import its
own stage and the ones before it, never a later one."""


def _stage(module: str) -> int | None:
    if module == "rnngraph":  # the package itself, the public API: on top of every stage
        return len(STAGES)
    for i, names in enumerate(STAGES):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    return None


def _upward_imports(g: nx.DiGraph) -> list[str]:
    found = []
    for a, b in g.edges:
        sa, sb = _stage(a), _stage(b)
        if sa is not None and sb is not None and sb > sa:
            found.append(f"{a} (stage {sa}) imports {b} (stage {sb})")
    return found


def test_every_module_has_a_stage() -> None:
    mods = [m for m in _modules() if m.startswith("rnngraph.")]
    assert [m for m in mods if _stage(m) is None] == []


def test_no_upward_imports() -> None:
    """IR < ops < trees < cells < passes < program < runtime < autodiff < training <
    tools: no stage imports a later one, lazy imports included."""
    upward = _upward_imports(import_graph())
    assert not upward, "\n".join(upward)


def test_the_stage_check_sees_an_upward_import() -> None:
    g = nx.DiGraph([("rnngraph.ir.graph", "rnngraph.runtime.interpreter")])
    assert _upward_imports(g) == [
        "rnngraph.ir.graph (stage 1) imports rnngraph.runtime.interpreter (stage 7)"
    ]


def test_no_module_shadowed_by_a_function() -> None:
    """``rg.compile`` and friends are functions; no module of the same dotted name
    hides behind them (``rnngraph.trees.recursion.layout`` is reachable)."""
    import importlib

    for m in _modules():
        parent, _, leaf = m.rpartition(".")
        if not m.startswith("rnngraph."):
            continue
        obj = getattr(importlib.import_module(parent), leaf, None)
        mod = importlib.import_module(m)
        assert obj is None or obj is mod, f"{parent}.{leaf} is {obj!r}, not the module {m}"


def _graph_private_names() -> set[str]:
    """The private attributes and methods of ``Graph`` (``self._x`` in graph.py)."""
    import re

    text = (ROOT / "rnngraph" / "ir" / "graph.py").read_text()
    return set(re.findall(r"self\.(_[a-z][a-z_]*)\b", text)) | set(
        re.findall(r"    def (_[a-z][a-z_]*)\(", text)
    )


def test_only_the_ir_touches_graph_internals() -> None:
    """Outside graph.py nothing reads or writes Graph's private members or edits its
    networkx graph: the IR is changed through its own methods (which keep its names and
    version, and so Graph.memo's caches, right)."""
    assert not _touching_internals(), "\n".join(_touching_internals())


def test_the_internals_check_sees_a_touch(tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "a.py").write_text("def f(g):\n    g._version += 1\n    g.nx_graph.add_edge(0, 1)\n")
    monkeypatch.setitem(PACKAGES, "demo", pkg)
    assert len([t for t in _touching_internals() if "demo" in t]) == 2


def _touching_internals() -> list[str]:
    """``file:line: text`` of each line outside graph.py that touches Graph's internals."""
    import re

    private = _graph_private_names() - {"__init__"}
    pattern = re.compile(r"(?<!self)\.(" + "|".join(sorted(private)) + r")\b")
    edits = re.compile(
        r"nx_graph\.(add_|remove_|clear|update)|nx_graph\.(nodes|edges)\[.*\]\.update"
    )
    found = []
    for f in _modules().values():
        if f == ROOT / "rnngraph" / "ir" / "graph.py":
            continue
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if pattern.search(line) or edits.search(line):
                found.append(f"{f}:{i}: {line.strip()}")
    return found


TVM_LACKS: set[str] = set()
"""Ops the TVM backend has no rule for yet (compiling one is a CompileError naming it):
none since ``gather`` (constant indices) has one."""


def test_every_op_has_its_rules() -> None:
    """An op is found by its name in every table: shape rule and reference (OPS,
    REFERENCE), adjoint and tangent rules, ONNX lowering, TVM rule (see
    docs/architecture.md, "Adding an op")."""
    # (the crossings between axes are computed between the axes' programs: by no backend)
    ops = {n for n, d in OPS.items() if not d.source and not d.between_axes}
    assert set(OPS) == set(REFERENCE)
    assert ops - set(ADJOINT) == set()
    assert ops - set(TANGENT) == set()
    assert ops - set(LOWERING) == set()
    pytest.importorskip("tvm")
    from rnngraph_tvm._ops import RULES

    after_steps = {n for n, d in OPS.items() if d.after_steps}  # (the code generator's own)
    assert ops - set(RULES) - after_steps == TVM_LACKS
