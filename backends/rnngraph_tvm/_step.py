"""Step models on TVM: one step in, the carried values in and out (streaming).

The sequence kernel serves as the step: a one-step sequence whose initial
states are the carried values, and whose final states are the next ones.
That is exact when every carried value is a state read one step back; a
graph that reads further back outside its states (finite-impulse taps,
delays of 2 or more) or ahead is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.errors import CompileError, InputError
from rnngraph.io import initial_value, np_dtype, stream
from rnngraph_tvm._model import TvmModel

__all__ = ["TvmStepModel"]


class TvmStepModel:
    """``rg.compile(graph, target="tvm", mode="step")``: ``run``/``advance``/``stream``
    with the conventions of the ONNX step model."""

    def __init__(self, model: TvmModel) -> None:
        self.model, self.graph, self.mode = model, model.graph, "step"
        g, p = self.graph.nx_graph, model.program
        if p.post:
            name = g.nodes[p.post[0]]["name"]
            raise CompileError(
                f"node {name!r} sums over every step; a step model sees one step at a time"
            )
        states = set(self.graph.state_nodes().values())
        for nid, reads in p.reads.items():
            for r in reads:
                if r.delay and not (nid in states and r.delay == 1):
                    raise CompileError(
                        f"node {g.nodes[nid]['name']!r} reads {g.nodes[r.source]['name']!r} "
                        f"{r.delay} step(s) {'back' if r.delay > 0 else 'ahead'}; TVM step models "
                        "carry states of delay 1 only (use target='onnx' with mode='step')"
                    )
        self.state_names = list(self.graph.states)

    def run(
        self, inputs: Mapping[str, Any], *, initial_states: Mapping[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """One step: inputs ``(B, ...)`` and carried values (in ``inputs`` or
        ``initial_states``, else their initial values); outputs ``(B, ...)`` and
        ``"<state>_final"``, the carried values for the next step."""
        given = {
            **dict(initial_states or {}),
            **{k: v for k, v in inputs.items() if k in self.graph.states},
        }
        step = {k: np.asarray(v)[None] for k, v in inputs.items() if k not in self.graph.states}
        unknown = sorted(set(step) - set(self.graph.inputs))
        if unknown:
            raise InputError(
                f"step model of {self.graph.name!r} has no inputs {unknown}; its inputs: "
                f"{sorted(self.graph.inputs)} and carried values {self.state_names}"
            )
        out = self.model.run(step, initial_states=given)
        return {k: (v if k.endswith("_final") or v.ndim == 0 else v[0]) for k, v in out.items()}

    def advance(
        self, inputs: Mapping[str, Any], carried: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """One step from ``carried``; returns ``(outputs, carried for the next)``."""
        out = self.run(inputs, initial_states=carried)
        return out, {k: out[f"{k}_final"] for k in self.state_names}

    def stream(
        self, inputs: Mapping[str, Any], initial_states: Mapping[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """Feed time-major ``(T, B, ...)`` inputs one step at a time (as a sequence model)."""
        return stream(self.advance, self.graph.outputs, inputs, initial_states)

    def initial_states(self, batch: int = 1) -> dict[str, np.ndarray]:
        """The carried values before the first step (``init="input"`` states left out)."""
        out = {}
        for name, sid in self.graph.state_nodes().items():
            read = self.model.program.reads[sid][0]
            t = self.graph.nx_graph.nodes[read.source]["type"]
            shape = (batch, *(int(d) for d in t.row_shape))
            value = initial_value(
                self.graph, read.init, self.model.params, shape, np_dtype(t.dtype, self.model.dtype)
            )
            if value is not None:
                out[name] = np.array(value)
        return out
