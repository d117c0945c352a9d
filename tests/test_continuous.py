"""Continuous-time nets against scipy.integrate.solve_ivp (RK45 at tight tolerances):
rg.ode's RK4 and Euler steps inside rg.cells.ctrnn, with a fixed step and with the
step as an input (irregular sampling); rg.cells.mtrnn against the paper's update
written in numpy; every backend against the reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import rnngraph as rg
from tests import zoo

T, B, I, N = 30, 2, 3, 5
TAU = np.array([0.3, 0.5, 1.0, 2.0, 4.0])
RNG = np.random.default_rng(0)


def ctrnn_graph(dt, method="rk4", substeps=1) -> rg.Graph:
    g = rg.Graph("ct")
    x = g.input("x", I)
    step = g.input("dt", 1) if dt is None else dt
    g.output("y", rg.cells.ctrnn(x, N, tau=TAU, dt=step, method=method, substeps=substeps))
    return g


def _params(g: rg.Graph) -> dict[str, np.ndarray]:
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=1).items()}
    p["ctrnn.W"] = p["ctrnn.W"] * 3  # a strongly coupled net
    p["ctrnn.b"] = np.random.default_rng(7).standard_normal(N) * 0.3
    return p


def scipy_ctrnn(p, x: np.ndarray, dts: np.ndarray) -> np.ndarray:
    """Each row integrated step by step, the input held over each step."""
    out = np.zeros((len(x), x.shape[1], N))
    for b in range(x.shape[1]):
        y = np.zeros(N)
        for t in range(len(x)):
            drive = x[t, b] @ p["ctrnn.Win"] + p["ctrnn.b"]

            def f(_, v, drive=drive):
                return (np.tanh(v) @ p["ctrnn.W"] + drive - v) / TAU

            y = solve_ivp(f, (0.0, dts[t, b]), y, method="RK45", rtol=1e-12, atol=1e-14).y[:, -1]
            out[t, b] = y
    return out


def test_ctrnn_rk4_and_euler_against_solve_ivp() -> None:
    x = RNG.standard_normal((T, B, I))
    dt = 0.05
    want = scipy_ctrnn(_params(ctrnn_graph(dt)), x, np.full((T, B), dt))
    errors = {}
    for method, substeps in (("rk4", 1), ("rk4", 2), ("euler", 1), ("euler", 10)):
        g = ctrnn_graph(dt, method, substeps)
        got = rg.run(g, {"x": x}, _params(g))["y"]
        errors[(method, substeps)] = float(np.abs(got - want).max())
    assert errors[("rk4", 1)] < 1e-5, errors  # (fast units: dt / tau up to 1/6)
    # fourth order: half the step, about a sixteenth of the error
    assert 8 < errors[("rk4", 1)] / errors[("rk4", 2)] < 32, errors
    assert 1e-4 < errors[("euler", 1)] < 0.1, errors  # first order
    # ten substeps: the Euler error shrinks about tenfold
    assert 4 < errors[("euler", 1)] / errors[("euler", 10)] < 20, errors


def test_irregular_steps_as_an_input() -> None:
    x = RNG.standard_normal((T, B, I))
    dts = RNG.uniform(0.01, 0.2, (T, B))
    g = ctrnn_graph(None, substeps=4)  # (dt / tau up to 2/3: four RK4 steps per sample)
    p = _params(g)
    got = rg.run(g, {"x": x, "dt": dts[..., None]}, p)["y"]
    np.testing.assert_allclose(got, scipy_ctrnn(p, x, dts), atol=2e-5)


def test_mtrnn_is_the_papers_update() -> None:
    g = rg.Graph("mt")
    fast, slow = rg.cells.mtrnn(g.input("x", I), (4, 3), tau=(2.0, 30.0))
    g.output("fast", fast)
    g.output("slow", slow)
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=2).items()}
    x = RNG.standard_normal((T, B, I))
    out = rg.run(g, {"x": x}, p)
    tau = np.array([2.0] * 4 + [30.0] * 3)
    u = np.zeros((B, 7))
    for t in range(T):
        drive = np.concatenate([x[t] @ p["mtrnn.Win"], np.zeros((B, 3))], -1) + p["mtrnn.b"]
        u = (1 - 1 / tau) * u + (np.tanh(u) @ p["mtrnn.W"] + drive) / tau
        np.testing.assert_allclose(out["fast"][t], np.tanh(u[:, :4]), atol=1e-12)
        np.testing.assert_allclose(out["slow"][t], np.tanh(u[:, 4:]), atol=1e-12)
    # the slow units change less from step to step
    moves = {k: np.abs(np.diff(out[k], axis=0)).mean() for k in ("fast", "slow")}
    assert moves["slow"] < moves["fast"] / 3


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_irregular_ctrnn_on_backends(target: str) -> None:
    g = ctrnn_graph(None)
    p = {k: v.astype(np.float32) for k, v in _params(g).items()}
    xs = {
        "x": RNG.standard_normal((T, B, I)).astype(np.float32),
        "dt": RNG.uniform(0.01, 0.2, (T, B, 1)).astype(np.float32),
    }
    m = rg.compile(g, target=target, params=p)
    zoo.assert_close(m.run(xs), rg.run(g, xs, p), tol=1e-5)


def test_bad_options() -> None:
    g = rg.Graph("bad")
    x = g.input("x", 2)
    with pytest.raises(rg.GraphError, match="unknown ODE method"):
        rg.cells.ctrnn(x, 3, method="rk45")
    with pytest.raises(rg.GraphError, match="time constants must be positive"):
        rg.cells.ctrnn(x, 3, tau=[1.0, 0.0, 1.0])
    with pytest.raises(rg.GraphError, match="substeps"):
        rg.cells.ctrnn(x, 3, substeps=0)
