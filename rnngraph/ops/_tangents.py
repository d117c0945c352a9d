"""Tangent (forward-mode) rules of every op: ``rule(node, operands, out, tangents)``.

Linear ops apply themselves to the tangents; element-wise ops multiply by
their local derivative (the same gain their adjoint rule uses); products
follow the Leibniz rule. A tangent of None is zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rnngraph.ir.graph import Value
from rnngraph.ir.registry import OPS, REFERENCE, register_tangent
from rnngraph.ops import convolution, fixed, linalg, order, reduce, rows, structure, totals
from rnngraph.ops import elementwise as ew
from rnngraph.ops._adjoints import GAINS, kept, normalised
from rnngraph.ops.integer import INTEGER_OPS

__all__: list[str] = []

Dots = Sequence[Value | None]


def _z(d: Value | None, like: Value) -> Value:
    return totals.zeros_like(like) if d is None else d


def _sum(parts: list[Value | None]) -> Value | None:
    live = [p for p in parts if p is not None]
    if not live:
        return None
    acc = live[0]
    for p in live[1:]:
        acc = acc + p
    return acc


def _linear(op: str) -> None:
    """An op linear in its (one or many) operands: the op of the tangents."""

    def rule(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
        if all(d is None for d in dots):
            return None
        g = out.graph
        vals = [_z(d, a) for d, a in zip(dots, args, strict=True)]
        return g.apply(op, vals, node.attrs)

    register_tangent(op)(rule)


for _op in ("add", "sub", "concat", "slice", "reshape", "transpose", "unsqueeze", "pad", "total"):
    _linear(_op)
for _op in ("reduce_sum", "reduce_mean", "cumsum", "unfold", "fold"):
    _linear(_op)


@register_tangent("state")
def _identity(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    return dots[0]  # the delayed read of the tangent is made by the transform


register_tangent("delay")(_identity)


@register_tangent("gather")
def _gather(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    return None if dots[0] is None else structure.gather(dots[0], args[1], node.attrs["axis"])


@register_tangent("cast")
def _cast(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    return dots[0] if out.dtype == "float" else None


def _none(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    return None


for _op in ("greater", "less", "equal", "floor", "ceil", "zeros_like", "random", "stop_gradient"):
    register_tangent(_op)(_none)
for _op in ("argmax", "argmin", "top_k", "quantize", "dequantize"):  # integers
    register_tangent(_op)(_none)
for _op in sorted(INTEGER_OPS):  # integers only
    register_tangent(_op)(_none)


@register_tangent("mul")
def _mul(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    a, b = args
    da, db = dots
    return _sum([None if da is None else da * b, None if db is None else a * db])


@register_tangent("div")
def _div(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    b = args[1]
    da, db = dots
    return _sum([None if da is None else da / b, None if db is None else -(db * out) / b])


@register_tangent("pow")
def _pow(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    a, b = args
    da, db = dots
    return _sum(
        [
            None if da is None else da * b * (a ** (b - 1.0)),
            None if db is None else db * out * ew.log(a),
        ]
    )


def _select(first: str) -> Callable[..., Value | None]:
    def rule(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
        a, b = args
        if all(d is None for d in dots):
            return None
        loses = ew.less(a, b) if first == "maximum" else ew.greater(a, b)
        da, db = _z(dots[0], a), _z(dots[1], b)
        return ew.where(loses, db + totals.zeros_like(out), da + totals.zeros_like(out))

    return rule


register_tangent("maximum")(_select("maximum"))
register_tangent("minimum")(_select("minimum"))


@register_tangent("where")
def _where(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    c, a, b = args
    if dots[1] is None and dots[2] is None:
        return None
    zero = totals.zeros_like(out)
    return ew.where(c, _z(dots[1], a) + zero, _z(dots[2], b) + zero)


def _gain(op: str) -> None:
    gain = GAINS[op]  # the element-wise derivative the adjoint rule applies too

    def rule(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
        return None if dots[0] is None else gain(args[0], out, dots[0], node.attrs)

    register_tangent(op)(rule)


for _op in GAINS:
    _gain(_op)


@register_tangent("matmul")
def _matmul(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    a, b = args
    da, db = dots
    return _sum(
        [None if da is None else linalg.matmul(da, b), None if db is None else linalg.matmul(a, db)]
    )


@register_tangent("total_outer")
def _total_outer(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    a, b = args
    da, db = dots
    return _sum(
        [
            None if da is None else totals.total_outer(da, b),
            None if db is None else totals.total_outer(a, db),
        ]
    )


@register_tangent("reduce_max")
def _rmax(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    (x,), (d,) = args, dots
    if d is None:
        return None
    hit = ew.cast(ew.equal(x, kept(node, x, out)), "float")
    axes, keep = node.attrs["axes"], node.attrs["keepdims"]
    return reduce.reduce_sum(hit * d, axes, keepdims=keep)


register_tangent("reduce_min")(_rmax)


@register_tangent("reduce_prod")
def _rprod(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    (x,), (d,) = args, dots
    if d is None:
        return None
    axes, keep = node.attrs["axes"], node.attrs["keepdims"]
    return out * reduce.reduce_sum(d / x, axes, keepdims=keep)


@register_tangent("softmax")
def _softmax(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    (d,) = dots
    if d is None:
        return None
    axis = node.attrs["axis"]
    return out * (d - reduce.reduce_sum(out * d, axis, keepdims=True))


@register_tangent("log_softmax")
def _log_softmax(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    (d,) = dots
    if d is None:
        return None
    axis = node.attrs["axis"]
    return d - reduce.reduce_sum(ew.exp(out) * d, axis, keepdims=True)


@register_tangent("gather_rows")
def _gather_rows(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    return None if dots[0] is None else rows.gather_rows(dots[0], args[1])


def _scatter(op: str) -> None:
    """Scattering is linear in the table and the values; the indices are data."""

    def rule(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
        table, idx, values = args
        if dots[0] is None and dots[2] is None:
            return None
        return out.graph.apply(op, [_z(dots[0], table), idx, _z(dots[2], values)], node.attrs)

    register_tangent(op)(rule)


_scatter("scatter_rows")
_scatter("scatter_add_rows")
_scatter("scatter_add_along")


@register_tangent("solve")
def _solve(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    """``ẋ = A⁻¹ (ḃ - Ȧ x)``."""
    a, (da, db) = args[0], dots
    if da is None and db is None:
        return None
    moved: Value | None = None  # Ȧ x
    if da is not None and node.attrs["vector"]:
        moved = -reduce.reduce_sum(da * structure.unsqueeze(out, -2), -1)
    elif da is not None:
        moved = -linalg.matmul(da, out)
    rhs = _sum([db, moved])
    assert rhs is not None
    return out.graph.apply("solve", [a, rhs], node.attrs)


@register_tangent("conv")
def _conv(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    (x, w), (dx, dw) = args, dots
    g = out.graph
    return _sum(
        [
            None if dx is None else g.apply("conv", [dx, w], node.attrs),
            None if dw is None else g.apply("conv", [x, dw], node.attrs),
        ]
    )


@register_tangent("max_pool")
def _max_pool(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    """The tangent of the entry each window took."""
    if dots[0] is None:
        return None
    d = len(node.attrs["kernel"])
    idx, scores = convolution.max_pool_choice(args[0], node.attrs)
    flat = [int(n) for n in scores.shape[1:]]
    taken = order.take_along(
        structure.reshape(convolution.unfold(dots[0], node.attrs), flat), idx, -d - 1
    )
    return structure.reshape(taken, [int(n) for n in out.shape[1:]])


@register_tangent("take_along")
def _take_along(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    return None if dots[0] is None else order.take_along(dots[0], args[1], node.attrs["axis"])


@register_tangent("layer_norm")
def _layer_norm(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    x, scale = args[0], args[1]
    dx, ds, db = dots
    xhat, inv = normalised(x, node.attrs["epsilon"])
    parts: list[Value | None] = [None, None, db]
    if dx is not None:
        centred = dx - reduce.reduce_mean(dx, -1, keepdims=True)
        proj = xhat * reduce.reduce_mean(dx * xhat, -1, keepdims=True)
        parts[0] = (centred - proj) * inv * scale
    if ds is not None:
        parts[1] = xhat * ds
    return _sum(parts)


_missing = sorted(set(OPS) - set(REFERENCE))
assert not _missing


@register_tangent("fixed_point")
def _fixed_point(node: Any, args: Sequence[Value], out: Value, dots: Dots) -> Value | None:
    """Implicit: ``ż = (∂f/∂z) ż + (∂f/∂θ) θ̇``, a fixed point itself."""
    if node.attrs.get("report", "value") != "value" or all(d is None for d in dots[1:]):
        return None
    body = fixed.Body.of(node.attrs)
    caps, cap_dots = list(args[1:]), list(dots[1:])
    values = body.inline(out, caps)
    drive = fixed.body_jvp(body, out, caps, values, None, cap_dots)
    if drive is None:
        return None
    rest = [None] * len(caps)

    def linearised(d: Value) -> Value:
        back = fixed.body_jvp(body, out, caps, values, d, rest)
        return drive + (d * 0.0 if back is None else back)

    return fixed.fixed_point(
        linearised,
        totals.zeros_like(out),
        tol=body.tol,
        max_iter=body.max_iter,
        name=f"{node.name}.tan",
    )
