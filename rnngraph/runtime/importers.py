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


def import_onnx(model: str | os.PathLike[str] | Any) -> tuple[Graph, dict[str, np.ndarray]]:
    """Read a recurrent ONNX model (a path or an ``onnx.ModelProto``) into ``(graph, params)``.

    ``LSTM``/``GRU``/``RNN`` become the equivalent cells, ``Scan`` loops become
    states; parameters keep the initializer names and the graph keeps the
    model's input and output names. See ``rnngraph_onnx._import`` for what is
    read and :func:`rnngraph_onnx.run_as_onnx` to run the result with the
    ONNX file's own inputs and outputs.
    """
    result: tuple[Graph, dict[str, np.ndarray]] = _importer("onnx")(model)
    return result
