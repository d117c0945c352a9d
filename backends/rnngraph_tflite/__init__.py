"""The TensorFlow Lite backend: a quantised graph's step as a fully integer flatbuffer.

``rg.compile(qg, target="tflite", params=qp, mode="step")`` for a graph made by
``rg.quantize`` (TFLite's all-int8 scheme: ``states="int8", vectors="int8"``) writes
the step with TFLite's builtin integer ops (``FULLY_CONNECTED`` with int8 weights per
output channel and int32 biases, ``ADD``, ``SUB``, ``MUL``, ``LOGISTIC``, ``TANH``,
``STRIDED_SLICE``, ``CONCATENATION``, ...), runs it in LiteRT (``ai-edge-litert``),
and saves the ``.tflite`` file for microcontrollers (TFLite Micro) and Arm's Vela
compiler for Ethos-U NPUs. Needs the ``edge`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.errors import CompileError
from rnngraph_tflite._build import RULES, build_step
from rnngraph_tflite._model import TfliteModel

__all__ = ["RULES", "TfliteModel", "backend"]


def backend(
    program: Any,
    params: Mapping[str, np.ndarray] | None,
    *,
    mode: str = "sequence",
    batch: int = 1,
    **options: Any,
) -> TfliteModel:
    """The step of ``program``'s quantised graph as a TFLite model (``batch`` rows in the
    saved file; ``run`` resizes to the rows it is given)."""
    if options:
        raise CompileError(f"the tflite target takes mode= and batch=, got {sorted(options)}")
    if mode != "step":
        raise CompileError(
            "the tflite target writes a step model (one step, states in and out): "
            "compile with mode='step'"
        )
    graph = program.graph
    if not any(n.op == "fake_quant" for n in graph.nodes()):
        raise CompileError(
            f"graph {graph.name!r} is not quantised: the tflite target takes the graph "
            "rg.quantize(g, params, calibration, states='int8', vectors='int8') returns"
        )
    from rnngraph.autodiff.windows import unit_delay_form

    unit = unit_delay_form(graph).graph  # every delayed read a state of delay 1
    step = build_step(unit, params or {}, batch)
    return TfliteModel(program, step.build(), step.grids, batch)


backend.scope = "quantised steps (rg.quantize; compile with mode='step')"  # type: ignore[attr-defined]
