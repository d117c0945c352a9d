"""Every error type, raised where the user wrote the bad line, naming what is wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.ir.serialize import to_json
from tests.zoo import elman_graph


def test_every_error_derives_from_graph_error() -> None:
    for cls in (
        rg.ShapeError,
        rg.AlgebraicLoopError,
        rg.DirectionError,
        rg.UnassignedStateError,
        rg.DuplicateNameError,
        rg.UnknownOpError,
        rg.ParamError,
        rg.InputError,
        rg.SerializationError,
    ):
        assert issubclass(cls, rg.GraphError)


def test_shape_mismatch_names_node_shapes_and_line() -> None:
    g = rg.Graph("bad")
    a = g.input("a", 3)
    b = g.input("b", 4)
    with pytest.raises(rg.ShapeError) as e:
        a + b  # the line the error must point at
    msg = str(e.value)
    assert "'a' float(B, 3)" in msg and "'b' float(B, 4)" in msg
    assert re.search(r"test_errors\.py:\d+", msg)


def test_matmul_inner_dimension_mismatch() -> None:
    g = rg.Graph("bad")
    x = g.input("x", 3)
    W = g.param("W", (4, 2))
    with pytest.raises(rg.ShapeError, match=r"inner dimensions differ: \(B, 3\) @ \(4, 2\)"):
        rg.matmul(x, W)


def test_assign_with_wrong_shape() -> None:
    g = rg.Graph("bad")
    h = g.state("h", 4)
    with pytest.raises(rg.ShapeError, match="state 'h'"):
        g.assign(h, g.input("x", 5))


def test_algebraic_loop_at_assign_names_every_node() -> None:
    g = rg.Graph("loop")
    x = g.input("x", 2)
    s = g.state("s", 2, delay=0)
    a = rg.tanh(s + x, name="a")
    b = rg.sigmoid(a, name="b")
    with pytest.raises(rg.AlgebraicLoopError) as e:
        g.assign(s, b)
    assert set(e.value.nodes) == {"s", "add_0", "a", "b"}
    assert "s -> add_0 -> a -> b -> s" in str(e.value)


def test_algebraic_loop_in_a_loaded_file(tmp_path) -> None:
    g = elman_graph()
    path = g.save(tmp_path / "m")
    doc = json.loads(Path(path).read_text())
    for e in doc["edges"]:
        e["delay"] = 0
    Path(path).write_text(json.dumps(doc))
    with pytest.raises(rg.AlgebraicLoopError) as err:
        rg.load(path)
    assert "h" in err.value.nodes and "rec" in err.value.nodes


def test_direction_error_for_mixed_cycle() -> None:
    g = rg.Graph("mixed")
    x = g.input("x", 1)
    fw = g.state("fw", 1, delay=1)
    bw = g.state("bw", 1, delay=-1)
    v = fw + bw + x
    g.assign(fw, v)
    g.assign(bw, v)
    with pytest.raises(rg.DirectionError, match="mixes delays"):
        rg.run(g, {"x": np.zeros((2, 1, 1))})


def test_unassigned_state() -> None:
    g = rg.Graph("open")
    h = g.state("h", 3)
    g.output("y", h + g.input("x", 3))
    with pytest.raises(rg.UnassignedStateError, match=r"state 'h' \(declared at .*test_errors\.py"):
        rg.run(g, {"x": np.zeros((1, 1, 3))})


def test_duplicate_names() -> None:
    g = rg.Graph("dup")
    x = g.input("x", 2)
    with pytest.raises(rg.DuplicateNameError):
        g.input("x", 2)
    h = g.state("h", 2)
    g.assign(h, h + x)
    g.output("y", h)
    with pytest.raises(rg.DuplicateNameError):
        g.output("y", x)
    with pytest.raises(rg.DuplicateNameError, match="final value of state 'h'"):
        g.output("h_final", x)
    with pytest.raises(rg.DuplicateNameError):
        rg.tanh(x, name="h")
    with pytest.raises(rg.DuplicateNameError):
        g.param("h", 2)


def test_unknown_op() -> None:
    g = rg.Graph("u")
    x = g.input("x", 2)
    with pytest.raises(rg.UnknownOpError, match="tanhh"):
        g.apply("tanhh", [x])


def test_unknown_op_in_loaded_file(tmp_path) -> None:
    path = elman_graph().save(tmp_path / "m")
    doc = json.loads(Path(path).read_text())
    doc["nodes"][-1]["op"] = "frobnicate"
    Path(path).write_text(json.dumps(doc))
    with pytest.raises(rg.UnknownOpError, match="frobnicate"):
        rg.load(path)


def test_params_missing_extra_misshaped() -> None:
    g = elman_graph()
    p = g.init_params()
    xs = np.zeros((2, 1, 3), np.float32)
    with pytest.raises(rg.ParamError, match=r"missing parameters \['rec.W'\]"):
        rg.run(g, {"x": xs}, {k: v for k, v in p.items() if k != "rec.W"})
    with pytest.raises(rg.ParamError, match="no parameters"):
        rg.run(g, {"x": xs}, {**p, "zzz": np.zeros(1)})
    with pytest.raises(rg.ParamError, match=r"'in.W' has shape \(4, 5\).*\(3, 5\)"):
        rg.run(g, {"x": xs}, {**p, "in.W": np.zeros((4, 5))})


def test_inputs_missing_misshaped_unknown() -> None:
    g = elman_graph()
    p = g.init_params()
    with pytest.raises(rg.InputError, match="needs inputs"):
        rg.run(g, {}, p)
    with pytest.raises(rg.InputError, match=r"\(T, B, 3\)"):
        rg.run(g, {"x": np.zeros((2, 3))}, p)
    with pytest.raises(rg.InputError, match="initial_states"):
        rg.run(g, {"x": np.zeros((2, 1, 3)), "h": np.zeros((1, 5))}, p)
    with pytest.raises(rg.InputError, match="sequence_lens"):
        rg.run(g, {"x": np.zeros((2, 1, 3))}, p, sequence_lens=[5])
    with pytest.raises(rg.InputError, match="initial state 'h'"):
        rg.run(g, {"x": np.zeros((2, 1, 3))}, p, initial_states={"h": np.zeros(4)})


def test_static_values_cannot_be_delayed_or_output() -> None:
    g = rg.Graph("s")
    W = g.param("W", 3)
    with pytest.raises(rg.ShapeError, match="only signals can be delayed"):
        rg.delay(W, 1)
    with pytest.raises(rg.ShapeError, match="time-invariant"):
        g.output("w", W)


def test_batch_axis_is_off_limits() -> None:
    g = rg.Graph("b")
    x = g.input("x", 3)
    with pytest.raises(rg.ShapeError, match="batch axis"):
        rg.softmax(x, axis=0)
    with pytest.raises(rg.ShapeError, match="batch axis"):
        rg.reduce_sum(x, axis=0)
    with pytest.raises(rg.ShapeError, match="batch axis"):
        rg.concat([x, x], axis=0)
    with pytest.raises(rg.ShapeError):
        x + g.param("P", (2, 3))


def test_values_cannot_cross_graphs() -> None:
    a = rg.Graph("a").input("x", 2)
    b = rg.Graph("b").input("x", 2)
    with pytest.raises(rg.GraphError, match="cannot cross graphs"):
        a + b


def test_serialization_errors(tmp_path) -> None:
    with pytest.raises(rg.SerializationError, match="no saved graph"):
        rg.load(tmp_path / "nothing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(rg.SerializationError, match="not valid JSON"):
        rg.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "rnngraph.graph", "version": 99}))
    with pytest.raises(rg.SerializationError, match="version 99"):
        rg.load(tmp_path / "other.json")
    path = elman_graph().save(tmp_path / "m")
    doc = json.loads(Path(path).read_text())
    del doc["edges"][0]["delay"]
    Path(path).write_text(json.dumps(doc))
    with pytest.raises(rg.SerializationError, match="malformed"):
        rg.load(path)


def test_compile_never_makes_up_weights(tmp_path) -> None:
    """compile() without params compiled fresh random weights, even for a graph saved
    with trained ones (outputs off by 1.03); it refuses as rg.run does."""
    g = elman_graph()
    trained = {k: v + 1.0 for k, v in g.init_params(seed=3).items()}
    path = g.save(tmp_path / "m", trained)
    for target in ("reference", "onnx"):
        with pytest.raises(rg.ParamError, match=r"missing parameters.*load_params"):
            rg.compile(rg.load(path), target=target)
    m = rg.compile(rg.load(path), target="onnx", params=rg.load_params(path))
    xs = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(m.run({"x": xs})["y"], rg.run(g, {"x": xs}, trained)["y"], atol=1e-5)


def test_cells_and_options_raise_rnngraph_errors() -> None:
    """errors.py promises every error derives from GraphError; cells raised ValueError
    (and a hidden size of 0 ZeroDivisionError), compile(unroll=0) ValueError."""
    g = rg.Graph("g")
    x = g.input("x", 3)
    with pytest.raises(rg.ShapeError, match=r"lstm's hidden size .* at least 1, got 0"):
        rg.cells.lstm(x, 0, name="a")
    with pytest.raises(rg.ShapeError, match=r"gru's hidden size .* got 2\.5"):
        rg.cells.gru(x, 2.5, name="b")
    with pytest.raises(rg.GraphError, match="direction must be"):
        rg.cells.rnn(x, 4, name="c", direction="sideways")
    with pytest.raises(rg.GraphError, match="taps must be >= 0"):
        rg.cells.fir(x, 2, taps=-1, name="f")
    with pytest.raises(rg.GraphError, match="init must be"):
        rg.delay(x, 1, init="nope")
    h = elman_graph()
    with pytest.raises(rg.CompileError, match="unroll must be an integer >= 1, got 0"):
        rg.compile(h, target="onnx", params=h.init_params(), unroll=0)


def test_a_failed_cell_leaves_the_graph_as_it_was() -> None:
    """A cell that raised half way left its params and states behind: the corrected call
    then failed with DuplicateNameError. Cells build all or nothing now."""
    g = rg.Graph("g")
    x = g.input("x", 3)
    s = g.state("s", 3)
    before = to_json(g)
    for bad in (
        lambda: rg.cells.lstm(x, 4, name="enc", direction="sideways"),
        lambda: rg.cells.stacked(rg.cells.gru, x, [4, 0], name="enc"),
        lambda: rg.cells.narx(x, 5, 2, input_taps=2, output_taps=0, name="enc"),
    ):
        with pytest.raises(rg.GraphError):
            bad()
        assert to_json(g) == before
    with pytest.raises(RuntimeError), g.building():  # a user's own block, assigning s
        g.assign(s, rg.tanh(s + x))
        g.output("y", s)
        raise RuntimeError("later step failed")
    assert to_json(g) == before
    g.assign(s, s + rg.cells.lstm(x, 3, name="enc"))  # the names are free again
    g.output("y", s)
    rg.verify(g)
