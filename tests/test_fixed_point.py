"""Fixed points (rg.fixed_point): against plain Python iteration, per row; on every
backend and step model; implicit gradients against float64 finite differences and
the tangent against the adjoint; errors that leave the graph as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.ops.fixed import FixedPointError
from tests import zoo
from tests.gradcheck import check_gradients

H, X = 4, 3


def deq(tol: float = 1e-12, max_iter: int = 300, iterations: bool = False) -> rg.Graph:
    """A deep-equilibrium cell: z* = tanh(z* W + x U + s V + b), s(t) = z*(t - 1)."""
    g = rg.Graph("deq")
    x = g.input("x", X)
    s = g.state("s", H)
    w = 0.25 * rg.tanh(g.param("W", (H, H)))  # |entries| < 1/4: a contraction
    drive = x @ g.param("U", (X, H)) + s @ g.param("V", (H, H)) + g.param("b", H)
    found = rg.fixed_point(
        lambda z: rg.tanh(z @ w + drive),
        drive * 0.0,
        tol=tol,
        max_iter=max_iter,
        iterations=iterations,
    )
    z, n = found if iterations else (found, None)
    g.assign(s, z)
    g.output("y", z * 2.0 - 1.0)
    if n is not None:
        g.output("n", n)
    return g


def python_deq(p, xs, tol, max_iter, lens=None):
    """Plain Python iteration, one row at a time."""
    T, B, _ = xs.shape
    w = 0.25 * np.tanh(p["W"])
    s = np.zeros((B, H))
    ys, ns = np.zeros((T, B, H)), np.zeros((T, B, 1))
    for t in range(T):
        for b in range(B):
            drive = xs[t, b] @ p["U"] + s[b] @ p["V"] + p["b"]
            z, k = np.zeros(H), 0
            while k < max_iter:
                new = np.tanh(z @ w + drive)
                k += 1
                change = np.abs(new - z).max()
                z = new
                if change < tol:
                    break
            if lens is None or t < lens[b]:
                ys[t, b], ns[t, b] = 2 * z - 1, k
                s[b] = z
    return ys, ns, s


def _params(g, seed=0):
    return {k: v.astype(np.float64) for k, v in zoo.params_for(g, seed).items()}


def test_a_recurrent_fixed_point_against_python_iteration():
    g = deq(tol=1e-10, iterations=True)
    p = _params(g)
    xs = np.random.default_rng(0).standard_normal((6, 3, X))
    lens = np.array([6, 2, 4])
    out = rg.run(g, {"x": xs}, p, sequence_lens=lens)
    ys, ns, s = python_deq(p, xs, 1e-10, 300, lens)
    np.testing.assert_allclose(out["y"], ys, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(out["n"], ns)  # each row stops on its own
    np.testing.assert_allclose(out["s_final"], s, rtol=0, atol=1e-13)
    assert ns[ns > 0].min() > 5 and ns.max() < 60


def test_a_row_does_not_depend_on_the_others():
    g = deq(tol=1e-8, iterations=True)
    p = _params(g, 1)
    xs = np.random.default_rng(1).standard_normal((4, 5, X))
    xs[:, 3] *= 20  # a row that needs more iterations than the rest
    whole = rg.run(g, {"x": xs}, p)
    for b in range(5):
        alone = rg.run(g, {"x": xs[:, b : b + 1]}, p)
        np.testing.assert_array_equal(alone["n"][:, 0], whole["n"][:, b])
        # (the same iterations; a product's rounding may differ with the batch's size)
        np.testing.assert_allclose(alone["y"][:, 0], whole["y"][:, b], rtol=0, atol=1e-14)


def test_a_fixed_point_outside_any_loop_runs_over_all_steps_at_once():
    """Newton's iteration for the square root: a fixed point with no state around it."""
    g = rg.Graph("sqrt")
    a = g.input("a", 2)
    z, n = rg.fixed_point(lambda z: 0.5 * (z + a / z), a + 1.0, tol=1e-14, iterations=True)
    g.output("z", z)
    g.output("n", n)
    xs = np.random.default_rng(2).uniform(0.1, 50.0, (5, 3, 2))
    out = rg.run(g, {"a": xs})
    np.testing.assert_allclose(out["z"], np.sqrt(xs), rtol=1e-15)
    assert out["n"].shape == (5, 3, 1) and out["n"].max() < 12


def test_a_row_that_does_not_converge_is_reported():
    g = rg.Graph("oscillate")
    x = g.input("x", 1)
    z, n = rg.fixed_point(lambda z: 1.0 - z + x * 0.0, x, max_iter=7, iterations=True)
    g.output("z", z)
    g.output("n", n)
    xs = np.array([0.5, 0.2]).reshape(1, 2, 1)  # 0.5 is the fixed point; 0.2 flips forever
    out = rg.run(g, {"x": xs})
    assert out["n"].ravel().tolist() == [1.0, 7.0]
    assert out["z"].ravel().tolist() == [0.5, 0.8]
    nan = rg.run(g, {"x": np.full((1, 1, 1), np.nan)})
    assert nan["n"].ravel().tolist() == [7.0]  # a NaN never counts as converged


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_fixed_points_on_every_backend_and_step_model(target):
    g = deq(tol=1e-6)
    p = zoo.params_for(g, 2)
    m = rg.compile(g, target=target, params=p)
    zoo.check_model(g, p, m)
    step = rg.compile(g, target=target, params=p, mode="step")
    xs = {"x": np.random.default_rng(3).standard_normal((7, 2, X)).astype("float32")}
    zoo.assert_close(step.stream(xs), rg.run(g, xs, p))
    # the counts agree exactly in float64, where rounding cannot move a row across tol
    g = deq(tol=1e-9, iterations=True)
    p = _params(g, 2)
    m = rg.compile(g, target=target, params=p, dtype="float64")
    xs = {"x": np.random.default_rng(4).standard_normal((5, 3, X))}
    ours, ref = m.run(xs), rg.run(g, xs, p)
    np.testing.assert_array_equal(ours["n"], ref["n"])
    np.testing.assert_allclose(ours["y"], ref["y"], rtol=0, atol=1e-12)


