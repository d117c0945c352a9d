"""Graphs with several sequence axes, as one one-axis graph per axis.

Every signal node of a graph runs on one sequence axis: the axis of the
sequence inputs it depends on (``g.input(name, n, axis="src")``; the default
axis is ``"t"``), found by joining every node with its operands and
consumers, except across :func:`~rnngraph.ops.axes.final` and
:func:`~rnngraph.ops.axes.whole`, whose values are per-sequence. A node that
joins two axes any other way is a :class:`~rnngraph.errors.GraphError` naming
both.

:func:`split` makes one :class:`Stage` per axis: an ordinary one-axis graph
(which every backend, the adjoint and the step models handle as they are)
holding the axis' nodes, the per-sequence and time-invariant work they read,
and the values crossing in from earlier axes as per-sequence inputs named
after the crossing nodes. The stages are ordered by their data dependences (an
axis whose ``final``/``whole`` another reads runs first); a cycle between axes
is an error. :mod:`rnngraph.runtime.staged` runs them in that order, passing
each crossing value on: ``final`` as the source stage's final value,
``whole`` as its output sequence transposed to ``(B, S, ...)``, ``whole_mask``
from its lengths.

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("nmt")
>>> src = g.input("src", 4, axis="src")
>>> tgt = g.input("tgt", 4, axis="tgt")
>>> enc = rg.cells.gru(src, 8, name="enc")
>>> h = g.state("dec.h", 8, init=rg.final(enc, name="h0"))
>>> memory = rg.whole(enc, name="memory")
>>> ctx, _ = rg.cells.attention(h, memory, kind="dot", name="att")
>>> g.assign(h, rg.tanh(rg.linear(rg.concat([tgt, ctx, h]), 8, name="dec")))
>>> g.output("y", h)
>>> [(s.axis, sorted(s.graph.inputs)) for s in split(g).stages]
[('src', ['src']), ('tgt', ['h0', 'memory', 'memory.mask', 'tgt'])]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx

from rnngraph.errors import GraphError
from rnngraph.ir.graph import DEFAULT_AXIS, Graph, Node, Value
from rnngraph.ir.registry import OPS
from rnngraph.ir.structure import per_sequence_nodes, started_from
from rnngraph.ir.verify import verify

__all__ = [
    "START",
    "Crossing",
    "Stage",
    "Staging",
    "computed_starts",
    "is_staged",
    "node_axes",
    "split",
]


@dataclass(frozen=True)
class Crossing:
    """A value passed from one axis' stage to another's.

    ``kind`` is the crossing op (``"final"``, ``"whole"``, ``"whole_mask"``);
    ``name`` the per-sequence input it becomes in the reading stages; ``axis``
    the axis it comes from; ``key`` what that stage gives for it: a state's
    name (``final``: its ``"<key>_final"``) or an output (``whole``).
    """

    kind: str
    name: str
    axis: str
    key: str


START = "start"
"""The crossing kind of a state's initial value computed per sequence (see :func:`split`)."""


@dataclass(frozen=True)
class Stage:
    """One axis' one-axis graph: ``graph``; the crossings it reads (``reads``: per-sequence
    input names) and gives (``gives``); the original graph's outputs and states in it.

    A ``per_sequence`` stage computes values once per row, as a graph of one step —
    what it reads are inputs of shape ``(1, B, ...)``, what it gives outputs of that
    shape (:mod:`rnngraph.runtime.staged` adds and drops the step axis): stage
    ``"<axis>.init"`` the initial values the states of that axis start from when they
    are computed from per-sequence values (``g.state(name, n,
    init=rg.tanh(rg.linear(rg.final(enc), n)))``); stage ``"outputs"``, run last, the
    graph's per-sequence outputs when it has several axes (each ``(B, ...)``).
    """

    axis: str
    graph: Graph
    reads: tuple[str, ...]
    gives: tuple[str, ...]
    outputs: tuple[str, ...]
    states: tuple[str, ...]
    per_sequence: bool = False


