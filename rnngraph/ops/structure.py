"""Ops that move data without arithmetic: concat, split, slice, reshape, transpose, gather.

Axes are per-step axes (axis 0 of a signal is its batch axis, which these ops
cannot touch); they are stored counted from the end.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value, as_value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import TensorType, format_shape
from rnngraph.ops._rules import checked_axis, normalize_axis

__all__ = [
    "concat",
    "gather",
    "reshape",
    "slice",
    "slice_ranges",
    "split",
    "transpose",
    "unsqueeze",
]


# ---------------------------------------------------------------------- concat
def _concat_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    axis = attrs["axis"]
    first = types[0]
    for t in types[1:]:
        if t.batched != first.batched or t.rank != first.rank or t.dtype != first.dtype:
            raise ValueError(
                "concat needs operands of one kind (all signals or all time-invariant), "
                f"rank and dtype; got {', '.join(str(t) for t in types)}"
            )
    out = list(first.shape)
    for i in range(first.rank):
        if i == first.rank + axis:
            out[i] = sum(int(t.shape[i]) for t in types)
        elif any(t.shape[i] != first.shape[i] for t in types):
            raise ValueError(
                f"concat along axis {axis} needs equal sizes on the other axes, got "
                + ", ".join(format_shape(t.shape) for t in types)
            )
    return TensorType(tuple(out), first.dtype)


@register_op("concat", arity=None, infer=_concat_rule, attrs=("axis",))
def _concat(attrs: Mapping[str, Any], *xs: np.ndarray) -> np.ndarray:
    """y(t) = concatenate([x_1(t), ..., x_n(t)], axis)"""
    return np.concatenate(xs, axis=attrs["axis"])


def concat(values: Sequence[Value], axis: int = -1, *, name: str | None = None) -> Value:
    """Join values along ``axis`` (a feature axis, not the batch axis).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("c")
    >>> rg.concat([g.input("a", 2), g.input("b", 3)]).shape
    ('B', 5)
    """
    values = list(values)
    if not values or not isinstance(values[0], Value):
        raise TypeError("concat needs a non-empty list of graph Values")
    g = values[0].graph
    vals = [as_value(v, g) for v in values]
    try:
        ax = normalize_axis(axis, vals[0].type)
    except ValueError as e:
        raise g.shape_error("concat", name, str(e), vals) from None
    return g.apply("concat", vals, {"axis": ax}, name=name)


# ----------------------------------------------------------------------- slice
def slice_ranges(attrs: Mapping[str, Any], shape: Sequence[Any]) -> dict[int, range]:
    """Each sliced axis of a value of ``shape`` and the indices it keeps (Python slice rules).

    Axes are counted from the end, as the ``slice`` op stores them.
    """
    return {
        axis: range(int(shape[axis]))[builtins.slice(start, stop, step)]
        for axis, start, stop, step in zip(
            attrs["axes"], attrs["starts"], attrs["ends"], attrs["steps"], strict=True
        )
    }


def _slice_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    t = types[0]
    out = list(t.shape)
    for axis, kept in slice_ranges(attrs, t.shape).items():
        out[axis] = len(kept)
    return TensorType(tuple(out), t.dtype)


def _slicer(attrs: Mapping[str, Any]) -> tuple[Any, ...]:
    depth = -min(attrs["axes"])
    index: list[Any] = [builtins.slice(None)] * depth
    for axis, start, stop, step in zip(
        attrs["axes"], attrs["starts"], attrs["ends"], attrs["steps"], strict=True
    ):
        index[depth + axis] = builtins.slice(start, stop, step)
    return (Ellipsis, *index)


@register_op("slice", arity=1, infer=_slice_rule, attrs=("axes", "starts", "ends", "steps"))
def _slice(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t)[starts:ends:steps] along each of ``axes`` (Python slice rules)"""
    return x[_slicer(attrs)]


