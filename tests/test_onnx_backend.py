"""The ONNX backend against the reference interpreter, run by onnxruntime.

One exported file per graph serves two sequence lengths and two batch sizes;
``sequence_lens`` and initial-state overrides use variants of the same
program; the step model, fed one step at a time, reproduces the sequence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings

import rnngraph as rg
from tests import zoo
from tests.strategies import feeds_for, random_graphs

TOL = 1e-5


def _xs(T: int, B: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((T, B, zoo.I)).astype(np.float32)


def _compiled(name: str, **options: object) -> object:
    g = zoo.CELLS[name]()
    return rg.compile(g, target="onnx", params=zoo.params_for(g), **options)


def _assert_close(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=TOL, rtol=TOL, err_msg=k)


@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_cell_matches_reference_at_two_lengths_and_batches(name: str, tmp_path) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="onnx", params=p)
    path = m.save(tmp_path / f"{name}.onnx")
    loaded = onnx.load(path)
    onnx.checker.check_model(loaded, full_check=True)
    onnx.shape_inference.infer_shapes(loaded, strict_mode=True)
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for T, B in [(7, 3), (12, 1)]:
        xs = _xs(T, B, seed=T)
        want = rg.run(g, {"x": xs}, p)
        got = dict(
            zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": xs}), strict=True)
        )
        _assert_close(got, want)


@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_cell_with_sequence_lens_and_initial_states(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="onnx", params=p)
    T, B = 9, 4
    xs = _xs(T, B, seed=1)
    lens = np.array([9, 4, 0, 1])
    _assert_close(m.run({"x": xs}, sequence_lens=lens), rg.run(g, {"x": xs}, p, sequence_lens=lens))
    rng = np.random.default_rng(2)
    init = {s: rng.standard_normal((B, *t.row_shape)) for s, t in g.states.items()}
    _assert_close(
        m.run({"x": xs}, initial_states=init, sequence_lens=lens),
        rg.run(g, {"x": xs}, p, initial_states=init, sequence_lens=lens),
    )


@pytest.mark.parametrize("name", zoo.CAUSAL)
def test_step_model_streams_the_sequence(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    s = rg.compile(g, target="onnx", params=p, mode="step")
    T, B = 6, 2
    xs = _xs(T, B, seed=3)
    want = rg.run(g, {"x": xs}, p)
    carried = s.initial_states(B)
    ys = []
    for t in range(T):
        out = s.run({"x": xs[t], **carried})
        carried = {k: out[f"{k}_final"] for k in s.state_names}
        ys.append(out["y"])
    np.testing.assert_allclose(np.stack(ys), want["y"], atol=TOL, rtol=TOL)
    for name_ in g.states:
        np.testing.assert_allclose(out[f"{name_}_final"], want[f"{name_}_final"], atol=TOL)


def test_step_model_refuses_a_reverse_layer() -> None:
    g = zoo.CELLS["rnn_reverse"]()
    with pytest.raises(rg.CompileError, match="ahead"):
        rg.compile(g, target="onnx", params=zoo.params_for(g), mode="step")


def test_zeros_like_keeps_an_integer_kind() -> None:
    """``zeros_like`` of an int8, int16 or int32 value is zeros of that kind (it was an
    int64 ConstantOfShape, which the model's declared output type refused)."""
    for kind in ("int8", "int16", "int32"):
        g = rg.Graph("zeros")
        g.output("y", rg.zeros_like(g.input("x", 3, dtype=kind)))
        xs = {"x": np.arange(6).reshape(1, 2, 3).astype(kind)}
        got = rg.compile(g, "onnx", params={}).run(xs)["y"]
        assert got.dtype == np.dtype(kind) and not got.any(), kind


def test_same_graph_gives_identical_bytes(tmp_path) -> None:
    files = []
    for i in range(2):
        g = zoo.CELLS["narx"]()
        files.append(
            rg.compile(g, target="onnx", params=zoo.params_for(g)).save(tmp_path / f"{i}.onnx")
        )
    first, second = (Path(f).read_bytes() for f in files)
    assert first == second


def test_concurrent_saves_with_external_data_never_mix(tmp_path) -> None:
    """Two writers saving .onnx + weights to one path while a reader loads: each load
    has one save's weights (608 of 84,474 reads mixed them when the weights file had
    one name), or a typed error; the folder ends with one model and its weights."""
    import threading

    g = rg.Graph("big")
    g.output("y", rg.cells.lstm(g.input("x", zoo.I), 16, name="l"))
    models = {}
    for value in (1.0, 2.0):
        p = {k: np.full(v.shape, value, v.dtype) for k, v in zoo.params_for(g).items()}
        models[value] = rg.compile(g, target="onnx", params=p, optimize=False)
    path = tmp_path / "m.onnx"
    saves = []
    for m in models.values():
        m.save(path, external_data=True)
        saves.append(_weights(onnx.load(path)))

    def write(m: object) -> None:
        for _ in range(15):
            m.save(path, external_data=True)  # type: ignore[attr-defined]

    writers = [threading.Thread(target=write, args=(m,)) for m in models.values()]
    for w in writers:
        w.start()
    mixed = 0
    while any(w.is_alive() for w in writers):
        try:
            model = onnx.load(path)
        except (FileNotFoundError, OSError, onnx.checker.ValidationError):
            continue  # its weights were replaced by a newer save's: read again
        mixed += _weights(model) not in saves
    for w in writers:
        w.join()
    assert mixed == 0
    assert len(list(tmp_path.glob("m.onnx.*.data"))) == 1


def _weights(model: onnx.ModelProto) -> dict[str, bytes]:
    return {t.name: onnx.numpy_helper.to_array(t).tobytes() for t in model.graph.initializer}


def test_external_data_stays_in_the_model_folder(tmp_path) -> None:
    g = rg.Graph("big")
    g.output("y", rg.cells.lstm(g.input("x", zoo.I), 32, name="l"))
    p = zoo.params_for(g)
    m = rg.compile(g, target="onnx", params=p)
    (tmp_path / "m.onnx.data").write_bytes(b"an earlier save's weights")
    path = m.save(tmp_path / "m.onnx", external_data=True)
    model = onnx.load(path, load_external_data=False)
    locations = {
        e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"
    }
    (data,) = locations  # named after its content: m.onnx.<hash>.data, beside the model
    assert data.startswith("m.onnx.") and data.endswith(".data") and "/" not in data
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(["m.onnx", data])
    import onnxruntime as ort

    xs = _xs(5, 2)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        sess.run(["y"], {"x": xs})[0], rg.run(g, {"x": xs}, p)["y"], atol=TOL
    )


