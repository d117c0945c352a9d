"""Structural analysis: strongly connected components, recurrent regions, taps.

Free functions over a :class:`~rnngraph.ir.graph.Graph` that return plain
results. A *recurrent region* is a strongly connected component whose cycles
carry delay; every other node is *time-parallel* (it can run over all steps
at once). A delayed edge that lies on no cycle is a *finite-impulse tap*.

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("elman")
>>> x = g.input("x", 2)
>>> h = g.state("h", 3)
>>> h_new = rg.tanh(rg.linear(x, 3, name="in") + rg.linear(h, 3, bias=False, name="rec"))
>>> g.assign(h, h_new)
>>> g.output("y", h_new)
>>> [sorted(g.node(n).name for n in r.nodes) for r in recurrent_regions(g)]
[['add_0', 'h', 'rec', 'tanh_0']]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from rnngraph.ir.registry import lookup

if TYPE_CHECKING:
    from rnngraph.ir.graph import Graph

__all__ = [
    "Region",
    "cyclic_components",
    "dynamic_nodes",
    "fir_taps",
    "per_sequence_nodes",
    "recurrent_regions",
    "regions",
    "started_from",
    "static_nodes",
    "zero_delay_subgraph",
]


@dataclass(frozen=True)
class Region:
    """One component of the condensation, in dependency order.

    Attributes
    ----------
    nodes : tuple of int
        Node ids, ordered so that zero-delay dependencies come first.
    recurrent : bool
        True if the nodes form a cycle (which then carries delay).
    direction : int
        +1 for a region that steps forward in time (its cycles carry
        delays), -1 for one that steps backward (advances); 0 when not
        recurrent.
    """

    nodes: tuple[int, ...]
    recurrent: bool
    direction: int


def zero_delay_subgraph(graph: Graph) -> nx.MultiDiGraph:
    """A view of the graph with only its zero-delay edges."""
    return graph.zero_delay_view()


def static_nodes(graph: Graph) -> set[int]:
    """Nodes whose value is the same at every step (from params and constants only)."""
    return {n for n, d in graph.nx_graph.nodes(data=True) if not d["type"].batched}


def dynamic_nodes(graph: Graph) -> set[int]:
    """Nodes whose value varies with time (signals)."""
    return {n for n, d in graph.nx_graph.nodes(data=True) if d["type"].batched}


def cyclic_components(g: nx.MultiDiGraph) -> list[set[int]]:
    """The strongly connected components of ``g`` that contain a cycle (a self-loop counts)."""
    return [c for c in nx.strongly_connected_components(g) if _is_cycle(g, c)]


def _is_cycle(g: nx.MultiDiGraph, comp: set[int]) -> bool:
    if len(comp) > 1:
        return True
    (n,) = comp
    return g.has_edge(n, n)


def _order_within(graph: Graph, comp: Iterable[int]) -> tuple[int, ...]:
    """Nodes of one component, zero-delay predecessors first (ties by id)."""
    comp = list(comp)
    if len(comp) == 1:
        return (comp[0],)
    sub = zero_delay_subgraph(graph).subgraph(comp)
    return tuple(nx.lexicographical_topological_sort(sub))


def started_from(graph: Graph) -> dict[int, str]:
    """The states whose initial value is another value of the graph, read by name (not
    the caller's value of the state, not an input): ``{state node: that value's name}``.
    It must be per-sequence (``rg.final`` of another axis, or computed from per-sequence
    values); :func:`rnngraph.ir.verify.verify` checks that it is."""
    out = {}
    for name, sid in graph.state_nodes().items():
        for _, _, init in graph.operands(sid):
            ref = str(init.ref)
            if init.kind == "input" and ref != name and ref not in graph.inputs:
                out[sid] = ref
    return out


def per_sequence_nodes(graph: Graph) -> frozenset[int]:
    """Signal nodes whose value is one per sequence: the per-sequence inputs (declared with
    ``axis=None``) and what is computed from them and time-invariant values only, with no
    delay, state or step-dependent op between. Backends compute them once, before the steps.
    """
    found: frozenset[int] = graph.memo("per_sequence", lambda: _per_sequence(graph))
    return found


def _per_sequence(graph: Graph) -> frozenset[int]:
    g = graph.nx_graph
    inputs = graph.input_nodes()
    found = {inputs[name] for name in graph.per_sequence_inputs}
    found |= {n for n, op in g.nodes(data="op") if lookup(op).between_axes}  # (other axes')
    if not found:
        return frozenset()
    zero = zero_delay_subgraph(graph)
    for nid in nx.topological_sort(zero):  # (a verified graph's zero-delay view is acyclic)
        d = g.nodes[nid]
        if nid in found or not d["type"].batched or d["op"] in ("state", "input", "delay"):
            continue
        if lookup(d["op"]).after_steps:
            continue
        ops = graph.operands(nid)
        batched = [(u, delay) for u, delay, _ in ops if g.nodes[u]["type"].batched]
        if batched and all(u in found and delay == 0 for u, delay in batched):
            found.add(nid)
    return frozenset(found)


def regions(graph: Graph) -> list[Region]:
    """The signal nodes grouped into components of the condensation, in execution order.

    Time-invariant nodes are left out: they are computed once, before the
    first step. Assumes the graph is verified (no zero-delay cycle, no cycle
    mixing delays with advances).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("elman")
    >>> y = rg.cells.elman(g.input("x", 2), 3, name="rnn")
    >>> g.output("y", y)
    >>> [r.recurrent for r in rg.regions(g)].count(True)  # one loop: the hidden state's
    1
    """
    g = graph.nx_graph.subgraph(dynamic_nodes(graph) - per_sequence_nodes(graph))
    sccs = list(nx.strongly_connected_components(g))
    cond = nx.condensation(g, scc=sccs)
    out = []
    # Ties are broken by the smallest node id, so the order is deterministic.
    order = nx.lexicographical_topological_sort(cond, key=lambda c: min(cond.nodes[c]["members"]))
    for c in order:
        comp = cond.nodes[c]["members"]
        recurrent = _is_cycle(g, comp)
        direction = 0
        if recurrent:
            delays = [d for u, v, d in g.subgraph(comp).edges(data="delay") if d]
            direction = 1 if delays and delays[0] > 0 else -1
        out.append(Region(_order_within(graph, comp), recurrent, direction))
    return out


def recurrent_regions(graph: Graph) -> list[Region]:
    """The regions whose nodes form cycles through delays, in execution order.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("two")
    >>> x = g.input("x", 2)
    >>> a = rg.cells.rnn(x, 3, name="a")
    >>> g.output("y", rg.cells.rnn(a, 3, name="b"))
    >>> len(rg.recurrent_regions(g))  # two stacked loops
    2
    """
    return [r for r in regions(graph) if r.recurrent]


def fir_taps(graph: Graph) -> list[tuple[int, int, int]]:
    """Delayed edges on no cycle, as ``(source, target, delay)``: finite-impulse taps.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("fir")
    >>> x = g.input("x", 1)
    >>> g.output("y", x + 0.5 * rg.delay(x, 1) + 0.25 * rg.delay(x, 2))
    >>> sorted(d for _, _, d in rg.fir_taps(g))  # delayed reads outside any loop
    [1, 2]
    """
    g = graph.nx_graph
    comp_of = {}
    for i, comp in enumerate(nx.strongly_connected_components(g)):
        for n in comp:
            comp_of[n] = i
    return sorted((u, v, d) for u, v, d in g.edges(data="delay") if d and comp_of[u] != comp_of[v])
