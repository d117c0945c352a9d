"""Element-wise ops: arithmetic, activations, comparisons, ``where``, ``cast``.

Each op's registration and numpy reference sit together; the public builder
function follows. Binary ops broadcast like NumPy, with the batch axis of a
signal broadcasting only against 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value, as_value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import INT_RANGES, TensorType, broadcast_shapes
from rnngraph.ops._rules import elementwise, unary_float

__all__ = [
    "abs",
    "add",
    "atan",
    "cast",
    "ceil",
    "clip",
    "cos",
    "div",
    "equal",
    "erf",
    "exp",
    "floor",
    "greater",
    "hard_sigmoid",
    "heaviside",
    "leaky_relu",
    "less",
    "log",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "pow",
    "relu",
    "sigmoid",
    "sin",
    "softplus",
    "softsign",
    "sqrt",
    "sub",
    "tanh",
    "where",
]


def _graph_of(*xs: Any) -> Any:
    for x in xs:
        if isinstance(x, Value):
            return x.graph
    raise TypeError("at least one operand must be a graph Value")


# ------------------------------------------------------------------ binary ops
@register_op("add", arity=2, infer=elementwise)
def _add(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) + b(t)"""
    return a + b


@register_op("sub", arity=2, infer=elementwise)
def _sub(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) - b(t)"""
    return a - b


@register_op("mul", arity=2, infer=elementwise)
def _mul(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) * b(t), element-wise"""
    return a * b


@register_op("div", arity=2, infer=elementwise)
def _div(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) / b(t), element-wise"""
    return a / b


@register_op("pow", arity=2, infer=elementwise)
def _pow(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) ** b(t), element-wise"""
    return np.power(a, b)


