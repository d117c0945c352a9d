"""Echo state networks against reservoirpy: the same reservoir matrices give the same
states step by step, the same features the same ridge readout, and a reservoir of our
own with the same hyper-parameters predicts Mackey-Glass as well."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg

rpy = pytest.importorskip("reservoirpy")
from reservoirpy.datasets import mackey_glass  # noqa: E402
from reservoirpy.nodes import Reservoir, Ridge  # noqa: E402
from reservoirpy.observables import nrmse  # noqa: E402

N, LEAK, SR, RIDGE, WARMUP = 60, 0.3, 1.25, 1e-6, 100


def esn_graph(weights=None, seed=0) -> rg.Graph:
    g = rg.Graph("esn")
    state = rg.cells.esn(
        g.input("u", 1), N, leak=LEAK, spectral_radius=SR, seed=seed, weights=weights
    )
    g.output("x", state)
    g.output("y", rg.linear(state, 1, name="readout"))
    return g


def _dense(m) -> np.ndarray:
    return m.toarray() if hasattr(m, "toarray") else np.asarray(m)


def test_states_and_readout_equal_reservoirpy_with_its_weights() -> None:
    data = mackey_glass(700)
    res = Reservoir(N, lr=LEAK, sr=SR, seed=3, bias=rpy.mat_gen.uniform(high=0.2, low=-0.2))
    readout = Ridge(ridge=RIDGE)
    model = res >> readout
    model.fit(data[:500], data[1:501], warmup=WARMUP)
    theirs_states = res.run(data[500:699])  # continues from the fitted state
    theirs_pred = readout.run(theirs_states)

    weights = {"Win": _dense(res.Win).T, "W": _dense(res.W).T, "b": np.ravel(res.bias)}
    g = esn_graph(weights)
    u = data[:699].reshape(-1, 1, 1)
    p = rg.fit_readout(g, {"u": u[:500]}, data[1:501].reshape(-1, 1, 1), warmup=WARMUP, ridge=RIDGE)
    # (the normal equations are ill-conditioned: the weights agree to ~1e-5, the fits'
    # predictions far closer)
    np.testing.assert_allclose(p["readout.W"], readout.Wout, rtol=1e-4, atol=1e-4)
    ours = rg.run(g, {"u": u}, {k: v.astype(np.float64) for k, v in p.items()})["y"][500:, 0]
    np.testing.assert_allclose(ours, theirs_pred, atol=2e-6)  # (weights kept in float32)
    p = {"readout.W": readout.Wout, "readout.b": np.ravel(readout.bias)}
    out = rg.run(g, {"u": u}, p)
    np.testing.assert_allclose(out["x"][500:, 0], theirs_states, atol=1e-12)
    np.testing.assert_allclose(out["y"][500:, 0], theirs_pred, atol=1e-12)


def test_own_reservoir_predicts_mackey_glass_as_well() -> None:
    """One-step-ahead prediction, the same hyper-parameters, three seeds each."""
    data = mackey_glass(1500)
    train, test = slice(0, 1000), slice(1000, 1499)
    ours, theirs = [], []
    for seed in range(3):
        g = esn_graph(seed=seed)
        u = data[:1499].reshape(-1, 1, 1)
        p = rg.fit_readout(
            g, {"u": u[train]}, data[1:1001].reshape(-1, 1, 1), warmup=WARMUP, ridge=RIDGE
        )
        pred = rg.run(g, {"u": u}, p)["y"][test, 0]
        ours.append(nrmse(data[1001:1500], pred))
        res, readout = Reservoir(N, lr=LEAK, sr=SR, seed=seed), Ridge(ridge=RIDGE)
        model = res >> readout
        model.fit(data[train], data[1:1001], warmup=WARMUP)
        theirs.append(nrmse(data[1001:1500], model.run(data[test])))
    assert np.mean(ours) < 1.5 * np.mean(theirs), (ours, theirs)
    assert np.mean(ours) < 0.02


def test_fit_readout_errors() -> None:
    g = esn_graph()
    u = np.zeros((20, 1, 1))
    with pytest.raises(rg.ParamError, match="no readout 'out'"):
        rg.fit_readout(g, {"u": u}, np.zeros((20, 1, 1)), readout="out")
    with pytest.raises(rg.InputError, match="targets must be"):
        rg.fit_readout(g, {"u": u}, np.zeros((20, 1, 2)))
    with pytest.raises(rg.InputError, match="no steps left"):
        rg.fit_readout(g, {"u": u}, np.zeros((20, 1, 1)), warmup=20)
