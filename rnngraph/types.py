"""Static types of graph values: a per-step shape and an element kind.

A value that varies with time (a *signal*) carries the symbolic batch axis
:data:`BATCH` as its leading dimension: ``("B", 8)`` is one step of a sequence
whose whole form is ``(T, B, 8)``. A time-invariant value (a parameter or a
constant) has a plain shape such as ``(8, 16)``.

Element kinds are ``"float"`` (the run's float dtype, float32 or float64),
``"int64"`` and ``"bool"``.

Examples
--------
>>> from rnngraph.types import TensorType, broadcast_shapes
>>> TensorType(("B", 8)).batched
True
>>> broadcast_shapes([("B", 1, 4), (3, 4)])
('B', 3, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BATCH", "DTYPES", "Dim", "Shape", "TensorType", "broadcast_shapes", "format_shape"]

BATCH = "B"
"""The symbolic batch dimension, always the leading axis of a signal."""

DTYPES = ("float", "int64", "bool")

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
        """The shape without the batch axis (the shape of one batch row)."""
        dims = self.shape[1:] if self.batched else self.shape
        return tuple(int(d) for d in dims)

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
        if BATCH in dims:
            if any(d not in (1, BATCH) for d in dims):
                raise ValueError(
                    "the batch axis broadcasts only against 1: "
                    + " vs ".join(format_shape(s) for s in shapes)
                )
            out.append(BATCH)
            continue
        sizes = {int(d) for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError(
                "shapes do not broadcast: " + " vs ".join(format_shape(s) for s in shapes)
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)
