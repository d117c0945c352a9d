"""Outside oracles: single-op ONNX models of LSTM/GRU/RNN, run by onnx.reference and onnxruntime.

These models are written here by hand from the ONNX operator specification,
independently of rnngraph's cells, and evaluated by code outside the project.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def recurrent_op_model(
    op: str,
    *,
    input_size: int,
    hidden: int,
    direction: str,
    with_lens: bool,
    with_initial: bool,
    peepholes: bool = False,
    **attrs: object,
) -> onnx.ModelProto:
    """A model with one ONNX recurrent op whose weights are all graph inputs."""
    D = 2 if direction == "bidirectional" else 1
    G = GATES[op]
    f = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("X", f, ["T", "N", input_size]),
        helper.make_tensor_value_info("W", f, [D, G * hidden, input_size]),
        helper.make_tensor_value_info("R", f, [D, G * hidden, hidden]),
        helper.make_tensor_value_info("B", f, [D, 2 * G * hidden]),
    ]
    names = ["X", "W", "R", "B"]
    if with_lens:
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["N"]))
        names.append("sequence_lens")
    else:
        names.append("")
    if with_initial:
        inputs.append(helper.make_tensor_value_info("initial_h", f, [D, "N", hidden]))
        names.append("initial_h")
        if op == "LSTM":
            inputs.append(helper.make_tensor_value_info("initial_c", f, [D, "N", hidden]))
            names.append("initial_c")
    elif op == "LSTM" and peepholes:
        names += ["", ""]
    if op == "LSTM" and peepholes:
        inputs.append(helper.make_tensor_value_info("P", f, [D, 3 * hidden]))
        names.append("P")
    while names and names[-1] == "":
        names.pop()
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outs, hidden_size=hidden, direction=direction, **attrs)
    outputs = [helper.make_tensor_value_info(o, f, None) for o in outs]
    graph = helper.make_graph([node], "oracle", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def run_reference(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    return list(ReferenceEvaluator(model).run(None, dict(feeds)))


def run_onnxruntime(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return list(sess.run(None, dict(feeds)))
