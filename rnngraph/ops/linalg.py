"""Linear algebra: ``matmul`` and the ``linear`` layer built on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import BATCH, Dim, TensorType, broadcast_shapes, format_shape
from rnngraph.ops._rules import float_operands

__all__ = ["linear", "matmul"]


def _matmul_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    """NumPy matmul on per-step shapes; a rank-2 signal ``(B, k)`` multiplies as rows."""
    float_operands(types)
    a, b = (list(t.shape) for t in types)
    if not a or not b:
        raise ValueError("matmul needs operands of rank >= 1")
    a_vec, b_vec = len(a) == 1, len(b) == 1
    if a_vec:
        a = [1, *a]
    if b_vec:
        b = [*b, 1]
    if a[-1] != b[-2] or BATCH in (a[-1], b[-2]):
        raise ValueError(
            f"inner dimensions differ: {format_shape(types[0].shape)} @ "
            f"{format_shape(types[1].shape)} (contracts {a[-1]} with {b[-2]})"
        )
    lead = broadcast_shapes([a[:-2], b[:-2]])
    out: list[Dim] = [*lead, a[-2], b[-1]]
    if a_vec:
        del out[-2]
    if b_vec:
        del out[-1]
    try:
        return TensorType(tuple(out))
    except ValueError:
        raise ValueError(
            f"the batch axis would not lead in the result {format_shape(out)}; "
            "for W @ x per row, write x @ transpose(W)"
        ) from None


@register_op("matmul", arity=2, infer=_matmul_rule)
def _matmul(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) @ b(t) (NumPy matmul; a signal (B, k) times (k, n) gives (B, n))"""
    return np.matmul(a, b)


def matmul(a: Value, b: Value, *, name: str | None = None) -> Value:
    """Matrix product ``a @ b`` (also the ``@`` operator on Values).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("m")
    >>> x = g.input("x", 3)
    >>> W = g.param("W", (3, 5))
    >>> rg.matmul(x, W).shape
    ('B', 5)
    """
    g = a.graph if isinstance(a, Value) else b.graph
    return g.apply("matmul", [a, b], name=name)


def linear(
    x: Value,
    features: int,
    *,
    bias: bool = True,
    name: str | None = None,
    init: str = "uniform",
    scale: float | None = None,
) -> Value:
    """An affine map ``x @ W + b`` with new params ``<name>.W`` (in, features) and ``<name>.b``.

    The weight is laid out ``(in_features, features)`` so that one step of a
    signal ``(B, in)`` maps to ``(B, features)``. The result node is named
    ``name`` (the matmul inside is ``<name>.matmul`` when there is a bias).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("lin")
    >>> y = rg.linear(g.input("x", 8), 4, name="proj")
    >>> y.name, y.shape, sorted(g.params)
    ('proj', ('B', 4), ['proj.W', 'proj.b'])
    """
    if not isinstance(x, Value):
        raise TypeError(f"linear: expected a graph Value, got {type(x).__name__}")
    if not x.shape or x.shape[-1] == BATCH:
        raise x.graph.shape_error("linear", name, f"needs a feature axis, got {x.type}", [x])
    g = x.graph
    base = name if name is not None else g.fresh_name("linear")
    in_features = int(x.shape[-1])
    W = g.param(f"{base}.W", (in_features, int(features)), init, scale=scale)
    if not bias:
        return g.apply("matmul", [x, W], name=base)
    b = g.param(f"{base}.b", (int(features),), "zeros")
    return g.apply("add", [g.apply("matmul", [x, W], name=f"{base}.matmul"), b], name=base)
