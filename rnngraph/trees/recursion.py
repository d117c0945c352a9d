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

Sizes the data decides are symbolic dimensions (:mod:`rnngraph.ir.types`):
``M`` nodes per level (padded), ``K`` children per node (padded; a cell of
fixed arity ``n`` uses ``n``), ``N`` nodes in the batch, ``R`` examples.

What the graph holds for a recursion named ``tree``
---------------------------------------------------
* the per-node inputs given to :func:`recursive`, retyped to one level's
  rows ``(B, M, F)``;
* int64 inputs ``tree.nodes (B, M)`` (node ids of the level, ``-1`` pads),
  ``tree.children (B, M, K)`` and ``tree.roots (B, R)``;
* one state per cell state, ``tree.<s>`` of shape ``(B, N, H)``: the table.

A graph like that runs on a :class:`~rnngraph.trees.structures.TreeBatch` directly:
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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rnngraph import ops
from rnngraph.errors import GraphError, InputError
from rnngraph.ir.graph import Graph, Value
from rnngraph.ir.types import BATCH, TensorType
from rnngraph.trees.structures import TreeBatch, TreeError, from_parents
from rnngraph.trees.structures import batch as TreeBatch_of

__all__ = [
    "Children",
    "Recursion",
    "TreeCell",
    "TreeLayout",
    "layout",
    "random_inputs",
    "recursive",
    "run_trees",
    "tree_spec",
]

META_KEY = "recursive"


class TreeCell(Protocol):
    """What :func:`recursive` needs from a cell (see :mod:`rnngraph.cells.trees`).

    ``states`` maps each state name to its size (the first is the one
    ``Recursion.root`` reads); ``arity`` is ``None`` for cells that take any
    number of children, else the fixed number of child positions;
    ``__call__(x, children)`` builds one level: ``x`` the level's per-node
    inputs ``(B, M, F)`` (a dict when there are several) and ``children`` a
    :class:`Children` view of the children's states; it returns each
    state's new value ``(B, M, H)``.
    """

    states: Mapping[str, int]
    arity: int | None

    def __call__(self, x: Any, children: Children) -> Mapping[str, Value]: ...


