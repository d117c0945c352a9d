"""Gradient graphs on other engines: exported to ONNX, and against PyTorch autograd."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

T, B = 7, 3


def _data(g: rg.Graph, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((T, B, zoo.I)).astype(np.float32)
    out = rg.run(g, {"x": xs}, zoo.params_for(g))
    cy = rng.standard_normal(out["y"].shape).astype(np.float32)
    return xs, cy


@pytest.mark.parametrize("name", ["lstm_peephole_clip", "gru", "bidirectional_lstm", "narx"])
def test_adjoint_graph_runs_in_onnxruntime(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    xs, cy = _data(g)
    m = rg.compile(rg.adjoint(g), target="onnx", params=p)
    for kw in ({}, {"sequence_lens": np.array([7, 4, 1])}):
        got = m.run({"x": xs, "cot:y": cy}, **kw)
        _, want = rg.vjp(g, {"x": xs}, p, cotangents={"y": cy}, **kw)
        for k in p:
            np.testing.assert_allclose(got[f"grad:{k}"], want[k], rtol=1e-4, atol=1e-5, err_msg=k)
        np.testing.assert_allclose(got["grad:x"], want["x"], rtol=1e-4, atol=1e-5)


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is a test extra (pip install .[bench])")


def _to_torch_gates(a, kind: str):
    """ONNX gate order (LSTM iofc, GRU zrh) to PyTorch's (LSTM ifco, GRU rzn)."""
    torch = _torch()
    if kind == "LSTM":
        i, o, f, c = a.chunk(4, 0)
        return torch.cat([i, f, c, o], 0)
    z, r, h = a.chunk(3, 0)
    return torch.cat([r, z, h], 0)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gradients_match_torch_autograd(kind: str) -> None:
    torch = _torch()
    H = 5
    g = rg.Graph(kind)
    cell = rg.cells.lstm if kind == "LSTM" else rg.cells.gru
    kw = {} if kind == "LSTM" else {"linear_before_reset": True}  # PyTorch's GRU
    g.output("y", cell(g.input("x", zoo.I), H, name="c", **kw))
    p = g.init_params(seed=3)
    xs, cy = _data(g, seed=4)
    _, grads = rg.vjp(g, {"x": xs}, p, cotangents={"y": cy})

    m = getattr(torch.nn, kind)(zoo.I, H)
    n = 4 if kind == "LSTM" else 3
    W, R, Bias = (torch.tensor(p[f"c.{k}"]) for k in "WRB")
    with torch.no_grad():
        m.weight_ih_l0.copy_(_to_torch_gates(W, kind))
        m.weight_hh_l0.copy_(_to_torch_gates(R, kind))
        m.bias_ih_l0.copy_(_to_torch_gates(Bias[: n * H], kind))
        m.bias_hh_l0.copy_(_to_torch_gates(Bias[n * H :], kind))
    x = torch.tensor(xs, requires_grad=True)
    y, _ = m(x)
    (y * torch.tensor(cy)).sum().backward()
    back = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}[kind]  # torch chunk order -> ONNX

    def onnx_order(t) -> np.ndarray:
        parts = t.detach().chunk(n, 0)
        return torch.cat([parts[i] for i in back], 0).numpy()

    np.testing.assert_allclose(grads["c.W"], onnx_order(m.weight_ih_l0.grad), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(grads["c.R"], onnx_order(m.weight_hh_l0.grad), atol=1e-5, rtol=1e-4)
    want_b = np.concatenate([onnx_order(m.bias_ih_l0.grad), onnx_order(m.bias_hh_l0.grad)])
    np.testing.assert_allclose(grads["c.B"], want_b, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(grads["x"], x.grad.numpy(), atol=1e-5, rtol=1e-4)
