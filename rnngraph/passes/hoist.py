"""Hoisting: move time-parallel work out of recurrent regions.

Only what depends on the feedback has to run step by step. Two rewrites
expose the rest so that the schedule computes it over whole sequences:

* ``concat([x, h]) @ W`` with ``x`` outside the loop becomes
  ``x @ W[:I] + h @ W[I:]`` — the input projection turns into one GEMM over
  all steps;
* sums are regrouped so that the terms computed outside the loop (input
  projections, biases) are added together outside it, leaving one addition
  per loop-dependent term inside.

Floating-point addition is regrouped, so results may differ in the last bits.
"""

from __future__ import annotations

import numpy as np

from rnngraph.ir.graph import ZEROS, Graph, InitSpec
from rnngraph.ir.registry import OPS
from rnngraph.ir.structure import recurrent_regions
from rnngraph.ir.types import TensorType
from rnngraph.passes._infra import GraphPass

__all__ = ["hoist_time_parallel"]

_Operand = tuple[int, int, InitSpec]


def _members(graph: Graph) -> dict[int, frozenset[int]]:
    out: dict[int, frozenset[int]] = {}
    for r in recurrent_regions(graph):
        members = frozenset(r.nodes)
        for n in r.nodes:
            out[n] = members
    return out


def _add(graph: Graph, a: _Operand, b: _Operand, hint: str) -> _Operand:
    g = graph.nx_graph
    t = OPS["add"].infer([g.nodes[a[0]]["type"], g.nodes[b[0]]["type"]], {})
    nid = graph.add_node_raw("add", t, {}, [a, b], name=graph.fresh_name(hint))
    return (nid, 0, ZEROS)


def _distribute(graph: Graph) -> bool:
    """``concat(parts) @ W`` -> ``sum_i part_i @ W[rows_i]`` where some part is outside the loop."""
    g = graph.nx_graph
    members = _members(graph)
    changed = False
    for m in sorted(n for n in g.nodes if g.nodes[n]["op"] == "matmul" and n in members):
        (a, da, _), (w, _, _) = graph.operands(m)
        wt: TensorType = g.nodes[w]["type"]
        at: TensorType = g.nodes[a]["type"]
        if da or g.nodes[a]["op"] != "concat" or wt.batched or wt.rank != 2 or at.rank != 2:
            continue
        if g.nodes[a]["attrs"]["axis"] != -1 or a not in members.get(m, frozenset()):
            continue
        parts = graph.operands(a)
        outside = [p for p in parts if p[0] not in members[m]]
        if not outside:
            continue
        terms: list[tuple[bool, _Operand]] = []
        row = 0
        name = g.nodes[m]["name"]
        for i, part in enumerate(parts):
            k = int(g.nodes[part[0]]["type"].shape[-1])
            rows = graph.add_node_raw(
                "slice",
                TensorType((k, wt.shape[1]), wt.dtype),
                {"axes": [-2], "starts": [row], "ends": [row + k], "steps": [1]},
                [(w, 0, ZEROS)],
                name=graph.fresh_name(f"{name}.rows{i}"),
            )
            prod = graph.add_node_raw(
                "matmul",
                g.nodes[m]["type"],
                {},
                [part, (rows, 0, ZEROS)],
                name=graph.fresh_name(f"{name}.part{i}"),
            )
            terms.append((part[0] in members[m], (prod, 0, ZEROS)))
            row += k
        terms.sort(key=lambda x: x[0])  # outside parts first, so they sum outside the loop
        acc = terms[0][1]
        for _, t in terms[1:]:
            acc = _add(graph, acc, t, f"{name}.sum")
        graph.replace_uses(m, acc[0])
        changed = True
    return changed


def _sum_leaves(graph: Graph, root: int, members: frozenset[int]) -> list[_Operand]:
    """The terms of the tree of single-use additions under ``root`` inside the loop."""
    g = graph.nx_graph
    leaves: list[_Operand] = []
    stack = list(reversed(graph.operands(root)))
    while stack:
        u, delay, init = stack.pop()
        d = g.nodes[u]
        if (
            delay == 0
            and d["op"] == "add"
            and u in members
            and g.out_degree(u) == 1
            and u not in graph.output_nodes().values()
        ):
            stack.extend(reversed(graph.operands(u)))
        else:
            leaves.append((u, delay, init))
    return leaves


def _is_inner_term(graph: Graph, n: int, members: frozenset[int]) -> bool:
    g = graph.nx_graph
    parents = list(g.successors(n))
    if len(parents) != 1 or g.nodes[parents[0]]["op"] != "add" or parents[0] not in members:
        return False
    return all(e["delay"] == 0 for e in g.get_edge_data(n, parents[0]).values())


def _regroup(graph: Graph) -> bool:
    g = graph.nx_graph
    members = _members(graph)
    changed = False
    for n in sorted(n for n in g.nodes if g.nodes[n]["op"] == "add" and n in members):
        if n not in g or g.nodes[n]["type"].dtype != "float":
            continue
        if _is_inner_term(graph, n, members[n]):
            continue  # not a root: its parent's tree covers it
        leaves = _sum_leaves(graph, n, members[n])
        outside = [x for x in leaves if x[0] not in members[n]]
        inside = [x for x in leaves if x[0] in members[n]]
        if len(outside) < 2 or not inside:
            continue
        name = g.nodes[n]["name"]
        acc = outside[0]
        for t in outside[1:]:
            acc = _add(graph, acc, t, f"{name}.hoisted")
        for t in inside:
            acc = _add(graph, acc, t, f"{name}.loop")
        if (
            g.nodes[acc[0]]["type"] != g.nodes[n]["type"]
        ):  # pragma: no cover - broadcasting is associative
            raise AssertionError("regrouping changed a type")
        graph.replace_uses(n, acc[0])
        changed = True
    return changed


def _hoist(graph: Graph, params: dict[str, np.ndarray]) -> bool:
    changed = _distribute(graph)
    changed |= _regroup(graph)
    if changed:
        from rnngraph.passes.canonicalize import _dce

        _dce(graph, params)
    return changed


hoist_time_parallel = GraphPass(
    "hoist_time_parallel",
    _hoist,
    "Split matmuls of concatenated inputs and regroup sums so that work that does not "
    "depend on the feedback leaves the recurrent region.",
)
