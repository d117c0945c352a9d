"""An imported ONNX model compiled by rnngraph is a drop-in replacement for it: the
compiled model (every engine) and its saved file take and return exactly the original
tensors. Checked on ONNX's own conformance cases for LSTM, GRU, RNN, Scan,
LinearAttention and Attention (shipped with the ``onnx`` package: models, inputs, expected
outputs), against PyTorch's attention, and on models with reserved names."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import rnngraph as rg

RECURRENT = ("test_lstm", "test_gru", "test_rnn", "test_simple_rnn", "test_scan",
             "test_linear_attention")  # fmt: skip
UNBATCHED = "test_scan9_scalar"
"""Its sequence is rank 1: no batch axis for rnngraph's (T, B, ...) signals (refused)."""
TVM_CASES = {
    "test_lstm_with_peepholes",  # sequence_lens, initial_h/c and P fed as inputs
    "test_lstm_batchwise",  # layout=1
    "test_gru_bidirectional",
    "test_gru_seq_length",
    "test_simple_rnn_reverse",
    "test_scan_sum",
    "test_linear_attention_gated_delta_gqa",  # S decayed, delta-corrected, 2 query heads a state
    "test_linear_attention_prefill_with_past",  # past_state in, present_state out
    "test_attention_4d_gqa_with_past_and_present",  # (B, H, T, d); K, V after their cache
    "test_attention_3d_with_past_and_present_qk_matmul_softmax",  # (B, T, H*d); the weights
    "test_causal_conv_with_state_decode_step",  # (B, C, L) time last; bias and taps fed
}
"""The cases the TVM engine runs in the fast suite (all of them in the slow one)."""


def _recurrent_cases() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    return sorted(
        (c for c in cases if c.name.startswith(RECURRENT) and not c.name.endswith("_expanded")),
        key=lambda c: c.name,
    )  # (LinearAttention's "_expanded" cases: its function body, in docs/onnx-conformance.md)


ALL_CASES = {c.name: c for c in _recurrent_cases()}
CASES = {k: c for k, c in ALL_CASES.items() if k != UNBATCHED}


def _attention_cases() -> dict:
    """ONNX's Attention cases whose inputs can be sequences (a rank-1 mask or
    ``nonpad_kv_seqlen`` has no batch axis: docs/onnx-conformance.md counts those), and
    every CausalConvWithState (its bias is rank 1) and RotaryEmbedding case."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    return {
        c.name: c
        for c in cases
        if not c.name.endswith("_expanded")
        and (
            c.name.startswith(("test_causal_conv_with_state", "test_rotary_embedding"))
            or (
                c.name.startswith("test_attention")
                and all(a.ndim >= 2 and a.dtype.kind in "fb" for a in c.data_sets[0][0])
            )
        )
    }


ATTENTION = _attention_cases()
ATTENTION_FAST = {
    "test_attention_4d", "test_attention_3d_gqa_causal", "test_attention_4d_attn_mask_bool",
    "test_attention_4d_attn_mask_3d_causal", "test_attention_4d_softcap_neginf_mask",
    "test_attention_4d_with_past_and_present_qk_matmul_bias_4d_mask_causal",
    "test_attention_local_window_gqa_rank4_mask", "test_attention_bidirectional_window",
    "test_attention_4d_gqa_with_past_and_present_fp16",
    "test_attention_23_boolmask_fullymasked_row_nan_robustness",
    "test_causal_conv_with_state_with_bias_and_past_state", "test_causal_conv_with_state_silu",
    "test_rotary_embedding_3d_input", "test_rotary_embedding_no_position_ids_interleaved",
    "test_rotary_embedding_with_interleaved_rotary_dim",
}  # fmt: skip
"""The Attention cases the fast suite runs as drop-ins (all of them in the slow one; every
one on the reference and onnxruntime in tests/test_onnx_conformance.py)."""
REFUSED = {"test_causal_conv_with_state_kernel_size_one": "a kernel of 1 keeps no past steps"}
"""Cases refused by name: an empty present_state (B, C, 0) is no state rnngraph keeps."""
CASES.update({k: c for k, c in ATTENTION.items() if k not in REFUSED})


def _feeds_and_expected(case) -> tuple[dict, dict]:
    ins, outs = case.data_sets[0]
    feeds = {i.name: a for i, a in zip(case.model.graph.input, ins, strict=False)}
    return feeds, {o.name: e for o, e in zip(case.model.graph.output, outs, strict=True)}


def _check(got: dict, expected: dict) -> None:
    assert list(got) == list(expected), (list(got), list(expected))
    for k, e in expected.items():
        assert got[k].shape == e.shape, (k, got[k].shape, e.shape)
        assert got[k].dtype == e.dtype, (k, got[k].dtype, e.dtype)  # (float16 in, float16 out)
        np.testing.assert_allclose(got[k], e, rtol=1e-3, atol=1e-5, err_msg=k)


def _ort_file(path, feeds: dict) -> dict:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def test_every_recurrent_conformance_case_is_collected() -> None:
    # 6 LSTM, 6 GRU, 6 RNN: defaults, bias, peepholes or lengths, batch-major, reverse, both
    # ways; Scan: opset 8 (batch-major, its body sees one row), opset 9 with 1 and 2 states;
    # 14 LinearAttention: each update rule, per-head decay, GQA and MQA, a decode step,
    # past_state, an explicit scale, float16
    assert len(CASES) - len(ATTENTION) + len(REFUSED) == 35, sorted(CASES)
    # Attention: 3-D and 4-D, GQA, float and bool masks of every rank >= 2, causal, past and
    # present, softcap, each qk_matmul_output mode, sliding windows, float16
    assert sum(n.startswith("test_attention") for n in ATTENTION) >= 65, sorted(ATTENTION)
    # CausalConvWithState: bias, past state, SiLU, a decode step, fp16, a kernel of 1
    assert sum(n.startswith("test_causal_conv") for n in ATTENTION) == 13, sorted(ATTENTION)
    # RotaryEmbedding: position ids or per-step caches, interleaved, a partial rotation, 3-D
    assert sum(n.startswith("test_rotary") for n in ATTENTION) == 8, sorted(ATTENTION)
    assert {"test_scan_sum", "test_scan9_sum", "test_scan9_multi_state"} <= set(CASES)


def test_a_scan_without_a_batch_axis_is_refused_by_name() -> None:
    with pytest.raises(rg.ModelImportError, match="is a scalar: it has no batch axis"):
        rg.import_onnx(ALL_CASES[UNBATCHED].model)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_cases_out_of_reach_are_refused_by_name(name: str) -> None:
    with pytest.raises(rg.ModelImportError, match=REFUSED[name]):
        rg.import_onnx(ATTENTION[name].model)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=() if n in ATTENTION_FAST or n not in ATTENTION else pytest.mark.slow)
        for n in sorted(CASES)
    ],
)  # fmt: skip
def test_conformance_case_on_the_reference_and_onnx(name: str, tmp_path) -> None:
    case = CASES[name]
    feeds, expected = _feeds_and_expected(case)
    g, p = rg.import_onnx(case.model)
    _check(rg.compile(g, target="reference", params=p).run(feeds), expected)
    m = rg.compile(g, target="onnx", params=p)
    _check(m.run(feeds), expected)
    # the saved file is the swap-in: onnxruntime alone, the original feeds and names
    path = m.save(tmp_path / "model.onnx")
    _check(_ort_file(path, feeds), expected)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == [i.name for i in case.model.graph.input]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=() if n in TVM_CASES else pytest.mark.slow)
        for n in sorted(CASES)
        if n in TVM_CASES or n not in ATTENTION  # (every one in docs/onnx-conformance.md)
    ],
)  # fmt: skip
def test_conformance_case_on_tvm(name: str) -> None:
    pytest.importorskip("tvm")
    case = CASES[name]
    feeds, expected = _feeds_and_expected(case)
    g, p = rg.import_onnx(case.model)
    _check(rg.compile(g, target="tvm", params=p).run(feeds), expected)


def _lstm_model(names: dict[str, str], H: int = 4, I: int = 3):
    """An LSTM whose tensors carry the given names (W, R, B initializers; X, lengths, and
    initial states as inputs; Y, Y_h, Y_c outputs)."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(1, 4 * H, I)).astype("float32")
    R = rng.normal(size=(1, 4 * H, H)).astype("float32")
    B = rng.normal(size=(1, 8 * H)).astype("float32")
    n = names
    node = helper.make_node(
        "LSTM",
        [n["X"], n["W"], n["R"], n["B"], n["lens"], n["h0"], n["c0"]],
        [n["Y"], n["Y_h"], n["Y_c"]],
        hidden_size=H,
    )
    inputs = [
        helper.make_tensor_value_info(n["X"], TensorProto.FLOAT, ["T", "N", I]),
        helper.make_tensor_value_info(n["lens"], TensorProto.INT32, ["N"]),
        helper.make_tensor_value_info(n["h0"], TensorProto.FLOAT, [1, "N", H]),
        helper.make_tensor_value_info(n["c0"], TensorProto.FLOAT, [1, "N", H]),
    ]
    outputs = [
        helper.make_tensor_value_info(n[k], TensorProto.FLOAT, None) for k in ("Y", "Y_h", "Y_c")
    ]
    inits = [numpy_helper.from_array(a, n[k]) for k, a in (("W", W), ("R", R), ("B", B))]
    return helper.make_model(
        helper.make_graph([node], "lstm", inputs, outputs, inits),
        opset_imports=[helper.make_opsetid("", 21)],
    )


