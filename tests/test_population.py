"""Weights at run time: a population model (rg.compile(..., population=P)) gives, for each of
P weight vectors, what a model compiled with those weights gives (the reference run is the
oracle) — for every zoo cell on the reference and ONNX, on TVM for a sample, in step mode,
with per-individual inputs, and for a graph with two sequence axes."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.program.population import lift_params
from tests import zoo
from tests.test_attention import decoder

P = 3


def _stacked(g: rg.Graph, n: int = P) -> tuple[list[dict], dict[str, np.ndarray]]:
    ps = [zoo.params_for(g, s) for s in range(n)]
    return ps, {k: np.stack([p[k] for p in ps]) for k in g.params}


def _check(g: rg.Graph, target: str, T: int = 6, B: int = 2) -> None:
    ps, stacked = _stacked(g)
    m = rg.compile(g, target=target, population=P)
    rng = np.random.default_rng(0)
    xs, init = zoo.feeds(g, T, B, rng), zoo.caller_initial_states(g, B, rng)
    lens = rng.integers(0, T + 1, B)
    out = m.run(xs, params=stacked, initial_states=init or None, sequence_lens=lens)
    for i, p in enumerate(ps):
        want = rg.run(g, xs, p, initial_states=init or None, sequence_lens=lens)
        zoo.assert_close({k: v[i] for k, v in out.items()}, want, tol=2e-5)


ZOO = [k for k in zoo.CELLS if k != "hopfield_continuous"]  # (a fixed point: see below)


@pytest.mark.parametrize("cell", ZOO)
@pytest.mark.parametrize("target", ["reference", "onnx"])
def test_every_zoo_cell_in_population_form(cell: str, target: str) -> None:
    _check(zoo.CELLS[cell](), target)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["elman", "lstm", "gru", "layer_norm_op_lstm", "ntm", "narx"])
def test_population_form_on_tvm(cell: str) -> None:
    _check(zoo.CELLS[cell](), "tvm")


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_step_mode_and_per_individual_inputs(target: str) -> None:
    g = zoo.CELLS["gru"]()
    ps, stacked = _stacked(g)
    m = rg.compile(g, target=target, population=P, mode="step")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((P, 2, zoo.I)).astype("float32")  # each individual its own
    h = rng.standard_normal((P, 2, 4)).astype("float32")
    state = next(iter(g.states))
    out = m.run({"x": x, state: h}, params=stacked)
    for i, p in enumerate(ps):
        want = rg.run(g, {"x": x[i][None]}, p, initial_states={state: h[i]})
        np.testing.assert_allclose(out["y"][i], want["y"][0], atol=2e-5)
        np.testing.assert_allclose(out[f"{state}_final"][i], want[f"{state}_final"], atol=2e-5)


def test_two_axes_and_params_as_inputs() -> None:
    g = decoder("additive")
    ps, stacked = _stacked(g)
    m = rg.compile(g, target="onnx", population=P)
    rng = np.random.default_rng(2)
    xs = zoo.feeds(g, 4, 2, rng)
    out = m.run(xs, params=stacked)
    for i, p in enumerate(ps):
        zoo.assert_close({k: v[i] for k, v in out.items()}, rg.run(g, xs, p), tol=2e-5)
    one = rg.compile(g, target="onnx", params_as_inputs=True)
    zoo.assert_close(one.run(xs, params=ps[1]), rg.run(g, xs, ps[1]), tol=2e-5)


def test_some_params_vary_the_rest_are_compiled_in() -> None:
    hop = zoo.CELLS["hopfield_continuous"]()
    with pytest.raises(rg.GraphError, match=r"fixed_point.*population_params="):
        rg.compile(hop, "onnx", population=2)
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g, 0)
    vary = ["l.B"]  # the biases vary, W and R are compiled in
    assert vary and len(vary) < len(g.params)
    m = rg.compile(g, "onnx", p, population=2, population_params=vary)
    assert m.param_names == vary
    xs = zoo.feeds(g, 5, 2, np.random.default_rng(3))
    out = m.run(xs, params={k: np.stack([p[k], p[k] * 0.5]) for k in vary})
    half = dict(p, **{k: p[k] * 0.5 for k in vary})
    zoo.assert_close({k: v[1] for k, v in out.items()}, rg.run(g, xs, half), tol=2e-5)
    zoo.assert_close({k: v[0] for k, v in out.items()}, rg.run(g, xs, p), tol=2e-5)


def test_bad_population_arguments_are_named() -> None:
    g = zoo.elman_graph()
    _, stacked = _stacked(g)
    m = rg.compile(g, "onnx", population=P)
    xs = {"x": np.zeros((4, 2, 3), "float32")}
    with pytest.raises(rg.InputError, match=r"lacks \['out.b'\]"):
        m.run(xs, params={k: v for k, v in stacked.items() if k != "out.b"})
    with pytest.raises(rg.InputError, match="compiled for population=3"):
        m.run(xs, params={k: v[:2] for k, v in stacked.items()})
    with pytest.raises(rg.InputError, match=r"param 'in.W' must be"):
        m.run(xs, params={**stacked, "in.W": stacked["in.W"][:, :2]})
    with pytest.raises(rg.InputError, match="leading population axis of 3"):
        m.run({"x": np.zeros((2, 4, 2, 3))}, params=stacked)
    with pytest.raises(rg.CompileError, match="positive int"):
        rg.compile(g, "onnx", population=0)
    with pytest.raises(rg.GraphError, match="has no params"):
        lift_params(g, ["nope"])


def test_lifted_graph_keeps_names_and_saves(tmp_path) -> None:
    g = zoo.CELLS["param_initial_state"]()
    lg = lift_params(g)
    assert sorted(lg.per_sequence_inputs) == sorted(g.params) and not lg.params
    assert set(lg.outputs) == set(g.outputs) and set(lg.states) == set(g.states)
    path = lg.save(tmp_path / "lifted")
    assert sorted(rg.load(path).per_sequence_inputs) == sorted(g.params)
