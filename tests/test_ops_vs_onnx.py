"""Each op's reference semantics against the same ONNX operator in onnx.reference.

The ONNX node is applied to the whole time-major sequence (T, B, ...) at once,
which also checks that our per-step op gives the same answer step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import rnngraph as rg
from rnngraph.ops.integer import INTEGER_OPS

T, B = 3, 2
RNG = np.random.default_rng(0)
X = RNG.standard_normal((T, B, 4, 6))
Y = RNG.standard_normal((T, B, 4, 6))
POS = np.abs(X) + 0.1
W = RNG.standard_normal((6, 5))
IDX = np.array([5, 0, 2], dtype=np.int64)
TIES = np.round(X)  # equal entries: the first one wins

Case = tuple[Callable[..., Any], Any, list[np.ndarray], dict[str, np.ndarray]]


def node(op: str, inputs: list[str], **attrs: Any) -> Any:
    return helper.make_node(op, inputs, ["out"], **attrs)


CASES: dict[str, Case] = {
    "add": (lambda a, b: a + b, node("Add", ["a", "b"]), [X, Y], {}),
    "sub": (lambda a, b: a - b, node("Sub", ["a", "b"]), [X, Y], {}),
    "mul": (lambda a, b: a * b, node("Mul", ["a", "b"]), [X, Y], {}),
    "div": (lambda a, b: a / b, node("Div", ["a", "b"]), [X, POS], {}),
    "pow": (lambda a, b: a**b, node("Pow", ["a", "b"]), [POS, Y], {}),
    "maximum": (rg.maximum, node("Max", ["a", "b"]), [X, Y], {}),
    "minimum": (rg.minimum, node("Min", ["a", "b"]), [X, Y], {}),
    "neg": (lambda a: -a, node("Neg", ["a"]), [X], {}),
    "abs": (rg.abs, node("Abs", ["a"]), [X], {}),
    "exp": (rg.exp, node("Exp", ["a"]), [X], {}),
    "log": (rg.log, node("Log", ["a"]), [POS], {}),
    "sqrt": (rg.sqrt, node("Sqrt", ["a"]), [POS], {}),
    "tanh": (rg.tanh, node("Tanh", ["a"]), [X], {}),
    "sigmoid": (rg.sigmoid, node("Sigmoid", ["a"]), [X * 10], {}),
    # Attribute values exactly representable in float32, as ONNX stores them.
    "hard_sigmoid": (
        lambda a: rg.hard_sigmoid(a, 0.25, 0.375),
        node("HardSigmoid", ["a"], alpha=0.25, beta=0.375),
        [X * 3],
        {},
    ),
    "relu": (rg.relu, node("Relu", ["a"]), [X], {}),
    "leaky_relu": (
        lambda a: rg.leaky_relu(a, 0.125),
        node("LeakyRelu", ["a"], alpha=0.125),
        [X],
        {},
    ),
    "softplus": (rg.softplus, node("Softplus", ["a"]), [X * 5], {}),
    "softsign": (rg.softsign, node("Softsign", ["a"]), [X], {}),
    "erf": (rg.erf, node("Erf", ["a"]), [X * 2], {}),
    "sin": (rg.sin, node("Sin", ["a"]), [X * 4], {}),
    "cos": (rg.cos, node("Cos", ["a"]), [X * 4], {}),
    "atan": (rg.atan, node("Atan", ["a"]), [X * 4], {}),
    "floor": (rg.floor, node("Floor", ["a"]), [X * 4], {}),
    "ceil": (rg.ceil, node("Ceil", ["a"]), [X * 4], {}),
    "clip": (
        lambda a: rg.clip(a, -0.5, 0.7),
        node("Clip", ["a", "lo", "hi"]),
        [X],
        {"lo": np.array(-0.5), "hi": np.array(0.7)},
    ),
    "matmul": (
        lambda a: rg.matmul(a, a.graph.constant(W)),
        node("MatMul", ["a", "w"]),
        [X],
        {"w": W},
    ),
    "concat": (
        lambda a, b: rg.concat([a, b], axis=-2),
        node("Concat", ["a", "b"], axis=-2),
        [X, Y],
        {},
    ),
    "slice": (
        lambda a: rg.slice(a, [1, 0], [4, 6], axes=[1, 2], steps=[2, 3]),
        node("Slice", ["a", "st", "en", "ax", "sp"]),
        [X],
        {
            "st": np.array([1, 0]),
            "en": np.array([4, 6]),
            "ax": np.array([2, 3]),
            "sp": np.array([2, 3]),
        },
    ),
    "reshape": (
        lambda a: rg.reshape(a, (2, -1)),
        node("Reshape", ["a", "shape"]),
        [X],
        {"shape": np.array([T, B, 2, 12])},
    ),
    "transpose": (
        lambda a: rg.transpose(a, [0, 2, 1]),
        node("Transpose", ["a"], perm=[0, 1, 3, 2]),
        [X],
        {},
    ),
    "unsqueeze": (
        lambda a: rg.unsqueeze(a, -2),
        node("Unsqueeze", ["a", "axes"]),
        [X],
        {"axes": np.array([-2])},
    ),
    "gather": (
        lambda a: rg.gather(a, IDX, axis=-1),
        node("Gather", ["a", "i"], axis=-1),
        [X],
        {"i": IDX},
    ),
    "reduce_sum": (
        lambda a: rg.reduce_sum(a, -1),
        node("ReduceSum", ["a", "ax"], keepdims=0),
        [X],
        {"ax": np.array([-1])},
    ),
    "reduce_mean": (
        lambda a: rg.reduce_mean(a, [1, 2], keepdims=True),
        node("ReduceMean", ["a", "ax"], keepdims=1),
        [X],
        {"ax": np.array([2, 3])},
    ),
    "reduce_max": (
        lambda a: rg.reduce_max(a, -2),
        node("ReduceMax", ["a", "ax"], keepdims=0),
        [X],
        {"ax": np.array([-2])},
    ),
    "reduce_min": (
        lambda a: rg.reduce_min(a, -1),
        node("ReduceMin", ["a", "ax"], keepdims=0),
        [X],
        {"ax": np.array([-1])},
    ),
    "reduce_prod": (
        lambda a: rg.reduce_prod(a, -1),
        node("ReduceProd", ["a", "ax"], keepdims=0),
        [X],
        {"ax": np.array([-1])},
    ),
    "softmax": (rg.softmax, node("Softmax", ["a"], axis=-1), [X * 4], {}),
    "log_softmax": (
        lambda a: rg.log_softmax(a, axis=-2),
        node("LogSoftmax", ["a"], axis=-2),
        [X * 4],
        {},
    ),
    "where": (
        lambda a, b: rg.where(rg.greater(a, b), a, b * 2.0),
        [
            helper.make_node("Greater", ["a", "b"], ["c"]),
            helper.make_node("Mul", ["b", "two"], ["b2"]),
            helper.make_node("Where", ["c", "a", "b2"], ["out"]),
        ],
        [X, Y],
        {"two": np.array(2.0)},
    ),
    "layer_norm": (
        lambda a: rg.layer_norm(
            a, a.graph.constant(np.linspace(0.5, 1.5, 6)), a.graph.constant(np.arange(6.0))
        ),
        node("LayerNormalization", ["a", "scale", "bias"], axis=-1, epsilon=1e-5),
        [X],
        {"scale": np.linspace(0.5, 1.5, 6), "bias": np.arange(6.0)},
    ),
    "pad": (
        lambda a: rg.ops.pad(a, [-1, -2], [(1, 2), (0, 3)]),
        node("Pad", ["a", "pads"]),
        [X],
        {"pads": np.array([0, 0, 0, 1, 0, 0, 3, 2], np.int64)},
    ),
    "zeros_like": (
        lambda a: rg.ops.zeros_like(a) + 1.0,
        [
            helper.make_node("Sub", ["a", "a"], ["z"]),
            helper.make_node("Add", ["z", "one"], ["out"]),
        ],
        [X],
        {"one": np.array(1.0)},
    ),
    "less_cast": (
        lambda a, b: rg.cast(rg.less(a, b), "float"),
        [
            helper.make_node("Less", ["a", "b"], ["c"]),
            helper.make_node("Cast", ["c"], ["out"], to=TensorProto.DOUBLE),
        ],
        [X, Y],
        {},
    ),
    "argmax": (
        lambda a: rg.argmax(a, -2, keepdims=True),
        node("ArgMax", ["a"], axis=-2, keepdims=1),
        [TIES],
        {},
    ),
    "argmin": (lambda a: rg.argmin(a), node("ArgMin", ["a"], axis=-1, keepdims=0), [TIES], {}),
    "top_k": (
        lambda a: rg.top_k(a, 3, -2)[1],
        helper.make_node("TopK", ["a", "k"], ["v", "out"], axis=-2, largest=1, sorted=1),
        [X],
        {"k": np.array([3])},
    ),
    "take_along": (
        lambda a, b: rg.take_along(a, rg.argsort(b)),
        [
            helper.make_node("TopK", ["b", "k"], ["v", "i"], axis=-1, largest=0, sorted=1),
            helper.make_node("GatherElements", ["a", "i"], ["out"], axis=-1),
        ],
        [X, Y],
        {"k": np.array([6])},
    ),
    "scatter_add_along": (
        lambda a, b: rg.scatter_add_along(
            a, rg.argmax(b, keepdims=True), rg.reduce_sum(b, -1, True)
        ),
        [
            helper.make_node("ArgMax", ["b"], ["i"], axis=-1, keepdims=1),
            helper.make_node("ReduceSum", ["b", "ax"], ["s"], keepdims=1),
            helper.make_node("ScatterElements", ["a", "i", "s"], ["out"], axis=-1, reduction="add"),
        ],
        [X, Y],
        {"ax": np.array([-1])},
    ),
    "cumsum": (
        lambda a: rg.cumsum(a, -2, reverse=True, exclusive=True),
        node("CumSum", ["a", "ax"], reverse=1, exclusive=1),
        [X],
        {"ax": np.array(-2)},
    ),
    "heaviside": (
        lambda a: rg.heaviside(a),
        [
            helper.make_node("Greater", ["a", "zero"], ["c"]),
            helper.make_node("Cast", ["c"], ["out"], to=TensorProto.DOUBLE),
        ],
        [TIES],
        {"zero": np.array(0.0)},
    ),
    "equal_cast": (
        lambda a: rg.cast(rg.equal(a, a * 1.0), "float"),
        [
            helper.make_node("Equal", ["a", "a"], ["c"]),
            helper.make_node("Cast", ["c"], ["out"], to=TensorProto.DOUBLE),
        ],
        [X],
        {},
    ),
}


def test_every_registered_op_is_covered() -> None:
    from rnngraph.ir.registry import OPS

    covered = {
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "maximum",
        "minimum",
        "neg",
        "abs",
        "exp",
        "log",
        "sqrt",
        "tanh",
        "sigmoid",
        "hard_sigmoid",
        "relu",
        "leaky_relu",
        "softplus",
        "softsign",
        "erf",
        "sin",
        "cos",
        "atan",
        "floor",
        "ceil",
        "clip",
        "matmul",
        "concat",
        "slice",
        "reshape",
        "transpose",
        "unsqueeze",
        "gather",
        "reduce_sum",
        "reduce_mean",
        "reduce_max",
        "reduce_min",
        "reduce_prod",
        "softmax",
        "log_softmax",
        "where",
        "greater",
        "less",
        "equal",
        "cast",
        "pad",
        "zeros_like",
        "layer_norm",
        "argmax",
        "argmin",
        "top_k",
        "take_along",
        "scatter_add_along",
        "cumsum",
        "heaviside",
    }
    # tested in test_interpreter and test_totals
    structural = {"input", "param", "constant", "state", "delay", "total", "total_outer"}
    structural |= {"gather_rows", "scatter_rows", "scatter_add_rows"}  # test_rows: loops there
    structural |= {"random", "stop_gradient"}  # test_random: the published hash, every backend
    structural |= {"fixed_point"}  # test_fixed_point: against plain Python iteration
    structural |= {"final", "whole", "whole_mask"}  # test_axes: between the axes, vs PyTorch
    # test_primitives: against PyTorch's conv and pools (ONNX's Conv cannot take (T, B, ...))
    structural |= {"conv", "max_pool", "unfold", "fold"}
    structural |= {"solve"}  # test_primitives: against torch.linalg.solve (no ONNX operator)
    # test_quant: against onnx.reference's QuantizeLinear / DequantizeLinear (float32: the
    # ONNX ops take no float64)
    structural |= {"quantize", "dequantize", "fake_quant"}
    # test_integer: against exact rational arithmetic, scipy's expit, and onnxruntime's
    # int64 kernels on every zoo cell's integer graph
    structural |= INTEGER_OPS
    assert set(OPS) == covered | structural


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_onnx_reference(case: str) -> None:
    build, onnx_nodes, args, consts = CASES[case]
    g = rg.Graph(case)
    names = ["a", "b"][: len(args)]
    vals = [g.input(n, a.shape[2:]) for n, a in zip(names, args, strict=True)]
    g.output("out", build(*vals))
    ours = rg.run(g, dict(zip(names, args, strict=True)), dtype="float64")["out"]

    nodes = onnx_nodes if isinstance(onnx_nodes, list) else [onnx_nodes]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.DOUBLE, a.shape)
        for n, a in zip(names, args, strict=True)
    ]
    out = helper.make_tensor_value_info("out", TensorProto.DOUBLE, None)
    model = helper.make_model(
        helper.make_graph(nodes, case, inputs, [out], initializer=inits),
        opset_imports=[helper.make_opsetid("", 18)],
    )
    (expected,) = ReferenceEvaluator(model).run(None, dict(zip(names, args, strict=True)))
    assert ours.shape == expected.shape
    # (onnx.reference computes Erf through float32: np.vectorize(math.erf, otypes="f"))
    tol = 1e-7 if case == "erf" else 1e-12
    np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol)