def slice(
    x: Value,
    starts: Sequence[int | None] | int | None,
    ends: Sequence[int | None] | int | None,
    axes: Sequence[int] | int = -1,
    steps: Sequence[int] | int | None = None,
    *,
    name: str | None = None,
) -> Value:
    """Take ``x[start:end:step]`` along each axis in ``axes`` (Python slice rules).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("s")
    >>> rg.slice(g.input("x", 10), 2, 8).shape
    ('B', 6)
    """

    def listify(v: Any, n: int) -> list[Any]:
        return list(v) if isinstance(v, list | tuple) else [v] * n

    ax_list = listify(axes, 1)
    n = len(ax_list)
    st, en = listify(starts, n), listify(ends, n)
    sp = listify(1 if steps is None else steps, n)
    if not len(st) == len(en) == len(sp) == n:
        raise ValueError("slice: starts, ends, axes and steps must have one entry per axis")
    if any(s == 0 for s in sp):
        raise ValueError("slice: a step of 0 is not allowed")
    try:
        axes_n = [normalize_axis(a, x.type) for a in ax_list]
    except ValueError as e:
        raise x.graph.shape_error("slice", name, str(e), [x]) from None
    if len(set(axes_n)) != n:
        raise ValueError(f"slice: axes repeat: {ax_list}")
    attrs = {"axes": axes_n, "starts": st, "ends": en, "steps": [int(s) for s in sp]}
    return x.graph.apply("slice", [x], attrs, name=name)


