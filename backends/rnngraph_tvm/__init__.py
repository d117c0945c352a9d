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
from rnngraph_tvm._plan import Cpu, Plan, cores, derive
from rnngraph_tvm._step import TvmStepModel
from rnngraph_tvm._targets import DEVICES, resolve

__all__ = [
    "DEVICES",
    "RULES",
    "DeployedModel",
    "Plan",
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
    target dict), ``dtype`` ("float32" or "float64"), ``mode`` ("sequence",
    or "step": one step in, carried states in and out).

    Speed: the CPU kernels are shaped by a :class:`~rnngraph_tvm._plan.Plan`
    derived from the target (vector width, registers, caches; ``print(m.plan)``).
    ``threads`` (default: every core of this machine, as onnxruntime, or
    ``$RNNGRAPH_THREADS``; one for a model built for another machine): each call
    shares its work by its batch — a group of batch rows per core from a few rows
    a core, no synchronisation during the sequence; below that, every product's
    weight panels and every node's rows, the thread pool launched once for the whole kernel with a
    barrier between phases (``benchmarks/results/tvm_lstm.json``). ``parallel``
    fixes the split: True (rows), "products", an int (that many groups of rows)
    or False (one thread). ``tune=True`` times a few other plans for the shapes
    ``tune={"batch": 32, "steps": 100}`` (default batch 1 and 32, 100 steps) on
    this machine and keeps the fastest, cached per CPU and shapes (``_tune``);
    ``plan=`` takes a :class:`Plan` as it is.
    """
    mode = options.pop("mode", "sequence") if "mode" in options else "sequence"
    if mode not in ("sequence", "step"):
        raise CompileError(f"mode must be 'sequence' or 'step', got {mode!r}")
    known = {"device", "dtype", "parallel", "threads", "tune", "plan"}
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
    device = resolve(options.get("device"))
    dtype = str(options.get("dtype", "float32"))
    plan = _plan_for(device, options)
    if plan.threads > 1 and not device.cross:
        # TVM's thread pool reads this once, when it first starts; unset, it takes half
        # the logical CPUs on x86 (one thread on a 2-vCPU machine). A user's value stays.
        os.environ.setdefault("TVM_NUM_THREADS", str(plan.threads))
    if options.get("tune"):
        from rnngraph_tvm._tune import tuned

        plan = tuned(program, params, device, dtype, plan, options["tune"])
    model = TvmModel(program, params, device, dtype, plan=plan)
    model.ticks = ticks
    return TvmStepModel(model) if mode == "step" else model


THREADS_VARIABLE = "RNNGRAPH_THREADS"
"""The environment variable that sets the default number of threads (as OMP_NUM_THREADS
does OpenMP's): a test suite that runs in several processes, a server that runs several
models side by side."""


def _default_threads(here: bool) -> int:
    """Every core of this machine (or ``$RNNGRAPH_THREADS``); one for another machine."""
    if not here:
        return 1
    value = os.environ.get(THREADS_VARIABLE, "")
    if not value:
        return cores()
    if not value.isdigit() or int(value) < 1:
        raise CompileError(f"{THREADS_VARIABLE}={value!r}: set it to a number of threads >= 1")
    return int(value)


def _plan_for(device: Any, options: Mapping[str, Any]) -> Plan:
    """The plan of ``options`` (``plan``, ``threads``, ``parallel``) for ``device``."""
    given = options.get("plan")
    if given is not None and not isinstance(given, Plan):
        raise CompileError(f"plan must be a rnngraph_tvm Plan, got {type(given).__name__}")
    here = not device.cross
    threads = options.get("threads")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise CompileError(f"threads must be a number of threads >= 1, got {threads!r}")
    if given is None:
        many = threads if threads is not None else _default_threads(here)
        given = derive(Cpu.of(device.spec, here=here), threads=many)
    plan = given if threads is None else given.replace(threads=threads)
    if device.gpu or device.source:
        return plan.replace(threads=1)  # (a GPU's rows are its blocks; C: plain loops)
    parallel = options.get("parallel")
    if parallel is None:
        return plan
    many = plan.threads if plan.threads > 1 else cores()
    if parallel is False:
        return plan.replace(threads=1)
    if parallel is True:
        return plan.replace(threads=many, split="rows")
    if parallel == "products":
        return plan.replace(threads=many, split="products")
    if isinstance(parallel, int) and not isinstance(parallel, bool) and parallel >= 1:
        return plan.replace(threads=parallel, split="rows")
    raise CompileError(
        f"parallel must be True, False, 'products' or a number of row groups >= 1, got {parallel!r}"
    )
