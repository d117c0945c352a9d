"""ONNX's own conformance cases (onnx.backend.test.case.node) through the importer: every
case whose inputs can be sequences ``(T, B, ...)`` is either refused with a typed error
or imported and run to ONNX's expected outputs — never a wrong answer, never a crash."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from rnngraph_onnx._adapt import run_as_onnx

import rnngraph as rg

MUST_PASS = {
    "test_abs", "test_add", "test_concat_3d_axis_2", "test_div", "test_exp",
    "test_greater", "test_hardsigmoid", "test_leakyrelu", "test_less", "test_log",
    "test_logsoftmax_axis_2", "test_logsoftmax_negative_axis", "test_matmul_4d", "test_mul",
    "test_neg", "test_pow", "test_relu", "test_sigmoid", "test_softmax_axis_2",
    "test_softmax_negative_axis", "test_softplus", "test_softsign", "test_sqrt", "test_sub",
    "test_argmax_negative_axis_keepdims_random", "test_hardswish_expanded",
    "test_and3d", "test_or3d", "test_xor3d", "test_not_3d", "test_greater_equal",
    "test_less_equal",
}  # fmt: skip
"""Cases that import and pass today (a regression guard; the test counts them all)."""


def _cases() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    out = []
    for c in cases:
        if not c.data_sets:
            continue
        ins, outs = c.data_sets[0]
        arrays = list(ins) + list(outs)
        if not ins or not all(isinstance(a, np.ndarray) for a in arrays):
            continue  # (sequences, optionals: not tensors)
        if any(a.ndim < 2 for a in ins) or any(a.dtype.kind not in "fiub" for a in ins):
            continue  # (a sequence input needs a time and a batch axis)
        out.append(c)
    return out


def test_conformance_cases_are_right_or_refused() -> None:
    passed, refused, wrong = [], [], []
    for case in _cases():
        model = case.model
        ins, outs = case.data_sets[0]
        try:
            g, p = rg.import_onnx(model)
            feeds = {i.name: a for i, a in zip(model.graph.input, ins, strict=False)}
            got = run_as_onnx(g, p, feeds)
        except rg.GraphError:  # refused (or inputs it cannot take), with a typed error
            refused.append(case.name)
            continue
        expected = {o.name: e for o, e in zip(model.graph.output, outs, strict=True)}
        if all(
            np.allclose(got[k], e, rtol=1e-3, atol=1e-5, equal_nan=True)
            for k, e in expected.items()
        ):
            passed.append(case.name)
        else:
            wrong.append(case.name)
    assert wrong == [], f"imported models computing wrong answers: {wrong}"
    assert set(passed) >= MUST_PASS, sorted(MUST_PASS - set(passed))
    assert len(passed) >= 65, (len(passed), len(refused))


def test_integer_inputs_are_refused_not_computed_as_floats() -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.INT8, ["T", "B", 2])
    y = helper.make_tensor_value_info("y", TensorProto.INT8, ["T", "B", 2])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Div", ["x", "x"], ["y"])], "div", [x], [y])
    )
    with pytest.raises(rg.ModelImportError, match=r"holds int8.*cast the input to float"):
        rg.import_onnx(model)
