"""Structural simplifications: identity delays and sums of disjoint pads.

Both shapes come out of the adjoint (and out of graphs users write the same
way). The adjoint mirrors every undelayed forward edge with an undelayed
``delay`` node — an identity a backend would otherwise copy — and the
gradient of a value sliced into pieces (an LSTM's four gates) is the sum of
each piece's gradient zero-padded back to the whole width, which a backend
computes as a sum of mostly-zero terms with a bounds test per element.
This pass reads through the identities and writes such a sum as the
``concat`` of the pieces.
"""

from __future__ import annotations

import numpy as np

from rnngraph.ir.graph import Graph
from rnngraph.passes._infra import GraphPass

__all__ = ["simplify_structure"]


def _bypass_identity_delays(graph: Graph) -> bool:
    """Consumers of ``delay`` nodes that read their operand undelayed read the operand."""
    g = graph.nx_graph
    outputs = set(graph.output_nodes().values())
    changed = False
    for n in sorted(g.nodes):
        if g.nodes[n]["op"] != "delay" or n in outputs:
            continue
        ops = graph.operands(n)
        if len(ops) != 1 or ops[0][1] != 0:
            continue
        # delay(x, 0) is x at every step, so a read of it k steps back (with its own
        # initial value) is the same read of x.
        graph.replace_uses(n, ops[0][0])
        changed = True
    return changed


def _pad_pieces(graph: Graph, root: int) -> list[tuple[int, int, int, int]] | None:
    """The pads summed by the ``add`` tree at ``root``: ``(pad node, start, width, axis)``
    each, or None unless every leaf is an undelayed zero pad along one axis and every
    inner ``add`` is read only inside the tree (not elsewhere, not as an output)."""
    g = graph.nx_graph
    t = g.nodes[root]["type"]
    outputs = set(graph.output_nodes().values())
    leaves: list[int] = []
    stack = [root]
    while stack:
        n = stack.pop()
        for u, delay, _ in graph.operands(n):
            d = g.nodes[u]
            if delay or d["type"] != t:
                return None
            if d["op"] == "add" and g.out_degree(u) == 1 and u not in outputs:
                stack.append(u)
            elif d["op"] == "pad" and len(d["attrs"]["axes"]) == 1:
                leaves.append(u)
            else:
                return None
    pieces = []
    for p in leaves:
        attrs = g.nodes[p]["attrs"]
        ((lo, hi),) = attrs["pads"]
        axis = int(attrs["axes"][0])
        size = t.shape[t.rank + axis]
        pieces.append((p, lo, size - lo - hi if isinstance(size, int) else -1, axis))
    return pieces


def _tiles(pieces: list[tuple[int, int, int, int]], size: int) -> bool:
    """Whether the pieces, in order of their starts, cover ``[0, size)`` exactly once."""
    end = 0
    for _, start, width, _ in pieces:
        if start != end or width <= 0:
            return False
        end += width
    return end == size


def _sums_of_pads_to_concat(graph: Graph) -> bool:
    """``pad(a, (0, n - k)) + pad(b, (k, 0))`` (any number of pieces that tile the axis
    exactly once, in any order) becomes ``concat(a, b)``."""
    g = graph.nx_graph
    changed = False
    for root in sorted(g.nodes):
        if g.nodes[root]["op"] != "add":
            continue
        pieces = _pad_pieces(graph, root)
        if not pieces or len({axis for *_, axis in pieces}) != 1:
            continue
        t = g.nodes[root]["type"]
        axis = pieces[0][3]
        if not isinstance(t.shape[t.rank + axis], int):
            continue
        pieces.sort(key=lambda p: p[1])
        if not _tiles(pieces, int(t.shape[t.rank + axis])):
            continue
        operands = [graph.operands(p)[0] for p, *_ in pieces]
        name = g.nodes[root]["name"]
        new = graph.add_node_raw(
            "concat", t, {"axis": axis}, operands, name=graph.fresh_name(f"{name}.pieces")
        )
        graph.replace_uses(root, new)
        changed = True
    return changed


def _simplify(graph: Graph, params: dict[str, np.ndarray]) -> bool:
    changed = _bypass_identity_delays(graph)
    changed = _sums_of_pads_to_concat(graph) or changed
    if changed:
        from rnngraph.passes.canonicalize import _dce

        _dce(graph, params)
    return changed


simplify_structure = GraphPass(
    "simplify_structure",
    _simplify,
    "Undelayed delay nodes are read through, and a sum of zero pads that tile an axis "
    "(the gradient of a value sliced into pieces) becomes the concat of the pieces.",
)
