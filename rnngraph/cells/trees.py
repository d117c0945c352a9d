"""Cells of recursive networks: applied to each node given its children's states.

Each function returns a cell for :func:`rnngraph.recursive`. A cell is
called once per graph (it builds one tree level): ``x`` holds the level's
per-node inputs ``(B, M, F)``, ``children`` a
:class:`~rnngraph.trees.recursion.Children` view of the children's states — by
position ``(B, M, K, H)`` with zeros where a child is missing (so a leaf is
a node whose children all are zero), or edge by edge. Parameters are named ``<name>.<role>``.

* :func:`child_sum_tree_lstm` — Tai et al.'s Child-Sum Tree-LSTM: any number
  of unordered children, one forget gate per child;
* :func:`nary_tree_lstm` — the N-ary Tree-LSTM: ordered child positions,
  each with its own weights;
* :func:`recursive_nn` — the recursive neural network (Pollack, Socher):
  one shared composition matrix over the concatenated children;
* :func:`rntn` — the recursive neural tensor network: a bilinear tensor
  composition of the two children plus the shared matrix;
* :func:`dag_rnn` — a DAG-RNN node: the sum of the predecessors' states
  (a node may have several parents).

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("t")
>>> tree = rg.recursive(g, rg.cells.child_sum_tree_lstm(8), inputs=g.input("x", 4))
>>> tree.root.shape
('B', 'R', 8)
>>> sorted(g.params)[:4]
['tree_lstm.U_f.W', 'tree_lstm.U_iou.W', 'tree_lstm.W_f.W', 'tree_lstm.W_f.b']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rnngraph import ops
from rnngraph.cells._common import activation
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Value
from rnngraph.trees.recursion import Children

__all__ = ["child_sum_tree_lstm", "dag_rnn", "nary_tree_lstm", "recursive_nn", "rntn"]


def _positions(children: Value, n: int) -> list[Value]:
    """The children at each of ``n`` positions, ``(B, M, H)`` each."""
    return [
        ops.reduce_sum(ops.slice(children, j, j + 1, -2), [-2], keepdims=False) for j in range(n)
    ]


def _only(x: Any) -> Value:
    if isinstance(x, Mapping):
        if len(x) != 1:
            raise GraphError(f"this tree cell takes one per-node input, got {sorted(x)}")
        return next(iter(x.values()))
    return x


@dataclass(frozen=True)
class _Cell:
    """A tree cell: its states and arity, and the function that builds one level."""

    name: str
    hidden: int
    states: dict[str, int] = field(default_factory=dict)
    arity: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _ChildSumLSTM(_Cell):
    def __call__(self, x: Any, children: Children) -> dict[str, Value]:
        x, H, n = _only(x), self.hidden, self.name
        wiou = ops.linear(x, 3 * H, name=f"{n}.W_iou")
        wf = ops.linear(x, H, name=f"{n}.W_f")
        h_k, c_k = children.each("h"), children.each("c")  # one row per child edge (B, E, H)
        h_sum = children.sum(h_k, like=wf)
        i, o, u = ops.split(wiou + ops.linear(h_sum, 3 * H, bias=False, name=f"{n}.U_iou"), 3)
        f = ops.sigmoid(children.parent(wf) + ops.linear(h_k, H, bias=False, name=f"{n}.U_f"))
        c = ops.sigmoid(i) * ops.tanh(u) + children.sum(f * c_k, like=wf)
        return {"h": ops.sigmoid(o) * ops.tanh(c), "c": c}


def child_sum_tree_lstm(hidden: int, *, name: str = "tree_lstm") -> _ChildSumLSTM:
    """Child-Sum Tree-LSTM (Tai, Socher & Manning 2015), any number of children.

    ``h̃ = Σ_k h_k``; ``i, o, u = σ, σ, tanh(W x + U h̃ + b)``;
    ``f_k = σ(W_f x + U_f h_k + b_f)``; ``c = i ⊙ u + Σ_k f_k ⊙ c_k``;
    ``h = o ⊙ tanh(c)``. States ``h`` and ``c``. Params: ``<name>.W_iou.W``
    ``(F, 3H)`` and ``.b`` (gates ``i, o, u``), ``<name>.W_f.W`` ``(F, H)`` and
    ``.b``, ``<name>.U_iou.W`` ``(H, 3H)``, ``<name>.U_f.W`` ``(H, H)``. Built on
    the per-edge view of the children, so its cost follows the children that exist.
    """
    return _ChildSumLSTM(name, int(hidden), {"h": int(hidden), "c": int(hidden)})


@dataclass(frozen=True)
class _NaryLSTM(_Cell):
    def __call__(self, x: Any, children: Children) -> dict[str, Value]:
        x, H, n, N = _only(x), self.hidden, self.name, int(self.arity or 0)
        hs, cs = _positions(children.stack("h"), N), _positions(children.stack("c"), N)
        hcat = ops.concat(hs)
        iou = ops.linear(x, 3 * H, name=f"{n}.W_iou") + ops.linear(
            hcat, 3 * H, bias=False, name=f"{n}.U_iou"
        )
        i, o, u = ops.split(iou, 3)
        wf = ops.linear(x, H, name=f"{n}.W_f")
        c = ops.sigmoid(i) * ops.tanh(u)
        for k in range(N):
            f_k = ops.sigmoid(wf + ops.linear(hcat, H, bias=False, name=f"{n}.U_f{k}"))
            c = c + f_k * cs[k]
        return {"h": ops.sigmoid(o) * ops.tanh(c), "c": c}


def nary_tree_lstm(hidden: int, arity: int = 2, *, name: str = "nary_tree_lstm") -> _NaryLSTM:
    """N-ary Tree-LSTM (Tai et al. 2015): ordered child positions ``0 .. arity-1``.

    Gates read the concatenated children ``[h_0; ...; h_{N-1}]``; child
    position ``k`` has its own forget gate ``f_k = σ(W_f x + U_fk [h_0; ...] + b_f)``.
    A node with fewer children has zeros in the missing positions.
    """
    return _NaryLSTM(name, int(hidden), {"h": int(hidden), "c": int(hidden)}, int(arity))


@dataclass(frozen=True)
class _RecursiveNN(_Cell):
    def __call__(self, x: Any, children: Children) -> dict[str, Value]:
        x, H, n = _only(x), self.hidden, self.name
        act = activation(self.options["activation"])
        hcat = ops.concat(_positions(children.stack("h"), int(self.arity or 0)))
        pre = ops.linear(hcat, H, name=f"{n}.W") + ops.linear(x, H, bias=False, name=f"{n}.V")
        if self.options.get("tensor"):
            # [a; b]ᵀ T[k] [a; b] for every output unit k, T of shape (H, 2H, 2H)
            d = int(hcat.shape[-1])
            T = x.graph.param(f"{n}.T", (H, d, d), "uniform", scale=1.0 / d)
            row = ops.unsqueeze(ops.unsqueeze(hcat, -2), -3)  # (B, M, 1, 1, 2H)
            quad = ops.matmul(row, T) * row  # (B, M, H, 1, 2H)
            pre = pre + ops.reduce_sum(quad, [-2, -1], keepdims=False)
        return {"h": act(pre)}


def recursive_nn(
    hidden: int, arity: int = 2, *, activation: str = "tanh", name: str = "rnn_tree"
) -> _RecursiveNN:
    """Recursive neural network: ``h = f(W [h_0; ...; h_{N-1}] + V x + b)``.

    One composition matrix ``W`` shared by every node (Pollack 1990; Socher
    et al. 2011); leaves have zero children, so they read only ``V x + b``.
    """
    return _RecursiveNN(
        name, int(hidden), {"h": int(hidden)}, int(arity), {"activation": activation}
    )


def rntn(hidden: int, *, activation: str = "tanh", name: str = "rntn") -> _RecursiveNN:
    """Recursive neural tensor network (Socher et al. 2013), binary trees.

    ``h = f([a; b]ᵀ T^{[1:H]} [a; b] + W [a; b] + V x + b)`` with ``a, b`` the
    two children's states and a tensor ``T`` of shape ``(H, 2H, 2H)``.
    """
    return _RecursiveNN(
        name, int(hidden), {"h": int(hidden)}, 2, {"activation": activation, "tensor": True}
    )


@dataclass(frozen=True)
class _DagRNN(_Cell):
    def __call__(self, x: Any, children: Children) -> dict[str, Value]:
        x, H, n = _only(x), self.hidden, self.name
        act = activation(self.options["activation"])
        g = x.graph
        W = g.param(f"{n}.W", (int(x.shape[-1]), H), "uniform")
        U = g.param(f"{n}.U", (H, H), "uniform")
        b = g.param(f"{n}.b", (H,), "zeros")
        wx = ops.matmul(x, W) + b
        preds = children.sum(children.each("h"), like=wx)
        return {"h": act(wx + ops.matmul(preds, U))}


def dag_rnn(hidden: int, *, activation: str = "tanh", name: str = "dag_rnn") -> _DagRNN:
    """DAG-RNN node (Baldi & Pollastri 2003; Shuai et al. 2015): ``h = f(W x + U Σ_p h_p + b)``.

    ``p`` runs over the node's predecessors (its children in the structure;
    a node may feed several parents).
    """
    return _DagRNN(name, int(hidden), {"h": int(hidden)}, None, {"activation": activation})
