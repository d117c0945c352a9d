"""Tree and DAG encoding for recursive networks: levels, padding, and rejected structures."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph import trees


def _random_tree(n: int, rng: np.random.Generator, F: int = 3) -> trees.Structure:
    parents = [-1] + [int(rng.integers(0, i)) for i in range(1, n)]
    return trees.from_parents(parents, rng.standard_normal((n, F)))


def test_levels_put_children_below_parents() -> None:
    rng = np.random.default_rng(0)
    items = [_random_tree(int(n), rng) for n in rng.integers(1, 500, 8)]
    b = rg.trees.batch(items)
    assert b.num_nodes == sum(len(s.children) for s in items)
    for v in range(b.num_nodes):
        kids = b.children[v][b.child_mask[v]]
        assert all(b.level[k] < b.level[v] for k in kids)
        if len(kids):
            assert b.level[v] == 1 + max(b.level[k] for k in kids)
        else:
            assert b.level[v] == 0
    assert sorted(np.concatenate(b.levels).tolist()) == list(range(b.num_nodes))
    assert np.all(b.example[b.roots] == np.arange(len(items)))
    np.testing.assert_array_equal(b.features, np.concatenate([s.features for s in items]))


def test_dag_with_shared_children() -> None:
    s = trees.from_children([[], [0], [0, 1], [1, 2]], np.eye(4))
    b = rg.trees.batch([s])
    assert b.level.tolist() == [0, 1, 2, 3] and b.roots.tolist() == [3]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: trees.from_children([[1], [0]], np.zeros((2, 1))), "cycle"),
        (lambda: trees.from_children([[5]], np.zeros((1, 1))), "not a node"),
        (lambda: trees.from_parents([-1, 7], np.zeros((2, 1))), "not a node"),
        (lambda: trees.from_parents([-1, -1], np.zeros((2, 1))), "exactly one root"),
        (lambda: trees.from_parents([-1, 0], np.zeros((3, 1))), r"\(2, F\)"),
        (lambda: rg.trees.batch([(np.zeros(2), [np.zeros(3)])]), "one length"),
        (lambda: rg.trees.batch([]), "at least one"),
    ],
)
def test_bad_structures_are_rejected(build, message: str) -> None:
    with pytest.raises(rg.trees.TreeError, match=message):
        build()


def test_deep_trees_do_not_recurse() -> None:
    node = np.zeros(1)
    for _ in range(5000):  # a chain 5000 deep, nested
        node = (np.zeros(1), [node])
    b = rg.trees.batch([node])
    assert b.num_levels == 5001