@pytest.mark.parametrize(
    "names",
    [
        {"X": "X", "W": "W", "R": "R", "B": "B", "lens": "sequence_lens", "h0": "initial_h",
         "c0": "initial_c", "Y": "Y", "Y_h": "Y_h", "Y_c": "Y_c"},
        # names the compiler itself uses inside its models
        {"X": "T", "W": "B", "R": "steps", "B": "T__1", "lens": "valid", "h0": "h0",
         "c0": "zero_value", "Y": "Y[0]", "Y_h": "LSTM.h_final", "Y_c": "ints"},
    ],
    ids=["onnx-spec-names", "compiler-like-names"],
)  # fmt: skip
def test_reserved_looking_names_import_compile_and_swap_in(names: dict, tmp_path) -> None:
    model = _lstm_model(names)
    rng = np.random.default_rng(1)
    feeds = {
        names["X"]: rng.normal(size=(5, 3, 3)).astype("float32"),
        names["lens"]: np.array([5, 2, 4], np.int32),
        names["h0"]: rng.normal(size=(1, 3, 4)).astype("float32"),
        names["c0"]: rng.normal(size=(1, 3, 4)).astype("float32"),
    }
    want = _ort_file_model(model, feeds)
    g, p = rg.import_onnx(model)
    for target in ("reference", "onnx"):
        m = rg.compile(g, target=target, params=p)
        _check(m.run(feeds), want)
    path = m.save(tmp_path / "swap.onnx")
    _check(_ort_file(path, feeds), want)


def _ort_file_model(model, feeds: dict) -> dict:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def test_the_graph_interface_stays_available() -> None:
    case = CASES["test_lstm_bidirectional"]
    feeds, expected = _feeds_and_expected(case)
    g, p = rg.import_onnx(case.model)
    m = rg.compile(g, target="onnx", params={**p}, interface="graph", params_as_inputs=True)
    got = m.run({"X": feeds["X"]}, params={k: feeds[k] for k in ("W", "R")})
    assert sorted(got) == ["LSTM.bw.c_final", "LSTM.bw.h_final", "LSTM.fw.c_final",
                           "LSTM.fw.h_final"]  # fmt: skip
    h = expected["Y_h"]  # (directions, B, H)
    np.testing.assert_allclose(got["LSTM.bw.h_final"], h[1], rtol=1e-3, atol=1e-5)


def test_wrong_feeds_are_clear_errors() -> None:
    case = CASES["test_gru_with_initial_bias"]
    feeds, _ = _feeds_and_expected(case)
    g, p = rg.import_onnx(case.model)
    m = rg.compile(g, target="reference", params=p)
    with pytest.raises(rg.InputError, match=r"no inputs \['x'\]; it takes \['X', 'W', 'R', 'B'\]"):
        m.run({**feeds, "x": feeds["X"]})
    with pytest.raises(rg.InputError, match=r"takes its weights \['B'\] as inputs"):
        m.run({k: v for k, v in feeds.items() if k != "B"})
    with pytest.raises(rg.CompileError, match="interface must be"):
        rg.compile(g, target="reference", params=p, interface="onnx")


def test_compile_verb_writes_a_file_to_swap_in(tmp_path, capsys) -> None:
    from rnngraph.tools.cli import main

    case = CASES["test_lstm_with_peepholes"]
    original = tmp_path / "lstm.onnx"
    original.write_bytes(case.model.SerializeToString())
    out = tmp_path / "lstm_rnngraph.onnx"
    assert main(["compile", str(original), "--target", "onnx", "-o", str(out)]) == 0
    feeds, expected = _feeds_and_expected(case)
    _check(_ort_file(out, feeds), expected)


