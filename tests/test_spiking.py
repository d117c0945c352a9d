"""Spiking neurons against snntorch: rg.heaviside's surrogate gradients, and the LIF
layer spike for spike and gradient for gradient; the LSM on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
from snntorch import surrogate  # noqa: E402

T, B, I, N = 12, 3, 4, 6
RNG = np.random.default_rng(0)

SURROGATES = {  # ours -> snntorch's, with a slope of our choosing
    "fast_sigmoid": lambda k: surrogate.fast_sigmoid(slope=k),
    "arctan": lambda k: surrogate.atan(alpha=k),
    "sigmoid": lambda k: surrogate.sigmoid(slope=k),
    "straight_through": lambda k: surrogate.straight_through_estimator(),
}


@pytest.mark.parametrize("kind", sorted(SURROGATES))
def test_heaviside_surrogates_match_snntorch(kind: str) -> None:
    slope = 3.0
    g = rg.Graph("h")
    g.output("s", rg.heaviside(g.input("v", 5), kind, slope=slope))
    v = RNG.standard_normal((T, B, 5))
    v[0, 0, 0] = 0.0  # exactly at the threshold: no spike
    s = rg.run(g, {"v": v}, dtype=np.float64)["s"]
    cot = RNG.standard_normal(s.shape)
    _, grads = rg.vjp(g, {"v": v}, cotangents={"s": cot}, dtype=np.float64)
    V = torch.tensor(v, requires_grad=True)
    S = SURROGATES[kind](slope)(V)
    (S * torch.tensor(cot)).sum().backward()
    np.testing.assert_array_equal(s, S.detach().numpy())
    # (snntorch's spikes are float32, so its backward pass runs in float32)
    np.testing.assert_allclose(grads["v"], V.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_heaviside_tangent_is_the_surrogate_too() -> None:
    g = rg.Graph("h")
    g.output("s", rg.heaviside(g.input("v", 3), "sigmoid", slope=2.0))
    v = RNG.standard_normal((T, B, 3))
    dv = RNG.standard_normal(v.shape)
    _, tangents = rg.jvp(g, {"v": v}, tangents={"v": dv}, dtype=np.float64)
    sig = 1 / (1 + np.exp(-2.0 * v))
    np.testing.assert_allclose(tangents["s"], dv * 2.0 * sig * (1 - sig), rtol=1e-12)


def lif_graph(**kw) -> rg.Graph:
    g = rg.Graph("lif")
    spikes, mem = rg.cells.lif(g.input("x", I), N, name="lif", **kw)
    g.output("spikes", spikes)
    g.output("mem", mem)
    return g


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_against_snntorch_leaky(reset: str) -> None:
    """The same weights and inputs: equal spike trains and potentials, and equal
    gradients (input, weights) through the arctan surrogate, reset detached."""
    g = lif_graph(beta=0.8, threshold=0.7, reset=reset, surrogate="arctan", slope=2.0)
    p = {k: v.astype(np.float64) * 3 for k, v in g.init_params(seed=1).items()}
    x = RNG.standard_normal((T, B, I))
    out = rg.run(g, {"x": x}, p)
    cots = {k: RNG.standard_normal(v.shape) for k, v in out.items() if k in ("spikes", "mem")}
    _, grads = rg.vjp(g, {"x": x}, p, cotangents=cots)

    fc = torch.nn.Linear(I, N).double()
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(p["lif.W"].T))
        fc.bias.copy_(torch.tensor(p["lif.b"]))
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731 (not float32 constants)
    neuron = snn.Leaky(
        beta=f64(0.8), threshold=f64(0.7), spike_grad=surrogate.atan(2.0), reset_mechanism=reset
    )
    X = torch.tensor(x, requires_grad=True)
    mem = torch.zeros(B, N, dtype=torch.float64)
    spikes, mems = [], []
    for t in range(T):
        s, mem = neuron(fc(X[t]), mem)
        spikes.append(s)
        mems.append(mem)
    S, M = torch.stack(spikes), torch.stack(mems)
    np.testing.assert_array_equal(out["spikes"], S.detach().numpy())
    assert out["spikes"].sum() > 5  # the neurons do fire
    # (snntorch's update mixes float32 spikes in: agreement to ~1e-7)
    np.testing.assert_allclose(out["mem"], M.detach().numpy(), rtol=1e-6, atol=1e-6)
    loss = (S * torch.tensor(cots["spikes"])).sum() + (M * torch.tensor(cots["mem"])).sum()
    loss.backward()
    # (float32 spikes in snntorch's backward pass)
    np.testing.assert_allclose(grads["x"], X.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["lif.W"], fc.weight.grad.numpy().T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["lif.b"], fc.bias.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_refractory_neurons_ignore_input_while_resting() -> None:
    g = rg.Graph("r")
    spikes, _ = rg.cells.lif(g.input("x", 1), projection=False, beta=1.0, refractory=2)
    g.output("s", spikes)
    s = rg.run(g, {"x": np.full((9, 1, 1), 1.5)})["s"][:, 0, 0]
    # fires, rests two steps (no input; the reset takes it to 0.5 then stays), fires...
    np.testing.assert_array_equal(s, [1, 0, 0, 1, 0, 0, 1, 0, 0])


def lsm_graph() -> rg.Graph:
    g = rg.Graph("lsm")
    spikes, mem = rg.cells.lsm(g.input("x", 3), 20, input_scaling=2.0, seed=3)
    g.output("y", rg.linear(mem, 2, name="readout"))
    g.output("spikes", spikes)
    return g


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_lsm_on_backends(target: str) -> None:
    g = lsm_graph()
    p = g.init_params(seed=0)
    rng = np.random.default_rng(1)
    xs = {"x": np.abs(rng.standard_normal((30, 2, 3))).astype(np.float32)}
    want = rg.run(g, xs, p)
    assert want["spikes"].mean() > 0.02  # a live liquid
    m = rg.compile(g, target=target, params=p)
    zoo.assert_close(m.run(xs), want, tol=1e-4)


def test_a_spiking_layer_learns_through_its_surrogate() -> None:
    """Two input channels firing at different rates; a LIF layer and a readout of its spike
    trace learn which channel fires faster: the training signal reaches the input weights
    only through the spikes' surrogate gradient."""
    rng = np.random.default_rng(0)
    T, B = 20, 64
    rates = rng.uniform(0.05, 0.6, (B, 2))
    x = (rng.random((T, B, 2)) < rates).astype(np.float32)
    target = np.broadcast_to(np.where(rates[:, :1] > rates[:, 1:], 1.0, -1.0), (T, B, 1))
    g = rg.Graph("snn")
    spikes, _ = rg.cells.lif(g.input("x", 2), 16, beta=0.8, surrogate="fast_sigmoid", name="lif")
    trace = g.state("trace", 16)
    new = 0.8 * trace + spikes
    g.assign(trace, new)
    g.output("y", rg.linear(new, 1, name="out"))
    p = g.init_params(seed=0)
    p["lif.W"] = p["lif.W"] * 4 + 0.5  # (start with a live layer)
    data = [{"x": x, "t": target.astype(np.float32)}]
    result = rg.train(
        g, p, data, loss=rg.losses.mse("t"), optimizer=rg.optim.Adam(0.05), epochs=60,
        progress=False,
    )  # fmt: skip
    losses = result.history.losses
    assert losses[-1] < 0.5 * losses[0]
    assert not np.allclose(result.params["lif.W"], p["lif.W"])  # the spikes passed gradient
