"""Adjoint (reverse-mode) rules of every op: ``rule(ctx, node, operands, out, cot)``.

Each rule returns one contribution per operand (None for none), written with the
op builders themselves, so a gradient is another graph (see :mod:`rnngraph.autodiff.reverse`,
which walks a graph applying them; ``ctx.unbroadcast`` sums what a broadcast operand
got). The rules live here, as the tangent rules live in :mod:`._tangents`, so that the
op modules need not import each other: they register last.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value
from rnngraph.ir.registry import register_adjoint
from rnngraph.ops import fixed
from rnngraph.ops.convolution import fold, max_pool_choice, unfold
from rnngraph.ops.elementwise import (
    abs,
    cast,
    cos,
    equal,
    exp,
    greater,
    less,
    log,
    neg,
    sigmoid,
    sin,
    sqrt,
    where,
)
from rnngraph.ops.integer import INTEGER_OPS
from rnngraph.ops.linalg import matmul
from rnngraph.ops.order import cumsum, scatter_add_along, take_along
from rnngraph.ops.quant import grid_bounds
from rnngraph.ops.reduce import reduce_mean, reduce_sum
from rnngraph.ops.rows import gather_rows, scatter_add_rows, scatter_rows
from rnngraph.ops.structure import reshape, slice, slice_ranges, transpose, unsqueeze
from rnngraph.ops.totals import pad, total_outer, zeros_like

__all__ = ["GAINS", "kept", "normalised"]  # (the tangent rules share them)


# ------------------------------------------------------------------- sources


# A state or delay node is an identity; its edge carries the delay, which the
# adjoint transform reverses (a delay becomes an advance).


@register_adjoint("state")
def _state_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    return [cot]


register_adjoint("delay")(_state_adjoint)


# --------------------------------------------------------------- elementwise


# rule(ctx, node, (operands as read), out, cot) -> contribution per operand
# (see rnngraph.autodiff.reverse); ctx.unbroadcast sums what a broadcast operand got.


@register_adjoint("add")
def _add_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    a, b = args
    return [ctx.unbroadcast(cot, a.type), ctx.unbroadcast(cot, b.type)]


@register_adjoint("sub")
def _sub_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    a, b = args
    return [ctx.unbroadcast(cot, a.type), ctx.unbroadcast(-cot, b.type) if ctx.needs[1] else None]


@register_adjoint("mul")
def _mul_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    a, b = args
    return [
        ctx.unbroadcast(cot * b, a.type) if ctx.needs[0] else None,
        ctx.unbroadcast(cot * a, b.type) if ctx.needs[1] else None,
    ]


@register_adjoint("div")
def _div_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    a, b = args
    return [
        ctx.unbroadcast(cot / b, a.type) if ctx.needs[0] else None,
        ctx.unbroadcast(-(cot * out) / b, b.type) if ctx.needs[1] else None,
    ]


@register_adjoint("pow")
def _pow_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    a, b = args
    return [
        ctx.unbroadcast(cot * b * (a ** (b - 1.0)), a.type) if ctx.needs[0] else None,
        ctx.unbroadcast(cot * out * log(a), b.type) if ctx.needs[1] else None,
    ]


def _select_adjoint(first_wins: str) -> Any:
    def rule(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
        a, b = args
        # Ties go to the first operand, as a subgradient.
        loses = less(a, b) if first_wins == "maximum" else greater(a, b)
        zero = ctx.zeros(cot)
        return [
            ctx.unbroadcast(where(loses, zero, cot), a.type) if ctx.needs[0] else None,
            ctx.unbroadcast(where(loses, cot, zero), b.type) if ctx.needs[1] else None,
        ]

    return rule


register_adjoint("maximum")(_select_adjoint("maximum"))
register_adjoint("minimum")(_select_adjoint("minimum"))


def _no_gradient(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    return [None] * len(args)


# Comparisons, floor and ceil are piecewise constant; draws and stop_gradient are constants
# by definition.
for _op in ("greater", "less", "equal", "floor", "ceil", "random", "stop_gradient"):
    register_adjoint(_op)(_no_gradient)
# Integers carry no gradient: into a quantize's input (its output is an integer) and out
# of a dequantize's (its operand is one). Training goes through fake_quant instead.
for _op in ("quantize", "dequantize", *sorted(INTEGER_OPS)):
    register_adjoint(_op)(_no_gradient)


@register_adjoint("where")
def _where_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    c, a, b = args
    zero = ctx.zeros(cot)
    return [
        None,
        ctx.unbroadcast(where(c, cot, zero), a.type) if ctx.needs[1] else None,
        ctx.unbroadcast(where(c, zero, cot), b.type) if ctx.needs[2] else None,
    ]


@register_adjoint("cast")
def _cast_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    (a,) = args
    return [cot if a.dtype == "float" and out.dtype == "float" else None]


def _indicator(cond: Value) -> Value:
    return cast(cond, "float")


def _clip_gain(x: Value, y: Value, v: Value, at: Mapping[str, Any]) -> Value:
    zero = zeros_like(v)
    if at["min"] is not None:
        v = where(less(x, float(at["min"])), zero, v)
    if at["max"] is not None:
        v = where(greater(x, float(at["max"])), zero, v)
    return v


def _fake_quant_gain(x: Value, y: Value, v: Value, at: Mapping[str, Any]) -> Value:
    """The clipped straight-through estimator: 1 inside the grid's range, 0 outside."""
    lo, hi = grid_bounds(at)
    zero = zeros_like(v)
    g = x.graph
    v = where(less(x, g.constant(lo.astype(np.float64))), zero, v)
    return where(greater(x, g.constant(hi.astype(np.float64))), zero, v)