def _elman_loop(initial: str = "input"):
    """An Elman net written as ONNX's Loop (as exporters write Python loops): the trip
    count is Shape(x)[0], the body reads x[i] by Gather and carries h."""
    rng = np.random.default_rng(2)
    Wx, Wh = rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(4, 4)).astype("float32")
    b = rng.normal(size=(4,)).astype("float32")
    f = TensorProto.FLOAT
    body = helper.make_graph(
        [
            helper.make_node("Gather", ["x", "i"], ["xt"], axis=0),
            helper.make_node("MatMul", ["xt", "Wx"], ["a"]),
            helper.make_node("MatMul", ["h_in", "Wh"], ["r"]),
            helper.make_node("Add", ["a", "r"], ["s"]),
            helper.make_node("Add", ["s", "b"], ["s2"]),
            helper.make_node("Tanh", ["s2"], ["h_out"]),
            helper.make_node("Identity", ["h_out"], ["y_t"]),
            helper.make_node("Identity", ["c_in"], ["c_out"]),
        ],
        "step",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_in", f, ["N", 4]),
        ],
        [
            helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_out", f, ["N", 4]),
            helper.make_tensor_value_info("y_t", f, ["N", 4]),
        ],
    )
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["steps"], axis=0),
        helper.make_node("Loop", ["steps", "true", "h0"], ["h_T", "ys"], body=body),
    ]
    inputs = [helper.make_tensor_value_info("x", f, ["T", "N", 3])]
    inits = [
        numpy_helper.from_array(Wx, "Wx"), numpy_helper.from_array(Wh, "Wh"),
        numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array(True), "true"),
    ]  # fmt: skip
    if initial == "input":
        inputs.append(helper.make_tensor_value_info("h0", f, ["N", 4]))
    else:  # zeros (N, 4) from the batch size
        nodes[:0] = [
            helper.make_node("Shape", ["x"], ["n"], start=1, end=2),
            helper.make_node("Concat", ["n", "four"], ["hshape"], axis=0),
            helper.make_node("ConstantOfShape", ["hshape"], ["h0"]),
        ]
        inits.append(numpy_helper.from_array(np.array([4], np.int64), "four"))
    outputs = [helper.make_tensor_value_info(n, f, None) for n in ("h_T", "ys")]
    return helper.make_model(
        helper.make_graph(nodes, "elman_loop", inputs, outputs, inits),
        opset_imports=[helper.make_opsetid("", 21)],
    )


@pytest.mark.parametrize("initial", ["input", "zeros"])
def test_a_loop_over_the_steps_imports_as_a_recurrence(initial: str, tmp_path) -> None:
    model = _elman_loop(initial)
    rng = np.random.default_rng(3)
    feeds = {"x": rng.normal(size=(6, 2, 3)).astype("float32")}
    if initial == "input":
        feeds["h0"] = rng.normal(size=(2, 4)).astype("float32")
    want = _ort_file_model(model, feeds)
    g, p = rg.import_onnx(model)
    assert list(g.states) == ["h_in"] and rg.recurrent_regions(g)
    targets = ["reference", "onnx"] + (["tvm"] if initial == "input" else [])
    for target in targets:
        if target == "tvm":
            pytest.importorskip("tvm")
        _check(rg.compile(g, target=target, params=p).run(feeds), want)
    path = rg.compile(g, target="onnx", params=p).save(tmp_path / "swap.onnx")
    _check(_ort_file(path, feeds), want)


def test_loops_that_are_not_recurrences_over_a_sequence_are_refused() -> None:
    model = _elman_loop("input")  # a fixed trip count: not the sequence's length
    model.graph.initializer.append(numpy_helper.from_array(np.array(5, np.int64), "five"))
    model.graph.node[2].input[0] = "five"
    with pytest.raises(rg.ModelImportError, match="trip count must be the sequences"):
        rg.import_onnx(model)
    model = _elman_loop("input")  # a while loop: the body computes its condition
    body = model.graph.node[2].attribute[0].g
    body.initializer.append(numpy_helper.from_array(np.array(3, np.int64), "three"))
    body.node[-1].CopyFrom(helper.make_node("Less", ["i", "three"], ["c_out"]))
    with pytest.raises(rg.ModelImportError, match="'i' is a Loop's iteration number"):
        rg.import_onnx(model)


def test_graphs_derived_from_an_imported_one_speak_their_own_interface() -> None:
    """The adjoint of an imported graph (which carries its metadata) and an imported graph
    given another output compile with their own inputs and outputs."""
    from rnngraph.runtime.interface import Interface

    case = CASES["test_gru_defaults"]
    g, _ = rg.import_onnx(case.model)
    assert Interface.of(g) is not None
    assert Interface.of(rg.adjoint(g)) is None
    g.output("extra", rg.tanh(g.value("X")))
    assert Interface.of(g) is None
    feeds, _ = _feeds_and_expected(case)
    m = rg.compile(g, target="reference", params={k: feeds[k] for k in ("W", "R")})
    assert sorted(m.run({"X": feeds["X"]})) == ["GRU.h_final", "extra"]


def test_check_verb_compares_an_imported_model_on_its_graph(tmp_path, capsys) -> None:
    """`rnngraph check model.onnx`: every engine against the reference on the graph's own
    interface; weights the model takes as inputs get fresh values (said so)."""
    from rnngraph.tools.cli import main

    path = tmp_path / "gru.onnx"
    path.write_bytes(CASES["test_gru_with_initial_bias"].model.SerializeToString())
    assert main(["check", str(path), "--target", "onnx"]) == 0
    out = capsys.readouterr()
    assert "no values for params ['B', 'R', 'W']" in out.err and "within tolerance" in out.out


def test_rg_run_speaks_the_original_interface_when_asked(tmp_path) -> None:
    """rg.run(g, feeds, params, interface="original"): the reference interpreter on the
    original model's feeds and outputs; its default stays the graph's own. The mapping
    is saved with the graph."""
    case = CASES["test_lstm_with_peepholes"]  # sequence_lens, initial_h/c, weights as inputs
    feeds, expected = _feeds_and_expected(case)
    g, p = rg.import_onnx(case.model)
    _check(rg.run(g, feeds, p, interface="original"), expected)
    g.save(tmp_path / "imported.json")
    _check(rg.run(rg.load(tmp_path / "imported.json"), feeds, p, interface="original"), expected)
    with pytest.raises(rg.InputError, match="pass them in the feeds"):
        rg.run(g, feeds, p, interface="original", sequence_lens=np.array([1, 1]))
    with pytest.raises(rg.InputError, match="interface must be"):
        rg.run(g, feeds, p, interface="onnx")


