"""Losses as graphs: each adds a target input and a per-step loss output to a copy of a graph.

A loss is averaged over every valid step and batch row (``sequence_lens``
ends rows early), so :func:`value_and_grad` feeds the per-step loss output a
cotangent of ``1 / N`` and runs the adjoint graph.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("reg")
>>> g.output("y", rg.cells.rnn(g.input("x", 2), 3, name="r"))
>>> p = g.init_params(seed=0)
>>> xs, ts = np.ones((4, 2, 2)), np.zeros((4, 2, 3))
>>> loss, grads = value_and_grad(g, {"x": xs, "t": ts}, p, loss=mse("t"))
>>> sorted(grads)
['r.B', 'r.R', 'r.W', 'r.h', 'x']
>>> bool(np.isclose(loss, np.mean(rg.run(g, {"x": xs}, p)["y"] ** 2)))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngraph import ops
from rnngraph.adjoint import vjp
from rnngraph.errors import GraphError, InputError
from rnngraph.graph import Graph, Value
from rnngraph.interpreter import run

__all__ = ["Loss", "mse", "one_hot", "softmax_cross_entropy", "value_and_grad"]

LOSS_OUTPUT = "loss"


@dataclass(frozen=True)
class Loss:
    """A per-step loss comparing ``output`` (default: the only output) with input ``target``."""

    kind: str
    target: str
    output: str | None = None

    def attach(self, graph: Graph) -> Graph:
        """A copy of ``graph`` with the target input and a ``"loss"`` output ``(B, 1)`` per step."""
        key = f"loss:{self.kind}:{self.target}:{self.output}"
        cached = graph._cache.get(key)
        if cached is not None and cached[0] == graph._version:
            return cached[1]
        outputs = graph.outputs
        name = self.output or (next(iter(outputs)) if len(outputs) == 1 else None)
        if name is None or name not in outputs:
            raise GraphError(
                f"the loss needs output=<name> (one of {sorted(outputs)}) for graph {graph.name!r}"
            )
        g = graph.copy(f"{graph.name}.{self.kind}")
        y = g.value(g.output_nodes()[name])
        t = g.input(self.target, y.type.row_shape)
        per_step = _LOSSES[self.kind](y, t)
        g.output(LOSS_OUTPUT, per_step)
        graph._cache[key] = (graph._version, g)
        return g


def _mse(y: Value, t: Value) -> Value:
    d = y - t
    return ops.reduce_mean(d * d, keepdims=True)


def _softmax_xent(y: Value, t: Value) -> Value:
    return -ops.reduce_sum(t * ops.log_softmax(y), keepdims=True)


_LOSSES = {"mse": _mse, "softmax_cross_entropy": _softmax_xent}


def mse(target_name: str = "t", *, output: str | None = None) -> Loss:
    """Mean squared error over features, averaged over valid steps and rows."""
    return Loss("mse", target_name, output)


def softmax_cross_entropy(target_name: str = "t", *, output: str | None = None) -> Loss:
    """``-sum_c t_c log softmax(y)_c`` per step; targets are probabilities (:func:`one_hot`)."""
    return Loss("softmax_cross_entropy", target_name, output)


def one_hot(labels: Any, classes: int, dtype: Any = np.float32) -> np.ndarray:
    """Integer labels ``(T, B)`` as one-hot targets ``(T, B, classes)``."""
    lab = np.asarray(labels)
    if lab.min(initial=0) < 0 or lab.max(initial=0) >= classes:
        raise InputError(f"labels must lie in [0, {classes}), got {lab.min()}..{lab.max()}")
    return np.eye(classes, dtype=dtype)[lab]


def _valid_count(T: int, B: int, lens: Any) -> int:
    return int(T * B if lens is None else np.minimum(np.asarray(lens), T).sum())


def loss_value(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    loss: Loss,
    **kw: Any,
) -> float:
    """The loss alone (no gradient)."""
    g = loss.attach(graph)
    out = run(g, inputs, params, **kw)["loss"]
    n = _valid_count(out.shape[0], out.shape[1], kw.get("sequence_lens"))
    return float(out.sum() / max(n, 1))


def value_and_grad(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    loss: Loss,
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = None,
) -> tuple[float, dict[str, np.ndarray]]:
    """The mean loss over valid steps and rows, and its gradients (as :func:`rnngraph.vjp`)."""
    g = loss.attach(graph)
    first = np.asarray(next(iter(inputs.values())))
    T, B = first.shape[:2]
    n = max(_valid_count(T, B, sequence_lens), 1)
    cot = np.full((T, B, 1), 1.0 / n, dtype=np.float64 if dtype == "float64" else first.dtype)
    if not np.issubdtype(cot.dtype, np.floating):
        cot = cot.astype(np.float32)
    outs, grads = vjp(
        g,
        inputs,
        params,
        cotangents={LOSS_OUTPUT: cot},
        sequence_lens=sequence_lens,
        initial_states=initial_states,
        dtype=dtype,
    )
    grads.pop(loss.target, None)
    return float(outs[LOSS_OUTPUT].sum() / n), grads
