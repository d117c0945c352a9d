"""Ordering and running sums along a feature axis: argmax, top-k, sort, cumsum.

The index ops (``argmax``, ``argmin``, ``top_k``) give int64 positions; their
values are read with ``take_along`` (ONNX ``GatherElements``), whose adjoint is
``scatter_add_along`` (``ScatterElements`` with ``reduction="add"``). So
``rg.top_k`` and ``rg.sort`` are differentiable in their values: the gradient
goes back to the positions they came from, as in PyTorch. Ties keep the lower
index first (ONNX ``TopK``'s rule; a stable sort).

Axes are per-step feature axes (never the batch axis), stored counted from the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value, as_value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import TensorType, format_shape
from rnngraph.ops._rules import checked_axis, float_operands

__all__ = [
    "argmax",
    "argmin",
    "argsort",
    "cumsum",
    "scatter_add_along",
    "sort",
    "take_along",
    "top_k",
]


# ------------------------------------------------------------------ arg extremes


def _arg_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    float_operands(types)
    t = types[0]
    ax = t.rank + attrs["axis"]
    if attrs["keepdims"]:
        shape = tuple(1 if i == ax else d for i, d in enumerate(t.shape))
    else:
        shape = tuple(d for i, d in enumerate(t.shape) if i != ax)
    return TensorType(shape, "int64")


@register_op("argmax", arity=1, infer=_arg_rule, attrs=("axis", "keepdims"))
def _argmax(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = index of the largest entry of x(t) along axis (the first of equal ones)"""
    return np.argmax(x, axis=attrs["axis"], keepdims=attrs["keepdims"]).astype(np.int64)


@register_op("argmin", arity=1, infer=_arg_rule, attrs=("axis", "keepdims"))
def _argmin(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = index of the smallest entry of x(t) along axis (the first of equal ones)"""
    return np.argmin(x, axis=attrs["axis"], keepdims=attrs["keepdims"]).astype(np.int64)


def argmax(x: Value, axis: int = -1, keepdims: bool = False, *, name: str | None = None) -> Value:
    """Index (int64) of the largest entry along ``axis``; the first one on ties.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("am")
    >>> g.output("k", rg.argmax(g.input("x", 4)))
    >>> rg.run(g, {"x": np.array([[[0.0, 3.0, 3.0, 1.0]]])})["k"].tolist()
    [[1]]
    """
    ax = checked_axis("argmax", x, axis, name)
    return x.graph.apply("argmax", [x], {"axis": ax, "keepdims": bool(keepdims)}, name=name)


def argmin(x: Value, axis: int = -1, keepdims: bool = False, *, name: str | None = None) -> Value:
    """Index (int64) of the smallest entry along ``axis``; the first one on ties.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("argmin")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.argmin(x, -1, keepdims=True))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].ravel().tolist()
    [0]
    """
    ax = checked_axis("argmin", x, axis, name)
    return x.graph.apply("argmin", [x], {"axis": ax, "keepdims": bool(keepdims)}, name=name)


# ------------------------------------------------------------------------ top-k


def _top_k_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    t = types[0]
    if t.dtype not in ("float", "int8", "int16", "int32"):  # (integers: an integer graph's)
        raise ValueError(f"expects a float or int8/int16/int32 operand, got {t}")
    ax = t.rank + attrs["axis"]
    n, k = t.shape[ax], attrs["k"]
    if k is None:
        return TensorType(t.shape, "int64")
    if isinstance(n, int) and not 0 <= k <= n:
        raise ValueError(f"k={k} is outside 0..{n}, the length of axis {attrs['axis']}")
    return TensorType(tuple(k if i == ax else d for i, d in enumerate(t.shape)), "int64")


def top_k_order(x: np.ndarray, axis: int, largest: bool) -> np.ndarray:
    """Positions along ``axis`` in the order ``top_k`` lists them (stable: ties by index)."""
    key = -x.astype(np.int64) if largest and x.dtype.kind == "i" else (-x if largest else x)
    return np.argsort(key, axis=axis, kind="stable").astype(np.int64)


@register_op("top_k", arity=1, infer=_top_k_rule, attrs=("k", "axis", "largest"))
def _top_k(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = positions of the k largest (or smallest) entries of x(t) along axis, in
    order, the lower index first among equal entries (k None: all of them, an argsort)"""
    order = top_k_order(x, attrs["axis"], attrs["largest"])
    k = attrs["k"]
    if k is None:
        return order
    return np.take(order, np.arange(k), axis=attrs["axis"])