def _flat_model(norm_axis: int) -> object:
    """A PyTorch-style language model's head on an LSTM: ``Y`` squeezed to (T, B, H),
    normalised by ``LayerNormalization`` over its last two axes after a Reshape to
    (T, B, 2, H/2) (``norm_axis``: 2 or -2; ONNX's function body flattens it), back to
    (T, B, H), then rows (-1, H) and a ``Gemm`` to the logits (T*B, V): the model's
    output is rows, not a sequence."""
    H, I, V = 6, 3, 5
    rng = np.random.default_rng(1)
    init = {
        "W": rng.normal(size=(1, 4 * H, I)), "R": rng.normal(size=(1, 4 * H, H)),
        "scale": rng.normal(size=(2, H // 2)), "bias": rng.normal(size=(2, H // 2)),
        "fc_w": rng.normal(size=(H, V)), "fc_b": rng.normal(size=(V,)),
    }  # fmt: skip
    shapes = {
        "one": [1], "split": [0, 0, 2, H // 2], "whole": [0, 0, H], "rows": [-1, H],
    }  # fmt: skip
    nodes = [
        helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=H),
        helper.make_node("Squeeze", ["Y", "one"], ["Ys"]),
        helper.make_node("Reshape", ["Ys", "split"], ["Y4"]),
        helper.make_node("LayerNormalization", ["Y4", "scale", "bias"], ["N4"], axis=norm_axis),
        helper.make_node("Reshape", ["N4", "whole"], ["N"]),
        helper.make_node("Reshape", ["N", "rows"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"]),
    ]
    inits = [numpy_helper.from_array(a.astype("float32"), k) for k, a in init.items()]
    inits += [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in shapes.items()]
    graph = helper.make_graph(
        nodes,
        "lm_head",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", I])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, V])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("norm_axis", [2, -2])
def test_rows_flattened_from_a_sequence_are_an_output_on_every_engine(
    norm_axis: int, tmp_path
) -> None:
    """Rows (-1, k) as a model's output (a Gemm head on Reshape(-1, H)) and
    LayerNormalization over the last two axes (its ONNX body's Flatten): every engine and
    the saved file return onnxruntime's (T*B, V) logits for the original feeds."""
    model = _flat_model(norm_axis)
    xs = np.random.default_rng(2).normal(size=(7, 4, 3)).astype("float32")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = {"logits": sess.run(None, {"X": xs})[0]}
    assert want["logits"].shape == (28, 5)
    g, p = rg.import_onnx(model)
    assert rg.run(g, {"X": xs}, p)["logits"].shape == (7, 4, 5)  # the graph's own axes
    for target in ("reference", "onnx", "tvm"):
        if target == "tvm":
            pytest.importorskip("tvm")
        m = rg.compile(
            g, target=target, params=p, **({} if target == "reference" else {"threads": 1})
        )
        _check(m.run({"X": xs}), want)
        if target == "onnx":
            _check(_ort_file(m.save(tmp_path / "lm.onnx"), {"X": xs}), want)


def test_flattening_into_time_or_batch_is_refused() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    for axis in (1, -3):
        node = helper.make_node("Flatten", ["x"], ["f"], axis=axis)
        model = helper.make_model(
            helper.make_graph([node, helper.make_node("Relu", ["f"], ["y"])], "f", [x], [y]),
            opset_imports=[helper.make_opsetid("", 18)],
        )
        with pytest.raises(rg.ModelImportError, match="time or batch axis"):
            rg.import_onnx(model)


def _scan_model(in_axis: int, out_axis: int) -> object:
    """An Elman step as a Scan (opset 16): ``h' = tanh(x W + h R)``, the scan input
    scanned along ``in_axis`` (1: batch-first ``(B, T, 3)``), the per-step output stacked
    along ``out_axis``."""
    rng = np.random.default_rng(3)
    W = numpy_helper.from_array(rng.normal(size=(3, 4)).astype("float32"), "W")
    R = numpy_helper.from_array(rng.normal(size=(4, 4)).astype("float32"), "R")
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["x_t", "W"], ["xw"]),
            helper.make_node("MatMul", ["h", "R"], ["hr"]),
            helper.make_node("Add", ["xw", "hr"], ["pre"]),
            helper.make_node("Tanh", ["pre"], ["h_next"]),
            helper.make_node("Identity", ["h_next"], ["y_t"]),
        ],
        "step",
        [
            helper.make_tensor_value_info("h", TensorProto.FLOAT, ["B", 4]),
            helper.make_tensor_value_info("x_t", TensorProto.FLOAT, ["B", 3]),
        ],
        [
            helper.make_tensor_value_info("h_next", TensorProto.FLOAT, ["B", 4]),
            helper.make_tensor_value_info("y_t", TensorProto.FLOAT, ["B", 4]),
        ],
    )
    scan = helper.make_node(
        "Scan", ["h0", "x"], ["h_T", "y"], body=body, num_scan_inputs=1,
        scan_input_axes=[in_axis], scan_output_axes=[out_axis],
    )  # fmt: skip
    lead = ["B", "T"] if in_axis in (1, -2) else ["T", "B"]
    graph = helper.make_graph(
        [scan],
        "elman_scan",
        [
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, ["B", 4]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [*lead, 3]),
        ],
        [
            helper.make_tensor_value_info("h_T", TensorProto.FLOAT, ["B", 4]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
        ],
        [W, R],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])


@pytest.mark.parametrize(("in_axis", "out_axis"), [(1, 1), (-2, 0), (0, 1)])
def test_a_scan_along_the_batch_first_axis_is_a_drop_in(in_axis, out_axis, tmp_path) -> None:
    """Scan axes 1 (batch-first tensors, ``(B, T, ...)``) in and out, against onnxruntime
    on the original model: the reference, ONNX (and its saved file) and TVM engines."""
    model = _scan_model(in_axis, out_axis)
    rng = np.random.default_rng(4)
    B, T = 3, 5
    x = rng.normal(size=(B, T, 3) if in_axis in (1, -2) else (T, B, 3)).astype("float32")
    feeds = {"h0": rng.normal(size=(B, 4)).astype("float32"), "x": x}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip(["h_T", "y"], sess.run(None, feeds), strict=True))
    g, p = rg.import_onnx(model)
    for target in ("reference", "onnx", "tvm"):
        if target == "tvm":
            pytest.importorskip("tvm")
        m = rg.compile(g, target=target, params=p)
        _check(m.run(feeds), want)
        if target == "onnx":
            _check(_ort_file(m.save(tmp_path / "scan.onnx"), feeds), want)


def test_a_scan_along_a_feature_axis_is_refused() -> None:
    model = _scan_model(1, 2)
    with pytest.raises(rg.ModelImportError, match="scan axis 2: only 0"):
        rg.import_onnx(model)


