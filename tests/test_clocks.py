"""Clocked states (g.state(..., every=k)): a clockwork RNN against a numpy loop, on
every backend and step model, with lengths that end between ticks; gradients
against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo
from tests.gradcheck import check_gradients

PERIODS = (1, 2, 4)
H = 3


def clockwork() -> rg.Graph:
    """Koutník et al.'s clockwork RNN: module i updates every PERIODS[i] steps and reads
    the modules that are at least as slow as itself."""
    g = rg.Graph("clockwork")
    x = g.input("x", 2)
    hs = [g.state(f"m{i}", H, every=k) for i, k in enumerate(PERIODS)]
    for i, h in enumerate(hs):
        slower = rg.concat(hs[i:]) if i < len(hs) - 1 else h
        g.assign(h, rg.tanh(rg.linear(x, H, name=f"in{i}") + rg.linear(slower, H, name=f"rec{i}")))
    g.output("y", rg.linear(rg.concat(hs), 2, name="out"))
    return g


def numpy_clockwork(p, xs, lens):
    T, B, _ = xs.shape
    hs = [np.zeros((B, H)) for _ in PERIODS]
    ys = np.zeros((T, B, 2))
    for t in range(T):
        new = []
        for i, k in enumerate(PERIODS):
            slower = np.concatenate(hs[i:], axis=1)
            pre = xs[t] @ p[f"in{i}.W"] + p[f"in{i}.b"]
            pre = pre + slower @ p[f"rec{i}.W"] + p[f"rec{i}.b"]
            tick = t % k == k - 1
            alive = (t < lens)[:, None]
            new.append(np.where(alive & tick, np.tanh(pre), hs[i]))
        # the output reads the states before this step's update (their delay of 1)
        ys[t] = np.concatenate(hs, axis=1) @ p["out.W"] + p["out.b"]
        ys[t][t >= lens] = 0
        hs = new
    return ys, hs


def test_clockwork_rnn_against_a_numpy_loop():
    g = clockwork()
    p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, 1).items()}
    xs = np.random.default_rng(0).standard_normal((11, 4, 2))
    lens = np.array([11, 5, 2, 7])  # rows that end between the slow modules' ticks
    out = rg.run(g, {"x": xs}, p, sequence_lens=lens)
    ys, hs = numpy_clockwork(p, xs, lens)
    np.testing.assert_allclose(out["y"], ys, rtol=1e-12, atol=1e-12)
    for i in range(len(PERIODS)):
        np.testing.assert_allclose(out[f"m{i}_final"], hs[i], rtol=1e-12, atol=1e-12)
    assert out["clock.4_final"].ravel().tolist() == [(n % 4) for n in lens]


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_clocked_states_on_every_backend(target):
    g = clockwork()
    p = zoo.params_for(g, 2)
    m = rg.compile(g, target=target, params=p, threads=1)
    zoo.check_model(g, p, m)
    step = rg.compile(g, target=target, params=p, mode="step", threads=1)
    xs = {"x": np.random.default_rng(3).standard_normal((9, 2, 2)).astype("float32")}
    zoo.assert_close(step.stream(xs), rg.run(g, xs, p))


def test_clocked_gradients_against_finite_differences():
    check_gradients(clockwork(), keep=("clock.2", "clock.4"), seed=3)


def test_event_driven_updates_with_where():
    g = rg.Graph("event")
    x = g.input("x", 1)
    s = g.state("s", 1)
    g.assign(s, rg.where(rg.greater(x, 0.5), x, s))  # take x only when it exceeds 0.5
    g.output("y", s)
    xs = np.array([0.1, 0.9, 0.2, 0.7, 0.3]).reshape(5, 1, 1)
    assert rg.run(g, {"x": xs})["s_final"].ravel().tolist() == [0.7]


def test_clocks_survive_save_and_load(tmp_path):
    g = clockwork()
    p = zoo.params_for(g)
    path = g.save(tmp_path / "cw", p)
    back, back_p = rg.load(path), rg.load_params(path)
    xs = {"x": np.random.default_rng(4).standard_normal((6, 2, 2)).astype("float32")}
    zoo.assert_close(rg.run(back, xs, back_p), rg.run(g, xs, p), tol=0)
    assert back.node("m2").attrs["every"] == 4


def test_bad_periods_are_refused():
    g = rg.Graph("bad")
    for bad in (0, -2, 1.5, True):
        with pytest.raises(rg.GraphError, match="every must be a positive int"):
            g.state(f"s{bad}", 2, every=bad)
    with pytest.raises(rg.GraphError, match="delay must be 1"):
        g.state("d", 2, every=3, delay=2)


def test_stored_is_the_value_a_state_keeps():
    g = rg.Graph("s")
    x = g.input("x", 2)
    plain, slow = g.state("p", 2), g.state("q", 2, every=3)
    with pytest.raises(rg.GraphError, match="not assigned yet"):
        g.stored(slow)
    new = rg.tanh(x + plain)
    g.assign(plain, new)
    g.assign(slow, rg.tanh(x + slow))
    assert g.stored(plain).node == new.node
    held = g.stored(slow)
    assert held.op == "where"  # its value on the ticks, its own in between
    g.output("y", held)
    xs = np.ones((4, 1, 2))
    y = rg.run(g, {"x": xs})["y"][:, 0, 0]
    assert y[0] == y[1] == 0.0 and y[2] == pytest.approx(np.tanh(1.0)) and y[3] == y[2]
