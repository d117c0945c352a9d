"""The schedule: a :class:`Program`, the one thing every backend consumes.

A program is the analysis of a verified graph written down once, in an order
a backend can follow without re-deriving anything:

1. ``static`` — time-invariant nodes (params, constants and what is computed
   from them only), evaluated once before the first step; ``post`` — sums
   over all steps (:func:`~rnngraph.ops.totals.total`) and what is computed
   from them, evaluated after the last region;
2. ``regions`` — in dependency order, each either a :class:`ParallelRegion`
   (one node computed over the whole sequence at once) or a
   :class:`RecurrentRegion` (nodes stepped through time, forward or
   backward, carrying their own past values);
3. ``taps`` — every delayed read that is *not* inside a recurrent region: a
   finite-impulse tap, computed as a shifted copy of its source's whole
   sequence (so it costs one copy, not a loop);
4. ``outputs`` and ``finals`` — which node each output sequence and each
   state's final value come from.

Meaning of a recurrent region, as a loop (``direction`` +1; -1 runs ``t``
from the last step down)::

    carried = {c: [init(c)] * abs(c.delay) for c in region.carries}
    for t in steps:
        for node in region.nodes:              # zero-delay order
            node(t) = op(operand(t) for each operand)
            # an operand is: a static value; a carried past value
            # carried[c][-1]; or an outside sequence at t (a tap
            # when its read is delayed)
        for c in carries: push source(t) into carried[c] where row t is valid

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("elman")
>>> x = g.input("x", 2)
>>> h = g.state("h", 3)
>>> h_new = rg.tanh(rg.linear(x, 3, name="in") + rg.linear(h, 3, bias=False, name="rec"))
>>> g.assign(h, h_new)
>>> g.output("y", h_new)
>>> p = schedule(g)
>>> [type(r).__name__ for r in p.regions]
['ParallelRegion', 'ParallelRegion', 'ParallelRegion', 'RecurrentRegion']
>>> [g.node(c.source).name for c in p.regions[-1].carries]
['tanh_0']
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import networkx as nx

from rnngraph.errors import CompileError
from rnngraph.ir.graph import Graph, InitSpec
from rnngraph.ir.registry import lookup
from rnngraph.ir.structure import per_sequence_nodes
from rnngraph.ir.structure import regions as analyse_regions
from rnngraph.ir.verify import verify

__all__ = [
    "CellMatch",
    "CellRegion",
    "ParallelRegion",
    "Program",
    "Read",
    "RecurrentRegion",
    "StateSlot",
    "schedule",
    "step_slots",
]


@dataclass(frozen=True)
class Read:
    """One operand edge: ``consumer`` reads ``source(t - delay)`` through ``port``."""

    source: int
    consumer: int
    port: int
    delay: int
    init: InitSpec


@dataclass(frozen=True)
class ParallelRegion:
    """One node computed over whole sequences (its delayed operands are taps)."""

    node: int


@dataclass(frozen=True)
class RecurrentRegion:
    """Nodes that step through time together.

    Attributes
    ----------
    nodes : tuple of int
        The nodes in per-step evaluation order.
    direction : int
        +1 steps forward (the cycles carry delays), -1 backward (advances).
    carries : tuple of Read
        The delayed edges inside the region: the loop keeps ``abs(delay)``
        past values of each source and reads the oldest.
    inputs : tuple of int
        Outside signal nodes read at step ``t`` with no delay, in order.
    taps : tuple of Read
        Delayed reads of outside signals (shifted copies made before the loop).
    exports : tuple of int
        Region nodes whose sequences are needed after the loop.
    unroll : int
        Steps per loop iteration a backend should emit (1: a plain loop; a
        factor equal to the sequence length unrolls fully). Never changes
        results: a backend covers the steps left over by whole blocks.
    """

    nodes: tuple[int, ...]
    direction: int
    carries: tuple[Read, ...]
    inputs: tuple[int, ...]
    taps: tuple[Read, ...]
    exports: tuple[int, ...]
    unroll: int = 1


@dataclass(frozen=True)
class CellMatch:
    """A recurrent region (with the time-parallel work around it) that is exactly ONNX's cell.

    Attributes
    ----------
    kind : {"LSTM", "GRU", "RNN"}
    x : int
        The input sequence node.
    weights : dict of str to int
        ``"W"``, ``"R"`` and, where present, ``"B"`` and ``"P"``: time-invariant
        nodes in ONNX's layout for one direction.
    hidden, direction
        Hidden size; +1 forward, -1 reverse.
    activations, activation_alpha, activation_beta
        ONNX activation names (``f, g, h`` for LSTM) and their parameters.
    clip, input_forget, linear_before_reset
        As ONNX's attributes.
    h_state, h_new, c_state, c_new : int
        The state nodes and the nodes assigned to them (``c_*`` only for LSTM).
    nodes : frozenset of int
        Every signal node the native op computes (the region and its
        hoisted input work); only ``h_new`` is read outside them.
    """

    kind: str
    x: int
    weights: dict[str, int]
    hidden: int
    direction: int
    activations: tuple[str, ...]
    activation_alpha: tuple[float, ...]
    activation_beta: tuple[float, ...]
    clip: float | None
    input_forget: bool
    linear_before_reset: bool
    h_state: int
    h_new: int
    c_state: int | None
    c_new: int | None
    nodes: frozenset[int]


@dataclass(frozen=True)
class CellRegion:
    """A recognised standard cell: backends with a native op use ``match``; others run ``parts``."""

    match: CellMatch
    parts: tuple[ParallelRegion | RecurrentRegion, ...]


Region = ParallelRegion | RecurrentRegion | CellRegion


@dataclass(frozen=True)
class Program:
    """A verified graph in execution order; see the module docstring.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("elman")
    >>> g.output("y", rg.cells.elman(g.input("x", 2), 3, name="rnn"))
    >>> program = rg.schedule(g)
    >>> [type(r).__name__ for r in program.regions]
    ['ParallelRegion', 'ParallelRegion', 'ParallelRegion', 'RecurrentRegion']
    """

    graph: Graph
    static: tuple[int, ...]
    regions: tuple[Region, ...]
    post: tuple[int, ...]
    taps: tuple[Read, ...]
    outputs: dict[str, int]
    finals: dict[str, Read]
    reads: dict[int, tuple[Read, ...]]
    per_sequence: tuple[int, ...] = ()
    """Signal nodes with one value per sequence (see
    :func:`~rnngraph.ir.structure.per_sequence_nodes`), in dependency order: computed once,
    ``(B, ...)``, after ``static`` and before the regions, which read them at every step."""

    @functools.cached_property
    def parts(self) -> tuple[ParallelRegion | RecurrentRegion, ...]:
        """Every region in order, a recognised cell as its parts.

        What a backend without a native op for the cell runs (the interpreter,
        TVM, ONNX step models).
        """
        return tuple(
            part for r in self.regions for part in (r.parts if isinstance(r, CellRegion) else (r,))
        )

    def region_of(self, nid: int) -> Region | None:
        """The region computing node ``nid`` (None for static nodes)."""
        return self._region_index.get(nid)

    @functools.cached_property
    def _region_index(self) -> dict[int, Region]:
        idx: dict[int, Region] = {}
        for r in self.regions:
            for part in r.parts if isinstance(r, CellRegion) else (r,):
                for n in part.nodes if isinstance(part, RecurrentRegion) else (part.node,):
                    idx[n] = r
        return idx

    def with_regions(self, regions: tuple[Region, ...]) -> Program:
        """The same program with another region list (same nodes, new grouping)."""
        return dataclasses.replace(self, regions=regions)

    def with_unroll(self, factor: int) -> Program:
        """The same program asking backends to unroll every recurrent loop by ``factor``."""
        if int(factor) < 1:
            raise CompileError(f"unroll must be an integer >= 1, got {factor!r}")

        def unrolled(r: Region) -> Region:
            if isinstance(r, RecurrentRegion):
                return dataclasses.replace(r, unroll=factor)
            if isinstance(r, CellRegion):
                return CellRegion(r.match, tuple(unrolled(q) for q in r.parts))  # type: ignore[misc]
            return r

        return self.with_regions(tuple(unrolled(r) for r in self.regions))


def _reads(graph: Graph, nid: int) -> tuple[Read, ...]:
    edges = sorted(graph.nx_graph.in_edges(nid, keys=True, data=True), key=lambda e: e[2])
    return tuple(Read(u, nid, port, d["delay"], d["init"]) for u, _, port, d in edges)


def schedule(graph: Graph) -> Program:
    """Verify ``graph`` and write its :class:`Program` (cached until the graph changes).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("elman")
    >>> g.output("y", rg.cells.elman(g.input("x", 2), 3, name="rnn"))
    >>> program = rg.schedule(g)
    >>> type(program).__name__, len(program.regions) > 0
    ('Program', True)
    """
    verify(graph)
    program: Program = graph.memo("program", lambda: _schedule(graph))
    return program


def _absorbed(graph: Graph, found: list[Any], reads: dict[Any, tuple[Read, ...]]) -> dict[int, int]:
    """Row gathers from a loop's values that are computed inside the loop instead.

    ``gather_rows(table, idx)`` of a table the loop carries (a recursive net's
    node states) picks a few rows per step; computed after the loop it would
    need the whole table at every step exported. Returns each absorbed node's
    region index.
    """
    g = graph.nx_graph
    owner = {n: i for i, r in enumerate(found) if r.recurrent for n in r.nodes}
    out: dict[int, int] = {}
    for r in found:
        if r.recurrent:
            continue
        (nid,) = r.nodes
        if g.nodes[nid]["op"] != "gather_rows":
            continue
        table, idx = reads[nid]
        src = g.nodes[idx.source]
        if table.delay or idx.delay or table.source not in owner:
            continue
        if src["type"].batched and src["op"] != "input":
            continue
        out[nid] = owner[table.source]
    return out


def _schedule(graph: Graph) -> Program:

    g = graph.nx_graph
    batched = {n for n, d in g.nodes(data=True) if d["type"].batched}
    after: set[int] = set()
    for t in [n for n in g.nodes if lookup(g.nodes[n]["op"]).after_steps]:
        after |= {t} | nx.descendants(g, t)
    static = tuple(
        nx.lexicographical_topological_sort(
            g.subgraph(n for n in g.nodes if n not in batched and n not in after)
        )
    )
    post = tuple(nx.lexicographical_topological_sort(g.subgraph(after)))
    per_seq = per_sequence_nodes(graph)
    per_sequence = tuple(nx.lexicographical_topological_sort(g.subgraph(per_seq)))
    reads = {n: _reads(graph, n) for n in g.nodes}
    # A state's final value comes from its loop's carried value, so a state's source
    # is exported only when something outside its region reads it.
    needed_outside: set[int] = set(graph.output_nodes().values())
    found = list(analyse_regions(graph))
    absorbed = _absorbed(graph, found, reads)
    out_regions: list[Region] = []
    taps: list[Read] = []
    unread_states = {
        n for n in graph.state_nodes().values() if not g.out_degree(n) and n not in needed_outside
    }
    for i, reg in enumerate(found):
        if not reg.recurrent:
            (nid,) = reg.nodes
            if nid in absorbed or nid in unread_states:
                continue  # (a state no node reads: its final value is its source's, below)
            out_regions.append(ParallelRegion(nid))
            taps.extend(r for r in reads[nid] if r.delay and r.source in batched)
            continue
        extra = tuple(n for n, j in absorbed.items() if j == i)
        reg = dataclasses.replace(reg, nodes=(*reg.nodes, *extra))
        members = set(reg.nodes)
        carries, inputs, rtaps = [], [], []
        for nid in reg.nodes:
            for r in reads[nid]:
                if r.source not in batched or r.source in per_seq:
                    continue
                if r.source in members:
                    if r.delay:
                        carries.append(r)
                elif r.delay:
                    rtaps.append(r)
                elif r.source not in inputs:
                    inputs.append(r.source)
        exports = tuple(
            n
            for n in reg.nodes
            if n in needed_outside or any(s not in members for s in g.successors(n))
        )
        out_regions.append(
            RecurrentRegion(
                reg.nodes, reg.direction, tuple(carries), tuple(inputs), tuple(rtaps), exports
            )
        )
        taps.extend(rtaps)
    finals = {name: reads[sid][0] for name, sid in graph.state_nodes().items()}
    return Program(
        graph,
        static,
        tuple(out_regions),
        post,
        tuple(taps),
        graph.output_nodes(),
        finals,
        reads,
        per_sequence,
    )


@dataclass(frozen=True)
class StateSlot:
    """One carried past value of a step model: input ``name``, output ``output``."""

    name: str
    output: str
    read: Read
    age: int  # 1: the newest past value; d: the one read with delay d


MAX_STEP_SLOTS = 4096
"""The longest delay a step model carries (one input and output per past value)."""


def step_slots(program: Program) -> list[StateSlot]:
    """The carried past values of a step model, in the model's input order.

    Every delayed read of a signal, ``u(t - d)``, carries ``u``'s last ``d``
    values: ages 1 (newest) to ``d``, named after the reading node (a state
    or delay: its own name; other ops ``"<node>:<port>"``), ``"@<age>"``
    added from age 2. A step reads the age-``d`` value and hands on ``u``'s
    new value as age 1 and every other one a year older. Shared by the
    backends' step models, so their carried values have the same names.
    """
    g = program.graph.nx_graph
    slots: list[StateSlot] = []
    reads = [
        r
        for rs in program.reads.values()
        for r in rs
        if r.delay and g.nodes[r.source]["type"].batched
    ]
    for r in sorted(reads, key=lambda r: (r.consumer, r.port)):
        c = g.nodes[r.consumer]
        if r.delay < 0:
            raise CompileError(
                f"{c['op']} node {c['name']!r} reads {g.nodes[r.source]['name']!r} "
                f"{-r.delay} step(s) ahead; a step model cannot see the future. Compile the "
                "sequence model instead"
            )
        if r.delay > MAX_STEP_SLOTS:
            t = g.nodes[r.source]["type"]
            row = math.prod(d if isinstance(d, int) else 1 for d in t.row_shape)
            raise CompileError(
                f"{c['op']} node {c['name']!r} reads {g.nodes[r.source]['name']!r} "
                f"{r.delay} steps back; a step model carries each past value as an input and "
                f"an output of its own: {r.delay} of them, {r.delay * row * 4:,} bytes per "
                f"batch row in float32. Compile the sequence model (it keeps min(delay, T) "
                f"past values in one buffer), or keep delays of step models to "
                f"{MAX_STEP_SLOTS} steps"
            )
        base = c["name"] if c["op"] in ("state", "delay") else f"{c['name']}:{r.port}"
        for age in range(1, r.delay + 1):
            name = base if age == 1 else f"{base}@{age}"
            slots.append(StateSlot(name, f"{name}_final", r, age))
    return slots
