"""Step models on TVM: one step in, the carried values in and out (streaming).

The sequence kernel serves as the step: a one-step sequence whose delayed
reads take the carried values as their values before step 0. Every delayed
read of a signal carries the last ``d`` values of what it reads (a state
one, a tap ``d`` steps back ``d``: :func:`rnngraph.program.schedule.step_slots`,
the same names as the ONNX step model's); after the step the read node's
new value becomes the newest and the others age by one. Reads ahead
(look-ahead, backward recurrences) and sums over steps have no step model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import CompileError
from rnngraph.ops.random import seeded
from rnngraph.program.schedule import Read, StateSlot, step_slots
from rnngraph.runtime.arguments import carried_initial, step_feeds, stream
from rnngraph_tvm._model import TvmModel

__all__ = ["TvmStepModel"]


class TvmStepModel:
    """``rg.compile(graph, target="tvm", mode="step")``: ``run``/``advance``/``stream``
    with the conventions of the ONNX step model."""

    def __init__(self, model: TvmModel) -> None:
        self.model, self.graph, self.mode = model, model.graph, "step"
        self.program = model.program
        self.dtype = model.dtype
        g, p = self.graph.nx_graph, model.program
        if p.post:
            name = g.nodes[p.post[0]]["name"]
            raise CompileError(
                f"node {name!r} sums over every step; a step model sees one step at a time"
            )
        self.slots: list[StateSlot] = step_slots(p)
        self.by_read: dict[Read, list[StateSlot]] = {}
        for s in self.slots:  # newest first
            self.by_read.setdefault(s.read, []).append(s)
        self.state_names = [s.name for s in self.slots]

    def run(
        self,
        inputs: Mapping[str, Any],
        *,
        initial_states: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> dict[str, np.ndarray]:
        """One step: inputs ``(B, ...)`` and carried values (in ``inputs`` or
        ``initial_states``, else their initial values); outputs ``(B, ...)`` and
        ``"<carried>_final"``, the carried values for the next step."""
        step, carried = step_feeds(
            self.graph,
            self.slots,
            inputs,
            seeded(self.graph, initial_states, seed),
            self.model.params,
            self.model.dtype,
        )
        per_seq = self.graph.per_sequence_inputs  # (given whole, not as one step)
        step = {k: v[0] if k in per_seq else v for k, v in step.items()}
        past = {}  # each read's values before the step, oldest first
        for read, group in self.by_read.items():
            values = [carried[s.name] for s in reversed(group)]
            past[read] = values[0] if len(values) == 1 else np.stack(values)
        sources = sorted({read.source for read in self.by_read})
        out, now = self.model.execute(step, past=past, last=sources)
        result = {k: v[0] for k, v in out.items() if not k.endswith("_final")}
        for read, group in self.by_read.items():
            newer = [now[read.source], *(carried[s.name] for s in group[:-1])]
            for s, value in zip(group, newer, strict=True):
                result[s.output] = value
        return result

    def advance(
        self, inputs: Mapping[str, Any], carried: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """One step from ``carried``; returns ``(outputs, carried for the next)``."""
        out = self.run(inputs, initial_states=carried)
        return out, {k: out[f"{k}_final"] for k in self.state_names}

    def stream(
        self,
        inputs: Mapping[str, Any],
        initial_states: Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Feed time-major ``(T, B, ...)`` inputs one step at a time (as a sequence model)."""
        initial_states = seeded(self.graph, initial_states, seed)
        return stream(self.advance, self.graph, inputs, initial_states, self.dtype)

    def export(self, path: str | os.PathLike[str], **options: Any) -> Path:
        """The sequence model's library (:meth:`TvmModel.export`, same options): deployed,
        a step is a call with ``T = 1`` whose final states are passed back as the next
        call's ``initial_states`` (for states read one step back; taps of more steps
        carry values only this step model keeps)."""
        return self.model.export(path, **options)

    save = export

    def initial_states(self, batch: int = 1) -> dict[str, np.ndarray]:
        """The carried values before the first step (``init="input"`` states left out)."""
        g, p, ft = self.graph, self.model.params, self.model.dtype
        initial = (carried_initial(g, s.read, p, batch, ft) for s in self.slots)
        return {s.name: v for s, v in zip(self.slots, initial, strict=True) if v is not None}