@dataclass(frozen=True)
class Staging:
    """The stages of a graph, in the order they run, and every crossing by name."""

    graph: Graph
    stages: tuple[Stage, ...]
    crossings: Mapping[str, Crossing] = field(default_factory=dict)

    def stage(self, axis: str) -> Stage:
        for s in self.stages:
            if s.axis == axis:
                return s
        raise GraphError(f"graph {self.graph.name!r} has no axis {axis!r}")

    @property
    def axes(self) -> tuple[str, ...]:
        """The sequence axes, in the order they run (per-sequence stages left out)."""
        return tuple(s.axis for s in self.stages if not s.per_sequence)


def is_staged(graph: Graph) -> bool:
    """True for a graph that runs axis by axis: a named axis or a crossing op."""
    return bool(graph.memo("staged", lambda: _is_staged(graph)))


def _is_staged(graph: Graph) -> bool:
    g = graph.nx_graph
    for _, d in g.nodes(data=True):
        if OPS[d["op"]].between_axes:
            return True
        if d["op"] == "input" and d["attrs"].get("axis", DEFAULT_AXIS) not in (None, DEFAULT_AXIS):
            return True
    return bool(computed_starts(graph))


def computed_starts(graph: Graph) -> dict[int, int]:
    """The states that start from a value computed per sequence (not an input's, not
    another axis' ``final``): ``{state node: the value's node}``."""
    g = graph.nx_graph
    by_name = {d: n for n, d in g.nodes(data="name")}
    found = {sid: by_name.get(ref) for sid, ref in started_from(graph).items()}
    return {
        s: v for s, v in found.items() if v is not None and not OPS[g.nodes[v]["op"]].between_axes
    }


def node_axes(graph: Graph) -> dict[int, str]:
    """The axis of every signal node that runs on one (per-sequence nodes have none)."""
    found: dict[int, str] = graph.memo("node_axes", lambda: _node_axes(graph))
    return found


def _node_axes(graph: Graph) -> dict[int, str]:
    g = graph.nx_graph
    per_seq = per_sequence_nodes(graph)
    on_axis = [n for n, d in g.nodes(data="type") if d.batched and n not in per_seq]
    parent = {n: n for n in on_axis}
    axis: dict[int, tuple[str, int]] = {}  # root -> (axis, the input that gives it)

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n in on_axis:
        d = g.nodes[n]
        if d["op"] == "input":
            axis[n] = (d["attrs"].get("axis", DEFAULT_AXIS), n)
    for u, v in sorted(g.edges()):
        if u not in parent or v not in parent:
            continue  # per-sequence, time-invariant, or a crossing op's result
        ru, rv = root(u), root(v)
        if ru == rv:
            continue
        au, av = axis.get(ru), axis.get(rv)
        if au and av and au[0] != av[0]:
            d = g.nodes[v]
            where = f" (at {d['origin']})" if d["origin"] else ""
            first, second = sorted([au, av])
            raise GraphError(
                f"{d['op']} node {d['name']!r}{where} joins axis {first[0]!r} (input "
                f"{g.nodes[first[1]]['name']!r}) with axis {second[0]!r} (input "
                f"{g.nodes[second[1]]['name']!r}); a value crosses axes only through rg.final "
                "(each row's last step) or rg.whole (the whole sequence)"
            )
        parent[ru] = rv
        if au and not av:
            axis[rv] = au
    return {n: axis.get(root(n), (DEFAULT_AXIS, -1))[0] for n in on_axis}


def split(graph: Graph) -> Staging:
    """The graph's stages (cached until the graph changes); see the module docstring.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("ed")
    >>> src = g.input("src", 2, axis="src")
    >>> tgt = g.input("tgt", 2, axis="tgt")
    >>> enc = rg.cells.rnn(src, 3, name="enc")
    >>> h = g.state("dec.h", 3, init=rg.final(enc, name="h0"))
    >>> g.assign(h, rg.tanh(rg.linear(rg.concat([tgt, h]), 3, name="dec")))
    >>> g.output("y", h)
    >>> [(s.axis, s.reads) for s in rg.split_axes(g).stages]
    [('src', ()), ('tgt', ('h0',))]
    """
    made: Staging = graph.memo("staging", lambda: _split(graph))
    return made


