"""Per-sequence inputs (g.input(..., axis=None)): one value per batch row, the same at
every step, computed from once; states that start from one; every backend and step
model; gradients summed over the steps; errors that name the fix."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import rnngraph as rg
from tests import zoo
from tests.gradcheck import check_gradients


def styled(per_sequence: bool = True) -> rg.Graph:
    """An Elman net whose input gain comes from a per-sequence style vector, and whose state
    starts from a per-sequence h0 (``per_sequence=False``: both as repeated sequences, the
    one-axis formulation the oracle runs)."""
    g = rg.Graph("styled")
    x = g.input("x", 3)
    axis = None if per_sequence else "t"
    style = g.input("style", 2, axis=axis)
    gain = rg.tanh(rg.linear(style, 3, name="gain"))  # per-sequence: computed once
    if per_sequence:
        h0 = g.input("h0", 4, axis=None)
        h = g.state("h", 4, init=h0)
    else:
        h = g.state("h", 4, init="input")
    new = rg.tanh(rg.linear(x * gain, 4, name="in") + rg.linear(h, 4, bias=False, name="rec"))
    g.assign(h, new)
    g.output("y", rg.concat([new, gain]))
    return g


def _feeds(T=5, B=3, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((T, B, 3)),
        rng.standard_normal((B, 2)),
        rng.standard_normal((B, 4)),
    )


def test_a_per_sequence_input_is_a_sequence_that_repeats():
    g, oracle = styled(), styled(per_sequence=False)
    p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, 1).items()}
    xs, style, h0 = _feeds()
    lens = np.array([5, 0, 2])
    out = rg.run(g, {"x": xs, "style": style, "h0": h0}, p, sequence_lens=lens)
    want = rg.run(
        oracle,
        {"x": xs, "style": np.broadcast_to(style, (5, *style.shape))},
        p,
        initial_states={"h": h0},
        sequence_lens=lens,
    )
    np.testing.assert_allclose(out["y"], want["y"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["h_final"], want["h_final"], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out["h_final"][1], h0[1])  # no steps: the start value


def test_what_depends_only_on_per_sequence_values_is_computed_once():
    g = styled()
    program = rg.schedule(g)
    names = {g.node(n).name for n in program.per_sequence}
    assert {"style", "h0", "gain", "gain.matmul"} <= names
    assert not names & {"x", "h", "in", "rec"}
    # in ONNX: outside the Scan, read by its body from the outer scope
    m = rg.compile(g, target="onnx", params=zoo.params_for(g))
    scan = next(n for n in m.model.graph.node if n.op_type == "Scan")
    body = onnx.helper.get_attribute_value(scan.attribute[0])
    assert "Tanh" in [n.op_type for n in m.model.graph.node]
    assert not any(n.name.startswith("Gemm:gain") for n in body.node)


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_per_sequence_inputs_on_every_backend_and_step_model(target):
    g = styled()
    p = zoo.params_for(g, 2)
    m = rg.compile(g, target=target, params=p)
    zoo.check_model(g, p, m)
    step = rg.compile(g, target=target, params=p, mode="step")
    xs, style, h0 = (a.astype("float32") for a in _feeds(6, 2, 3))
    feeds = {"x": xs, "style": style, "h0": h0}
    zoo.assert_close(step.stream(feeds), rg.run(g, feeds, p))
    one = step.run({"x": xs[0], "style": style, "h0": h0})  # the first step starts from h0
    zoo.assert_close({"y": one["y"]}, {"y": rg.run(g, feeds, p)["y"][0]})


def test_gradients_of_per_sequence_inputs_sum_over_the_steps():
    check_gradients(styled(), seed=3)
    check_gradients(styled(), seed=4, sequence_lens=np.array([6, 2]))


def test_a_per_sequence_input_survives_save_and_load(tmp_path):
    g = styled()
    p = zoo.params_for(g)
    path = g.save(tmp_path / "styled", p)
    back = rg.load(path)
    assert sorted(back.per_sequence_inputs) == ["h0", "style"]
    xs, style, h0 = (a.astype("float32") for a in _feeds())
    feeds = {"x": xs, "style": style, "h0": h0}
    zoo.assert_close(rg.run(back, feeds, rg.load_params(path)), rg.run(g, feeds, p), tol=0)


def test_mistakes_with_per_sequence_values_are_named():
    g = styled()
    p = zoo.params_for(g)
    xs, style, h0 = _feeds()
    with pytest.raises(rg.InputError, match=r"per-sequence \(axis=None\).*shape \(B, 2\)"):
        rg.run(g, {"x": xs, "style": np.broadcast_to(style, (5, 3, 2)), "h0": h0}, p)
    with pytest.raises(rg.InputError, match="batch"):
        rg.run(g, {"x": xs, "style": style[:2], "h0": h0}, p)
    g2 = rg.Graph("delayed")
    s = g2.input("s", 2, axis=None)
    g2.output("y", rg.delay(s, 1))
    with pytest.raises(rg.GraphError, match=r"through a delay of 1.*read it directly"):
        rg.verify(g2)
    g3 = rg.Graph("start")
    x = g3.input("x", 2)
    with pytest.raises(rg.GraphError, match="per-sequence input"):
        g3.state("h", 2, init=x)
    with pytest.raises(rg.ShapeError, match="cannot start from"):
        g3.state("h", 3, init=g3.input("h0", 2, axis=None))
    only = rg.Graph("only")
    only.output("y", only.input("s", 2, axis=None) * 2.0)
    with pytest.raises(rg.InputError, match="steps="):
        rg.run(only, {"s": np.ones((1, 2))})
    assert rg.run(only, {"s": np.ones((1, 2))}, steps=2)["y"].shape == (2, 1, 2)


def test_tangent_and_adjoint_agree_on_per_sequence_inputs():
    g = styled()
    p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, 5).items()}
    rng = np.random.default_rng(5)
    xs, style, h0 = _feeds(6, 2, 5)
    feeds = {"x": xs, "style": style, "h0": h0}
    u = {k: rng.standard_normal(np.shape(v)) for k, v in {**p, **feeds}.items()}
    _, tans = rg.jvp(g, feeds, p, tangents=u)
    v = {k: rng.standard_normal(t.shape) for k, t in tans.items()}
    _, grads = rg.vjp(g, feeds, p, cotangents=v)
    lhs = sum(float(np.sum(tans[k] * v[k])) for k in v)
    rhs = sum(float(np.sum(u[k] * grads[k])) for k in u)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))
