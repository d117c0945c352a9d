"""Compiled models called from many threads at once, as an onnxruntime session may be.

Each kind of compiled model runs 1,000 calls from 8 threads, every call on inputs of
its own (half with lengths per row), and every result is checked against the
reference. TVM models once shared their work buffers between calls: 1 to 992 calls in
1,000 came back wrong when several threads called one model.
"""

from __future__ import annotations

from typing import Any

import pytest

import rnngraph as rg
from tests import zoo

KINDS = [
    pytest.param("reference", {}, id="reference"),
    pytest.param("onnx", {}, id="onnx"),
    pytest.param("tvm", {}, id="tvm-one-core", marks=pytest.mark.slow),
    pytest.param("tvm", {"parallel": True}, id="tvm-rows", marks=pytest.mark.slow),
    pytest.param("tvm", {"parallel": "products"}, id="tvm-products", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("target", "options"), KINDS)
@pytest.mark.parametrize("cell", ["stacked_gru", "param_initial_state"])
def test_one_model_from_eight_threads(target: str, options: dict, cell: str) -> None:
    if target == "tvm":
        pytest.importorskip("tvm")
    g = zoo.CELLS[cell]()
    p = zoo.params_for(g)
    zoo.check_threads(g, p, rg.compile(g, target=target, params=p, **options))


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_step_model_from_eight_threads(target: str) -> None:
    """Step models stream whole sequences (one call a step) from 8 threads at once."""
    if target == "tvm":
        pytest.importorskip("tvm")
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g)
    s = rg.compile(g, target=target, params=p, mode="step")
    zoo.check_threads(g, p, _Streamed(s), calls=200, lengths=False)


class _Streamed:
    """A step model behind a sequence model's ``run``: one call streams a whole sequence."""

    def __init__(self, step: Any) -> None:
        self.step = step

    def run(self, xs: dict, *, initial_states: Any = None, sequence_lens: Any = None) -> dict:
        return self.step.stream(xs, initial_states)


@pytest.mark.slow
def test_deployed_tvm_library_from_eight_threads(tmp_path: Any) -> None:
    """The exported library loaded with rnngraph_tvm.load, called from 8 threads."""
    pytest.importorskip("tvm")
    import rnngraph_tvm

    g = zoo.CELLS["param_initial_state"]()
    p = zoo.params_for(g)
    path = rg.compile(g, target="tvm", params=p).export(tmp_path / "m.so")
    zoo.check_threads(g, p, rnngraph_tvm.load(path), calls=400)
