"""Importers: models from other formats read back into graphs.

Each importer lives with its backend plugin and registers itself under the
entry-point group ``rnngraph.importers``; this module finds it.
"""

from __future__ import annotations

import importlib.metadata
import os
from typing import Any

import numpy as np

from rnngraph.errors import ModelImportError
from rnngraph.ir.graph import Graph

__all__ = ["import_onnx"]


def _importer(fmt: str) -> Any:
    for ep in importlib.metadata.entry_points(group="rnngraph.importers"):
        if ep.name == fmt:
            return ep.load()
    raise ModelImportError(
        f"no importer for {fmt!r} is installed (entry-point group rnngraph.importers)"
    )


def import_onnx(
    model: str | os.PathLike[str] | Any, layout: str = "auto"
) -> tuple[Graph, dict[str, np.ndarray]]:
    """Read a recurrent ONNX model (a path or an ``onnx.ModelProto``) into ``(graph, params)``.

    ``LSTM``/``GRU``/``RNN`` become the equivalent cells, ``Scan`` loops become
    states; parameters keep the initializer names and the graph keeps the
    model's input and output names. See ``rnngraph_onnx._import`` for what is
    read and :func:`rnngraph_onnx.run_as_onnx` to run the result with the
    ONNX file's own inputs and outputs.

    ``layout``: how the inputs are read — ``"sequence"`` (time and batch first, or as
    the model's ops lay them out), ``"rows"`` (one step of a batch of rows: each input's
    first axis the batch, of any size), ``"whole"`` (each input one row of one step,
    every size fixed, its ops along any axis) or ``"auto"``: as sequences, else (a model
    with no ``LSTM``, ``GRU``, ``RNN``, ``Scan`` or ``Loop``) as rows, else whole. A
    compiled model of the graph takes and returns the original tensors either way.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("acc")
    >>> x = g.input("x", 1)
    >>> s = g.state("s", 1)
    >>> g.assign(s, 0.5 * s + g.param("w", 1) * x)
    >>> g.output("y", s)
    >>> m = rg.compile(g, target="onnx", params={"w": np.ones(1)})
    >>> g2, p2 = rg.import_onnx(m.model)  # back into a cyclic graph
    >>> rg.run(g2, {"x": np.ones((3, 1, 1))}, p2)["y"].ravel().tolist()
    [0.0, 1.0, 1.5]
    """
    result: tuple[Graph, dict[str, np.ndarray]] = _importer("onnx")(model, layout=layout)
    return result
