"""The TFLite backend: the quantised step of Elman, LSTM and GRU cells as a fully integer
flatbuffer, run in LiteRT (an independent integer implementation: TFLite's kernels)
within one quantisation step of the quantised reference, and compiled by Arm's Vela
for the Ethos-U55 with every op on the NPU."""

from __future__ import annotations

import csv
import shutil
import subprocess

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

pytest.importorskip("tflite")
pytest.importorskip("ai_edge_litert")


SCHEMES = {"int8": {"states": "int8", "vectors": "int8"}, "8x8_16": {}}
"""TFLite's all-int8 scheme, and rg.quantize's default (int16 states, as TFLite's LSTM)."""


def _quantised(build, seed: int = 7, scheme: str = "int8"):
    g = build()
    p = zoo.params_for(g, 0)
    rng = np.random.default_rng(seed)
    cal = [zoo.feeds(g, 12, 6, rng) for _ in range(2)]
    qg, qp = rg.quantize(g, p, calibration=cal, **SCHEMES[scheme])
    return g, qg, qp


def kws_cell(cell: str, hidden: int = 64):
    def build() -> rg.Graph:
        g = rg.Graph(f"kws_{cell}")
        h = getattr(rg.cells, cell)(g.input("x", 10), hidden, name="c")
        g.output("y", rg.linear(h, 12, name="out"))
        return g

    return build


DEPTH = {"stacked_gru": 2}
"""Cells whose step chains two layers: TFLite's rounding (its kernels' integer
arithmetic, not our float Q/DQ) can move the first layer's output by a step, and the
second layer's by one more."""


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("cell", ["elman", "lstm", "gru", "stacked_gru", "jordan"])
def test_the_step_in_litert_is_within_one_step_of_the_reference(cell: str, scheme: str) -> None:
    """Within a step of each output's grid; an int16 output (a state in the 8x8_16
    scheme) within a step of the int8 grids whose rounding reaches it (256 of its own)."""
    g, qg, qp = _quantised(zoo.CELLS[cell], scheme=scheme)
    m = rg.compile(qg, target="tflite", params=qp, mode="step")
    assert m.state_names == list(g.states)
    rng = np.random.default_rng(3)
    for B in (1, 4):  # (the saved model has batch 1; run resizes)
        x = rng.normal(size=(B, zoo.I)).astype(np.float32)
        states = {s: 0.3 * rng.normal(size=(B, *t.row_shape)) for s, t in g.states.items()}
        got = m.run({"x": x, **states})
        want = rg.run(qg, {"x": x[None]}, qp, initial_states=states)
        assert set(got) == set(want)
        for k, v in want.items():
            v = v[0] if k in g.outputs else v
            steps = DEPTH.get(cell, 1) * (256 if m.grids[k].kind == "int16" else 1)
            if scheme == "8x8_16" and cell == "gru":  # (two int8 roundings reach h)
                steps *= 2
            np.testing.assert_allclose(got[k], v, atol=1.001 * steps * m.grids[k].scale, err_msg=k)


def test_a_stream_of_steps_follows_the_sequence_model() -> None:
    _, qg, qp = _quantised(kws_cell("gru", 16))
    m = rg.compile(qg, target="tflite", params=qp, mode="step")
    xs = np.random.default_rng(5).normal(size=(10, 2, 10)).astype(np.float32)
    state = m.initial_states(2)
    ys = []
    for t in range(len(xs)):
        out = m.run({"x": xs[t], **state})
        state = {s: out[f"{s}_final"] for s in m.state_names}
        ys.append(out["y"])
    want = rg.run(qg, {"x": xs}, qp)["y"]
    rms = float(np.sqrt(np.mean(want**2)))
    assert float(np.sqrt(np.mean((np.array(ys) - want) ** 2))) < 0.05 * rms


def test_what_has_no_integer_step_is_named(tmp_path) -> None:
    g = zoo.CELLS["gru"]()
    p = zoo.params_for(g, 0)
    with pytest.raises(rg.CompileError, match="not quantised"):
        rg.compile(g, target="tflite", params=p, mode="step")
    _, qg, qp = _quantised(zoo.CELLS["gru"])
    with pytest.raises(rg.CompileError, match="mode='step'"):
        rg.compile(qg, target="tflite", params=qp)
    _, qc, qcp = _quantised(zoo.CELLS["clockwork"])
    with pytest.raises(rg.CompileError, match="no TFLite integer op"):
        rg.compile(qc, target="tflite", params=qcp, mode="step")
    m = rg.compile(qg, target="tflite", params=qp, mode="step")
    with pytest.raises(rg.InputError, match="has no inputs"):
        m.run({"x": np.zeros((1, zoo.I)), "bogus": np.zeros((1, 2))})
    path = m.save(tmp_path / "gru")
    assert path.suffix == ".tflite" and path.read_bytes()[4:8] == b"TFL3"


@pytest.mark.slow
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_vela_puts_every_op_of_the_step_on_the_npu(cell: str, scheme: str, tmp_path) -> None:
    vela = shutil.which("vela")
    if vela is None:
        pytest.skip("Arm's Vela is not installed (pip install 'rnngraph[edge]')")
    _, qg, qp = _quantised(kws_cell(cell), scheme=scheme)
    path = rg.compile(qg, target="tflite", params=qp, mode="step").save(tmp_path / cell)
    res = subprocess.run(
        [vela, str(path), "--accelerator-config", "ethos-u55-128", "--output-dir",
         str(tmp_path / "out")],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert "CPU operators = 0 (0.0%)" in res.stdout
    (summary,) = (tmp_path / "out").glob("*_summary_*.csv")
    row = next(csv.DictReader(summary.open()))
    assert float(row["cycles_npu"]) > 0
    assert (tmp_path / "out" / f"{cell}_vela.tflite").exists()
