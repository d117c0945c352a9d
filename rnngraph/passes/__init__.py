"""Graph-to-graph passes with declared contracts, and the default pipeline.

Every pass is a :class:`GraphPass`: it takes a verified graph and params and
returns ``PassResult(graph, params, modified)`` without touching its input;
the runner checks that the output verifies and keeps the interface. Cell
recognition works on the schedule instead
(:func:`rnngraph.program.recognize.recognize_cells`).

Examples
--------
>>> import rnngraph as rg
>>> from rnngraph import passes
>>> g = rg.Graph("tdnn")
>>> x = g.input("x", 2)
>>> g.output("y", rg.delay(rg.delay(x, 1), 1) + 0.0 * 2.0)
>>> r = passes.optimize(g)
>>> r.modified, sorted(n.op for n in r.graph.nodes())
(True, ['add', 'constant', 'delay', 'input'])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.ir.graph import Graph
from rnngraph.passes._infra import GraphPass, PassResult, run_passes
from rnngraph.passes.canonicalize import (
    eliminate_common_subexpressions,
    eliminate_dead_code,
    fold_constants,
)
from rnngraph.passes.hoist import hoist_time_parallel
from rnngraph.passes.simplify import simplify_structure
from rnngraph.passes.taps import unroll_fir_taps

__all__ = [
    "DEFAULT_PIPELINE",
    "GraphPass",
    "PassResult",
    "eliminate_common_subexpressions",
    "eliminate_dead_code",
    "fold_constants",
    "hoist_time_parallel",
    "optimize",
    "run_passes",
    "simplify_structure",
    "unroll_fir_taps",
]

DEFAULT_PIPELINE: tuple[GraphPass, ...] = (
    fold_constants,
    simplify_structure,
    eliminate_common_subexpressions,
    unroll_fir_taps,
    hoist_time_parallel,
    eliminate_dead_code,
)
"""What :func:`rnngraph.compile` runs unless ``optimize=False``."""


def optimize(graph: Graph, params: Mapping[str, np.ndarray] | None = None) -> PassResult:
    """Run :data:`DEFAULT_PIPELINE` until it changes nothing (at most 4 rounds; see
    :func:`run_passes`)."""
    return run_passes(DEFAULT_PIPELINE, graph, params)
