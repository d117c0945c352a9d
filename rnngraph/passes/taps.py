"""Finite-impulse taps: every tap reads the original sequence, shifted once.

The schedule computes each tap (a delayed edge on no cycle) as a shifted copy
of its source's whole sequence, for all steps at once. This pass makes that
copy direct: a chain of delay nodes, ``delay(delay(x, 1), 1)``, becomes one
tap ``delay(x, 2)`` on ``x``, so a tapped delay line built step by step costs
one shifted copy per tap and no intermediate sequences.
"""

from __future__ import annotations

import numpy as np

from rnngraph.ir.graph import Graph
from rnngraph.passes._infra import GraphPass

__all__ = ["unroll_fir_taps"]


def _collapse(graph: Graph, params: dict[str, np.ndarray]) -> bool:
    g = graph.nx_graph
    changed = False
    for n in sorted(g.nodes):
        if g.nodes[n]["op"] != "delay":
            continue
        ((u, d2, init2),) = graph.operands(n)
        while g.nodes[u]["op"] == "delay":
            ((x, d1, init1),) = graph.operands(u)
            # Zero initial values compose; the delays must point the same way.
            if init1.kind != "zeros" or init2.kind != "zeros" or d1 * d2 <= 0:
                break
            u, d2 = x, d1 + d2
        if (u, d2) != graph.operands(n)[0][:2]:
            graph.set_operand(n, 0, u, delay=d2, init=init2)
            changed = True
    if changed:
        from rnngraph.passes.canonicalize import _dce

        _dce(graph, params)
    return changed


unroll_fir_taps = GraphPass(
    "unroll_fir_taps",
    _collapse,
    "Chains of delays with zero initial values become one tap on the original "
    "sequence with the summed delay.",
)
