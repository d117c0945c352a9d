"""Recursive networks: one cell applied over trees and DAGs that are data.

:func:`recursive` writes a recursive network into a graph as an ordinary
recurrence whose *steps are tree levels*: at step ``l`` the graph gathers
the states of the children of every node scheduled at level ``l`` (all
examples of the batch at once) from a table of node states, applies the
cell to them, and scatters the results back into the table. The table is a
state carried from level to level, so everything the compiler does for
recurrences applies unchanged: the reference interpreter runs it, the ONNX
backend emits one ``Scan`` over levels with ``GatherND``/``ScatterND``
(one file for any tree shape and batch), and the adjoint runs the levels
in reverse.

Sizes the data decides are symbolic dimensions (:mod:`rnngraph.types`):
``M`` nodes per level (padded), ``K`` children per node (padded; a cell of
fixed arity ``n`` uses ``n``), ``N`` nodes in the batch, ``R`` examples.

What the graph holds for a recursion named ``tree``
---------------------------------------------------
* the per-node inputs given to :func:`recursive`, retyped to one level's
  rows ``(B, M, F)``;
* int64 inputs ``tree.nodes (B, M)`` (node ids of the level, ``-1`` pads),
  ``tree.children (B, M, K)`` and ``tree.roots (B, R)``;
* one state per cell state, ``tree.<s>`` of shape ``(B, N, H)``: the table.

A graph like that runs on a :class:`~rnngraph.trees.TreeBatch` directly:
``rg.run(g, batch, params)`` (or a compiled model's ``.run``) lays the
batch out by levels, runs, and returns each output *per example* (or per
node) — the value after the last level — as ``(R, ...)``.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("sum_tree")
>>> x = g.input("x", 1)
>>> tree = rg.recursive(g, cell=rg.cells.dag_rnn(1, activation="identity"), inputs=x)
>>> g.output("root", tree.root)
>>> params = {"dag_rnn.W": np.ones((1, 1)), "dag_rnn.U": np.ones((1, 1)), "dag_rnn.b": np.zeros(1)}
>>> leaf = lambda v: np.array([v])
>>> batch = rg.trees.batch([(leaf(1.0), [leaf(2.0), (leaf(3.0), [leaf(4.0)])]), leaf(5.0)])
>>> rg.run(g, batch, params)["root"].ravel().tolist()   # every tree's sum
[10.0, 5.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rnngraph import ops
from rnngraph.errors import GraphError, InputError
from rnngraph.graph import Graph, Value
from rnngraph.trees import TreeBatch, TreeError
from rnngraph.types import BATCH, TensorType

__all__ = ["Recursion", "TreeCell", "TreeLayout", "layout", "recursive", "tree_spec"]

META_KEY = "recursive"


class TreeCell(Protocol):
    """What :func:`recursive` needs from a cell (see :mod:`rnngraph.cells.trees`).

    ``states`` maps each state name to its size (the first is the one
    ``Recursion.root`` reads); ``arity`` is ``None`` for cells that take any
    number of children, else the fixed number of child positions;
    ``__call__(x, children)`` builds one level: ``x`` the level's per-node
    inputs ``(B, M, F)`` (a dict when there are several), ``children`` each
    state's children values ``(B, M, K, H)`` (zeros where a child is
    missing); it returns each state's new value ``(B, M, H)``.
    """

    states: Mapping[str, int]
    arity: int | None

    def __call__(self, x: Any, children: Mapping[str, Value]) -> Mapping[str, Value]: ...


@dataclass(frozen=True)
class Recursion:
    """What :func:`recursive` returns: handles on the recursion's values.

    Attributes
    ----------
    name : str
        The prefix of the recursion's inputs and states.
    tables : dict of str to Value
        Each state's node table after the level ``(B, N, H)``; outputs made
        from them come back per node, ``(N, H)``.
    roots : dict of str to Value
        Each state at the examples' roots ``(B, R, H)``; outputs made from
        them come back per example, ``(R, H)``.
    """

    name: str
    tables: dict[str, Value]
    roots: dict[str, Value]

    @property
    def root(self) -> Value:
        """The first state of the cell (``h``) at each example's root."""
        return next(iter(self.roots.values()))

    @property
    def states(self) -> Value:
        """The first state of the cell for every node, ``(B, N, H)``."""
        return next(iter(self.tables.values()))


