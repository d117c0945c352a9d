"""An imported graph run as its ONNX model: the original model's tensors in and out.

The importer records in ``graph.meta["onnx"]`` which inputs are batch-major, which are
``sequence_lens`` or initial states, and how each output of the ONNX model is made of
the graph's outputs and final states; :func:`run_as_onnx` maps them around
:func:`rnngraph.run`.
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
    meta = graph.meta.get("onnx", {})
    batch_major = set(meta.get("batch_major", []))
    inputs, init = {}, {}
    lens = None
    for name, value in feeds.items():
        arr = np.asarray(value)
        if name == meta.get("sequence_lens"):
            lens = arr.astype(np.int64)
        elif name in meta.get("state_inputs", {}):
            for d, state in enumerate(meta["state_inputs"][name]):
                if state is not None:
                    init[state] = arr[d]
        else:
            inputs[name] = np.swapaxes(arr, 0, 1) if name in batch_major else arr
    result = rg.run(graph, inputs, params, sequence_lens=lens, initial_states=init, **kw)
    out: dict[str, np.ndarray] = {}
    for name in graph.outputs:
        y = result[name]
        out[name] = np.swapaxes(y, 0, 1) if name in batch_major else y
    for name, spec in meta.get("outputs", {}).items():
        bm = spec["batch_major"]
        if "directions" in spec:
            y = np.stack([out.pop(n) for n in spec["directions"]], axis=2 if bm else 1)
            out[name] = np.swapaxes(y, 0, 1) if bm else y
        elif spec.get("squeezed"):
            out[name] = result[f"{spec['finals'][0]}_final"]
        else:
            out[name] = np.stack(
                [result[f"{s}_final"] for s in spec["finals"]], axis=1 if bm else 0
            )
    return out
