"""The exception hierarchy of rnngraph.

Every error the library raises on bad input derives from :class:`GraphError`,
so a caller can catch one type. Each message names the node (and, where it is
known, the file and line of user code that built it), the shapes involved and
what to do about it.

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("demo")
>>> x = g.input("x", 4)
>>> try:
...     g.input("x", 4)
... except rg.GraphError as e:
...     print(type(e).__name__)
DuplicateNameError
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AlgebraicLoopError",
    "BackendUnavailableError",
    "CompileError",
    "DirectionError",
    "DuplicateNameError",
    "GraphError",
    "InputError",
    "ModelImportError",
    "ParamError",
    "SerializationError",
    "ShapeError",
    "UnassignedStateError",
    "UnknownOpError",
]


class GraphError(Exception):
    """Root of every error rnngraph raises about a graph or its inputs."""


class ShapeError(GraphError):
    """An op was applied to operands whose shapes or dtypes do not fit."""


class AlgebraicLoopError(GraphError):
    """A cycle of the graph carries no delay, so no step can be computed first.

    Attributes
    ----------
    nodes : list of str
        The names of the nodes on the zero-delay cycle, in cycle order.
    """

    def __init__(self, message: str, nodes: Sequence[str]) -> None:
        super().__init__(message)
        self.nodes = list(nodes)


class DirectionError(GraphError):
    """A cycle mixes delays (look back) and advances (look ahead)."""

    def __init__(self, message: str, nodes: Sequence[str]) -> None:
        super().__init__(message)
        self.nodes = list(nodes)


class UnassignedStateError(GraphError):
    """A state was declared with ``Graph.state`` but never given a value."""


class DuplicateNameError(GraphError):
    """Two inputs, outputs, params, states or nodes share a name."""


class UnknownOpError(GraphError):
    """A node names an op that the op registry does not know."""


class ParamError(GraphError):
    """A parameter is missing, unexpected or of the wrong shape at run time."""


class InputError(GraphError):
    """A run-time input, initial state or ``sequence_lens`` is missing or mis-shaped."""


class SerializationError(GraphError):
    """A saved graph cannot be read: wrong format, version or contents."""


class CompileError(GraphError):
    """A graph cannot be lowered to the chosen target, mode or options as asked."""


class BackendUnavailableError(CompileError):
    """A backend is registered but its dependencies are not installed (``rnngraph[tvm]``)."""


class ModelImportError(GraphError):
    """A model file uses an op, attribute or structure the importer cannot read."""
