"""ONNX rules for the integer-only ops (:mod:`rnngraph.ops.integer`), in int64 arithmetic.

Every op widens its operands to int64 (``Cast``), computes its sums and products there,
rounds with an exact floor division (``(v - Mod(v, d)) / d`` with ``Mod``'s integer
form, whose result takes the divisor's sign), saturates with ``Clip`` and narrows back.
onnxruntime computes these with its own integer kernels, so running an integer graph
there checks the reference's arithmetic independently, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from onnx import TensorProto

from rnngraph.ir.types import INT_RANGES
from rnngraph.ops.integer import DIV_ZERO

if TYPE_CHECKING:
    from rnngraph_onnx._emit import Emitter
    from rnngraph_onnx._lowering import LoweredNode, LowerFn

__all__ = ["INTEGER_LOWERING", "widened"]

_KIND = {"int8": TensorProto.INT8, "int16": TensorProto.INT16, "int32": TensorProto.INT32}


def _i64(e: Emitter, v: int) -> str:
    return e.const(np.asarray(v, np.int64), "i64")


def _wide(e: Emitter, x: str, hint: str) -> str:
    return e.add("Cast", [x], f"{hint}.wide", to=TensorProto.INT64)


def _centred(e: Emitter, x: str, zero_point: int, hint: str) -> str:
    wide = _wide(e, x, hint)
    return wide if not zero_point else e.add("Sub", [wide, _i64(e, zero_point)], f"{hint}.c")


def _round_shift(e: Emitter, v: str, shift: int, hint: str) -> str:
    """floor((v + 2**(shift-1)) / 2**shift), exactly, in int64."""
    if shift == 0:
        return v
    d = _i64(e, 1 << shift)
    v = e.add("Add", [v, _i64(e, 1 << (shift - 1))], f"{hint}.half")
    rest = e.add("Mod", [v, d], f"{hint}.rest", fmod=0)
    return e.add("Div", [e.add("Sub", [v, rest], f"{hint}.whole"), d], f"{hint}.shifted")


def _to_grid(e: Emitter, n: LoweredNode, acc: str) -> str:
    """saturate(zero_point + round_shift(acc, shift)) as the output's kind."""
    v = _round_shift(e, acc, int(n.attrs["shift"]), n.name)
    v = e.add("Add", [v, _i64(e, int(n.attrs["zero_point"]))], f"{n.name}.zp")
    return _narrow(e, n, v)


def _narrow(e: Emitter, n: LoweredNode, v: str) -> str:
    lo, hi = INT_RANGES[n.attrs["to"]]
    v = e.add("Clip", [v, _i64(e, lo), _i64(e, hi)], f"{n.name}.sat")
    return e.add("Cast", [v], n.name, to=_KIND[n.attrs["to"]])


