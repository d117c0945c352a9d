"""Params as run-time inputs: the graph a population model compiles.

:func:`lift_params` turns chosen params into *per-sequence inputs* (one value per
batch row, see :meth:`Graph.input` with ``axis=None``). Each batch row then carries
its own weights, so a batch of ``P * B`` rows evaluates ``P`` weight vectors on ``B``
sequences each in one call (:class:`rnngraph.runtime.population.PopulationModel` does
that folding). The rewrite is exact: every row computes what the original graph
computes with that row's weights.

A param's consumers change only where a time-invariant operand and a per-row one
broadcast differently:

- element-wise ops (and ``where``) align operands from the end, so a lifted param
  gets unit axes after its batch axis until its row is as long as the longest
  operand's;
- ``matmul`` treats a signal's row as a matrix's row: both sides are put in matrix
  form (a vector row becomes ``(1, k)`` or ``(k, 1)``), their leading axes padded
  alike, and the product reshaped back to the node's own row shape;
- ``layer_norm`` normalises with unit scale and zero bias, then applies the lifted
  scale and bias element-wise.

What is computed from lifted params only becomes per-sequence too (a ``(B, *shape)``
value, computed once before the steps). Ops whose param operand has no per-row
form here (a convolution's kernel, a fixed point's captured weights) raise a
:class:`~rnngraph.errors.GraphError` naming the node.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> from rnngraph.program.population import lift_params
>>> g = rg.Graph("lin")
>>> g.output("y", rg.linear(g.input("x", 3), 2, name="lin"))
>>> lg = lift_params(g)
>>> sorted(lg.per_sequence_inputs), lg.params
(['lin.W', 'lin.b'], {})
>>> p = g.init_params(seed=0)
>>> xs = np.ones((4, 1, 3))
>>> y = rg.run(lg, {"x": xs, "lin.W": p["lin.W"][None], "lin.b": p["lin.b"][None]})["y"]
>>> bool(np.allclose(y, rg.run(g, {"x": xs}, p)["y"]))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from rnngraph.errors import GraphError, ShapeError
from rnngraph.ir.graph import Graph, InitSpec, Node
from rnngraph.ir.records import Records
from rnngraph.ir.types import BATCH, TensorType, format_shape
from rnngraph.ir.verify import verify

__all__ = ["BROADCASTING", "PASS_THROUGH", "lift_params"]

BROADCASTING = frozenset(
    {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "greater", "less", "equal", "where"}
)
"""Ops whose operands broadcast NumPy-style (aligned from the end)."""

PASS_THROUGH = frozenset(
    {
        # one operand, acting on the row alike whether or not it has a batch axis
        # (row-shaped attributes, axes counted from the end)
        *("neg", "abs", "exp", "log", "sqrt", "tanh", "sigmoid", "hard_sigmoid", "relu"),
        *("erf", "sin", "cos", "atan", "floor", "ceil"),
        *("leaky_relu", "softplus", "softsign", "clip", "cast", "heaviside", "stop_gradient"),
        *("reshape", "transpose", "unsqueeze", "slice", "pad", "cumsum", "softmax"),
        *("log_softmax", "reduce_sum", "reduce_mean", "reduce_max", "reduce_min"),
        *("reduce_prod", "argmax", "argmin", "top_k", "zeros_like"),
    }
)
"""Ops that take a lifted operand unchanged (their attributes count from the end)."""


class _Rewriter(Records):
    TAG = "per_row"

    def __init__(self, graph: Graph, names: Sequence[str]) -> None:
        super().__init__(graph, copy=False)
        self.names = set(names)
        self.lifted: set[int] = set()
        self.before: dict[int, TensorType] = {}

    def old_type(self, nid: int) -> TensorType:
        """The type the value had before lifting (that of the node it stands for)."""
        return self.before.get(nid) or self.graph.node(nid).type

    def row(self, nid: int, row: Sequence[Any], base: str) -> int:
        """``nid`` with its row made ``row`` (no node when it already is). Rows that
        differ in unit axes only (all this module asks for) change by dropping and
        inserting unit axes, so symbolic dimensions pass; others by ``reshape``."""
        t = self.type(nid)
        have, want = tuple(t.row_shape), tuple(row)
        if have == want:
            return nid
        if [d for d in have if d != 1] != [d for d in want if d != 1]:
            attrs = {"shape": [int(d) for d in want], "in_rank": len(have)}
            return self.add("reshape", attrs, [nid], base)
        units = [i - len(have) for i, d in enumerate(have) if d == 1]
        if units:  # drop every unit axis (a sum over a length-1 axis is the value)
            nid = self.add("reduce_sum", {"axes": units, "keepdims": False}, [nid], base)
        kept = [d for d in have if d != 1]
        for i, d in enumerate(want):
            if d == 1:  # insert each wanted unit axis, left to right
                kept.insert(i, 1)
                nid = self.add("unsqueeze", {"axis": i - len(kept)}, [nid], base)
        return nid

    # ------------------------------------------------------------- rules
    def broadcast(self, node: Node, operands: list[int]) -> list[int]:
        """Lifted operands padded with unit axes to the longest operand row."""
        old = [self.old_type(u) for u in operands]
        rank = max(len(t.row_shape) for t in old)
        out = []
        for u, t in zip(operands, old, strict=True):
            if u in self.lifted:
                row = t.row_shape
                u = self.row(u, (1,) * (rank - len(row)) + tuple(row), node.name)
            out.append(u)
        return out

    def matmul(self, node: Node, a: int, b: int) -> int:
        forms = []
        for u, left in ((a, True), (b, False)):
            row = tuple(self.old_type(u).row_shape)
            per_row = u in self.lifted or self.type(u).batched
            if len(row) == 1:
                row = (1, row[0]) if left else (row[0], 1)
            forms.append((u, row, per_row))
        lead = max(len(r) - 2 for _, r, _ in forms)
        parts = []
        for u, row, per_row in forms:
            if per_row:
                row = (1,) * (lead - (len(row) - 2)) + row
            parts.append(self.row(u, row, node.name) if per_row else self._matrix(u, row, node))
        product = self.add("matmul", {}, parts, node.name)
        return self.row(product, node.type.row_shape, node.name)

    def _matrix(self, u: int, row: tuple[int, ...], node: Node) -> int:
        if tuple(self.type(u).shape) == row:
            return u
        return self.add(
            "reshape", {"shape": list(row), "in_rank": self.type(u).rank}, [u], node.name
        )

    def layer_norm(self, node: Node, x: int, scale: int, bias: int) -> int:
        n = int(self.old_type(scale).shape[-1])
        dt = np.float64
        plain = self.add(
            "layer_norm",
            dict(node.attrs),
            [
                x,
                self.constant(np.ones(n, dt), node.name),
                self.constant(np.zeros(n, dt), node.name),
            ],
            node.name,
        )
        s, b = self.broadcast(node, [scale, bias])
        rank = len(self.old_type(x).row_shape)
        s = self.row(s, (1,) * (rank - 1) + (n,), node.name)
        b = self.row(b, (1,) * (rank - 1) + (n,), node.name)
        return self.add("add", {}, [self.add("mul", {}, [plain, s], node.name), b], node.name)

    # --------------------------------------------------------------- run
    def rewrite(self) -> Graph:
        g = self.graph
        order = list(nx.topological_sort(g.zero_delay_view()))
        rename: dict[int, int] = {}  # node -> the node that now stands for it
        for nid in order:
            node = g.node(nid)
            operands = g.operands(nid)
            if node.op == "param" and node.name in self.names:
                t = TensorType((BATCH, *node.type.shape), node.type.dtype)
                self.nodes[nid] = Node(nid, node.name, "input", t, {"axis": None}, node.origin)
                self.lifted.add(nid)
                continue
            touched = [rename.get(u, u) for u, d, _ in operands if d == 0]
            if not any(u in self.lifted for u in touched):
                self.nodes[nid] = node
                for port, (u, d, init) in enumerate(operands):
                    self.edges.append((u, nid, port, d, self._init(init)))
                continue
            if any(d for _, d, _ in operands):  # (a delayed read of a time-invariant value)
                raise GraphError(f"node {node.name!r} reads a param through a delay")
            args = [rename.get(u, u) for u, _, _ in operands]
            new = self._lift(node, args)
            if not node.type.batched:
                self.lifted.add(new)
            elif self.type(new) != node.type:
                raise ShapeError(
                    f"node {node.name!r} ({node.op}) with per-row params has type "
                    f"{self.type(new)}, not its own {node.type}"
                )
            rename[nid] = new
            self.before[new] = node.type
        return self._graph(rename)

    def _lift(self, node: Node, args: list[int]) -> int:
        op = node.op
        try:
            if op in BROADCASTING:
                new = self.add(op, dict(node.attrs), self.broadcast(node, args), node.name)
            elif op == "matmul":
                new = self.matmul(node, *args)
            elif op == "layer_norm":
                new = self.layer_norm(node, *args)
            elif (
                op in PASS_THROUGH
                or (op == "gather" and args[0] in self.lifted)
                or (op == "concat" and all(u in self.lifted or self.type(u).batched for u in args))
            ):
                new = self.add(op, dict(node.attrs), args, node.name)
            else:
                lifted = [self.nodes[u].name for u in args if u in self.lifted]
                raise GraphError(
                    f"node {node.name!r} ({op}) reads {lifted}, computed from params; the "
                    f"population form has no per-row {op!r}: keep those params out of it "
                    "(compile with population_params= naming the others)"
                )
        except ValueError as e:
            shapes = ", ".join(format_shape(self.type(u).shape) for u in args)
            raise ShapeError(
                f"node {node.name!r} ({op}) with per-row params ({shapes}): {e}"
            ) from e
        if not node.type.batched and self.type(new).row_shape != node.type.shape:
            new = self.row(new, node.type.shape, node.name)
        return new

    def _init(self, init: InitSpec) -> InitSpec:
        if init.kind == "param" and init.ref in self.names:
            return InitSpec("input", init.ref)
        return init

    def _graph(self, rename: dict[int, int]) -> Graph:
        g = self.graph
        # a rewritten node keeps its name: the replacement takes it, the old one goes
        for old, new in rename.items():
            if old in self.nodes:
                continue
            self.taken.discard(self.nodes[new].name)
            self.retype(new, self.nodes[new].type, name=g.node(old).name)
        self.edges = [(rename.get(u, u), v, k, d, i) for u, v, k, d, i in self.edges]
        self.interface = {
            "inputs": {
                **g.input_nodes(),
                **{k: v for k, v in g.param_nodes().items() if k in self.names},
            },
            "params": {k: v for k, v in g.param_nodes().items() if k not in self.names},
            "states": g.state_nodes(),
            "outputs": {k: rename.get(v, v) for k, v in g.output_nodes().items()},
        }
        return self.build()


def lift_params(graph: Graph, names: Sequence[str] | None = None) -> Graph:
    """``graph`` with the params ``names`` (default: all) as per-sequence inputs.

    Each lifted param ``p`` of shape ``S`` becomes an input of the same name taking
    ``(B, *S)``: row ``b`` runs with weights ``p[b]``. States that start from a lifted
    param (``init="param"``) start from that row's value. See the module docstring for
    how consumers are rewritten.
    """
    verify(graph)
    chosen = list(graph.params) if names is None else list(names)
    unknown = sorted(set(chosen) - set(graph.params))
    if unknown:
        raise GraphError(
            f"graph {graph.name!r} has no params {unknown}; its params: {sorted(graph.params)}"
        )
    return _Rewriter(graph, chosen).rewrite()