def _surrogate_gain(x: Value, y: Value, v: Value, at: Mapping[str, Any]) -> Value:
    """The derivative ``heaviside`` stands in for its own (see :func:`heaviside`)."""
    kind, k = at["surrogate"], float(at["slope"])
    if kind == "fast_sigmoid":
        d = k * abs(x) + 1.0
        return v / (d * d)
    if kind == "arctan":
        z = x * (np.pi / 2 * k)
        return v * (k / 2) / (1.0 + z * z)
    if kind == "sigmoid":
        s = sigmoid(x * k)
        return v * k * s * (1.0 - s)
    return v  # straight through


GAINS: dict[str, Callable[[Value, Value, Value, Mapping[str, Any]], Value]] = {
    "neg": lambda x, y, v, at: -v,
    "abs": lambda x, y, v, at: v * (_indicator(greater(x, 0.0)) - _indicator(less(x, 0.0))),
    "exp": lambda x, y, v, at: v * y,
    "log": lambda x, y, v, at: v / x,
    "erf": lambda x, y, v, at: v * (2.0 / math.sqrt(math.pi)) * exp(neg(x * x)),
    "sin": lambda x, y, v, at: v * cos(x),
    "atan": lambda x, y, v, at: v / (1.0 + x * x),
    "cos": lambda x, y, v, at: neg(v * sin(x)),
    "sqrt": lambda x, y, v, at: v * 0.5 / y,
    "tanh": lambda x, y, v, at: v * (1.0 - y * y),
    "sigmoid": lambda x, y, v, at: v * y * (1.0 - y),
    "hard_sigmoid": lambda x, y, v, at: (
        v * (_indicator(greater(y, 0.0)) * _indicator(less(y, 1.0)) * float(at["alpha"]))
    ),
    "relu": lambda x, y, v, at: v * _indicator(greater(x, 0.0)),
    "leaky_relu": lambda x, y, v, at: where(less(x, 0.0), v * float(at["alpha"]), v),
    "softplus": lambda x, y, v, at: v * sigmoid(x),
    "softsign": lambda x, y, v, at: v / ((1.0 + abs(x)) * (1.0 + abs(x))),
    "clip": _clip_gain,
    "heaviside": _surrogate_gain,
    "fake_quant": _fake_quant_gain,
}
"""Element-wise ops' local derivatives as gains ``gain(x, y, v, attrs)`` applied to ``v``.

The Jacobian of an element-wise map is diagonal, so the same gain serves the
adjoint (``v`` = the cotangent) and the tangent (``v`` = the tangent)."""


