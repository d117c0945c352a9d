"""One TIR rule per op: the loops that compute one row of an op's result.

A rule receives the node, an accessor for its result and one per operand,
and returns the statement that computes one batch row (or the whole value of
a time-invariant node). The code generator wraps it in the batch loop, and
in the time loop of a recurrent region or over the whole sequence. Loops are
plain nests over the row's axes, innermost axis last (contiguous), which
LLVM vectorises. Element-wise ops are written once as an element expression
(:data:`ELEMENTS`), from which both their loop rule and their inlined form
(evaluated inside a consumer's loop) come. On CPUs a product of a signal and
a weight goes to the blocked kernel of ``_gemm`` instead of the ``matmul``
rule here (which accumulates over ``k`` outside the output axis so the
inner loop streams a weight row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tvm import tirx as tir

from rnngraph.errors import CompileError
from rnngraph.ir.types import INT_RANGES
from rnngraph.ops import fixed
from rnngraph.ops import random as rnd
from rnngraph.ops.integer import DIV_ZERO, spread
from rnngraph.ops.structure import slice_ranges
from rnngraph_tvm import _math

__all__ = [
    "ELEMENTS",
    "IN_PLACE",
    "NEEDS_ROW",
    "NEEDS_SCRATCH",
    "NEEDS_TARGET",
    "REMAPS",
    "REPEATS",
    "RULES",
    "Acc",
    "bcast",
    "extent",
    "i64",
    "loops",
    "read_only",
    "seq",
]

I64 = "int64"
I32 = "int32"


def i64(v: int) -> Any:
    """An index constant (the generator's indices are int64)."""
    return tir.const(v, I64)


def seq(stmts: Sequence[Any]) -> Any:
    """Statements in order (TIR forbids a sequence of one)."""
    return stmts[0] if len(stmts) == 1 else tir.SeqStmt(list(stmts))


@dataclass
class Acc:
    """Reads and writes of one value's row at the current step and batch row.

    ``load(idx)`` gives the element at row index ``idx``; ``store`` writes it.
    ``shape`` is the row's shape: sizes, and TIR variables for symbolic dimensions.
    """

    shape: tuple[int, ...]
    load: Callable[[Sequence[Any]], Any]
    store: Callable[[Sequence[Any], Any], Any]
    dtype: str


def read_only(idx: Sequence[Any], value: Any) -> Any:
    """The ``store`` of an operand: rules never write their operands."""
    raise TypeError("an operand is read-only")


def extent(n: Any) -> Any:
    """A dimension as a TIR expression: a size, or the variable of a symbolic one."""
    return i64(n) if isinstance(n, int) else n


def loops(shape: Sequence[Any], body: Callable[[list[Any]], Any], hint: str = "i") -> Any:
    """A loop nest over ``shape`` (row-major) around ``body(indices)``."""
    vars_ = [tir.Var(f"{hint}{k}", I64) for k in range(len(shape))]
    stmt = body(vars_)
    for v, n in reversed(list(zip(vars_, shape, strict=True))):
        stmt = tir.For(v, i64(0), extent(n), tir.ForKind.SERIAL, stmt)
    return stmt


def bcast(idx: Sequence[Any], shape: Sequence[int], out: Sequence[int]) -> list[Any]:
    """``idx`` into ``out`` mapped to an operand of ``shape`` (numpy broadcasting)."""
    off = len(out) - len(shape)
    return [
        i64(0) if isinstance(n, int) and n == 1 and out[off + i] != 1 else idx[off + i]
        for i, n in enumerate(shape)
    ]


RULES: dict[str, Callable[..., Any]] = {}
"""op -> rule(node, out, args): the statement computing one row of the node."""

ELEMENTS: dict[str, Callable[..., Callable[[Sequence[Any]], Any]]] = {}
"""op -> element(node, shape, dtype, args): ``idx -> value`` of one element of the result.

Ops whose every element is an expression of a few operand elements. Their
rules are a loop nest around it; the code generator may also inline such a
node into its one consumer (no buffer, no loop of its own).
"""

REMAPS = {"slice", "transpose", "reshape", "unsqueeze", "pad", "state", "delay", "stop_gradient"}
"""Element ops whose element is one operand element at another index."""

REPEATS = {
    "exp",
    "tanh",
    "sigmoid",
    "softplus",
    "softsign",
    "abs",
    "leaky_relu",
    "int_lut",
    "int_div",
}
"""Element ops whose formula uses its operand more than once (see ``_math``).

An operand inlined into one of them is copied at every use, so only a plain
remapped read may be (a chain of them would grow exponentially; TIR's ``Let``
does not help: TVM's simplifier expands the bindings again).
"""


def _element_rule(op: str) -> Callable[..., Any]:
    def rule(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
        element = ELEMENTS[op](node, out.shape, out.dtype, args)
        return loops(out.shape, lambda idx: out.store(idx, element(idx)))

    return rule


def _elementwise(fn: Callable[..., Any]) -> Callable[..., Callable[[Sequence[Any]], Any]]:
    def element(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
        def at(idx: list[Any]) -> Any:
            return fn(node, dtype, *(a.load(bcast(idx, a.shape, shape)) for a in args))

        return at

    return element


def _f(dtype: str, v: float) -> Any:
    return tir.const(v, dtype)


_FNS: dict[str, Callable[..., Any]] = {
    "add": lambda n, d, a, b: a + b,
    "sub": lambda n, d, a, b: a - b,
    "mul": lambda n, d, a, b: a * b,
    "div": lambda n, d, a, b: a / b,
    "pow": lambda n, d, a, b: tir.power(a, b),
    "maximum": lambda n, d, a, b: tir.max(a, b),
    "minimum": lambda n, d, a, b: tir.min(a, b),
    "neg": lambda n, d, a: -a,
    "abs": lambda n, d, a: _math.absolute(a, d),
    "exp": lambda n, d, a: _math.exp(a, d),
    "log": lambda n, d, a: tir.log(a),
    "erf": lambda n, d, a: tir.erf(a),
    "sin": lambda n, d, a: tir.sin(a),
    "cos": lambda n, d, a: tir.cos(a),
    "atan": lambda n, d, a: tir.atan(a),
    "floor": lambda n, d, a: tir.floor(a),
    "ceil": lambda n, d, a: tir.ceil(a),
    "sqrt": lambda n, d, a: tir.sqrt(a),
    "tanh": lambda n, d, a: _math.tanh(a, d),
    "sigmoid": lambda n, d, a: _math.sigmoid(a, d),
    "relu": lambda n, d, a: tir.max(a, _f(d, 0.0)),
    "leaky_relu": lambda n, d, a: tir.Select(a >= _f(d, 0.0), a, _f(d, n.attrs["alpha"]) * a),
    "heaviside": lambda n, d, a: tir.Select(a > _f(d, 0.0), _f(d, 1.0), _f(d, 0.0)),
    "softsign": lambda n, d, a: a / (_f(d, 1.0) + _math.absolute(a, d)),
    "softplus": lambda n, d, a: (
        tir.max(a, _f(d, 0.0)) + tir.log(_f(d, 1.0) + _math.exp(-_math.absolute(a, d), d))
    ),
    "hard_sigmoid": lambda n, d, a: tir.max(
        _f(d, 0.0), tir.min(_f(d, 1.0), _f(d, n.attrs["alpha"]) * a + _f(d, n.attrs["beta"]))
    ),
    "greater": lambda n, d, a, b: a > b,
    "less": lambda n, d, a, b: a < b,
    "equal": lambda n, d, a, b: a == b,
    "where": lambda n, d, c, a, b: tir.Select(c, a, b),
    "state": lambda n, d, a: a,
    "delay": lambda n, d, a: a,
    "stop_gradient": lambda n, d, a: a,
    "zeros_like": lambda n, d, a: tir.const(0, d),
    "cast": lambda n, d, a: tir.Cast(d, a),
}
for _op, _fn in _FNS.items():
    ELEMENTS[_op] = _elementwise(_fn)


# Quantisation (per tensor; a per-channel grid is a weight's, computed before the kernel).
def _grid(n: Any, d: str, a: Any) -> Any:
    """clip(nearbyint(a / scale) + zero_point) in ``d`` (nearbyint: half to even)."""
    if n.attrs["axis"] is not None:
        raise CompileError(
            f"node {n.name!r}: the TVM backend quantises signals per tensor, not per channel"
        )
    lo, hi = INT_RANGES[n.attrs["to"]]
    q = tir.nearbyint(a / _f(d, n.attrs["scale"][0])) + _f(d, n.attrs["zero_point"][0])
    return tir.min(tir.max(q, _f(d, lo)), _f(d, hi))


def _dequantize_at(n: Any, d: str, a: Any) -> Any:
    if n.attrs["axis"] is not None:
        raise CompileError(
            f"node {n.name!r}: the TVM backend dequantises signals per tensor, not per channel"
        )
    centred = tir.Cast(d, tir.Cast("int64", a) - tir.const(n.attrs["zero_point"][0], "int64"))
    return centred * _f(d, n.attrs["scale"][0])


def _quantize(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    (x,) = args  # (the grid in the input's float type, then the integer)
    return lambda idx: tir.Cast(dtype, _grid(node, x.dtype, x.load(bcast(idx, x.shape, shape))))


ELEMENTS["quantize"] = _quantize
ELEMENTS["dequantize"] = _elementwise(_dequantize_at)
ELEMENTS["fake_quant"] = _elementwise(
    lambda n, d, a: (_grid(n, d, a) - _f(d, n.attrs["zero_point"][0])) * _f(d, n.attrs["scale"][0])
)


def _clip(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    lo, hi = node.attrs["min"], node.attrs["max"]

    def at(idx: list[Any]) -> Any:
        v = args[0].load(idx)
        if lo is not None:
            v = tir.max(v, _f(dtype, lo))
        if hi is not None:
            v = tir.min(v, _f(dtype, hi))
        return v

    return at


def _matmul(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
    """numpy matmul on rows; a batch row ``(K,)`` times ``(K, N)`` is a vector-matrix product."""
    a, b = args
    ash, bsh, osh = list(a.shape), list(b.shape), list(out.shape)
    a_vec, b_vec = len(ash) == 1, len(bsh) == 1
    n_lead = len(osh) - (0 if a_vec else 1) - (0 if b_vec else 1)
    lead_out = osh[:n_lead]
    a_lead, b_lead = (
        ash[: len(ash) - 2 * (not a_vec) - a_vec],
        bsh[: len(bsh) - 2 * (not b_vec) - b_vec],
    )
    k = tir.Var("k", I64)

    def term(idx: list[Any]) -> Any:
        lead, rest = idx[:n_lead], idx[n_lead:]
        i = None if a_vec else rest[0]
        j = None if b_vec else rest[-1]
        ai = [*bcast(lead, a_lead, lead_out), *([] if a_vec else [i]), k]
        bi = [*bcast(lead, b_lead, lead_out), k, *([] if b_vec else [j])]
        return out.store(idx, out.load(idx) + a.load(ai) * b.load(bi))

    init = loops(osh, lambda idx: out.store(idx, tir.const(0, out.dtype)), "z")
    reduce_k = lambda body: tir.For(k, i64(0), extent(ash[-1]), tir.ForKind.SERIAL, body)  # noqa: E731
    if not osh:
        return tir.SeqStmt([init, reduce_k(term([]))])
    # k outside the output's last axis: the inner loop streams a row of b.
    outer = loops(
        osh[:-1],
        lambda idx: reduce_k(loops([osh[-1]], lambda last: term([*idx, *last]), "j")),
        "m",
    )
    return tir.SeqStmt([init, outer])


def _concat(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
    axis = len(out.shape) + node.attrs["axis"]
    parts, offset = [], 0
    for a in args:

        def body(idx: list[Any], a: Acc = a, offset: int = offset) -> Any:
            at = list(idx)
            at[axis] = idx[axis] + i64(offset)
            return out.store(at, a.load(bcast(idx, a.shape, a.shape)))

        parts.append(loops(a.shape, body))
        offset += int(a.shape[axis])
    return tir.SeqStmt(parts)


def _slice(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    (a,) = args
    spans = {
        len(a.shape) + axis: (kept.start if len(kept) else 0, kept.step)
        for axis, kept in slice_ranges(node.attrs, a.shape).items()
    }

    def at(idx: list[Any]) -> Any:
        return a.load(
            [
                i64(spans[i][0]) + idx[i] * i64(spans[i][1]) if i in spans else v
                for i, v in enumerate(idx)
            ]
        )

    return at


def _transpose(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    perm = node.attrs["perm"]

    def at(idx: list[Any]) -> Any:
        src: list[Any] = [None] * len(perm)
        for o, p in enumerate(perm):
            src[p] = idx[o]
        return args[0].load(src)

    return at


def _reshape(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    (a,) = args

    def at(idx: list[Any]) -> Any:
        flat = i64(0)
        for v, n in zip(idx, shape, strict=True):
            flat = flat * i64(int(n)) + v
        src = []
        for n in reversed(a.shape):
            src.append(tir.floormod(flat, i64(int(n))))
            flat = tir.floordiv(flat, i64(int(n)))
        return a.load(list(reversed(src)))

    return at


def _reduce(kind: str) -> Callable[..., Any]:
    def rule(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
        (a,) = args
        axes = sorted(len(a.shape) + ax for ax in node.attrs["axes"])
        keep = node.attrs["keepdims"]
        kept = [i for i in range(len(a.shape)) if i not in axes]
        count = i64(1)
        for ax in axes:
            count = count * extent(a.shape[ax])

        def out_index(idx: list[Any]) -> list[Any]:
            if keep:
                return [i64(0) if i in axes else idx[i] for i in range(len(a.shape))]
            return [idx[i] for i in kept]

        start = {
            "sum": tir.const(0, out.dtype),
            "mean": tir.const(0, out.dtype),
            "max": tir.min_value(out.dtype),
            "min": tir.max_value(out.dtype),
            "prod": tir.const(1, out.dtype),
        }[kind]
        init = loops(out.shape, lambda idx: out.store(idx, start), "z")

        def acc(idx: list[Any]) -> Any:
            o = out_index(idx)
            v, cur = a.load(idx), out.load(o)
            new = {
                "sum": cur + v,
                "mean": cur + v,
                "max": tir.max(cur, v),
                "min": tir.min(cur, v),
                "prod": cur * v,
            }
            return out.store(o, new[kind])

        stmts = [init, loops(a.shape, acc)]
        if kind == "mean":
            stmts.append(
                loops(
                    out.shape,
                    lambda idx: out.store(idx, out.load(idx) / tir.Cast(out.dtype, count)),
                )
            )
        return tir.SeqStmt(stmts)

    return rule


def _softmax(log: bool) -> Callable[..., Any]:
    """Softmax (or its log) along one axis: the max, the sum of exponentials, then each
    element, with the max and the sum in scratch rows of the other axes."""

    def rule(node: Any, out: Acc, args: Sequence[Acc], scratch: Any, gpu: bool = False) -> Any:
        (x,) = args
        d = out.dtype
        axis = len(out.shape) + int(node.attrs["axis"])
        if not gpu and axis == len(out.shape) - 1 and isinstance(out.shape[-1], int):
            return _softmax_rows(log, x, out)  # (a GPU thread: the loops below)
        others = [n for i, n in enumerate(out.shape) if i != axis]
        top, total = scratch(others), scratch(others)

        def o(idx: list[Any]) -> list[Any]:
            return [v for i, v in enumerate(idx) if i != axis]

        def shifted(idx: list[Any]) -> Any:
            return x.load(idx) - top.load(o(idx))

        stmts = [
            loops(others, lambda idx: top.store(idx, tir.min_value(d)), "z"),
            loops(others, lambda idx: total.store(idx, tir.const(0, d)), "z"),
            loops(out.shape, lambda idx: top.store(o(idx), tir.max(top.load(o(idx)), x.load(idx)))),
        ]
        if log:
            stmts += [
                loops(
                    out.shape,
                    lambda idx: total.store(
                        o(idx), total.load(o(idx)) + _math.exp(shifted(idx), d)
                    ),
                ),
                loops(
                    out.shape,
                    lambda idx: out.store(idx, shifted(idx) - tir.log(total.load(o(idx)))),
                ),
            ]
        else:
            stmts += [
                loops(out.shape, lambda idx: out.store(idx, _math.exp(shifted(idx), d))),
                loops(
                    out.shape,
                    lambda idx: total.store(o(idx), total.load(o(idx)) + out.load(idx)),
                ),
                loops(out.shape, lambda idx: out.store(idx, out.load(idx) / total.load(o(idx)))),
            ]
        return tir.SeqStmt(stmts)

    return rule


def _softmax_rows(log: bool, x: Acc, out: Acc) -> Any:
    """Softmax (or its log) along a last axis of a fixed size, one row at a time while it is
    in L1: its max and its sum each in vector lanes (:func:`_lane_reduce`; one running
    value in memory makes every element wait for the last one's store), the exponentials
    and the quotients in vector loops."""
    lead, n, d = list(out.shape[:-1]), int(out.shape[-1]), out.dtype

    def per_row(idx: list[Any]) -> Any:
        j = tir.Var("j", I64)
        each = lambda body: tir.For(j, i64(0), i64(n), tir.ForKind.SERIAL, body)  # noqa: E731
        find, top = _lane_reduce(
            lambda k: x.load([*idx, k]), n, d, "top", "global", tir.max, tir.min_value(d)
        )
        shifted = x.load([*idx, j]) - top
        if log:
            add, total = _lane_sum(lambda k: _math.exp(x.load([*idx, k]) - top, d), n, d, "total")
            return seq([*find, *add, each(out.store([*idx, j], shifted - tir.log(total)))])
        add, total = _lane_sum(lambda k: out.load([*idx, k]), n, d, "total")
        return seq([
            *find,
            each(out.store([*idx, j], _math.exp(shifted, d))),
            *add,
            each(out.store([*idx, j], out.load([*idx, j]) / total)),
        ])  # fmt: skip

    return loops(lead, per_row, "r")


LANES = 16
"""Partial sums a row's sum keeps (:func:`_lane_sum`): one vector of float32 on AVX-512."""


def _lane_sum(
    term: Callable[[Any], Any], n: int, d: str, name: str, scope: str = "global"
) -> tuple[list[Any], Any]:
    """Statements that sum ``term(j)`` for ``j < n``, and the sum: ``LANES`` partial sums
    in a small buffer of ``scope`` (on a CPU "global": TVM keeps it on the stack and LLVM
    in a vector register) — one running sum in memory would make every term wait for
    the last one's store."""
    return _lane_reduce(term, n, d, name, scope, lambda u, v: u + v, tir.const(0, d))


def _lane_reduce(
    term: Callable[[Any], Any], n: int, d: str, name: str, scope: str,
    combine: Callable[[Any, Any], Any], zero: Any,
) -> tuple[list[Any], Any]:  # fmt: skip
    """As :func:`_lane_sum`, for any ``combine`` (``zero`` its identity): the max too. In a
    GPU thread (``scope`` "local") one running value: CUDA has no 16-lane vectors."""
    lanes = LANES if n >= LANES and scope != "local" else 1
    part = tir.decl_buffer((i64(lanes),), d, name=f"{name}_lanes", scope=scope)
    total = tir.decl_buffer((i64(1),), d, name=name, scope=scope)
    jo, jl, j = (tir.Var(v, I64) for v in ("jo", "jl", "j"))
    full = n // lanes
    stmts = [
        tir.AllocBuffer(part),
        tir.AllocBuffer(total),
        tir.For(jl, i64(0), i64(lanes), tir.ForKind.SERIAL, tir.BufferStore(part, zero, [jl])),
        tir.For(
            jo,
            i64(0),
            i64(full),
            tir.ForKind.SERIAL,
            tir.For(
                jl,
                i64(0),
                i64(lanes),
                tir.ForKind.VECTORIZED if lanes > 1 else tir.ForKind.SERIAL,
                tir.BufferStore(part, combine(part[jl], term(jo * i64(lanes) + jl)), [jl]),
            ),
        ),
        tir.BufferStore(total, zero, [i64(0)]),
        tir.For(
            jl,
            i64(0),
            i64(lanes),
            tir.ForKind.SERIAL,
            tir.BufferStore(total, combine(total[i64(0)], part[jl]), [i64(0)]),
        ),
    ]
    if n % lanes:
        stmts.append(
            tir.For(
                j,
                i64(full * lanes),
                i64(n - full * lanes),
                tir.ForKind.SERIAL,
                tir.BufferStore(total, combine(total[i64(0)], term(j)), [i64(0)]),
            )
        )
    return stmts, total[i64(0)]


def _layer_norm(node: Any, out: Acc, args: Sequence[Acc], gpu: bool = False) -> Any:
    """Mean and variance over the last axis, each a sum in vector lanes, kept in
    registers while the row is normalised (a scratch buffer the output may alias would be
    reloaded for every element); ``gpu``: in a GPU thread's local memory."""
    scope = "local" if gpu else "global"
    x, scale, bias = args
    lead, n = list(out.shape[:-1]), int(out.shape[-1])
    d = out.dtype
    inv = _f(d, 1.0 / n)

    def per_row(idx: list[Any]) -> Any:
        j = tir.Var("j", I64)
        mean = tir.decl_buffer((i64(1),), d, name="mean", scope=scope)
        rstd = tir.decl_buffer((i64(1),), d, name="rstd", scope=scope)
        sums, total = _lane_sum(lambda k: x.load([*idx, k]), n, d, "sum", scope)
        mu = mean[i64(0)]
        squares, spread = _lane_sum(
            lambda k: (x.load([*idx, k]) - mu) * (x.load([*idx, k]) - mu), n, d, "squares", scope
        )
        eps = _f(d, node.attrs["epsilon"])
        return tir.SeqStmt(
            [
                tir.AllocBuffer(mean),
                tir.AllocBuffer(rstd),
                *sums,
                tir.BufferStore(mean, total * inv, [i64(0)]),
                *squares,
                tir.BufferStore(rstd, _f(d, 1.0) / tir.sqrt(spread * inv + eps), [i64(0)]),
                tir.For(
                    j,
                    i64(0),
                    i64(n),
                    tir.ForKind.SERIAL,
                    out.store(
                        [*idx, j],
                        (x.load([*idx, j]) - mu) * rstd[i64(0)] * scale.load([j]) + bias.load([j]),
                    ),
                ),
            ]
        )

    return loops(lead, per_row, "r")


def _pad(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    (a,) = args
    shifts = {
        len(shape) + ax: (lo, int(a.shape[len(shape) + ax]))
        for ax, (lo, _) in zip(node.attrs["axes"], node.attrs["pads"], strict=True)
    }

    def at(idx: list[Any]) -> Any:
        src, inside = list(idx), []
        for i, (lo, n) in shifts.items():
            src[i] = tir.max(tir.min(idx[i] - i64(lo), i64(n - 1)), i64(0))
            inside += [idx[i] >= i64(lo), idx[i] < i64(lo + n)]
        return tir.if_then_else(tir.all(*inside), a.load(src), tir.const(0, dtype))

    return at


def _row_index(node: Any, idx_acc: Acc, at: Sequence[Any]) -> Any:
    """The row index a gather or scatter reads at index position ``at``."""
    return idx_acc.load(list(at))


def _per_row(node: Any, idx: Acc, shape: Sequence[Any], body: Callable[..., Any]) -> Any:
    """Loops over the index positions (``shape[:irank]``), the row index read once at
    each, around ``body(at, r)`` (``at``: the position; ``r``: the row, or -1 for none):
    the index's test and load outside the loops over a row's entries, which vectorise."""
    irank = node.attrs["irank"]

    def at_position(at: list[Any]) -> Any:
        r = tir.Var("r", idx.dtype)
        return tir.SeqStmt([tir.Bind(r, _row_index(node, idx, at)), body(at, r)])

    return loops(list(shape[:irank]), at_position, "p")


def _gather_rows(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
    table, idx = args
    irank = node.attrs["irank"]
    row = list(out.shape[irank:])

    def body(at: list[Any], r: Any) -> Any:
        copy = loops(row, lambda j: out.store([*at, *j], table.load([r, *j])), "g")
        zero = loops(row, lambda j: out.store([*at, *j], tir.const(0, out.dtype)), "z")
        return tir.IfThenElse(r >= tir.const(0, idx.dtype), copy, zero)

    return _per_row(node, idx, out.shape, body)


def _scatter(add: bool) -> Callable[..., Any]:
    def rule(node: Any, out: Acc, args: Sequence[Acc], in_place: bool = False) -> Any:
        table, idx, values = args
        irank = node.attrs["irank"]
        row = list(values.shape[irank:])
        copy = loops(out.shape, lambda i: out.store(i, table.load(i)), "c")

        def body(at: list[Any], r: Any) -> Any:
            def entry(j: list[Any]) -> Any:
                v = values.load([*at, *j])
                return out.store([r, *j], out.load([r, *j]) + v if add else v)

            return tir.IfThenElse(r >= tir.const(0, idx.dtype), loops(row, entry, "s"), None)

        scatter = _per_row(node, idx, values.shape, body)
        return scatter if in_place else tir.SeqStmt([copy, scatter])

    return rule


def _without(idx: Sequence[Any], axis: int) -> list[Any]:
    return [v for i, v in enumerate(idx) if i != axis]


def _with(idx: Sequence[Any], axis: int, at: Any) -> list[Any]:
    return [*idx[:axis], at, *idx[axis:]]


def _arg(largest: bool) -> Callable[..., Any]:
    """The first position of the extreme along the axis: a scan keeping the best index."""

    def rule(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
        (x,) = args
        axis = len(x.shape) + int(node.attrs["axis"])
        keep = node.attrs["keepdims"]
        others = _without(x.shape, axis)

        def per_line(o: list[Any]) -> Any:
            at = _with(o, axis, i64(0)) if keep else o
            j = tir.Var("j", I64)
            best = x.load(_with(o, axis, out.load(at)))
            here = x.load(_with(o, axis, j))
            better = here > best if largest else here < best
            scan = tir.For(
                j,
                i64(1),
                tir.max(extent(x.shape[axis]) - i64(1), i64(0)),  # (an extent, not an end)
                tir.ForKind.SERIAL,
                tir.IfThenElse(better, out.store(at, j), None),
            )
            return tir.SeqStmt([out.store(at, i64(0)), scan])

        return loops(others, per_line, "o")

    return rule


def _top_k(node: Any, out: Acc, args: Sequence[Acc], scratch: Any) -> Any:
    """A few of many (``4 k < n``): ``k`` passes, each taking the best entry not yet taken
    (O(k n)). Else (a sort): each entry's rank — how many come before it, larger or
    equal at a lower index — and its position written at its rank when below k (O(n²))."""
    (x,) = args
    axis = len(x.shape) + int(node.attrs["axis"])
    n = x.shape[axis]
    k = n if node.attrs["k"] is None else node.attrs["k"]
    if isinstance(n, int) and 4 * int(k) < n:
        return _top_few(node, out, x, axis, int(k), scratch)
    others = _without(x.shape, axis)
    rank = scratch(others)
    d = rank.dtype

    def per_entry(idx: list[Any]) -> Any:
        o, i = _without(idx, axis), idx[axis]
        j = tir.Var("j", I64)
        xi, xj = x.load(idx), x.load(_with(o, axis, j))
        ahead = xj > xi if node.attrs["largest"] else xj < xi
        before = tir.any(ahead, tir.all(xj == xi, j < i))
        count = tir.For(
            j,
            i64(0),
            extent(n),
            tir.ForKind.SERIAL,
            rank.store(o, rank.load(o) + tir.Select(before, _f(d, 1.0), _f(d, 0.0))),
        )
        r = tir.Cast(I64, rank.load(o))
        place = tir.IfThenElse(r < extent(k), out.store(_with(o, axis, r), i), None)
        return tir.SeqStmt([rank.store(o, _f(d, 0.0)), count, place])

    return loops(x.shape, per_entry)


def _top_few(node: Any, out: Acc, x: Acc, axis: int, k: int, scratch: Any) -> Any:
    """Selection: pass ``p`` of ``k`` scans the line for the best entry not yet taken (the
    first of equal ones, scanning up: the lower index first) and marks it taken."""
    n = int(x.shape[axis])
    others = _without(x.shape, axis)
    taken, best = scratch([*others, n]), scratch(others)
    d = best.dtype
    largest = node.attrs["largest"]

    def per_line(o: list[Any]) -> Any:
        p, i = tir.Var("p", I64), tir.Var("i", I64)
        b = tir.Cast(I64, best.load(o))
        xi, xb = x.load(_with(o, axis, i)), x.load(_with(o, axis, tir.max(b, i64(0))))
        better = tir.any(b < i64(0), xi > xb if largest else xi < xb)
        free = taken.load([*o, i]) < _f(d, 0.5)
        scan = tir.For(
            i,
            i64(0),
            i64(n),
            tir.ForKind.SERIAL,
            tir.IfThenElse(tir.all(free, better), best.store(o, tir.Cast(d, i)), None),
        )
        take = tir.SeqStmt(
            [
                best.store(o, _f(d, -1.0)),
                scan,
                out.store(_with(o, axis, p), b),
                taken.store([*o, b], _f(d, 1.0)),
            ]
        )
        clear = loops([n], lambda j: taken.store([*o, j[0]], _f(d, 0.0)), "c")
        return tir.SeqStmt([clear, tir.For(p, i64(0), i64(k), tir.ForKind.SERIAL, take)])

    return loops(others, per_line, "o")


def _wrapped(j: Any, n: Any) -> Any:
    """Position ``j`` along an axis of ``n`` entries (a negative one counts from the end)."""
    return tir.Select(j < i64(0), j + n, j)


def _take_along(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    x, idx = args
    axis = len(shape) + int(node.attrs["axis"])
    n = extent(x.shape[axis])

    def at(i: list[Any]) -> Any:
        j = idx.load(i)
        return x.load([*i[:axis], _wrapped(j, n), *i[axis + 1 :]])

    return at


def _gather(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    """``take(x, indices, axis)`` (ONNX ``Gather``): the indices' axes in place of ``axis``."""
    x, idx = args
    axis = len(x.shape) + int(node.attrs["axis"])
    r = len(idx.shape)
    n = extent(x.shape[axis])

    def at(i: list[Any]) -> Any:
        j = idx.load(i[axis : axis + r])
        return x.load([*i[:axis], _wrapped(j, n), *i[axis + r :]])

    return at


def _scatter_add_along(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
    base, idx, values = args
    axis = len(out.shape) + int(node.attrs["axis"])
    n = extent(out.shape[axis])

    def add(i: list[Any]) -> Any:
        j = idx.load(i)
        at = [*i[:axis], _wrapped(j, n), *i[axis + 1 :]]
        return out.store(at, out.load(at) + values.load(i))

    copy = loops(out.shape, lambda i: out.store(i, base.load(i)), "c")
    return tir.SeqStmt([copy, loops(idx.shape, add)])


def _cumsum(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
    """A running sum along the axis, in order (from the end when reversed)."""
    (x,) = args
    axis = len(x.shape) + int(node.attrs["axis"])
    n = extent(x.shape[axis])
    rev, excl = node.attrs["reverse"], node.attrs["exclusive"]
    others = _without(x.shape, axis)

    def per_line(o: list[Any]) -> Any:
        j = tir.Var("j", I64)
        pos = (n - i64(1) - j) if rev else j
        prev = (pos + i64(1)) if rev else (pos - i64(1))
        first = (n - i64(1)) if rev else i64(0)
        start = tir.const(0, out.dtype) if excl else x.load(_with(o, axis, first))
        step = out.load(_with(o, axis, prev)) + x.load(_with(o, axis, prev if excl else pos))
        return tir.IfThenElse(
            n > i64(0),
            tir.SeqStmt(
                [
                    out.store(_with(o, axis, first), start),
                    tir.For(
                        j,
                        i64(1),
                        n - i64(1),
                        tir.ForKind.SERIAL,
                        out.store(_with(o, axis, pos), step),
                    ),
                ]
            ),
            None,
        )

    return loops(others, per_line, "o")


def _source(a: Any, sizes: Sequence[Any], k: Sequence[Any], pos: Sequence[Any]) -> tuple[list, Any]:
    """The input position a window entry reads (kernel offset ``k`` of the window at
    ``pos``), and whether it lies inside the input (not in the padding)."""
    at, inside = [], []
    for n, kk, p, s, (lo, _), d in zip(
        sizes, k, pos, a["strides"], a["pads"], a["dilations"], strict=True
    ):
        i = p * i64(s) + kk * i64(d) - i64(lo)
        at.append(tir.max(tir.min(i, i64(int(n) - 1)), i64(0)))
        inside += [i >= i64(0), i < i64(int(n))]
    return at, tir.all(*inside)


def _unfold(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    (x,) = args
    a = node.attrs
    d = len(a["kernel"])

    def at(idx: list[Any]) -> Any:
        src, inside = _source(a, x.shape[1:], idx[1 : 1 + d], idx[1 + d :])
        return tir.if_then_else(inside, x.load([idx[0], *src]), tir.const(0, dtype))

    return at


def _fold(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
    """Each window entry added into the position it came from (padding dropped)."""
    (p,) = args
    a = node.attrs
    d = len(a["kernel"])

    def add(idx: list[Any]) -> Any:
        src, inside = _source(a, out.shape[1:], idx[1 : 1 + d], idx[1 + d :])
        at = [idx[0], *src]
        return tir.IfThenElse(inside, out.store(at, out.load(at) + p.load(idx)), None)

    zero = loops(out.shape, lambda i: out.store(i, tir.const(0, out.dtype)), "z")
    return tir.SeqStmt([zero, loops(p.shape, add)])


def _conv(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
    """Direct convolution: each output entry sums its group's channels over the kernel."""
    x, w = args
    a = node.attrs
    kernel = list(a["kernel"])
    O, Cg = int(w.shape[0]), int(w.shape[1])
    per_group = O // int(a["groups"])
    d = out.dtype

    def entry(idx: list[Any]) -> Any:
        o, pos = idx[0], idx[1:]

        def term(inner: list[Any]) -> Any:
            c, k = inner[0], inner[1:]
            src, inside = _source(a, x.shape[1:], k, pos)
            chan = (o // i64(per_group)) * i64(Cg) + c
            v = tir.if_then_else(inside, x.load([chan, *src]), tir.const(0, d))
            return out.store(idx, out.load(idx) + v * w.load([o, c, *k]))

        return tir.SeqStmt([out.store(idx, tir.const(0, d)), loops([Cg, *kernel], term, "k")])

    return loops(out.shape, entry)


def _max_pool(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
    (x,) = args
    a = node.attrs
    d = out.dtype

    def entry(idx: list[Any]) -> Any:
        c, pos = idx[0], idx[1:]

        def take(k: list[Any]) -> Any:
            src, inside = _source(a, x.shape[1:], k, pos)
            v = tir.if_then_else(inside, x.load([c, *src]), tir.min_value(d))
            return out.store(idx, tir.max(out.load(idx), v))

        return tir.SeqStmt([out.store(idx, tir.min_value(d)), loops(list(a["kernel"]), take, "k")])

    return loops(out.shape, entry)


def _solve(node: Any, out: Acc, args: Sequence[Acc], scratch: Any) -> Any:
    """Gauss-Jordan elimination with partial pivoting on the augmented matrix ``[A | b]``
    in a scratch row, for each matrix of the leading axes."""
    A, b = args
    vec = node.attrs["vector"]
    n = int(A.shape[-1])
    m = 1 if vec else int(out.shape[-1])
    lead = list(out.shape[: len(out.shape) - (1 if vec else 2)])
    M = scratch([n, n + m])
    slot = scratch([3])  # pivot row, pivot magnitude (then a swap's temporary), row factor
    d = M.dtype
    s0, s1, s2 = ([i64(j)] for j in range(3))

    def per_matrix(li: list[Any]) -> Any:
        full = lambda *idx: [*li, *idx]  # noqa: E731
        a_at = lambda i, j: A.load(bcast(full(i, j), A.shape, [*lead, n, n]))  # noqa: E731
        if vec:
            b_at = lambda i, j: b.load(bcast(full(i), b.shape, [*lead, n]))  # noqa: E731
        else:
            b_at = lambda i, j: b.load(bcast(full(i, j), b.shape, [*lead, n, m]))  # noqa: E731
        fill = [
            loops([n, n], lambda ij: M.store(ij, a_at(*ij)), "a"),
            loops([n, m], lambda ij: M.store([ij[0], ij[1] + i64(n)], b_at(*ij)), "b"),
        ]
        k = tir.Var("k", I64)
        i, j = tir.Var("i", I64), tir.Var("j", I64)
        size = lambda v: _math.absolute(v, d)  # noqa: E731
        p = tir.Cast(I64, slot.load(s0))
        search = tir.For(
            i,
            k + i64(1),
            i64(n) - k - i64(1),
            tir.ForKind.SERIAL,
            tir.IfThenElse(
                size(M.load([i, k])) > slot.load(s1),
                tir.SeqStmt([slot.store(s0, tir.Cast(d, i)), slot.store(s1, size(M.load([i, k])))]),
                None,
            ),
        )
        swap = tir.For(
            j,
            i64(0),
            i64(n + m),
            tir.ForKind.SERIAL,
            tir.SeqStmt(
                [
                    slot.store(s1, M.load([k, j])),
                    M.store([k, j], M.load([p, j])),
                    M.store([p, j], slot.load(s1)),
                ]
            ),
        )
        scale = tir.SeqStmt(
            [
                slot.store(s1, M.load([k, k])),
                tir.For(
                    j,
                    i64(0),
                    i64(n + m),
                    tir.ForKind.SERIAL,
                    M.store([k, j], M.load([k, j]) / slot.load(s1)),
                ),
            ]
        )
        clear = tir.For(
            i,
            i64(0),
            i64(n),
            tir.ForKind.SERIAL,
            tir.IfThenElse(
                i != k,
                tir.SeqStmt(
                    [
                        slot.store(s2, M.load([i, k])),
                        tir.For(
                            j,
                            i64(0),
                            i64(n + m),
                            tir.ForKind.SERIAL,
                            M.store([i, j], M.load([i, j]) - slot.load(s2) * M.load([k, j])),
                        ),
                    ]
                ),
                None,
            ),
        )
        column = tir.SeqStmt(
            [
                slot.store(s0, tir.Cast(d, k)),
                slot.store(s1, size(M.load([k, k]))),
                search,
                swap,
                scale,
                clear,
            ]
        )
        eliminate = tir.For(k, i64(0), i64(n), tir.ForKind.SERIAL, column)
        if vec:
            result = loops([n], lambda r: out.store(full(r[0]), M.load([r[0], i64(n)])), "x")
        else:
            result = loops(
                [n, m], lambda r: out.store(full(*r), M.load([r[0], r[1] + i64(n)])), "x"
            )
        return tir.SeqStmt([*fill, eliminate, result])

    return loops(lead, per_matrix, "l")


def _unsqueeze(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    axis = len(shape) + node.attrs["axis"]
    return lambda i: args[0].load([*i[:axis], *i[axis + 1 :]])


def _u32(v: int) -> Any:
    return tir.const(v, "uint32")


class _Lets:
    """Statement-level bindings (``Bind``): each value of the hash is named once, as
    every round reads its operand three times (nested, the expression would grow
    exponentially)."""

    def __init__(self) -> None:
        self.binds: list[tuple[Any, Any]] = []

    def let(self, value: Any, dtype: str = "uint32") -> Any:
        var = tir.Var(f"h{len(self.binds)}", dtype)
        self.binds.append((var, value))
        return var

    def mix(self, x: Any) -> Any:
        """One round of the draws' hash (:func:`rnngraph.ops.random.mix`); uint32 wraps."""
        x = self.let(tir.bitwise_xor(x, tir.shift_right(x, _u32(16))) * _u32(rnd.MUL1))
        x = self.let(tir.bitwise_xor(x, tir.shift_right(x, _u32(15))) * _u32(rnd.MUL2))
        return self.let(tir.bitwise_xor(x, tir.shift_right(x, _u32(16))))

    def around(self, stmt: Any) -> Any:
        """``stmt`` after the bindings, in one scope."""
        return seq([*(tir.Bind(var, value) for var, value in self.binds), stmt])


def _random(node: Any, out: Acc, args: Sequence[Acc], row: Any) -> Any:
    """Counter-based draws of batch row ``row``: the hash of (seed, site, step, row,
    element) exactly as :func:`rnngraph.ops.random.hash_bits` computes it."""
    seed, step = (tir.Cast("uint32", a.load([i64(0)])) for a in args)
    lets = _Lets()
    key = lets.mix(tir.bitwise_xor(seed, _u32(rnd.SALT)))
    key = lets.mix(tir.bitwise_xor(key, _u32(int(node.attrs["site"]))))
    key = lets.mix(tir.bitwise_xor(key, step))
    key = lets.mix(tir.bitwise_xor(key, tir.Cast("uint32", row)))
    d = out.dtype

    def element(idx: Sequence[Any]) -> Any:
        flat = i64(0)
        for i, n in zip(idx, out.shape, strict=True):
            flat = flat * i64(n) + i
        e, inner = tir.Cast("uint32", flat), _Lets()

        def uniform(element: Any) -> Any:
            bits = tir.shift_right(inner.mix(tir.bitwise_xor(key, element)), _u32(8))
            return inner.let((tir.Cast(d, bits) + _f(d, 0.5)) * _f(d, 2.0**-24), d)

        if node.attrs["kind"] == "uniform":
            value = uniform(e)
        else:
            u1, u2 = uniform(e * _u32(2)), uniform(e * _u32(2) + _u32(1))
            radius = tir.sqrt(_f(d, -2.0) * tir.log(u1))
            value = radius * tir.cos(_f(d, 2.0 * np.pi) * u2)
        return inner.around(out.store(idx, value))

    return lets.around(loops(out.shape, element))


@dataclass(frozen=True)
class _BodyView:
    """A fixed point's body node, as a rule reads it (like the code generator's node view)."""

    name: str
    attrs: Any


def _fixed_point(node: Any, out: Acc, args: Sequence[Acc], scratch: Any) -> Any:
    """One row's fixed point: a ``while`` over the body's rules, each body node in a scratch
    row, until the row's largest change is below ``tol`` or ``max_iter`` (see
    :mod:`rnngraph.ops.fixed`)."""
    body = fixed.Body.of(node.attrs)
    d = args[0].dtype
    z_shape = args[0].shape
    z = out if node.attrs.get("report", "value") == "value" else scratch(list(z_shape))
    state = scratch([3])  # [applications, converged, some element still changes]
    k, conv, moving = ([i64(j)] for j in range(3))
    values: list[Acc] = []
    stmts = []
    for bn in body.nodes:
        if any(not isinstance(n, int) for n in bn.type.row_shape):
            raise CompileError(
                f"fixed point {node.name!r}: body node {bn.name!r} has a symbolic shape "
                f"{bn.type}, which the TVM backend does not iterate; use target='onnx'"
            )
        if bn.type.dtype in ("int8", "int16", "int32"):  # (an integer graph's: exact)
            values.append(scratch(list(bn.type.row_shape), bn.type.dtype))
        else:
            values.append(_as_dtype(scratch(list(bn.type.row_shape)), _DT.get(bn.type.dtype, d)))
    z_read = Acc(z.shape, z.load, read_only, d)
    for bn, acc in zip(body.nodes, values, strict=True):
        operands = [body.pick(a, z_read, args[1:], values) for a in bn.args]
        view = _BodyView(f"{node.name}/{bn.name}", bn.attrs)
        rule = RULES.get(bn.op)
        if rule is None:
            raise CompileError(
                f"the TVM backend has no rule for op {bn.op!r} (node {bn.name!r} in the body of "
                f"fixed point {node.name!r}); use target='onnx' for this graph"
            )
        if bn.op in NEEDS_SCRATCH:
            stmts.append(rule(view, acc, operands, scratch=scratch))
        else:
            stmts.append(rule(view, acc, operands))
    new = values[-1]
    sd = state.dtype  # (an integer iterate's change: exact in it, as int8/int16 are)
    tol = _f(sd, body.tol)

    def check(idx: list[Any]) -> Any:  # NaN is never below tol: it keeps moving
        change = tir.Cast(sd, new.load(idx)) - tir.Cast(sd, z.load(idx))
        close = _math.absolute(change, sd) < tol
        return state.store(moving, tir.Select(close, state.load(moving), _f(sd, 1.0)))

    one, zero = _f(sd, 1.0), _f(sd, 0.0)
    step = [
        *stmts,
        state.store(moving, zero),
        loops(z_shape, check),
        loops(z_shape, lambda idx: z.store(idx, new.load(idx))),
        state.store(k, state.load(k) + one),
        state.store(conv, tir.Select(state.load(moving) > zero, zero, one)),
    ]
    limit = _f(sd, float(body.max_iter))
    going = tir.all(state.load(k) < limit, state.load(conv) == zero)
    result = [
        loops(z_shape, lambda idx: z.store(idx, args[0].load(idx))),
        state.store(k, zero),
        state.store(conv, zero),
        tir.While(going, seq(step)),
    ]
    if z is not out:
        result.append(out.store([i64(0)], state.load(k)))
    return seq(result)


_DT = {"int64": "int64", "bool": "bool"}


def _as_dtype(acc: Acc, dtype: str) -> Acc:
    """A float scratch row holding values of another dtype (converted on the way in and out)."""
    if dtype == acc.dtype:
        return acc
    return Acc(
        acc.shape,
        lambda idx: tir.Cast(dtype, acc.load(idx)),
        lambda idx, v: acc.store(idx, tir.Cast(acc.dtype, v)),
        dtype,
    )


NEEDS_ROW = {"random"}
"""Rules that take ``row``: the index of the batch row they compute."""

NEEDS_TARGET = {"layer_norm", "softmax", "log_softmax"}
"""Rules that take ``gpu=`` (their temporaries' memory, or their loops, differ)."""
NEEDS_SCRATCH = {"fixed_point", "softmax", "log_softmax", "top_k", "solve"}
"""Rules that take a ``scratch(shape) -> Acc`` for per-row temporaries."""

IN_PLACE = {"scatter_rows", "scatter_add_rows"}
"""Rules that take ``in_place=True``: the result's buffer already holds the table."""

ELEMENTS.update(
    unfold=_unfold,
    take_along=_take_along,
    gather=_gather,
    unsqueeze=_unsqueeze,
    pad=_pad,
    clip=_clip,
    slice=_slice,
    transpose=_transpose,
    reshape=_reshape,
)


# Integer-only ops (rnngraph.ops.integer): int64 sums, an arithmetic rounding shift,
# saturation; the same arithmetic as the reference, so bit for bit.
def _i(v: int) -> Any:
    return tir.const(int(v), I64)


def _centred(a: Acc, idx: Sequence[Any], shape: Any, zero_point: int) -> Any:
    return tir.Cast(I64, a.load(bcast(idx, a.shape, shape))) - _i(zero_point)


def _to_grid(node: Any, dtype: str, acc: Any) -> Any:
    """saturate(zero_point + round_shift(acc, shift)). With a shift of 32 or more (the
    usual requantisation) the high half of ``acc + 2**(shift-1)`` is shifted on in 32
    bits: ``floor(v / 2**s) = floor(floor(v / 2**32) / 2**(s-32))``, and ``|v| < 2**62``
    leaves the high half in 32 bits. CPUs without 64-bit vector shifts and minima (AVX2,
    NEON's narrow forms) then need none."""
    shift = int(node.attrs["shift"])
    if shift >= 32:
        high = tir.Cast(I32, tir.shift_right(acc + _i(1 << (shift - 1)), _i(32)))
        return _saturated(node, dtype, tir.shift_right(high, tir.const(shift - 32, I32)), I32)
    if shift:
        acc = tir.shift_right(acc + _i(1 << (shift - 1)), _i(shift))  # (arithmetic: signed)
    return _saturated(node, dtype, acc)


def _saturated(node: Any, dtype: str, v: Any, kind: str = I64) -> Any:
    """saturate(zero_point + v) as the output's kind, computed in ``kind`` (``v``'s: in
    int32, values below 2**30 and zero points of 16 bits cannot overflow)."""
    lo, hi = INT_RANGES[node.attrs["to"]]

    def c(x: int) -> Any:
        return tir.const(int(x), kind)

    v = v + c(node.attrs["zero_point"])
    return tir.Cast(dtype, tir.min(tir.max(v, c(lo)), c(hi)))


def _multiplier(m: Acc, idx: Sequence[Any], shape: Any) -> Any:
    """A multiplier (below 2**31 in magnitude, as ``rnngraph.ops.integer`` requires) as
    the int64 of an int32, so that a product with a narrow signal is one 32 x 32 -> 64
    multiply (``vpmuldq``) instead of a 64-bit one that AVX2 emulates."""
    return tir.Cast(I64, tir.Cast(I32, m.load(bcast(idx, m.shape, shape))))


def _int_affine(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    k = len(node.attrs["zero_points"])
    xs, ms, offset = args[:k], args[k : 2 * k], args[2 * k]

    def at(idx: list[Any]) -> Any:
        acc = offset.load(bcast(idx, offset.shape, shape))
        for x, z, m in zip(xs, node.attrs["zero_points"], ms, strict=True):
            acc = acc + _centred(x, idx, shape, int(z)) * _multiplier(m, idx, shape)
        return _to_grid(node, dtype, acc)

    return at


def _int_mul(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    a, b, m, offset = args
    za, zb = (int(z) for z in node.attrs["zero_points"])

    # the product of the two in 32 bits when it fits (int8 x int16, symmetric int16s):
    # then one 32 x 32 -> 64 multiply by the multiplier
    narrow = spread(a.dtype, za) * spread(b.dtype, zb) < 2**31

    def at(idx: list[Any]) -> Any:
        prod = _centred(a, idx, shape, za) * _centred(b, idx, shape, zb)
        if narrow:
            prod = tir.Cast(I64, tir.Cast(I32, prod))
        acc = offset.load(bcast(idx, offset.shape, shape)) + prod * _multiplier(m, idx, shape)
        return _to_grid(node, dtype, acc)

    return at


def _int_div(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    a, b, m = args
    za, zb = (int(z) for z in node.attrs["zero_points"])
    shift = int(node.attrs["shift"])

    def at(idx: list[Any]) -> Any:
        num = _centred(a, idx, shape, za) * _multiplier(m, idx, shape)
        den = _centred(b, idx, shape, zb) * _i(1 << shift)
        inf = tir.Select(num > _i(0), _i(DIV_ZERO), tir.Select(num < _i(0), _i(-DIV_ZERO), _i(0)))
        flipped = tir.Select(den < _i(0), -num, num)  # the divisor's sign on the numerator
        d = tir.max(tir.abs(den), _i(1))  # (a zero divisor takes ``inf``)
        q = tir.floordiv(flipped * _i(2) + d, d * _i(2))
        return _saturated(node, dtype, tir.Select(den == _i(0), inf, q))

    return at


def _int_lut(node: Any, shape: Any, dtype: str, args: Sequence[Acc]) -> Callable[..., Any]:
    x, table = args
    lo, bits = int(node.attrs["lo"]), int(node.attrs["bits"])
    top, bottom = INT_RANGES[node.attrs["to"]][1], INT_RANGES[node.attrs["to"]][0]

    def at(idx: list[Any]) -> Any:
        i = _centred(x, idx, shape, lo)
        if not bits:
            v = table.load([i])
        else:
            k, f = tir.shift_right(i, _i(bits)), tir.bitwise_and(i, _i((1 << bits) - 1))
            t0 = table.load([k])
            slope = (table.load([k + _i(1)]) - t0) * f
            v = t0 + tir.shift_right(slope + _i(1 << (bits - 1)), _i(bits))
        return tir.Cast(dtype, tir.min(tir.max(v, _i(bottom)), _i(top)))

    return at


def _int_matmul(node: Any, out: Acc, args: Sequence[Acc]) -> Any:
    """sum_k (a[..., k] - za) * (b[k, n] - zb) into an int32 row (k outside n, as matmul)."""
    a, b = args
    za, zb = (int(z) for z in node.attrs["zero_points"])
    k = tir.Var("k", I64)
    osh = list(out.shape)

    def term(idx: list[Any]) -> Any:
        av = tir.Cast("int32", a.load([*idx[:-1], k])) - tir.const(za, "int32")
        bv = tir.Cast("int32", b.load([k, idx[-1]])) - tir.const(zb, "int32")
        return out.store(idx, out.load(idx) + av * bv)

    init = loops(osh, lambda idx: out.store(idx, tir.const(0, "int32")), "z")
    outer = loops(
        osh[:-1],
        lambda idx: tir.For(
            k, i64(0), extent(a.shape[-1]), tir.ForKind.SERIAL,
            loops([osh[-1]], lambda last: term([*idx, *last]), "j"),
        ),
        "m",
    )  # fmt: skip
    return tir.SeqStmt([init, outer])


ELEMENTS["int_affine"] = _int_affine
ELEMENTS["int_mul"] = _int_mul
ELEMENTS["int_div"] = _int_div
ELEMENTS["int_lut"] = _int_lut


RULES.update({op: _element_rule(op) for op in ELEMENTS})
RULES.update(
    solve=_solve,
    conv=_conv,
    fold=_fold,
    max_pool=_max_pool,
    argmax=_arg(True),
    argmin=_arg(False),
    top_k=_top_k,
    scatter_add_along=_scatter_add_along,
    cumsum=_cumsum,
    fixed_point=_fixed_point,
    softmax=_softmax(False),
    log_softmax=_softmax(True),
    random=_random,
    gather_rows=_gather_rows,
    scatter_rows=_scatter(False),
    scatter_add_rows=_scatter(True),
    layer_norm=_layer_norm,
    matmul=_matmul,
    int_matmul=_int_matmul,
    concat=_concat,
    reduce_sum=_reduce("sum"),
    reduce_mean=_reduce("mean"),
    reduce_max=_reduce("max"),
    reduce_min=_reduce("min"),
    reduce_prod=_reduce("prod"),
)
