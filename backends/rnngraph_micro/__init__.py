"""The microcontroller backend: a quantised graph's step as integer-only C.

``rg.compile(qg, target="micro", params=qp, device="cortex-m4")`` takes a graph made
by :func:`rnngraph.quantize`, writes its integer form
(:func:`rnngraph.quant.to_integer`: int8 weights, int32 accumulators, requantisation
by multiply and shift, tables for nonlinearities) as C with no float and no malloc
(``m.sources``, ``m.save(folder)``), and runs it: under ``qemu-system-arm`` on an Arm
board model for ``cortex-m3``, ``cortex-m4``, ``cortex-m7`` and ``cortex-m55`` (Debian's
``gcc-arm-none-eabi`` builds it), or natively for ``device="host"``. The results are
``rg.run`` of the integer graph bit for bit; ``m.memory()`` gives flash and RAM and a
board run's ``m.stats`` the instructions per step.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("kws")
>>> g.output("y", rg.linear(rg.cells.gru(g.input("x", 4), 8, name="gru"), 2, name="out"))
>>> p = g.init_params(seed=0)
>>> xs = np.random.default_rng(0).normal(size=(20, 1, 4)).astype("float32")
>>> qg, qp = rg.quantize(g, p, calibration=[{"x": xs}])
>>> m = rg.compile(qg, target="micro", params=qp, device="host")
>>> ig, ip = rg.quant.to_integer(qg, qp)
>>> bool((m.run({"x": xs})["y"] == rg.run(ig, {"x": xs}, ip)["y"]).all())
True
>>> sorted(m.sources)
['rg_model.c', 'rg_model.h']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.errors import CompileError
from rnngraph_micro._emit import RULES, CStep, emit_step
from rnngraph_micro._model import DEVICES, Device, MicroModel, missing_board_tools

__all__ = [
    "DEVICES", "RULES", "CStep", "Device", "MicroModel", "backend", "emit_step",
    "missing_board_tools",
]  # fmt: skip


def backend(
    program: Any,
    params: Mapping[str, np.ndarray] | None,
    *,
    device: str = "cortex-m4",
    mode: str = "sequence",
    batch: int = 1,
    prefix: str = "rg_model",
    **options: Any,
) -> MicroModel:
    """Integer C for ``program``'s quantised graph (see the module docstring)."""
    if options:
        raise CompileError(
            f"the micro target takes device=, mode=, batch= and prefix=, got {sorted(options)}"
        )
    if device not in DEVICES:
        raise CompileError(f"micro: unknown device {device!r}; devices: {sorted(DEVICES)}")
    if mode not in ("sequence", "step"):
        raise CompileError(f"micro: mode must be 'sequence' or 'step', got {mode!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise CompileError(f"micro: batch must be a positive int, got {batch!r}")
    if not prefix.isidentifier():
        raise CompileError(f"micro: prefix must be a C identifier, got {prefix!r}")
    from rnngraph.autodiff.windows import unit_delay_form
    from rnngraph.quant.integer import to_integer

    graph = program.graph
    if "integer" in graph.meta:
        integer, ip = graph, dict(params or {})
    else:
        if not any(n.op == "fake_quant" for n in graph.nodes()):
            raise CompileError(
                f"graph {graph.name!r} is not quantised: the micro target takes the graph "
                "rg.quantize(g, params, calibration) returns"
            )
        integer, ip = to_integer(graph, params or {})
    ahead = [n.name for n in integer.nodes() if any(d < 0 for _, d, _ in integer.operands(n.id))]
    if ahead:
        raise CompileError(
            f"micro: {ahead[0]!r} reads a later step (a reverse or bidirectional RNN); a "
            "microcontroller runs causal graphs one step at a time"
        )
    unit = unit_delay_form(integer)
    step = emit_step(unit.graph, ip, batch, prefix)
    # a step model hands every register on (a delay of d steps is d of them); a
    # sequence's final states are the original graph's
    finals = {s: s for s in step.states} if mode == "step" else unit.finals
    return MicroModel(program, integer, ip, step, finals, DEVICES[device], mode)


backend.scope = "quantised graphs (rg.quantize), integer C for microcontrollers"  # type: ignore[attr-defined]