def _int_matmul(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    za, zb = (int(z) for z in n.attrs["zero_points"])
    a = _centred(e, args[0], za, f"{n.name}.a")
    b = _centred(e, args[1], zb, f"{n.name}.b")
    acc = e.add("MatMul", [a, b], f"{n.name}.acc")
    return e.add("Cast", [acc], n.name, to=TensorProto.INT32)


def _int_affine(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    k = len(n.attrs["zero_points"])
    acc = args[2 * k]
    for i, (x, z, m) in enumerate(zip(args[:k], n.attrs["zero_points"], args[k : 2 * k],
                                      strict=True)):  # fmt: skip
        term = e.add("Mul", [_centred(e, x, int(z), f"{n.name}.x{i}"), m], f"{n.name}.t{i}")
        acc = e.add("Add", [acc, term], f"{n.name}.acc")
    return _to_grid(e, n, acc)


def _int_mul(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    za, zb = (int(z) for z in n.attrs["zero_points"])
    a, b, m, offset = args
    prod = e.add("Mul", [_centred(e, a, za, f"{n.name}.a"), _centred(e, b, zb, f"{n.name}.b")],
                 f"{n.name}.prod")  # fmt: skip
    acc = e.add("Add", [offset, e.add("Mul", [prod, m], f"{n.name}.scaled")], f"{n.name}.acc")
    return _to_grid(e, n, acc)


def _int_div(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    """round_div((a - za) * m, (b - zb) * 2**shift): the divisor's sign moved onto the
    numerator, then floor((2 n + d) / 2 d) exactly; a zero divisor: DIV_ZERO times the
    numerator's sign."""
    za, zb = (int(z) for z in n.attrs["zero_points"])
    a, b, m = args
    num = e.add("Mul", [_centred(e, a, za, f"{n.name}.a"), m], f"{n.name}.n")
    den = e.add("Mul", [_centred(e, b, zb, f"{n.name}.b"), _i64(e, 1 << int(n.attrs["shift"]))],
                f"{n.name}.d")  # fmt: skip
    sign = e.add("Sign", [den], f"{n.name}.sign")
    zero = e.add("Equal", [den, _i64(e, 0)], f"{n.name}.zero")
    inf = e.add("Mul", [e.add("Sign", [num], f"{n.name}.nsign"), _i64(e, DIV_ZERO)],
                f"{n.name}.inf")  # fmt: skip
    num = e.add("Mul", [num, sign], f"{n.name}.n1")
    den = e.add("Where", [zero, _i64(e, 1), e.add("Abs", [den], f"{n.name}.abs")], f"{n.name}.d1")
    w = e.add("Add", [den, den], f"{n.name}.w")
    v = e.add("Add", [e.add("Add", [num, num], f"{n.name}.n2"), den], f"{n.name}.v")
    rest = e.add("Mod", [v, w], f"{n.name}.rest", fmod=0)
    q = e.add("Div", [e.add("Sub", [v, rest], f"{n.name}.whole"), w], f"{n.name}.q")
    q = e.add("Where", [zero, inf, q], f"{n.name}.quotient")
    q = e.add("Add", [q, _i64(e, int(n.attrs["zero_point"]))], f"{n.name}.zp")
    return _narrow(e, n, q)


def _int_lut(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    x, table = args
    i = _centred(e, x, int(n.attrs["lo"]), n.name)  # (x - lo >= 0)
    bits = int(n.attrs["bits"])
    if not bits:
        return _narrow(e, n, e.add("Gather", [table, i], f"{n.name}.looked"))
    step = _i64(e, 1 << bits)
    k = e.add("Div", [i, step], f"{n.name}.k")
    f = e.add("Sub", [i, e.add("Mul", [k, step], f"{n.name}.at")], f"{n.name}.f")
    t0 = e.add("Gather", [table, k], f"{n.name}.t0")
    t1 = e.add("Gather", [table, e.add("Add", [k, _i64(e, 1)], f"{n.name}.k1")], f"{n.name}.t1")
    slope = e.add("Mul", [e.add("Sub", [t1, t0], f"{n.name}.d"), f], f"{n.name}.slope")
    v = e.add("Add", [t0, _round_shift(e, slope, bits, n.name)], f"{n.name}.v")
    return _narrow(e, n, v)


def widened(rule: LowerFn, condition: int | None = None) -> LowerFn:
    """``rule`` for int8 / int16 / bool values through int32 (onnxruntime's Where,
    ReduceMax and Pad have no kernels for these kinds): exact, as the values only move.
    ``condition``: the position of an operand that is not a value (Where's condition)."""
    narrow = {**_KIND, "bool": TensorProto.BOOL}

    def wide_rule(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
        if n.type.dtype not in ("int8", "int16", "bool"):
            return rule(e, n, args)
        wide = [
            e.add("Cast", [a], f"{n.name}.i32", to=TensorProto.INT32)
            if t.dtype == n.type.dtype and i != condition
            else a
            for i, (a, t) in enumerate(zip(args, n.operand_types, strict=True))
        ]
        out = rule(e, n, wide)
        return e.add("Cast", [out], f"{n.name}.narrow", to=narrow[n.type.dtype])

    return wide_rule


INTEGER_LOWERING: dict[str, LowerFn] = {
    "int_matmul": _int_matmul,
    "int_affine": _int_affine,
    "int_mul": _int_mul,
    "int_div": _int_div,
    "int_lut": _int_lut,
}
