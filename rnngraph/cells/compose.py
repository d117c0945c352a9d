"""Combinators over cells: stacked layers and bidirectional layers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from rnngraph import ops
from rnngraph.cells._common import CellFn, check_size, whole
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Value

__all__ = ["bidirectional", "directional", "stacked"]

Cell = Callable[..., Value]


@whole
def bidirectional(cell: Cell, x: Value, hidden: int, *, name: str, **kwargs: Any) -> Value:
    """Run ``cell`` forward (``<name>.fw``) and in reverse (``<name>.bw``); concatenate features.

    The reverse layer's states read the next step (a delay of -1), so it
    runs from each row's last valid step to the first, as ONNX's reverse
    direction does. The result is ``(B, 2H)``: ONNX's ``Y (T, 2, B, H)``
    with the direction axis folded into the features.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("bi")
    >>> rg.cells.bidirectional(rg.cells.rnn, g.input("x", 3), 4, name="bi").shape
    ('B', 8)
    """
    fw = cell(x, hidden, name=f"{name}.fw", direction="forward", **kwargs)
    bw = cell(x, hidden, name=f"{name}.bw", direction="reverse", **kwargs)
    return ops.concat([fw, bw], name=name)


@whole
def stacked(cell: Cell, x: Value, hiddens: Sequence[int], *, name: str, **kwargs: Any) -> Value:
    """Layers of ``cell``, each fed the previous one's output; layer ``i`` is named ``<name>.<i>``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("deep")
    >>> y = rg.cells.stacked(rg.cells.gru, g.input("x", 3), [8, 8, 4], name="enc")
    >>> y.shape, sorted(g.states)
    (('B', 4), ['enc.0.h', 'enc.1.h', 'enc.2.h'])
    """
    y = x
    for i, h in enumerate(hiddens):
        y = cell(y, int(h), name=f"{name}.{i}", **kwargs)
    return y


def directional(cell: CellFn) -> CellFn:
    """Let ``cell`` take ``direction="bidirectional"``, running it as :func:`bidirectional`."""
    default_name = inspect.signature(cell).parameters["name"].default

    @functools.wraps(cell)
    @whole
    def wrapper(x: Value, hidden: int, **kwargs: Any) -> Value:
        check_size(hidden, f"{cell.__name__}'s hidden size")
        if kwargs.get("direction") != "bidirectional":
            return cell(x, hidden, **kwargs)
        if kwargs.get("weights"):
            raise GraphError(
                "a bidirectional layer has weights per direction: build it with "
                "rnngraph.cells.bidirectional, or call the cell once per direction"
            )
        del kwargs["direction"]
        kwargs.pop("weights", None)
        name = kwargs.pop("name", default_name)
        return bidirectional(cell, x, hidden, name=name, **kwargs)

    return wrapper  # type: ignore[return-value]
