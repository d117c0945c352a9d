"""ONNX import: torch.onnx.export files, our own exports, and errors that name the node."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from rnngraph_onnx import run_as_onnx

import rnngraph as rg
from tests import zoo

TOL = 1e-5


def _ort(model: onnx.ModelProto, feeds: dict) -> dict:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def _compare(model: onnx.ModelProto, feeds: dict) -> tuple[rg.Graph, dict]:
    g, p = rg.import_onnx(model)
    want = _ort(model, feeds)
    got = run_as_onnx(g, p, feeds)
    assert set(got) == set(want), (sorted(got), sorted(want))
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=TOL, rtol=TOL, err_msg=k)
    # compiled, it is a drop-in replacement: the same feeds, the same outputs, and its
    # saved file runs in onnxruntime with the caller's code unchanged
    m = rg.compile(g, target="onnx", params=p)
    with tempfile.TemporaryDirectory() as tmp:
        saved = onnx.load(str(m.save(Path(tmp) / "swap.onnx")))
    for got in (m.run(feeds), _ort(saved, feeds)):
        assert list(got) == list(want), (list(got), list(want))
        for k in want:
            np.testing.assert_allclose(got[k], want[k], atol=TOL, rtol=TOL, err_msg=k)
    return g, p


# ---------------------------------------------------------------- PyTorch


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is a test extra (pip install .[bench])")


def _export(module, args, path, names, dynamic) -> onnx.ModelProto:
    torch = _torch()
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=names[0],
        output_names=names[1],
        dynamic_axes=dynamic,
        opset_version=18,
        dynamo=False,
    )
    return onnx.load(str(path))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_torch_two_layer_bidirectional(kind: str, batch_first: bool, tmp_path) -> None:
    torch = _torch()
    torch.manual_seed(0)
    m = getattr(torch.nn, kind)(3, 5, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = torch.randn(2, 6, 3) if batch_first else torch.randn(6, 2, 3)
    axes = {0: "B", 1: "T"} if batch_first else {0: "T", 1: "B"}
    model = _export(m, (x,), tmp_path / "m.onnx", (["x"], ["y"]), {"x": axes, "y": axes})
    for T, B in [(6, 2), (9, 3)]:
        shape = (B, T, 3) if batch_first else (T, B, 3)
        xs = np.random.default_rng(T).standard_normal(shape).astype(np.float32)
        g, p = _compare(model, {"x": xs})
    assert len(rg.recurrent_regions(g)) == 4
    # initializer names are the parameter names
    assert set(p) <= {i.name for i in model.graph.initializer}


def test_torch_lstm_with_initial_states_as_inputs(tmp_path) -> None:
    torch = _torch()
    torch.manual_seed(1)
    m = torch.nn.LSTM(3, 4, num_layers=2)
    x, h0, c0 = torch.randn(5, 2, 3), torch.randn(2, 2, 4), torch.randn(2, 2, 4)
    dyn = {"x": {0: "T", 1: "B"}, "h0": {1: "B"}, "c0": {1: "B"}, "y": {0: "T", 1: "B"}}
    model = _export(
        m, (x, (h0, c0)), tmp_path / "m.onnx", (["x", "h0", "c0"], ["y", "hn", "cn"]), dyn
    )
    feeds = {"x": x.numpy(), "h0": h0.numpy(), "c0": c0.numpy()}
    g, _ = _compare(model, feeds)
    assert all(t.row_shape == (4,) for t in g.states.values())


def test_torch_lstm_then_linear(tmp_path) -> None:
    torch = _torch()
    torch.manual_seed(2)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.GRU(3, 6)
            self.out = torch.nn.Linear(6, 2)

        def forward(self, x):
            y, _ = self.rnn(x)
            return torch.tanh(self.out(y))

    x = torch.randn(7, 2, 3)
    dyn = {"x": {0: "T", 1: "B"}, "y": {0: "T", 1: "B"}}
    model = _export(Net(), (x,), tmp_path / "m.onnx", (["x"], ["y"]), dyn)
    _compare(model, {"x": x.numpy()})


# ------------------------------------------------------- our own exports
@pytest.mark.parametrize("name", sorted(zoo.CELLS))
@pytest.mark.parametrize("native", [True, False])
def test_round_trip_of_our_exports(name: str, native: bool) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="onnx", params=p, optimize=native)
    xs = np.random.default_rng(0).standard_normal((6, 2, zoo.I)).astype(np.float32)
    g2, p2 = _compare(m.model, {"x": xs})
    # and the imported graph exports again, with the same numbers
    again = rg.compile(g2, target="onnx", params=p2)
    want = _ort(m.model, {"x": xs})
    got = run_as_onnx(g2, p2, {"x": xs})
    np.testing.assert_allclose(again.run({"x": xs})["y"], want["y"], atol=TOL)
    np.testing.assert_allclose(got["y"], want["y"], atol=TOL)


def test_import_reads_lstm_attributes() -> None:
    H, I = 4, 3
    rng = np.random.default_rng(0)
    W = rng.standard_normal((1, 4 * H, I)).astype(np.float32) * 0.5
    R = rng.standard_normal((1, 4 * H, H)).astype(np.float32) * 0.5
    Bb = rng.standard_normal((1, 8 * H)).astype(np.float32) * 0.1
    P = rng.standard_normal((1, 3 * H)).astype(np.float32) * 0.1
    node = helper.make_node(
        "LSTM",
        ["x", "W", "R", "B", "lens", "", "", "P"],
        ["Y", "Y_h", "Y_c"],
        hidden_size=H,
        direction="reverse",
        clip=0.7,
        input_forget=1,
        activations=["HardSigmoid", "Tanh", "Softsign"],
        name="cell",
    )
    graph = helper.make_graph(
        [node],
        "attrs",
        [
            helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["T", "B", I]),
            helper.make_tensor_value_info("lens", onnx.TensorProto.INT32, ["B"]),
        ],
        [
            helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
            for n in ("Y", "Y_h", "Y_c")
        ],
        initializer=[
            onnx.numpy_helper.from_array(a, n) for a, n in ((W, "W"), (R, "R"), (Bb, "B"), (P, "P"))
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    xs = rng.standard_normal((5, 3, I)).astype(np.float32)
    # onnxruntime zeroes the finals of a length-0 row; rnngraph keeps the initial state, so
    # compare rows with steps.
    _compare(model, {"x": xs, "lens": np.array([5, 2, 1], np.int32)})


def test_unsupported_op_names_the_node() -> None:
    node = helper.make_node("Det", ["x"], ["v"], name="picker")
    graph = helper.make_graph(
        [node],
        "bad",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["T", "B", 3, 3])],
        [helper.make_tensor_value_info("v", onnx.TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(rg.ModelImportError, match="Det node 'picker'"):
        rg.import_onnx(model)


def test_ordering_ops_import() -> None:
    """TopK (values and indices), ArgMax, GatherElements, ScatterElements and CumSum
    on sequences, against onnxruntime."""
    k = onnx.numpy_helper.from_array(np.array([2], np.int64), "k")
    ax = onnx.numpy_helper.from_array(np.array(-1, np.int64), "ax")
    nodes = [
        helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1),
        helper.make_node("ArgMax", ["x"], ["m"], axis=-1, keepdims=1),
        helper.make_node("GatherElements", ["x", "m"], ["top"], axis=-1),
        helper.make_node("ScatterElements", ["x", "m", "top"], ["s"], axis=-1, reduction="add"),
        helper.make_node("CumSum", ["s", "ax"], ["c"], reverse=1),
        helper.make_node("Concat", ["v", "c", "top"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "ordering",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["T", "B", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializer=[k, ax],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    xs = np.random.default_rng(0).standard_normal((5, 2, 4)).astype(np.float32)
    _compare(model, {"x": xs})


def _lstm_then(nodes: list, opset: int, extra: list | None = None) -> onnx.ModelProto:
    """An LSTM (I=3, H=4) whose output ``h`` (T, B, 4) feeds ``nodes``, which write ``y``."""
    rng = np.random.default_rng(1)
    w = [
        onnx.numpy_helper.from_array(rng.uniform(-0.5, 0.5, s).astype(np.float32), n)
        for n, s in (("W", (1, 16, 3)), ("R", (1, 16, 4)))
    ]
    lstm = [
        helper.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=4),
        helper.make_node("Squeeze", ["Y", "one"], ["h"]),
    ]
    graph = helper.make_graph(
        lstm + nodes,
        "lstm_then",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["T", "B", 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializer=[
            *w,
            onnx.numpy_helper.from_array(np.array([1], np.int64), "one"),
            *(extra or []),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_ops_onnx_defines_as_functions_import_through_their_bodies() -> None:
    """Selu, Mish, HardSwish, Shrink, Celu, PRelu, ThresholdedRelu and GELU have no
    rule of ours: they import as ONNX's own function bodies for the model's opset, and
    match onnxruntime's kernels for them (and the saved drop-in file)."""
    slope = onnx.numpy_helper.from_array(np.array([0.1, 0.2, 0.3, 0.4], np.float32), "slope")
    nodes = [
        helper.make_node("Selu", ["h"], ["a"], alpha=1.5),
        helper.make_node("Mish", ["a"], ["b"]),
        helper.make_node("HardSwish", ["b"], ["c"]),
        helper.make_node("Shrink", ["c"], ["d"], lambd=0.05, bias=0.01),
        helper.make_node("Celu", ["d"], ["e"], alpha=0.7),
        helper.make_node("PRelu", ["e", "slope"], ["f"]),
        helper.make_node("ThresholdedRelu", ["f"], ["g"], alpha=0.01),
        helper.make_node("Gelu", ["g"], ["k"], approximate="tanh"),
        helper.make_node("Gelu", ["k"], ["y"]),  # (exact: through erf)
    ]
    xs = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32) * 3
    g, p = _compare(_lstm_then(nodes, 22, [slope]), {"x": xs})
    got = rg.compile(g, target="tvm", params=p).run({"x": xs})["y"]
    np.testing.assert_allclose(got, _ort(_lstm_then(nodes, 22, [slope]), {"x": xs})["y"],
                               atol=TOL, rtol=TOL)  # fmt: skip


