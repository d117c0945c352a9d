"""Output feedback for decoders: teacher forcing, free running and scheduled sampling.

A decoder reads, at step ``t``, a previous token: the target's (teacher
forcing), its own previous output (free running, as at inference), or — per
step and row — either one (scheduled sampling, Bengio et al. 2015, where the
share of teacher tokens decays over training). :class:`Feedback` builds that
input as a graph: a state holding the decoder's own previous output, and a
``where`` on a per-step mask input (1 = teacher). The feedback is a real
cycle with a delay, so gradients flow through the model's own predictions
where it runs free.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("dec")
>>> fb = Feedback(g, "prev", 4)
>>> x = fb.input(teacher=g.input("teacher", 4), mask=g.input("use_teacher", 1))
>>> y = rg.softmax(rg.linear(rg.cells.gru(x, 8, name="gru"), 4, name="out"))
>>> fb.close(y)
>>> g.output("y", y)
>>> sorted(g.inputs), sorted(g.states)
(['teacher', 'use_teacher'], ['gru.h', 'prev'])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnngraph import ops
from rnngraph.ir.graph import Graph, Value

__all__ = ["Feedback", "inverse_sigmoid_schedule", "teacher_mask"]


class Feedback:
    """The previous-token input of a decoder; see the module docstring."""

    def __init__(self, graph: Graph, name: str, shape: int | Sequence[int], init: str = "zeros"):
        self.graph = graph
        self.state = graph.state(name, shape, init)

    def input(self, *, teacher: Value, mask: Value) -> Value:
        """``teacher`` where ``mask > 0.5`` (per step and row), else the model's previous output."""
        return ops.where(ops.greater(mask, 0.5), teacher, self.state)

    def close(self, output: Value) -> None:
        """Feed ``output`` back: at the next step it is the model's previous output."""
        self.graph.assign(self.state, output)


def teacher_mask(T: int, B: int, p_teacher: float, rng: np.random.Generator) -> np.ndarray:
    """A ``(T, B, 1)`` mask: 1 (teacher) with probability ``p_teacher``, else 0 (own output)."""
    return (rng.random((T, B, 1)) < p_teacher).astype(np.float32)


def inverse_sigmoid_schedule(epoch: int, k: float = 5.0) -> float:
    """Bengio et al.'s decay of the teacher probability: ``k / (k + exp(epoch / k))``."""
    return float(k / (k + np.exp(epoch / k)))
