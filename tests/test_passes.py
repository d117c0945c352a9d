"""Each pass: a before/after structural check, and the reference output unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph import passes
from rnngraph.program.recognize import recognize_cells
from rnngraph.program.schedule import CellRegion, ParallelRegion, RecurrentRegion
from tests import zoo

T, B = 7, 3


def _feeds(g: rg.Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal((T, B, *t.row_shape)) for k, t in g.inputs.items()}


def _same_results(before: rg.Graph, after: rg.Graph, params: dict, **kw) -> None:
    feeds = _feeds(before)
    want = rg.run(before, feeds, params, **kw)
    got = rg.run(after, feeds, params, **kw)
    assert set(want) == set(got)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12, err_msg=k)


def _ops(g: rg.Graph) -> list[str]:
    return sorted(n.op for n in g.nodes())


def _f64(p: dict) -> dict:
    return {k: v.astype(np.float64) for k, v in p.items()}


def test_fold_constants() -> None:
    g = rg.Graph("fold")
    x = g.input("x", 2)
    k = rg.exp(g.constant(np.array([1.0, 2.0])) * 0.5)
    g.output("y", x * k)
    r = passes.fold_constants(g)
    assert r.modified
    assert _ops(r.graph) == ["constant", "input", "mul"]
    assert _ops(g) == ["constant", "constant", "exp", "input", "mul", "mul"]  # input untouched
    _same_results(g, r.graph, {})
    assert not passes.fold_constants(r.graph).modified


def test_common_subexpressions_merge_only_identical_reads() -> None:
    g = rg.Graph("cse")
    x = g.input("x", 2)
    a, b = rg.tanh(x), rg.tanh(x)
    c = rg.tanh(rg.delay(x, 1))  # a different read: not merged with a
    g.output("y", a + b + c)
    r = passes.eliminate_common_subexpressions(g)
    assert r.modified
    assert _ops(r.graph).count("tanh") == 2
    _same_results(g, r.graph, {})


def test_dead_code() -> None:
    g = rg.Graph("dce")
    x = g.input("x", 2)
    rg.sigmoid(x)  # unused
    g.output("y", rg.tanh(x))
    r = passes.eliminate_dead_code(g)
    assert "sigmoid" not in _ops(r.graph)
    _same_results(g, r.graph, {})


@pytest.mark.parametrize("step", [1, -1])
def test_unroll_fir_taps_reads_the_source_once_per_tap(step: int) -> None:
    g = rg.Graph("tdl")
    x = g.input("x", 2)
    z1 = rg.delay(x, step)
    z2 = rg.delay(z1, step)
    z3 = rg.delay(z2, step)
    g.output("y", z1 + 2.0 * z2 + 3.0 * z3)
    r = passes.unroll_fir_taps(g)
    assert r.modified
    xid = r.graph.input_nodes()["x"]
    assert sorted(d for u, _, d in rg.fir_taps(r.graph) if u == xid) == sorted(
        step * k for k in (1, 2, 3)
    )
    _same_results(g, r.graph, {})
    _same_results(g, r.graph, {}, sequence_lens=np.array([7, 2, 0]))


def test_unroll_fir_taps_keeps_nonzero_initial_values() -> None:
    g = rg.Graph("tdl")
    x = g.input("x", 2)
    g.output("y", rg.delay(rg.delay(x, 1, init=np.ones(2)), 1))
    assert not passes.unroll_fir_taps(g).modified


def test_simplify_reads_through_undelayed_delays_and_joins_pads() -> None:
    # The shapes the adjoint of a sliced value makes: pieces padded back to full width
    # and summed (here out of order, one piece read a step back), and undelayed delays.
    g = rg.Graph("pieces")
    x = g.input("x", 6)
    a, b = rg.tanh(rg.slice(x, 0, 2)), rg.sigmoid(rg.slice(x, 2, 5))
    c_past = rg.delay(rg.slice(x, 5, 6) * 2.0, 1)
    pa, pb = rg.pad(a, [-1], [(0, 4)]), rg.pad(b, [-1], [(2, 1)])
    whole = pb + (rg.pad(c_past, [-1], [(5, 0)]) + pa)
    g.output("y", whole * 3.0)
    same = g.apply("delay", [whole], name="same")  # undelayed: whole itself
    g.output("z", rg.delay(same, 2) + same)
    r = passes.simplify_structure(g)
    assert r.modified
    ops = _ops(r.graph)
    assert "pad" not in ops and ops.count("concat") == 1 and ops.count("delay") == 2
    (cat,) = (n for n in r.graph.nodes() if n.op == "concat")
    assert [r.graph.node(u).op for u in r.graph.operand_ids(cat.id)] == ["tanh", "sigmoid", "delay"]
    _same_results(g, r.graph, {})
    _same_results(g, r.graph, {}, sequence_lens=np.array([7, 2, 0]))
    assert not passes.simplify_structure(r.graph).modified


@pytest.mark.parametrize(
    "second",
    [(1, 2), (3, 0)],  # overlapping the first piece; leaving a gap after it
)
def test_simplify_keeps_pads_that_do_not_tile_the_axis(second: tuple[int, int]) -> None:
    g = rg.Graph("pieces")
    x = g.input("x", 6)
    a, b = rg.slice(x, 0, 2), rg.slice(x, 0, 6 - sum(second))
    g.output("y", rg.pad(a, [-1], [(0, 4)]) + rg.pad(b, [-1], [second]))
    assert not passes.simplify_structure(g).modified


def test_simplify_keeps_a_sum_whose_inner_sums_are_read_elsewhere() -> None:
    g = rg.Graph("pieces")
    x = g.input("x", 6)
    p = [rg.pad(rg.slice(x, 2 * i, 2 * i + 2), [-1], [(2 * i, 4 - 2 * i)]) for i in range(3)]
    inner = p[0] + p[1]  # also an output: the outer sum cannot absorb it
    g.output("inner", inner)
    g.output("y", inner + p[2])
    r = passes.simplify_structure(g)
    assert _ops(r.graph).count("pad") == 3 and "concat" not in _ops(r.graph)
    _same_results(g, r.graph, {})


def test_simplify_turns_the_lstm_gradient_into_one_concat_a_step() -> None:
    g = zoo.CELLS["lstm"]()
    adj = rg.adjoint(g, input_gradients=False)
    r = passes.simplify_structure(adj)
    assert "pad" not in _ops(r.graph)
    assert all(d for n in r.graph.nodes() if n.op == "delay" for _, d, _ in r.graph.operands(n.id))
    _same_results(adj, r.graph, _f64(zoo.params_for(g)), sequence_lens=np.array([7, 3, 0]))


def _loop_ops(g: rg.Graph) -> list[str]:
    return sorted(g.node(n).op for r in rg.recurrent_regions(g) for n in r.nodes)


def test_hoist_splits_the_matmul_of_a_concatenation() -> None:
    g = rg.Graph("concat_cell")
    x = g.input("x", 3)
    h = g.state("h", 4)
    g.assign(h, rg.tanh(rg.linear(rg.concat([x, h]), 4, name="W")))
    g.output("y", h)
    p = _f64(g.init_params(seed=1))
    assert _loop_ops(g).count("concat") == 1
    r = passes.hoist_time_parallel(g, p)
    assert r.modified
    loop = _loop_ops(r.graph)
    assert "concat" not in loop and loop.count("matmul") == 1 and loop.count("add") == 1
    _same_results(g, r.graph, p)


def test_hoist_regroups_biases_and_input_projections_out_of_the_loop() -> None:
    g = zoo.CELLS["lstm"]()
    p = _f64(zoo.params_for(g))
    before = _loop_ops(g).count("add")
    r = passes.hoist_time_parallel(g, p)
    assert r.modified
    after = _loop_ops(r.graph).count("add")
    assert after < before
    _same_results(g, r.graph, p)


@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_default_pipeline_keeps_every_cell_exact(name: str) -> None:
    g = zoo.CELLS[name]()
    p = _f64(zoo.params_for(g))
    r = passes.optimize(g, p)
    feeds = _feeds(g)
    want = rg.run(g, feeds, p, sequence_lens=np.array([7, 3, 0]))
    got = rg.run(r.graph, feeds, r.params, sequence_lens=np.array([7, 3, 0]))
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12, err_msg=k)


def _cells(g: rg.Graph) -> list[str]:
    prog = recognize_cells(rg.schedule(passes.optimize(g).graph))
    return [r.match.kind for r in prog.regions if isinstance(r, CellRegion)]


def test_recognize_standard_cells() -> None:
    assert _cells(zoo.CELLS["lstm"]()) == ["LSTM"]
    assert _cells(zoo.CELLS["lstm_peephole_clip"]()) == ["LSTM"]
    assert _cells(zoo.CELLS["gru_lbr"]()) == ["GRU"]
    assert _cells(zoo.CELLS["bidirectional_lstm"]()) == ["LSTM", "LSTM"]
    assert _cells(zoo.CELLS["layer_norm_lstm"]()) == []
    # Elman's weights are (I, H) without ONNX's transpose: a generic loop, not RNN.
    assert _cells(zoo.CELLS["elman"]()) == []


def test_recognition_refuses_when_an_internal_value_is_used_elsewhere() -> None:
    g = rg.Graph("leaky")
    x = g.input("x", 3)
    y = rg.cells.lstm(x, 4, name="l")
    g.output("y", y)
    # The cell-state sequence is not an output of ONNX's LSTM.
    g.output("c", rg.tanh(g.value("l.c")))
    assert _cells(g) == []


def test_recognition_reads_activations() -> None:
    g = rg.Graph("acts")
    acts = ("hard_sigmoid", "relu", "softsign")
    g.output("y", rg.cells.lstm(g.input("x", 3), 4, name="l", activations=acts))
    prog = recognize_cells(rg.schedule(passes.optimize(g).graph))
    (cell,) = [r for r in prog.regions if isinstance(r, CellRegion)]
    assert cell.match.activations == ("HardSigmoid", "Relu", "Softsign")
    # and onnxruntime's LSTM with those activations agrees with the reference
    p = g.init_params(seed=0)
    xs = np.random.default_rng(0).standard_normal((T, B, 3)).astype(np.float32)
    m = rg.compile(g, target="onnx", params=p)
    assert [n.op_type for n in m.model.graph.node].count("LSTM") == 1
    np.testing.assert_allclose(m.run({"x": xs})["y"], rg.run(g, {"x": xs}, p)["y"], atol=1e-5)


def test_passes_never_change_their_input() -> None:
    g = zoo.CELLS["narx"]()
    before = (_ops(g), sorted(g.nx_graph.edges(keys=True, data="delay")))
    passes.optimize(g, g.init_params())
    assert (_ops(g), sorted(g.nx_graph.edges(keys=True, data="delay"))) == before


def test_program_lists_loops_and_taps() -> None:
    g = zoo.CELLS["narx"]()
    prog = rg.schedule(g)
    loops = [r for r in prog.regions if isinstance(r, RecurrentRegion)]
    assert len(loops) == 1 and loops[0].direction == 1
    assert {abs(r.delay) for r in prog.taps} == {1, 2}


def test_program_skips_the_sequence_of_a_state_nothing_reads() -> None:
    # The adjoint's states (the gradients of the initial states) are read by no node: only
    # their final values are results, and they come from the loop's carried values, not
    # from a copy of every step.
    g = zoo.CELLS["lstm"]()
    adj = rg.adjoint(g, input_gradients=False)
    grads = {k: n for k, n in adj.state_nodes().items() if k.startswith("grad:")}
    assert grads and not any(adj.nx_graph.out_degree(n) for n in grads.values())
    once = {r.node for r in rg.schedule(adj).regions if isinstance(r, ParallelRegion)}
    assert not once & set(grads.values())
    # the same finals as when the states' sequences are results too (computed as before)
    shown = adj.copy()
    for k in grads:
        shown.output(f"seq:{k}", shown.value(k))
    assert set(grads.values()) <= {
        r.node for r in rg.schedule(shown).regions if isinstance(r, ParallelRegion)
    }
    p = _f64(zoo.params_for(g))
    rng = np.random.default_rng(3)
    feeds = {k: rng.standard_normal((T, B, *t.row_shape)) for k, t in adj.inputs.items()}
    lens = np.array([7, 3, 0])
    for target in ("reference", "onnx"):
        got = rg.compile(adj, target=target, params=p).run(feeds, sequence_lens=lens)
        want = rg.compile(shown, target=target, params=p).run(feeds, sequence_lens=lens)
        for k in grads:
            np.testing.assert_array_equal(got[f"{k}_final"], want[f"{k}_final"], err_msg=k)
