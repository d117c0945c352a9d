"""Whole-graph verification, run before a graph is executed, saved or compiled.

Most mistakes are caught as the user builds the graph (shape rules run when a
node is made). What only the whole graph can show is checked here: states
never assigned, cycles without delay (algebraic loops), cycles that mix
delays with advances, and, for graphs read from files, that every node's
stored type still follows from its op's rule.

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("open_loop")
>>> h = g.state("h", 4)
>>> g.output("y", rg.tanh(h))
>>> try:
...     rg.verify(g)
... except rg.UnassignedStateError as e:
...     print(str(e).split(";")[0])
state 'h' (declared at ...) is never assigned
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from rnngraph.errors import (
    AlgebraicLoopError,
    DirectionError,
    GraphError,
    ShapeError,
    UnassignedStateError,
)
from rnngraph.ir.registry import lookup
from rnngraph.ir.structure import (
    cyclic_components,
    per_sequence_nodes,
    started_from,
    zero_delay_subgraph,
)

if TYPE_CHECKING:
    from rnngraph.ir.graph import Graph

__all__ = ["verify"]


def verify(graph: Graph) -> None:
    """Check the whole graph; raise the first problem as a typed :class:`GraphError`.

    The result is cached until the graph changes.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("open")
    >>> s = g.state("s", 2)  # never assigned: its loop is not closed
    >>> g.output("y", s + g.input("x", 2))
    >>> try:
    ...     rg.verify(g)
    ... except rg.UnassignedStateError as e:
    ...     print(type(e).__name__)
    UnassignedStateError
    """
    graph.memo("verified", lambda: _check_all(graph))


def _check_all(graph: Graph) -> bool:
    _check_nodes(graph)
    _check_states(graph)
    _check_algebraic_loops(graph)
    _check_directions(graph)
    _check_totals(graph)
    _check_per_sequence(graph)
    return True


def _check_per_sequence(graph: Graph) -> None:
    """A per-sequence value is the same at every step: delaying it (or storing it in a
    state) has no meaning, and is most likely a mistake."""
    g = graph.nx_graph
    per_seq = per_sequence_nodes(graph)
    names = {d: n for n, d in g.nodes(data="name")}
    for sid, ref in started_from(graph).items():
        name = g.nodes[sid]["name"]
        if names.get(ref) not in per_seq:
            raise GraphError(
                f"state {name!r} starts from {ref!r}, which changes from step to step; a "
                "state starts from a per-sequence value: a per-sequence input (axis=None), "
                "rg.final(...) of another axis, or a value computed from those, params and "
                "constants only"
            )
    for u, v, delay in g.edges(data="delay"):
        if delay and u in per_seq:
            raise GraphError(
                f"{g.nodes[v]['op']} node {g.nodes[v]['name']!r} reads the per-sequence value "
                f"{g.nodes[u]['name']!r} through a delay of {delay}; it is the same at every "
                "step, so read it directly (a state starts from a per-sequence input with "
                "g.state(name, shape, init=value))"
            )


def _check_totals(graph: Graph) -> None:
    """A sum over all steps is known only after the loops: no per-step value may read it."""

    g = graph.nx_graph
    for t in [n for n in g.nodes if lookup(g.nodes[n]["op"]).after_steps]:
        for n in nx.descendants(g, t):
            if g.nodes[n]["type"].batched:
                raise GraphError(
                    f"{g.nodes[n]['op']} node {g.nodes[n]['name']!r}{_origin(graph, n)} is a "
                    f"per-step value computed from total {g.nodes[t]['name']!r}, which sums over "
                    "every step; use the total only in time-invariant results (outputs, gradients)"
                )


def _origin(graph: Graph, nid: int) -> str:
    o = graph.nx_graph.nodes[nid]["origin"]
    return f" (declared at {o})" if o else ""


def _check_nodes(graph: Graph) -> None:
    g = graph.nx_graph
    for nid, d in g.nodes(data=True):
        opdef = lookup(d["op"], where=f"node {d['name']!r}")
        operands = graph.operands(nid)
        ports = sorted(k for _, _, k in g.in_edges(nid, keys=True))
        if ports != list(range(len(ports))):
            raise GraphError(f"node {d['name']!r}: operand ports {ports} are not 0..n-1")
        if opdef.source:
            if operands:
                raise GraphError(f"{d['op']} node {d['name']!r} cannot have operands")
            continue
        if d["op"] == "state" and not operands:
            continue  # reported by _check_states with a better message
        if opdef.arity is not None and len(operands) != opdef.arity:
            raise GraphError(
                f"{d['op']} node {d['name']!r} has {len(operands)} operands; "
                f"the op takes {opdef.arity}"
            )
        types = [g.nodes[u]["type"] for u, _, _ in operands]
        for u, delay, _ in operands:
            if delay and not g.nodes[u]["type"].batched:
                raise GraphError(
                    f"edge {g.nodes[u]['name']!r} -> {d['name']!r} delays the time-invariant "
                    f"value {g.nodes[u]['name']!r}; only signals can be delayed"
                )
        try:
            inferred = opdef.infer(types, d["attrs"])
        except ValueError as e:
            raise ShapeError(f"{d['op']} node {d['name']!r}{_origin(graph, nid)}: {e}") from None
        if inferred != d["type"]:
            raise ShapeError(
                f"{d['op']} node {d['name']!r}{_origin(graph, nid)} is recorded as "
                f"{d['type']} but its operands give {inferred}"
            )


def _check_states(graph: Graph) -> None:
    g = graph.nx_graph
    for name, nid in graph.state_nodes().items():
        if g.in_degree(nid) == 0:
            raise UnassignedStateError(
                f"state {name!r}{_origin(graph, nid)} is never assigned; close its loop "
                f"with graph.assign({name}, new_value)"
            )


def _named(graph: Graph, nodes: list[int]) -> list[str]:
    return [graph.nx_graph.nodes[n]["name"] for n in nodes]


def _check_algebraic_loops(graph: Graph) -> None:
    zero = zero_delay_subgraph(graph)
    for comp in cyclic_components(zero):
        cycle = [u for u, _, *_ in nx.find_cycle(zero.subgraph(comp))]
        names = _named(graph, cycle)
        raise AlgebraicLoopError(
            f"algebraic loop: the cycle {' -> '.join([*names, names[0]])} carries no delay, "
            f"so no step of it can be computed first (nodes in the loop: "
            f"{sorted(_named(graph, list(comp)))}). Put a delay on the feedback edge, "
            "e.g. feed it back through graph.state(...)",
            names,
        )


def _check_directions(graph: Graph) -> None:
    g = graph.nx_graph
    for comp in cyclic_components(g):
        signs = {d > 0 for _, _, d in g.subgraph(comp).edges(data="delay") if d}
        if len(signs) > 1:
            names = sorted(_named(graph, list(comp)))
            raise DirectionError(
                f"the cycle through {names} mixes delays (looking back) with advances "
                "(looking ahead), so it can run neither forward nor backward in time; "
                "give all its feedback edges delays of one sign",
                names,
            )
