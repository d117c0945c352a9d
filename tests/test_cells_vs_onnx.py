"""LSTM, GRU and RNN cells against ONNX's own operators (outside oracles).

onnx.reference's evaluators ignore ``sequence_lens``, so runs with lengths
are checked against onnxruntime, which implements them; runs without are
checked against both.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests.oracles import recurrent_op_model, run_onnxruntime, run_reference

T, N, I, H = 7, 3, 4, 5
TOL = 1e-5


def _stack(params: dict[str, np.ndarray], prefixes: list[str], role: str) -> np.ndarray:
    return np.stack([params[f"{p}.{role}"] for p in prefixes]).astype(np.float32)


def _case(op: str, direction: str, with_lens: bool, with_initial: bool, **kw: object) -> None:
    rng = np.random.default_rng(7)
    g = rg.Graph(op.lower())
    x = g.input("x", I)
    cell = {"LSTM": rg.cells.lstm, "GRU": rg.cells.gru, "RNN": rg.cells.rnn}[op]
    cell_kw = dict(kw)
    peep = bool(cell_kw.pop("peepholes", False))
    if op == "LSTM":
        cell_kw["peepholes"] = peep
    if "linear_before_reset" in cell_kw:
        cell_kw["linear_before_reset"] = bool(cell_kw["linear_before_reset"])
    y = cell(x, H, name="l", direction=direction, **cell_kw)
    g.output("y", y)
    params = g.init_params(seed=3)
    # Bigger-than-default weights exercise the nonlinearities away from zero.
    params = {k: (v * 2.0).astype(np.float32) for k, v in params.items()}

    prefixes = ["l.fw", "l.bw"] if direction == "bidirectional" else ["l"]
    D = len(prefixes)
    xs = rng.standard_normal((T, N, I)).astype(np.float32)
    feeds = {
        "X": xs,
        "W": _stack(params, prefixes, "W"),
        "R": _stack(params, prefixes, "R"),
        "B": _stack(params, prefixes, "B"),
    }
    inits: dict[str, np.ndarray] = {}
    # onnxruntime zeroes Y_h of a zero-length row even when an initial state is
    # given; rnngraph keeps the initial state (the row's state never updated).
    # test_zero_length_row_keeps_initial_state pins our side of that.
    lens = np.array([T, 2, 1 if with_initial else 0], dtype=np.int32)
    if with_lens:
        feeds["sequence_lens"] = lens
    states = ["h", "c"] if op == "LSTM" else ["h"]
    if with_initial:
        for s in states:
            v = rng.standard_normal((D, N, H)).astype(np.float32)
            feeds[f"initial_{s}"] = v
            for d, p in enumerate(prefixes):
                inits[f"{p}.{s}"] = v[d]
    if peep:
        feeds["P"] = _stack(params, prefixes, "P")
    attrs = {k: v for k, v in kw.items() if k in ("linear_before_reset", "clip")}
    model = recurrent_op_model(
        op,
        input_size=I,
        hidden=H,
        direction=direction,
        with_lens=with_lens,
        with_initial=with_initial,
        peepholes=peep,
        **attrs,
    )

    ours = rg.run(
        g, {"x": xs}, params, sequence_lens=lens if with_lens else None, initial_states=inits
    )
    oracles = [run_onnxruntime(model, feeds)]
    if not with_lens and "clip" not in kw:
        # onnx.reference ignores sequence_lens and clip; onnxruntime implements both.
        oracles.append(run_reference(model, feeds))
    for ref in oracles:
        Y = ref[0]  # (T, D, N, H)
        np.testing.assert_allclose(
            ours["y"], Y.transpose(0, 2, 1, 3).reshape(T, N, D * H), atol=TOL, rtol=0
        )
        for k, s in enumerate(states):
            final = ref[1 + k]  # (D, N, H)
            for d, p in enumerate(prefixes):
                np.testing.assert_allclose(ours[f"{p}.{s}_final"], final[d], atol=TOL, rtol=0)


DIRECTIONS = ["forward", "reverse", "bidirectional"]
MODES = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(("with_lens", "with_initial"), MODES)
@pytest.mark.parametrize("peepholes", [False, True])
def test_lstm_matches_onnx(
    direction: str, with_lens: bool, with_initial: bool, peepholes: bool
) -> None:
    _case("LSTM", direction, with_lens, with_initial, peepholes=peepholes)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(("with_lens", "with_initial"), MODES)
@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_gru_matches_onnx(
    direction: str, with_lens: bool, with_initial: bool, linear_before_reset: int
) -> None:
    _case("GRU", direction, with_lens, with_initial, linear_before_reset=linear_before_reset)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(("with_lens", "with_initial"), MODES)
def test_rnn_matches_onnx(direction: str, with_lens: bool, with_initial: bool) -> None:
    _case("RNN", direction, with_lens, with_initial)


def test_lstm_clip_matches_onnx() -> None:
    _case("LSTM", "forward", False, False, clip=0.5)


def test_gru_clip_matches_onnx() -> None:
    _case("GRU", "bidirectional", True, False, clip=0.7, linear_before_reset=1)


def test_zero_length_row_keeps_initial_state() -> None:
    g = rg.Graph("z")
    g.output("y", rg.cells.gru(g.input("x", I), H, name="l"))
    params = g.init_params(seed=0)
    h0 = np.random.default_rng(0).standard_normal((2, H)).astype(np.float32)
    xs = np.ones((4, 2, I), np.float32)
    out = rg.run(g, {"x": xs}, params, sequence_lens=np.array([0, 4]), initial_states={"l.h": h0})
    np.testing.assert_array_equal(out["l.h_final"][0], h0[0])
    np.testing.assert_array_equal(out["y"][:, 0], 0.0)
    assert not np.allclose(out["l.h_final"][1], h0[1])
