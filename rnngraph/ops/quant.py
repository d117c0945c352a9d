"""Quantisation ops: floats to fixed-width integers and back (ONNX's QDQ semantics).

``quantize(x)`` is ``saturate(round(x / scale) + zero_point)`` (round half to even,
saturated to the integer kind's range), ``dequantize(q)`` is ``(q - zero_point) *
scale``, and ``fake_quant(x)`` is the two in one: a float on the integer grid, whose
gradient passes straight through inside the grid's range and is zero outside (the
clipped straight-through estimator of quantisation-aware training). ``scale`` and
``zero_point`` are one number each (per tensor) or one per entry of ``axis`` (per
channel, the axis counted from the end). These are ONNX's ``QuantizeLinear`` and
``DequantizeLinear`` (builders :func:`quantize_linear`, :func:`dequantize_linear`);
:func:`rnngraph.quantize` builds quantised graphs from them.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("q")
>>> x = g.input("x", 3)
>>> q = rg.quantize_linear(x, 0.5, 0, "int8")
>>> g.output("q", rg.cast(q, "int64"))
>>> g.output("y", rg.dequantize_linear(q, 0.5, 0))
>>> out = rg.run(g, {"x": np.array([[[0.24, 0.25, 100.0]]])})
>>> out["q"].tolist(), out["y"].tolist()
([[[0, 0, 127]]], [[[0.0, 0.0, 63.5]]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import INT_RANGES, TensorType

__all__ = ["dequantize_linear", "fake_quant", "grid_bounds", "per_axis", "quantize_linear"]

QUANT_ATTRS = ("scale", "zero_point", "axis")


def _check(t: TensorType, attrs: Mapping[str, Any]) -> None:
    scale, zp, axis = attrs["scale"], attrs["zero_point"], attrs["axis"]
    if len(scale) != len(zp) or not scale:
        raise ValueError(f"scale {scale} and zero_point {zp} must have one length (>= 1)")
    if any(not (np.isfinite(s) and s > 0) for s in scale):
        raise ValueError(f"scales must be positive and finite, got {scale}")
    if axis is None:
        if len(scale) != 1:
            raise ValueError(f"{len(scale)} scales need an axis (per-channel)")
        return
    row = t.row_shape
    if not -len(row) <= axis < 0:
        raise ValueError(f"axis {axis} is outside the row of {t} (count from the end)")
    if row[axis] != len(scale):
        raise ValueError(f"axis {axis} of {t} has {row[axis]} entries, {len(scale)} scales")


def per_axis(values: Sequence[Any], axis: int | None, dtype: Any) -> np.ndarray:
    """Scales or zero points shaped to broadcast along ``axis`` (from the end)."""
    arr = np.asarray(values, dtype=dtype)
    if axis is None:
        return arr.reshape(())
    return arr.reshape((-1,) + (1,) * (-axis - 1))


def _quantize_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    (t,) = types
    if t.dtype != "float":
        raise ValueError(f"quantize takes a float, got {t}")
    if attrs["to"] not in INT_RANGES:
        raise ValueError(f"to must be one of {sorted(INT_RANGES)}, got {attrs['to']!r}")
    _check(t, attrs)
    return TensorType(t.shape, attrs["to"])


def _on_grid(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    lo, hi = INT_RANGES[attrs["to"]]
    scale = per_axis(attrs["scale"], attrs["axis"], x.dtype)
    zp = per_axis(attrs["zero_point"], attrs["axis"], np.float64)
    return np.clip(np.rint(x / scale) + zp, lo, hi)


@register_op("quantize", arity=1, infer=_quantize_rule, attrs=(*QUANT_ATTRS, "to"))
def _quantize(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = saturate(round_half_even(x(t) / scale) + zero_point), an integer of kind ``to``"""
    return _on_grid(attrs, x).astype(np.dtype(attrs["to"]))


def _dequantize_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    (t,) = types
    if t.dtype not in INT_RANGES:
        raise ValueError(f"dequantize takes an int8, int16 or int32, got {t}")
    _check(t, attrs)
    return TensorType(t.shape, "float")