def top_k(
    x: Value, k: int, axis: int = -1, *, largest: bool = True, name: str | None = None
) -> tuple[Value, Value]:
    """The ``k`` largest entries along ``axis`` (last by default) and their positions.

    Returns ``(values, indices)``, largest first (smallest first with
    ``largest=False``); among equal entries the lower index comes first. The
    values are differentiable: their gradient returns to the positions they
    came from.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("tk")
    >>> v, i = rg.top_k(g.input("x", 5), 2)
    >>> g.output("v", v); g.output("i", i)
    >>> out = rg.run(g, {"x": np.array([[[0.5, 2.0, -1.0, 2.0, 1.0]]])})
    >>> out["v"].tolist(), out["i"].tolist()
    ([[[2.0, 2.0]]], [[[1, 3]]])
    """
    ax = checked_axis("top_k", x, axis, name)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise x.graph.shape_error("top_k", name, f"k must be an int, got {k!r}", [x])
    attrs = {"k": int(k), "axis": ax, "largest": bool(largest)}
    idx = x.graph.apply("top_k", [x], attrs, name=None if name is None else f"{name}.indices")
    return take_along(x, idx, ax, name=name), idx


def argsort(
    x: Value, axis: int = -1, *, descending: bool = False, name: str | None = None
) -> Value:
    """Positions (int64) that sort ``x`` along ``axis``; stable (ties keep their order).

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("as")
    >>> g.output("i", rg.argsort(g.input("x", 3)))
    >>> rg.run(g, {"x": np.array([[[3.0, 1.0, 2.0]]])})["i"].tolist()
    [[[1, 2, 0]]]
    """
    ax = checked_axis("argsort", x, axis, name)
    return x.graph.apply(
        "top_k", [x], {"k": None, "axis": ax, "largest": bool(descending)}, name=name
    )


def sort(x: Value, axis: int = -1, *, descending: bool = False, name: str | None = None) -> Value:
    """``x`` sorted along ``axis`` (ascending unless ``descending``); differentiable.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("s")
    >>> g.output("y", rg.sort(g.input("x", 3), descending=True))
    >>> rg.run(g, {"x": np.array([[[3.0, 1.0, 2.0]]])})["y"].tolist()
    [[[3.0, 2.0, 1.0]]]
    """
    idx = argsort(x, axis, descending=descending)
    return take_along(x, idx, axis, name=name)


# ----------------------------------------------------------- take / scatter along


def _along_shapes(x: TensorType, idx: TensorType, axis: int, what: str) -> None:
    if idx.dtype != "int64":
        raise ValueError(f"{what}'s indices must be int64, got {idx}")
    if idx.rank != x.rank or idx.batched != x.batched:
        raise ValueError(
            f"{what}'s indices must have the rank of the data and be a signal exactly when "
            f"it is one; got data {x} and indices {idx}"
        )
    for i, (a, b) in enumerate(zip(x.shape, idx.shape, strict=True)):
        if i != x.rank + axis and a != b:
            raise ValueError(
                f"{what}: data {format_shape(x.shape)} and indices {format_shape(idx.shape)} "
                f"differ on axis {i - x.rank}, which is not the axis {axis} they index"
            )


def _take_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    x, idx = types
    _along_shapes(x, idx, attrs["axis"], "take_along")
    return TensorType(idx.shape, x.dtype)


