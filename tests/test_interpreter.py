"""Semantics of the reference interpreter, checked against plain numpy loops written here."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests.zoo import elman_graph


def _elman_numpy(
    p: dict[str, np.ndarray], xs: np.ndarray, h0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    h = h0
    ys = []
    for x in xs:
        h = np.tanh(x @ p["in.W"] + p["in.b"] + h @ p["rec.W"])
        ys.append(h @ p["out.W"] + p["out.b"])
    return np.stack(ys), h


def test_elman_matches_numpy_loop(rng: np.random.Generator) -> None:
    g = elman_graph()
    p = g.init_params(seed=1, dtype="float64")
    xs = rng.standard_normal((9, 4, 3))
    h0 = rng.standard_normal((4, 5))
    out = rg.run(g, {"x": xs}, p, initial_states={"h": h0})
    y, h = _elman_numpy(p, xs, h0)
    np.testing.assert_allclose(out["y"], y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["h_final"], h, rtol=1e-12, atol=1e-12)
    assert out["y"].dtype == np.float64


def test_dtype_float32_and_float64(rng: np.random.Generator) -> None:
    g = elman_graph()
    p = g.init_params(seed=1)
    xs = rng.standard_normal((5, 2, 3))
    assert rg.run(g, {"x": xs}, p, dtype="float32")["y"].dtype == np.float32
    assert rg.run(g, {"x": xs.astype(np.float32)}, p)["y"].dtype == np.float32
    assert rg.run(g, {"x": xs}, p)["y"].dtype == np.float64


def test_dynamic_time_and_batch(rng: np.random.Generator) -> None:
    g = elman_graph()
    p = g.init_params(seed=2, dtype="float64")
    for T, B in [(1, 1), (13, 2), (4, 7), (0, 3)]:
        xs = rng.standard_normal((T, B, 3))
        out = rg.run(g, {"x": xs}, p)
        assert out["y"].shape == (T, B, 2)
        if T:
            y, h = _elman_numpy(p, xs, np.zeros((B, 5)))
            np.testing.assert_allclose(out["y"], y, atol=1e-12)
            np.testing.assert_allclose(out["h_final"], h, atol=1e-12)
        else:
            np.testing.assert_array_equal(out["h_final"], 0.0)


def test_fir_taps_and_lookahead() -> None:
    g = rg.Graph("fir")
    x = g.input("x", 1)
    g.output("past", rg.delay(x, 2, init=np.array([-1.0])))
    g.output("future", rg.delay(x, -1))
    seq = np.arange(1.0, 6.0).reshape(5, 1, 1)
    out = rg.run(g, {"x": seq})
    assert out["past"].ravel().tolist() == [-1, -1, 1, 2, 3]
    assert out["future"].ravel().tolist() == [2, 3, 4, 5, 0]


def test_lookahead_respects_sequence_lens() -> None:
    g = rg.Graph("ahead")
    x = g.input("x", 1)
    g.output("future", rg.delay(x, -1, init=np.array([9.0])))
    seq = np.arange(1.0, 5.0).reshape(4, 1, 1).repeat(2, axis=1)
    out = rg.run(g, {"x": seq}, sequence_lens=[4, 2])
    assert out["future"][:, 0, 0].tolist() == [2, 3, 4, 9]
    assert out["future"][:, 1, 0].tolist() == [2, 9, 0, 0]  # past the row's end: zeros


def test_backward_state_runs_from_the_last_step() -> None:
    g = rg.Graph("suffix_sum")
    x = g.input("x", 1)
    s = g.state("s", 1, delay=-1)  # s(t) = v(t + 1)
    v = s + x
    g.assign(s, v)
    g.output("y", v)
    seq = np.array([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1).repeat(2, axis=1)
    out = rg.run(g, {"x": seq}, sequence_lens=[4, 3])
    assert out["y"][:, 0, 0].tolist() == [10, 9, 7, 4]
    assert out["y"][:, 1, 0].tolist() == [6, 5, 3, 0]
    assert out["s_final"][:, 0].tolist() == [10, 6]


def test_delay_two_state_with_fixed_initial_value() -> None:
    g = rg.Graph("fib")
    x = g.input("x", 1)
    a = g.state("a", 1, init=np.array([1.0]))  # a(t) = y(t-1)
    b = g.state("b", 1, init=np.array([0.0]), delay=2)  # b(t) = y(t-2)
    y = a + b + 0.0 * x
    g.assign(a, y)
    g.assign(b, y)
    g.output("y", y)
    out = rg.run(g, {"x": np.zeros((6, 1, 1))})
    assert out["y"].ravel().tolist() == [1, 1, 2, 3, 5, 8]


def test_learned_initial_state_param() -> None:
    g = rg.Graph("p")
    x = g.input("x", 2)
    h = g.state("h", 2, init="param")
    g.assign(h, h + x)
    g.output("y", h)
    p = {"h.init": np.array([10.0, 20.0])}
    out = rg.run(g, {"x": np.ones((3, 2, 2))}, p)
    assert out["y"][:, 0, 0].tolist() == [10, 11, 12]
    assert out["h_final"].tolist() == [[13, 23], [13, 23]]


def test_input_initial_state_required() -> None:
    g = rg.Graph("stream")
    x = g.input("x", 2)
    h = g.state("h", 2, init="input")
    g.assign(h, h + x)
    g.output("y", h)
    with pytest.raises(rg.InputError, match="initial_states"):
        rg.run(g, {"x": np.ones((3, 1, 2))})
    out = rg.run(g, {"x": np.ones((3, 1, 2))}, initial_states={"h": np.array([5.0, 5.0])})
    assert out["h_final"].tolist() == [[8.0, 8.0]]


def test_streaming_by_chunks_equals_one_run(rng: np.random.Generator) -> None:
    g = elman_graph()
    p = g.init_params(seed=3, dtype="float64")
    xs = rng.standard_normal((12, 2, 3))
    whole = rg.run(g, {"x": xs}, p)
    h = np.zeros((2, 5))
    ys = []
    for chunk in np.split(xs, [5, 6]):
        out = rg.run(g, {"x": chunk}, p, initial_states={"h": h})
        ys.append(out["y"])
        h = out["h_final"]
    np.testing.assert_allclose(np.concatenate(ys), whole["y"], atol=1e-12)


def test_autonomous_graph_needs_steps() -> None:
    g = rg.Graph("counter")
    c = g.state("c", 1, init=np.array([0.0]))
    nxt = c + 1.0
    g.assign(c, nxt)
    g.output("y", nxt)
    with pytest.raises(rg.InputError, match="steps="):
        rg.run(g, {})
    assert rg.run(g, {}, steps=3)["y"].ravel().tolist() == [1, 2, 3]


@pytest.mark.slow
def test_hundred_thousand_steps() -> None:
    g = rg.Graph("long")
    x = g.input("x", 1)
    s = g.state("s", 1)
    g.assign(s, 0.5 * s + x)
    g.output("y", s)
    out = rg.run(g, {"x": np.ones((100_000, 1, 1))}, dtype="float64")
    assert out["y"].shape == (100_000, 1, 1)
    assert abs(out["s_final"][0, 0] - 2.0) < 1e-12
