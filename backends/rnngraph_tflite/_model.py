"""A compiled TFLite step model: run in LiteRT, saved as a ``.tflite`` flatbuffer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import BackendUnavailableError, InputError
from rnngraph.files import atomic_write
from rnngraph.ir.registry import REFERENCE
from rnngraph_tflite._build import Grid

__all__ = ["TfliteModel"]


def _quantise(x: np.ndarray, grid: Grid) -> np.ndarray:
    """A float input on the model's grid: the ``quantize`` op's semantics."""
    return np.asarray(REFERENCE["quantize"](grid.attrs(), np.asarray(x, np.float32)))


def _dequantise(q: np.ndarray, grid: Grid) -> np.ndarray:
    """An integer output as floats: the ``dequantize`` op's semantics."""
    return np.asarray(REFERENCE["dequantize"]({**grid.attrs(), "float_dtype": np.float32}, q))


class TfliteModel:
    """One step of a quantised graph in LiteRT (``mode="step"``).

    ``run(inputs)`` takes one step ``(B, *features)`` of each input and the states
    (by name, or in ``initial_states``; missing ones start from zeros), quantises them
    with the model's input grids, invokes the interpreter and returns the outputs and
    ``"<state>_final"`` as floats. ``save(path)`` writes the ``.tflite`` file (int8 in,
    int8 out: the grids are in its tensors' quantisation parameters) for LiteRT on a
    device or Arm's Vela compiler for Ethos-U NPUs.
    """

    def __init__(self, program: Any, flat: bytes, grids: Mapping[str, Grid], batch: int) -> None:
        self.program, self.graph = program, program.graph
        self.mode = "step"
        self.flatbuffer, self.grids, self.batch = flat, dict(grids), batch
        self.state_names = list(self.graph.states)
        self._interp: Any = None
        self._rows = 0

    def _interpreter(self, rows: int) -> Any:
        if self._interp is None or rows != self._rows:
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError as e:
                raise BackendUnavailableError(
                    f"running a TFLite model needs LiteRT: pip install 'rnngraph[edge]' ({e})"
                ) from e
            interp = Interpreter(model_content=self.flatbuffer)
            for d in interp.get_input_details():
                if d["shape"][0] != rows:
                    interp.resize_tensor_input(d["index"], [rows, *d["shape"][1:]])
            interp.allocate_tensors()
            self._interp, self._rows = interp, rows
        return self._interp

    def initial_states(self, batch: int = 1) -> dict[str, np.ndarray]:
        return {
            s: np.zeros((batch, *t.row_shape), np.float32) for s, t in self.graph.states.items()
        }

    def run(
        self, inputs: Mapping[str, Any], *, initial_states: Mapping[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """One step; float in, float out (see the class docstring)."""
        given = {**dict(initial_states or {}), **dict(inputs)}
        unknown = sorted(set(given) - set(self.graph.inputs) - set(self.state_names))
        if unknown:
            raise InputError(
                f"the TFLite step model of {self.graph.name!r} has no inputs {unknown}; it "
                f"takes {sorted(self.graph.inputs)} and states {self.state_names}"
            )
        missing = sorted(set(self.graph.inputs) - set(given))
        if missing:
            raise InputError(f"the TFLite step model needs inputs {missing}")
        rows = {np.shape(v)[0] for v in given.values()}
        if len(rows) != 1:
            raise InputError(f"inputs disagree on the batch size: {sorted(rows)}")
        B = rows.pop()
        feeds = {**self.initial_states(B), **given}
        interp = self._interpreter(B)
        for d in interp.get_input_details():
            name = d["name"]
            arr = np.asarray(feeds[name])
            want = (B, *d["shape"][1:])
            if arr.shape != tuple(want):
                raise InputError(
                    f"{name!r} must have shape {tuple(want)} (one step), got {arr.shape}"
                )
            interp.set_tensor(d["index"], _quantise(arr, self.grids[name]))
        interp.invoke()
        return {
            d["name"]: _dequantise(interp.get_tensor(d["index"]), self.grids[d["name"]])
            for d in interp.get_output_details()
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the ``.tflite`` flatbuffer (atomically)."""
        p = Path(path)
        if p.suffix != ".tflite":
            p = p.with_suffix(".tflite")
        return Path(atomic_write(p, self.flatbuffer))