def _extreme(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    """Of floats, or of an integer graph's values of one kind (on one grid)."""
    kinds = {t.dtype for t in types}
    if kinds <= {"int8", "int16", "int32"} and len(kinds) == 1:
        return TensorType(broadcast_shapes([t.shape for t in types]), types[0].dtype)
    return elementwise(types, attrs)


@register_op("maximum", arity=2, infer=_extreme)
def _maximum(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = max(a(t), b(t)), element-wise"""
    return np.maximum(a, b)


@register_op("minimum", arity=2, infer=_extreme)
def _minimum(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = min(a(t), b(t)), element-wise"""
    return np.minimum(a, b)


def _compare(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    if types[0].dtype != types[1].dtype:
        raise ValueError(f"compares operands of one dtype, got {types[0]} and {types[1]}")
    return TensorType(broadcast_shapes([t.shape for t in types]), "bool")


@register_op("greater", arity=2, infer=_compare)
def _greater(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) > b(t) (bool)"""
    return np.greater(a, b)


@register_op("less", arity=2, infer=_compare)
def _less(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) < b(t) (bool)"""
    return np.less(a, b)


@register_op("equal", arity=2, infer=_compare)
def _equal(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) == b(t) (bool)"""
    return np.equal(a, b)


def _where_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    cond, a, b = types
    if cond.dtype != "bool":
        raise ValueError(f"the condition must be bool, got {cond}")
    if a.dtype != b.dtype:
        raise ValueError(f"both branches must have one dtype, got {a} and {b}")
    return TensorType(broadcast_shapes([t.shape for t in types]), a.dtype)


@register_op("where", arity=3, infer=_where_rule)
def _where(attrs: Mapping[str, Any], c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) where c(t) else b(t), element-wise"""
    return np.where(c, a, b)


def _cast_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    if attrs["to"] in INT_RANGES and types[0].dtype == "float":
        raise ValueError(
            f"a float is put on an integer grid by quantize, not cast to {attrs['to']}"
        )
    return TensorType(types[0].shape, attrs["to"])


@register_op("cast", arity=1, infer=_cast_rule, attrs=("to",))
def _cast(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t) converted to dtype ``to`` ("float", "int64", "bool", or the integer
    kinds of quantised graphs, "int8", "int16", "int32", which must hold the values)"""
    to = attrs["to"]
    if to == "float":
        # The interpreter passes the run's float dtype in the attributes.
        return x.astype(attrs.get("float_dtype", np.float32))
    return x.astype({"int64": np.int64, "bool": np.bool_}.get(to) or np.dtype(to))


# ------------------------------------------------------------------- unary ops
@register_op("neg", arity=1, infer=unary_float)
def _neg(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = -x(t)"""
    return -x


@register_op("abs", arity=1, infer=unary_float)
def _abs(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = |x(t)|"""
    return np.abs(x)


@register_op("exp", arity=1, infer=unary_float)
def _exp(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = exp(x(t))"""
    return np.exp(x)


@register_op("erf", arity=1, infer=unary_float)
def _erf(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = erf(x(t)) = 2/sqrt(pi) * integral of exp(-s^2) from 0 to x(t)"""
    return np.asarray(_ERF(x), dtype=x.dtype)


_ERF = np.frompyfunc(math.erf, 1, 1)


@register_op("sin", arity=1, infer=unary_float)
def _sin(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = sin(x(t)) (radians)"""
    return np.sin(x)


@register_op("cos", arity=1, infer=unary_float)
def _cos(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = cos(x(t)) (radians)"""
    return np.cos(x)


@register_op("atan", arity=1, infer=unary_float)
def _atan(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = arctan(x(t)), in (-pi/2, pi/2)"""
    return np.arctan(x)


@register_op("floor", arity=1, infer=unary_float)
def _floor(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = the largest integer <= x(t) (as a float)"""
    return np.floor(x)


@register_op("ceil", arity=1, infer=unary_float)
def _ceil(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = the smallest integer >= x(t) (as a float)"""
    return np.ceil(x)


@register_op("log", arity=1, infer=unary_float)
def _log(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = log(x(t)) (natural logarithm)"""
    return np.log(x)


@register_op("sqrt", arity=1, infer=unary_float)
def _sqrt(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = sqrt(x(t))"""
    return np.sqrt(x)


@register_op("tanh", arity=1, infer=unary_float)
def _tanh(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = tanh(x(t))"""
    return np.tanh(x)


@register_op("sigmoid", arity=1, infer=unary_float)
def _sigmoid(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = 1 / (1 + exp(-x(t)))"""
    # The tanh form is exact and never overflows, unlike 1/(1+exp(-x)) in float32.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@register_op("hard_sigmoid", arity=1, infer=unary_float, attrs=("alpha", "beta"))
def _hard_sigmoid(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = max(0, min(1, alpha * x(t) + beta)) (ONNX HardSigmoid)"""
    return np.clip(attrs["alpha"] * x + attrs["beta"], 0.0, 1.0).astype(x.dtype)


SURROGATES = {"fast_sigmoid": 25.0, "arctan": 2.0, "sigmoid": 25.0, "straight_through": 1.0}
"""The gradients ``heaviside`` may stand in for its own (zero almost everywhere), with
each one's default slope (snntorch's ``fast_sigmoid``, ``atan``, ``sigmoid`` and
``straight_through_estimator``)."""


@register_op("heaviside", arity=1, infer=unary_float, attrs=("surrogate", "slope"))
def _heaviside(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = 1 where x(t) > 0, else 0 (its gradient: the surrogate's)"""
    return (x > 0).astype(x.dtype)


@register_op("relu", arity=1, infer=unary_float)
def _relu(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = max(0, x(t))"""
    return np.maximum(x, 0)


@register_op("leaky_relu", arity=1, infer=unary_float, attrs=("alpha",))
def _leaky_relu(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t) if x(t) >= 0 else alpha * x(t)"""
    return np.where(x >= 0, x, attrs["alpha"] * x).astype(x.dtype)


@register_op("softplus", arity=1, infer=unary_float)
def _softplus(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = log(1 + exp(x(t)))"""
    return np.logaddexp(np.zeros((), x.dtype), x)


@register_op("softsign", arity=1, infer=unary_float)
def _softsign(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t) / (1 + |x(t)|)"""
    return x / (1 + np.abs(x))


@register_op("clip", arity=1, infer=unary_float, attrs=("min", "max"))
def _clip(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = min(max(x(t), min), max); a bound of None is absent"""
    lo, hi = attrs["min"], attrs["max"]
    return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi).astype(x.dtype)


# ------------------------------------------------------------------- builders
def _binary(op: str, a: Any, b: Any, name: str | None) -> Value:
    g = _graph_of(a, b)
    return g.apply(op, [as_value(a, g), as_value(b, g)], name=name)


def add(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise ``a + b`` (also ``a + b`` on Values).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("add")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.add(x, 1.0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-0.5, 1.0, 3.0]
    """
    return _binary("add", a, b, name)


def sub(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise ``a - b``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("sub")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.sub(x, 1.0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-2.5, -1.0, 1.0]
    """
    return _binary("sub", a, b, name)


def mul(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise ``a * b`` (the gate product of LSTM and GRU cells).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("mul")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.mul(x, x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [2.25, 0.0, 4.0]
    """
    return _binary("mul", a, b, name)


def div(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise ``a / b``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("div")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.div(x, 2.0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-0.75, 0.0, 1.0]
    """
    return _binary("div", a, b, name)


def pow(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise ``a ** b``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("pow")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.pow(x, 2.0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [2.25, 0.0, 4.0]
    """
    return _binary("pow", a, b, name)


def maximum(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise maximum.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("maximum")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.maximum(x, 0.5))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [0.5, 0.5, 2.0]
    """
    return _binary("maximum", a, b, name)


def minimum(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise minimum.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("minimum")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.minimum(x, 0.5))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-1.5, 0.0, 0.5]
    """
    return _binary("minimum", a, b, name)


def greater(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise ``a > b``, a bool value for :func:`where`.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("greater")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.greater(x, 0.0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].ravel().tolist()
    [False, False, True]
    """
    return _binary("greater", a, b, name)


def less(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise ``a < b``, a bool value for :func:`where`.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("less")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.less(x, 0.0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].ravel().tolist()
    [True, False, False]
    """
    return _binary("less", a, b, name)


def equal(a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """Element-wise ``a == b``, a bool value for :func:`where`.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("equal")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.equal(x, 0.0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].ravel().tolist()
    [False, True, False]
    """
    return _binary("equal", a, b, name)


def where(cond: Value, a: Value | float, b: Value | float, *, name: str | None = None) -> Value:
    """``a`` where ``cond`` holds, else ``b`` (element-wise, broadcasting).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("where")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.where(rg.greater(x, 0.0), x, -x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [1.5, -0.0, 2.0]
    """
    g = _graph_of(cond, a, b)
    return g.apply("where", [as_value(cond, g), as_value(a, g), as_value(b, g)], name=name)


def cast(x: Value, to: str, *, name: str | None = None) -> Value:
    """Convert ``x`` to ``"float"`` (the run's float dtype), ``"int64"`` or ``"bool"``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("cast")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.cast(x, "int64"))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].ravel().tolist()
    [-1, 0, 2]
    """
    if to not in ("float", "int64", "bool"):
        raise ValueError(f"cast: 'to' must be 'float', 'int64' or 'bool', got {to!r}")
    return x.graph.apply("cast", [x], {"to": to}, name=name)


def _unary(op: str, x: Value, name: str | None, **attrs: Any) -> Value:
    if not isinstance(x, Value):
        raise TypeError(f"{op}: expected a graph Value, got {type(x).__name__}")
    return x.graph.apply(op, [x], attrs, name=name)


def neg(x: Value, *, name: str | None = None) -> Value:
    """``-x``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("neg")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.neg(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [1.5, -0.0, -2.0]
    """
    return _unary("neg", x, name)


def abs(x: Value, *, name: str | None = None) -> Value:
    """``|x|``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("abs")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.abs(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [1.5, 0.0, 2.0]
    """
    return _unary("abs", x, name)


def exp(x: Value, *, name: str | None = None) -> Value:
    """``exp(x)``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("exp")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.exp(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [0.2231, 1.0, 7.3891]
    """
    return _unary("exp", x, name)


def log(x: Value, *, name: str | None = None) -> Value:
    """Natural logarithm.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("log")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.log(rg.abs(x) + 1.0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [0.9163, 0.0, 1.0986]
    """
    return _unary("log", x, name)


def erf(x: Value, *, name: str | None = None) -> Value:
    """The error function, ``2/sqrt(pi) * integral_0^x exp(-s^2) ds`` (exact GELU is
    ``0.5 * x * (1 + erf(x / sqrt(2)))``).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("gelu")
    >>> x = g.input("x", 3)
    >>> g.output("y", 0.5 * x * (1.0 + rg.erf(x * float(1 / np.sqrt(2)))))
    >>> rg.run(g, {"x": np.array([[[-1.0, 0.0, 2.0]]])})["y"].round(4).tolist()
    [[[-0.1587, 0.0, 1.9545]]]
    """
    return _unary("erf", x, name)


def sin(x: Value, *, name: str | None = None) -> Value:
    """``sin(x)`` (radians): oscillators, phases, time encodings.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("osc")
    >>> g.output("y", rg.sin(g.input("phase", 1)))
    >>> rg.run(g, {"phase": np.array([[[0.0]], [[np.pi / 2]]])})["y"].ravel().tolist()
    [0.0, 1.0]
    """
    return _unary("sin", x, name)


def atan(x: Value, *, name: str | None = None) -> Value:
    """``arctan(x)`` in ``(-pi/2, pi/2)`` (``asin(x) = atan(x / sqrt(1 - x^2))``).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("atan")
    >>> g.output("y", rg.atan(g.input("x", 3)) * float(4 / np.pi))
    >>> rg.run(g, {"x": np.array([[[-1.0, 0.0, 1.0]]])})["y"].round(4).ravel().tolist()
    [-1.0, 0.0, 1.0]
    """
    return _unary("atan", x, name)


def floor(x: Value, *, name: str | None = None) -> Value:
    """The largest integer at most ``x``, as a float; its gradient is zero (piecewise
    constant: pass a straight-through one with ``x + rg.stop_gradient(rg.floor(x) - x)``).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("floor")
    >>> g.output("y", rg.floor(g.input("x", 3)))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.7]]])})["y"].ravel().tolist()
    [-2.0, 0.0, 2.0]
    """
    return _unary("floor", x, name)


def ceil(x: Value, *, name: str | None = None) -> Value:
    """The smallest integer at least ``x``, as a float (zero gradient, as :func:`floor`).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("ceil")
    >>> g.output("y", rg.ceil(g.input("x", 3)))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.2]]])})["y"].ravel().tolist()
    [-1.0, 0.0, 3.0]
    """
    return _unary("ceil", x, name)


def cos(x: Value, *, name: str | None = None) -> Value:
    """``cos(x)`` (radians).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("osc")
    >>> g.output("y", rg.cos(g.input("phase", 1)))
    >>> rg.run(g, {"phase": np.array([[[0.0]], [[np.pi]]])})["y"].ravel().tolist()
    [1.0, -1.0]
    """
    return _unary("cos", x, name)


def sqrt(x: Value, *, name: str | None = None) -> Value:
    """Square root.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("sqrt")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.sqrt(rg.abs(x)))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [1.2247, 0.0, 1.4142]
    """
    return _unary("sqrt", x, name)


def tanh(x: Value, *, name: str | None = None) -> Value:
    """Hyperbolic tangent.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("tanh")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.tanh(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-0.9051, 0.0, 0.964]
    """
    return _unary("tanh", x, name)


def sigmoid(x: Value, *, name: str | None = None) -> Value:
    """Logistic sigmoid ``1 / (1 + exp(-x))``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("sigmoid")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.sigmoid(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [0.1824, 0.5, 0.8808]
    """
    return _unary("sigmoid", x, name)


def hard_sigmoid(
    x: Value, alpha: float = 0.2, beta: float = 0.5, *, name: str | None = None
) -> Value:
    """``max(0, min(1, alpha * x + beta))``, ONNX's HardSigmoid (same defaults).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("hard_sigmoid")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.hard_sigmoid(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [0.2, 0.5, 0.9]
    """
    return _unary("hard_sigmoid", x, name, alpha=float(alpha), beta=float(beta))


def relu(x: Value, *, name: str | None = None) -> Value:
    """``max(0, x)``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("relu")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.relu(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [0.0, 0.0, 2.0]
    """
    return _unary("relu", x, name)


def heaviside(
    x: Value,
    surrogate: str = "fast_sigmoid",
    *,
    slope: float | None = None,
    name: str | None = None,
) -> Value:
    """A hard threshold, 1 where ``x > 0`` and 0 elsewhere, whose gradient is a chosen
    surrogate (the spike of a spiking neuron, a hard gate); as snntorch defines them:

    - ``"fast_sigmoid"``: ``1 / (slope |x| + 1)²`` (slope 25 by default)
    - ``"arctan"``: ``(slope / 2) / (1 + (π slope x / 2)²)`` (slope 2)
    - ``"sigmoid"``: ``slope σ(slope x)(1 - σ(slope x))`` (slope 25)
    - ``"straight_through"``: 1 (the cotangent passes unchanged)

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("spike")
    >>> g.output("s", rg.heaviside(g.input("v", 3), "arctan"))
    >>> rg.run(g, {"v": np.array([[[-1.0, 0.0, 0.5]]])})["s"].tolist()
    [[[0.0, 0.0, 1.0]]]
    """
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {sorted(SURROGATES)}")
    k = SURROGATES[surrogate] if slope is None else float(slope)
    return _unary("heaviside", x, name, surrogate=surrogate, slope=k)


def leaky_relu(x: Value, alpha: float = 0.01, *, name: str | None = None) -> Value:
    """``x`` for ``x >= 0``, else ``alpha * x``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("leaky_relu")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.leaky_relu(x, 0.1))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-0.15, 0.0, 2.0]
    """
    return _unary("leaky_relu", x, name, alpha=float(alpha))


def softplus(x: Value, *, name: str | None = None) -> Value:
    """``log(1 + exp(x))``, computed without overflow.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("softplus")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.softplus(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [0.2014, 0.6931, 2.1269]
    """
    return _unary("softplus", x, name)


def softsign(x: Value, *, name: str | None = None) -> Value:
    """``x / (1 + |x|)``.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("softsign")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.softsign(x))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-0.6, 0.0, 0.6667]
    """
    return _unary("softsign", x, name)


def clip(
    x: Value, min: float | None = None, max: float | None = None, *, name: str | None = None
) -> Value:
    """Clamp ``x`` to ``[min, max]``; a bound of None is absent.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("clip")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.clip(x, -1.0, 1.0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-1.0, 0.0, 1.0]
    """
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min {min} exceeds max {max}")
    return _unary(
        "clip",
        x,
        name,
        min=None if min is None else float(min),
        max=None if max is None else float(max),
    )
