"""Transcendental functions as plain TIR arithmetic, so that vector loops stay vectors.

TVM lowers ``tirx.exp``/``tirx.tanh`` to LLVM's intrinsics, which the x86
and Arm backends turn into one libm call per lane: a vectorised gate loop
then runs at the speed of scalar ``expf``. Written as range reduction, a
polynomial and an exponent built from integer bits, the same functions
vectorise (several times faster per element) and are as exact as float32
allows for our use:

- ``exp``: ``x = n ln2 + r`` with ``|r| <= ln2 / 2``, ``e^r`` by its Taylor
  series to degree 7 (truncation error below 6e-9), ``2^n`` from the
  exponent bits; relative error 8e-8 measured over [-87, 88]; above 88.72
  it is ``inf`` as float32's own, below -87 zero (float32's subnormals).
- ``tanh``: ``x P(x^2) / Q(x^2)`` on ``|x| <= 9`` (clamped beyond, where
  float32's tanh is +-1), a rational minimax fit (``tools/fit_tanh.py``):
  twelve operations where the exponential form took about thirty (with a
  division, a selection between a series near zero and the quotient, and
  the sign); absolute error 3e-7 (a few units in the last place), relative
  near zero the same.
- ``sigmoid``: ``(1 + tanh(x / 2)) / 2``, the same rational; absolute error
  2e-7 (its tail below -17 is zero, where the true value is under 4e-8).

Only float32 takes these forms; float64 keeps libm's functions (the
reference's 1e-12 agreement needs them).
"""

from __future__ import annotations

import math
from typing import Any

from tvm import tirx as tir

__all__ = ["absolute", "exp", "sigmoid", "tanh"]

F32 = "float32"


def _f(v: float) -> Any:
    return tir.const(v, F32)


def absolute(x: Any, dtype: str) -> Any:
    """``|x|`` as a select (TVM's C target has no rule for its ``fabs`` call)."""
    return tir.Select(x < tir.const(0, dtype), -x, x)


def exp(x: Any, dtype: str) -> Any:
    """``e^x``."""
    if dtype != F32:
        return tir.exp(x)
    big = tir.const(float("inf"), F32)
    return tir.Select(x > _f(88.72284), big, tir.Select(x < _f(-87.0), _f(0.0), _exp_normal(x)))


def _exp_normal(x: Any) -> Any:
    """``e^x`` for x in [-87, 88.72284] (clamped outside)."""
    hi = 0.693359375  # ln 2 in two parts: n * hi is exact in float32 for |n| < 2^9

    x = tir.max(tir.min(x, _f(88.72284)), _f(-87.0))
    n = tir.floor(x * _f(1.0 / math.log(2.0)) + _f(0.5))  # -125 .. 128
    r = x - n * _f(hi) - n * _f(math.log(2.0) - hi)
    p = _f(1.0 / math.factorial(7))  # e^r by its Taylor series
    for k in range(6, -1, -1):
        p = p * r + _f(1.0 / math.factorial(k))
    # 2^n = 2 * 2^(n - 1), the latter from the exponent bits (a normal float32 for every n)
    bits = tir.Cast("int32", n) + tir.const(126, "int32")
    return (p * _f(2.0)) * tir.reinterpret(F32, tir.shift_left(bits, tir.const(23, "int32")))


# tools/fit_tanh.py: tanh x ~ x P(x^2) / Q(x^2) for |x| <= TANH_CLAMP, lowest degree first
TANH_CLAMP = 9.0
TANH_P = (
    1.0,
    0.13084004819393158,
    0.0031039502937346697,
    1.1154241292388178e-05,
    -2.022492751052596e-08,
    5.277792092250877e-11,
    -8.488283182893006e-14,
)
TANH_Q = (1.0, 0.4641733169555664, 0.02449515461921692, 0.0002546136383898556)


def _horner(coefs: tuple[float, ...], y: Any) -> Any:
    v = _f(coefs[-1])
    for c in coefs[-2::-1]:
        v = v * y + _f(c)
    return v


def tanh(x: Any, dtype: str) -> Any:
    """``tanh x``."""
    if dtype != F32:
        return tir.tanh(x)
    x = tir.max(tir.min(x, _f(TANH_CLAMP)), _f(-TANH_CLAMP))
    y = x * x
    return x * _horner(TANH_P, y) / _horner(TANH_Q, y)


def sigmoid(x: Any, dtype: str) -> Any:
    """``1 / (1 + e^-x)``."""
    if dtype != F32:
        one = tir.const(1.0, dtype)
        return one / (one + tir.exp(-x))
    return _f(0.5) + _f(0.5) * tanh(x * _f(0.5), dtype)
