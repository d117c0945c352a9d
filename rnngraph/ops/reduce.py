"""Reductions over feature axes, and the softmax family."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import TensorType
from rnngraph.ops._rules import checked_axis, float_operands, normalize_axis, unary_float

__all__ = [
    "layer_norm",
    "log_softmax",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_prod",
    "reduce_sum",
    "softmax",
]


def _reduce_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    float_operands(types)
    return _reduced(types[0], attrs)


def _order_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    """The largest or least entry: of floats, or of a quantised graph's integers."""
    if types[0].dtype not in ("float", "int8", "int16", "int32"):
        raise ValueError(f"expects a float or a fixed-width integer, got {types[0]}")
    return _reduced(types[0], attrs)


def _reduced(t: TensorType, attrs: Mapping[str, Any]) -> TensorType:
    axes = {t.rank + a for a in attrs["axes"]}
    if attrs["keepdims"]:
        shape = tuple(1 if i in axes else d for i, d in enumerate(t.shape))
    else:
        shape = tuple(d for i, d in enumerate(t.shape) if i not in axes)
    return TensorType(shape, t.dtype)


def _register_reduction(op: str, fn: Any, meaning: str, rule: Any = _reduce_rule) -> None:
    def reference(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        return np.asarray(fn(x, axis=tuple(attrs["axes"]), keepdims=attrs["keepdims"]))

    reference.__doc__ = meaning
    register_op(op, arity=1, infer=rule, attrs=("axes", "keepdims"))(reference)


_register_reduction("reduce_sum", np.sum, "y(t) = sum of x(t) over ``axes``")
_register_reduction("reduce_mean", np.mean, "y(t) = mean of x(t) over ``axes``")
_register_reduction("reduce_max", np.max, "y(t) = max of x(t) over ``axes``", _order_rule)
_register_reduction("reduce_min", np.min, "y(t) = min of x(t) over ``axes``", _order_rule)
_register_reduction("reduce_prod", np.prod, "y(t) = product of x(t) over ``axes``")


def _reduce(
    op: str, x: Value, axis: int | Sequence[int] | None, keepdims: bool, name: str | None
) -> Value:
    t = x.type
    if axis is None:
        axis = list(range(1 if t.batched else 0, t.rank))
    ax_list = [axis] if isinstance(axis, int) else list(axis)
    try:
        axes = sorted({normalize_axis(a, t) for a in ax_list})
    except ValueError as e:
        raise x.graph.shape_error(op, name, str(e), [x]) from None
    return x.graph.apply(op, [x], {"axes": axes, "keepdims": bool(keepdims)}, name=name)


def reduce_sum(
    x: Value,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    *,
    name: str | None = None,
) -> Value:
    """Sum over ``axis`` (default: every axis of a row; never the batch axis).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("r")
    >>> rg.reduce_sum(g.input("x", (3, 4)), axis=-1).shape
    ('B', 3)
    """
    return _reduce("reduce_sum", x, axis, keepdims, name)


def reduce_mean(
    x: Value,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    *,
    name: str | None = None,
) -> Value:
    """Mean over ``axis`` (default: every axis of a row).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("reduce_mean")
    >>> x = g.input("x", (2, 3))
    >>> g.output("y", rg.reduce_mean(x, -1))
    >>> xs = np.array([[[[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]]]])
    >>> rg.run(g, {"x": xs})["y"].round(4).ravel().tolist()
    [0.6667, 1.1667]
    """
    return _reduce("reduce_mean", x, axis, keepdims, name)


def reduce_max(
    x: Value,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    *,
    name: str | None = None,
) -> Value:
    """Maximum over ``axis`` (default: every axis of a row).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("reduce_max")
    >>> x = g.input("x", (2, 3))
    >>> g.output("y", rg.reduce_max(x, -1))
    >>> xs = np.array([[[[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]]]])
    >>> rg.run(g, {"x": xs})["y"].round(4).ravel().tolist()
    [3.0, 4.0]
    """
    return _reduce("reduce_max", x, axis, keepdims, name)


def reduce_min(
    x: Value,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    *,
    name: str | None = None,
) -> Value:
    """Minimum over ``axis`` (default: every axis of a row).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("reduce_min")
    >>> x = g.input("x", (2, 3))
    >>> g.output("y", rg.reduce_min(x, -1))
    >>> xs = np.array([[[[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]]]])
    >>> rg.run(g, {"x": xs})["y"].round(4).ravel().tolist()
    [-2.0, -1.0]
    """
    return _reduce("reduce_min", x, axis, keepdims, name)


def reduce_prod(
    x: Value,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    *,
    name: str | None = None,
) -> Value:
    """Product over ``axis`` (default: every axis of a row).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("reduce_prod")
    >>> x = g.input("x", (2, 3))
    >>> g.output("y", rg.reduce_prod(x, -1))
    >>> xs = np.array([[[[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]]]])
    >>> rg.run(g, {"x": xs})["y"].round(4).ravel().tolist()
    [-6.0, -2.0]
    """
    return _reduce("reduce_prod", x, axis, keepdims, name)


@register_op("softmax", arity=1, infer=unary_float, attrs=("axis",))
def _softmax(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = exp(x(t)) / sum(exp(x(t)), axis)"""
    z = x - np.max(x, axis=attrs["axis"], keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=attrs["axis"], keepdims=True)


@register_op("log_softmax", arity=1, infer=unary_float, attrs=("axis",))
def _log_softmax(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t) - log(sum(exp(x(t)), axis))"""
    z = x - np.max(x, axis=attrs["axis"], keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=attrs["axis"], keepdims=True))


def softmax(x: Value, axis: int = -1, *, name: str | None = None) -> Value:
    """Softmax along ``axis`` (a feature axis).

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("sm")
    >>> g.output("p", rg.softmax(g.input("x", 3)))
    >>> p = rg.run(g, {"x": np.zeros((1, 2, 3), "float64")})["p"]
    >>> np.round(p[0, 0], 4).tolist()
    [0.3333, 0.3333, 0.3333]
    """
    ax = checked_axis("softmax", x, axis, name)
    return x.graph.apply("softmax", [x], {"axis": ax}, name=name)


def log_softmax(x: Value, axis: int = -1, *, name: str | None = None) -> Value:
    """Log of the softmax along ``axis``, computed stably.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("log_softmax")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.log_softmax(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-3.6532, -2.1532, -0.1532]
    """
    ax = checked_axis("log_softmax", x, axis, name)
    return x.graph.apply("log_softmax", [x], {"axis": ax}, name=name)


def _layer_norm_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    float_operands(types)
    x, scale, bias = types
    n = x.shape[-1]
    for t, what in ((scale, "scale"), (bias, "bias")):
        if t.batched or t.shape != (n,):
            raise ValueError(f"layer_norm's {what} must be time-invariant of shape ({n},), got {t}")
    return x


@register_op("layer_norm", arity=3, infer=_layer_norm_rule, attrs=("epsilon",))
def _layer_norm(
    attrs: Mapping[str, Any], x: np.ndarray, scale: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    """y(t) = (x(t) - mean) / sqrt(var + epsilon) * scale + bias, over the last axis"""
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mu) / np.sqrt(var + attrs["epsilon"]) * scale + bias, dtype=x.dtype)


def layer_norm(
    x: Value, scale: Value, bias: Value, *, epsilon: float = 1e-5, name: str | None = None
) -> Value:
    """Layer normalisation over the last axis (ONNX's LayerNormalization with axis -1).

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("ln")
    >>> y = layer_norm(g.input("x", 4), g.param("g", 4, 1.0), g.param("b", 4, 0.0))
    >>> g.output("y", y)
    >>> out = rg.run(g, {"x": np.arange(8.0).reshape(1, 2, 4)}, g.init_params())["y"]
    >>> np.round(out[0, 0], 3).tolist()
    [-1.342, -0.447, 0.447, 1.342]
    """
    return x.graph.apply("layer_norm", [x, scale, bias], {"epsilon": float(epsilon)}, name=name)
