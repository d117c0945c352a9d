"""Random draws in graphs (rg.random): the same bits on every backend, the right
distributions (Kolmogorov–Smirnov and chi-square tests from scipy), gradients
(reparameterised and straight-through, against finite differences)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import rnngraph as rg
from tests import zoo
from tests.gradcheck import check_gradients

RNG_STATES = ("rng.seed", "rng.step")


def _lowbias32(x: int) -> int:
    """The hash as published (Wellons), in plain Python integers: the oracle of the bits."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def _uniform_oracle(seed: int, site: int, step: int, row: int, element: int) -> float:
    h = _lowbias32(seed ^ 0x243F6A88)
    for key in (site, step, row, element):
        h = _lowbias32(h ^ key)
    return ((h >> 8) + 0.5) / 2**24


def _draws() -> rg.Graph:
    g = rg.Graph("draws")
    x = g.input("x", 3)
    g.output("u", rg.random.uniform(x))
    g.output("n", rg.random.normal(rg.reshape(x, [3, 1])))
    g.output("b", rg.random.bernoulli(rg.sigmoid(x)))
    g.output("c", rg.random.categorical(x * 2.0))
    h = g.state("h", 3)
    g.assign(h, rg.tanh(h * 0.5 + x + 0.1 * rg.random.normal(h)))  # a draw inside a loop
    g.output("hs", h)
    return g


def test_uniform_bits_follow_the_published_hash():
    g = rg.Graph("u")
    x = g.input("x", 4)
    g.output("a", rg.random.uniform(x))
    g.output("b", rg.random.uniform(x))
    out = rg.run(g, {"x": np.zeros((3, 2, 4), "float32")}, seed=12345)
    for site, name in enumerate("ab"):
        for t in range(3):
            for b in range(2):
                for i in range(4):
                    assert out[name][t, b, i] == np.float32(_uniform_oracle(12345, site, t, b, i))


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_backends_draw_the_same_numbers(target):
    g = _draws()
    rng = np.random.default_rng(0)
    xs = {"x": rng.standard_normal((9, 4, 3)).astype("float32")}
    lens = np.array([9, 0, 4, 7])
    want = rg.run(g, xs, seed=77, sequence_lens=lens)
    m = rg.compile(g, target=target)
    got = m.run(xs, seed=77, sequence_lens=lens)
    for k in ("u", "b", "c", "rng.seed_final", "rng.step_final"):  # exact: no float function
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    for k in ("n", "hs", "h_final"):  # through log, sqrt and cos: their rounding
        np.testing.assert_allclose(got[k], want[k], rtol=2e-6, atol=2e-6, err_msg=k)
    step = rg.compile(g, target=target, mode="step")
    streamed = step.stream(xs, seed=77)
    whole = rg.run(g, xs, seed=77)
    np.testing.assert_array_equal(streamed["u"], whole["u"])
    np.testing.assert_allclose(streamed["hs"], whole["hs"], rtol=2e-6, atol=2e-6)


def test_float64_draws_equal_float32_draws():
    g = _draws()
    xs = np.random.default_rng(1).standard_normal((5, 2, 3))
    a = rg.run(g, {"x": xs.astype("float32")}, seed=3)
    b = rg.run(g, {"x": xs}, seed=3)
    np.testing.assert_array_equal(a["u"], b["u"].astype("float32"))
    np.testing.assert_allclose(a["n"], b["n"], rtol=1e-6, atol=1e-6)


def test_streaming_continues_the_sequence_of_draws():
    g = _draws()
    xs = {"x": np.random.default_rng(2).standard_normal((8, 3, 3))}
    whole = rg.run(g, xs, seed=9)
    first = rg.run(g, {"x": xs["x"][:5]}, seed=9)
    carried = {k: first[f"{k}_final"] for k in g.states}
    rest = rg.run(g, {"x": xs["x"][5:]}, initial_states=carried)
    np.testing.assert_array_equal(np.concatenate([first["u"], rest["u"]]), whole["u"])


def test_seeds_sites_steps_and_rows_draw_apart():
    g = rg.Graph("apart")
    x = g.input("x", 64)
    g.output("a", rg.random.uniform(x))
    g.output("b", rg.random.uniform(x))
    xs = {"x": np.zeros((4, 3, 64))}
    one, two = rg.run(g, xs, seed=0), rg.run(g, xs, seed=1)
    assert not np.isclose(one["a"], two["a"]).any()
    assert not np.isclose(one["a"], one["b"]).any()
    assert not np.isclose(one["a"][0], one["a"][1]).any()  # steps
    assert not np.isclose(one["a"][:, 0], one["a"][:, 1]).any()  # rows
    assert rg.run(g, xs)["a"].tolist() == one["a"].tolist()  # seed 0 is the default


