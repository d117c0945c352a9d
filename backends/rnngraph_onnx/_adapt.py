"""An imported graph run as its ONNX model: the original model's tensors in and out.

The importer records in ``graph.meta["onnx"]`` how the original model's tensors map onto
the graph (:class:`rnngraph.runtime.interface.Interface`); :func:`run_as_onnx` runs the
reference interpreter through that mapping: ``rg.run(g, feeds, params,
interface="original")``. (``rg.compile(g, target, params)`` of an imported graph does the
same for every backend: see ``interface=``.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import rnngraph as rg

__all__ = ["run_as_onnx"]


def run_as_onnx(
    graph: rg.Graph, params: Mapping[str, np.ndarray], feeds: Mapping[str, Any], **kw: Any
) -> dict[str, np.ndarray]:
    """Run an imported graph with the reference interpreter, taking and returning
    exactly the tensors of the original ONNX model (see ``graph.meta["onnx"]``)."""
    return rg.run(graph, feeds, params, interface="original", **kw)