@register_op("take_along", arity=2, infer=_take_rule, attrs=("axis",))
def _take_along(attrs: Mapping[str, Any], x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """y(t)[..., j, ...] = x(t)[..., idx(t)[..., j, ...], ...] along axis (negative wraps)"""
    n = x.shape[attrs["axis"]]
    return np.take_along_axis(x, np.where(idx < 0, idx + n, idx), axis=attrs["axis"])


def take_along(x: Value, idx: Value, axis: int = -1, *, name: str | None = None) -> Value:
    """Entries of ``x`` at positions ``idx`` along ``axis`` (numpy's ``take_along_axis``,
    ONNX ``GatherElements``): ``idx`` has ``x``'s shape except along ``axis``.

    Indices must lie in ``[-n, n)`` (negative ones count from the end).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("take_along")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.take_along(x, rg.argsort(x, -1), -1))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-1.5, 0.0, 2.0]
    """
    g = x.graph
    i = as_value(np.asarray(idx, np.int64) if isinstance(idx, np.ndarray) else idx, g)
    ax = checked_axis("take_along", x, axis, name)
    return g.apply("take_along", [x, i], {"axis": ax}, name=name)


def _scatter_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    base, idx, values = types
    _along_shapes(base, idx, attrs["axis"], "scatter_add_along")
    if values.shape != idx.shape or values.dtype != base.dtype:
        raise ValueError(f"values must be {format_shape(idx.shape)} of {base.dtype}, got {values}")
    return base


@register_op("scatter_add_along", arity=3, infer=_scatter_rule, attrs=("axis",))
def _scatter_add_along(
    attrs: Mapping[str, Any], base: np.ndarray, idx: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """y(t) = base(t) with values(t)[..., j, ...] added at position idx(t)[..., j, ...]
    along axis (repeated positions accumulate)"""
    axis = base.ndim + attrs["axis"]
    n = base.shape[axis]
    grid: list[Any] = list(np.indices(idx.shape, sparse=True))
    grid[axis] = np.where(idx < 0, idx + n, idx)
    out = base.copy()
    np.add.at(out, tuple(grid), values)
    return out


def scatter_add_along(
    base: Value, idx: Value, values: Value, axis: int = -1, *, name: str | None = None
) -> Value:
    """``base`` with ``values`` added at positions ``idx`` along ``axis`` (the adjoint of
    :func:`take_along`; ONNX ``ScatterElements`` with ``reduction="add"``).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("scatter_add_along")
    >>> x = g.input("x", 3)
    >>> top = rg.argmax(x, -1, keepdims=True)
    >>> g.output("y", rg.scatter_add_along(rg.zeros_like(x), top, rg.reduce_max(x, -1, True), -1))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [0.0, 0.0, 2.0]
    """
    ax = checked_axis("scatter_add_along", base, axis, name)
    return base.graph.apply("scatter_add_along", [base, idx, values], {"axis": ax}, name=name)


# ----------------------------------------------------------------------- cumsum


def _cumsum_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    float_operands(types)
    return types[0]


@register_op("cumsum", arity=1, infer=_cumsum_rule, attrs=("axis", "reverse", "exclusive"))
def _cumsum(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t)[..., j, ...] = sum of x(t)[..., i, ...] over i <= j along axis (i < j when
    exclusive; i >= j, or i > j, when reversed)"""
    axis = attrs["axis"]
    if attrs["reverse"]:
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis)
    if attrs["exclusive"]:
        y = y - x
    return np.asarray(np.flip(y, axis) if attrs["reverse"] else y, dtype=x.dtype)


def cumsum(
    x: Value,
    axis: int = -1,
    *,
    reverse: bool = False,
    exclusive: bool = False,
    name: str | None = None,
) -> Value:
    """Running sum along ``axis`` (ONNX ``CumSum``): ``reverse`` sums from the end,
    ``exclusive`` leaves out the entry itself.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("cs")
    >>> x = g.input("x", 4)
    >>> g.output("y", rg.cumsum(x)); g.output("r", rg.cumsum(x, reverse=True, exclusive=True))
    >>> out = rg.run(g, {"x": np.array([[[1.0, 2.0, 3.0, 4.0]]])})
    >>> out["y"].tolist(), out["r"].tolist()
    ([[[1.0, 3.0, 6.0, 10.0]]], [[[9.0, 7.0, 4.0, 0.0]]])
    """
    ax = checked_axis("cumsum", x, axis, name)
    attrs = {"axis": ax, "reverse": bool(reverse), "exclusive": bool(exclusive)}
    return x.graph.apply("cumsum", [x], attrs, name=name)
