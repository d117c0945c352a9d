"""The TVM backend of rnngraph: a Program as one TIR kernel, for the host, GPUs and edge devices.

Registered under the entry-point group ``rnngraph.backends`` as ``tvm``:
``rnngraph.compile(graph, target="tvm", device="aarch64")``. See
``_codegen`` for how a :class:`~rnngraph.program.schedule.Program` becomes TIR,
``_ops`` for the per-op rules and ``_targets`` for the named devices.
Deploying: ``m.export("model.so")`` for TVM's runtime (:func:`load` runs it),
``m.export("model.so", relax=True)`` as a Relax executable, and
``m.export("folder", standalone=True)`` as C with no runtime at all
(``_standalone``).

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

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.errors import CompileError
from rnngraph.program.schedule import Program, schedule
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


def _cores() -> int:
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(cores) if cores else (os.cpu_count() or 1)


def _groups(parallel: Any) -> int:
    """Row groups for ``parallel``: True means one per core (as TVM's thread pool)."""
    if parallel is True or parallel is False or parallel is None or parallel == "products":
        return _cores()
    if isinstance(parallel, int) and parallel >= 1:
        return parallel
    raise CompileError(
        f"parallel must be True, False, 'products' or a number of row groups >= 1, got {parallel!r}"
    )


def backend(
    program: Program, params: Mapping[str, np.ndarray], **options: Any
) -> TvmModel | TvmStepModel:
    """Compile ``program`` to a :class:`TvmModel` (what ``rg.compile(target="tvm")`` calls).

    Options: ``device`` (a name in :data:`DEVICES` — ``"llvm"``/``"host"``,
    ``"cuda"``, ``"aarch64"``, ``"armv7"``, ``"riscv64"``, ``"c"`` — or a TVM
    target dict), ``dtype`` ("float32" or "float64"), ``parallel`` (True: the
    batch split in as many groups of rows as the CPU has cores, one per core, no
    synchronisation during the sequence — the faster split for a batch of about
    8 rows or more (``benchmarks/results/tvm_lstm.json``); an int: that many groups;
    "products": every matrix product splits its weight's panels and every other
    node its rows over the cores, the thread pool launched once for the whole
    kernel with a barrier between phases — the faster for a few rows and for a
    recursive net's levels; on
    a GPU each row is a thread block),
    ``mode`` ("sequence", or "step": one step in, carried states in and out).
    """
    mode = options.pop("mode", "sequence") if "mode" in options else "sequence"
    if mode not in ("sequence", "step"):
        raise CompileError(f"mode must be 'sequence' or 'step', got {mode!r}")
    known = {"device", "dtype", "parallel"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise CompileError(f"the tvm backend takes options {sorted(known)}; got {unknown}")
    graph = program.graph
    ticks = None
    if mode == "sequence" and len(graph.per_sequence_inputs) == len(graph.inputs):
        # The kernel takes its number of steps from a sequence input's shape: a graph with
        # none (a net started from its params) gets an empty one, (T, B, 0), which
        # run(steps=) fills.
        g = graph.copy()
        names = {n.name for n in g.nodes()} | set(g.states) | set(g.outputs)
        ticks = "steps" if "steps" not in names else g.fresh_name("steps")
        g.input(ticks, 0)
        program = schedule(g)
    parallel = options.get("parallel")
    groups = _groups(parallel)
    if parallel:
        # TVM's thread pool reads this once, when it first starts; unset, it takes half
        # the logical CPUs on x86 (one thread on a 2-vCPU machine). A user's value stays.
        os.environ.setdefault("TVM_NUM_THREADS", str(groups))  # "products": one per core
    model = TvmModel(
        program,
        params,
        resolve(options.get("device")),
        str(options.get("dtype", "float32")),
        rows="parallel" if parallel and parallel != "products" else "",
        groups=groups,
        threads=parallel == "products",
    )
    model.ticks = ticks
    return TvmStepModel(model) if mode == "step" else model
