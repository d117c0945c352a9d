"""Canonicalising passes: constant folding, common subexpressions, dead code."""

from __future__ import annotations

import json
from typing import Any

import networkx as nx
import numpy as np

from rnngraph.ir.graph import Graph
from rnngraph.ir.registry import REFERENCE
from rnngraph.passes._infra import GraphPass

__all__ = ["eliminate_common_subexpressions", "eliminate_dead_code", "fold_constants"]


def _fold(graph: Graph, params: dict[str, np.ndarray]) -> bool:
    """Evaluate nodes computed from constants only; each becomes one constant."""
    g = graph.nx_graph
    known: dict[int, np.ndarray] = {}
    changed = False
    static = [n for n in g.nodes if not g.nodes[n]["type"].batched]
    for nid in list(nx.lexicographical_topological_sort(g.subgraph(static))):
        d = g.nodes[nid]
        if d["op"] == "constant":
            known[nid] = np.asarray(graph.arrays[d["attrs"]["array"]])
            continue
        ops = graph.operands(nid)
        if d["op"] == "param" or not ops or any(u not in known for u, _, _ in ops):
            continue
        # Float constants are stored in float64 and cast to the run's dtype when used.
        attrs = {**d["attrs"], "float_dtype": np.float64}
        value = np.asarray(REFERENCE[d["op"]](attrs, *(known[u] for u, _, _ in ops)))
        if d["type"].dtype == "float":
            value = value.astype(np.float64)
        key = graph.add_array("folded", value)
        new = graph.add_node_raw("constant", d["type"], {"array": key}, name=f"{d['name']}.folded")
        graph.replace_uses(nid, new)
        known[new] = value
        changed = True
    return _dce(graph, params) or changed


def _signature(graph: Graph, nid: int) -> tuple[Any, ...] | None:
    d = graph.nx_graph.nodes[nid]
    if d["op"] in ("input", "param", "state"):
        return None
    if d["op"] == "constant":
        arr = np.asarray(graph.arrays[d["attrs"]["array"]])
        return ("constant", d["type"], arr.dtype.str, arr.shape, arr.tobytes())
    operands = tuple((u, delay, init) for u, delay, init in graph.operands(nid))
    attrs = json.dumps(d["attrs"], sort_keys=True, default=str)
    return (d["op"], attrs, d["type"], operands)


def _cse(graph: Graph, params: dict[str, np.ndarray]) -> bool:
    """Merge nodes that apply the same op to the same operands (same delays and inits)."""
    changed = True
    any_change = False
    while changed:
        changed = False
        seen: dict[tuple[Any, ...], int] = {}
        for nid in sorted(graph.nx_graph.nodes):
            sig = _signature(graph, nid)
            if sig is None:
                continue
            if sig in seen:
                graph.replace_uses(nid, seen[sig])
                graph.remove_nodes([nid])
                changed = any_change = True
            else:
                seen[sig] = nid
    return any_change


def _dce(graph: Graph, params: dict[str, np.ndarray]) -> bool:
    """Remove nodes that no output and no state's value depends on."""
    g = graph.nx_graph
    roots = set(graph.output_nodes().values()) | set(graph.state_nodes().values())
    live = set(roots)
    stack = list(roots)
    while stack:
        for u in g.predecessors(stack.pop()):
            if u not in live:
                live.add(u)
                stack.append(u)
    interface = {*graph.input_nodes().values(), *graph.param_nodes().values()}
    dead = [n for n in g.nodes if n not in live and n not in interface]
    if dead:
        graph.remove_nodes(dead)
    return bool(dead)


fold_constants = GraphPass(
    "fold_constants",
    _fold,
    "Nodes computed from constants only become constants (params are not folded: "
    "they stay parameters of the compiled model).",
)
eliminate_common_subexpressions = GraphPass(
    "eliminate_common_subexpressions",
    _cse,
    "Nodes with the same op, attributes and operand edges (source, delay, initial "
    "value) are merged; equal constants too.",
)
eliminate_dead_code = GraphPass(
    "eliminate_dead_code", _dce, "Nodes that no output or state depends on are removed."
)
