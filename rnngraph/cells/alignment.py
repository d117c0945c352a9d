"""Attention over a memory: Luong's dot and general scores, Bahdanau's additive one.

At each step a query ``h`` ``(B, Hq)`` (a decoder's state) scores every
position of a memory ``(B, S, Hm)`` (an encoder's outputs, usually a
per-sequence value, see ``Graph.input(..., axis=None)``); the scores' softmax
over the valid positions weighs the memory into a context ``(B, Hm)``::

    dot        e_s = scale * <m_s, h>                          (Hq = Hm)
    general    e_s = scale * <m_s, h W>                        W: (Hq, Hm)
    additive   e_s = v . tanh(m_s W_k + h W_q + b)             W_k: (Hm, A), W_q: (Hq, A)
    a = softmax(e over valid s)        context = sum_s a_s m_s

``scale`` defaults to 1 (Luong's forms); ``1 / sqrt(Hm)`` gives the scaled dot
product. With ``mask`` (``(B, S)``, true or 1 where a position is valid) the
positions past a row's memory get weight exactly 0, and a row with no valid
position gets a zero context. The additive form's key projection ``m_s W_k``
depends on the memory only, so a per-sequence memory has it computed once per
sequence, not at every step.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("att")
>>> memory = g.input("memory", ("S", 4), axis=None)
>>> h = g.input("h", 4)
>>> ctx, weights = rg.cells.attention(h, memory, kind="dot", name="att")
>>> ctx.shape, weights.shape
(('B', 4), ('B', 'S'))
>>> g.output("ctx", ctx)
>>> g.output("weights", weights)
>>> m = np.zeros((1, 3, 4)); m[0, :, 0] = [1.0, 2.0, 3.0]
>>> out = rg.run(g, {"memory": m, "h": np.zeros((1, 1, 4))})
>>> out["weights"][0, 0].round(3).tolist()  # equal scores: equal weights
[0.333, 0.333, 0.333]
"""

from __future__ import annotations

from typing import Any

from rnngraph import ops
from rnngraph.cells._common import check_size
from rnngraph.errors import ShapeError
from rnngraph.ir.graph import Value, as_value
from rnngraph.ir.types import BATCH

__all__ = ["KINDS", "attention"]

KINDS = ("dot", "general", "additive")

NEG = -1e30
"""The score of a masked position: its exponential is exactly 0 in float32 and float64."""


def attention(
    h: Value,
    memory: Value,
    *,
    kind: str = "additive",
    mask: Value | None = None,
    units: int | None = None,
    scale: float = 1.0,
    name: str = "attention",
) -> tuple[Value, Value]:
    """The context ``(B, Hm)`` and the weights ``(B, S)`` of query ``h`` over ``memory``.

    Parameters
    ----------
    h : Value
        The query, ``(B, Hq)``.
    memory : Value
        ``(B, S, Hm)``; ``S`` may be symbolic (a per-sequence input's length).
    kind : {"dot", "general", "additive"}
        See the module docstring.
    mask : Value, optional
        ``(B, S)``: true (or nonzero) where a memory position is valid. A memory made
        by :func:`rnngraph.whole` is masked past each row's length without one.
    units : int, optional
        The additive form's hidden size ``A`` (default ``Hm``).
    scale : float
        Multiplies the dot and general scores.
    name : str
        Prefix of the params: ``<name>.W`` (general); ``<name>.Wk``, ``<name>.Wq``,
        ``<name>.b``, ``<name>.v`` (additive).
    """
    if kind not in KINDS:
        raise ValueError(f"attention {name!r}: kind must be one of {KINDS}, got {kind!r}")
    g = h.graph
    if len(h.shape) != 2 or h.shape[0] != BATCH:
        raise g.shape_error("attention", name, f"the query must be (B, H), got {h.type}", [h])
    if len(memory.shape) != 3 or memory.shape[0] != BATCH or isinstance(memory.shape[2], str):
        raise g.shape_error(
            "attention", name, f"the memory must be (B, S, H), got {memory.type}", [h, memory]
        )
    hq, hm, S = int(h.shape[1]), int(memory.shape[2]), memory.shape[1]
    with g.building():
        if mask is None and memory.op == "whole":  # a whole sequence carries its lengths
            mask = ops.whole_mask(memory)
        scores = _scores(h, memory, kind, hq, hm, units, scale, name)  # (B, S)
        if mask is not None:
            mask = as_value(mask, g)
            if mask.shape != (BATCH, S):
                raise g.shape_error(
                    "attention",
                    name,
                    f"the mask must be (B, {S}) like the memory's positions, got {mask.type}",
                    [memory, mask],
                )
            valid = mask if mask.dtype == "bool" else ops.greater(ops.abs(mask), 0.0)
            scores = ops.where(valid, scores, NEG)
            weights = ops.mul(
                ops.softmax(scores, -1), ops.cast(valid, "float"), name=f"{name}.weights"
            )
        else:
            weights = ops.softmax(scores, -1, name=f"{name}.weights")
        rows = ops.matmul(ops.unsqueeze(weights, -2), memory)  # (B, 1, S) @ (B, S, Hm)
        context = ops.reduce_sum(rows, -2, name=f"{name}.context")
    return context, weights


def _scores(
    h: Value, memory: Value, kind: str, hq: int, hm: int, units: Any, scale: float, name: str
) -> Value:
    g = h.graph
    if kind == "dot":
        if hq != hm:
            raise ShapeError(
                f"attention {name!r}: dot scores need the query's size {hq} to equal the "
                f"memory's {hm}; use kind='general' or 'additive'"
            )
        e = _column(memory, h)
        return e if scale == 1.0 else e * float(scale)
    if kind == "general":
        q = ops.matmul(h, g.param(f"{name}.W", (hq, hm), "glorot_uniform"))
        e = _column(memory, q)
        return e if scale == 1.0 else e * float(scale)
    a = hm if units is None else check_size(units, f"attention {name!r}: units")
    keys = ops.matmul(memory, g.param(f"{name}.Wk", (hm, a), "glorot_uniform"))  # (S, A)
    query = ops.linear(h, a, name=f"{name}.q")  # (A,): W_q and the bias b
    hidden = ops.tanh(keys + ops.unsqueeze(query, -2))  # (S, A)
    return ops.matmul(hidden, g.param(f"{name}.v", a, "uniform"))  # (B, S, A) @ (A,)


def _column(memory: Value, q: Value) -> Value:
    """``<m_s, q>`` for every position: ``(B, S, H) @ (B, H, 1)``, the last axis dropped."""
    return ops.reduce_sum(ops.matmul(memory, ops.unsqueeze(q, -1)), -1)
