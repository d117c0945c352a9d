"""rg.vjp against float64 central finite differences, for every cell and op.

The loss is a random linear functional of every output sequence and every
final state, so its gradient is exactly the vector–Jacobian product with
those random cotangents. Each check compares the directional derivative
along a random direction (per param, for the inputs and for the initial
states) with <gradient, direction>.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import rnngraph as rg
from rnngraph.ops.integer import INTEGER_OPS
from tests import zoo
from tests.gradcheck import OP_CASES, check_gradients, op_graph
from tests.strategies import random_graphs


@pytest.mark.parametrize("name", sorted(set(zoo.CELLS) - zoo.SURROGATE))
def test_cell_gradients(name: str) -> None:
    check_gradients(zoo.CELLS[name]())


@pytest.mark.parametrize("name", ["lstm", "bidirectional_lstm", "narx", "state_delay_2"])
def test_cell_gradients_with_sequence_lens(name: str) -> None:
    check_gradients(zoo.CELLS[name](), sequence_lens=np.array([6, 3]))


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_op_gradients(case: str) -> None:
    check_gradients(op_graph(OP_CASES[case]), seed=1)


def test_every_differentiable_op_has_a_rule_and_a_case() -> None:
    from rnngraph.ir.registry import ADJOINT, OPS

    sources = {"input", "param", "constant"}
    between = {n for n, d in OPS.items() if d.between_axes}  # tests/test_axes.py: by stages
    assert set(OPS) - sources - between <= set(ADJOINT)
    covered = {c.split("_static")[0].split("_signals")[0] for c in OP_CASES} | {"matmul"}
    untested = set(ADJOINT) - covered - {"greater", "less", "equal", "state", "zeros_like"}
    untested -= {"floor", "ceil"}  # piecewise constant: test_steps_pass_no_gradient
    untested -= {"gather_rows", "scatter_rows", "scatter_add_rows"}  # tests/test_rows.py
    untested -= {"random", "stop_gradient"}  # constants to gradients: tests/test_random.py
    untested -= {"heaviside"}  # a surrogate, not its derivative: tests/test_spiking.py
    # straight through the rounding (fake_quant), integers (no gradient): tests/test_quant.py
    untested -= {"fake_quant", "quantize", "dequantize"}
    untested -= INTEGER_OPS  # tests/test_integer.py
    assert untested <= {"total", "total_outer", "gather_middle", "matvec"}, untested


def test_steps_pass_no_gradient() -> None:
    """floor and ceil are piecewise constant: the adjoint passes nothing through them (a
    straight-through estimate is written with stop_gradient), and the rest of the graph
    still gets its own."""
    g = rg.Graph("steps")
    x = g.input("x", 3)
    w = g.param("w", 3, np.array([0.5, -1.0, 2.0]))
    g.output("y", rg.floor(x * w) + rg.ceil(x) + x * w)
    xs = np.random.default_rng(0).normal(size=(4, 2, 3))
    _, grads = rg.vjp(g, {"x": xs}, {"w": np.array([0.5, -1.0, 2.0])},
                      cotangents={"y": np.ones((4, 2, 3))})  # fmt: skip
    np.testing.assert_allclose(grads["w"], xs.sum(axis=(0, 1)))  # only x * w's
    np.testing.assert_allclose(grads["x"], np.ones((4, 2, 1)) * [0.5, -1.0, 2.0])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(min_delay=1, max_delay=3))
def test_random_forward_graph_gradients(rgraph) -> None:
    check_gradients(rgraph.graph)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(min_delay=-2, max_delay=-1))
def test_random_backward_graph_gradients(rgraph) -> None:
    check_gradients(rgraph.graph, sequence_lens=np.array([6, 4]))


def test_adjoint_graph_is_a_verified_graph_running_backward() -> None:
    g = zoo.CELLS["gru"]()
    adj = rg.adjoint(g)
    rg.verify(adj)
    directions = {r.direction for r in rg.recurrent_regions(adj)}
    assert directions == {1, -1}  # the forward loop and its adjoint, in reversed time
    assert {"cot:y", "x"} <= set(adj.inputs)
    assert {"grad:g.W", "grad:g.R", "grad:g.B", "grad:x", "y"} <= set(adj.outputs)


def test_input_gradients_chosen_by_name() -> None:
    """input_gradients=False keeps only the weights' gradients (and the same values);
    a list names the inputs; a bare string and an unknown name are refused, naming the fix."""
    g = rg.Graph("two")
    x, u = g.input("x", 2), g.input("u", 2)
    g.output("y", rg.cells.elman(x + u, 3, name="e"))
    p = g.init_params(seed=0)
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((4, 2, 2)), "u": rng.standard_normal((4, 2, 2))}
    cot = {"cot:y": rng.standard_normal((4, 2, 3))}
    every = rg.run(rg.adjoint(g), {**feeds, **cot}, p)
    assert {"grad:x", "grad:u"} <= set(every)
    none = rg.adjoint(g, input_gradients=False)
    assert not any(k in none.outputs for k in ("grad:x", "grad:u"))
    got = rg.run(none, {**feeds, **cot}, p)
    np.testing.assert_allclose(got["grad:e.in.W"], every["grad:e.in.W"])
    only_u = rg.adjoint(g, input_gradients=["u"])
    assert "grad:u" in only_u.outputs and "grad:x" not in only_u.outputs
    with pytest.raises(rg.GraphError, match=r"write \['x'\]"):
        rg.adjoint(g, input_gradients="x")
    with pytest.raises(rg.GraphError, match="not inputs of the graph"):
        rg.adjoint(g, input_gradients=["z"])
