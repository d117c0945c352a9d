"""Integer-only ops: what a microcontroller or an NPU computes, defined exactly.

A graph of these ops (made by :func:`rnngraph.quant.to_integer` from a quantised
graph) holds every signal as an ``int8``/``int16`` (or an ``int32`` accumulator) and
never rounds a float: requantisation is an integer multiply and a rounding shift, and
nonlinearities are tables. Their reference semantics here are what the C export for
microcontrollers reproduces bit for bit.

- ``int_matmul(a, b)``: ``sum_k (a[..., k] - za) * (b[k, n] - zb)`` in int32 (an
  accumulator; its bound is checked when the graph is made).
- ``int_affine(x_1, ..., x_n, m_1, ..., m_n, offset)``: ``saturate(zero_point +
  round_shift(offset + sum_i (x_i - z_i) * m_i, shift))``: a weighted sum of integers
  brought to an output grid. The multipliers ``m_i`` and the ``offset`` are int64
  constants of one entry or one per entry of the last axis (per channel). Adding,
  subtracting, scaling by constants, biases and requantising one grid to another are
  this op.
- ``int_mul(a, b, m, offset)``: ``saturate(zero_point + round_shift(offset + (a - za) *
  (b - zb) * m, shift))``: the product of two signals on an output grid.
- ``int_div(a, b, m)``: ``saturate(zero_point + round_div((a - za) * m, (b - zb) *
  2**shift))``: a quotient of two signals on an output grid (a normalisation, a
  softmax's share, a layer norm's division by a root). ``round_div`` rounds to the
  nearest integer, halves up; a zero divisor gives the kind's largest value for a
  positive numerator, its least for a negative one and ``zero_point`` for zero (the
  float ``x / 0`` saturated).
- ``int_lut(x, table)``: a table (an int64 constant) over ``x``'s integer range:
  ``table[x - lo]`` (``bits = 0``), or for a 16-bit ``x`` every ``2**bits``-th entry with
  linear interpolation between (``i = (x - lo) >> bits``, ``f = (x - lo) & (2**bits -
  1)``: ``t[i] + round_shift((t[i+1] - t[i]) * f, bits)``), then saturated. Sigmoid,
  tanh and any other one-operand function of a quantised graph become one.

Every multiplier ``m`` is below ``2**31`` in magnitude (it fits an int32, so a product
with a narrow signal is one 32 x 32 -> 64 multiply on every target; the reference
refuses others). ``round_shift(v, s)`` is ``(v + 2**(s-1)) >> s`` (an arithmetic shift:
halves round up), ``v`` for ``s = 0``; ``saturate`` clips to the range of ``to``.

Examples
--------
>>> import numpy as np
>>> round_shift(np.array([5, 6, -5, -6]), 2).tolist()   # 1.25, 1.5, -1.25, -1.5
[1, 2, -1, -1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.registry import register_op
from rnngraph.ir.types import BATCH, INT_RANGES, TensorType, broadcast_shapes, format_shape

__all__ = ["DIV_ZERO", "INTEGER_OPS", "div_shift_limit", "lut_size", "round_div", "round_shift",
           "saturate", "spread"]  # fmt: skip

INTEGER_OPS = frozenset({"int_matmul", "int_affine", "int_mul", "int_div", "int_lut"})

_INTS = ("int8", "int16", "int32")


def round_shift(v: np.ndarray, shift: int) -> np.ndarray:
    """``v / 2**shift`` rounded to the nearest integer, halves up (int64 in and out)."""
    v = np.asarray(v, np.int64)
    if shift <= 0:
        return v
    return (v + np.int64(1 << (shift - 1))) >> np.int64(shift)


def round_div(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``n / d`` rounded to the nearest integer, halves up (int64 in and out; ``|n|`` and
    ``|d|`` below ``2**61``); a zero ``d`` gives ``DIV_ZERO`` with ``n``'s sign (0 for 0).

    >>> round_div(np.array([5, -5, 6, 7, -7, 0]), np.array([2, 2, -4, 0, 0, 0])).tolist()
    [3, -2, -1, 1099511627776, -1099511627776, 0]
    """
    n, d = np.broadcast_arrays(np.asarray(n, np.int64), np.asarray(d, np.int64))
    flip = d < 0
    n, d = np.where(flip, -n, n), np.abs(d)
    zero = d == 0
    w = 2 * np.where(zero, 1, d)
    q = np.floor_divide(2 * n + w // 2, w)
    return np.where(zero, np.sign(n) * DIV_ZERO, q)


DIV_ZERO = 1 << 40
"""What ``round_div`` gives for ``n / 0`` (times ``n``'s sign): past every kind's range,
so the output saturates as the float ``x / 0 = inf`` does."""


def div_shift_limit(kind: str, zero_point: int) -> int:
    """The largest ``shift`` of an ``int_div`` whose divisor is of ``kind``: ``2 * (b -
    zb) * 2**shift`` stays below ``2**62``."""
    return 61 - spread(kind, zero_point).bit_length()


def saturate(v: np.ndarray, to: str) -> np.ndarray:
    """``v`` clipped to the range of integer kind ``to``, as that kind."""
    lo, hi = INT_RANGES[to]
    return np.clip(v, lo, hi).astype(np.dtype(to))


def spread(kind: str, zero_point: int) -> int:
    """The largest ``|q - zero_point|`` an integer ``q`` of ``kind`` can give."""
    lo, hi = INT_RANGES[kind]
    return max(hi - zero_point, zero_point - lo)


def _fit_int32(op: str, *multipliers: np.ndarray) -> None:
    for m in multipliers:
        if np.asarray(m).size and np.abs(np.asarray(m, np.int64)).max() >= 2**31:
            raise ValueError(f"{op}: a multiplier of 2**31 or more ({np.abs(m).max()})")


def _to_grid(attrs: Mapping[str, Any], acc: np.ndarray) -> np.ndarray:
    """``saturate(zero_point + round_shift(acc, shift))``: a sum on the output's grid."""
    out = round_shift(acc, int(attrs["shift"])) + np.int64(attrs["zero_point"])
    return saturate(out, attrs["to"])


def _ints(types: Sequence[TensorType], op: str) -> None:
    for t in types:
        if t.dtype not in _INTS:
            raise ValueError(f"{op} takes int8, int16 or int32 operands, got {t}")


def _out_kind(attrs: Mapping[str, Any]) -> str:
    if attrs["to"] not in ("int8", "int16", "int32"):
        raise ValueError(f"to must be int8, int16 or int32, got {attrs['to']!r}")
    return str(attrs["to"])


# ------------------------------------------------------------------ int_matmul
def _matmul_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    _ints(types, "int_matmul")
    a, b = types
    if len(attrs["zero_points"]) != 2:
        raise ValueError("int_matmul takes two zero points (a's and b's)")
    if b.batched or len(b.shape) != 2:
        raise ValueError(f"int_matmul multiplies a signal by a (K, N) matrix, got b {b}")
    if len(a.shape) < 2 or a.shape[-1] != b.shape[0]:
        raise ValueError(
            f"inner dimensions differ: {format_shape(a.shape)} @ {format_shape(b.shape)}"
        )
    return TensorType((*a.shape[:-1], b.shape[1]), "int32")


@register_op("int_matmul", arity=2, infer=_matmul_rule, attrs=("zero_points",))
def _int_matmul(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = sum_k (a(t)[..., k] - za) * (b[k, :] - zb), an int32 accumulator"""
    za, zb = (np.int64(z) for z in attrs["zero_points"])
    acc = np.matmul(a.astype(np.int64) - za, b.astype(np.int64) - zb)
    lo, hi = INT_RANGES["int32"]
    if acc.size and (acc.min() < lo or acc.max() > hi):
        raise ValueError("int_matmul: the int32 accumulator overflowed")
    return acc.astype(np.int32)


# ------------------------------------------------------------------ int_affine
def _vector(t: TensorType, shape: Sequence[Any], what: str) -> None:
    """A multiplier, offset or table: an int64 constant of one entry or one per entry of
    the last axis."""
    if t.batched or t.dtype != "int64" or len(t.shape) != 1:
        raise ValueError(f"{what} must be a 1-d int64 constant, got {t}")
    last = shape[-1] if shape else 1
    if t.shape[0] not in (1, last):
        raise ValueError(
            f"{what} has {t.shape[0]} entries: one, or one per entry of the last axis "
            f"({last} in {format_shape(tuple(shape))})"
        )


def _sum_rule(types: Sequence[TensorType], attrs: Mapping[str, Any], op: str) -> TensorType:
    n = len(attrs["zero_points"])
    signals, rest = types[:n], types[n:]
    _ints(signals, op)
    kind = _out_kind(attrs)
    shape = broadcast_shapes([t.shape for t in types])  # (the vectors along the last axis)
    if not shape or shape[0] != BATCH:
        raise ValueError(f"{op} computes a signal: one operand must be one")
    for t in rest:
        _vector(t, shape, "a multiplier or offset")
    if not 0 <= int(attrs["shift"]) <= 62:
        raise ValueError(f"shift must be in [0, 62], got {attrs['shift']}")
    return TensorType(shape, kind)


def _affine_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    n = len(attrs["zero_points"])
    if len(types) != 2 * n + 1 or n < 1:
        raise ValueError(
            f"int_affine takes n signals, n multipliers and an offset ({len(types)} operands, "
            f"{n} zero points)"
        )
    return _sum_rule(types, attrs, "int_affine")


@register_op(
    "int_affine",
    arity=None,
    infer=_affine_rule,
    attrs=("zero_points", "shift", "zero_point", "to"),
)
def _int_affine(attrs: Mapping[str, Any], *args: np.ndarray) -> np.ndarray:
    """y(t) = saturate(zero_point + round_shift(offset + sum_i (x_i(t) - z_i) * m_i, shift))"""
    n = len(attrs["zero_points"])
    xs, ms, offset = args[:n], args[n : 2 * n], args[2 * n]
    _fit_int32("int_affine", *ms)
    acc = np.asarray(offset, np.int64)
    for x, z, m in zip(xs, attrs["zero_points"], ms, strict=True):
        acc = acc + (x.astype(np.int64) - np.int64(z)) * np.asarray(m, np.int64)
    acc = np.broadcast_to(acc, np.broadcast_shapes(acc.shape, *(x.shape for x in xs)))
    return _to_grid(attrs, acc)


# --------------------------------------------------------------------- int_mul
def _mul_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    if len(attrs["zero_points"]) != 2:
        raise ValueError("int_mul takes two zero points")
    return _sum_rule(types, attrs, "int_mul")


@register_op(
    "int_mul",
    arity=4,
    infer=_mul_rule,
    attrs=("zero_points", "shift", "zero_point", "to"),
)
def _int_mul(
    attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray, m: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """y(t) = saturate(zero_point + round_shift(offset + (a(t) - za) * (b(t) - zb) * m, shift))"""
    za, zb = (np.int64(z) for z in attrs["zero_points"])
    _fit_int32("int_mul", m)
    prod = (a.astype(np.int64) - za) * (b.astype(np.int64) - zb)
    acc = np.asarray(offset, np.int64) + prod * np.asarray(m, np.int64)
    return _to_grid(attrs, acc)


# --------------------------------------------------------------------- int_div
def _div_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    if len(attrs["zero_points"]) != 2 or len(types) != 3:
        raise ValueError("int_div takes a numerator, a divisor, a multiplier and two zero points")
    t = _sum_rule(types, attrs, "int_div")
    limit = div_shift_limit(types[1].dtype, int(attrs["zero_points"][1]))
    if int(attrs["shift"]) > limit:
        raise ValueError(f"shift must be at most {limit} for a {types[1].dtype} divisor")
    return t


@register_op(
    "int_div",
    arity=3,
    infer=_div_rule,
    attrs=("zero_points", "shift", "zero_point", "to"),
)
def _int_div(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray, m: np.ndarray) -> np.ndarray:
    """y(t) = saturate(zero_point + round_div((a(t) - za) * m, (b(t) - zb) * 2**shift))"""
    za, zb = (np.int64(z) for z in attrs["zero_points"])
    _fit_int32("int_div", m)
    n = (a.astype(np.int64) - za) * np.asarray(m, np.int64)
    d = (b.astype(np.int64) - zb) * np.int64(1 << int(attrs["shift"]))
    q = round_div(n, d) + np.int64(attrs["zero_point"])
    return saturate(q, attrs["to"])


# --------------------------------------------------------------------- int_lut
def lut_size(kind: str, bits: int) -> int:
    """Entries of a table over integer kind ``kind`` sampled every ``2**bits`` values."""
    lo, hi = INT_RANGES[kind]
    return ((hi - lo) >> bits) + 1 + (1 if bits else 0)


def _lut_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    t, table = types
    if t.dtype not in ("int8", "int16"):
        raise ValueError(f"int_lut takes an int8 or int16, got {t}")
    kind = _out_kind(attrs)
    bits = int(attrs["bits"])
    if not 0 <= bits <= 15:
        raise ValueError(f"bits must be in [0, 15], got {bits}")
    want = lut_size(t.dtype, bits)
    if table.batched or table.dtype != "int64" or table.shape != (want,):
        raise ValueError(
            f"a table over {t.dtype} every {2**bits} values is an int64 constant of "
            f"{want} entries, got {table}"
        )
    if int(attrs["lo"]) != INT_RANGES[t.dtype][0]:
        raise ValueError(f"lo must be the least {t.dtype}, {INT_RANGES[t.dtype][0]}")
    return TensorType(t.shape, kind)


@register_op("int_lut", arity=2, infer=_lut_rule, attrs=("lo", "bits", "to"))
def _int_lut(attrs: Mapping[str, Any], x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """y(t) = saturate(table[x(t) - lo]), every 2**bits-th entry with linear interpolation"""
    table = np.asarray(table, np.int64)
    i = x.astype(np.int64) - np.int64(attrs["lo"])
    bits = int(attrs["bits"])
    if not bits:
        return saturate(table[i], attrs["to"])
    k, f = i >> bits, i & ((1 << bits) - 1)
    out = table[k] + round_shift((table[k + 1] - table[k]) * f, bits)
    return saturate(out, attrs["to"])
