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
    """Root of every error rnngraph raises about a graph or its inputs.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> try:
    ...     rg.run(g, {"x": np.ones((2, 1, 1))})
    ... except rg.GraphError as e:
    ...     found = type(e).__name__
    >>> found
    'InputError'
    """


class ShapeError(GraphError):
    """An op was applied to operands whose shapes or dtypes do not fit.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> x = g.input("x", 3)
    >>> try:
    ...     x + g.input("z", 4)
    ... except rg.ShapeError as e:
    ...     found = type(e).__name__
    >>> found
    'ShapeError'
    """


class AlgebraicLoopError(GraphError):
    """A cycle of the graph carries no delay, so no step can be computed first.

    Attributes
    ----------
    nodes : list of str
        The names of the nodes on the zero-delay cycle, in cycle order.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> s = g.state("s", 1, delay=0)
    >>> try:
    ...     g.assign(s, s + 1.0)
    ... except rg.AlgebraicLoopError as e:
    ...     found = type(e).__name__
    >>> found
    'AlgebraicLoopError'
    """

    def __init__(self, message: str, nodes: Sequence[str]) -> None:
        super().__init__(message)
        self.nodes = list(nodes)


class DirectionError(GraphError):
    """A cycle mixes delays (look back) and advances (look ahead).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> x = g.input("x", 1)
    >>> a = g.state("a", 1)
    >>> b = g.state("b", 1, delay=-1)
    >>> g.assign(a, b + x)
    >>> g.assign(b, a)
    >>> g.output("y", a)
    >>> try:
    ...     rg.verify(g)
    ... except rg.DirectionError as e:
    ...     found = type(e).__name__
    >>> found
    'DirectionError'
    """

    def __init__(self, message: str, nodes: Sequence[str]) -> None:
        super().__init__(message)
        self.nodes = list(nodes)


class UnassignedStateError(GraphError):
    """A state was declared with ``Graph.state`` but never given a value.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> g.output("y", g.state("s", 1) + g.input("x", 1))
    >>> try:
    ...     rg.verify(g)
    ... except rg.UnassignedStateError as e:
    ...     found = type(e).__name__
    >>> found
    'UnassignedStateError'
    """


class DuplicateNameError(GraphError):
    """Two inputs, outputs, params, states or nodes share a name.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> x = g.input("x", 1)
    >>> try:
    ...     g.input("x", 1)
    ... except rg.DuplicateNameError as e:
    ...     found = type(e).__name__
    >>> found
    'DuplicateNameError'
    """


class UnknownOpError(GraphError):
    """A node names an op that the op registry does not know.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> x = g.input("x", 1)
    >>> try:
    ...     g.apply("no_such_op", [x], {})
    ... except rg.UnknownOpError as e:
    ...     found = type(e).__name__
    >>> found
    'UnknownOpError'
    """


class ParamError(GraphError):
    """A parameter is missing, unexpected or of the wrong shape at run time.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> g.output("y", rg.linear(g.input("x", 2), 3, name="fc"))
    >>> try:
    ...     rg.run(g, {"x": np.ones((1, 1, 2))}, {})
    ... except rg.ParamError as e:
    ...     found = type(e).__name__
    >>> found
    'ParamError'
    """


class InputError(GraphError):
    """A run-time input, initial state or ``sequence_lens`` is missing or mis-shaped.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> g.output("y", 2.0 * g.input("x", 2))
    >>> try:
    ...     rg.run(g, {"x": np.ones((1, 1, 3))})
    ... except rg.InputError as e:
    ...     found = type(e).__name__
    >>> found
    'InputError'
    """


class SerializationError(GraphError):
    """A saved graph cannot be read: wrong format, version or contents.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / 'g.json'
    >>> _ = bad.write_text('{}')
    >>> try:
    ...     rg.load(bad)
    ... except rg.SerializationError as e:
    ...     found = type(e).__name__
    >>> found
    'SerializationError'
    """


class CompileError(GraphError):
    """A graph cannot be lowered to the chosen target, mode or options as asked.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("g")
    >>> g.output("y", 2.0 * g.input("x", 2))
    >>> try:
    ...     rg.compile(g, target="onnx", params={}, mode="sideways")
    ... except rg.CompileError as e:
    ...     found = type(e).__name__
    >>> found
    'CompileError'
    """


class BackendUnavailableError(CompileError):
    """A backend is registered but its dependencies are not installed (``rnngraph[tvm]``).

    Examples
    --------
    A compile for ``target="tvm"`` without ``apache-tvm`` installed raises it; it is a
    :class:`CompileError`, so one ``except`` serves both.

    >>> import rnngraph as rg
    >>> issubclass(rg.BackendUnavailableError, rg.CompileError)
    True
    """


class ModelImportError(GraphError):
    """A model file uses an op, attribute or structure the importer cannot read.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> from onnx import TensorProto, helper
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 2])
    >>> det = helper.make_node("Det", ["x"], ["y"])  # (no rule, no function body)
    >>> m = helper.make_model(helper.make_graph([det], "m", [x], [x]))
    >>> try:
    ...     rg.import_onnx(m)
    ... except rg.ModelImportError as e:
    ...     found = type(e).__name__
    >>> found
    'ModelImportError'
    """