def test_input_initial_state_is_a_model_input() -> None:
    g = rg.Graph("stream")
    x = g.input("x", 2)
    h = g.state("h", 2, init="input")
    g.assign(h, rg.tanh(h + x))
    g.output("y", h)
    m = rg.compile(g, target="onnx")
    assert "h" in [i.name for i in m.model.graph.input]
    xs, h0 = _xs(4, 2)[..., :2], np.ones((2, 2), np.float32)
    _assert_close(
        m.run({"x": xs}, initial_states={"h": h0}), rg.run(g, {"x": xs}, initial_states={"h": h0})
    )
    with pytest.raises(rg.InputError, match="initial_states"):
        m.run({"x": xs})


def test_unknown_target_is_a_clear_error() -> None:
    with pytest.raises(rg.CompileError, match="no backend named 'nope'"):
        rg.compile(zoo.CELLS["rnn"](), target="nope")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(min_delay=1, max_delay=3))
def test_random_forward_graphs(rgraph) -> None:
    _check_random(rgraph)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(min_delay=-2, max_delay=-1))
def test_random_backward_graphs(rgraph) -> None:
    _check_random(rgraph)


def _check_random(rgraph) -> None:
    p = zoo.params_for(rgraph.graph)
    zoo.check_random_graph(rgraph, rg.compile(rgraph.graph, target="onnx", params=p), p)


