"""The ONNX backend of rnngraph: lowering, onnxruntime execution, import.

Registered under the entry-point group ``rnngraph.backends`` as ``onnx``, so
``rnngraph.compile(graph, target="onnx")`` finds it. See ``_emit`` for how a
:class:`~rnngraph.program.schedule.Program` becomes ONNX.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("elman")
>>> x = g.input("x", 3)
>>> h = g.state("h", 4)
>>> g.assign(h, rg.tanh(rg.linear(x, 4, name="in") + rg.linear(h, 4, bias=False, name="rec")))
>>> g.output("y", h)
>>> p = g.init_params(seed=0)
>>> m = rg.compile(g, target="onnx", params=p)
>>> xs = np.random.default_rng(0).normal(size=(5, 2, 3)).astype("float32")
>>> bool(np.allclose(m.run({"x": xs})["y"], rg.run(g, {"x": xs}, p)["y"], atol=1e-6))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.errors import CompileError
from rnngraph.program.schedule import Program
from rnngraph_onnx._adapt import run_as_onnx
from rnngraph_onnx._emit import OPSET, build_sequence_model, build_step_model
from rnngraph_onnx._import import import_onnx
from rnngraph_onnx._lowering import LOWERING
from rnngraph_onnx._model import OnnxModel
from rnngraph_onnx._stages import join_stages

__all__ = [
    "LOWERING",
    "OPSET",
    "OnnxModel",
    "backend",
    "build_sequence_model",
    "build_step_model",
    "import_onnx",
    "run_as_onnx",
]


def backend(program: Program, params: Mapping[str, np.ndarray], **options: Any) -> OnnxModel:
    """Compile ``program`` to an :class:`OnnxModel` (what ``rg.compile(target="onnx")`` calls).

    Options: ``mode`` ("sequence" or "step"), ``dtype`` ("float32" or
    "float64"), ``sequence_lens`` (give the saved model a ``sequence_lens``
    input), ``initial_states`` (state names to expose as inputs), ``threads``
    (onnxruntime's intra-op threads), ``session_config`` (onnxruntime session
    config entries, e.g. ``{"session.intra_op.allow_spinning": "0"}``).
    """
    known = {"mode", "dtype", "sequence_lens", "initial_states", "threads", "session_config"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise CompileError(f"the onnx target has no options {unknown}; it takes {sorted(known)}")
    return OnnxModel(program, params, **options)


backend.staged_options = {  # type: ignore[attr-defined]
    # One session per axis, run one after another: a stage's thread pool spins while it
    # runs (its many small ops in a Scan need that) but stops when its Run returns, so it
    # does not take the cores the next stage needs (a 2-axis seq2seq, batch 32 on 2
    # threads: 120 ms with spinning left on, 70 ms without spinning at all, which costs a
    # batch of 1 five times; benchmarks/seq2seq_attention.py)
    "session_config": {"session.force_spinning_stop": "1"}
}
"""Options ``rg.compile`` uses for each stage of a graph with several axes (a caller's
own options win)."""
backend.join_stages = join_stages  # type: ignore[attr-defined]
"""How the stages' sequence models become one model (see ``_stages``)."""