def recursive(
    g: Graph,
    cell: TreeCell,
    inputs: Value | Mapping[str, Value],
    *,
    name: str = "tree",
) -> Recursion:
    """Apply ``cell`` over each example's tree or DAG, children before parents.

    Parameters
    ----------
    g : Graph
        The graph to build into.
    cell : TreeCell
        A tree cell, e.g. :func:`rnngraph.cells.child_sum_tree_lstm`.
    inputs : Value or dict of str to Value
        Graph inputs holding per-node features, declared with
        ``g.input(name, F)`` and not used elsewhere yet: they become one
        level's rows ``(B, M, F)``. At run time a TreeBatch's features feed
        the first one; further ones come as per-node arrays ``(N, F)``.
    name : str
        Prefix of the structure inputs and the node-state tables.

    Returns
    -------
    Recursion
        ``.root`` (per example) and ``.states`` (per node) to compute
        outputs from.
    """
    if META_KEY in g.meta:
        raise GraphError(
            f"graph {g.name!r} already has a recursion ({g.meta[META_KEY]['name']!r}); "
            "one recursion per graph"
        )
    named = {inputs.name: inputs} if isinstance(inputs, Value) else dict(inputs)
    if not named:
        raise GraphError("recursive() needs at least one per-node input")
    rows = {_as_level_rows(g, v): v for v in named.values()}
    arity = cell.arity
    k_dim: int | str = "K" if arity is None else int(arity)
    nodes = g.input(f"{name}.nodes", ["M"], dtype="int64")
    children = g.input(f"{name}.children", ["M", k_dim], dtype="int64")
    roots = g.input(f"{name}.roots", ["R"], dtype="int64")
    tables = {
        s: g.state(f"{name}.{s}", ("N", int(h)), init="input") for s, h in cell.states.items()
    }
    kids = {s: ops.gather_rows(t, children, name=f"{name}.children.{s}") for s, t in tables.items()}
    x = next(iter(rows.values())) if len(rows) == 1 else rows
    new = dict(cell(x, kids))
    if set(new) != set(tables):
        raise GraphError(f"tree cell returned states {sorted(new)}; it declares {sorted(tables)}")
    updated, at_roots = {}, {}
    for s, t in tables.items():
        want = TensorType((BATCH, "M", int(cell.states[s])))
        if new[s].type != want:
            raise GraphError(f"tree cell state {s!r} is {new[s].type}; expected {want}")
        updated[s] = ops.scatter_rows(t, nodes, new[s], name=f"{name}.{s}.table")
        g.assign(t, updated[s])
        at_roots[s] = ops.gather_rows(updated[s], roots, name=f"{name}.{s}.root")
    g.meta[META_KEY] = {
        "name": name,
        "inputs": list(rows),
        "states": {s: int(h) for s, h in cell.states.items()},
        "arity": arity,
    }
    return Recursion(name, updated, at_roots)


def _as_level_rows(g: Graph, v: Value) -> str:
    """Retype per-node input ``v`` to one level's rows ``(B, M, F)``; returns its name."""
    if not isinstance(v, Value) or v.graph is not g or v.op != "input":
        raise GraphError(
            "recursive(): per-node inputs must be graph inputs declared with g.input(name, F); "
            f"got {v!r}. Transform node features inside the cell instead."
        )
    nx = g.nx_graph
    if nx.out_degree(v.node):
        raise GraphError(
            f"recursive(): input {v.name!r} is already used by other nodes; pass it to "
            "recursive() before using it (its rows become the nodes of one tree level)"
        )
    t = v.type
    nx.nodes[v.node]["type"] = TensorType((BATCH, "M", *t.row_shape), t.dtype)
    return v.name


def tree_spec(g: Graph) -> dict[str, Any] | None:
    """The recursion a graph holds (as :func:`recursive` recorded it), or None."""
    spec = g.meta.get(META_KEY)
    return dict(spec) if spec else None


# ----------------------------------------------------------------- run-time