def test_implicit_gradients_against_finite_differences():
    check_gradients(deq(tol=1e-14, max_iter=500), seed=4)


def test_the_gradient_is_implicit_not_through_the_iterations():
    """The adjoint graph holds a second fixed point (of the transposed map), not an unrolled
    copy of the forward iterations."""
    g = deq()
    adj = rg.adjoint(g)
    loops = [n for n in adj.nodes() if n.op == "fixed_point"]
    assert len(loops) == 2  # the forward one and the transposed one: nothing unrolled
    assert any(n.name.endswith(".adj") for n in loops)


def test_tangent_and_adjoint_agree():
    g = deq(tol=1e-14, max_iter=500)
    p = _params(g, 5)
    rng = np.random.default_rng(5)
    xs = {"x": rng.standard_normal((5, 2, X))}
    u = {k: rng.standard_normal(v.shape) for k, v in {**p, **xs}.items()}
    _, tans = rg.jvp(g, xs, p, tangents=u)
    v = {k: rng.standard_normal(t.shape) for k, t in tans.items()}
    _, grads = rg.vjp(g, xs, p, cotangents=v)
    lhs = sum(float(np.sum(tans[k] * v[k])) for k in v)
    rhs = sum(float(np.sum(u[k] * grads[k])) for k in u)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_training_through_a_fixed_point():
    """rg.train differentiates through the fixed point (the implicit gradient) and learns."""
    g = deq(tol=1e-9)
    rng = np.random.default_rng(6)
    xs = rng.standard_normal((8, 16, X)).astype("float32")
    target = np.tanh(np.cumsum(xs, axis=0) * 0.3)[..., :1].repeat(H, axis=-1) * 2 - 1
    batch = {"x": xs, "t": target.astype("float32")}
    result = rg.train(
        g,
        zoo.params_for(g, 6),
        [batch],
        loss=rg.losses.mse("t", output="y"),
        optimizer=rg.optim.Adam(0.03),
        epochs=40,
        progress=False,
    )
    first, last = result.history.losses[0], result.history.losses[-1]
    assert last < 0.5 * first, (first, last)


def test_a_fixed_point_survives_save_and_load(tmp_path):
    g = deq(iterations=True)
    p = zoo.params_for(g)
    path = g.save(tmp_path / "deq", p)
    back = rg.load(path)
    xs = {"x": np.random.default_rng(7).standard_normal((4, 2, X)).astype("float32")}
    zoo.assert_close(rg.run(back, xs, rg.load_params(path)), rg.run(g, xs, p), tol=0)


def test_a_tampered_body_is_refused_on_load(tmp_path):
    g = deq()
    path = g.save(tmp_path / "deq", zoo.params_for(g))
    doc = json.loads(path.read_text())
    node = next(n for n in doc["nodes"] if n["op"] == "fixed_point")
    node["attrs"]["body"][-1]["shape"] = ["B", H + 1]
    path.write_text(json.dumps(doc))
    with pytest.raises(rg.GraphError, match="body node"):
        rg.load(path)


def _graph():
    g = rg.Graph("bad")
    x = g.input("x", 2)
    return g, x


def test_bad_fixed_points_are_refused_and_leave_the_graph_as_it_was():
    g, x = _graph()
    before = sorted(n.name for n in g.nodes())
    cases = [
        (lambda z: x * 2.0, x, "does not depend on its argument"),
        (lambda z: rg.concat([z, z]), x, "must have z's type"),
        (lambda z: rg.delay(z, 1) * 0.5, x, "through a delay"),
    ]
    for fn, x0, match in cases:
        with pytest.raises(FixedPointError, match=match):
            rg.fixed_point(fn, x0)
        assert sorted(n.name for n in g.nodes()) == before
    w = g.param("W", (2, 2))
    with pytest.raises(FixedPointError, match="float signal"):
        rg.fixed_point(lambda z: z @ w, w)
    for bad in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(FixedPointError, match="tol"):
            rg.fixed_point(lambda z: z * 0.5, x, tol=bad)
    for bad in (0, 2.5, True):
        with pytest.raises(FixedPointError, match="max_iter"):
            rg.fixed_point(lambda z: z * 0.5, x, max_iter=bad)
    # the graph still builds and runs
    g.output("y", rg.fixed_point(lambda z: 0.5 * z + x, x))
    out = rg.run(g, {"x": np.ones((1, 1, 2))}, {"W": np.eye(2)})
    np.testing.assert_allclose(out["y"], 2.0, atol=1e-5)
