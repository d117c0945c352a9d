"""Drawing a graph: Graphviz DOT with delays on edges and recurrent regions as clusters.

``to_dot`` needs nothing outside the package; ``draw`` writes ``.dot``
directly and renders ``.svg``/``.png``/``.pdf`` with Graphviz's ``dot``
program when it is installed.

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("acc")
>>> x = g.input("x", 2)
>>> s = g.state("s", 2)
>>> g.assign(s, s + x)
>>> g.output("y", s)
>>> print(to_dot(g).splitlines()[0])
digraph "acc" {
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from rnngraph.analysis import regions
from rnngraph.errors import GraphError
from rnngraph.files import atomic_path, atomic_write
from rnngraph.graph import Graph
from rnngraph.verify import verify

__all__ = ["draw", "to_dot"]

_SHAPES = {
    "input": "invhouse",
    "param": "note",
    "constant": "plaintext",
    "state": "box3d",
    "delay": "cds",
}


def _q(s: str) -> str:
    """A DOT string literal; newlines become DOT's line breaks."""
    escaped = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_dot(graph: Graph) -> str:
    """The graph in Graphviz DOT: one node per op, delays as edge labels ``z^-d``."""
    verify(graph)
    g = graph.nx_graph
    lines = [
        f"digraph {_q(graph.name)} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
    ]

    def node_line(n: int, indent: str) -> str:
        d = g.nodes[n]
        label = f"{d['name']}\n{d['op']} {d['type']}"
        shape = _SHAPES.get(d["op"], "ellipse")
        return f"{indent}n{n} [label={_q(label)}, shape={shape}];"

    placed: set[int] = set()
    for i, r in enumerate(r for r in regions(graph) if r.recurrent):
        way = "forward" if r.direction > 0 else "backward"
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(
            f"    label={_q(f'recurrent region {i} ({way})')}; style=rounded; color=firebrick;"
        )
        lines += [node_line(n, "    ") for n in r.nodes]
        lines.append("  }")
        placed.update(r.nodes)
    lines += [node_line(n, "  ") for n in sorted(g.nodes) if n not in placed]
    for name, n in graph.output_nodes().items():
        lines.append(f"  out_{len(lines)} [label={_q(name)}, shape=house];")
        lines.append(f"  n{n} -> out_{len(lines) - 1};")
    for u, v, _, d in sorted(g.edges(keys=True, data=True)):
        attrs = []
        if d["delay"]:
            label = _q(f"z^{-d['delay']}")
            attrs += [f"label={label}", "color=firebrick", "fontcolor=firebrick"]
        lines.append(f"  n{u} -> n{v}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(graph: Graph, path: str | os.PathLike[str]) -> str:
    """Write the drawing to ``path``: ``.dot`` always; ``.svg``, ``.png``, ``.pdf`` via Graphviz.

    Returns the path written. Raises GraphError naming the fix when the
    format needs Graphviz and it is not installed.
    """
    p = Path(path)
    fmt = p.suffix.lstrip(".").lower()
    text = to_dot(graph)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("dot", "gv"):
        atomic_write(p, text)
        return str(p)
    if fmt not in ("svg", "png", "pdf"):
        raise GraphError(f"cannot draw to {p.name}: use .dot, .svg, .png or .pdf")
    exe = shutil.which("dot")
    if exe is None:
        raise GraphError(
            f"drawing {p.name} needs Graphviz's 'dot' program (apt-get install graphviz); "
            "a .dot file needs nothing"
        )
    with atomic_path(p, suffix=f".{fmt}") as tmp:
        subprocess.run(
            [exe, f"-T{fmt}", "-o", str(tmp)], input=text.encode(), check=True, capture_output=True
        )
    return str(p)