def _op_types(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize(
    ("name", "op"),
    [
        ("lstm", "LSTM"),
        ("lstm_peephole_clip", "LSTM"),
        ("gru", "GRU"),
        ("gru_lbr", "GRU"),
        ("rnn", "RNN"),
        ("rnn_reverse", "RNN"),
        ("param_initial_state", "RNN"),
    ],
)
def test_standard_cell_becomes_one_native_op(name: str, op: str) -> None:
    m = _compiled(name)
    ops = _op_types(m.model)
    assert ops.count(op) == 1 and "Scan" not in ops, ops


def test_stacked_and_bidirectional_use_one_native_op_per_layer() -> None:
    assert _op_types(_compiled("stacked_gru").model).count("GRU") == 2
    ops = _op_types(_compiled("bidirectional_lstm").model)
    assert ops.count("LSTM") == 2 and "Scan" not in ops


def test_custom_cell_is_a_scan_with_the_input_projection_hoisted() -> None:
    m = _compiled("layer_norm_lstm")
    ops = _op_types(m.model)
    assert ops.count("Scan") == 1 and "LSTM" not in ops
    (scan,) = [n for n in m.model.graph.node if n.op_type == "Scan"]
    body = next(a.g for a in scan.attribute if a.name == "body")
    # x @ Wx + b runs once over the whole sequence (one Gemm, bias fused);
    # the loop keeps only h @ Rh.
    assert ops.count("MatMul") + ops.count("Gemm") >= 1
    assert [n.op_type for n in body.node].count("MatMul") == 1


def test_native_ops_can_be_turned_off() -> None:
    g = zoo.CELLS["lstm"]()
    m = rg.compile(g, target="onnx", params=zoo.params_for(g), optimize=False)
    assert "Scan" in _op_types(m.model) and "LSTM" not in _op_types(m.model)


@pytest.mark.parametrize(
    "name", ["layer_norm_lstm", "narx", "state_delay_2", "rnn_reverse", "jordan"]
)
@pytest.mark.parametrize("k", [3, 12])
def test_unrolled_loops_match_at_every_length(name: str, k: int) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    plain = rg.compile(g, target="onnx", params=p, optimize=False)
    m = rg.compile(g, target="onnx", params=p, optimize=False, unroll=k)

    def bodies(model):
        scans = [n for n in model.graph.node if n.op_type == "Scan"]
        return [len(next(a.g for a in n.attribute if a.name == "body").node) for n in scans]

    # one loop per region still, each iteration k steps long
    assert len(bodies(m.model)) == len(bodies(plain.model))
    assert all(u > k * (p_ - 2) for u, p_ in zip(bodies(m.model), bodies(plain.model), strict=True))
    for T in (1, 7, 12, 13):
        xs = _xs(T, 2, seed=T)
        _assert_close(m.run({"x": xs}), rg.run(g, {"x": xs}, p))
    lens = np.array([13, 5, 0])
    xs = _xs(13, 3)
    _assert_close(m.run({"x": xs}, sequence_lens=lens), rg.run(g, {"x": xs}, p, sequence_lens=lens))


def test_unknown_options_and_input_free_graphs_are_clear_errors() -> None:
    with pytest.raises(rg.CompileError, match="no options \\['unrol'\\]"):
        _compiled("rnn", unrol=2)
    g = rg.Graph("free")
    s = g.state("s", 2, np.ones(2))
    g.assign(s, 0.5 * s)
    g.output("y", s)
    m = rg.compile(g, target="onnx")  # a sequence model takes its number of steps
    np.testing.assert_allclose(m.run({}, steps=3)["y"][:, 0], [[1, 1], [0.5, 0.5], [0.25, 0.25]])
    step = rg.compile(g, target="onnx", mode="step")  # a generator streams fine
    out = step.run({}, initial_states=step.initial_states(1))
    np.testing.assert_allclose(out["y"], [[1.0, 1.0]])
    np.testing.assert_allclose(out["s_final"], [[0.5, 0.5]])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(min_delay=1, max_delay=3))
