"""Trees and DAGs as tensors: the data format of recursive networks.

A recursive network applies one cell over a structure that is *data*: each
example has its own tree or DAG. :func:`batch` turns a list of structures
into arrays that let every node of one level, across the whole batch, be
computed together (level ``l`` holds the nodes whose children are all on
lower levels; leaves are level 0).

Accepted structures
-------------------
* a nested tree: a node is ``(features, [child, child, ...])``, a leaf may
  also be just ``features`` (a 1-D array of length ``F``); any arity;
* :class:`Structure` from :func:`from_parents` (``parents[i]`` is node
  ``i``'s parent, ``-1`` for the root) or :func:`from_children` (each
  node's list of children; a node may have several parents, which makes a
  DAG).

Cycles, indices out of range, features of the wrong length and empty
structures are rejected with a :class:`TreeError` that says which node.

Examples
--------
>>> import numpy as np
>>> leaf = lambda v: np.full(2, v)
>>> t = (leaf(0), [leaf(1), (leaf(2), [leaf(3), leaf(4)])])
>>> b = batch([t, leaf(5)])
>>> b.num_nodes, b.num_levels, b.roots.tolist()
(6, 3, [4, 5])
>>> [lvl.tolist() for lvl in b.levels]
[[0, 1, 2, 5], [3], [4]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngraph.errors import GraphError

__all__ = ["Structure", "TreeBatch", "TreeError", "batch", "from_children", "from_parents"]


class TreeError(GraphError):
    """A tree or DAG given to :func:`batch` is malformed (cycle, bad index, bad features)."""


@dataclass(frozen=True)
class Structure:
    """One example's structure: per node, its features and its children (indices)."""

    features: np.ndarray  # (n, F)
    children: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class TreeBatch:
    """A batch of trees/DAGs as arrays; node ids are global across the batch.

    Attributes
    ----------
    features : (N, F) array
        Every node's features, example after example.
    children : (N, K) int64
        Each node's children (global ids), padded with -1; ``K`` is the largest arity.
    child_mask : (N, K) bool
        Where ``children`` holds a child.
    level : (N,) int64
        0 for leaves, else one more than the highest child.
    level_nodes : (L, M) int64
        The nodes of each level, padded with -1; ``level_mask`` marks them.
    roots : (n,) int64
        Each example's root (for a DAG: its node with no parent, highest level).
    example : (N,) int64
        Which example each node belongs to.
    """

    features: np.ndarray
    children: np.ndarray
    child_mask: np.ndarray
    level: np.ndarray
    level_nodes: np.ndarray
    level_mask: np.ndarray
    roots: np.ndarray
    example: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.features.shape[0])

    @property
    def num_levels(self) -> int:
        return int(self.level_nodes.shape[0])

    @property
    def levels(self) -> list[np.ndarray]:
        """The node ids of each level, unpadded."""
        return [row[mask] for row, mask in zip(self.level_nodes, self.level_mask, strict=True)]


def from_parents(parents: Sequence[int], features: Any) -> Structure:
    """A tree from a parent-index array (``-1`` marks the root) and per-node features."""
    par = np.asarray(parents, dtype=np.int64)
    feats = _features(features, len(par))
    n = len(par)
    kids: list[list[int]] = [[] for _ in range(n)]
    roots = []
    for i, p in enumerate(par.tolist()):
        if p == -1:
            roots.append(i)
        elif not 0 <= p < n:
            raise TreeError(f"node {i}'s parent {p} is not a node (there are {n})")
        elif p == i:
            raise TreeError(f"node {i} is its own parent")
        else:
            kids[p].append(i)
    if len(roots) != 1:
        raise TreeError(f"a tree has exactly one root (parent -1); found {len(roots)}: {roots}")
    s = Structure(feats, tuple(tuple(k) for k in kids))
    _levels(s)  # rejects cycles
    return s


def from_children(children: Sequence[Sequence[int]], features: Any) -> Structure:
    """A tree or DAG from each node's children; a node may have several parents."""
    n = len(children)
    feats = _features(features, n)
    kids = []
    for i, ch in enumerate(children):
        ch = tuple(int(c) for c in ch)
        for c in ch:
            if not 0 <= c < n:
                raise TreeError(f"node {i} names child {c}, which is not a node (there are {n})")
        kids.append(ch)
    s = Structure(feats, tuple(kids))
    _levels(s)
    return s