def test_a_function_body_with_a_form_we_refuse_names_both() -> None:
    """MeanVarianceNormalization's body reduces over axes 0, 2, 3 by default — time among
    them: the error names the node and the reduction inside ONNX's definition of it."""
    node = helper.make_node("MeanVarianceNormalization", ["h"], ["y"], name="mvn")
    with pytest.raises(rg.ModelImportError, match=r"node 'mvn'.*ReduceMean.*time or batch"):
        rg.import_onnx(_lstm_then([node], 18))


def test_time_axis_ops_are_refused_not_guessed() -> None:
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="sum_over_time", keepdims=0)
    graph = helper.make_graph(
        [node],
        "bad",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["T", "B", 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializer=[onnx.numpy_helper.from_array(np.array([0], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(rg.ModelImportError, match="sum_over_time"):
        rg.import_onnx(model)


@pytest.mark.parametrize("axes", [[3], [-1], [2, 4]])
def test_squeeze_and_unsqueeze_of_a_sequence_move_the_named_axes(axes: list[int]) -> None:
    """Squeeze drops the row axes it names (counted from the front or the end), checked
    against onnxruntime on the original model."""
    T = onnx.TensorProto
    dims = ["T", "B", 3, 1, 4] if axes == [3] else ["T", "B", 3, 4, 1]
    if axes == [2, 4]:
        dims = ["T", "B", 1, 3, 1]
    nodes = [
        helper.make_node("Squeeze", ["x", "axes"], ["s"]),
        helper.make_node("Unsqueeze", ["s", "one"], ["u"]),
        helper.make_node("Tanh", ["u"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "squeeze",
        [helper.make_tensor_value_info("x", T.FLOAT, dims)],
        [helper.make_tensor_value_info("y", T.FLOAT, None)],
        initializer=[onnx.numpy_helper.from_array(np.array(axes, np.int64), "axes"),
                     onnx.numpy_helper.from_array(np.array([2], np.int64), "one")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = np.random.default_rng(0).standard_normal([5, 2, *dims[2:]]).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {"x": x})
    g, p = rg.import_onnx(model)
    for target in ("reference", "onnx"):
        got = rg.compile(g, target=target, params=p).run({"x": x})["y"]
        assert got.shape == want.shape, (target, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(rg.ModelImportError, match="cannot read"):
        rg.import_onnx(tmp_path / "nope.onnx")


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_torch_dynamo_exporter(kind: str, tmp_path) -> None:
    """torch's newer (torch.export-based) exporter writes the same ops with other glue."""
    torch = _torch()
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    import warnings

    torch.manual_seed(0)
    m = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3)
    path = tmp_path / "m.onnx"
    dims = ({0: torch.export.Dim("T"), 1: torch.export.Dim("B")},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), str(path), input_names=["x"], dynamo=True, dynamic_shapes=dims)
    model = onnx.load(str(path))
    if kind == "RNN":
        # This exporter unrolls nn.RNN over the traced length (slices along time):
        # a fixed-length model, refused with the node named rather than guessed.
        with pytest.raises(rg.ModelImportError, match="node 'node_Slice"):
            rg.import_onnx(model)
        return
    _compare(model, {"x": x.numpy()})


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_torch_dynamo_exporter_every_option(kind: str, tmp_path) -> None:
    """The newer exporter with batch_first, no biases and initial states as inputs (two
    layers, both directions): imported and compiled, a drop-in replacement (its run and
    its saved file) for the exported file in onnxruntime. (proj_size is left out: this
    exporter writes a Concat onnxruntime refuses to load.)"""
    torch = _torch()
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    import warnings

    torch.manual_seed(1)
    rnn = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True, batch_first=True,
                                  bias=False)  # fmt: skip

    class WithStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = rnn

        def forward(self, x, h0, c0=None):
            y, hn = self.rnn(x, h0 if c0 is None else (h0, c0))
            return (y, *hn) if isinstance(hn, tuple) else (y, hn)

    x, h0, c0 = torch.randn(2, 5, 3), torch.randn(4, 2, 4), torch.randn(4, 2, 4)
    args, names = ((x, h0, c0), ["x", "h0", "c0"]) if kind == "LSTM" else ((x, h0), ["x", "h0"])
    T, B = torch.export.Dim("T"), torch.export.Dim("B")
    dims = ({0: B, 1: T}, *({1: B} for _ in args[1:]))
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(WithStates(), args, str(path), input_names=names, dynamo=True,
                          dynamic_shapes=dims)  # fmt: skip
    _compare(onnx.load(str(path)), {n: a.numpy() for n, a in zip(names, args, strict=True)})


@pytest.mark.parametrize("name", ["lstm", "bidirectional_lstm", "stacked_gru"])
def test_imported_states_keep_their_cells_names(name: str) -> None:
    """Re-imported exports named their states after ONNX outputs (LSTM:mul_5.Y.h)."""
    g = zoo.CELLS[name]()
    m = rg.compile(g, target="onnx", params=zoo.params_for(g))
    g2, _ = rg.import_onnx(m.model)
    assert list(g2.states) == list(g.states)


def test_imported_state_names_from_node_names() -> None:
    from rnngraph_onnx._import import _cell_name

    def node(name: str, op: str = "LSTM") -> onnx.NodeProto:
        return onnx.helper.make_node(op, ["x"], ["Y"], name=name)

    assert _cell_name(node("/enc/fw/LSTM")) == "enc.fw"  # torch.onnx.export's module path
    assert _cell_name(node("/rnn/GRU_1", "GRU")) == "rnn"
    assert _cell_name(node("LSTM:mul_2.Y")) == "mul_2.Y"  # rnngraph's older exports
    assert _cell_name(node("enc.fw")) == "enc.fw"
    assert _cell_name(node("")) == "Y"


@pytest.mark.parametrize("name", ["lstm", "gru", "elman", "stacked_gru"])
def test_quantised_qdq_models_import_back_exactly(name: str) -> None:
    """Our QDQ export (QuantizeLinear/DequantizeLinear around float ops) imports as the
    same quantised graph: equal to the quantised reference bit for bit."""
    g = zoo.CELLS[name]()
    p = zoo.params_for(g, 0)
    cal = [zoo.feeds(g, 12, 6, np.random.default_rng(0))]
    qg, qp = rg.quantize(g, p, calibration=cal)
    model = rg.compile(qg, target="onnx", params=qp).model
    g2, p2 = rg.import_onnx(model)
    assert {"quantize", "dequantize"} <= {n.op for n in g2.nodes()}
    xs = zoo.feeds(g, 9, 3, np.random.default_rng(1))
    np.testing.assert_array_equal(rg.run(g2, xs, p2)["y"], rg.run(qg, xs, qp)["y"])


def test_uint8_grids_are_refused_by_name() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", "B", 3])
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(128, np.uint8), "z")]  # fmt: skip
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]  # fmt: skip
    model = helper.make_model(
        helper.make_graph(nodes, "u8", [x], [y], initializer=inits),
        opset_imports=[helper.make_opsetid("", 21)],
    )
    with pytest.raises(rg.ModelImportError, match=r"quant.*int8, int16 and int32"):
        rg.import_onnx(model)


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_a_fixed_point_reads_back_from_its_loop(where: str) -> None:
    """rnngraph writes rg.fixed_point as an ONNX Loop (its body: the map, then "some row
    still changes"); the importer reads that Loop back as a fixed point — outside the
    recurrence (over every step at once) and inside it (the map reads a state) — with
    each row's number of applications, the same numbers on every engine."""
    g = rg.Graph("settle")
    x = g.input("x", 3)
    h = g.state("h", 4)
    drive = rg.linear(x, 4, name="in") + (rg.linear(h, 4, name="rec") if where == "inside" else 0.0)
    z, n = rg.fixed_point(
        lambda z: rg.tanh(0.4 * rg.linear(z, 4, bias=False, name="w") + drive),
        rg.zeros_like(drive), tol=1e-4, max_iter=60, iterations=True,
    )  # fmt: skip
    g.assign(h, z)
    g.output("y", z)
    g.output("n", n)
    p = g.init_params(seed=5)
    m = rg.compile(g, target="onnx", params=p)
    assert any(nd.op_type == "Loop" for nd in _all_nodes(m.model.graph))
    g2, p2 = rg.import_onnx(m.model)
    assert any(nd.op == "fixed_point" for nd in g2.nodes())
    xs = np.random.default_rng(6).standard_normal((5, 2, 3)).astype(np.float32)
    want = rg.run(g, {"x": xs}, p)
    assert want["n"].max() > 3  # it iterates
    for target in ("reference", "onnx", "tvm"):
        if target == "tvm":
            pytest.importorskip("tvm")
        got = rg.compile(g2, target=target, params=p2).run({"x": xs})
        np.testing.assert_allclose(got["y"], want["y"], atol=1e-5)
        np.testing.assert_array_equal(got["n"], want["n"])


def _all_nodes(graph) -> list:
    out = []
    for nd in graph.node:
        out.append(nd)
        for a in nd.attribute:
            if a.type == a.GRAPH:
                out += _all_nodes(a.g)
    return out


@pytest.mark.parametrize("opset", [13, 18])
def test_split_of_a_cells_features_and_lp_normalization(opset: int) -> None:
    """An LSTM's output split along its features (``torch.chunk`` of gates: sizes from the
    split input, or opset 18's num_outputs with a smaller last part), gated, joined back
    and L2-normalised per step: against onnxruntime, as a drop-in."""
    if opset == 13:
        split = [helper.make_node("Split", ["h", "sizes"], ["a", "b"], axis=-1)]
        extra = [onnx.numpy_helper.from_array(np.array([1, 3], np.int64), "sizes")]
    else:
        split = [helper.make_node("Split", ["h"], ["a", "b"], axis=2, num_outputs=2)]
        extra = []
    nodes = [
        *split,
        helper.make_node("Sigmoid", ["a"], ["ga"]),
        helper.make_node("Tanh", ["b"], ["tb"]),
        helper.make_node("Concat", ["tb", "ga"], ["j"], axis=-1),
        helper.make_node("LpNormalization", ["j"], ["y"], axis=-1, p=2),
    ]
    xs = np.random.default_rng(2).normal(size=(6, 3, 3)).astype(np.float32)
    _compare(_lstm_then(nodes, opset, extra), {"x": xs})


@pytest.mark.parametrize(("reverse", "exclusive"), [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_cumsum_over_the_steps_is_a_running_sum_state(reverse: int, exclusive: int) -> None:
    """``CumSum`` along the time axis (a running count, positions from a mask) imports as
    a state ``s(t) = s(t -/+ 1) + x(t)``: onnxruntime's numbers bit for bit, forwards and
    from the end, with and without the step itself; along a feature axis it stays
    ``rg.cumsum``."""
    F = TensorProto.FLOAT
    nodes = [
        helper.make_node("CumSum", ["x", "zero"], ["y"], reverse=reverse, exclusive=exclusive),
        helper.make_node("CumSum", ["x", "two"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes, "running", [helper.make_tensor_value_info("x", F, ["T", "B", 3])],
        [helper.make_tensor_value_info(n, F, None) for n in ("y", "z")],
        [helper.make_tensor(n, TensorProto.INT64, [], [v]) for n, v in (("zero", 0), ("two", 2))],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    x = np.random.default_rng(reverse * 2 + exclusive).standard_normal((9, 4, 3))
    x = x.astype(np.float32)
    want = _ort(model, {"x": x})
    g, p = rg.import_onnx(model)
    assert len(g.states) == 1
    for target in ("reference", "onnx"):
        got = rg.compile(g, target=target, params=p).run({"x": x})
        for k in ("y", "z"):
            np.testing.assert_array_equal(got[k], want[k])
