"""Fixed points: a loop inside one step that runs until its value stops changing.

``z = fixed_point(f, z0)`` applies ``f`` (a Python function that builds ops
from a :class:`~rnngraph.ir.graph.Value`) to ``z0`` again and again. Each
batch row stops on its own: at the first application whose largest change
``max |f(z) - z|`` over the row is below ``tol``, or after ``max_iter``
applications, whichever comes first. A row's result therefore does not depend
on the other rows of the batch, and every backend computes the same loop.

``f`` is traced once, on a placeholder: the ops it builds that depend on its
argument become the *body* of one ``fixed_point`` node, stored in the node's
attributes; whatever else they read (parameters, inputs, states, values
computed from those) becomes the node's further operands, its *captures*.
The body may not contain delays (a loop with no delay inside a step is what
the fixed point is for; feedback across steps goes through states as usual).

Gradients are implicit, not backpropagated through the iterations: at a fixed
point ``z* = f(z*, θ)`` the adjoint ``w`` solves ``w = (∂f/∂z)ᵀ w + z̄`` —
itself a fixed point, of the transposed map, built from the body's own adjoint
rules — and ``θ̄ = (∂f/∂θ)ᵀ w``; the tangent solves ``ż = (∂f/∂z) ż + (∂f/∂θ) θ̇``.
Both are exact where ``f`` is a contraction near ``z*``; ``z0`` gets no
gradient. A row that reached ``max_iter`` is not hidden: ask for
``iterations=True`` and its count equals ``max_iter``.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("sqrt2")
>>> a = g.input("a", 1)
>>> z, n = rg.fixed_point(lambda z: 0.5 * (z + a / z), a, tol=1e-12, iterations=True)
>>> g.output("z", z)
>>> g.output("n", n)
>>> out = rg.run(g, {"a": np.array([[[2.0], [9.0]]])})
>>> out["z"][0, :, 0].round(12).tolist(), out["n"][0, :, 0].tolist()
([1.414213562373, 3.0], [6.0, 7.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph, Node, Value, as_value
from rnngraph.ir.registry import ADJOINT, OPS, REFERENCE, TANGENT, lookup, register_op
from rnngraph.ir.types import BATCH, TensorType

__all__ = ["Body", "BodyNode", "FixedPointError", "fixed_point"]

Z = -1
"""A body operand reference to the iterated value; ``-2 - i`` is capture ``i``."""


class FixedPointError(GraphError):
    """A fixed point's function, start value or limits cannot make a fixed point."""


@dataclass(frozen=True)
class BodyNode:
    """One op of a fixed point's body; ``args`` index body nodes (>= 0), ``Z`` or captures."""

    name: str
    op: str
    attrs: Mapping[str, Any]
    type: TensorType
    args: tuple[int, ...]


@dataclass(frozen=True)
class Body:
    """A fixed point's body, read from the node's attributes (its last node is ``f(z)``)."""

    nodes: tuple[BodyNode, ...]
    tol: float
    max_iter: int

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> Body:
        nodes = tuple(
            BodyNode(
                str(n["name"]),
                str(n["op"]),
                dict(n["attrs"]),
                TensorType(tuple(n["shape"]), str(n["dtype"])),
                tuple(int(a) for a in n["args"]),
            )
            for n in attrs["body"]
        )
        return cls(nodes, float(attrs["tol"]), int(attrs["max_iter"]))

    def pick(self, ref: int, z: Any, captures: Sequence[Any], values: Sequence[Any]) -> Any:
        """What operand reference ``ref`` names, among ``z``, captures and body values."""
        if ref == Z:
            return z
        if ref < Z:
            return captures[-2 - ref]
        return values[ref]

    def evaluate(self, z: np.ndarray, captures: Sequence[np.ndarray], ft: Any) -> np.ndarray:
        """``f(z)`` with the reference semantics of each body op."""
        values: list[np.ndarray] = []
        for n in self.nodes:
            args = [self.pick(a, z, captures, values) for a in n.args]
            values.append(REFERENCE[n.op]({**n.attrs, "float_dtype": ft}, *args))
        return values[-1]

    def inline(self, z: Value, captures: Sequence[Value]) -> list[Value]:
        """The body's ops applied in ``z``'s graph to ``z`` and the captures: each node's value."""
        values: list[Value] = []
        for n in self.nodes:
            args = [self.pick(a, z, captures, values) for a in n.args]
            values.append(z.graph.apply(n.op, args, n.attrs))
        return values


