"""Recursive networks over trees and DAGs, checked against a plain per-node recursion.

The oracle (``tests/tree_zoo.py``) is written independently of the library: each
cell's equations applied node by node with memoised Python recursion, in float64.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import rnngraph as rg
from rnngraph import trees
from tests.tree_zoo import (
    CELLS,
    F,
    H,
    per_node,
    random_tree,
    tree_batch,
    tree_graph,
    tree_params,
)

# ------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", sorted(CELLS))
def test_reference_and_onnx_match_per_node_recursion(name: str) -> None:
    make, step, _ = CELLS[name]
    g, _ = tree_graph(make())
    params = tree_params(g, 1)
    model = rg.compile(g, target="onnx", params=params)  # one file for every batch below
    for seed, sizes in enumerate([[1], [500, 3, 1, 40], list(range(1, 60, 7))]):
        items, batch = tree_batch(name, sizes, seed)
        want_root, want_nodes = per_node(step, params, items)
        got = rg.run(g, batch, params)
        np.testing.assert_allclose(got["root"], want_root, atol=1e-10)
        np.testing.assert_allclose(got["states"], want_nodes, atol=1e-10)
        onnx = model.run(batch)
        np.testing.assert_allclose(onnx["root"], want_root, atol=1e-5)
        np.testing.assert_allclose(onnx["states"], want_nodes, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CELLS))
def test_tvm_matches_per_node_recursion(name: str) -> None:
    """The TVM kernel: one build (symbolic level width, children, nodes) for every batch."""
    pytest.importorskip("tvm")
    make, step, _ = CELLS[name]
    g, _ = tree_graph(make())
    params = tree_params(g, 1)
    models = [rg.compile(g, target="tvm", params=params)]
    if name == "child_sum":  # the products' row chunks over the cores too
        models.append(rg.compile(g, target="tvm", params=params, parallel="products"))
    for seed, sizes in enumerate([[1], [300, 3, 1, 40], list(range(1, 40, 9))]):
        items, batch = tree_batch(name, sizes, seed)
        want_root, want_nodes = per_node(step, params, items)
        for model in models:
            got = model.run(batch)
            np.testing.assert_allclose(got["root"], want_root, atol=1e-5)
            np.testing.assert_allclose(got["states"], want_nodes, atol=1e-5)


@pytest.mark.slow
def test_tvm_tree_gradients_match_the_reference() -> None:
    pytest.importorskip("tvm")
    g, _ = tree_graph(rg.cells.child_sum_tree_lstm(H))
    params = tree_params(g, 5)
    items, batch = tree_batch("child_sum", [12, 30, 1], 6)
    cot = np.random.default_rng(7).standard_normal((len(items), H))
    _, want = rg.vjp(g, batch, params, cotangents={"root": cot})
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    got = rg.compile(rg.adjoint(g), target="tvm", params=p32).run({"tree": batch, "cot:root": cot})
    for p in params:
        np.testing.assert_allclose(got[f"grad:{p}"], want[p], atol=1e-4, rtol=1e-4, err_msg=p)
    np.testing.assert_allclose(got["grad:x"], want["x"], atol=1e-5)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradients_match_finite_differences(name: str) -> None:
    make, _, _ = CELLS[name]
    g, _ = tree_graph(make())
    params = tree_params(g, 2)
    items, batch = tree_batch(name, [9, 1, 14], 3)
    rng = np.random.default_rng(4)
    cot = rng.standard_normal((len(items), H))
    _outs, grads = rg.vjp(g, batch, params, cotangents={"root": cot})

    def loss(p, feats):
        b = rg.trees.batch(
            [trees.Structure(f, s.children) for f, s in zip(feats, items, strict=True)]
        )
        return float(np.sum(rg.run(g, b, p)["root"] * cot))

    feats = [s.features for s in items]
    eps = 1e-6
    for pname, value in params.items():
        v = rng.standard_normal(value.shape)
        fd = (
            loss({**params, pname: value + eps * v}, feats)
            - loss({**params, pname: value - eps * v}, feats)
        ) / (2 * eps)
        got = float(np.sum(grads[pname] * v))
        assert abs(got - fd) <= 1e-6 * max(1e-3, abs(fd)), (pname, got, fd)
    v = rng.standard_normal(batch.features.shape)
    offs = np.cumsum([0] + [len(f) for f in feats])
    parts = [v[a:b] for a, b in itertools.pairwise(offs)]
    fd = (
        loss(params, [f + eps * d for f, d in zip(feats, parts, strict=True)])
        - loss(params, [f - eps * d for f, d in zip(feats, parts, strict=True)])
    ) / (2 * eps)
    assert grads["x"].shape == batch.features.shape
    got = float(np.sum(grads["x"] * v))
    assert abs(got - fd) <= 1e-6 * max(1e-3, abs(fd)), ("x", got, fd)


def test_adjoint_graph_runs_in_onnxruntime() -> None:
    g, _ = tree_graph(rg.cells.child_sum_tree_lstm(H))
    params = tree_params(g, 5)
    items, batch = tree_batch("child_sum", [12, 30, 1], 6)
    cot = np.random.default_rng(7).standard_normal((len(items), H))
    _, want = rg.vjp(g, batch, params, cotangents={"root": cot})
    adj = rg.adjoint(g)
    m = rg.compile(adj, target="onnx", params={k: v.astype(np.float32) for k, v in params.items()})
    from rnngraph.trees.recursion import feeds

    lay, f, init = feeds(g, batch, {}, np.dtype(np.float32))
    f["cot:root"] = lay.sequence(cot, g.outputs["root"].row_shape).astype(np.float32)
    f["cot:states"] = lay.sequence(None, g.outputs["states"].row_shape).astype(np.float32)
    got = m.run(f, initial_states=init)
    for p in params:
        np.testing.assert_allclose(got[f"grad:{p}"], want[p], atol=1e-4, rtol=1e-4, err_msg=p)
    np.testing.assert_allclose(lay.per_node(got["grad:x"]), want["x"], atol=1e-5)


def test_level_layout_spreads_leaves_and_keeps_children_below() -> None:
    rng = np.random.default_rng(8)
    items = [random_tree(int(n), rng, None) for n in rng.integers(10, 200, 100)]
    b = rg.trees.batch(items)
    from rnngraph.trees.recursion import layout

    lay = layout(b)
    level = np.full(b.num_nodes, -1)
    for lv, row in enumerate(lay.nodes):
        level[row[row >= 0]] = lv
    assert (level >= 0).all() and sorted(lay.nodes[lay.nodes >= 0].tolist()) == list(
        range(b.num_nodes)
    )
    for v in range(b.num_nodes):
        assert all(level[c] < level[v] for c in b.children[v][b.child_mask[v]])
    # scheduling as late as possible: the padded width is far below the leaf count
    leaves = int((~b.child_mask.any(axis=1)).sum())
    assert lay.nodes.shape[1] < 0.5 * leaves


def test_bad_uses_are_clear_errors() -> None:
    g, _ = tree_graph(rg.cells.nary_tree_lstm(H, 2))
    params = tree_params(g, 0)
    star = trees.from_parents([-1, 0, 0, 0], np.zeros((4, F)))
    with pytest.raises(rg.trees.TreeError, match="3 children, but the cell takes at most 2"):
        rg.run(g, rg.trees.batch([star]), params)
    g2 = rg.Graph("used")
    x = g2.input("x", F)
    rg.tanh(x)
    with pytest.raises(rg.GraphError, match="already used"):
        rg.recursive(g2, rg.cells.dag_rnn(H), inputs=x)
    with pytest.raises(rg.GraphError, match="one recursion per graph"):
        rg.recursive(g, rg.cells.dag_rnn(H), inputs=g.input("y", F))
    with pytest.raises(rg.InputError, match="no recursion"):
        rg.run(rg.Graph("plain"), rg.trees.batch([star]))


def test_saved_tree_graph_round_trips(tmp_path) -> None:
    g, _ = tree_graph(rg.cells.child_sum_tree_lstm(H))
    params = tree_params(g, 9)
    path = tmp_path / "tree"
    rg.save(g, path)
    back = rg.load(path)
    _, batch = tree_batch("child_sum", [5, 8], 10)
    np.testing.assert_array_equal(
        rg.run(back, batch, params)["root"], rg.run(g, batch, params)["root"]
    )


def test_cli_runs_and_checks_a_saved_tree_graph(tmp_path, capsys) -> None:
    from rnngraph.tools.cli import main

    g, _ = tree_graph(rg.cells.rntn(H))
    rg.save(g, tmp_path / "rntn")
    assert main(["check", str(tmp_path / "rntn.json")]) == 0
    report = capsys.readouterr().out
    assert "onnx trees" in report and "NO" not in report
    assert main(["run", str(tmp_path / "rntn.json"), "--batch", "4"]) == 0
    assert "root" in capsys.readouterr().out