@register_op("dequantize", arity=1, infer=_dequantize_rule, attrs=QUANT_ATTRS)
def _dequantize(attrs: Mapping[str, Any], q: np.ndarray) -> np.ndarray:
    """y(t) = (q(t) - zero_point) * scale, a float"""
    ft = attrs.get("float_dtype", np.float32)
    zp = per_axis(attrs["zero_point"], attrs["axis"], np.int64)
    scale = per_axis(attrs["scale"], attrs["axis"], ft)
    return ((q.astype(np.int64) - zp).astype(ft) * scale).astype(ft)


def _fake_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    _quantize_rule(types, attrs)
    return types[0]


@register_op("fake_quant", arity=1, infer=_fake_rule, attrs=(*QUANT_ATTRS, "to"))
def _fake_quant(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = dequantize(quantize(x(t))): x on the integer grid of kind ``to``"""
    zp = per_axis(attrs["zero_point"], attrs["axis"], np.float64)
    scale = per_axis(attrs["scale"], attrs["axis"], x.dtype)
    return ((_on_grid(attrs, x) - zp).astype(x.dtype) * scale).astype(x.dtype)


def grid_bounds(attrs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The float range ``[lo, hi]`` a quantizer's grid covers (per channel when per-axis)."""
    qlo, qhi = INT_RANGES[attrs["to"]]
    scale = per_axis(attrs["scale"], attrs["axis"], np.float64)
    zp = per_axis(attrs["zero_point"], attrs["axis"], np.float64)
    return (qlo - zp) * scale, (qhi - zp) * scale


def _attrs(
    scale: float | Sequence[float], zero_point: int | Sequence[int], axis: int | None
) -> dict[str, Any]:
    scales = [float(s) for s in np.atleast_1d(scale)]
    zps = [int(z) for z in np.atleast_1d(zero_point)]
    if len(zps) == 1 and len(scales) > 1:
        zps = zps * len(scales)
    return {"scale": scales, "zero_point": zps, "axis": None if axis is None else int(axis)}


def quantize_linear(
    x: Value,
    scale: float | Sequence[float],
    zero_point: int | Sequence[int] = 0,
    to: str = "int8",
    *,
    axis: int | None = None,
    name: str | None = None,
) -> Value:
    """``x`` as integers of kind ``to`` (``"int8"``, ``"int16"``, ``"int32"``): ONNX
    ``QuantizeLinear``. Per-channel with a list of scales and ``axis`` (from the end).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("q")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.quantize_linear(x, 0.5, 0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].ravel().tolist()
    [-3, 0, 4]
    """
    attrs = {**_attrs(scale, zero_point, axis), "to": to}
    return x.graph.apply("quantize", [x], attrs, name=name)


def dequantize_linear(
    q: Value,
    scale: float | Sequence[float],
    zero_point: int | Sequence[int] = 0,
    *,
    axis: int | None = None,
    name: str | None = None,
) -> Value:
    """Integers back to floats: ``(q - zero_point) * scale`` (ONNX ``DequantizeLinear``).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("dq")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.dequantize_linear(rg.quantize_linear(x, 0.5, 0), 0.5, 0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-1.5, 0.0, 2.0]
    """
    return q.graph.apply("dequantize", [q], _attrs(scale, zero_point, axis), name=name)


def fake_quant(
    x: Value,
    scale: float | Sequence[float],
    zero_point: int | Sequence[int] = 0,
    to: str = "int8",
    *,
    axis: int | None = None,
    name: str | None = None,
) -> Value:
    """``dequantize(quantize(x))`` in one op, with a straight-through gradient inside the
    grid's range (quantisation-aware training; an ONNX Q/DQ pair).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("fq")
    >>> x = g.input("x", 3)
    >>> g.output("y", rg.fake_quant(x, 0.4, 0))
    >>> rg.run(g, {"x": np.array([[[-1.5, 0.0, 2.0]]])})["y"].round(4).ravel().tolist()
    [-1.6, 0.0, 2.0]
    """
    attrs = {**_attrs(scale, zero_point, axis), "to": to}
    return x.graph.apply("fake_quant", [x], attrs, name=name)
