"""Linear algebra: ``matmul`` and the ``linear`` layer built on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import BATCH, Dim, TensorType, broadcast_shapes, format_shape
from rnngraph.ops._rules import float_operands

__all__ = ["linear", "matmul", "solve"]


def _matmul_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    """NumPy matmul on per-step shapes; a rank-2 signal ``(B, k)`` multiplies as rows."""
    float_operands(types)
    a, b = (list(t.shape) for t in types)
    if not a or not b:
        raise ValueError("matmul needs operands of rank >= 1")
    a_vec, b_vec = len(a) == 1, len(b) == 1
    if a_vec:
        a = [1, *a]
    if b_vec:
        b = [*b, 1]
    if a[-1] != b[-2] or BATCH in (a[-1], b[-2]):
        raise ValueError(
            f"inner dimensions differ: {format_shape(types[0].shape)} @ "
            f"{format_shape(types[1].shape)} (contracts {a[-1]} with {b[-2]})"
        )
    lead = broadcast_shapes([a[:-2], b[:-2]])
    out: list[Dim] = [*lead, a[-2], b[-1]]
    if a_vec:
        del out[-2]
    if b_vec:
        del out[-1]
    try:
        return TensorType(tuple(out))
    except ValueError:
        raise ValueError(
            f"the batch axis would not lead in the result {format_shape(out)}; "
            "for W @ x per row, write x @ transpose(W)"
        ) from None


@register_op("matmul", arity=2, infer=_matmul_rule)
def _matmul(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = a(t) @ b(t) (NumPy matmul; a signal (B, k) times (k, n) gives (B, n))"""
    return np.matmul(a, b)


def matmul(a: Value, b: Value, *, name: str | None = None) -> Value:
    """Matrix product ``a @ b`` (also the ``@`` operator on Values).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("m")
    >>> x = g.input("x", 3)
    >>> W = g.param("W", (3, 5))
    >>> rg.matmul(x, W).shape
    ('B', 5)
    """
    g = a.graph if isinstance(a, Value) else b.graph
    return g.apply("matmul", [a, b], name=name)


def linear(
    x: Value,
    features: int,
    *,
    bias: bool = True,
    name: str | None = None,
    init: str = "uniform",
    scale: float | None = None,
) -> Value:
    """An affine map ``x @ W + b`` with new params ``<name>.W`` (in, features) and ``<name>.b``.

    The weight is laid out ``(in_features, features)`` so that one step of a
    signal ``(B, in)`` maps to ``(B, features)``. The result node is named
    ``name`` (the matmul inside is ``<name>.matmul`` when there is a bias).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("lin")
    >>> y = rg.linear(g.input("x", 8), 4, name="proj")
    >>> y.name, y.shape, sorted(g.params)
    ('proj', ('B', 4), ['proj.W', 'proj.b'])
    """
    if not isinstance(x, Value):
        raise TypeError(f"linear: expected a graph Value, got {type(x).__name__}")
    if not x.shape or x.shape[-1] == BATCH:
        raise x.graph.shape_error("linear", name, f"needs a feature axis, got {x.type}", [x])
    g = x.graph
    base = name if name is not None else g.fresh_name("linear")
    in_features = int(x.shape[-1])
    W = g.param(f"{base}.W", (in_features, int(features)), init, scale=scale)
    if not bias:
        return g.apply("matmul", [x, W], name=base)
    b = g.param(f"{base}.b", (int(features),), "zeros")
    return g.apply("add", [g.apply("matmul", [x, W], name=f"{base}.matmul"), b], name=base)


# ------------------------------------------------------------------------ solve


def _solve_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    float_operands(types)
    a, b = types
    vec = attrs["vector"]
    if len(a.shape) < 2 or a.shape[-1] != a.shape[-2] or not isinstance(a.shape[-1], int):
        raise ValueError(f"A must be square matrices (..., n, n) of a fixed n, got {a}")
    n = a.shape[-1]
    tail = 1 if vec else 2
    if len(b.shape) < tail or b.shape[len(b.shape) - tail] != n:
        want = "(..., n)" if vec else "(..., n, m)"
        raise ValueError(f"b must be {want} with n = {n} (A's size), got {b}")
    lead = broadcast_shapes([a.shape[:-2], b.shape[: len(b.shape) - tail]])
    return TensorType((*lead, *b.shape[len(b.shape) - tail :]))


@register_op("solve", arity=2, infer=_solve_rule, attrs=("vector",))
def _solve(attrs: Mapping[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y(t) = A(t)^-1 b(t): the solution of A y = b (a vector b, or each column of a
    matrix b); NaN for a singular A"""
    rhs = b[..., None] if attrs["vector"] else b
    lead = np.broadcast_shapes(a.shape[:-2], rhs.shape[:-2])
    A = np.broadcast_to(a, (*lead, *a.shape[-2:]))
    R = np.broadcast_to(rhs, (*lead, *rhs.shape[-2:]))
    try:
        x = np.linalg.solve(A, R)
    except np.linalg.LinAlgError:  # one matrix at a time: NaN for the singular ones
        x = np.empty(R.shape, np.result_type(A, R))
        flat_a, flat_r = A.reshape(-1, *A.shape[-2:]), R.reshape(-1, *R.shape[-2:])
        flat_x = x.reshape(-1, *R.shape[-2:])
        for i in range(len(flat_a)):
            try:
                flat_x[i] = np.linalg.solve(flat_a[i], flat_r[i])
            except np.linalg.LinAlgError:
                flat_x[i] = np.nan
    x = x.astype(np.result_type(a, b), copy=False)
    return x[..., 0] if attrs["vector"] else x


def solve(a: Value, b: Value, *, name: str | None = None) -> Value:
    """The solution ``x`` of ``A x = b`` (``torch.linalg.solve``): ``b`` of ``A``'s rank less
    one is a vector per matrix (for a signal: a vector per batch row), ``b`` of ``A``'s
    rank is a matrix whose columns are solved for. Leading axes broadcast. Gaussian
    elimination with partial pivoting on every backend; a singular ``A`` gives
    NaN or infinities.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("s")
    >>> A = g.constant(np.array([[2.0, 1.0], [1.0, 3.0]]))
    >>> g.output("x", rg.solve(A, g.input("b", 2)))
    >>> rg.run(g, {"b": np.array([[[3.0, 5.0]]])})["x"].round(6).tolist()
    [[[0.8, 1.4]]]
    """
    g = a.graph if isinstance(a, Value) else b.graph
    a, b = (v if isinstance(v, Value) else g.constant(np.asarray(v)) for v in (a, b))
    vector = len(b.shape) == len(a.shape) - 1 or (
        len(b.shape) == len(a.shape) and b.type.batched and not a.type.batched and len(a.shape) == 2
    )
    return g.apply("solve", [a, b], {"vector": bool(vector)}, name=name)
