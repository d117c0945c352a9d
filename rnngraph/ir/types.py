"""Static types of graph values: a per-step shape and an element kind.

A value that varies with time (a *signal*) carries the symbolic batch axis
:data:`BATCH` as its leading dimension: ``("B", 8)`` is one step of a sequence
whose whole form is ``(T, B, 8)``. A time-invariant value (a parameter or a
constant) has a plain shape such as ``(8, 16)``.

A signal's row may also have *symbolic* dimensions, named by identifiers
(``("B", "M", "K", 8)``): sizes that the data decides at run time and that
agree wherever the same name appears. Recursive networks use them for the
nodes of a tree level (``M``), a node's children (``K``) and the node table
(``N``) (see :mod:`rnngraph.trees.recursion`).

Element kinds are ``"float"`` (the run's float dtype, float32 or float64),
``"int64"`` and ``"bool"``, and the fixed-width integers of quantised graphs
``"int8"``, ``"int16"`` and ``"int32"`` (see :mod:`rnngraph.ops.quant`).

Examples
--------
>>> from rnngraph.ir.types import TensorType, broadcast_shapes
>>> TensorType(("B", 8)).batched
True
>>> broadcast_shapes([("B", 1, 4), (3, 4)])
('B', 3, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BATCH",
    "DTYPES",
    "INT_RANGES",
    "Dim",
    "Shape",
    "TensorType",
    "broadcast_shapes",
    "format_shape",
    "numpy_dtype",
]

BATCH = "B"
"""The symbolic batch dimension, always the leading axis of a signal."""

DTYPES = ("float", "int64", "bool", "int8", "int16", "int32")

INT_RANGES = {"int8": (-128, 127), "int16": (-32768, 32767), "int32": (-(2**31), 2**31 - 1)}
"""The values each fixed-width integer kind holds."""


def numpy_dtype(kind: str, float_dtype: np.dtype | type = np.float32) -> np.dtype:
    """The numpy dtype of element kind ``kind`` (``"float"``: ``float_dtype``)."""
    if kind == "float":
        return np.dtype(float_dtype)
    return np.dtype({"int64": np.int64, "bool": np.bool_, "int8": np.int8,
                     "int16": np.int16, "int32": np.int32}[kind])  # fmt: skip


Dim = int | str
Shape = tuple[Dim, ...]


@dataclass(frozen=True)
class TensorType:
    """Per-step shape and element kind of one graph value."""

    shape: Shape
    dtype: str = "float"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        for i, d in enumerate(self.shape):
            if d == BATCH:
                if i != 0:
                    raise ValueError(f"the batch axis must lead, got shape {self.shape}")
            elif isinstance(d, str):
                if not (d.isidentifier() and self.shape[:1] == (BATCH,)):
                    raise ValueError(
                        f"a symbolic dimension must be an identifier in a signal's row, "
                        f"got {d!r} in {self.shape}"
                    )
            elif not isinstance(d, int | np.integer) or d < 0:
                raise ValueError(f"dimensions must be non-negative ints, got {self.shape}")

    @property
    def batched(self) -> bool:
        """True for signals (time-varying, with a leading batch axis)."""
        return len(self.shape) > 0 and self.shape[0] == BATCH

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def row_shape(self) -> tuple[int, ...]:
        """The shape without the batch axis (the shape of one batch row).

        Symbolic dimensions stay names (strings); :attr:`symbolic` says whether any does.
        """
        dims = self.shape[1:] if self.batched else self.shape
        return tuple(d if isinstance(d, str) else int(d) for d in dims)  # type: ignore[misc]

    @property
    def symbolic(self) -> bool:
        """True when the row has a dimension the data decides (a name)."""
        return any(isinstance(d, str) for d in self.shape[1:])

    def __str__(self) -> str:
        return f"{self.dtype}{format_shape(self.shape)}"


def format_shape(shape: Sequence[Dim]) -> str:
    """Render a shape the way error messages show it: ``(B, 8)``."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def broadcast_shapes(shapes: Sequence[Sequence[Dim]]) -> Shape:
    """NumPy broadcasting extended with the symbolic batch axis.

    ``B`` broadcasts only against ``1`` or ``B``. A time-invariant operand may
    not reach the batch axis of a signal (its rank must not exceed the
    signal's row rank), so the batch axis stays leading in the result.

    Raises
    ------
    ValueError
        With a message naming the shapes; the caller wraps it in a ShapeError.
    """
    batched = [s for s in shapes if len(s) and s[0] == BATCH]
    if batched:
        max_rank = max(len(s) for s in batched)
        for s in shapes:
            if not (len(s) and s[0] == BATCH) and len(s) >= max_rank:
                raise ValueError(
                    f"a time-invariant operand of shape {format_shape(s)} would broadcast "
                    f"against the batch axis of a signal of rank {max_rank}"
                )
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        names = {d for d in dims if isinstance(d, str)}
        if names:
            if len(names) > 1 or any(not isinstance(d, str) and d != 1 for d in dims):
                axis = "the batch axis" if BATCH in names else "a symbolic dimension"
                raise ValueError(
                    f"{axis} broadcasts only against 1 or itself: "
                    + " vs ".join(format_shape(s) for s in shapes)
                )
            out.append(names.pop())
            continue
        sizes = {int(d) for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError(
                "shapes do not broadcast: " + " vs ".join(format_shape(s) for s in shapes)
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)
