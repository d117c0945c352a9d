"""What the benchmark scripts share: the machine description and the timer (from
:mod:`rnngraph.tools.bench`), PyTorch when it is installed, and an atomic JSON writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rnngraph.files import atomic_write
from rnngraph.tools.bench import machine, timed

__all__ = [
    "NO_TORCH",
    "RESULTS",
    "lstm_graph",
    "machine",
    "one_thread_models",
    "timed",
    "torch_with",
    "write",
]

RESULTS = Path(__file__).resolve().parent / "results"

NO_TORCH = "skipped: PyTorch is not installed (pip install '.[bench]')"
"""What a row records in place of a PyTorch baseline that could not run."""


def torch_with(threads: int) -> Any:
    """PyTorch with ``threads`` intra-op threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def write(name: str, doc: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` (atomically) and return its path."""
    return atomic_write(RESULTS / f"{name}.json", json.dumps(doc, indent=1) + "\n")


def lstm_graph(inputs: int, hidden: int) -> tuple[Any, dict[str, Any]]:
    """The TVM benchmarks' LSTM (input ``x``, output ``y``, a cell ``c``) and its float32
    parameters (seed 0)."""
    import numpy as np

    import rnngraph as rg

    g = rg.Graph("lstm")
    g.output("y", rg.cells.lstm(g.input("x", inputs), hidden, name="c"))
    return g, {k: v.astype(np.float32) for k, v in g.init_params(seed=0).items()}


def one_thread_models(g: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Our ONNX and TVM models of ``g``, one thread each (TVM's kernel is serial unless
    compiled with ``parallel=``), keyed ``"ours_onnx"``, ``"ours_tvm"``."""
    import rnngraph as rg

    return {
        "ours_onnx": rg.compile(g, target="onnx", params=params, threads=1),
        "ours_tvm": rg.compile(g, target="tvm", params=params),
    }
