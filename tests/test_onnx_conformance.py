"""ONNX's own conformance cases (onnx.backend.test.case.node) through the importer: every
case whose inputs are tensors is either refused with a typed error or imported (as
sequences, or read whole) and run to ONNX's expected outputs — never a wrong answer,
never a crash."""

from __future__ import annotations

import pytest

import rnngraph as rg
from tools.onnx_conformance import run_case, tensor_cases

MUST_PASS = {
    "test_abs", "test_add", "test_concat_3d_axis_2", "test_div", "test_exp",
    "test_greater", "test_hardsigmoid", "test_leakyrelu", "test_less", "test_log",
    "test_logsoftmax_axis_2", "test_logsoftmax_negative_axis", "test_matmul_4d", "test_mul",
    "test_neg", "test_pow", "test_relu", "test_sigmoid", "test_softmax_axis_2",
    "test_softmax_negative_axis", "test_softplus", "test_softsign", "test_sqrt", "test_sub",
    "test_argmax_negative_axis_keepdims_random", "test_hardswish_expanded",
    "test_and3d", "test_or3d", "test_xor3d", "test_not_3d", "test_greater_equal",
    "test_less_equal", "test_lstm_with_peepholes", "test_gru_seq_length",
    "test_simple_rnn_batchwise", "test_scan_sum", "test_scan9_multi_state",
    # through ONNX's own function bodies (rnngraph_onnx._functions)
    "test_elu", "test_selu", "test_celu", "test_thresholdedrelu", "test_hardswish",
    "test_prelu_example", "test_swiglu", "test_gelu_tanh_2", "test_relu_expanded_ver18",
    # rules of their own
    "test_reciprocal", "test_dropout_default", "test_erf", "test_sin", "test_cos",
    "test_gelu_default_2", "test_tan", "test_sinh", "test_cosh", "test_hardmax_negative_axis",
    "test_argmax_negative_axis_keepdims_random_select_last_index",
    # rows flattened from a sequence: Flatten, LayerNormalization's body on other axes
    "test_flatten_axis2", "test_flatten_negative_axis1", "test_layer_normalization_4d_axis2",
    "test_layer_normalization_4d_axis_negative_2_expanded_ver18",
    # a lower-rank float input meeting a signal: a weight the caller feeds (the scale)
    "test_rms_normalization_4d_axis2", "test_rms_normalization_4d_axis_negative_2_expanded",
    # pools over a step's row: windows, strides, pads (auto_pad too), dilations
    "test_maxpool_2d_same_lower", "test_maxpool_2d_dilations", "test_averagepool_2d_pads",
    "test_averagepool_2d_pads_count_include_pad", "test_lppool_2d_strides",
    "test_globalaveragepool", "test_globalmaxpool", "test_maxpool_2d_ceil",
    "test_averagepool_2d_ceil_last_window_starts_on_pad",
    # LinearAttention as a recurrence: each update rule, GQA, past and present state, fp16
    "test_linear_attention_linear", "test_linear_attention_gated_per_head_decay",
    "test_linear_attention_delta", "test_linear_attention_gated_delta_mqa",
    "test_linear_attention_decode_step", "test_linear_attention_prefill_with_past",
    "test_linear_attention_fp16",
    # Attention: the query's steps over a per-sequence memory (K, V after their cache)
    "test_attention_4d", "test_attention_3d_gqa_causal", "test_attention_4d_attn_mask_bool_4d",
    "test_attention_4d_with_past_and_present_qk_matmul_bias_4d_mask_causal",
    "test_attention_local_window_gqa_rank4_mask", "test_attention_bidirectional_window",
    "test_attention_4d_softcap_neginf_mask_poison",
    "test_attention_4d_gqa_with_past_and_present_fp16",
    # CausalConvWithState: (B, C, L) time last, a delay line
    "test_causal_conv_with_state_basic", "test_causal_conv_with_state_silu_with_past_state",
    # RotaryEmbedding: tables read at each row's position, or per-step caches
    "test_rotary_embedding", "test_rotary_embedding_no_position_ids_rotary_dim",
    # atan, floor and ceil ops; the inverse trigonometric and hyperbolic functions from them
    "test_atan", "test_asin", "test_acos", "test_asinh", "test_acosh", "test_atanh",
    "test_floor", "test_ceil",
    # an input given back; normalisation along a feature axis
    "test_identity", "test_lpnormalization_default", "test_l1normalization_axis_last",
    # 8- and 16-bit integers only compared: exact as floats
    "test_greater_int8", "test_less_equal_uint16", "test_equal_int16",
    "test_greater_equal_int8_expanded",
    # read whole (no op over time; inputs of rank < 2, or ops along the first two axes)
    "test_softmax_axis_0", "test_logsoftmax_axis_1", "test_hardmax_axis_0",
    "test_layer_normalization_3d_axis0_epsilon", "test_rms_normalization_4d_axis1",
    "test_argmax_default_axis_example", "test_argmin_no_keepdims_random",
    "test_reduce_max_default_axes_keepdim_example", "test_concat_2d_axis_0",
    "test_transpose_default", "test_transpose_all_permutations_4", "test_flatten_axis0",
    "test_add_bcast", "test_pow_bcast_scalar", "test_split_equal_parts_1d_opset18",
    "test_spacetodepth", "test_depthtospace_crd_mode_example", "test_gather_elements_0",
    "test_group_normalization_example", "test_mvn", "test_sum_example", "test_mish",
    "test_exp_example", "test_clip_default_inbounds",
    # ONNX's function bodies of Attention, FlexAttention and RotaryEmbedding, read whole
    "test_attention_3d_gqa_causal_expanded", "test_flexattention_score_mod_expanded_ver26",
    "test_rotary_embedding_no_position_ids_expanded",
}  # fmt: skip
"""Cases that import and pass today (a regression guard; the test counts them all)."""


def _cases() -> list:
    return tensor_cases()[0]


def test_conformance_cases_are_right_or_refused() -> None:
    """On the reference and through onnxruntime (the TVM column of the committed table,
    docs/onnx-conformance.md, comes from ``python tools/onnx_conformance.py``)."""
    passed, wrong = [], []
    for case in _cases():
        result = run_case(case, ["reference", "onnx"])
        if result["reference"] == "passed":
            passed.append(case.name)
        wrong += [f"{case.name} on {e}: {r}" for e, r in result.items() if r.startswith("wrong")]
    assert wrong == [], f"imported models computing wrong answers: {wrong}"
    assert set(passed) >= MUST_PASS, sorted(MUST_PASS - set(passed))
    assert len(passed) >= 332, len(passed)


def test_integer_inputs_are_refused_not_computed_as_floats() -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.INT8, ["T", "B", 2])
    y = helper.make_tensor_value_info("y", TensorProto.INT8, ["T", "B", 2])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Div", ["x", "x"], ["y"])], "div", [x], [y])
    )
    with pytest.raises(rg.ModelImportError, match=r"holds int8.*cast the input to float"):
        rg.import_onnx(model)