def _split(graph: Graph) -> Staging:
    verify(graph)
    g = graph.nx_graph
    axes = node_axes(graph)
    per_seq = per_sequence_nodes(graph)
    crossing_nodes = sorted(n for n, op in g.nodes(data="op") if OPS[op].between_axes)
    # Each crossing's source axis (a whole_mask's is its whole's).
    source: dict[int, str] = {}
    for c in crossing_nodes:
        d = g.nodes[c]
        ((u, _, _),) = graph.operands(c)
        if d["op"] == "whole_mask":
            continue
        if u not in axes:
            raise GraphError(
                f"rg.{d['op']} {d['name']!r} reads {g.nodes[u]['name']!r}, which is already "
                "per-sequence (one value per row): use it directly"
            )
        if axes[u] != d["attrs"]["axis"]:
            raise GraphError(
                f"rg.{d['op']} {d['name']!r} was built for axis {d['attrs']['axis']!r} but "
                f"reads {g.nodes[u]['name']!r} on axis {axes[u]!r}"
            )
        source[c] = axes[u]
    for c in crossing_nodes:
        if g.nodes[c]["op"] == "whole_mask":
            source[c] = source[graph.operands(c)[0][0]]
    names = sorted(set(axes.values()), key=lambda a: min(n for n, x in axes.items() if x == a))
    # A state started from a value computed per sequence: the value comes from a stage of
    # its own (one step), run before the state's axis, as a crossing "start".
    # (a value that starts states of two axes: from the first one's stage)
    pre: dict[str, str] = {}  # per-sequence stage -> the axis it runs before ("": last)
    for sid, v in sorted(computed_starts(graph).items()):
        if v not in per_seq:
            continue  # (verify names it: a value that changes from step to step)
        a = axes[sid]
        if source.setdefault(v, f"{a}.init") == f"{a}.init":
            pre[f"{a}.init"] = a
    for p_name, a in pre.items():
        names.insert(names.index(a), p_name)
    # Per-sequence outputs: with one axis, read at every step as in a one-axis graph;
    # with several, one value per row (B, ...) from a per-sequence stage run last.
    shown = {nid for nid in graph.output_nodes().values() if nid in per_seq}
    extra: dict[str, set[int]] = {}
    if shown and len(set(axes.values())) == 1:
        extra[next(iter(set(axes.values())))] = shown
    elif shown:
        last = "outputs"
        while last in names:
            last += "_"
        names.append(last)
        pre[last] = ""
        extra[last] = shown
    # What each axis' stage holds: its nodes and what they read, through to the crossings.
    members: dict[str, set[int]] = {}
    by_name = {d: n for n, d in g.nodes(data="name")}
    for a in names:
        own = {n for n, x in axes.items() if x == a}
        if a in pre:  # a per-sequence stage: the values it gives, and what they read
            own = {v for v, s in source.items() if s == a}
        own |= extra.get(a, set())
        need = set(own)
        todo = list(own)
        while todo:
            n = todo.pop()
            if n in source and source[n] != a:  # a crossing: an input here, nothing behind it
                continue
            before = set(g.predecessors(n))
            for _, _, init in graph.operands(n):  # a state started from a per-sequence value
                if init.kind == "input" and str(init.ref) in by_name:
                    before.add(by_name[str(init.ref)])
            for u in before:
                if u not in need and axes.get(u, a) == a:
                    need.add(u)
                    todo.append(u)
        members[a] = need
    order = _order(graph, names, members, source)
    crossings: dict[str, Crossing] = {}
    stages = []
    for a in order:
        # (with several axes, per-sequence outputs come from the last stage only)
        hidden = set() if a in extra else shown
        stage, made = _stage(graph, a, members[a], source, crossings, a in pre, hidden)
        stages.append(stage)
        crossings.update(made)
    for s in stages:  # every crossing a stage reads is given by an earlier one
        for r in s.reads:
            if r not in crossings:
                raise GraphError(f"stage {s.axis!r} reads {r!r}, which no earlier axis gives")
    return Staging(graph, tuple(stages), crossings)


