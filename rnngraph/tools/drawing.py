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
from typing import Any

from rnngraph.errors import GraphError
from rnngraph.files import atomic_path, atomic_write
from rnngraph.ir.graph import Graph
from rnngraph.ir.structure import regions
from rnngraph.ir.verify import verify

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


MAX_NODES = 400
"""The most boxes a drawing holds; bigger graphs are drawn collapsed (see :func:`to_dot`)."""

DOT_SECONDS = 120
"""How long Graphviz may take to lay a drawing out before it is stopped."""


def to_dot(graph: Graph, max_nodes: int = MAX_NODES) -> str:
    """The graph in Graphviz DOT: one node per op, delays as edge labels ``z^-d``; in a
    graph of several sequence axes, nodes filled with their axis' colour (a legend says
    which), per-sequence values grey.

    A graph of more than ``max_nodes`` nodes is drawn collapsed: each recurrent
    region becomes one box, and other nodes one box per name scope (a cell's
    ``"enc.fw.*"`` nodes: ``enc.fw``), with the number of nodes inside; if that is
    still too many boxes, the first ``max_nodes`` are drawn and a note says how
    many are left out and how to see them (a larger ``max_nodes``, or
    ``rnngraph inspect``). Graphviz's memory and time then stay bounded.
    """
    verify(graph)
    if not isinstance(max_nodes, int) or max_nodes < 1:
        raise GraphError(f"max_nodes must be a positive integer, got {max_nodes!r}")
    g = graph.nx_graph
    lines = [
        f"digraph {_q(graph.name)} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
    ]
    recurrent = [r for r in regions(graph) if r.recurrent]
    if g.number_of_nodes() > max_nodes:
        return "\n".join(lines + _collapsed(graph, recurrent, max_nodes)) + "\n}\n"

    fills, legend = _axis_fills(graph)

    def node_line(n: int, indent: str) -> str:
        d = g.nodes[n]
        label = f"{d['name']}\n{d['op']} {d['type']}"
        shape = _SHAPES.get(d["op"], "ellipse")
        fill = f", style=filled, fillcolor={_q(fills[n])}" if n in fills else ""
        return f"{indent}n{n} [label={_q(label)}, shape={shape}{fill}];"

    placed: set[int] = set()
    for i, r in enumerate(recurrent):
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
    if legend:
        text = "sequence axes: " + ", ".join(f"{a} ({c})" for a, c in legend.items())
        lines.append(f"  axes [label={_q(text)}, shape=note, color=gray];")
    lines.append("}")
    return "\n".join(lines) + "\n"


_PALETTE = ("lightblue", "palegreen", "khaki", "lightpink", "plum", "lightsalmon")


def _axis_fills(graph: Graph) -> tuple[dict[int, str], dict[str, str]]:
    """For a graph of several sequence axes: a fill colour per node (one per axis, grey
    for per-sequence values) and the legend; nothing for a graph of one axis."""
    from rnngraph.program.axes import node_axes

    axes = node_axes(graph)
    names = sorted(set(axes.values()))
    if len(names) < 2:
        return {}, {}
    legend = {a: _PALETTE[i % len(_PALETTE)] for i, a in enumerate(names)}
    legend["per sequence"] = "lightgray"
    fills = {n: legend[a] for n, a in axes.items()}
    for n, d in graph.nx_graph.nodes(data=True):
        if n not in fills and d["type"].batched:
            fills[n] = legend["per sequence"]
    return fills, legend


def _collapsed(graph: Graph, recurrent: list[Any], max_nodes: int) -> list[str]:
    """The body of a collapsed drawing: a box per recurrent region and per name scope."""
    g = graph.nx_graph
    group: dict[int, str] = {}
    labels: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for i, r in enumerate(recurrent):
        key = f"r{i}"
        way = "forward" if r.direction > 0 else "backward"
        labels[key] = f"recurrent region {i} ({way})"
        for n in r.nodes:
            group[n] = key
    for n in sorted(g.nodes):
        if n not in group:
            name = g.nodes[n]["name"]
            scope = name.rsplit(".", 1)[0] if "." in name else name
            group[n] = f"s:{scope}"
            labels.setdefault(group[n], scope)
    for key in group.values():
        sizes[key] = sizes.get(key, 0) + 1
    order = list(dict.fromkeys(group[n] for n in sorted(g.nodes)))
    shown = order[:max_nodes]
    ids = {key: f"g{i}" for i, key in enumerate(shown)}
    lines = []
    for key in shown:
        label = labels[key] + (f"\n{sizes[key]} nodes" if sizes[key] > 1 else "")
        style = ", color=firebrick" if key.startswith("r") else ""
        lines.append(f"  {ids[key]} [label={_q(label)}, shape=box{style}];")
    edges: dict[tuple[str, str], int] = {}
    for u, v, d in g.edges(data="delay"):
        a, b = group[u], group[v]
        if a != b and a in ids and b in ids:
            edges[a, b] = min(edges.get((a, b), abs(d)), abs(d)) if d else 0
    for (a, b), d in sorted(edges.items()):
        attrs = " [color=firebrick]" if d else ""
        lines.append(f"  {ids[a]} -> {ids[b]}{attrs};")
    note = (
        f"{g.number_of_nodes()} nodes drawn as {len(order)} boxes "
        f"(regions and name scopes collapsed; over max_nodes={max_nodes})"
    )
    if len(order) > max_nodes:
        note += (
            f"; {len(order) - max_nodes} more boxes not drawn: raise max_nodes "
            "(rnngraph draw --max-nodes N) or list the nodes with rnngraph inspect"
        )
    lines.append(f"  note [label={_q(note)}, shape=note, color=gray];")
    return lines


def draw(graph: Graph, path: str | os.PathLike[str], max_nodes: int = MAX_NODES) -> str:
    """Write the drawing to ``path``: ``.dot`` always; ``.svg``, ``.png``, ``.pdf`` via Graphviz.

    Returns the path written. Raises GraphError naming the fix when the
    format needs Graphviz and it is not installed, or when Graphviz fails or takes
    over :data:`DOT_SECONDS`. Graphs over ``max_nodes`` nodes are drawn collapsed
    (see :func:`to_dot`).
    """
    return render_dot(to_dot(graph, max_nodes), path)


def render_dot(text: str, path: str | os.PathLike[str]) -> str:
    """DOT ``text`` written to ``path`` (``.dot``), or laid out by Graphviz (``.svg``,
    ``.png``, ``.pdf``), atomically; errors as :func:`draw`'s."""
    p = Path(path)
    fmt = p.suffix.lstrip(".").lower()
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
    try:
        with atomic_path(p, suffix=f".{fmt}") as tmp:
            subprocess.run(
                [exe, f"-T{fmt}", "-o", str(tmp)],
                input=text.encode(),
                check=True,
                capture_output=True,
                timeout=DOT_SECONDS,
            )
    except subprocess.TimeoutExpired:
        raise GraphError(
            f"Graphviz took over {DOT_SECONDS} s to lay out {p.name}; draw fewer boxes "
            "(a smaller max_nodes) or write .dot"
        ) from None
    except subprocess.CalledProcessError as e:
        raise GraphError(f"Graphviz could not draw {p.name}: {e.stderr.decode().strip()}") from None
    return str(p)