def test_pools_over_each_steps_row_on_every_engine() -> None:
    """MaxPool (auto_pad SAME_UPPER), AveragePool (pads, without the pads in the count),
    LpPool and GlobalAveragePool over a step's (H, W) row of a (T, B, H, W) sequence,
    against onnxruntime on the reference, ONNX and TVM engines."""
    nodes = [
        helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[2, 3], auto_pad="SAME_UPPER"),
        helper.make_node(
            "AveragePool", ["m"], ["a"], kernel_shape=[3, 2], pads=[1, 0, 1, 1], strides=[1, 2]
        ),
        helper.make_node("LpPool", ["a"], ["l"], kernel_shape=[2, 2], p=3),
        helper.make_node("GlobalAveragePool", ["l"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "pools",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 5, 7])],
        [
            helper.make_tensor_value_info("l", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    xs = np.random.default_rng(7).normal(size=(4, 3, 5, 7)).astype("float32")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip(["l", "y"], sess.run(None, {"x": xs}), strict=True))
    g, p = rg.import_onnx(model)
    for target in ("reference", "onnx", "tvm"):
        if target == "tvm":
            pytest.importorskip("tvm")
        _check(rg.compile(g, target=target, params=p).run({"x": xs}), want)


def _linear_attention(rule: str, Hq: int, Hkv: int, dk: int, dv: int, past: bool, per_head: bool):
    """A LinearAttention model (opset 27) with every input its rule takes."""
    F = TensorProto.FLOAT
    names = ["query", "key", "value", "past_state" if past else "", "", ""]
    inputs = [
        helper.make_tensor_value_info("query", F, ["B", "T", Hq * dk]),
        helper.make_tensor_value_info("key", F, ["B", "T", Hkv * dk]),
        helper.make_tensor_value_info("value", F, ["B", "T", Hkv * dv]),
    ]
    if past:
        inputs.append(helper.make_tensor_value_info("past_state", F, ["B", Hkv, dk, dv]))
    if rule in ("gated", "gated_delta"):
        names[4] = "decay"
        width = Hkv if per_head else Hkv * dk
        inputs.append(helper.make_tensor_value_info("decay", F, ["B", "T", width]))
    if rule in ("delta", "gated_delta"):
        names[5] = "beta"
        inputs.append(helper.make_tensor_value_info("beta", F, ["B", "T", Hkv]))
    while names and not names[-1]:
        names.pop()
    node = helper.make_node(
        "LinearAttention", names, ["output", "present_state"], q_num_heads=Hq,
        kv_num_heads=Hkv, update_rule=rule,
    )  # fmt: skip
    outputs = [helper.make_tensor_value_info(k, F, None) for k in ("output", "present_state")]
    return helper.make_model(
        helper.make_graph([node], "la", inputs, outputs),
        opset_imports=[helper.make_opsetid("", 27)],
    )


@pytest.mark.parametrize(
    ("rule", "Hq", "Hkv", "past", "per_head"),
    [("linear", 2, 2, False, False), ("gated", 4, 2, True, True), ("delta", 3, 1, True, False),
     ("gated_delta", 4, 2, True, False)],
)  # fmt: skip
def test_linear_attention_matches_onnx_reference_on_long_sequences(
    rule: str, Hq: int, Hkv: int, past: bool, per_head: bool
) -> None:
    """Linear attention as a recurrence, against ``onnx.reference`` (ONNX's own
    implementation) on 17 steps of 3 rows with a random past state: each update rule,
    grouped query heads, per-head or per-key decay; the drop-in's original interface on the
    reference and onnxruntime."""
    from onnx.reference import ReferenceEvaluator

    dk, dv = 4, 3
    model = _linear_attention(rule, Hq, Hkv, dk, dv, past, per_head)
    rng = np.random.default_rng(1)
    B, T = 3, 17
    feeds = {}
    for i in model.graph.input:
        dims = [d.dim_value or {"B": B, "T": T}[d.dim_param] for d in i.type.tensor_type.shape.dim]
        feeds[i.name] = (0.5 * rng.standard_normal(dims)).astype(np.float32)
    if "decay" in feeds:
        feeds["decay"] = -np.abs(feeds["decay"])  # (log-space decay: at most 1)
    if "beta" in feeds:
        feeds["beta"] = rng.uniform(0, 1, feeds["beta"].shape).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, feeds)
    expected = dict(zip(["output", "present_state"], want, strict=True))
    g, p = rg.import_onnx(model)
    for target in ("reference", "onnx"):
        _check(rg.compile(g, target=target, params=p).run(feeds), expected)


def _attention_model(Hq: int, Hkv: int, d: int, S: int, **attrs) -> object:
    """An ONNX Attention model (opset 23): Q (B, Hq, T, d); K, V (B, Hkv, S, d)."""
    F = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("Q", F, ["B", Hq, "T", d]),
        helper.make_tensor_value_info("K", F, ["B", Hkv, S, d]),
        helper.make_tensor_value_info("V", F, ["B", Hkv, S, d]),
    ]
    node = helper.make_node("Attention", ["Q", "K", "V"], ["Y"], **attrs)
    return helper.make_model(
        helper.make_graph([node], "att", inputs, [helper.make_tensor_value_info("Y", F, None)]),
        opset_imports=[helper.make_opsetid("", 23)],
    )


@pytest.mark.parametrize(("Hq", "Hkv", "causal"), [(4, 4, False), (6, 2, True), (3, 1, True)])
def test_attention_matches_torch_scaled_dot_product_attention(
    Hq: int, Hkv: int, causal: bool, tmp_path
) -> None:
    """The query's 23 steps attend over 23 keys, against PyTorch's
    ``scaled_dot_product_attention`` (grouped heads through ``enable_gqa``; causal: key ``j``
    for query ``t`` iff ``j <= t``), on the reference, onnxruntime (and the saved file)."""
    torch = pytest.importorskip("torch")
    B, T, d = 3, 23, 8
    model = _attention_model(Hq, Hkv, d, T, is_causal=int(causal))
    rng = np.random.default_rng(3)
    feeds = {
        "Q": rng.standard_normal((B, Hq, T, d)).astype(np.float32),
        "K": rng.standard_normal((B, Hkv, T, d)).astype(np.float32),
        "V": rng.standard_normal((B, Hkv, T, d)).astype(np.float32),
    }
    t = {k: torch.from_numpy(v) for k, v in feeds.items()}
    y = torch.nn.functional.scaled_dot_product_attention(
        t["Q"], t["K"], t["V"], is_causal=causal, enable_gqa=Hq != Hkv
    )
    want = {"Y": y.numpy()}
    g, p = rg.import_onnx(model)
    _check(rg.compile(g, target="reference", params=p).run(feeds), want)
    m = rg.compile(g, target="onnx", params=p)
    _check(m.run(feeds), want)
    _check(_ort_file(m.save(tmp_path / "att.onnx"), feeds), want)