@dataclass(frozen=True)
class TreeLayout:
    """A TreeBatch laid out by scheduled level, and how to read results back.

    Levels are assigned *as late as possible* (each node one level below its
    earliest parent), which spreads the leaves over the levels and keeps the
    padded width ``M`` small; every child is still on a lower level.
    """

    batch: TreeBatch
    nodes: np.ndarray  # (L, M) int64, -1 pads
    children: np.ndarray  # (L, M, K)

    @property
    def num_levels(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def dims(self) -> dict[str, int]:
        """The sizes of the symbolic dimensions for this batch."""
        b = self.batch
        return {
            "M": int(self.nodes.shape[1]),
            "K": int(self.children.shape[2]),
            "N": b.num_nodes,
            "R": len(b.roots),
        }

    def sequence(self, per_example: np.ndarray | None, row: Sequence[Any]) -> np.ndarray:
        """A value for after the last level as a level sequence ``(L, 1, ...)``, zero before.

        ``row`` is the value's declared row; ``None`` for ``per_example`` gives zeros.
        """
        shape = tuple(self.dims[d] if isinstance(d, str) else int(d) for d in row)
        out = np.zeros((self.num_levels, 1, *shape))
        if per_example is not None:
            out[-1, 0] = per_example
        return out

    def per_level(self, per_node: np.ndarray) -> np.ndarray:
        """Per-node rows ``(N, ...)`` as level rows ``(L, 1, M, ...)`` (zeros in padding)."""
        a = np.asarray(per_node)
        out = a[np.maximum(self.nodes, 0)]
        out[self.nodes < 0] = 0
        return out[:, None]

    def per_node(self, per_level: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`per_level` (padding dropped): ``(N, ...)``."""
        a = np.asarray(per_level)[:, 0]
        out = np.zeros((self.batch.num_nodes, *a.shape[2:]), a.dtype)
        keep = self.nodes >= 0
        out[self.nodes[keep]] = a[keep]
        return out


def layout(batch: TreeBatch, arity: int | None = None) -> TreeLayout:
    """Schedule ``batch``'s nodes by level (as late as possible) and pad them to arrays.

    Raises
    ------
    TreeError
        When a node has more children than a fixed-arity cell takes.
    """
    if not isinstance(batch, TreeBatch):
        raise InputError(f"expected an rg.trees.TreeBatch (see rg.trees.batch), got {type(batch)}")
    kids, mask = batch.children, batch.child_mask
    count = mask.sum(axis=1)
    if arity is not None and count.max(initial=0) > arity:
        v = int(np.argmax(count))
        raise TreeError(
            f"node {v} has {int(count[v])} children, but the cell takes at most {arity}"
        )
    L = batch.num_levels
    late = np.full(batch.num_nodes, L - 1, np.int64)
    for ids in reversed(batch.levels):  # parents before children
        ch = kids[ids]
        ok = ch >= 0
        parent_level = np.broadcast_to(late[ids][:, None], ch.shape)
        np.minimum.at(late, ch[ok], parent_level[ok] - 1)
    order = np.argsort(late, kind="stable")
    sizes = np.bincount(late, minlength=L)
    M = int(sizes.max())
    nodes = np.full((L, M), -1, np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    slot = np.arange(batch.num_nodes) - starts[late[order]]
    nodes[late[order], slot] = order
    K = kids.shape[1] if arity is None else int(arity)
    table = np.full((batch.num_nodes, K), -1, np.int64)
    width = min(K, kids.shape[1])
    table[:, :width] = kids[:, :width]
    children = table[np.maximum(nodes, 0)]
    children[nodes < 0] = -1
    return TreeLayout(batch, nodes, children)


def feeds(
    g: Graph, batch: TreeBatch, extra: Mapping[str, Any] | None, ft: np.dtype
) -> tuple[TreeLayout, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The inputs and initial states that run tree graph ``g`` on ``batch``.

    ``extra`` holds further per-node inputs ``(N, F)`` by name.
    """
    spec = tree_spec(g)
    if spec is None:
        raise InputError(
            f"graph {g.name!r} has no recursion: pass inputs as a dict of sequences, "
            "or build the graph with rg.recursive"
        )
    lay = layout(batch, spec["arity"])
    name, names = spec["name"], list(spec["inputs"])
    per_node = {names[0]: batch.features, **dict(extra or {})}
    unknown = sorted(set(per_node) - set(names))
    missing = sorted(set(names) - set(per_node))
    if unknown or missing:
        raise InputError(
            f"tree graph {g.name!r} takes per-node inputs {names} (the first from the "
            f"TreeBatch's features); unknown {unknown}, missing {missing}"
        )
    out: dict[str, np.ndarray] = {}
    for k, v in per_node.items():
        v = np.asarray(v)
        if v.ndim < 1 or v.shape[0] != batch.num_nodes:
            raise InputError(
                f"per-node input {k!r} needs one row per node ({batch.num_nodes}), got {v.shape}"
            )
        out[k] = lay.per_level(v.astype(ft) if v.dtype.kind == "f" else v)
    L = lay.num_levels
    out[f"{name}.nodes"] = lay.nodes[:, None]
    out[f"{name}.children"] = lay.children[:, None]
    out[f"{name}.roots"] = np.broadcast_to(batch.roots, (L, 1, len(batch.roots))).copy()
    init = {f"{name}.{s}": np.zeros((1, batch.num_nodes, h), ft) for s, h in spec["states"].items()}
    return lay, out, init


def unpack(g: Graph, lay: TreeLayout, result: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A sequence run's results as per-example / per-node arrays: the last level, row 0.

    Outputs with the row axis ``R`` (or ``N``) come back ``(R, ...)``
    (``(N, ...)``); the node tables' final values as ``"<name>.<s>_final"``.
    """
    out: dict[str, np.ndarray] = {}
    for k, v in result.items():
        v = np.asarray(v)
        if k.endswith("_final"):
            out[k] = v[0]
        elif k in g.outputs and g.outputs[k].batched:
            out[k] = v[-1, 0] if g.outputs[k].symbolic else v[-1]
        else:
            out[k] = v
    return out


def split_inputs(inputs: Any) -> tuple[TreeBatch, dict[str, Any]] | None:
    """``(batch, other inputs)`` when ``inputs`` is a TreeBatch or a dict holding one."""
    if isinstance(inputs, TreeBatch):
        return inputs, {}
    if isinstance(inputs, Mapping):
        found = [k for k, v in inputs.items() if isinstance(v, TreeBatch)]
        if len(found) == 1:
            return inputs[found[0]], {k: v for k, v in inputs.items() if k != found[0]}
    return None