class Children:
    """The children of one level's nodes, seen by position or edge by edge.

    * :meth:`stack` — state ``s`` of each child position ``(B, M, K, H)``,
      zeros where a node has fewer children (``K``: the cell's arity, or the
      batch's largest number of children);
    * :meth:`each` — state ``s`` of the child of each parent-child edge of
      the level ``(B, E, H)``; :meth:`parent` — a per-node value ``(B, M, ...)``
      repeated on each edge of the node; :meth:`sum` — per-edge values summed
      into their parents ``(B, M, ...)``.

    The edge view does work in proportion to the children that exist, the
    positional one to ``M * K``: cells that take any number of children
    should use edges. The graph gets the inputs of the views a cell uses.
    """

    def __init__(self, g: Graph, name: str, tables: Mapping[str, Value], k_dim: int | str):
        self._g, self._name, self._tables, self._k = g, name, dict(tables), k_dim
        self._cache: dict[Any, Value] = {}

    def _input(self, key: str, row: Sequence[int | str]) -> Value:
        if key not in self._cache:
            self._cache[key] = self._g.input(f"{self._name}.{key}", row, dtype="int64")
        return self._cache[key]

    def _table(self, state: str) -> Value:
        if state not in self._tables:
            raise GraphError(f"the cell has no state {state!r}; its states: {sorted(self._tables)}")
        return self._tables[state]

    def stack(self, state: str) -> Value:
        """State ``state`` at each child position, ``(B, M, K, H)`` (zeros where missing)."""
        key = ("stack", state)
        if key not in self._cache:
            idx = self._input("children", ["M", self._k])
            self._cache[key] = ops.gather_rows(
                self._table(state), idx, name=f"{self._name}.children.{state}"
            )
        return self._cache[key]

    def each(self, state: str) -> Value:
        """State ``state`` of the child on each edge of the level, ``(B, E, H)``."""
        key = ("each", state)
        if key not in self._cache:
            idx = self._input("edge_child", ["E"])
            self._cache[key] = ops.gather_rows(
                self._table(state), idx, name=f"{self._name}.edges.{state}"
            )
        return self._cache[key]

    def parent(self, value: Value) -> Value:
        """A per-node value ``(B, M, ...)`` on each edge of its node: ``(B, E, ...)``."""
        return ops.gather_rows(value, self._input("edge_slot", ["E"]))

    def sum(self, value: Value, like: Value) -> Value:
        """Per-edge ``value`` ``(B, E, ...)`` summed into the edges' parents, shaped like
        per-node ``like`` ``(B, M, ...)``."""
        return ops.scatter_add_rows(ops.zeros_like(like), self._input("edge_slot", ["E"]), value)


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

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("sum_tree")
    >>> x = g.input("x", 1)
    >>> tree = rg.recursive(g, cell=rg.cells.dag_rnn(1, activation="identity"), inputs=x)
    >>> g.output("root", tree.root)
    >>> tree.root.shape, tree.states.shape  # per example; per node
    (('B', 'R', 1), ('B', 'N', 1))
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

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("sum_tree")
    >>> x = g.input("x", 1)
    >>> tree = rg.recursive(g, cell=rg.cells.dag_rnn(1, activation="identity"), inputs=x)
    >>> g.output("root", tree.root)
    >>> params = {"dag_rnn.W": np.ones((1, 1)), "dag_rnn.U": np.ones((1, 1))}
    >>> params["dag_rnn.b"] = np.zeros(1)
    >>> leaf = lambda v: np.array([v])
    >>> batch = rg.trees.batch([(leaf(1.0), [leaf(2.0), leaf(3.0)]), leaf(5.0)])
    >>> rg.run(g, batch, params)["root"].ravel().tolist()  # each tree's sum
    [6.0, 5.0]
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
    roots = g.input(f"{name}.roots", ["R"], dtype="int64")
    tables = {
        s: g.state(f"{name}.{s}", ("N", int(h)), init="input") for s, h in cell.states.items()
    }
    kids = Children(g, name, tables, k_dim)
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
    """A TreeBatch laid out by scheduled level (step), and how to read results back.

    Every child is on an earlier step than its parents. Steps hold at most
    ``M`` nodes, chosen by Hu's list scheduling (nodes farthest from the top
    first), so padding stays small: ``M`` is about the node count over the
    tree height, and the step count stays near the height.

    Attributes
    ----------
    nodes : (L, M) int64
        Node ids of each step, ``-1`` pads.
    children : (L, M, K) int64
        Each scheduled node's children by position.
    edge_child, edge_slot : (L, E) int64
        The parent-child edges whose parent is on the step: the child's id
        and the parent's slot in ``nodes[l]``.
    """

    batch: TreeBatch
    nodes: np.ndarray
    children: np.ndarray
    edge_child: np.ndarray
    edge_slot: np.ndarray

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
            "E": int(self.edge_child.shape[1]),
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
        out = a.take(np.maximum(self.nodes, 0), axis=0)  # (faster than indexing)
        out[self.nodes < 0] = 0
        return out[:, None]

    def per_node(self, per_level: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`per_level` (padding dropped): ``(N, ...)``."""
        a = np.asarray(per_level)[:, 0]
        out = np.zeros((self.batch.num_nodes, *a.shape[2:]), a.dtype)
        keep = self.nodes >= 0
        out[self.nodes[keep]] = a[keep]
        return out


def layout(batch: TreeBatch, arity: int | None = None, *, slack: float = 1.15) -> TreeLayout:
    """Schedule ``batch``'s nodes into steps and pad them to arrays.

    ``slack`` sets the step width: ``M = slack * nodes / height`` (at least
    the widest set of nodes that must share a step).

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
    parent, pos = np.nonzero(mask)  # the parent-child edges, by position
    child = kids[parent, pos]
    step = _schedule(batch, slack, child, parent)
    L = int(step.max()) + 1
    order = np.lexsort((np.arange(batch.num_nodes), step))
    sizes = np.bincount(step, minlength=L)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    slot = np.empty(batch.num_nodes, np.int64)
    slot[order] = np.arange(batch.num_nodes) - starts[step[order]]
    nodes = np.full((L, int(sizes.max())), -1, np.int64)
    nodes[step, slot] = np.arange(batch.num_nodes)
    K = kids.shape[1] if arity is None else int(arity)
    table = np.full((batch.num_nodes, K), -1, np.int64)
    width = min(K, kids.shape[1])
    table[:, :width] = kids[:, :width]
    children = table[np.maximum(nodes, 0)]
    children[nodes < 0] = -1
    e_step = step[parent]
    e_order = np.lexsort((pos, parent, e_step))
    e_sizes = np.bincount(e_step, minlength=L)
    e_starts = np.concatenate([[0], np.cumsum(e_sizes)[:-1]])
    e_col = np.arange(len(parent)) - e_starts[e_step[e_order]]
    E = max(int(e_sizes.max(initial=0)), 1)
    edge_child = np.full((L, E), -1, np.int64)
    edge_slot = np.full((L, E), -1, np.int64)
    edge_child[e_step[e_order], e_col] = child[e_order]
    edge_slot[e_step[e_order], e_col] = slot[parent[e_order]]
    return TreeLayout(batch, nodes, children, edge_child, edge_slot)


def _schedule(batch: TreeBatch, slack: float, child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Each node's step: Hu's list scheduling with a width cap, vectorised per step."""
    n = batch.num_nodes
    # the distinct (child, parent) pairs, as one key each (a 1-d unique: rows would sort
    # a structured view, several times slower)
    keys = np.unique(np.asarray(child, np.int64) * max(n, 1) + np.asarray(parent, np.int64))
    child, parent = keys // max(n, 1), keys % max(n, 1)
    # Priority: the longest path up to a node without parents (levels top-down).
    height = batch.level
    prio = np.zeros(n, np.int64)
    level_of_child = height[child]
    by_level = np.argsort(level_of_child, kind="stable")
    bounds = np.searchsorted(level_of_child[by_level], np.arange(int(height.max(initial=0)) + 2))
    for lv in range(len(bounds) - 2, -1, -1):  # (the levels of batch.levels, from the top)
        sel = by_level[bounds[lv] : bounds[lv + 1]]
        np.maximum.at(prio, child[sel], prio[parent[sel]] + 1)
    levels = int(height.max()) + 1
    width = max(int(np.ceil(slack * n / levels)), 1)
    pending = np.bincount(parent, minlength=n)
    by_child = np.argsort(child, kind="stable")
    child_sorted = child[by_child]
    step = np.full(n, -1, np.int64)
    ready = np.nonzero(pending == 0)[0]
    t = 0
    while ready.size:
        if ready.size > width:
            order = np.argsort(-prio[ready], kind="stable")
            take, ready = ready[order[:width]], ready[order[width:]]
        else:
            take, ready = ready, ready[:0]
        step[take] = t
        lo = np.searchsorted(child_sorted, take, "left")
        counts = np.searchsorted(child_sorted, take, "right") - lo
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        edges = by_child[np.repeat(lo, counts) + within]
        ps = parent[edges]
        np.subtract.at(pending, ps, 1)
        fresh = np.unique(ps[pending[ps] == 0])
        ready = np.concatenate([ready, fresh])
        t += 1
    return step


def feeds(
    g: Graph, batch: TreeBatch, extra: Mapping[str, Any] | None, ft: np.dtype
) -> tuple[TreeLayout, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The inputs and initial states that run tree graph ``g`` on ``batch``.

    ``extra`` holds further inputs by name: per node ``(N, F)`` (those given
    to :func:`recursive`), or per example ``(R, ...)`` (inputs declared with a
    leading ``"R"``: repeated at every level, except cotangents ``"cot:<y>"``
    of an adjoint graph, which apply after the last level only).
    """
    spec = tree_spec(g)
    if spec is None:
        raise InputError(
            f"graph {g.name!r} has no recursion: pass inputs as a dict of sequences, "
            "or build the graph with rg.recursive"
        )
    lay = layout(batch, spec["arity"])
    name, names = spec["name"], list(spec["inputs"])
    given = {names[0]: batch.features, **dict(extra or {})}
    per_example = {
        k
        for k, t in g.inputs.items()
        if k not in names and t.row_shape[:1] == ("R",) and not k.startswith(f"{name}.")
    }
    unknown = sorted(set(given) - set(names) - per_example)
    missing = sorted(
        (set(names) | per_example) - set(given) - {k for k in g.inputs if k.startswith("cot:")}
    )
    if unknown or missing:
        raise InputError(
            f"tree graph {g.name!r} takes per-node inputs {names} (the first from the "
            f"TreeBatch's features) and per-example inputs {sorted(per_example)}; "
            f"unknown {unknown}, missing {missing}"
        )
    out: dict[str, np.ndarray] = {}
    for k, v in given.items():
        v = np.asarray(v)
        v = v.astype(ft, copy=False) if v.dtype.kind == "f" else v
        rows = len(batch.roots) if k in per_example else batch.num_nodes
        if v.ndim < 1 or v.shape[0] != rows:
            what = "example" if k in per_example else "node"
            raise InputError(f"input {k!r} needs one row per {what} ({rows}), got {v.shape}")
        if k.startswith("cot:"):  # a cotangent of what is read after the last level
            out[k] = lay.sequence(v, g.inputs[k].row_shape).astype(v.dtype)
        elif k in per_example:  # the same at every level
            out[k] = np.broadcast_to(v, (lay.num_levels, 1, *v.shape)).copy()
        else:
            out[k] = lay.per_level(v)
    for k, t in g.inputs.items():  # cotangents not given: zero (that output is not asked)
        if k.startswith("cot:") and k not in out:
            out[k] = lay.sequence(None, t.row_shape).astype(ft)
    L = lay.num_levels
    structure = {
        "nodes": lay.nodes,
        "children": lay.children,
        "edge_child": lay.edge_child,
        "edge_slot": lay.edge_slot,
    }
    for key, arr in structure.items():
        if f"{name}.{key}" in g.inputs:
            out[f"{name}.{key}"] = arr[:, None]
    out[f"{name}.roots"] = np.broadcast_to(batch.roots, (L, 1, len(batch.roots))).copy()
    init = {f"{name}.{s}": np.zeros((1, batch.num_nodes, h), ft) for s, h in spec["states"].items()}
    return lay, out, init


def unpack(g: Graph, lay: TreeLayout, result: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A sequence run's results as per-example / per-node arrays: the last level, row 0.

    Outputs with the row axis ``R`` (or ``N``) come back ``(R, ...)``
    (``(N, ...)``); outputs of one level's rows ``M`` (an adjoint graph's
    ``"grad:<x>"``) per node ``(N, ...)``; the node tables' final values as
    ``"<name>.<s>_final"``; sums over levels (gradients of params) as they are.
    """
    out: dict[str, np.ndarray] = {}
    for k, v in result.items():
        v = np.asarray(v)
        t = g.outputs.get(k)
        if k.endswith("_final"):
            out[k] = v[0]
        elif t is not None and t.batched and t.row_shape[:1] == ("M",):
            out[k] = lay.per_node(v)
        elif t is not None and t.batched:
            out[k] = v[-1, 0] if t.symbolic else v[-1]
        else:
            out[k] = v
    return out


def random_inputs(
    g: Graph, rng: np.random.Generator, *, trees: int = 3, max_nodes: int = 30
) -> dict[str, Any]:
    """Random trees for tree graph ``g`` (respecting its cell's arity), as ``rg.run`` takes them.

    ``{"tree": TreeBatch, **further per-node inputs}``, for tools that exercise
    a graph without data (``rnngraph run``, ``rnngraph check``).
    """
    spec = tree_spec(g)
    if spec is None:
        raise InputError(f"graph {g.name!r} has no recursion")
    names, arity = list(spec["inputs"]), spec["arity"]
    width = [int(d) for d in g.inputs[names[0]].row_shape[1:]]
    items = []
    for n in rng.integers(1, max_nodes + 1, trees):
        parents, count = [-1], np.zeros(int(n), np.int64)
        for i in range(1, int(n)):
            free = np.nonzero(count[:i] < (arity or i))[0]
            p = int(rng.choice(free))
            count[p] += 1
            parents.append(p)
        items.append(from_parents(parents, rng.standard_normal((int(n), *width))))
    batch = TreeBatch_of(items)
    out: dict[str, Any] = {"tree": batch}
    for k in names[1:]:
        row = [int(d) for d in g.inputs[k].row_shape[1:]]
        out[k] = rng.standard_normal((batch.num_nodes, *row))
    return out


def run_trees(
    g: Graph,
    tree: tuple[TreeBatch, Mapping[str, Any]],
    initial_states: Mapping[str, Any] | None,
    ft: np.dtype,
    run: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], Mapping[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Run tree graph ``g`` on ``tree`` (from :func:`split_inputs`) with a sequence runner.

    The batch is laid out by level, ``run(feeds, initial_states)`` runs the
    sequences (the interpreter's or a backend's), and the results come back per
    example or node (:func:`unpack`). Every engine's ``run`` takes trees this way.
    """
    lay, seqs, init = feeds(g, tree[0], tree[1], ft)
    init.update(initial_states or {})
    return unpack(g, lay, run(seqs, init))


def split_inputs(inputs: Any) -> tuple[TreeBatch, dict[str, Any]] | None:
    """``(batch, other inputs)`` when ``inputs`` is a TreeBatch or a dict holding one."""
    if isinstance(inputs, TreeBatch):
        return inputs, {}
    if isinstance(inputs, Mapping):
        found = [k for k, v in inputs.items() if isinstance(v, TreeBatch)]
        if len(found) == 1:
            return inputs[found[0]], {k: v for k, v in inputs.items() if k != found[0]}
    return None