# ------------------------------------------------------------------ the op


def _check_body(attrs: Mapping[str, Any], types: Sequence[TensorType]) -> TensorType:
    """Re-infer every body node's type from the operand types (a loaded file is checked too)."""
    body = Body.of(attrs)
    if not body.nodes:
        raise ValueError("the fixed point's body is empty")
    z = types[0]
    seen: list[TensorType] = []
    for i, n in enumerate(body.nodes):
        opdef = lookup(n.op)
        if opdef.source or opdef.after_steps:
            raise ValueError(f"body node {n.name!r}: op {n.op!r} cannot run inside a fixed point")
        if any(a >= i or -2 - a >= len(types) - 1 for a in n.args):
            raise ValueError(f"body node {n.name!r} reads an operand that is not before it")
        arg_types = [body.pick(a, z, types[1:], seen) for a in n.args]
        if opdef.arity is not None and len(arg_types) != opdef.arity:
            raise ValueError(f"body node {n.name!r}: op {n.op!r} takes {opdef.arity} operands")
        t = opdef.infer(arg_types, n.attrs)
        if t != n.type:
            raise ValueError(f"body node {n.name!r} has type {n.type}, its operands give {t}")
        seen.append(t)
    if seen[-1] != z:
        raise ValueError(f"f(z) has type {seen[-1]}, z has type {z}: they must agree")
    if not (math.isfinite(body.tol) and body.tol > 0 and body.max_iter >= 1):
        raise ValueError(f"tol must be positive and max_iter at least 1, got {attrs}")
    return z if attrs.get("report", "value") == "value" else TensorType((BATCH, 1))


_ITERATES = ("float", "int8", "int16")
"""What a fixed point iterates: a float signal, or an integer graph's int8 or int16
integers (their change measured exactly; a float32 holds them too)."""


