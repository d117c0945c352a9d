"""Rebuilding a graph from its records: what whole-graph transforms share.

A transform that retypes nodes (a param that becomes an input, a float weight that
becomes int8) cannot edit a graph in place: every type downstream would have to
change with it. It copies the graph's records (:class:`~rnngraph.ir.graph.Node` and
edges), edits them, adds nodes whose types the op rules infer, and builds a new graph
with :meth:`Graph.from_records`, which is then verified.

>>> import rnngraph as rg
>>> g = rg.Graph("g")
>>> x = g.input("x", 2)
>>> g.output("y", x)
>>> r = Records(g)
>>> neg = r.add("neg", {}, [x.node], "y")
>>> r.redirect(x.node, neg)
>>> h = r.build()
>>> [n.op for n in h.nodes()]
['input', 'neg']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Graph, InitSpec, Node
from rnngraph.ir.registry import lookup
from rnngraph.ir.types import TensorType
from rnngraph.ir.verify import verify

__all__ = ["Records"]

Edge = tuple[int, int, int, int, InitSpec]


class Records:
    """A graph's nodes, edges, arrays and interface, to edit and rebuild.

    ``copy=False`` starts with no nodes or edges (a transform that walks the graph and
    records each node as it goes); names and ids stay clear of the graph's either way.
    New nodes are named ``<base>.<TAG>`` unless a tag is given.
    """

    TAG = "t"

    def __init__(self, graph: Graph, *, copy: bool = True) -> None:
        self.graph = graph
        every = {n.id: n for n in graph.nodes()}
        self.nodes: dict[int, Node] = dict(every) if copy else {}
        self.edges: list[Edge] = [
            (u, n.id, port, d, init)
            for n in (graph.nodes() if copy else ())
            for port, (u, d, init) in enumerate(graph.operands(n.id))
        ]
        self.arrays: dict[str, np.ndarray] = dict(graph.arrays)
        self.next_id = max(every, default=-1) + 1
        self.taken = {n.name for n in every.values()} | set(graph.outputs)
        self.interface: dict[str, dict[str, int]] = {
            "inputs": graph.input_nodes(),
            "params": graph.param_nodes(),
            "states": graph.state_nodes(),
            "outputs": graph.output_nodes(),
        }

    def type(self, nid: int) -> TensorType:
        return self.nodes[nid].type

    def fresh(self, base: str, tag: str) -> str:
        """An unused name ``<base>.<tag>`` (numbered when taken)."""
        i, name = 0, f"{base}.{tag}"
        while name in self.taken:
            i += 1
            name = f"{base}.{tag}{i}"
        self.taken.add(name)
        return name

    def add(
        self,
        op: str,
        attrs: Mapping[str, Any],
        operands: Sequence[int],
        base: str,
        tag: str | None = None,
        *,
        type_: TensorType | None = None,
    ) -> int:
        """A new node on zero-delay operands, its type inferred (or given); its id."""
        t = type_ or lookup(op).infer([self.type(u) for u in operands], attrs)
        nid = self.next_id
        self.next_id += 1
        self.nodes[nid] = Node(nid, self.fresh(base, tag or self.TAG), op, t, dict(attrs), None)
        for port, u in enumerate(operands):
            self.edges.append((u, nid, port, 0, InitSpec()))
        return nid

    def constant(self, value: np.ndarray, base: str) -> int:
        """A constant node of ``value`` (an integer array is an int64 constant)."""
        name = self.fresh(base, "const")
        kind = "int64" if np.issubdtype(np.asarray(value).dtype, np.integer) else "float"
        if kind == "int64":
            value = np.asarray(value, np.int64)
        self.arrays[name] = value
        type_ = TensorType(np.shape(value), kind)
        return self.add("constant", {"array": name}, [], base, "c", type_=type_)

    def retype(self, nid: int, type_: TensorType, **changes: Any) -> None:
        """Node ``nid`` with a new type (and op / attrs / name if given)."""
        n = self.nodes[nid]
        self.nodes[nid] = Node(
            nid,
            changes.get("name", n.name),
            changes.get("op", n.op),
            type_,
            changes.get("attrs", n.attrs),
            n.origin,
        )

    def redirect(self, old: int, new: int) -> None:
        """Every reader of ``old`` (and the outputs it is) reads ``new`` instead, except
        ``new`` itself."""
        self.edges = [
            (new if u == old and v != new else u, v, k, d, i) for u, v, k, d, i in self.edges
        ]
        outs = self.interface["outputs"]
        for k, nid in outs.items():
            if nid == old:
                outs[k] = new

    def build(self, name: str | None = None) -> Graph:
        g = self.graph
        out = Graph.from_records(
            name or g.name, list(self.nodes.values()), self.edges, self.interface,
            self.arrays, g.meta,
        )  # fmt: skip
        verify(out)
        return out
