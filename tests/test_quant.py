"""Quantisation: the Q/DQ ops against onnx.reference (an independent implementation of
ONNX's QuantizeLinear/DequantizeLinear), the straight-through gradient, and rg.quantize on
zoo cells: the quantised graph close to the float one, ONNX (onnxruntime's QDQ) within
one quantisation step of the quantised reference, weights about 4x smaller."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import rnngraph as rg
from rnngraph.quant import report
from tests import zoo

RNG = np.random.default_rng(0)


def _onnx_qdq(x: np.ndarray, scale, zp, kind: str, axis: int | None):
    """QuantizeLinear then DequantizeLinear, in onnx.reference."""
    elem = {"int8": TensorProto.INT8, "int16": TensorProto.INT16}[kind]
    s = np.asarray(scale, np.float32)
    z = np.asarray(zp, np.dtype(kind))
    if axis is None:
        s, z = s.reshape(()), z.reshape(())
    kw = {} if axis is None else {"axis": axis}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], **kw),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **kw),
    ]
    graph = helper.make_graph(
        nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("q", elem, None),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[onnx.numpy_helper.from_array(s, "s"), onnx.numpy_helper.from_array(z, "z")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    q, y = ReferenceEvaluator(model).run(None, {"x": x})
    return q, y


@pytest.mark.parametrize("kind", ["int8", "int16"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_qdq_ops_match_onnx_reference(kind: str, per_channel: bool) -> None:
    scale = [0.02, 0.05, 0.1] if per_channel else 0.03
    zp = [3, -2, 0] if per_channel else -7
    if kind == "int16":
        scale = [s / 100 for s in scale] if per_channel else scale / 100
    axis = -1 if per_channel else None
    g = rg.Graph("qdq")
    x = g.input("x", 3)
    q = rg.quantize_linear(x, scale, zp, kind, axis=axis)
    g.output("q", rg.cast(q, "int64"))
    g.output("y", rg.dequantize_linear(q, scale, zp, axis=axis))
    g.output("f", rg.fake_quant(x, scale, zp, kind, axis=axis))
    step = np.max(np.atleast_1d(scale))
    xs = (RNG.normal(size=(4, 5, 3)) * 200 * step).astype(np.float32)
    xs[0, 0] = np.asarray(scale) * 2.5  # ties round to even
    want_q, want_y = _onnx_qdq(xs, scale, zp, kind, axis)
    for out in (rg.run(g, {"x": xs}), rg.compile(g, "onnx").run({"x": xs})):
        np.testing.assert_array_equal(out["q"], want_q)
        np.testing.assert_array_equal(out["y"], want_y)
        np.testing.assert_array_equal(out["f"], want_y)
    if kind == "int8":  # the grid's ends are reached: saturation is tested too
        assert want_q.min() == -128 and want_q.max() == 127


def test_fake_quant_gradient_passes_straight_through_inside_the_grid() -> None:
    g = rg.Graph("ste")
    g.output("y", rg.fake_quant(g.input("x", 1), 0.1, 0, "int8"))
    xs = np.array([-13.0, -12.7, -0.26, 0.0, 3.3, 12.7, 12.8]).reshape(-1, 1, 1)
    _, grads = rg.vjp(g, {"x": xs}, {}, cotangents={"y": np.ones_like(xs)})
    assert grads["x"].ravel().tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def _calibration(g: rg.Graph, n: int = 3) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [zoo.feeds(g, 12, 6, rng) for _ in range(n)]


QUANT_ZOO = ["elman", "jordan", "lstm", "lstm_peephole_clip", "gru", "indrnn", "fir", "narx",
             "stacked_gru", "bidirectional_lstm", "state_delay_2", "ctrnn", "clockwork", "mgu",
             "layer_norm_op_lstm", "param_initial_state", "second_order", "ntm"]  # fmt: skip


@pytest.mark.parametrize("cell", QUANT_ZOO)
def test_quantised_zoo_cells_run_close_to_float_and_in_onnxruntime(cell: str) -> None:
    g = zoo.CELLS[cell]()
    p = zoo.params_for(g, 0)
    qg, qp = rg.quantize(g, p, calibration=_calibration(g))
    # integer weights; a learned initial state stays a float (its state's grid reads it)
    assert all(v.dtype.kind == "i" for k, v in qp.items() if not k.endswith(".init"))
    xs = zoo.feeds(g, 12, 4, np.random.default_rng(11))
    want = rg.run(g, xs, p)
    got = rg.run(qg, xs, qp)
    onnx_out = rg.compile(qg, "onnx", params=qp).run(xs)
    steps = {v["node"]: v["scale"] for v in qg.meta["quantization"]["values"]}
    for k in g.outputs:
        rms = float(np.sqrt(np.mean(want[k] ** 2))) + 1e-6
        assert float(np.sqrt(np.mean((got[k] - want[k]) ** 2))) < 0.08 * rms, k
        node = qg.node(qg.output_nodes()[k]).name.removesuffix(".q")
        if cell in DRIFTS:  # onnxruntime's fused integer kernels round their own way
            assert np.abs(onnx_out[k] - got[k]).max() < 0.05 * rms
            continue
        np.testing.assert_allclose(onnx_out[k], got[k], atol=1.01 * steps.get(node, 1e-6) + 1e-6)
    if cell in DRIFTS:  # the Q/DQ graph as written (no fusion) is the reference exactly
        np.testing.assert_array_equal(
            rg.compile(qg, "onnx", params=qp, session_config=UNFUSED).run(xs)["y"], got["y"]
        )


DRIFTS = {"ntm"}
"""Cells where onnxruntime's fused QDQ kernels (their own rounding) drift from the
reference over the steps by more than a step of the output's fine grid (the NTM's read
vector: 0.4 steps of an int8 grid of its range after 12 steps)."""
UNFUSED = {"session.disable_quant_qdq": "1"}


def test_weights_shrink_and_the_report_tells_each_value() -> None:
    g = rg.Graph("kws")
    g.output("y", rg.linear(rg.cells.gru(g.input("x", 10), 32, name="g"), 4, name="out"))
    p = g.init_params(seed=0)
    qg, qp = rg.quantize(g, p, calibration=_calibration(g))
    float_bytes = sum(v.astype(np.float32).nbytes for v in p.values())
    assert float_bytes / sum(v.nbytes for v in qp.values()) > 3.5
    rep = report(qg)
    kinds = {v["node"]: v["kind"] for v in rep.values}
    assert kinds["x"] == "int8" and kinds[next(iter(g.states))] == "int16"
    assert "sigmoid" in rep.table() and "output y" in rep.table()
    assert all(v["rms_error"] <= v["scale"] for v in rep.values)  # rounding only, no clipping
    clipped, _ = rg.quantize(g, p, calibration=_calibration(g), percentile=99.0)
    finer = {v["node"]: v["scale"] for v in report(clipped).values}
    assert finer["x"] < {v["node"]: v["scale"] for v in rep.values}["x"]


def test_quantised_graphs_save_and_load(tmp_path) -> None:
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g, 0)
    qg, qp = rg.quantize(g, p, calibration=_calibration(g, 1))
    path = qg.save(tmp_path / "q", qp)
    g2, p2 = rg.ir.deserialize.load_with_params(path)
    assert {k: v.dtype for k, v in p2.items()} == {k: v.dtype for k, v in qp.items()}
    xs = zoo.feeds(g, 5, 2, np.random.default_rng(1))
    np.testing.assert_array_equal(rg.run(g2, xs, p2)["y"], rg.run(qg, xs, qp)["y"])


def test_bad_quantisation_requests_are_named() -> None:
    g = zoo.CELLS["elman"]()
    p = zoo.params_for(g, 0)
    with pytest.raises(rg.GraphError, match="at least one batch"):
        rg.quantize(g, p, calibration=[])
    with pytest.raises(rg.GraphError, match="activations must be"):
        rg.quantize(g, p, calibration=_calibration(g, 1), activations="int4")
    qg, qp = rg.quantize(g, p, calibration=_calibration(g, 1))
    with pytest.raises(rg.GraphError, match="already quantised"):
        rg.quantize(qg, qp, calibration=_calibration(g, 1))
    with pytest.raises(rg.ParamError, match="needs integers in"):
        rg.run(qg, zoo.feeds(g, 2, 1, RNG), {**qp, "e.in.W": qp["e.in.W"].astype(float) * 300})
    with pytest.raises(rg.GraphError, match="was not made by"):
        report(g)


def test_quantisation_aware_training_improves_the_integer_model() -> None:
    """Fine-tuning through the grids (straight-through gradients) lowers the quantised
    model's loss below post-training quantisation's; convert() computes exactly what
    the trained graph computes."""
    g = rg.Graph("fit")
    g.output("y", rg.linear(rg.cells.gru(g.input("x", 3), 6, name="g"), 1, name="o"))
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(16, 32, 3)).astype(np.float32)
    ts = np.tanh(np.cumsum(xs[..., :1], axis=0) * 0.3).astype(np.float32)
    data = [{"x": xs, "t": ts}]
    loss = rg.losses.mse("t")
    opt = rg.optim.Adam(1e-2)
    p = rg.train(g, g.init_params(seed=0), data * 150, loss=loss, optimizer=opt,
                 progress=False).params  # fmt: skip

    def mse(graph, params):
        return float(np.mean((rg.run(graph, {"x": xs}, params)["y"] - ts) ** 2))

    cal = [{"x": xs}]
    qg, qp = rg.quantize(g, p, calibration=cal, activations="int8", weights="int8")
    qat, fp = rg.quant.prepare_qat(g, p, calibration=cal)
    assert mse(qat, fp) == pytest.approx(mse(qg, qp), rel=1e-5)  # same grids as PTQ
    _, grads = rg.value_and_grad(qat, data[0], fp, loss=loss)
    assert all(np.any(grads[k] != 0) for k in fp)  # straight through to every weight
    tuned = rg.train(qat, fp, data * 60, loss=loss, optimizer=rg.optim.Adam(2e-3),
                     progress=False).params  # fmt: skip
    qg2, qp2 = rg.quant.convert(qat, tuned)
    assert all(v.dtype.kind == "i" for v in qp2.values())
    np.testing.assert_array_equal(
        rg.run(qg2, {"x": xs}, qp2)["y"], rg.run(qat, {"x": xs}, tuned)["y"]
    )
    assert mse(qg2, qp2) < mse(qg, qp)
    with pytest.raises(rg.GraphError, match="prepare_qat"):
        rg.quant.convert(g, p)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["gru", "lstm", "clockwork", "narx"])
def test_quantised_graphs_on_tvm_equal_the_reference(cell: str) -> None:
    """The QDQ graph's grids in TVM's kernel (nearbyint: ties to even) as in the reference."""
    g = zoo.CELLS[cell]()
    p = zoo.params_for(g, 0)
    qg, qp = rg.quantize(g, p, calibration=_calibration(g, 1))
    xs = zoo.feeds(g, 12, 4, np.random.default_rng(11))
    want = rg.run(qg, xs, qp)
    got = rg.compile(qg, "tvm", params=qp).run(xs)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_the_onnx_step_model_of_a_quantised_graph_streams_like_the_reference() -> None:
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g, 0)
    qg, qp = rg.quantize(g, p, calibration=_calibration(g, 1))
    step = rg.compile(qg, "onnx", params=qp, mode="step")
    xs = zoo.feeds(g, 9, 3, np.random.default_rng(2))
    want = rg.run(qg, xs, qp)
    got = step.stream(xs)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
