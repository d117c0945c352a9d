"""Gradients over windows for any causal graph: a two-step state and a three-step input tap.

The unit-delay form runs as the graph does (the interpreter is the oracle); truncated BPTT
with a full horizon and the BPTT/RTRL hybrid equal full BPTT (vjp); truncated BPTT and
online gradients with short horizons equal an independent PyTorch implementation of the
same net that detaches its memory at each window's start."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.autodiff.windows import unit_delay_form
from tests import zoo

I, H, O, T, B = 2, 3, 1, 11, 2


def iir_net() -> rg.Graph:
    """h(t) = tanh(x(t) W + h(t-1) R1 + h(t-2) R2 + x(t-3) V + b), y = h C: an IIR
    synapse of two taps on the state and a delayed input tap."""
    g = rg.Graph("iir")
    x = g.input("x", I)
    h1 = g.state("h", H)
    h2 = g.state("h_2", H, delay=2)
    tap = rg.linear(rg.delay(x, 3), H, bias=False, name="V")
    new = rg.tanh(
        rg.linear(x, H, name="W") + rg.linear(h1, H, bias=False, name="R1")
        + rg.linear(h2, H, bias=False, name="R2") + tap
    )  # fmt: skip
    g.assign(h1, new)
    g.assign(h2, new)
    g.output("y", rg.linear(new, O, bias=False, name="C"))
    return g


def _data(seed: int = 0):
    g = iir_net()
    rng = np.random.default_rng(seed)
    p = {k: rng.normal(scale=0.6, size=v.shape) for k, v in g.init_params(seed=seed).items()}
    xs = {"x": rng.standard_normal((T, B, I))}
    cot = {"y": rng.standard_normal((T, B, O))}
    return g, p, xs, cot


@pytest.mark.parametrize(
    "cell", ["state_delay_2", "narx", "fir", "clockwork", "param_initial_state", "lstm"]
)
def test_the_unit_delay_form_runs_as_the_graph(cell: str) -> None:
    g = zoo.CELLS[cell]()
    form = unit_delay_form(g)
    assert all(d in (0, 1) for *_, d in form.graph.nx_graph.edges(data="delay"))
    p = zoo.params_for(g, 0)
    rng = np.random.default_rng(1)
    xs = zoo.feeds(g, 7, 2, rng)
    init = {
        s: rng.standard_normal((2, *t.row_shape)).astype("float32") for s, t in g.states.items()
    }
    want = rg.run(g, xs, p, initial_states=init)
    got = rg.run(form.graph, xs, p, initial_states=form.initial(init))
    for k, v in want.items():
        state = k.removesuffix("_final")
        key = f"{form.finals[state]}_final" if state in form.finals else k
        np.testing.assert_allclose(got[key], v, atol=1e-6, err_msg=k)


def test_iir_net_unit_form_and_full_horizon() -> None:
    g, p, xs, cot = _data()
    form = unit_delay_form(g)
    assert {"h", "h_2", "tanh_0.z1", "x.z1", "x.z2", "x.z3"} <= set(form.graph.states)
    _, full = rg.vjp(g, xs, p, cotangents=cot)
    tb = rg.truncated_bptt(g, xs, p, cotangents=cot, h=T, h_step=T)
    for k in [*p, "x"]:
        np.testing.assert_allclose(tb[k], full[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("block", [1, 3, 5, T])
def test_hybrid_bptt_rtrl_is_exact(block: int) -> None:
    g, p, xs, cot = _data(1)
    _, full = rg.vjp(g, xs, p, cotangents=cot)
    hyb = rg.hybrid_gradients(g, xs, p, cotangents=cot, block=block)
    for k in p:
        np.testing.assert_allclose(hyb[k], full[k], rtol=1e-9, atol=1e-11, err_msg=k)


def test_hybrid_with_a_learned_initial_state_and_lstm() -> None:
    for cell in ("param_initial_state", "lstm"):
        g = zoo.CELLS[cell]()
        p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, 2).items()}
        rng = np.random.default_rng(3)
        xs = {k: rng.standard_normal((7, 2, *t.row_shape)) for k, t in g.inputs.items()}
        cot = {k: rng.standard_normal((7, 2, *t.row_shape)) for k, t in g.outputs.items()}
        _, full = rg.vjp(g, xs, p, cotangents=cot)
        hyb = rg.hybrid_gradients(g, xs, p, cotangents=cot, block=3)
        for k in p:
            np.testing.assert_allclose(hyb[k], full[k], rtol=1e-9, atol=1e-11, err_msg=k)


def _torch_truncated(p, xs, cot, h: int, h_step: int):
    """The oracle: the same net in PyTorch, BPTT(h; h') with its memory (h(t-1), h(t-2))
    detached at each window's start; input taps read the true past inputs."""
    torch = pytest.importorskip("torch")
    P = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    x = torch.tensor(xs["x"])
    c = torch.tensor(cot["y"])

    def cell(t, h1, h2):
        tap = x[t - 3] if t >= 3 else torch.zeros(B, I, dtype=x.dtype)
        pre = x[t] @ P["W.W"] + P["W.b"] + h1 @ P["R1.W"] + h2 @ P["R2.W"] + tap @ P["V.W"]
        return torch.tanh(pre)

    # the forward trajectory (no gradient): the memory each window starts from
    zeros = torch.zeros(B, H, dtype=x.dtype)
    hs = []
    with torch.no_grad():
        h1 = h2 = zeros
        for t in range(T):
            new = cell(t, h1, h2)
            hs.append(new)
            h1, h2 = new, h1
    total = 0
    for end in range(h_step, T + h_step, h_step):
        end = min(end, T)
        start = max(0, end - h)
        h1 = hs[start - 1] if start >= 1 else zeros
        h2 = hs[start - 2] if start >= 2 else zeros
        for t in range(start, end):
            new = cell(t, h1, h2)
            if t >= end - h_step:
                total = total + ((new @ P["C.W"]) * c[t]).sum()
            h1, h2 = new, h1
        if end == T:
            break
    total.backward()
    return {k: v.grad.numpy() for k, v in P.items()}


@pytest.mark.parametrize(("h", "h_step"), [(1, 1), (3, 1), (4, 2), (5, 5)])
def test_truncated_bptt_against_a_per_window_oracle(h: int, h_step: int) -> None:
    g, p, xs, cot = _data(2)
    want = _torch_truncated(p, xs, cot, h, h_step)
    got = rg.truncated_bptt(g, xs, p, cotangents=cot, h=h, h_step=h_step)
    for k in p:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-11, err_msg=k)