def split(
    x: Value, sizes: int | Sequence[int], axis: int = -1, *, name: str | None = None
) -> list[Value]:
    """Split ``x`` along ``axis`` into ``sizes`` (a count of equal parts, or a list of sizes).

    Each part is a ``slice`` node (the IR keeps one value per node); parts
    are named ``<name>.0``, ``<name>.1``, ... when ``name`` is given.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("s")
    >>> [p.shape for p in rg.split(g.input("x", 12), [4, 8])]
    [('B', 4), ('B', 8)]
    """
    ax = checked_axis("split", x, axis, name)
    total = int(x.shape[ax])
    if isinstance(sizes, int):
        if sizes <= 0 or total % sizes:
            raise x.graph.shape_error(
                "split", name, f"cannot split an axis of size {total} into {sizes} equal parts", [x]
            )
        parts = [total // sizes] * sizes
    else:
        parts = [int(s) for s in sizes]
        if sum(parts) != total or any(p <= 0 for p in parts):
            raise x.graph.shape_error(
                "split", name, f"sizes {parts} do not add up to the axis size {total}", [x]
            )
    out, start = [], 0
    for i, p in enumerate(parts):
        part_name = f"{name}.{i}" if name is not None else None
        out.append(slice(x, start, start + p, ax, name=part_name))
        start += p
    return out


# --------------------------------------------------------------------- reshape
def _reshape_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    t = types[0]
    new = list(attrs["shape"])
    size = int(np.prod(t.row_shape, dtype=np.int64))
    if new.count(-1) > 1:
        raise ValueError(f"reshape: at most one -1 in {tuple(new)}")
    if -1 in new:
        known = int(np.prod([d for d in new if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape rows of {format_shape(t.row_shape)} to {tuple(new)}")
        new[new.index(-1)] = size // known
    if int(np.prod(new, dtype=np.int64)) != size:
        raise ValueError(f"cannot reshape rows of {format_shape(t.row_shape)} to {tuple(new)}")
    return TensorType(((t.shape[0],) if t.batched else ()) + tuple(new), t.dtype)


@register_op("reshape", arity=1, infer=_reshape_rule, attrs=("shape", "in_rank"))
def _reshape(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t) reshaped; a signal keeps its batch axis and ``shape`` is one row's shape"""
    lead = x.shape[: x.ndim - attrs["in_rank"]]
    shape = list(attrs["shape"])
    if -1 in shape:  # resolved from the row's size (numpy cannot when a leading axis is 0)
        rest = int(np.prod([n for n in shape if n != -1]))
        shape[shape.index(-1)] = int(np.prod(x.shape[x.ndim - attrs["in_rank"] :])) // max(rest, 1)
    return x.reshape(lead + tuple(shape))


def reshape(x: Value, shape: Sequence[int], *, name: str | None = None) -> Value:
    """Reshape; for a signal, ``shape`` is the shape of one batch row (one ``-1`` allowed).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("r")
    >>> rg.reshape(g.input("x", 12), (3, -1)).shape
    ('B', 3, 4)
    """
    attrs = {"shape": [int(d) for d in shape], "in_rank": len(x.type.row_shape)}
    return x.graph.apply("reshape", [x], attrs, name=name)


# ------------------------------------------------------------------- transpose
def _transpose_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    t = types[0]
    perm = attrs["perm"]
    row = t.row_shape
    if sorted(perm) != list(range(len(row))):
        raise ValueError(f"perm {perm} is not a permutation of the row axes of {t}")
    return TensorType(((t.shape[0],) if t.batched else ()) + tuple(row[p] for p in perm), t.dtype)


@register_op("transpose", arity=1, infer=_transpose_rule, attrs=("perm",))
def _transpose(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t) with its row axes permuted by ``perm`` (the batch axis stays first)"""
    perm = attrs["perm"]
    lead = x.ndim - len(perm)
    return np.transpose(x, [*range(lead), *(lead + p for p in perm)])


def transpose(x: Value, perm: Sequence[int] | None = None, *, name: str | None = None) -> Value:
    """Permute axes; default reverses them. A signal's batch axis stays first.

    ``perm`` lists the per-step axes; for a signal it must keep 0 in place.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("t")
    >>> rg.transpose(g.param("W", (3, 5))).shape
    (5, 3)
    """
    rank = x.type.rank
    off = 1 if x.type.batched else 0
    if perm is None:
        row_perm = list(reversed(range(rank - off)))
    else:
        perm = [p % rank if rank else p for p in perm]
        if off and (not perm or perm[0] != 0):
            raise x.graph.shape_error(
                "transpose", name, f"perm {list(perm)} moves the batch axis of {x.type}", [x]
            )
        row_perm = [p - off for p in perm[off:]]
    return x.graph.apply("transpose", [x], {"perm": row_perm}, name=name)


# ---------------------------------------------------------------------- gather
def _gather_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    x, idx = types
    if idx.dtype != "int64":
        raise ValueError(f"indices must be int64, got {idx}")
    if idx.batched:
        raise ValueError("indices must be time-invariant (a constant or int input of fixed shape)")
    ax = x.rank + attrs["axis"]
    return TensorType(x.shape[:ax] + idx.shape + x.shape[ax + 1 :], x.dtype)


@register_op("gather", arity=2, infer=_gather_rule, attrs=("axis",))
def _gather(attrs: Mapping[str, Any], x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """y(t) = take(x(t), indices, axis) (ONNX Gather)"""
    return np.take(x, idx, axis=attrs["axis"])


def gather(
    x: Value, indices: Value | Sequence[int], axis: int = -1, *, name: str | None = None
) -> Value:
    """Pick entries of ``x`` along ``axis`` by integer ``indices`` (ONNX ``Gather``).

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("gather")
    >>> rg.gather(g.input("x", 5), np.array([4, 0])).shape
    ('B', 2)
    """
    g = x.graph
    if not isinstance(indices, Value):
        indices = g.constant(np.asarray(indices, dtype=np.int64))
    ax = checked_axis("gather", x, axis, name)
    return g.apply("gather", [x, indices], {"axis": ax}, name=name)


# -------------------------------------------------------------------- unsqueeze


def _unsqueeze_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    t = types[0]
    axis = attrs["axis"]
    row = list(t.row_shape)
    if not -len(row) - 1 <= axis < 0:
        raise ValueError(f"axis {axis} is outside the row of {t} (count from the end: -1 ...)")
    row.insert(len(row) + 1 + axis, 1)
    return TensorType(((t.shape[0],) if t.batched else ()) + tuple(row), t.dtype)


@register_op("unsqueeze", arity=1, infer=_unsqueeze_rule, attrs=("axis",))
def _unsqueeze(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t) with a new axis of length 1 at ``axis`` (counted from the end)"""
    return np.expand_dims(x, attrs["axis"])


def unsqueeze(x: Value, axis: int = -1, *, name: str | None = None) -> Value:
    """A new axis of length 1 at ``axis`` of the result, counted from the end.

    Unlike :func:`reshape` it needs no sizes, so it serves rows with symbolic
    dimensions (a tree level's nodes ``M``, a node's children ``K``).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("u")
    >>> rg.unsqueeze(g.input("x", 4), -2).shape
    ('B', 1, 4)
    """
    return x.graph.apply("unsqueeze", [x], {"axis": int(axis)}, name=name)