def _features(features: Any, n: int) -> np.ndarray:
    f = np.asarray(features)  # (a float dtype kept: float32 features need no copy per run)
    if f.dtype.kind != "f":
        f = f.astype(np.float64)
    if f.ndim != 2 or f.shape[0] != n:
        raise TreeError(f"features must be (nodes, F) = ({n}, F), got {f.shape}")
    if n == 0:
        raise TreeError("a structure needs at least one node")
    return f


def _from_nested(tree: Any) -> Structure:
    """Flatten a nested ``(features, [children])`` tree, children before parents."""
    feats: list[np.ndarray] = []
    kids: list[tuple[int, ...]] = []
    # Iterative post-order, so deep trees do not hit the recursion limit.
    stack: list[tuple[Any, list[int] | None]] = [(tree, None)]
    done: list[int] = []
    while stack:
        node, child_ids = stack.pop()
        if isinstance(node, tuple) and len(node) == 2 and isinstance(node[1], list | tuple):
            f, children = node
        else:
            f, children = node, []
        if child_ids is None and children:
            stack.append((node, []))
            for c in reversed(children):
                stack.append((c, None))
            continue
        ids = [done.pop() for _ in range(len(children))][::-1] if children else []
        feats.append(np.asarray(f, dtype=np.float64).reshape(-1))
        kids.append(tuple(ids))
        done.append(len(feats) - 1)
    widths = {f.shape[0] for f in feats}
    if len(widths) != 1:
        raise TreeError(f"every node needs features of one length; found lengths {sorted(widths)}")
    return Structure(np.stack(feats), tuple(kids))


def _levels(s: Structure) -> np.ndarray:
    """Each node's level; raises TreeError on a cycle (iterative, Kahn's algorithm)."""
    n = len(s.children)
    pending = np.array([len(set(c)) for c in s.children])
    parents: list[list[int]] = [[] for _ in range(n)]
    for i, ch in enumerate(s.children):
        for c in set(ch):
            parents[c].append(i)
    level = np.zeros(n, np.int64)
    ready = [i for i in range(n) if pending[i] == 0]
    seen = 0
    while ready:
        i = ready.pop()
        seen += 1
        for p in parents[i]:
            level[p] = max(level[p], level[i] + 1)
            pending[p] -= 1
            if pending[p] == 0:
                ready.append(p)
    if seen != n:
        stuck = sorted(int(i) for i in np.nonzero(pending > 0)[0])[:10]
        raise TreeError(f"the structure has a cycle through nodes {stuck}; trees and DAGs only")
    return level


def batch(structures: Sequence[Any]) -> TreeBatch:
    """Encode trees/DAGs (nested, or :class:`Structure`) as one :class:`TreeBatch`."""
    if not structures:
        raise TreeError("batch needs at least one structure")
    items = [s if isinstance(s, Structure) else _from_nested(s) for s in structures]
    widths = {s.features.shape[1] for s in items}
    if len(widths) != 1:
        raise TreeError(f"all examples need features of one length; found {sorted(widths)}")
    offsets = np.cumsum([0] + [len(s.children) for s in items])
    N = int(offsets[-1])
    K = max((len(c) for s in items for c in s.children), default=0)
    children = np.full((N, max(K, 1)), -1, np.int64)
    level = np.zeros(N, np.int64)
    example = np.zeros(N, np.int64)
    roots = []
    for e, (s, off) in enumerate(zip(items, offsets[:-1], strict=True)):
        lv = _levels(s)
        level[off : off + len(lv)] = lv
        example[off : off + len(lv)] = e
        has_parent = np.zeros(len(lv), bool)
        for i, ch in enumerate(s.children):
            children[off + i, : len(ch)] = np.asarray(ch, np.int64) + off
            has_parent[list(ch)] = True
        tops = np.nonzero(~has_parent)[0]
        roots.append(int(off + tops[np.argmax(lv[tops])]))
    L = int(level.max()) + 1
    per_level = [np.nonzero(level == k)[0] for k in range(L)]
    M = max(len(p) for p in per_level)
    level_nodes = np.full((L, M), -1, np.int64)
    for k, ids in enumerate(per_level):
        level_nodes[k, : len(ids)] = ids
    return TreeBatch(
        features=np.concatenate([s.features for s in items]),
        children=children,
        child_mask=children >= 0,
        level=level,
        level_nodes=level_nodes,
        level_mask=level_nodes >= 0,
        roots=np.asarray(roots, np.int64),
        example=example,
    )
