"""Recursive cells and an independent oracle for them, shared by the tests.

The oracle is written independently of the library: each cell's equations
applied node by node with memoised Python recursion, in float64 (``per_node``).
``CELLS`` maps a cell's name to its builder, its oracle and its arity;
``tree_graph``, ``tree_params`` and ``tree_batch`` build a graph, its params and a
batch of random trees or DAGs.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

import rnngraph as rg
from rnngraph import trees

__all__ = [
    "CELLS",
    "per_node",
    "random_dag",
    "random_tree",
    "tree_batch",
    "tree_graph",
    "tree_params",
]

F, H = 3, 4


def _sig(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------- the oracle


def _child_sum(p, x, kids):
    n = "tree_lstm"
    hs = [k[0] for k in kids]
    h_sum = np.sum(hs, axis=0) if hs else np.zeros(H)
    iou = x @ p[f"{n}.W_iou.W"] + p[f"{n}.W_iou.b"] + h_sum @ p[f"{n}.U_iou.W"]
    i, o, u = _sig(iou[:H]), _sig(iou[H : 2 * H]), np.tanh(iou[2 * H :])
    c = i * u
    for hk, ck in kids:
        f = _sig(x @ p[f"{n}.W_f.W"] + p[f"{n}.W_f.b"] + hk @ p[f"{n}.U_f.W"])
        c = c + f * ck
    return o * np.tanh(c), c


def _padded(kids, arity):
    hs = [k[0] for k in kids] + [np.zeros(H)] * (arity - len(kids))
    cs = [k[1] for k in kids] + [np.zeros(H)] * (arity - len(kids))
    return hs, cs


def _nary(p, x, kids, arity=2):
    n = "nary_tree_lstm"
    hs, cs = _padded([(k[0], k[1]) for k in kids], arity)
    hcat = np.concatenate(hs)
    iou = x @ p[f"{n}.W_iou.W"] + p[f"{n}.W_iou.b"] + hcat @ p[f"{n}.U_iou.W"]
    i, o, u = _sig(iou[:H]), _sig(iou[H : 2 * H]), np.tanh(iou[2 * H :])
    c = i * u
    for k in range(arity):
        f = _sig(x @ p[f"{n}.W_f.W"] + p[f"{n}.W_f.b"] + hcat @ p[f"{n}.U_f{k}.W"])
        c = c + f * cs[k]
    return o * np.tanh(c), c


def _rnn_tree(p, x, kids, n="rnn_tree", tensor=False):
    hs, _ = _padded([(k[0], k[0]) for k in kids], 2)
    a = np.concatenate(hs)
    pre = a @ p[f"{n}.W.W"] + p[f"{n}.W.b"] + x @ p[f"{n}.V.W"]
    if tensor:
        pre = pre + np.array([a @ p[f"{n}.T"][k] @ a for k in range(H)])
    return (np.tanh(pre),)


def _dag(p, x, kids):
    n = "dag_rnn"
    s = np.sum([k[0] for k in kids], axis=0) if kids else np.zeros(H)
    return (np.tanh(x @ p[f"{n}.W"] + s @ p[f"{n}.U"] + p[f"{n}.b"]),)


CELLS = {
    "child_sum": (lambda: rg.cells.child_sum_tree_lstm(H), _child_sum, None),
    "nary": (lambda: rg.cells.nary_tree_lstm(H, 2), _nary, 2),
    "recursive_nn": (lambda: rg.cells.recursive_nn(H), _rnn_tree, 2),
    "rntn": (lambda: rg.cells.rntn(H), functools.partial(_rnn_tree, n="rntn", tensor=True), 2),
    "dag_rnn": (lambda: rg.cells.dag_rnn(H), _dag, None),
}


def per_node(step, params, items):
    """Every example's root state and every node's state, node by node."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    roots, nodes = [], []
    for s in items:

        @functools.cache
        def state(v: int, s=s):
            kids = [state(c) for c in s.children[v]]
            return step(params, s.features[v], kids)

        parents = {c for ch in s.children for c in ch}
        tops = [v for v in range(len(s.children)) if v not in parents]
        depth = {v: _height(s, v) for v in tops}
        roots.append(state(max(tops, key=lambda v: (depth[v], -v)))[0])
        nodes.extend(state(v)[0] for v in range(len(s.children)))
    return np.array(roots), np.array(nodes)


def _height(s: trees.Structure, v: int) -> int:
    memo: dict[int, int] = {}

    def h(u: int) -> int:
        if u not in memo:
            memo[u] = 1 + max((h(c) for c in s.children[u]), default=-1)
        return memo[u]

    return h(v)


# -------------------------------------------------------- random structures


def random_tree(n: int, rng: np.random.Generator, arity: int | None) -> trees.Structure:
    parents = [-1]
    count = [0] * n
    for i in range(1, n):
        while True:
            p = int(rng.integers(0, i))
            if arity is None or count[p] < arity:
                break
        count[p] += 1
        parents.append(p)
    return trees.from_parents(parents, rng.standard_normal((n, F)))


def random_dag(n: int, rng: np.random.Generator) -> trees.Structure:
    kids = [
        sorted({int(c) for c in rng.integers(0, i, rng.integers(0, 4))}) if i else []
        for i in range(n)
    ]
    return trees.from_children(kids, rng.standard_normal((n, F)))


def tree_graph(cell) -> tuple[rg.Graph, rg.Recursion]:
    g = rg.Graph("tree")
    tree = rg.recursive(g, cell=cell, inputs=g.input("x", F))
    g.output("root", tree.root)
    g.output("states", tree.states)
    return g, tree


def tree_params(g: rg.Graph, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: 0.5 * rng.standard_normal(t.shape) for k, t in g.params.items()}


def tree_batch(name: str, sizes, seed: int):
    rng = np.random.default_rng(seed)
    arity = CELLS[name][2]
    if name == "dag_rnn":
        items = [random_dag(int(n), rng) for n in sizes]
    else:
        items = [random_tree(int(n), rng, arity) for n in sizes]
    return items, rg.trees.batch(items)