def test_random_graph_step_models_stream(rgraph) -> None:
    g = rgraph.graph
    p = zoo.params_for(g)
    feeds = {k: v.astype(np.float32) for k, v in feeds_for(rgraph, 6, 2).items()}
    want = rg.run(g, feeds, p)
    s = rg.compile(g, target="onnx", params=p, mode="step")
    carried = s.initial_states(2)
    ys = []
    for t in range(6):
        out = s.run({k: v[t] for k, v in feeds.items()}, initial_states=carried)
        carried = {k: out[f"{k}_final"] for k in s.state_names}
        ys.append(out["y"])
    np.testing.assert_allclose(np.stack(ys), want["y"], atol=TOL, rtol=TOL)


@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_cell_from_eight_threads(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    zoo.check_threads(g, p, rg.compile(g, target="onnx", params=p), calls=160)


@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_cell_at_no_steps_and_no_rows(name: str) -> None:
    """onnxruntime's LSTM op returned uninitialised final cells at T=0 and aborted the
    process at B=0; its Scan refuses empty axes: the model answers as the reference."""
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    zoo.check_empty_axes(g, p, rg.compile(g, target="onnx", params=p))


def test_graphs_without_sequence_inputs_take_steps() -> None:
    """A net started from its params runs for ``steps=`` steps, one row or as many as the
    initial states given (ONNX: an int64 input ``steps``; TVM: an empty ``(T, B, 0)``
    input that ``run(steps=)`` fills)."""
    g = rg.Graph("free")
    z = g.state("z", 4, init="param")
    new = rg.tanh(z @ g.param("W", (4, 4)))
    g.assign(z, new)
    g.output("y", new)
    p = g.init_params(seed=1)
    m = rg.compile(g, target="onnx", params=p)
    assert [i.name for i in m.model.graph.input] == ["steps"]
    zoo.assert_close(m.run({}, steps=5), rg.run(g, {}, p, steps=5))
    init = {"z": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)}
    got = m.run({}, steps=4, initial_states=init)
    zoo.assert_close(got, rg.run(g, {}, p, steps=4, initial_states=init))
    assert got["y"].shape == (4, 3, 4)
    assert m.run({}, steps=0)["y"].shape == (0, 1, 4)
    with pytest.raises(rg.InputError, match="pass steps="):
        m.run({})
    pytest.importorskip("tvm")
    t = rg.compile(g, target="tvm", params=p)
    zoo.assert_close(t.run({}, steps=4, initial_states=init), got)
    assert t.run({}, steps=0)["y"].shape == (0, 1, 4)
    with pytest.raises(rg.InputError, match="pass steps="):
        t.run({})


@pytest.mark.parametrize("memory_first", [False, True])
def test_products_with_a_per_sequence_matrix_fold_the_steps_into_one_product(
    memory_first: bool,
) -> None:
    """``x(t) @ M`` (and ``M @ x(t)``) with ``M`` a per-sequence matrix for each row and
    head, as attention's keys are: over whole sequences the steps go into the product's
    rows (columns), one GEMM per row and head rather than ``T * B * heads`` small ones, with
    the reference's numbers; with lengths per row, and a delayed operand too."""
    g = rg.Graph("memory")
    x = g.input("x", (3, 4, 5) if memory_first else (3, 2, 4))
    M = g.input("M", (3, 4, 6) if not memory_first else (3, 2, 4), axis=None)
    prod = M @ x if memory_first else x @ M
    late = M @ rg.delay(x, 1) if memory_first else rg.delay(x, 1) @ M
    g.output("y", rg.tanh(prod) + late)
    rng = np.random.default_rng(0)
    xs = {
        "x": rng.standard_normal((7, 2, *g.inputs["x"].row_shape)).astype(np.float32),
        "M": rng.standard_normal((2, *g.inputs["M"].row_shape)).astype(np.float32),
    }
    m = rg.compile(g, target="onnx", params={})
    lens = np.array([7, 4])
    zoo.assert_close(m.run(xs, sequence_lens=lens), rg.run(g, xs, {}, sequence_lens=lens))
    made = {o: n.op_type for n in m.model.graph.node for o in n.output}
    products = [n for n in m.model.graph.node if n.op_type == "MatMul"]
    assert len(products) == 2
    for n in products:  # (not the memory broadcast over a unit step axis, (1, B, ...))
        assert all(made.get(i) != "Unsqueeze" for i in n.input), n