@pytest.mark.parametrize("h", [2, 4])
def test_online_gradients_with_long_delays_against_the_oracle(h: int) -> None:
    g, p, xs, cot = _data(3)
    steps = list(rg.online_gradients(g, xs, p, cotangents=cot, h=h))
    want = _torch_truncated(p, xs, cot, h, 1)  # BPTT(h; 1) summed over the steps
    for k in p:
        total = sum(gr[k] for _, gr in steps)
        np.testing.assert_allclose(total, want[k], rtol=1e-9, atol=1e-11, err_msg=k)


def test_bad_block() -> None:
    g, p, xs, cot = _data()
    with pytest.raises(rg.GraphError, match="block of at least 1"):
        rg.hybrid_gradients(g, xs, p, cotangents=cot, block=0)


def test_final_state_cotangents_reach_the_windows() -> None:
    """A loss on the final states (h_2 of delay 2 included) through every window method."""
    g, p, xs, cot = _data(4)
    rng = np.random.default_rng(5)
    cot = {**cot, "h_final": rng.standard_normal((B, H)), "h_2_final": rng.standard_normal((B, H))}
    _, full = rg.vjp(g, xs, p, cotangents=cot)
    tb = rg.truncated_bptt(g, xs, p, cotangents=cot, h=T, h_step=T)
    hyb = rg.hybrid_gradients(g, xs, p, cotangents=cot, block=4)
    for k in p:
        np.testing.assert_allclose(tb[k], full[k], rtol=1e-10, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(hyb[k], full[k], rtol=1e-9, atol=1e-11, err_msg=k)
