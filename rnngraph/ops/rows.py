"""Row gather and scatter by data-dependent indices: the ops of structural recursion.

A recursive network computes the nodes of one tree level at a time: it
gathers the states of their children from a table of node states, applies
the cell, and writes the results back into the table. ``gather_rows`` and
``scatter_rows`` are those two moves, per step and per batch row, with
indices that are data (an int64 signal, or a constant). Index ``-1`` is
padding: gathering it gives zeros, scattering to it writes nothing.

Adjoints: gathering scatter-adds (a product with the one-hot matrix of the
indices); scattering passes the cotangent through except on overwritten
rows, and gathers it for the written values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.graph import Value, as_value
from rnngraph.registry import register_adjoint, register_op
from rnngraph.types import TensorType

__all__ = ["gather_rows", "scatter_rows"]


def _check_index(table: TensorType, idx: TensorType) -> None:
    if idx.dtype != "int64":
        raise ValueError(f"row indices must be int64, got {idx}")
    if not table.batched or table.rank < 3:
        raise ValueError(f"the table must be a signal of rows (B, N, ...), got {table}")
    if idx.batched and idx.rank != 2:
        raise ValueError(f"per-row indices must have shape (B, M), got {idx}")
    if not idx.batched and idx.rank != 1:
        raise ValueError(f"constant indices must have shape (M,), got {idx}")


def _gather_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    table, idx = types
    _check_index(table, idx)
    return TensorType(("B", idx.shape[-1], *table.shape[2:]), table.dtype)


def _leading(table: np.ndarray, idx: np.ndarray, tail: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices broadcast to the table's leading axes (constant indices serve every row)."""
    lead = table.shape[: table.ndim - tail - 1]
    return np.broadcast_to(idx, (*lead, idx.shape[-1])), np.asarray(lead)


@register_op("gather_rows", arity=2, infer=_gather_rule, attrs=("tail",))
def _gather_rows(attrs: Mapping[str, Any], table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """y(t)[b, m] = table(t)[b, idx(t)[b, m]], zeros where idx is -1"""
    tail = attrs["tail"]
    i, _ = _leading(table, idx, tail)
    safe = np.where(i < 0, 0, i).reshape(i.shape + (1,) * tail)
    out = np.take_along_axis(table, safe, axis=table.ndim - tail - 1)
    return np.where((i >= 0).reshape(i.shape + (1,) * tail), out, 0).astype(table.dtype)


def gather_rows(table: Value, idx: Value | np.ndarray, *, name: str | None = None) -> Value:
    """Rows ``idx`` of ``table`` ``(B, N, ...)``, per batch row: ``(B, M, ...)``.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("g")
    >>> table = g.input("table", (3, 2))
    >>> g.output("y", gather_rows(table, np.array([2, -1, 0])))
    >>> t = np.arange(6.0).reshape(1, 1, 3, 2)
    >>> rg.run(g, {"table": t})["y"][0, 0].tolist()
    [[4.0, 5.0], [0.0, 0.0], [0.0, 1.0]]
    """
    i = as_value(np.asarray(idx, np.int64) if isinstance(idx, np.ndarray) else idx, table.graph)
    tail = len(table.shape) - 2
    return table.graph._apply("gather_rows", [table, i], {"tail": tail}, name=name)


def _scatter_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    table, idx, values = types
    _check_index(table, idx)
    want = ("B", idx.shape[-1], *table.shape[2:])
    if values.shape != want or values.dtype != table.dtype:
        raise ValueError(f"values must be {want} of {table.dtype}, got {values}")
    return table


@register_op("scatter_rows", arity=3, infer=_scatter_rule, attrs=("tail",))
def _scatter_rows(
    attrs: Mapping[str, Any], table: np.ndarray, idx: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """y(t) = table(t) with row idx(t)[b, m] replaced by values(t)[b, m] (idx -1: skipped)"""
    tail = attrs["tail"]
    i, _ = _leading(table, idx, tail)
    axis = table.ndim - tail - 1
    n = table.shape[axis]
    # One extra row takes the padding's writes and is cut off afterwards.
    pad = [(0, 0)] * table.ndim
    pad[axis] = (0, 1)
    out = np.pad(table, pad)
    where = np.where(i < 0, n, i).reshape(i.shape + (1,) * tail)
    where = np.broadcast_to(where, values.shape)
    np.put_along_axis(out, where, values, axis=axis)
    return np.take(out, np.arange(n), axis=axis)


def scatter_rows(
    table: Value, idx: Value | np.ndarray, values: Value, *, name: str | None = None
) -> Value:
    """``table`` with rows ``idx`` overwritten by ``values``, per batch row (indices unique)."""
    i = as_value(np.asarray(idx, np.int64) if isinstance(idx, np.ndarray) else idx, table.graph)
    tail = len(table.shape) - 2
    return table.graph._apply("scatter_rows", [table, i, values], {"tail": tail}, name=name)


# ------------------------------------------------------------- adjoint rules


def _onehot(idx: Value, n: int) -> Value:
    """``(B, M, N)`` (or ``(M, N)``) with 1 where ``idx[.., m] == n``; padding rows are all zero."""
    from rnngraph.ops.elementwise import cast, equal
    from rnngraph.ops.structure import reshape

    g = idx.graph
    cols = g.constant(np.arange(n, dtype=np.int64))
    shape = [int(idx.shape[-1]), 1]
    return cast(equal(reshape(idx, shape), cols), "float")


@register_adjoint("gather_rows")
def _gather_rows_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    from rnngraph.ops.linalg import matmul
    from rnngraph.ops.structure import reshape, transpose

    table, idx = args
    n = int(table.shape[1])
    tail = [int(d) for d in table.shape[2:]]
    oh = _onehot(idx, n)  # (B, M, N) or (M, N)
    flat = reshape(cot, [int(idx.shape[-1]), int(np.prod(tail))])
    perm = [0, 2, 1] if oh.type.batched else [1, 0]
    back = matmul(transpose(oh, perm), flat)  # (B, N, prod(tail))
    return [reshape(back, [n, *[int(d) for d in tail]]), None]


@register_adjoint("scatter_rows")
def _scatter_rows_adjoint(
    ctx: Any, node: Any, args: Sequence[Value], out: Value, cot: Value
) -> list[Any]:
    from rnngraph.ops.reduce import reduce_sum
    from rnngraph.ops.structure import reshape

    table, idx = args[0], args[1]
    n = int(table.shape[1])
    tail = len(table.shape) - 2
    written = reduce_sum(_onehot(idx, n), -2)  # (B, N) or (N,): 1 on overwritten rows
    keep = reshape(1.0 - written, [n, *([1] * tail)])
    return [
        cot * keep if ctx.needs[0] else None,
        None,
        gather_rows(cot, idx) if ctx.needs[2] else None,
    ]
