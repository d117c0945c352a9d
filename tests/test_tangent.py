"""Forward mode: the dot-product test against the adjoint, and RTRL against BPTT."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo
from tests.gradcheck import OP_CASES, op_graph

T, B = 6, 2


def _dot_test(g: rg.Graph, seed: int = 0, **kw) -> None:
    rng = np.random.default_rng(seed)
    p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, seed).items()}
    xs = {k: rng.standard_normal((T, B, *t.row_shape)) for k, t in g.inputs.items()}
    init = {k: rng.standard_normal((B, *t.row_shape)) for k, t in g.states.items()}
    u = {k: rng.standard_normal(v.shape) for k, v in {**p, **xs, **init}.items()}
    _, tans = rg.jvp(g, xs, p, tangents=u, initial_states=init, **kw)
    v = {k: rng.standard_normal(t.shape) for k, t in tans.items()}
    _, grads = rg.vjp(g, xs, p, cotangents=v, initial_states=init, **kw)
    lhs = sum(float(np.sum(tans[k] * v[k])) for k in v)
    rhs = sum(float(np.sum(u[k] * grads[k])) for k in u if k in grads)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs, rhs)


@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_dot_product_tangent_vs_adjoint(name: str) -> None:
    _dot_test(zoo.CELLS[name]())


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_dot_product_every_op(case: str) -> None:
    _dot_test(op_graph(OP_CASES[case]), seed=2)


def test_dot_product_with_sequence_lens() -> None:
    _dot_test(zoo.CELLS["bidirectional_lstm"](), sequence_lens=np.array([6, 3]))


@pytest.mark.parametrize("name", ["elman", "indrnn", "narx"])
def test_rtrl_equals_bptt(name: str) -> None:
    g = rg.Graph(name)
    build = {
        "elman": lambda x: rg.cells.elman(x, 3, 2, name="e"),
        "indrnn": lambda x: rg.cells.indrnn(x, 3, name="ind"),
        "narx": lambda x: rg.cells.narx(x, 3, 1, input_taps=1, output_taps=2, name="n"),
    }[name]
    g.output("y", build(g.input("x", 2)))
    rng = np.random.default_rng(0)
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=1).items()}
    xs = {"x": rng.standard_normal((5, 2, 2))}
    out = rg.run(g, xs, p)
    cot = {"y": rng.standard_normal(out["y"].shape)}
    _, bptt = rg.vjp(g, xs, p, cotangents=cot)
    online = rg.rtrl(g, xs, p, cotangents=cot)
    for k in p:
        np.testing.assert_allclose(online[k], bptt[k], rtol=1e-8, atol=1e-10, err_msg=k)


def _elman_data():
    g = rg.Graph("elman")
    g.output("y", rg.cells.elman(g.input("x", 2), 4, 1, name="e"))
    rng = np.random.default_rng(0)
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=1).items()}
    xs = {"x": rng.standard_normal((12, 3, 2))}
    cot = {"y": rng.standard_normal((12, 3, 1))}
    return g, p, xs, cot


def test_truncated_bptt_with_a_full_horizon_is_bptt() -> None:
    g, p, xs, cot = _elman_data()
    _, full = rg.vjp(g, xs, p, cotangents=cot)
    tb = rg.truncated_bptt(g, xs, p, cotangents=cot, h=12, h_step=12)
    for k in [*p, "x"]:
        np.testing.assert_allclose(tb[k], full[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_truncated_bptt_approaches_bptt_as_the_horizon_grows() -> None:
    g, p, xs, cot = _elman_data()
    _, full = rg.vjp(g, xs, p, cotangents=cot)
    errs = []
    for h in (1, 3, 6, 12):
        tb = rg.truncated_bptt(g, xs, p, cotangents=cot, h=h, h_step=1)
        errs.append(sum(float(np.abs(tb[k] - full[k]).sum()) for k in p))
    assert errs[-1] < 1e-9 and errs[0] > errs[1] > errs[2] > errs[3]


def test_truncated_bptt_refuses_look_aheads() -> None:
    g = zoo.CELLS["rnn_reverse"]()
    with pytest.raises(rg.GraphError, match="need a causal graph"):
        rg.truncated_bptt(g, {"x": np.zeros((4, 1, 3))}, g.init_params(), cotangents={}, h=2)


@pytest.mark.parametrize("h", [1, 3, 12])
def test_online_gradients_sum_to_truncated_bptt(h: int) -> None:
    g, p, xs, cot = _elman_data()
    steps = list(rg.online_gradients(g, xs, p, cotangents=cot, h=h))
    assert [t for t, _ in steps] == list(range(12))
    tb = rg.truncated_bptt(g, xs, p, cotangents=cot, h=h, h_step=1)
    for k in p:
        total = sum(gr[k] for _, gr in steps)
        np.testing.assert_allclose(total, tb[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_elementwise_rtrl_is_exact_and_cheap_for_indrnn(monkeypatch) -> None:
    g = rg.Graph("ind")
    g.output("y", rg.cells.indrnn(g.input("x", 3), 5, name="ind"))
    rng = np.random.default_rng(0)
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=1).items()}
    xs = {"x": rng.standard_normal((7, 2, 3))}
    cot = {"y": rng.standard_normal((7, 2, 5))}
    _, bptt = rg.vjp(g, xs, p, cotangents=cot)
    import sys

    tangent_mod = sys.modules[
        "rnngraph.autodiff.forward"
    ]  # the module, not rg.tangent the function

    calls = []
    real = tangent_mod.jvp
    monkeypatch.setattr(tangent_mod, "jvp", lambda *a, **k: calls.append(1) or real(*a, **k))
    cheap = rg.rtrl(g, xs, p, cotangents=cot, elementwise=True)
    assert len(calls) == 3 + 1 + 1  # rows of W, then u and b: I + 2 passes, not (I + 2) H
    for k in p:
        np.testing.assert_allclose(cheap[k], bptt[k], rtol=1e-8, atol=1e-10, err_msg=k)
