"""Recognition of standard cells: a recurrent region that is *exactly* ONNX's LSTM, GRU or RNN.

How: for each recurrent region, the cell library builds candidate templates
(each kind with its structural options: peepholes, bias, input-forget
coupling, clip, ``linear_before_reset``), the default pass pipeline
canonicalises them exactly as it canonicalised the user's graph, and a
subgraph match (networkx VF2 on ops, attributes, types, ports and delays)
looks for the template around the region. Weights and the input are
wildcards (any time-invariant node of the right type; any signal of the
right type); activations are wildcards checked for consistency after the
match (ONNX applies one ``f`` to all sigmoid-like gates). A match counts only
if it covers the whole region and nothing outside uses its internals, so the
native op computes precisely what the graph says — or nothing is recognised
and the region stays a generic loop.

The result is a new :class:`~rnngraph.program.schedule.Program` in which each
recognised region is a :class:`~rnngraph.program.schedule.CellRegion`; backends with
a native op use it, the others run its ``parts``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from networkx.algorithms.isomorphism import MultiDiGraphMatcher

from rnngraph.ir.graph import Graph
from rnngraph.program.schedule import (
    CellMatch,
    CellRegion,
    ParallelRegion,
    Program,
    RecurrentRegion,
)

__all__ = ["CellMatch", "recognize_cells"]

_ACTIVATION_OPS = {
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "relu": "Relu",
    "hard_sigmoid": "HardSigmoid",
    "softsign": "Softsign",
    "softplus": "Softplus",
}
# Distinct marker activations per role, so a template node's op tells its role.
_MARKERS = {
    "LSTM": ("sigmoid", "tanh", "softsign"),
    "GRU": ("sigmoid", "tanh"),
    "RNN": ("tanh",),
}
_CLIP_MARK = 0.625
_SEARCH_DEPTH = 6


@dataclass(frozen=True)
class _Template:
    kind: str
    options: dict[str, Any]
    graph: Graph


def _variants(kind: str) -> Iterator[dict[str, Any]]:
    clip = [None, _CLIP_MARK]
    if kind == "LSTM":
        for p, b, f, c in itertools.product([False, True], [True, False], [False, True], clip):
            yield {"peepholes": p, "bias": b, "input_forget": f, "clip": c}
    elif kind == "GRU":
        for lbr, b, c in itertools.product([False, True], [True, False], clip):
            yield {"linear_before_reset": lbr, "bias": b, "clip": c}
    else:
        for b, c in itertools.product([True, False], clip):
            yield {"bias": b, "clip": c}


_TEMPLATES: dict[tuple[str, int, int, int], list[_Template]] = {}


def _templates(kind: str, I: int, H: int, direction: int) -> list[_Template]:
    from rnngraph import cells
    from rnngraph.passes import optimize

    key = (kind, I, H, direction)
    if key in _TEMPLATES:
        return _TEMPLATES[key]
    out = []
    d = "forward" if direction > 0 else "reverse"
    for opts in _variants(kind):
        g = Graph(f"template.{kind}")
        x = g.input("x", I)
        marks = list(_MARKERS[kind])
        if kind == "LSTM":
            cells.lstm(x, H, name="c", direction=d, activations=marks, **opts)
        elif kind == "GRU":
            cells.gru(x, H, name="c", direction=d, activations=marks, **opts)
        else:
            cells.rnn(x, H, name="c", direction=d, activation=marks[0], **opts)
        out.append(_Template(kind, opts, optimize(g).graph))
    _TEMPLATES[key] = out
    return out


def _node_match(user: dict[str, Any], tmpl: dict[str, Any]) -> bool:
    top = tmpl["op"]
    if top == "input":
        return bool(user["type"] == tmpl["type"] and user["type"].batched)
    if top == "param":
        return bool(user["type"] == tmpl["type"] and not user["type"].batched)
    if top in _ACTIVATION_OPS:
        return user["op"] in _ACTIVATION_OPS and user["type"] == tmpl["type"]
    if user["op"] != top or user["type"] != tmpl["type"]:
        return False
    if top == "state":
        return bool(user["attrs"]["delay"] == tmpl["attrs"]["delay"])
    if top == "clip":
        lo, hi = user["attrs"]["min"], user["attrs"]["max"]
        return lo is not None and hi is not None and lo == -hi
    if top == "constant":
        return True  # values compared after the match (they live in the graphs' arrays)
    return bool(user["attrs"] == tmpl["attrs"])


def _edge_match(user: dict[int, dict[str, Any]], tmpl: dict[int, dict[str, Any]]) -> bool:
    return {k: e["delay"] for k, e in user.items()} == {k: e["delay"] for k, e in tmpl.items()}


def _search_space(graph: Graph, region: RecurrentRegion, recurrent: set[int]) -> set[int]:
    g = graph.nx_graph
    members = set(region.nodes)
    space = set(members)
    frontier = set(members)
    for _ in range(_SEARCH_DEPTH):
        nxt = set()
        for n in frontier:
            for u in g.predecessors(n):
                if u not in space:
                    space.add(u)
                    # Another loop's node may be the input, but the search stops there.
                    if u not in recurrent:
                        nxt.add(u)
        frontier = nxt
    return space


def _match(graph: Graph, region: RecurrentRegion, recurrent: set[int]) -> CellMatch | None:
    g = graph.nx_graph
    states = [n for n in region.nodes if g.nodes[n]["op"] == "state"]
    if not states or len(states) > 2 or any(g.nodes[s]["type"].symbolic for s in states):
        return None  # standard cells carry (B, H) states, never tables of symbolic rows
    H_candidates = {
        int(g.nodes[s]["type"].shape[-1]) for s in states if g.nodes[s]["type"].rank == 2
    }
    space = _search_space(graph, region, recurrent)
    sub = g.subgraph(space)
    I_candidates = {
        int(g.nodes[n]["type"].shape[-1])
        for n in space
        if n not in region.nodes
        and g.nodes[n]["type"].batched
        and g.nodes[n]["type"].rank == 2
        and not g.nodes[n]["type"].symbolic
    }
    kinds = ["LSTM"] if len(states) == 2 else ["GRU", "RNN"]
    for kind, H, I in itertools.product(kinds, sorted(H_candidates), sorted(I_candidates)):
        for tmpl in _templates(kind, I, H, region.direction):
            tg = tmpl.graph.nx_graph
            if tg.number_of_nodes() > sub.number_of_nodes():
                continue
            matcher = MultiDiGraphMatcher(sub, tg, node_match=_node_match, edge_match=_edge_match)
            for mapping in matcher.subgraph_monomorphisms_iter():
                found = _accept(graph, region, recurrent, tmpl, {t: u for u, t in mapping.items()})
                if found is not None:
                    return found
    return None


def _accept(
    graph: Graph,
    region: RecurrentRegion,
    recurrent: set[int],
    tmpl: _Template,
    m: dict[int, int],
) -> CellMatch | None:
    """Check a structural match in full; the CellMatch if the native op is exact."""
    g, tg, t = graph.nx_graph, tmpl.graph.nx_graph, tmpl.graph
    matched = set(m.values())
    if not set(region.nodes) <= matched:
        return None
    tnames = {tg.nodes[n]["name"]: n for n in tg.nodes}
    h_state, h_new = m[tnames["c.h"]], m[t.operands(tnames["c.h"])[0][0]]
    c_state = c_new = None
    if "c.c" in tnames:
        c_state, c_new = m[tnames["c.c"]], m[t.operands(tnames["c.c"])[0][0]]
    x = m[tnames["x"]]
    wildcards = {x} | {m[n] for n in tg.nodes if tg.nodes[n]["op"] == "param"}
    members = set(region.nodes)
    for tn, un in m.items():
        if un in wildcards:
            continue
        if un in recurrent and un not in members:
            return None  # part of another loop
        if g.in_degree(un) != tg.in_degree(tn):
            return None
        if tg.nodes[tn]["op"] == "constant":
            a = np.asarray(t.arrays[tg.nodes[tn]["attrs"]["array"]])
            b = np.asarray(graph.arrays[g.nodes[un]["attrs"]["array"]])
            if a.shape != b.shape or not np.array_equal(a, b):
                return None
        if g.nodes[un]["type"].batched and un != h_new:
            if any(v not in matched for v in g.successors(un)):
                return None
            if un in graph.output_nodes().values():
                return None
    # Activations: every template node of one role must map to one op (with one alpha, beta).
    roles: dict[str, set[tuple[str, str]]] = {}
    for tn, un in m.items():
        op = tg.nodes[tn]["op"]
        if op in _ACTIVATION_OPS and op in _MARKERS[tmpl.kind]:
            d = g.nodes[un]
            key = (d["op"], repr(sorted(d["attrs"].items())))
            roles.setdefault(op, set()).add(key)
    acts, alphas, betas = [], [], []
    for mark in _MARKERS[tmpl.kind]:
        ((op, _),) = roles[mark] if len(roles.get(mark, ())) == 1 else ((None, None),)
        if op is None:
            return None
        acts.append(_ACTIVATION_OPS[op])
        node = next(un for tn, un in m.items() if tg.nodes[tn]["op"] == mark)
        attrs = g.nodes[node]["attrs"]
        alphas.append(float(attrs.get("alpha", 0.0)))
        betas.append(float(attrs.get("beta", 0.0)))
    clips = {g.nodes[un]["attrs"]["max"] for tn, un in m.items() if tg.nodes[tn]["op"] == "clip"}
    if len(clips) > 1:
        return None
    weights = {
        tg.nodes[tn]["name"].split(".")[-1]: un
        for tn, un in m.items()
        if tg.nodes[tn]["op"] == "param"
    }
    internal = frozenset(n for n in matched if g.nodes[n]["type"].batched and n != x)
    return CellMatch(
        kind=tmpl.kind,
        x=x,
        weights=weights,
        hidden=int(g.nodes[h_state]["type"].shape[-1]),
        direction=region.direction,
        activations=tuple(acts),
        activation_alpha=tuple(alphas),
        activation_beta=tuple(betas),
        clip=float(clips.pop()) if clips else None,
        input_forget=bool(tmpl.options.get("input_forget", False)),
        linear_before_reset=bool(tmpl.options.get("linear_before_reset", False)),
        h_state=h_state,
        h_new=h_new,
        c_state=c_state,
        c_new=c_new,
        nodes=internal,
    )


def recognize_cells(program: Program) -> Program:
    """``program`` with every exactly-standard recurrent region as a :class:`CellRegion`."""
    graph = program.graph
    recurrent = {n for r in program.regions if isinstance(r, RecurrentRegion) for n in r.nodes}
    matches: dict[int, CellMatch] = {}
    for i, r in enumerate(program.regions):
        if isinstance(r, RecurrentRegion):
            found = _match(graph, r, recurrent)
            if found is not None:
                matches[i] = found
    if not matches:
        return program
    absorbed = {n for cm in matches.values() for n in cm.nodes}
    regions: list[Any] = []
    for i, r in enumerate(program.regions):
        if isinstance(r, ParallelRegion) and r.node in absorbed:
            continue
        if i in matches and isinstance(r, RecurrentRegion):
            cm = matches[i]
            before = [
                q for q in program.regions if isinstance(q, ParallelRegion) and q.node in cm.nodes
            ]
            regions.append(CellRegion(cm, (*before, r)))
        else:
            regions.append(r)
    return program.with_regions(tuple(regions))
