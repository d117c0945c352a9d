"""Ops that reduce over time, and helpers that gradients need.

``total`` and ``total_outer`` sum over every valid step and every batch row:
their results are time-invariant, but depend on the whole sequence, so the
schedule computes them (and whatever static work follows) after the loops.
A value computed from a total cannot feed a per-step value. This is how a
gradient graph returns a weight's gradient (rule 8 of the adjoint: a sum over
time of forward signal times adjoint signal), and how a loss sums over steps.

``zeros_like`` and ``pad`` are per-step ops used by adjoint rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import TensorType

__all__ = ["pad", "total", "total_outer", "zeros_like"]


def _total_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    (t,) = types
    if not t.batched:
        raise ValueError(f"total sums a signal over steps and rows; {t} is time-invariant")
    return TensorType(t.row_shape, t.dtype)


@register_op("total", arity=1, infer=_total_rule, attrs=("rank",), after_steps=True)
def _total(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y = sum over every valid step t and batch row b of x(t)[b] (invalid steps are zero)"""
    lead = x.ndim - attrs["rank"]
    return np.asarray(x.sum(axis=tuple(range(lead))))


def _outer_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    a, b = types
    if not (a.batched and b.batched) or a.shape[:-1] != b.shape[:-1]:
        raise ValueError(f"total_outer needs two signals with equal leading axes, got {a}, {b}")
    return TensorType((a.shape[-1], b.shape[-1]), "float")


@register_op("total_outer", arity=2, infer=_outer_rule, after_steps=True)
def _total_outer(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y = sum over steps, rows and leading axes of outer(a(t)[..., :], b(t)[..., :])"""
    m, n = a.shape[-1], b.shape[-1]
    return a.reshape(-1, m).T @ b.reshape(-1, n)


def total(x: Value, *, name: str | None = None) -> Value:
    """The sum of signal ``x`` over all valid steps and batch rows (time-invariant).

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("sum")
    >>> g.output("s", total(g.input("x", 2)))
    >>> rg.run(g, {"x": np.ones((4, 3, 2))}, sequence_lens=[4, 1, 0])["s"].tolist()
    [5.0, 5.0]
    """
    return x.graph.apply("total", [x], {"rank": len(x.type.row_shape)}, name=name)


def total_outer(a: Value, b: Value, *, name: str | None = None) -> Value:
    """``sum_t sum_b a(t)[b]^T b(t)[b]``: one GEMM over every step and row (``(m, n)``).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("outer")
    >>> a, b = g.input("a", 2), g.input("b", 3)
    >>> g.output("s", rg.total_outer(a, b))
    >>> rg.run(g, {"a": np.ones((4, 1, 2)), "b": np.ones((4, 1, 3))})["s"].tolist()
    [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]
    """
    return a.graph.apply("total_outer", [a, b], name=name)


@register_op("zeros_like", arity=1, infer=lambda types, attrs: types[0])
def _zeros_like(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = zeros shaped like x(t)"""
    return np.zeros_like(x)


def zeros_like(x: Value, *, name: str | None = None) -> Value:
    """Zeros of ``x``'s type (a signal stays a signal).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("zeros_like")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.zeros_like(x) + 1.0)
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [1.0, 1.0, 1.0]
    """
    return x.graph.apply("zeros_like", [x], name=name)


def _pad_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    (t,) = types
    shape = list(t.shape)
    for axis, (lo, hi) in zip(attrs["axes"], attrs["pads"], strict=True):
        shape[t.rank + axis] = int(shape[t.rank + axis]) + lo + hi
    return TensorType(tuple(shape), t.dtype)


@register_op("pad", arity=1, infer=_pad_rule, attrs=("axes", "pads"))
def _pad(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t) with ``pads[i] = (before, after)`` zeros added along ``axes[i]``"""
    widths = [(0, 0)] * x.ndim
    for axis, (lo, hi) in zip(attrs["axes"], attrs["pads"], strict=True):
        widths[x.ndim + axis] = (lo, hi)
    return np.pad(x, widths)


def pad(
    x: Value, axes: Sequence[int], pads: Sequence[tuple[int, int]], *, name: str | None = None
) -> Value:
    """Zero-pad ``x`` along row ``axes`` (counted from the end) by ``(before, after)`` each.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("pad")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.pad(x, [-1], [(1, 2)]))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [0.0, -1.5, 0.0, 2.0, 0.0, 0.0]
    """
    from rnngraph.ops._rules import normalize_axis

    ax = [normalize_axis(a, x.type) for a in axes]
    attrs = {"axes": ax, "pads": [[int(lo), int(hi)] for lo, hi in pads]}
    return x.graph.apply("pad", [x], attrs, name=name)