def _order(
    graph: Graph, names: list[str], members: dict[str, set[int]], source: dict[int, str]
) -> list[str]:
    dep = nx.DiGraph()
    dep.add_nodes_from(names)
    for a in names:
        for c in members[a] & set(source):
            if source[c] == a and OPS[graph.nx_graph.nodes[c]["op"]].between_axes:
                d = graph.nx_graph.nodes[c]
                raise GraphError(
                    f"rg.{d['op']} {d['name']!r} of axis {a!r} is read on axis {a!r} itself; "
                    "a crossing value exists only once its axis has run to the end"
                )
            if source[c] != a:
                dep.add_edge(source[c], a)
    try:
        return list(nx.lexicographical_topological_sort(dep, key=names.index))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(dep)
        raise GraphError(
            "the axes read each other's final or whole values in a cycle: "
            + " -> ".join(f"{u!r}" for u, _ in cycle)
        ) from None


def _stage(
    graph: Graph,
    axis: str,
    nodes: set[int],
    source: dict[int, str],
    known: dict[str, Crossing],
    per_sequence: bool = False,
    hidden: set[int] | None = None,
) -> tuple[Stage, dict[str, Crossing]]:
    g = graph.nx_graph
    hidden = hidden or set()
    records = []
    reads = []
    crossing = {n for n in nodes if n in source and source[n] != axis}
    for n in sorted(nodes):
        d = g.nodes[n]
        attrs = dict(d["attrs"])
        op = d["op"]
        if n in crossing:  # a value from another stage: a per-sequence input here
            op, attrs = "input", {} if per_sequence else {"axis": None}
            reads.append(d["name"])
        elif op == "input" and (per_sequence or attrs.get("axis", DEFAULT_AXIS) is not None):
            attrs.pop("axis", None)  # this stage's one axis (one step, per sequence)
        records.append(Node(n, d["name"], op, d["type"], attrs, d["origin"]))
    edges = [
        (u, v, k, e["delay"], e["init"])
        for u, v, k, e in g.edges(keys=True, data=True)
        if u in nodes and v in nodes and v not in crossing
    ]
    interface = {
        "inputs": {
            **{k: v for k, v in graph.input_nodes().items() if v in nodes},
            **{g.nodes[c]["name"]: c for c in crossing},
        },
        "params": {k: v for k, v in graph.param_nodes().items() if v in nodes},
        "states": {k: v for k, v in graph.state_nodes().items() if v in nodes},
        "outputs": {k: v for k, v in graph.output_nodes().items() if v in nodes - hidden},
    }
    arrays = {k: v for k, v in graph.arrays.items()}
    sg = Graph.from_records(f"{graph.name}.{axis}", records, edges, interface, arrays, graph.meta)
    # What this axis gives the others: each crossing that reads one of its values.
    made: dict[str, Crossing] = {}
    assigned = {graph.operands(s)[0][0]: k for k, s in graph.state_nodes().items() if s in nodes}
    for c, a in sorted(source.items()):
        d = g.nodes[c]
        if a != axis:
            continue
        if per_sequence:  # a state's initial value: one step's output (1, B, ...)
            sg.output(d["name"], Value(sg, c))
            made[d["name"]] = Crossing(START, d["name"], axis, d["name"])
            continue
        ((u, _, _),) = graph.operands(c)
        if d["op"] == "whole_mask":  # from the axis' lengths
            made[d["name"]] = Crossing("whole_mask", d["name"], axis, g.nodes[u]["name"])
        elif d["op"] == "whole":
            sg.output(d["name"], Value(sg, u))
            made[d["name"]] = Crossing("whole", d["name"], axis, d["name"])
        elif u in assigned and graph.operands(graph.state_nodes()[assigned[u]])[0][1] == 1:
            made[d["name"]] = Crossing("final", d["name"], axis, assigned[u])
        else:  # a state that holds the value: its final value is the value's last
            holder = sg.state(d["name"], g.nodes[u]["type"].row_shape)
            sg.assign(holder, Value(sg, u))
            made[d["name"]] = Crossing("final", d["name"], axis, d["name"])
    verify(sg)
    stage = Stage(
        axis,
        sg,
        tuple(reads),
        tuple(made),
        tuple(k for k, v in graph.output_nodes().items() if v in nodes - hidden),
        tuple(k for k, v in graph.state_nodes().items() if v in nodes),
        per_sequence,
    )
    return stage, made