def test_distributions():
    g = rg.Graph("dist")
    x = g.input("x", 50)
    g.output("u", rg.random.uniform(x))
    g.output("n", rg.random.normal(x))
    g.output("b", rg.random.bernoulli(0.3, like=x))
    g.output("c", rg.random.categorical(rg.slice(x, 0, 4) + np.log([0.1, 0.2, 0.3, 0.4])))
    out = rg.run(g, {"x": np.zeros((200, 8, 50))}, seed=2024)
    assert stats.kstest(out["u"].ravel(), "uniform").pvalue > 1e-3
    assert stats.kstest(out["n"].ravel(), "norm").pvalue > 1e-3
    hits = int(out["b"].sum())
    assert stats.binomtest(hits, out["b"].size, 0.3).pvalue > 1e-3
    counts = out["c"].reshape(-1, 4).sum(0)
    assert (out["c"].sum(-1) == 1).all()
    assert stats.chisquare(counts, counts.sum() * np.array([0.1, 0.2, 0.3, 0.4])).pvalue > 1e-3
    u = out["u"].reshape(-1)
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01  # neighbouring elements


def test_reparameterised_normal_gradients_against_finite_differences():
    g = rg.Graph("vae_step")
    x = g.input("x", 3)
    h = g.state("h", 3)
    mu = rg.linear(rg.concat([x, h]), 3, name="mu")
    sigma = rg.softplus(rg.linear(h, 3, name="sigma"))
    z = mu + sigma * rg.random.normal(mu)
    g.assign(h, rg.tanh(z))
    g.output("z", z)
    check_gradients(g, keep=RNG_STATES, seed=5)


def test_straight_through_gradients():
    g = rg.Graph("st")
    x = g.input("x", 4)
    w = g.param("w", 4)
    p = rg.sigmoid(x * w)
    g.output("st", rg.random.bernoulli(p, straight_through=True))
    g.output("plain", rg.random.bernoulli(p))
    g.output("cat", rg.random.categorical(x * w, straight_through=True))
    params = {"w": np.array([0.5, -1.0, 2.0, 0.1])}
    xs = {"x": np.random.default_rng(3).standard_normal((5, 2, 4))}
    out = rg.run(g, xs, params, seed=4)
    assert set(np.unique(out["st"])) <= {0.0, 1.0}  # the forward value is the sample
    assert (out["cat"].sum(-1) == 1).all() and set(np.unique(out["cat"])) <= {0.0, 1.0}
    cot = np.random.default_rng(5).standard_normal(out["st"].shape)
    _, grads = rg.vjp(g, xs, params, cotangents={"st": cot}, seed=4)
    ps = 1 / (1 + np.exp(-xs["x"] * params["w"]))
    np.testing.assert_allclose(grads["w"], (cot * ps * (1 - ps) * xs["x"]).sum((0, 1)), 1e-10)
    _, plain = rg.vjp(g, xs, params, cotangents={"plain": cot}, seed=4)
    assert not plain.get("w", np.zeros(4)).any()
    ccot = np.random.default_rng(6).standard_normal(out["cat"].shape)
    _, cgrads = rg.vjp(g, xs, params, cotangents={"cat": ccot}, seed=4)
    logits = xs["x"] * params["w"]
    s = np.exp(logits - logits.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    dlogits = s * (ccot - (ccot * s).sum(-1, keepdims=True))  # softmax's Jacobian
    np.testing.assert_allclose(cgrads["w"], (dlogits * xs["x"]).sum((0, 1)), 1e-10)


def test_save_and_load_keep_the_draws(tmp_path):
    g = _draws()
    xs = {"x": np.random.default_rng(7).standard_normal((4, 2, 3))}
    g.save(tmp_path / "draws")
    back = rg.load(tmp_path / "draws.json")
    a, b = rg.run(g, xs, seed=11), rg.run(back, xs, seed=11)
    zoo.assert_close(a, b, tol=0)


def test_bad_seeds_are_refused():
    g = _draws()
    xs = {"x": np.zeros((2, 1, 3))}
    for bad, err in [(-1, ValueError), (2**24, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(err, match="seed"):
            rg.run(g, xs, seed=bad)
    with pytest.raises(ValueError, match="not both"):
        rg.run(g, xs, seed=1, initial_states={"rng.seed": np.ones(1)})
    with pytest.raises(rg.GraphError, match="like="):
        rg.random.bernoulli(0.5)
    h = rg.Graph("sym").input("x", ("N", 2))
    with pytest.raises(rg.GraphError, match="fixed row shape"):
        rg.random.uniform(h)


def test_a_graph_without_draws_ignores_the_seed():
    g = zoo.elman_graph()
    p = zoo.params_for(g)
    xs = {"x": np.ones((3, 2, 3), "float32")}
    zoo.assert_close(rg.run(g, xs, p, seed=5), rg.run(g, xs, p))
