"""Shape and dtype rules shared by several ops, and axis normalization."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rnngraph.ir.graph import Value
from rnngraph.ir.types import TensorType, broadcast_shapes, format_shape

__all__ = [
    "checked_axis",
    "elementwise",
    "float_operands",
    "normalize_axis",
    "same_as_first",
    "unary_float",
]


def float_operands(types: Sequence[TensorType]) -> None:
    for t in types:
        if t.dtype != "float":
            raise ValueError(f"expects float operands, got {t}; use rnngraph.cast first")


def unary_float(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    float_operands(types)
    return types[0]


def same_as_first(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    return types[0]


def elementwise(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    """NumPy broadcasting (with the batch axis) of float operands."""
    float_operands(types)
    return TensorType(broadcast_shapes([t.shape for t in types]), "float")


def normalize_axis(axis: int, t: TensorType, *, what: str = "axis") -> int:
    """An axis of ``t``'s per-step shape, counted from the end (negative).

    Reference functions see signals with extra leading axes (time), so axes
    are stored from the end. The batch axis of a signal cannot be named:
    per-step ops act on each batch row alike.
    """
    rank = t.rank
    if not -rank <= axis < rank:
        raise ValueError(f"{what} {axis} is out of range for shape {format_shape(t.shape)}")
    neg = axis - rank if axis >= 0 else axis
    if t.batched and neg == -rank:
        raise ValueError(
            f"{what} {axis} is the batch axis of {format_shape(t.shape)}; per-step ops act "
            "on each batch row alike and cannot mix rows"
        )
    return neg


def checked_axis(op: str, x: Value, axis: int, name: str | None) -> int:
    """:func:`normalize_axis` of ``x``'s type, its error a ShapeError naming ``op``'s node."""
    try:
        return normalize_axis(axis, x.type)
    except ValueError as e:
        raise x.graph.shape_error(op, name, str(e), [x]) from None