def test_attention_over_the_querys_own_sequence_is_refused() -> None:
    """Keys computed from a sequence (self-attention over the whole sequence) are not a
    memory the steps read: refused by name, as is the query's layout read by other ops."""
    F = TensorProto.FLOAT
    nodes = [
        helper.make_node("Relu", ["X"], ["K"]),
        helper.make_node("Attention", ["Q", "K", "K"], ["Y"]),
    ]
    inputs = [
        helper.make_tensor_value_info("Q", F, ["B", 2, "T", 4]),
        helper.make_tensor_value_info("X", F, ["T", "B", 2, 4]),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "self", inputs, [helper.make_tensor_value_info("Y", F, None)]),
        opset_imports=[helper.make_opsetid("", 23)],
    )  # fmt: skip
    with pytest.raises(rg.ModelImportError, match="keys and values must be model inputs"):
        rg.import_onnx(model)
    model.graph.node[0].input[0] = "Q"  # (B, H, T, d) read by Relu
    with pytest.raises(rg.ModelImportError, match=r"laid out .* steps on axis 2"):
        rg.import_onnx(model)


def test_an_attention_mask_that_does_not_broadcast_is_a_clear_error() -> None:
    case = ATTENTION["test_attention_4d_attn_mask"]
    feeds, _ = _feeds_and_expected(case)
    g, p = rg.import_onnx(case.model)
    feeds["attn_mask"] = np.zeros((5, 6), np.float32)  # 5 query steps; Q has 4
    with pytest.raises(rg.InputError, match=r"attn_mask.*does not broadcast to \(2, 1, 4, 6\)"):
        rg.compile(g, target="reference", params=p).run(feeds)


