"""Hopfield networks and BAMs (rg.cells.hopfield, rg.cells.bam, rg.hebbian) against numpy
loops written here; every backend; the continuous net's implicit gradients."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.ops.random import hash_bits, uniform_from_bits
from tests import zoo
from tests.gradcheck import check_gradients

N, P = 16, 2


def _sign(v):
    return np.where(v < 0, -1.0, 1.0)


def _patterns(seed=0, p=P, n=N):
    return np.random.default_rng(seed).choice([-1.0, 1.0], (p, n))


def _flipped(xi, k, seed=1):
    rng = np.random.default_rng(seed)
    out = xi.copy()
    for row in out:
        row[rng.choice(len(row), k, replace=False)] *= -1
    return out


def recall_graph(mode, **kw):
    g = rg.Graph(f"hop_{mode}")
    probe = g.input("probe", N, axis=None)
    g.input("t", 0)
    out = rg.cells.hopfield(probe, N, mode=mode, name="hop", **kw)
    z, n = out if isinstance(out, tuple) else (out, None)
    g.output("z", z)
    if n is not None:
        g.output("n", n)
    return g


def _run(g, W, probes, steps=1, **kw):
    feeds = {"probe": probes, "t": np.zeros((steps, len(probes), 0))}
    return rg.run(g, feeds, {"hop.W": W}, **kw)


def test_hebbian_is_the_outer_product_rule():
    xi = _patterns()
    W = rg.hebbian(xi)
    want = sum(np.outer(p, p) for p in xi) / N
    np.fill_diagonal(want, 0)
    np.testing.assert_allclose(W, want, atol=1e-7)
    eta = _patterns(2, n=5)
    np.testing.assert_allclose(
        rg.hebbian(xi, eta), sum(np.outer(a, b) for a, b in zip(xi, eta, strict=True))
    )
    with pytest.raises(ValueError, match="\\+1 and -1"):
        rg.hebbian(np.array([[0.0, 1.0]]))


def numpy_sync(W, z, max_iter=100):
    k = 0
    while k < max_iter:
        new, k = _sign(z @ W), k + 1
        done = np.array_equal(new, z)
        z = new
        if done:
            break
    return z, k


def numpy_async(W, z, max_iter=100):
    z, k = z.copy(), 0
    while k < max_iter:
        before, k = z.copy(), k + 1
        for i in range(len(z)):
            z[i] = _sign(z @ W[:, i])
        if np.array_equal(before, z):
            break
    return z, k


@pytest.mark.parametrize("mode,oracle", [("sync", numpy_sync), ("async", numpy_async)])
def test_binary_recall_against_a_numpy_loop(mode, oracle):
    xi = _patterns(3)
    W = rg.hebbian(xi).astype(np.float64)
    probes = np.concatenate([_flipped(xi, 2), _flipped(_patterns(9), 5)])  # near and far
    out = _run(recall_graph(mode, iterations=True), W, probes)
    for b, probe in enumerate(probes):
        z, k = oracle(W, probe)
        np.testing.assert_array_equal(out["z"][0, b], z)
        assert out["n"][0, b, 0] == k
    assert (out["z"][0, :P] == xi).all()  # the near probes are recalled


def test_a_synchronous_two_cycle_is_reported():
    W = np.array([[0.0, -1.0], [-1.0, 0.0]])
    g = rg.Graph("cycle")
    probe = g.input("probe", 2, axis=None)
    g.input("t", 0)
    _, n = rg.cells.hopfield(probe, 2, name="hop", max_iter=9, iterations=True)
    g.output("n", n)
    out = rg.run(g, {"probe": np.array([[1.0, 1.0]]), "t": np.zeros((1, 1, 0))}, {"hop.W": W})
    assert out["n"].ravel().tolist() == [9.0]  # (1, 1) -> (-1, -1) -> (1, 1) ...


def test_continuous_recall_is_the_equilibrium():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((N, N)) * 0.15
    W = (W + W.T) / 2
    probes = rng.standard_normal((3, N))
    out = _run(recall_graph("continuous", beta=1.5, tol=1e-13, max_iter=1000), W, probes)
    v = out["z"][0]
    u = np.arctanh(v) / 1.5
    np.testing.assert_allclose(u, v @ W + probes, atol=1e-11)  # u = tanh(beta u) W + I


def test_continuous_hopfield_gradients_against_finite_differences():
    g = rg.Graph("graded")
    x = g.input("x", 4)
    g.output(
        "y",
        rg.cells.hopfield(x, 4, mode="continuous", name="hop", bias=True, tol=1e-14, max_iter=2000),
    )
    check_gradients(g, seed=3)


def test_glauber_dynamics_against_a_numpy_loop_with_the_same_draws():
    xi = _patterns(5)
    W = rg.hebbian(xi).astype(np.float64)
    probes = _flipped(xi, 3, seed=6)
    g = recall_graph("glauber", beta=2.0)
    out = _run(g, W, probes, steps=6, seed=11)
    site = next(n for n in g.nodes() if n.op == "random").attrs["site"]
    z = probes.copy()
    rows = np.arange(len(probes))[:, None]
    elements = np.arange(N)[None, :]
    for t in range(6):
        bits = hash_bits(np.array(11), site, np.array(t), rows, elements)
        u = uniform_from_bits(bits, np.float64)
        p = 1.0 / (1.0 + np.exp(-2.0 * 2.0 * (z @ W)))
        z = np.where(u < p, 1.0, -1.0)
        np.testing.assert_array_equal(out["z"][t], z)


def numpy_bam(W, x, max_iter=100):
    y = _sign(x @ W)
    for _ in range(max_iter):
        y2 = _sign(x @ W)
        x2 = _sign(y2 @ W.T)
        if np.array_equal(x2, x) and np.array_equal(y2, y):
            break
        x, y = x2, y2
    return x, y


def bam_graph():
    g = rg.Graph("bam")
    x = g.input("x", N)
    a, b = rg.cells.bam(x, 5, name="bam")
    g.output("a", a)
    g.output("b", b)
    return g


def test_bam_recalls_stored_pairs_like_a_numpy_loop():
    xi, eta = _patterns(7), _patterns(8, n=5)
    W = rg.hebbian(xi, eta).astype(np.float64)
    probes = _flipped(xi, 2, seed=2)
    out = rg.run(bam_graph(), {"x": probes[None]}, {"bam.W": W})
    for r, probe in enumerate(probes):
        x, y = numpy_bam(W, probe)
        np.testing.assert_array_equal(out["a"][0, r], x)
        np.testing.assert_array_equal(out["b"][0, r], y)
    assert (out["b"][0] == eta).all()


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_energy_cells_on_every_backend(target):
    xi = _patterns(12)
    W = rg.hebbian(xi)
    for mode in ("sync", "async", "continuous"):
        g = recall_graph(mode, iterations=True)
        p = {"hop.W": W * (0.3 if mode == "continuous" else 1.0)}
        m = rg.compile(g, target=target, params=p, threads=1)
        feeds = {
            "probe": _flipped(xi, 2, seed=13).astype("float32"),
            "t": np.zeros((2, P, 0), "float32"),
        }
        zoo.assert_close(m.run(feeds), rg.run(g, feeds, p))
    g = bam_graph()
    p = {"bam.W": rg.hebbian(xi, _patterns(14, n=5))}
    zoo.check_model(g, p, rg.compile(g, target=target, params=p, threads=1))
    g = recall_graph("glauber", beta=3.0)
    feeds = {"probe": _flipped(xi, 2).astype("float32"), "t": np.zeros((5, P, 0), "float32")}
    got = rg.compile(g, target=target, params={"hop.W": W}, threads=1).run(feeds, seed=3)
    np.testing.assert_array_equal(got["z"], rg.run(g, feeds, {"hop.W": W}, seed=3)["z"])


def test_bad_energy_cells_are_refused():
    g = rg.Graph("bad")
    x = g.input("x", 4)
    with pytest.raises(rg.GraphError, match="per-sequence"):
        rg.cells.hopfield(x, 4, mode="glauber")
    with pytest.raises(rg.ShapeError, match="size 5 differs"):
        rg.cells.hopfield(x, 5)
    with pytest.raises(ValueError, match="mode must be one of"):
        rg.cells.hopfield(x, 4, mode="boltzmann")
    assert sorted(g.params) == []
