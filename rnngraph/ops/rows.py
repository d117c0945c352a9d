"""Row gather and scatter by data-dependent indices: the ops of structural recursion.

A recursive network computes the nodes of one tree level at a time: it
gathers the states of their children from a table of node states, applies
the cell, and writes the results back into the table. ``gather_rows`` and
``scatter_rows`` are those two moves, per step and per batch row, with
indices that are data (an int64 signal, or a constant) of any shape:
``table (B, N, ...)`` indexed by ``idx (B, M, K)`` gives ``(B, M, K, ...)``.
Index ``-1`` is padding: gathering it gives zeros, scattering to it writes
nothing. ``scatter_add_rows`` adds instead of overwriting (repeated indices
accumulate): it is the adjoint of ``gather_rows``.

The table's row count and the index shape may be symbolic dimensions
(``"N"``, ``"M"``, ``"K"``): a tree batch decides them at run time.

Adjoints: gathering scatter-adds; scattering passes the cotangent through
except on overwritten rows, and gathers it for the written values;
scatter-adding passes it through and gathers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value, as_value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import TensorType

__all__ = ["gather_rows", "scatter_add_rows", "scatter_rows"]


def _index_shape(table: TensorType, idx: TensorType) -> tuple[Any, ...]:
    """The index dims (without the batch axis) after checking the operands."""
    if idx.dtype != "int64":
        raise ValueError(f"row indices must be int64, got {idx}")
    if not table.batched or table.rank < 3:
        raise ValueError(f"the table must be a signal of rows (B, N, ...), got {table}")
    dims = idx.shape[1:] if idx.batched else idx.shape
    if not dims:
        raise ValueError(f"row indices need at least one axis besides the batch axis, got {idx}")
    return tuple(dims)


def _gather_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    table, idx = types
    return TensorType(("B", *_index_shape(table, idx), *table.shape[2:]), table.dtype)


def _flat(table: np.ndarray, idx: np.ndarray, attrs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Leading axes, the table as ``(lead..., N, prod(tail))`` and indices as ``(lead..., P)``."""
    tail, irank = attrs["tail"], attrs["irank"]
    lead = table.shape[: table.ndim - tail - 1]
    ishape = idx.shape[idx.ndim - irank :]
    i = np.broadcast_to(idx, (*lead, *ishape)).reshape(*lead, -1)
    flat = table.reshape(*lead, table.shape[len(lead)], -1)
    return lead, ishape, flat, i


@register_op("gather_rows", arity=2, infer=_gather_rule, attrs=("tail", "irank"))
def _gather_rows(attrs: Mapping[str, Any], table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """y(t)[b, m...] = table(t)[b, idx(t)[b, m...]], zeros where idx is -1"""
    lead, ishape, flat, i = _flat(table, idx, attrs)
    out = np.take_along_axis(flat, np.where(i < 0, 0, i)[..., None], axis=-2)
    out = np.where((i >= 0)[..., None], out, 0).astype(table.dtype)
    return out.reshape(*lead, *ishape, *table.shape[table.ndim - attrs["tail"] :])


def _attrs(table: Value, idx: Value) -> dict[str, int]:
    irank = len(idx.shape) - (1 if idx.type.batched else 0)
    return {"tail": len(table.shape) - 2, "irank": irank}


def _index(idx: Value | np.ndarray, table: Value) -> Value:
    return as_value(np.asarray(idx, np.int64) if isinstance(idx, np.ndarray) else idx, table.graph)


def gather_rows(table: Value, idx: Value | np.ndarray, *, name: str | None = None) -> Value:
    """Rows ``idx`` of ``table`` ``(B, N, ...)``, per batch row: ``(B, *idx_dims, ...)``.

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
    i = _index(idx, table)
    return table.graph.apply("gather_rows", [table, i], _attrs(table, i), name=name)


def _scatter_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    table, idx, values = types
    want = ("B", *_index_shape(table, idx), *table.shape[2:])
    if values.shape != want or values.dtype != table.dtype:
        raise ValueError(f"values must be {want} of {table.dtype}, got {values}")
    return table


def _scatter(
    attrs: Mapping[str, Any], table: np.ndarray, idx: np.ndarray, values: np.ndarray, add: bool
) -> np.ndarray:
    lead, _, flat, i = _flat(table, idx, attrs)
    n = flat.shape[-2]
    # One extra row takes the padding's writes and is cut off afterwards.
    out = np.concatenate([flat, np.zeros((*lead, 1, flat.shape[-1]), flat.dtype)], axis=-2)
    where = np.where(i < 0, n, i)
    vals = values.reshape(*lead, where.shape[-1], flat.shape[-1])
    if add:
        rows = np.indices(where.shape)[:-1]
        np.add.at(out, (*rows, where), vals)
    else:
        np.put_along_axis(out, np.broadcast_to(where[..., None], vals.shape), vals, axis=-2)
    return out[..., :n, :].reshape(table.shape)


@register_op("scatter_rows", arity=3, infer=_scatter_rule, attrs=("tail", "irank"))
def _scatter_rows(
    attrs: Mapping[str, Any], table: np.ndarray, idx: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """y(t) = table(t) with row idx(t)[b, m...] replaced by values(t)[b, m...] (-1: skipped)"""
    return _scatter(attrs, table, idx, values, add=False)


@register_op("scatter_add_rows", arity=3, infer=_scatter_rule, attrs=("tail", "irank"))
def _scatter_add_rows(
    attrs: Mapping[str, Any], table: np.ndarray, idx: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """y(t) = table(t) with values(t)[b, m...] added to row idx(t)[b, m...] (-1: skipped)"""
    return _scatter(attrs, table, idx, values, add=True)


def scatter_rows(
    table: Value, idx: Value | np.ndarray, values: Value, *, name: str | None = None
) -> Value:
    """``table`` with rows ``idx`` overwritten by ``values``, per batch row (indices unique).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("s")
    >>> table, row = g.input("table", (3, 2)), g.input("row", (1, 2))
    >>> g.output("y", rg.scatter_rows(table, np.array([2]), row))
    >>> feeds = {"table": np.zeros((1, 1, 3, 2)), "row": np.array([[[[7.0, 8.0]]]])}
    >>> rg.run(g, feeds)["y"][0, 0].tolist()
    [[0.0, 0.0], [0.0, 0.0], [7.0, 8.0]]
    """
    i = _index(idx, table)
    return table.graph.apply("scatter_rows", [table, i, values], _attrs(table, i), name=name)


def scatter_add_rows(
    table: Value, idx: Value | np.ndarray, values: Value, *, name: str | None = None
) -> Value:
    """``table`` with ``values`` added into rows ``idx``, per batch row (repeats accumulate).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("s")
    >>> table, rows = g.input("table", (3, 2)), g.input("rows", (2, 2))
    >>> g.output("y", rg.scatter_add_rows(table, np.array([0, 0]), rows))
    >>> feeds = {"table": np.ones((1, 1, 3, 2)), "rows": np.ones((1, 1, 2, 2))}
    >>> rg.run(g, feeds)["y"][0, 0].tolist()
    [[3.0, 3.0], [1.0, 1.0], [1.0, 1.0]]
    """
    i = _index(idx, table)
    return table.graph.apply("scatter_add_rows", [table, i, values], _attrs(table, i), name=name)