def _gain_adjoint(op: str) -> None:
    gain = GAINS[op]

    def rule(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
        return [gain(args[0], out, cot, node.attrs)]

    register_adjoint(op)(rule)


for _op in GAINS:
    _gain_adjoint(_op)


# -------------------------------------------------------------------- linalg


def _swap_last(x: Value) -> Value:
    r = x.type.rank
    return transpose(x, [*range(r - 2), r - 1, r - 2])


@register_adjoint("matmul")
def _matmul_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    """``a̅ = y̅ bᵀ``, ``b̅ = aᵀ y̅``; a weight's sums over steps and rows in one GEMM."""
    a, b = args
    ta, tb = a.type, b.type
    if tb.rank == 1:  # matrix-vector: y = a @ b contracts a's last axis
        c = unsqueeze(cot, -1)  # (rows of any size, a memory's symbolic length too)
        ga = c * b if ctx.needs[0] else None
        if not ctx.needs[1]:
            return [ga, None]
        if ta.batched:
            return [ga, reshape(total_outer(a, c), [int(tb.shape[0])])]
        return [ga, ctx.unbroadcast(c * a, tb)]
    if ta.rank == 1 or tb.rank < 2:
        raise ValueError(f"matmul adjoint for {ta} @ {tb} is not supported")
    if ta.batched and not tb.batched and tb.rank == 2:
        ga = matmul(cot, _swap_last(b)) if ctx.needs[0] else None
        gb = total_outer(a, cot) if ctx.needs[1] else None
        return [ga, gb]
    ga = ctx.unbroadcast(matmul(cot, _swap_last(b)), ta) if ctx.needs[0] else None
    gb = ctx.unbroadcast(matmul(_swap_last(a), cot), tb) if ctx.needs[1] else None
    return [ga, gb]


@register_adjoint("solve")
def _solve_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    """``x = A⁻¹ b``: ``b̄ = A⁻ᵀ x̄`` and ``Ā = -b̄ xᵀ``."""
    a, b = args
    bbar = out.graph.apply("solve", [_swap_last(a), cot], node.attrs)
    grads: list[Any] = [None, ctx.unbroadcast(bbar, b.type) if ctx.needs[1] else None]
    if ctx.needs[0]:
        if node.attrs["vector"]:
            outer = unsqueeze(bbar, -1) * unsqueeze(out, -2)
        else:
            outer = matmul(bbar, _swap_last(out))
        grads[0] = ctx.unbroadcast(-outer, a.type)
    return grads


# -------------------------------------------------------------------- reduce


def kept(node: Any, x: Value, v: Value) -> Value:
    """``v`` (a reduction's result or cotangent) with the reduced axes kept as 1s."""
    if node.attrs["keepdims"]:
        return v
    r = x.type.rank
    if x.type.symbolic:  # no sizes to reshape to: insert the axes, nearest the end first
        for a in sorted(node.attrs["axes"], reverse=True):
            v = unsqueeze(v, a)
        return v
    axes = {r + a for a in node.attrs["axes"]}
    off = 1 if x.type.batched else 0
    return reshape(v, [1 if i + off in axes else int(d) for i, d in enumerate(x.type.row_shape)])


def _spread(x: Value, v: Value) -> Value:
    """``v`` broadcast back to ``x``'s shape."""
    if x.type.symbolic:
        return zeros_like(x) + v
    ones = x.graph.constant(np.ones(tuple(int(d) for d in x.type.row_shape)))
    return v * ones


def _count(node: Any, x: Value) -> int:
    return int(np.prod([int(x.shape[a]) for a in node.attrs["axes"]]))


@register_adjoint("reduce_sum")
def _sum_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    (x,) = args
    return [_spread(x, kept(node, x, cot))]


@register_adjoint("reduce_mean")
def _mean_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    (x,) = args
    return [_spread(x, kept(node, x, cot) * (1.0 / _count(node, x)))]


def _extreme_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    """Every element equal to the extreme gets the cotangent (a subgradient at ties)."""
    (x,) = args
    hit = cast(equal(x, kept(node, x, out)), "float")
    return [hit * kept(node, x, cot)]


register_adjoint("reduce_max")(_extreme_adjoint)
register_adjoint("reduce_min")(_extreme_adjoint)


@register_adjoint("reduce_prod")
def _prod_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    (x,) = args
    return [kept(node, x, cot) * kept(node, x, out) / x]


@register_adjoint("softmax")
def _softmax_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    """``x̅ = y ⊙ (y̅ - <y, y̅>)`` along the softmax axis."""
    axis = node.attrs["axis"]
    return [out * (cot - reduce_sum(out * cot, axis, keepdims=True))]


@register_adjoint("log_softmax")
def _log_softmax_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    """``x̅ = y̅ - softmax(x) Σ y̅`` along the axis."""
    axis = node.attrs["axis"]
    return [cot - exp(out) * reduce_sum(cot, axis, keepdims=True)]


def normalised(x: Value, eps: float) -> tuple[Value, Value]:
    """``(x - mean) / sigma`` and ``1 / sigma`` over the last axis."""
    mu = reduce_mean(x, -1, keepdims=True)
    xc = x - mu
    inv = 1.0 / sqrt(reduce_mean(xc * xc, -1, keepdims=True) + eps)
    return xc * inv, inv


@register_adjoint("layer_norm")
def _layer_norm_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    """``x̅ = (g̅ - mean(g̅) - x̂ mean(g̅ x̂)) / sigma`` with ``g̅ = y̅ scale``; scale and bias sum."""
    x, scale, bias = args
    xhat, inv = normalised(x, node.attrs["epsilon"])
    gy = cot * scale
    dx = (
        gy - reduce_mean(gy, -1, keepdims=True) - xhat * reduce_mean(gy * xhat, -1, keepdims=True)
    ) * inv
    return [
        dx if ctx.needs[0] else None,
        ctx.unbroadcast(cot * xhat, scale.type) if ctx.needs[1] else None,
        ctx.unbroadcast(cot, bias.type) if ctx.needs[2] else None,
    ]


# ----------------------------------------------------------------- structure


@register_adjoint("concat")
def _concat_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    """Concat and split are each other's adjoints."""
    axis = node.attrs["axis"]
    parts, start = [], 0
    for a, need in zip(args, ctx.needs, strict=True):
        k = int(a.shape[axis])
        parts.append(slice(cot, start, start + k, axis) if need else None)
        start += k
    return parts


@register_adjoint("slice")
def _slice_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    """A slice's adjoint puts the cotangent back in place, zeros around it."""
    (x,) = args
    pads = []
    for axis, kept in slice_ranges(node.attrs, x.shape).items():
        if kept.step != 1:
            raise ValueError(f"the adjoint of a slice with step {kept.step} is not supported")
        pads.append((kept.start, int(x.shape[axis]) - max(kept.stop, kept.start)))
    return [pad(cot, node.attrs["axes"], pads)]


# -------------------------------------------------------------------- unsqueeze


@register_adjoint("unsqueeze")
def _unsqueeze_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    return [reduce_sum(cot, [node.attrs["axis"]], keepdims=False)]


@register_adjoint("reshape")
def _reshape_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    (x,) = args
    return [reshape(cot, [int(d) for d in x.type.row_shape])]


@register_adjoint("transpose")
def _transpose_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    perm = node.attrs["perm"]
    inverse = [perm.index(i) for i in range(len(perm))]
    off = 1 if cot.type.batched else 0
    return [transpose(cot, [*range(off), *(p + off for p in inverse)])]


@register_adjoint("gather")
def _gather_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    """Gather's adjoint scatter-adds: a product with the one-hot matrix of the indices."""
    x, idx_v = args
    g = x.graph
    idx = np.asarray(g.arrays[g.nx_graph.nodes[idx_v.node]["attrs"]["array"]]).reshape(-1)
    axis = node.attrs["axis"]
    n = int(x.shape[axis])
    onehot = np.zeros((len(idx), n))
    onehot[np.arange(len(idx)), idx % n] = 1.0
    # Move the gathered axes last, contract with the one-hot matrix, move back.
    r = x.type.rank
    ax = r + axis
    k_axes = max(idx_v.type.rank, 0)
    c = cot
    if k_axes != 1:
        shape = [*c.type.shape[:ax], len(idx), *c.type.shape[ax + k_axes :]]
        c = reshape(c, [int(d) for d in shape[1 if c.type.batched else 0 :]])
    perm = [*range(ax), *range(ax + 1, r), ax]
    c = transpose(c, perm)
    back = [*range(ax), r - 1, *range(ax, r - 1)]
    return [transpose(matmul(c, g.constant(onehot)), back), None]


# ---------------------------------------------------------------------- rows


@register_adjoint("gather_rows")
def _gather_rows_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    table, idx = args
    return [scatter_add_rows(ctx.zeros(table), idx, cot), None]


@register_adjoint("scatter_rows")
def _scatter_rows_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    _, idx, values = args
    return [
        scatter_rows(cot, idx, ctx.zeros(values)) if ctx.needs[0] else None,
        None,
        gather_rows(cot, idx) if ctx.needs[2] else None,
    ]


@register_adjoint("scatter_add_rows")
def _scatter_add_rows_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    return [
        cot if ctx.needs[0] else None,
        None,
        gather_rows(cot, args[1]) if ctx.needs[2] else None,
    ]


# --------------------------------------------------------------------- order

# Positions are integers: argmax, argmin and top_k pass no gradient (their values,
# read by take_along, do).
for _op in ("argmax", "argmin", "top_k"):
    register_adjoint(_op)(_no_gradient)


@register_adjoint("take_along")
def _take_along_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    x, idx = args
    return [scatter_add_along(ctx.zeros(x), idx, cot, node.attrs["axis"]), None]


@register_adjoint("scatter_add_along")
def _scatter_add_along_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    return [
        cot if ctx.needs[0] else None,
        None,
        take_along(cot, args[1], node.attrs["axis"]) if ctx.needs[2] else None,
    ]


@register_adjoint("cumsum")
def _cumsum_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    a = node.attrs
    return [cumsum(cot, a["axis"], reverse=not a["reverse"], exclusive=a["exclusive"])]


# ---------------------------------------------------------------------- conv


@register_adjoint("conv")
def _conv_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    """As ``y = W @ unfold(x)`` per group: ``x̄ = fold(Wᵀ ȳ)``, ``W̄ = Σ ȳ unfold(x)ᵀ``."""
    x, w = args
    a = node.attrs
    g = a["groups"]
    O, Cg, kern = int(w.shape[0]), int(w.shape[1]), [int(k) for k in w.shape[2:]]
    L = [int(n) for n in out.shape[2:]]
    c = reshape(cot, [g, O // g, int(np.prod(L))])
    grads: list[Any] = [None, None]
    if ctx.needs[0]:
        wt = transpose(reshape(w, [g, O // g, Cg * int(np.prod(kern))]), [0, 2, 1])
        cols = reshape(matmul(wt, c), [Cg * g, *kern, *L])
        grads[0] = fold(cols, a, [int(n) for n in x.shape[2:]])
    if ctx.needs[1]:  # x's windows as the columns each group's weights multiply
        cols = reshape(unfold(x, a), [g, Cg * int(np.prod(kern)), int(np.prod(L))])
        per_row = matmul(c, transpose(cols, [0, 1, 3, 2]))  # (B, g, O/g, C/g * K)
        grads[1] = ctx.unbroadcast(reshape(per_row, [O, Cg, *kern]), w.type)
    return grads


@register_adjoint("unfold")
def _unfold_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    return [fold(cot, node.attrs, [int(n) for n in args[0].shape[2:]])]


@register_adjoint("fold")
def _fold_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    return [unfold(cot, node.attrs)]


@register_adjoint("max_pool")
def _max_pool_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    """The cotangent goes to the entry each window took (the first largest)."""
    (x,) = args
    a = node.attrs
    d = len(a["kernel"])
    idx, scores = max_pool_choice(x, a)
    C, L = int(x.shape[1]), [int(n) for n in out.shape[2:]]
    routed = scatter_add_along(zeros_like(scores), idx, reshape(cot, [C, 1, *L]), -d - 1)
    windows = reshape(routed, [C, *[int(k) for k in a["kernel"]], *L])
    return [fold(windows, a, [int(n) for n in x.shape[2:]])]


# -------------------------------------------------------------------- totals


@register_adjoint("total")
def _total_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    """Every step and row of a sum receives the sum's cotangent."""
    (x,) = args
    return [zeros_like(x) + cot]


@register_adjoint("total_outer")
def _total_outer_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    a, b = args
    return [matmul(b, transpose(cot)), matmul(a, cot)]


@register_adjoint("zeros_like")
def _zeros_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    return [None]


@register_adjoint("pad")
def _pad_adjoint(ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value) -> list[Any]:
    (x,) = args
    starts = [lo for lo, _ in node.attrs["pads"]]
    ends = [
        lo + int(x.shape[a])
        for a, (lo, _) in zip(node.attrs["axes"], node.attrs["pads"], strict=True)
    ]
    return [slice(cot, starts, ends, node.attrs["axes"])]


# ---------------------------------------------------------------- fixed points


@register_adjoint("fixed_point")
def _fixed_point_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    """Implicit: ``w = (∂f/∂z)ᵀ w + z̄`` (a fixed point of the transposed body), then
    ``θ̄ = (∂f/∂θ)ᵀ w`` for each capture; the start value gets none."""
    if node.attrs.get("report", "value") != "value":
        return [None] * len(args)
    body = fixed.Body.of(node.attrs)
    caps = list(args[1:])
    values = body.inline(out, caps)  # f's intermediate values at the fixed point

    def transposed(w: Value) -> Value:
        (back,) = fixed.body_vjp(ctx, body, out, caps, values, w, to_z=True)
        return cot + (w * 0.0 if back is None else back)

    w = fixed.fixed_point(
        transposed, zeros_like(cot), tol=body.tol, max_iter=body.max_iter, name=f"{node.name}.adj"
    )
    return [None, *fixed.body_vjp(ctx, body, out, caps, values, w, to_z=False)]