def _infer(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    if not types or not types[0].batched or types[0].dtype not in _ITERATES:
        raise ValueError(
            "a fixed point iterates a float signal (B, ...), or an integer graph's int8/int16"
        )
    if attrs.get("report", "value") not in ("value", "count"):
        raise ValueError(f"report must be 'value' or 'count', got {attrs.get('report')!r}")
    return _check_body(attrs, types)


@register_op("fixed_point", arity=None, infer=_infer, attrs=("body", "tol", "max_iter", "report"))
def _fixed_point(attrs: Mapping[str, Any], z0: np.ndarray, *captures: np.ndarray) -> np.ndarray:
    """z_0 = x0; z_k = f(z_{k-1}, captures) per row until max|z_k - z_{k-1}| < tol or k = max_iter.

    The value is the last z_k (``report="value"``) or, shaped (B, 1), the row's k
    (``report="count"``); f is the node's body.
    """
    body = Body.of(attrs)
    ft = attrs.get("float_dtype", z0.dtype)
    row = len(body.nodes[-1].type.shape) - 1
    axes = tuple(range(z0.ndim - row, z0.ndim))
    z = np.asarray(z0)
    lead = z.shape[: z.ndim - row]
    done = np.zeros(lead, bool)
    count = np.zeros(lead, z.dtype)
    for _ in range(body.max_iter):
        new = np.asarray(body.evaluate(z, captures, ft), z.dtype)
        diff = np.abs(new.astype(np.int64) - z) if z.dtype.kind == "i" else np.abs(new - z)
        change = diff.max(axis=axes) if axes else diff
        keep = done.reshape(lead + (1,) * row)
        z = np.where(keep, z, new)
        count += ~done
        done |= change < body.tol  # (a NaN never converges: it runs to max_iter)
        if done.all():
            break
    if attrs.get("report", "value") == "count":
        return count[..., None]
    return z


# --------------------------------------------------------------- the builder


def fixed_point(
    fn: Callable[[Value], Any],
    x0: Value,
    *,
    tol: float = 1e-6,
    max_iter: int = 100,
    iterations: bool = False,
    name: str | None = None,
) -> Any:
    """The fixed point of ``fn`` reached from ``x0``, per batch row.

    Parameters
    ----------
    fn : callable
        ``fn(z) -> Value`` of ``z``'s type, built from graph ops; it may read
        any value of the graph (weights, inputs, states) besides ``z``.
    x0 : Value
        The start, a float signal ``(B, ...)``.
    tol : float
        A row stops at the first application whose largest change is below it.
    max_iter : int
        The most applications of ``fn`` per row.
    iterations : bool
        Also return each row's number of applications, ``(B, 1)``; it equals
        ``max_iter`` where the row did not converge.
    name : str, optional
        The node's name.

    Returns
    -------
    Value, or (Value, Value) with ``iterations=True``.

    Raises
    ------
    FixedPointError
        If ``fn``'s result does not depend on ``z``, has another type, or
        reads ``z`` through a delay; the graph is left as it was.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("sqrt2")
    >>> x0 = g.input("x0", 1)
    >>> z, n = rg.fixed_point(lambda z: 0.5 * (z + 2.0 / z), x0, tol=1e-12, iterations=True)
    >>> g.output("z", z)
    >>> g.output("n", n)
    >>> out = rg.run(g, {"x0": np.ones((1, 1, 1))}, dtype="float64")
    >>> round(float(out["z"].item()), 12), int(out["n"].item())  # Newton for sqrt(2)
    (1.414213562373, 6)
    """
    if not isinstance(x0, Value) or not x0.type.batched or x0.dtype != "float":
        raise FixedPointError(
            f"fixed_point iterates a float signal (B, ...): got {getattr(x0, 'type', x0)!r}; "
            "start from a Value such as rg.zeros_like(h)"
        )
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not (0 < tol < math.inf):
        raise FixedPointError(f"fixed_point: tol must be a positive number, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise FixedPointError(f"fixed_point: max_iter must be an int >= 1, got {max_iter!r}")
    g = x0.graph
    with g.building():
        attrs, captures = _trace(g, fn, x0, name or "fixed_point")
        attrs.update(tol=float(tol), max_iter=int(max_iter), report="value")
        z = g.apply("fixed_point", [x0, *captures], attrs, name=name)
        if not iterations:
            return z
        n = g.apply("fixed_point", [x0, *captures], {**attrs, "report": "count"})
        return z, n


def _trace(
    g: Graph, fn: Callable[[Value], Any], x0: Value, label: str
) -> tuple[dict[str, Any], list[Value]]:
    """Trace ``fn`` on a placeholder, cut the ops that depend on it out of ``g``: the body."""
    nxg = g.nx_graph
    ph = g.add_node_raw("delay", x0.type, {}, name=g.fresh_name(f"{label}.z"))
    result = fn(Value(g, ph))
    result = as_value(result, g)
    desc = nx.descendants(nxg, ph)
    if result.node not in desc:
        raise FixedPointError(
            f"{label}: fn's result {result.name!r} does not depend on its argument, so "
            "there is nothing to iterate"
        )
    if result.type != x0.type:
        raise FixedPointError(
            f"{label}: fn returns {result.type}, the start value {x0.name!r} is {x0.type}; "
            "f(z) must have z's type"
        )
    inner = (nx.ancestors(nxg, result.node) | {result.node}) & desc
    outputs = set(g.output_nodes().values())
    for nid in desc:
        d = nxg.nodes[nid]
        if nid in outputs or d["op"] == "state":
            raise FixedPointError(
                f"{label}: fn made {d['name']!r} an output or a state's value; return the "
                "new z and use the fixed point's result outside"
            )
    for nid in inner:
        d = nxg.nodes[nid]
        for u, _, data in nxg.in_edges(nid, data=True):
            if data["delay"] != 0:
                raise FixedPointError(
                    f"{label}: {d['name']!r} reads {nxg.nodes[u]['name']!r} through a delay; a "
                    "fixed point's body runs within one step (no delays inside)"
                )
        if OPS[d["op"]].after_steps:
            raise FixedPointError(f"{label}: op {d['op']!r} cannot run inside a fixed point")
    order = [n for n in nx.lexicographical_topological_sort(nxg.subgraph(inner))]
    index = {nid: i for i, nid in enumerate(order)}
    captures: list[int] = []
    body = []
    for nid in order:
        d = nxg.nodes[nid]
        args = []
        for u, _, _ in g.operands(nid):
            if u == ph:
                args.append(Z)
            elif u in index:
                args.append(index[u])
            else:
                if u not in captures:
                    captures.append(u)
                args.append(-2 - captures.index(u))
        body.append(
            {
                "name": d["name"],
                "op": d["op"],
                "attrs": dict(d["attrs"]),
                "shape": list(d["type"].shape),
                "dtype": d["type"].dtype,
                "args": args,
            }
        )
    # What fn built beside the body (dead branches, or what a rule made and did not use).
    g.remove_nodes(list(reversed(list(nx.topological_sort(nxg.subgraph(desc | {ph}))))))
    return {"body": body}, [Value(g, u) for u in captures]


# ------------------------------------------------------------- derivatives


def body_vjp(
    ctx: Any,
    body: Body,
    z: Value,
    captures: Sequence[Value],
    values: Sequence[Value],
    cot: Value,
    *,
    to_z: bool,
) -> list[Value | None]:
    """The body's vector–Jacobian product by its ops' adjoint rules: the cotangent of
    ``z`` (``to_z``) or of each capture."""
    cots: list[list[Value]] = [[] for _ in body.nodes]
    cots[-1].append(cot)
    z_parts: list[Value] = []
    cap_parts: list[list[Value]] = [[] for _ in captures]
    for i in range(len(body.nodes) - 1, -1, -1):
        n = body.nodes[i]
        if not cots[i]:
            continue
        c = _sum(cots[i])
        args = [body.pick(a, z, captures, values) for a in n.args]
        inner = type(ctx)(ctx.graph)
        inner.needs = [
            a >= 0 or (a == Z and to_z) or (a < Z and not to_z and args[k].dtype == "float")
            for k, a in enumerate(n.args)
        ]
        rule = ADJOINT.get(n.op)
        if rule is None:
            raise GraphError(f"op {n.op!r} (fixed point body node {n.name!r}) has no adjoint rule")
        node = Node(values[i].node, n.name, n.op, n.type, dict(n.attrs), None)
        parts = rule(inner, node, args, values[i], c)
        for a, need, part in zip(n.args, inner.needs, parts, strict=True):
            if part is None or not need:
                continue
            if a >= 0:
                cots[a].append(part)
            elif a == Z:
                z_parts.append(part)
            else:
                cap_parts[-2 - a].append(part)
    if to_z:
        return [_sum(z_parts) if z_parts else None]
    return [_sum(p) if p else None for p in cap_parts]


def body_jvp(
    body: Body,
    z: Value,
    captures: Sequence[Value],
    values: Sequence[Value],
    z_dot: Value | None,
    cap_dots: Sequence[Value | None],
) -> Value | None:
    """The body's Jacobian–vector product by its ops' tangent rules."""
    dots: list[Value | None] = []
    for i, n in enumerate(body.nodes):
        args = [body.pick(a, z, captures, values) for a in n.args]
        ins = [body.pick(a, z_dot, cap_dots, dots) for a in n.args]
        if all(d is None for d in ins):
            dots.append(None)
            continue
        rule = TANGENT.get(n.op)
        if rule is None:
            raise GraphError(f"op {n.op!r} (fixed point body node {n.name!r}) has no tangent rule")
        node = Node(values[i].node, n.name, n.op, n.type, dict(n.attrs), None)
        dots.append(rule(node, args, values[i], ins))
    return dots[-1]


def _sum(parts: Sequence[Value]) -> Value:
    acc = parts[0]
    for p in parts[1:]:
        acc = acc + p
    return acc
