"""The TVM backend of rnngraph: a Program as one TIR kernel, for the host, GPUs and edge devices.

Registered under the entry-point group ``rnngraph.backends`` as ``tvm``:
``rnngraph.compile(graph, target="tvm", device="aarch64")``. See
``_codegen`` for how a :class:`~rnngraph.program.Program` becomes TIR,
``_ops`` for the per-op rules and ``_targets`` for the named devices.

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
>>> m = rg.compile(g, target="tvm", params=p)
>>> xs = np.random.default_rng(0).normal(size=(5, 2, 3)).astype("float32")
>>> bool(np.allclose(m.run({"x": xs})["y"], rg.run(g, {"x": xs}, p)["y"], atol=1e-5))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.errors import CompileError
from rnngraph.program import Program
from rnngraph_tvm._codegen import generate
from rnngraph_tvm._deploy import DeployedModel, load
from rnngraph_tvm._model import TvmModel
from rnngraph_tvm._ops import RULES
from rnngraph_tvm._step import TvmStepModel
from rnngraph_tvm._targets import DEVICES, resolve

__all__ = [
    "DEVICES",
    "RULES",
    "DeployedModel",
    "TvmModel",
    "TvmStepModel",
    "backend",
    "generate",
    "load",
]


def backend(
    program: Program, params: Mapping[str, np.ndarray], **options: Any
) -> TvmModel | TvmStepModel:
    """Compile ``program`` to a :class:`TvmModel` (what ``rg.compile(target="tvm")`` calls).

    Options: ``device`` (a name in :data:`DEVICES` — ``"llvm"``/``"host"``,
    ``"cuda"``, ``"aarch64"``, ``"armv7"``, ``"riscv64"``, ``"c"`` — or a TVM
    target dict), ``dtype`` ("float32" or "float64"), ``parallel`` (True: batch
    rows spread over the CPU's cores; on a GPU each row is a thread block),
    ``mode`` ("sequence", or "step": one step in, carried states in and out).
    """
    mode = options.pop("mode", "sequence") if "mode" in options else "sequence"
    if mode not in ("sequence", "step"):
        raise CompileError(f"mode must be 'sequence' or 'step', got {mode!r}")
    known = {"device", "dtype", "parallel"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise CompileError(f"the tvm backend takes options {sorted(known)}; got {unknown}")
    model = TvmModel(
        program,
        params,
        resolve(options.get("device")),
        str(options.get("dtype", "float32")),
        rows="parallel" if options.get("parallel") else "",
    )
    return TvmStepModel(model) if mode == "step" else model