@pytest.mark.parametrize("past", [False, True])
def test_causal_conv_with_state_matches_torch_conv1d(past: bool, tmp_path) -> None:
    """A depthwise causal convolution over 41 steps as a delay line, against PyTorch's
    ``conv1d`` (``groups=C``, the past state or zeros before the first step), SiLU after;
    ``present_state`` the last 4 inputs; the reference, onnxruntime and the saved file."""
    torch = pytest.importorskip("torch")
    F = TensorProto.FLOAT
    B, C, L, k = 3, 6, 41, 5
    names = ["x", "w", "b", "past" if past else ""]
    inputs = [
        helper.make_tensor_value_info("x", F, ["B", C, "L"]),
        helper.make_tensor_value_info("w", F, [C, 1, k]),
        helper.make_tensor_value_info("b", F, [C]),
    ]
    if past:
        inputs.append(helper.make_tensor_value_info("past", F, ["B", C, k - 1]))
    node = helper.make_node("CausalConvWithState", names, ["y", "present"], activation="silu")
    outputs = [helper.make_tensor_value_info(n, F, None) for n in ("y", "present")]
    model = helper.make_model(
        helper.make_graph([node], "conv", inputs, outputs),
        opset_imports=[helper.make_opsetid("", 26)],
    )
    rng = np.random.default_rng(5)
    feeds = {
        "x": rng.standard_normal((B, C, L)).astype(np.float32),
        "w": rng.standard_normal((C, 1, k)).astype(np.float32),
        "b": rng.standard_normal(C).astype(np.float32),
    }
    before = np.zeros((B, C, k - 1), np.float32)
    if past:
        before = feeds["past"] = rng.standard_normal((B, C, k - 1)).astype(np.float32)
    full = torch.from_numpy(np.concatenate([before, feeds["x"]], axis=2))
    y = torch.nn.functional.conv1d(
        full, torch.from_numpy(feeds["w"]), torch.from_numpy(feeds["b"]), groups=C
    )
    want = {"y": torch.nn.functional.silu(y).numpy(), "present": full.numpy()[:, :, -(k - 1) :]}
    g, p = rg.import_onnx(model)
    _check(rg.compile(g, target="reference", params=p).run(feeds), want)
    m = rg.compile(g, target="onnx", params=p)
    _check(m.run(feeds), want)
    _check(_ort_file(m.save(tmp_path / "conv.onnx"), feeds), want)


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_embedding_turns_pairs_by_their_positions_angle(interleaved: int) -> None:
    """Rotary embedding as complex numbers: each pair of entries ``(x1, x2)`` times
    ``exp(i p w_k)`` for the row's position ``p`` and pair ``k`` (the caches hold
    ``cos(p w_k)``, ``sin(p w_k)``), 6 of 8 entries turned, on 19 steps of 2 rows whose
    positions start at different offsets; the reference and onnxruntime."""
    F = TensorProto.FLOAT
    B, H, T, D, rot, P = 2, 3, 19, 8, 6, 64
    inputs = [
        helper.make_tensor_value_info("x", F, ["B", H, "T", D]),
        helper.make_tensor_value_info("pos", TensorProto.INT64, ["B", "T"]),
    ]
    w = 10000.0 ** (-np.arange(rot // 2) / (rot // 2))
    angle = np.arange(P)[:, None] * w[None, :]
    caches = [numpy_helper.from_array(f(angle).astype(np.float32), n)
              for n, f in (("cos", np.cos), ("sin", np.sin))]  # fmt: skip
    node = helper.make_node(
        "RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"], interleaved=interleaved,
        rotary_embedding_dim=rot,
    )  # fmt: skip
    model = helper.make_model(
        helper.make_graph(
            [node], "rope", inputs, [helper.make_tensor_value_info("y", F, None)], caches
        ),
        opset_imports=[helper.make_opsetid("", 23)],
    )
    rng = np.random.default_rng(7)
    x = rng.standard_normal((B, H, T, D)).astype(np.float32)
    pos = np.stack([np.arange(T), np.arange(T) + 30]).astype(np.int64)
    turned = x[..., :rot]
    if interleaved:
        z = turned[..., 0::2] + 1j * turned[..., 1::2]
    else:
        z = turned[..., : rot // 2] + 1j * turned[..., rot // 2 :]
    z = z * np.exp(1j * pos[:, None, :, None] * w)
    parts = np.stack([z.real, z.imag], -1).reshape(turned.shape) if interleaved else (
        np.concatenate([z.real, z.imag], -1)
    )  # fmt: skip
    want = {"y": np.concatenate([parts, x[..., rot:]], -1).astype(np.float32)}
    g, p = rg.import_onnx(model)
    for target in ("reference", "onnx"):
        _check(rg.compile(g, target=target, params=p).run({"x": x, "pos": pos}), want)


def test_attention_streams_one_query_step_at_a_time() -> None:
    """The step model of an imported causal Attention: each call takes one query step
    ``(B, H, d)``, the memory ``K``, ``V`` and the step counter (its state), and gives what
    the whole-sequence model gives at that step."""
    g, p = rg.import_onnx(_attention_model(4, 2, 8, 9, is_causal=1))
    rng = np.random.default_rng(0)
    B, T = 2, 9
    Q = rng.standard_normal((B, 4, T, 8)).astype(np.float32)
    K, V = (rng.standard_normal((B, 2, 9, 8)).astype(np.float32) for _ in range(2))
    whole = rg.compile(g, target="onnx", params=p).run({"Q": Q, "K": K, "V": V})["Y"]
    s = rg.compile(g, target="onnx", params=p, mode="step", interface="graph")
    carried = s.initial_states(batch=B)
    for t in range(T):
        out = s.run({"Q": Q[:, :, t], "K": K, "V": V, **carried})
        carried = {k: out[f"{k}_final"] for k in s.state_names}
        np.testing.assert_allclose(out["Y"], whole[:, :, t], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", [TensorProto.INT8, TensorProto.UINT16])
def test_small_integers_only_compared_are_read_as_floats(kind: int, tmp_path) -> None:
    """An int8 or uint16 input that only comparisons read compares exactly as floats (every
    float holds them): imported, its drop-in and saved file take the integers and give
    the bools onnxruntime gives; an input that arithmetic reads stays refused."""
    x = helper.make_tensor_value_info("x", kind, ["T", "B", 4])
    y = helper.make_tensor_value_info("y", kind, ["T", "B", 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.BOOL, None) for n in ("gt", "eq")]
    nodes = [helper.make_node("Greater", ["x", "y"], ["gt"]),
             helper.make_node("Equal", ["x", "y"], ["eq"])]  # fmt: skip
    model = helper.make_model(
        helper.make_graph(nodes, "cmp", [x, y], outs), opset_imports=[helper.make_opsetid("", 19)]
    )
    dtype = helper.tensor_dtype_to_np_dtype(kind)
    info = np.iinfo(dtype)
    rng = np.random.default_rng(0)
    feeds = {n: rng.integers(info.min, info.max, (5, 3, 4), endpoint=True).astype(dtype)
             for n in ("x", "y")}  # fmt: skip
    feeds["y"][0] = feeds["x"][0]  # (some equal)
    want = _ort_file_model(model, feeds)
    g, p = rg.import_onnx(model)
    m = rg.compile(g, target="onnx", params=p)
    _check(m.run(feeds), want)
    _check(_ort_file(m.save(tmp_path / "cmp.onnx"), feeds), want)
    model.graph.node.append(helper.make_node("Add", ["x", "y"], ["s"]))
    model.graph.output.append(helper.make_tensor_value_info("s", kind, None))
    with pytest.raises(rg.ModelImportError, match="would not wrap"):
        rg.import_onnx(model)


def test_attention_over_a_memory_of_any_length(tmp_path) -> None:
    """Keys and values of a named length ``S`` (an encoder's outputs): one compiled model
    attends over memories of 5 and 12 positions, as PyTorch's attention does, in the
    saved file too; what needs the positions counted (a causal limit) is refused by name."""
    torch = pytest.importorskip("torch")
    model = _attention_model(6, 2, 8, "S")
    g, p = rg.import_onnx(model)
    m = rg.compile(g, target="onnx", params=p)
    path = m.save(tmp_path / "cross.onnx")
    rng = np.random.default_rng(4)
    for S in (5, 12):
        feeds = {
            "Q": rng.standard_normal((2, 6, 7, 8)).astype(np.float32),
            "K": rng.standard_normal((2, 2, S, 8)).astype(np.float32),
            "V": rng.standard_normal((2, 2, S, 8)).astype(np.float32),
        }
        t = {k: torch.from_numpy(v) for k, v in feeds.items()}
        want = {"Y": torch.nn.functional.scaled_dot_product_attention(
            t["Q"], t["K"], t["V"], enable_gqa=True).numpy()}  # fmt: skip
        _check(rg.compile(g, target="reference", params=p).run(feeds), want)
        _check(m.run(feeds), want)
        _check(_ort_file(path, feeds), want)
    with pytest.raises(rg.ModelImportError, match="need a fixed number of keys"):
        rg.import_onnx(_attention_model(6, 2, 8, "S", is_causal=1))


def _static_model(dims: list) -> object:
    """No op over time; ops along the first two axes and a rank-1 input: read whole."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [5])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "s")]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "g"], ["n"], axis=0, epsilon=1e-3),
        helper.make_node("Add", ["n", "b"], ["nb"]),
        helper.make_node("Softmax", ["nb"], ["y"], axis=1),
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),  # every axis
    ]
    g = numpy_helper.from_array(
        np.random.default_rng(5).normal(size=(3, 4, 5)).astype("float32"), "g"
    )
    return helper.make_model(
        helper.make_graph(nodes, "static", [x, b], outs, [g]),
        opset_imports=[helper.make_opsetid("", 18)],
    )


def test_a_model_with_no_op_over_time_is_read_whole_on_every_engine(tmp_path) -> None:
    from onnx.reference import ReferenceEvaluator

    model = _static_model([3, 4, 5])
    rng = np.random.default_rng(6)
    feeds = {"x": rng.normal(size=(3, 4, 5)).astype("float32"),
             "b": rng.normal(size=5).astype("float32")}  # fmt: skip
    want = dict(zip(["y", "s"], ReferenceEvaluator(model).run(None, feeds), strict=True))
    g, p = rg.import_onnx(model)
    assert g.meta["onnx"]["layout"] == "whole"
    for target in ("reference", "onnx", "tvm"):
        m = rg.compile(g, target=target, params=p)
        got = m.run(feeds)
        assert list(got) == ["y", "s"]
        for k in want:
            assert got[k].shape == want[k].shape, (target, k)
            np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=target)
    path = rg.compile(g, target="onnx", params=p).save(tmp_path / "swap.onnx")
    sess = ort.InferenceSession(str(path))
    assert [(i.name, i.shape) for i in sess.get_inputs()] == [("x", [3, 4, 5]), ("b", [5])]
    for k, v in zip(["y", "s"], sess.run(None, feeds), strict=True):
        np.testing.assert_allclose(v, want[k], rtol=1e-5, atol=1e-5, err_msg=k)
    with pytest.raises(rg.InputError, match=r"'x' must have shape \(3, 4, 5\), got \(3, 4\)"):
        rg.compile(g, target="reference", params=p).run({**feeds, "x": feeds["x"][..., 0]})


def test_reading_whole_is_chosen_only_where_it_can_be() -> None:
    model = _static_model([3, 4, 5])
    with pytest.raises(
        rg.ModelImportError,
        match="LayerNormalization node 'n': it works along the time or batch axis",
    ):
        rg.import_onnx(model, layout="sequence")
    # symbolic sizes: not one row; auto gives the sequence reading's reason
    with pytest.raises(rg.ModelImportError, match="every size must be fixed"):
        rg.import_onnx(_static_model(["T", 4, 5]), layout="whole")
    with pytest.raises(
        rg.ModelImportError,
        match="LayerNormalization node 'n': it works along the time or batch axis",
    ):
        rg.import_onnx(_static_model(["T", 4, 5]))
    # a model with an op over time is never read whole
    lstm = ALL_CASES["test_lstm_defaults"].model
    with pytest.raises(rg.ModelImportError, match="runs over time"):
        rg.import_onnx(lstm, layout="whole")
    assert "layout" not in rg.import_onnx(lstm)[0].meta["onnx"]
    with pytest.raises(ValueError, match="layout must be"):
        rg.import_onnx(model, layout="columns")


def _classifier() -> object:
    """An MLP head over a batch of any size ``N``: no op over time, inputs ``(N, 2, 3)``."""
    rng = np.random.default_rng(8)
    weights = [
        numpy_helper.from_array(rng.normal(size=s).astype("float32"), n)
        for n, s in (("W1", (5, 6)), ("b1", (5,)), ("W2", (5, 4)), ("b2", (1, 4)))
    ]
    shape = numpy_helper.from_array(np.array([-1, 6], np.int64), "flat")
    nodes = [
        helper.make_node("Reshape", ["x", "flat"], ["f"]),
        helper.make_node("Gemm", ["f", "W1", "b1"], ["h"], transB=1, alpha=0.5),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W2", "b2"], ["z"], beta=2.0),
        helper.make_node("Softmax", ["z"], ["y"], axis=1),
        helper.make_node("ArgMax", ["z"], ["k"], axis=-1, keepdims=0),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    outs = [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4]),
        helper.make_tensor_value_info("k", TensorProto.INT64, ["N"]),
    ]
    return helper.make_model(
        helper.make_graph(nodes, "head", [x], outs, [*weights, shape]),
        opset_imports=[helper.make_opsetid("", 18)],
    )


def test_a_classifier_over_a_batch_of_any_size_is_read_as_rows(tmp_path) -> None:
    from onnx.reference import ReferenceEvaluator

    model = _classifier()
    g, p = rg.import_onnx(model)
    assert g.meta["onnx"]["layout"] == "rows"
    path = rg.compile(g, target="onnx", params=p).save(tmp_path / "head.onnx")
    sess = ort.InferenceSession(str(path))
    assert [(i.name, i.shape) for i in sess.get_inputs()] == [("x", ["N", 2, 3])]
    models = {t: rg.compile(g, target=t, params=p) for t in ("reference", "onnx", "tvm")}
    for n in (1, 5):
        feeds = {"x": np.random.default_rng(n).normal(size=(n, 2, 3)).astype("float32")}
        want = dict(zip(["y", "k"], ReferenceEvaluator(model).run(None, feeds), strict=True))
        runs = {**{t: m.run(feeds) for t, m in models.items()},
                "file": dict(zip(["y", "k"], sess.run(None, feeds), strict=True))}  # fmt: skip
        for target, got in runs.items():
            assert list(got) == ["y", "k"], target
            np.testing.assert_allclose(got["y"], want["y"], rtol=1e-5, atol=1e-6, err_msg=target)
            assert got["k"].tolist() == want["k"].tolist(), target
    with pytest.raises(rg.InputError, match=r"'x' must have shape \('N', 2, 3\), got \(4, 6\)"):
        models["reference"].run({"x": np.zeros((4, 6), "float32")})
    # along the batch axis: not rows (read whole, its sizes fixed, when they are)
    bad = _classifier()
    bad.graph.node[4].attribute[0].i = 0  # Softmax over the batch
    with pytest.raises(
        rg.ModelImportError, match=r"Softmax node '.*': it works along the time or batch axis"
    ):
        rg.import_onnx(bad, layout="rows")


def test_a_small_cnn_over_a_batch_of_images_is_read_as_rows(tmp_path) -> None:
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(9)
    inits = [
        numpy_helper.from_array(rng.normal(size=s).astype("float32"), n)
        for n, s in (("K", (4, 2, 3, 3)), ("kb", (4,)), ("D", (3, 4 * 3 * 2)), ("db", (3,)))
    ]
    nodes = [
        helper.make_node("Conv", ["x", "K", "kb"], ["c"], pads=[1, 1, 1, 1], strides=[1, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["m"], ["a"], kernel_shape=[1, 2], pads=[0, 0, 0, 1]),
        helper.make_node("Flatten", ["a"], ["f"]),
        helper.make_node("Gemm", ["f", "D", "db"], ["y"], transB=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    model = helper.make_model(
        helper.make_graph(nodes, "cnn", [x], [y], inits),
        opset_imports=[helper.make_opsetid("", 18)],
    )
    g, p = rg.import_onnx(model)
    assert g.meta["onnx"]["layout"] == "rows"
    feeds = {"x": rng.normal(size=(3, 2, 6, 8)).astype("float32")}
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    for target in ("reference", "onnx", "tvm"):
        got = rg.compile(g, target=target, params=p).run(feeds)["y"]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=target)


def test_compile_verb_reads_a_model_in_the_layout_asked_for(tmp_path, capsys) -> None:
    from rnngraph.tools.cli import main

    original, fixed = tmp_path / "head.onnx", tmp_path / "head2.onnx"
    original.write_bytes(_classifier().SerializeToString())
    model = _classifier()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2  # (N = 2 in the file)
    fixed.write_bytes(model.SerializeToString())
    feeds = {"x": np.random.default_rng(2).normal(size=(2, 2, 3)).astype("float32")}
    outs = {}
    for key, spec in (
        ("auto", original),
        ("rows", f"{original}:rows"),
        ("whole", f"{fixed}:whole"),
    ):
        out = tmp_path / f"{key}_rnngraph.onnx"
        assert main(["compile", str(spec), "--target", "onnx", "-o", str(out)]) == 0
        sess = ort.InferenceSession(str(out))
        outs[key] = sess.run(None, feeds), [i.shape for i in sess.get_inputs()]
    assert outs["auto"][1] == outs["rows"][1] == [["N", 2, 3]]
    assert outs["whole"][1] == [[2, 2, 3]]  # (read whole: its sizes are the file's)
    for key in ("rows", "whole"):
        np.testing.assert_allclose(outs[key][0][0], outs["auto"][0][0], rtol=1e-6)
    out = str(tmp_path / "refused.onnx")
    assert main(["compile", f"{original}:whole", "--target", "onnx", "-o", out]) != 0
    assert "every size must be fixed" in capsys.readouterr().err
    assert main(["compile", f"{original}:columns", "--target", "onnx", "-o", out]) != 0
    assert "the layout after ':' is one of sequence, rows, whole" in capsys.readouterr().err
