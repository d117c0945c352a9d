"""A :class:`~rnngraph.program.schedule.Program` as one TIR function, time loop inside.

The whole program is one kernel, launched once per call: static nodes
first, then each region in order — a time-parallel node as loops over
``(T, B, row)``, a recurrent region as one loop over time (forward or
backward) around its nodes' loops over ``(B, row)`` — then the sums over
steps, the outputs (zeroed past each row's ``sequence_lens``) and the final
states. ``T`` and ``B`` are symbolic, so one build serves every length and
batch. Every value lives in a buffer the caller allocates; a delayed read
``u(t - d)`` loads the buffer where ``t - d`` is a valid step of the row and
the read's initial value (an argument ``(B, *row)``, filled by the caller
from the edge's ``init`` or the run's ``initial_states``) elsewhere.

This is why TVM here wins what onnxruntime's ``Scan`` loses: there is no
per-step dispatch, and the weights stay in cache across steps. Three
choices keep the kernel fast without tuning: products of a signal and a
weight use the register-blocked kernel of ``_gemm`` on weights packed once
(a loop's input products a few steps ahead inside the loop,
:meth:`_Gen.ahead_of`, or, from a few batch rows, one product with the
recurrent one over ``[x_t | h]``, :meth:`_Gen.stackable`; a product's one
element-wise consumer in its epilogue, :meth:`_Gen.fusable`);
an element-wise node read by one element-wise consumer is evaluated inside
that consumer's loop (:meth:`_Gen.inlinable`); a loop's internal values are
kept one step (:meth:`_Gen.step_local`) and a node table it carries is
updated in place (:meth:`_Gen.in_place`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tvm
from tvm import tirx as tir

from rnngraph.errors import CompileError
from rnngraph.ir.registry import lookup
from rnngraph.ir.types import TensorType
from rnngraph.program.schedule import ParallelRegion, Program, Read, RecurrentRegion
from rnngraph_tvm import _gemm, _threads
from rnngraph_tvm._ops import (
    ELEMENTS,
    I64,
    IN_PLACE,
    NEEDS_ROW,
    NEEDS_SCRATCH,
    NEEDS_TARGET,
    REMAPS,
    REPEATS,
    RULES,
    Acc,
    extent,
    i64,
    loops,
    read_only,
    seq,
)
from rnngraph_tvm._plan import Plan, host_plan

__all__ = ["Arg", "Kernel", "generate", "initial_name"]


def _vector_rows(n: int, width: int, store: Callable[[Any], Any]) -> list[Any]:
    """``store(e)`` for ``e < n``: vectors of ``width`` lanes, then the rest one by one."""
    whole, v, e = n // width, tir.Var("v", I64), tir.Var("e", I64)
    out = []
    if whole:
        out.append(tir.For(v, i64(0), i64(whole), tir.ForKind.SERIAL, tir.For(
            e, i64(0), i64(width), tir.ForKind.VECTORIZED, store(v * i64(width) + e))))  # fmt: skip
    if n % width:
        out.append(tir.For(e, i64(whole * width), i64(n % width), tir.ForKind.SERIAL, store(e)))
    return out


MAX_INLINE_DEPTH = 24
"""The longest chain of element-wise nodes evaluated as one expression (deeper ones
would slow LLVM and TVM's passes down, which recurse over expressions)."""


@dataclass(frozen=True)
class Arg:
    """One buffer argument of the kernel, in order.

    ``kind``: "input", "lens", "static" (a time-invariant value the caller
    computes once), "init" (the initial value of ``read``), "node" (a value the
    kernel computes), "output", "final", "total".
    ``shape``: the full shape with ``"T"``/``"B"`` for the symbolic sizes.
    ``pack``: for a static weight, the panel width it is packed to (see
    :func:`rnngraph_tvm._gemm.pack`; ``shape`` is then the packed one), else 0.
    ``stack``: for a static weight, the weight nodes stacked along ``K`` (rows of the
    first, then of the second) before packing; ``node`` is then None.
    ``layout``: for an int8 weight of an integer product, ``"vnni"`` (its quads of rows
    packed for ``vpdpbusd``) or ``"colsum"`` (its column sums): see
    :func:`rnngraph_tvm._gemm.vnni_layout`.
    """

    kind: str
    name: str
    shape: tuple[Any, ...]
    dtype: str
    node: int | None = None
    read: Read | None = None
    pack: int = 0
    stack: tuple[int, ...] = ()
    layout: str = ""

    @property
    def static_key(self) -> str:
        """One name per static value (its nodes and packing): the kernels with and
        without lengths share it, on the device and in exported files."""
        tail = f"_{self.layout}" if self.layout else ""
        return f"static_{'_'.join(map(str, self.stack or (self.node,)))}_{self.pack}{tail}"


def initial_name(graph: Any, read: Read) -> str | None:
    """The name a caller gives ``read``'s initial value under: its state's, or the name of
    the value an ``init="input"`` edge takes; None for an edge no caller can set."""
    states = {v: k for k, v in graph.state_nodes().items()}
    name = states.get(read.consumer)
    if name is None and read.init.kind == "input":
        name = str(read.init.ref)
    return name


@dataclass
class Kernel:
    """The generated function and the arguments it takes."""

    func: Any
    args: list[Arg] = field(default_factory=list)


class _Gen:
    def __init__(
        self,
        program: Program,
        dtype: str,
        with_lens: bool,
        rows: str = "",
        blocked: bool = True,
        groups: int = 1,
        threads: bool = False,
        block: int = 1024,
        plan: Plan | None = None,
    ) -> None:
        # the shapes of the CPU kernels (block rows, panel width, chunks...): see _plan
        self.plan = plan or host_plan()
        self.p, self.g, self.dtype, self.with_lens = (
            program,
            program.graph.nx_graph,
            dtype,
            with_lens,
        )
        self.T, self.B = tir.Var("T", I64), tir.Var("B", I64)
        self.args: list[Arg] = []
        self.bufs: list[Any] = []
        self.node_buf: dict[int, Any] = {}
        self.init_buf: dict[Read, Any] = {}
        self.lens: Any = None
        # rows: "" loops over the batch inside each node; otherwise one outer loop holds
        # everything for its rows, since rows never read each other outside the sums over
        # steps: "parallel" (groups of rows, one per CPU core: each node loops over its
        # group's rows [lo, hi)), "blockIdx.x" (the GPU: one thread block per row, its
        # threads sharing out each node's elements, a barrier between nodes) or "emulated"
        # (the GPU's kernel on the CPU: each node's threads run one after another).
        self.rows = rows
        self.row_b = tir.Var("row", I64)
        self.gpu = bool(rows) and rows != "parallel"
        self.emulated = rows == "emulated"
        self.tx = tir.Var("tx", I64)  # the thread's index in its block
        self.max_block = block
        self.lo, self.hi = i64(0), self.B
        if rows == "parallel":
            size = tir.floordiv(self.B + i64(groups - 1), i64(groups))
            self.lo = tir.min(self.row_b * size, self.B)
            self.hi = tir.min(self.lo + size, self.B)
        self.groups = groups
        # threads: every product splits its weight's panels over the cores, and the other
        # nodes their batch rows (parallel loops in one launch of the pool: _threads)
        self.threads = threads
        self.symbols: dict[str, Any] = {}  # symbolic row dimensions, as TIR variables
        # blocked: matrix products by the register-blocked CPU kernel (_gemm), on weights
        # packed in panels (one packed copy per weight node)
        self.blocked = blocked
        self.panels: dict[tuple[int, ...], Any] = {}
        self.vnni_weights: dict[tuple[int, str], tuple[Any, Any]] = {}  # for vpdpbusd/wssd
        self.row_tables: dict[int, Any] = {}  # products' row index tables (index_table)
        # products computed as one over stacked operands (see stackable), in the loop
        # version being generated: recurrent product -> the input product it absorbs
        # (not computed in that version: read as zero by the epilogue that adds it)
        self.stacking: dict[int, int] = {}
        # delays whose reads are known to land inside the sequence (True) or before or
        # after it (False) in the statement being generated (see unswitched)
        self.known: dict[int, bool] = {}

    # ------------------------------------------------------------ buffers
    def elem(self, t: TensorType) -> str:
        return self.dtype if t.dtype == "float" else t.dtype  # int64, bool, int8, ...

    def add_arg(self, arg: Arg) -> Any:
        dims = [self.T if d == "T" else self.B if d == "B" else extent(d) for d in arg.shape]
        # The caller sizes arguments by name: symbolic dimensions keep theirs.
        names = tuple(d.name if isinstance(d, tir.Var) else d for d in arg.shape)
        arg = dataclasses.replace(arg, shape=names)
        buf = tir.decl_buffer(dims, arg.dtype, name=f"{arg.kind}_{len(self.args)}")
        self.args.append(arg)
        self.bufs.append(buf)
        return buf

    def row(self, nid: int) -> tuple[Any, ...]:
        """A node's row shape: sizes, and one TIR variable per symbolic dimension name."""
        t: TensorType = self.g.nodes[nid]["type"]
        return tuple(
            self.symbols.setdefault(d, tir.Var(d, I64)) if isinstance(d, str) else d
            for d in t.row_shape
        )

    def declare(self) -> None:
        g = self.g
        graph = self.p.graph
        # Per-sequence values (inputs declared with axis=None and what is computed from
        # them alone) have one (B, row) buffer: computed once, read at every step.
        self.per_seq = set(self.p.per_sequence)
        for name, nid in graph.input_nodes().items():
            t = g.nodes[nid]["type"]
            lead = ("B",) if nid in self.per_seq else ("T", "B")
            self.node_buf[nid] = self.add_arg(
                Arg("input", name, (*lead, *self.row(nid)), self.elem(t), nid)
            )
        if self.with_lens:
            self.lens = self.add_arg(Arg("lens", "sequence_lens", ("B",), "int64"))
        # Time-invariant values (params, constants and what is computed from them
        # alone, such as a transposed weight) are computed once by the caller.
        for nid in self.p.static:
            d = g.nodes[nid]
            self.node_buf[nid] = self.add_arg(
                Arg("static", d["name"], self.row(nid), self.elem(d["type"]), nid)
            )
        self.stepwise = self.step_local() | self.per_seq
        self.inlined = self.inlinable()
        self.tables = self.in_place()
        self.epilogues = self.fusable()
        self.fused_at = {c: m for m, c in self.epilogues.items()}
        for scatter, carry in self.tables.items():  # one (B, row) buffer: the table itself
            self.stepwise |= {scatter, carry.consumer}
            d = g.nodes[scatter]
            shared = self.add_arg(
                Arg("node", d["name"], ("B", *self.row(scatter)), self.elem(d["type"]), scatter)
            )
            self.node_buf[scatter] = self.node_buf[carry.consumer] = shared
        # Without lengths to mask, an output's buffer is the output itself (no copy).
        aliases: dict[int, str] = {}
        if not self.with_lens:
            for name, nid in graph.output_nodes().items():
                if g.nodes[nid]["type"].batched:
                    aliases.setdefault(nid, name)
        self.written: dict[int, str] = {}  # node -> the output its buffer is
        for nid in g.nodes:
            d = g.nodes[nid]
            if nid in self.node_buf or nid in self.inlined or d["op"] == "input":
                continue
            if nid in self.epilogues:  # stored as its consumer, by the product's epilogue
                continue
            t = d["type"]
            lead = ("B",) if nid in self.stepwise else ("T", "B")
            shape = (*lead, *self.row(nid)) if t.batched else self.row(nid)
            if nid in aliases and nid not in self.stepwise:
                self.written[nid] = aliases[nid]
            kind, name = (
                ("output", self.written[nid]) if nid in self.written else ("node", d["name"])
            )
            self.node_buf[nid] = self.add_arg(Arg(kind, name, shape, self.elem(t), nid))
        finals = set(self.p.finals.values())  # a final reads its initial value at length 0
        for reads in self.p.reads.values():
            for r in reads:
                delayed = r.delay or r in finals
                if delayed and self.g.nodes[r.source]["type"].batched and r not in self.init_buf:
                    t = self.g.nodes[r.source]["type"]
                    # a tap of d > 1 steps back reads d past values: u(-d) .. u(-1)
                    past = (r.delay,) if r.delay > 1 else ()
                    self.init_buf[r] = self.add_arg(
                        Arg(
                            "init",
                            self.g.nodes[r.consumer]["name"],
                            (*past, "B", *self.row(r.source)),
                            self.elem(t),
                            read=r,
                        )
                    )

    def step_local(self) -> set[int]:
        """Loop nodes whose values no one needs after their step: one ``(B, row)`` buffer each.

        A node of a recurrent region that is not exported, not carried (read
        delayed) and not a state's final value is written and read within one
        step, so its buffer is reused every step and stays in cache; the others
        keep every step ``(T, B, row)``.
        """
        keep = {r.source for r in self.p.finals.values()}
        local: set[int] = set()
        for part in self.p.parts:
            if isinstance(part, RecurrentRegion):
                keep |= set(part.exports) | {c.source for c in part.carries}
                local |= set(part.nodes)
        return local - keep

    def inlinable(self) -> set[int]:
        """Element-wise nodes computed inside their one consumer: no buffer, no loop.

        A node whose every element is an expression of operand elements
        (:data:`ELEMENTS`), read once, undelayed, by one element-wise consumer
        of its own shape (or a slice of it), or by a ``concat`` as one of its pieces,
        is not stored: the consumer's loop evaluates it in place (so a gate's slice,
        its sigmoid and the product with the cell state are one loop, and a gradient's
        four gate pieces are written where their concat puts them). A consumer that uses its operand
        several times (:data:`REPEATS`) takes only plain remapped reads. Inside
        a loop the consumer must be in the same loop (the node's operands may
        live one step only); a whole-sequence node may feed any later one.
        """
        part_of, keep = self.part_of, self.kept
        found: set[int] = set()
        depth: dict[int, int] = {}  # of the expression an inlined node evaluates
        for nid, part in part_of.items():  # in evaluation order: operands decided first
            d = self.g.nodes[nid]
            if d["op"] not in ELEMENTS or nid in keep or not d["type"].batched:
                continue
            deep = 1 + max((depth.get(r.source, 0) for r in self.p.reads[nid]), default=0)
            if deep > MAX_INLINE_DEPTH:  # a long chain is stored every so many nodes
                continue
            edges = list(self.g.out_edges(nid, data=True))
            if len(edges) != 1 or edges[0][2]["delay"]:
                continue
            c = edges[0][1]
            cd = self.g.nodes[c]
            if (cd["op"] not in ELEMENTS and cd["op"] != "concat") or c not in part_of:
                continue
            if cd["op"] not in ("slice", "concat") and cd["type"].row_shape != d["type"].row_shape:
                continue
            plain = d["op"] in REMAPS and not any(r.source in found for r in self.p.reads[nid])
            if cd["op"] in REPEATS and not plain:
                continue
            if isinstance(part, RecurrentRegion) and part_of[c] is not part:
                continue
            found.add(nid)
            depth[nid] = deep
        return found

    @functools.cached_property
    def part_of(self) -> dict[int, Any]:
        """Each node's part of the program (its loop, or its time-parallel region), in order."""
        part_of: dict[int, Any] = {}
        for part in self.p.parts:
            for nid in part.nodes if isinstance(part, RecurrentRegion) else (part.node,):
                part_of[nid] = part
        return part_of

    @functools.cached_property
    def kept(self) -> set[int]:
        """Nodes whose values the caller receives (outputs, final states' sources)."""
        return set(self.p.outputs.values()) | {r.source for r in self.p.finals.values()}

    def fusable(self) -> dict[int, int]:
        """Products whose one element-wise consumer their epilogue computes: product -> consumer.

        A blocked product ``x @ W`` read once, undelayed, by an element-wise
        node of its own shape in the same part (an LSTM's ``x_t W_i + b +
        h_{t-1} W_h``: the gates' pre-activations) is not stored: each
        finished block of sums goes straight into the consumer's formula, its
        other operands read at the same element, and the result is stored as
        the consumer's value. The product runs where its consumer would (its
        operands are still valid there: only an in-place table could change
        in between, and a product that reads one is left alone). One pass
        over the sums less, and no buffer for them.
        """
        if not (self.blocked or self.gpu):
            return {}
        part_of, keep = self.part_of, self.kept
        tabled = set(self.tables) | {c.consumer for c in self.tables.values()}
        found: dict[int, int] = {}
        for nid, part in part_of.items():
            ops = self.matmul_operands(nid)
            if ops is None or nid in keep or ops[0].source in tabled:
                continue
            if self.gpu and len(self.row(ops[0].source)) != 1:
                continue  # (the GPU's products of rows with leading axes have no epilogue)
            edges = list(self.g.out_edges(nid, data=True))
            consumers = {v for _, v, _ in edges}
            if len(consumers) != 1 or any(e["delay"] for _, _, e in edges):
                continue
            (c,) = consumers
            d, cd = self.g.nodes[nid], self.g.nodes[c]
            if cd["op"] not in ELEMENTS or cd["op"] in REMAPS or c in self.inlined:
                continue
            if not cd["type"].batched or cd["type"].row_shape != d["type"].row_shape:
                continue
            same = part_of.get(c) is part or (
                isinstance(part, ParallelRegion) and isinstance(part_of.get(c), ParallelRegion)
            )
            if same and c not in found.values():
                found[nid] = c
        return found

    def in_place(self) -> dict[int, Read]:
        """Tables a loop updates where they lie: scatter node -> the carry that reads it.

        A recursive net's node states are a table ``(N, H)`` a loop carries:
        ``state(t) = table(t - 1)``, gathers read it, ``table(t) =
        scatter(state(t), rows, values)``. Stored per step, every level would
        copy the whole table; instead the state and the scatter share one
        buffer, updated in place (no copy), when nothing needs the old table
        after the scatter: every other reader of the state comes earlier in the
        step, the scatter is read delayed only by its state, neither is read
        outside the loop, and rows run all steps (no ``sequence_lens``).
        """
        if self.with_lens:
            return {}
        outputs = set(self.p.outputs.values())
        found: dict[int, Read] = {}
        for part in self.p.parts:
            if not isinstance(part, RecurrentRegion):
                continue
            order = {n: i for i, n in enumerate(part.nodes)}
            for c in part.carries:
                sc, st = c.source, c.consumer
                if c.delay != 1 or self.g.nodes[st]["op"] != "state":
                    continue
                if self.g.nodes[sc]["op"] not in IN_PLACE or sc in part.exports:
                    continue
                table = self.p.reads[sc][0]
                if table.source != st or table.delay or st in {*part.exports, *outputs}:
                    continue
                early = all(
                    u in order and order[u] < order[sc] and u not in self.inlined
                    for u in self.g.successors(st)
                    if u != sc
                )
                only = all(not e["delay"] or u == st for _, u, e in self.g.out_edges(sc, data=True))
                if early and only:
                    found[sc] = c
        return found

    def lead(self, nid: int, t: Any, b: Any) -> list[Any]:
        """The leading indices of node ``nid``'s buffer at step ``t``, batch row ``b``."""
        if not self.g.nodes[nid]["type"].batched:
            return []
        return [b] if nid in self.stepwise else [t, b]

    # ------------------------------------------------------------ access
    def bound(self, b: Any) -> Any:
        """The number of valid steps of batch row ``b``."""
        return self.lens[b] if self.with_lens else self.T

    def acc(self, read: Read, t: Any, b: Any) -> Acc:
        """The operand ``read`` at step ``t``, batch row ``b`` (time-invariant: its value)."""
        u = read.source
        t_ = self.g.nodes[u]["type"]
        shape = self.row(u)
        if u in self.stacking.values():  # its sum is in the stacked product's (stackable)
            return Acc(shape, lambda idx: tir.const(0, self.elem(t_)), read_only, self.elem(t_))
        if u in self.inlined:  # evaluated here, from its own operands
            d = self.g.nodes[u]
            args = [self.acc(r, t, b) for r in self.p.reads[u]]
            element = ELEMENTS[d["op"]](_NodeView(d), shape, self.elem(t_), args)
            return Acc(shape, element, read_only, self.elem(t_))
        buf = self.node_buf[u]
        if not t_.batched:
            return Acc(shape, lambda idx: buf[tuple(idx)], read_only, self.elem(t_))
        if not read.delay:
            lead = self.lead(u, t, b)
            return Acc(shape, lambda idx: buf[(*lead, *idx)], read_only, self.elem(t_))
        s = t - i64(read.delay)
        inside = self.known.get(read.delay)
        if inside is not None:  # (the statement is unswitched on this read: unswitched)
            return Acc(
                shape,
                (lambda idx: buf[(s, b, *idx)])
                if inside
                else (lambda idx: self.past(read, s, b, idx)),
                read_only,
                self.elem(t_),
            )
        ok = self.inside(read.delay, t, b)
        safe = tir.max(tir.min(s, self.T - i64(1)), i64(0))

        def load(idx: Any) -> Any:
            # Both reads are in bounds (clamped), so both are made and one is kept: the
            # test is the same for the whole row, and LLVM keeps the loads contiguous
            # (a conditional read of either buffer becomes a gather).
            return tir.Select(ok, buf[(safe, b, *idx)], self.past(read, s, b, idx))

        return Acc(shape, load, read_only, self.elem(t_))

    def inside(self, delay: int, t: Any, b: Any) -> Any:
        """Whether step ``t - delay`` of batch row ``b`` is one of the row's steps."""
        s = t - i64(delay)
        return tir.all(s >= i64(0), s < self.bound(b))

    def delays_read(self, nids: Sequence[int]) -> set[int]:
        """The delays with which ``nids`` (and the nodes inlined into them) read signals."""
        found: set[int] = set()
        stack = list(nids)
        while stack:
            for r in self.p.reads[stack.pop()]:
                if r.source in self.stacking.values():
                    continue
                if r.delay and self.g.nodes[r.source]["type"].batched:
                    found.add(r.delay)
                elif not r.delay and r.source in self.inlined:
                    stack.append(r.source)
        return found

    def unswitched(self, nids: Sequence[int], t: Any, b: Any, build: Callable[[], Any]) -> Any:
        """``build()``'s statement (which reads what ``nids`` read at step ``t``, row ``b``),
        once for each side of every delayed read's test whether it lands inside the
        sequence (at most two delays; more are tested element by element).

        The test is the same for a whole row, so the row's loops then read one buffer
        or the other contiguously; tested per element, LLVM turns the choice of buffer
        into a gather."""
        delays = sorted(self.delays_read(nids) - set(self.known))
        if t is None or self.gpu or not delays or len(delays) + len(self.known) > 2:
            return build()
        d = delays[0]
        sides = []
        for inside in (True, False):
            self.known[d] = inside
            try:
                sides.append(self.unswitched(nids, t, b, build))
            finally:
                del self.known[d]
        return tir.IfThenElse(self.inside(d, t, b), sides[0], sides[1])

    def past(self, read: Read, s: Any, b: Any, idx: Any) -> Any:
        """The initial value ``read`` gives at step ``s`` (before 0, or past the row's end)."""
        init = self.init_buf[read]
        if read.delay <= 1:
            return init[(b, *idx)]
        d = read.delay  # u(s) for s in [-d, -1] is past value d + s
        return init[(tir.max(tir.min(s + i64(d), i64(d - 1)), i64(0)), b, *idx)]

    def out(self, nid: int, t: Any, b: Any) -> Acc:
        buf = self.node_buf[nid]
        t_ = self.g.nodes[nid]["type"]
        shape = self.row(nid)
        if not t_.batched:
            return Acc(
                shape,
                lambda idx: buf[tuple(idx)],
                lambda idx, v: tir.BufferStore(buf, v, list(idx)),
                self.elem(t_),
            )
        lead = self.lead(nid, t, b)
        return Acc(
            shape,
            lambda idx: buf[(*lead, *idx)],
            lambda idx, v: tir.BufferStore(buf, v, [*lead, *idx]),
            self.elem(t_),
        )

    def node_stmt(self, nid: int, t: Any, b: Any) -> Any:
        """The statement computing node ``nid`` at step ``t`` for batch row ``b``."""
        return self.unswitched([nid], t, b, lambda: self._node_stmt(nid, t, b))

    def _node_stmt(self, nid: int, t: Any, b: Any) -> Any:
        d = self.g.nodes[nid]
        if d["op"] == "int_matmul" and self.vnni(nid):
            return self.vnni_matmul(nid, t, b)
        rule = RULES.get(d["op"])
        if rule is None:
            raise CompileError(
                f"the TVM backend has no rule for op {d['op']!r} (node {d['name']!r}); "
                f"it lowers {sorted(RULES)}. Use target='onnx' for this graph"
            )
        args = [self.acc(r, t, b) for r in self.p.reads[nid]]
        out = self.out(nid, t, b)
        if d["op"] == "matmul" and self.blocked and not self.gpu:  # (two signals)
            blocked = _gemm.signal_product(args[0], args[1], out, self.plan)
            if blocked is not None:
                return blocked
        post = t is None  # after the steps: on the GPU, a kernel of its own
        if self.gpu and d["op"] in ELEMENTS:  # the elements shared out over the threads
            element = ELEMENTS[d["op"]](_NodeView(d), out.shape, out.dtype, args)
            share = self.grid if post else self.spread
            return share(out.shape, lambda idx: out.store(idx, element(idx)))
        extra: dict[str, Any] = {}  # (what a rule asks for beside its operands)
        if d["op"] in NEEDS_SCRATCH:
            extra["scratch"] = self.scratch(nid, t, b)
        if d["op"] in NEEDS_ROW:
            extra["row"] = b
        if d["op"] in NEEDS_TARGET:
            extra["gpu"] = self.gpu
        if nid in self.tables:
            extra["in_place"] = True
        stmt = rule(_NodeView(d), out, args, **extra)
        if self.gpu and post:  # a rule's loops as they are, on one thread
            return self.grid((), lambda _: stmt)
        if self.gpu:  # a rule's loops as they are (reductions...), on the block's first thread
            return self.phase(tir.IfThenElse(self.tx == i64(0), stmt, None))
        return stmt

    def vnni(self, nid: int) -> bool:
        """Whether integer product ``nid`` runs on the CPU's dot product (``vpdpbusd``,
        ``vpmaddwd``, ``sdot``: :data:`_gemm.DOTS`): an int8 or int16 signal the
        instruction takes times a static int8 weight with no zero point."""
        if self.gpu or not self.blocked or not self.plan.cpu.int8_dot:
            return False
        (ra, rb), d = self.p.reads[nid], self.g.nodes[nid]
        ta, tb = (self.g.nodes[r.source]["type"] for r in (ra, rb))
        return (
            (self.plan.cpu.int8_dot, ta.dtype) in _gemm.DOTS and tb.dtype == "int8"
            and not tb.batched
            and tb.rank == 2 and int(d["attrs"]["zero_points"][1]) == 0
            and rb.source in self.node_buf
        )  # fmt: skip

    def vnni_operands(self, nid: int) -> tuple[Read, int, int, int, str, str, Any, Any]:
        """Integer product ``nid``'s signal, ``K``, ``N``, the signal's zero point and
        kind, the dot product, and the weight's words and column sums (one copy of each
        layout per weight, an argument filled when the model is built)."""
        ra, rb = self.p.reads[nid]
        K, N = (int(v) for v in self.g.nodes[rb.source]["type"].shape)
        za = int(self.g.nodes[nid]["attrs"]["zero_points"][0])
        kind = self.g.nodes[ra.source]["type"].dtype
        dot = self.plan.cpu.int8_dot
        layout = _gemm.DOTS[(dot, kind)].layout
        key = (rb.source, layout)
        if key not in self.vnni_weights:
            name = self.g.nodes[rb.source]["name"]
            self.vnni_weights[key] = tuple(
                self.add_arg(
                    Arg(
                        "static",
                        f"{name}.{lay}",
                        _gemm.vnni_shape(K, N, lay),
                        "int32",
                        rb.source,
                        layout=lay,
                    )
                )
                for lay in (layout, "colsum")
            )
        words, colsum = self.vnni_weights[key]
        return ra, K, N, za, kind, dot, words, colsum

    def vnni_matmul(self, nid: int, t: Any, b: Any) -> Any:
        """Integer product ``nid`` at step ``t``, row ``b`` by :func:`_gemm.vnni_product`,
        for every leading index of the signal's row."""
        ra, K, N, za, kind, dot, words, colsum = self.vnni_operands(nid)
        a, out = self.acc(ra, t, b), self.out(nid, t, b)
        lead = list(self.row(nid)[:-1])
        return loops(
            lead,
            lambda idx: _gemm.vnni_product(
                dot, K, N, kind, lambda _, k: a.load([*idx, k]), za, words, colsum,
                lambda _, col, v: out.store([*idx, col], v),
            ),
            "v",
        )  # fmt: skip

    def vnni_rows_matmul(self, nid: int, t: Any) -> Any:
        """Integer product ``nid`` at step ``t`` for every batch row, several rows at a
        time (:func:`_gemm.vnni_rows`: each weight vector loaded once for all of them, so
        a weight bigger than L1 is read from L2 once per group, not once per row); a
        last, partial group repeats its last row (the same values stored again). Fewer
        rows than a group: one at a time. None where one row at a time is all there is."""
        if self.row(nid)[:-1]:
            return None
        ra, K, N, za, kind, dot, words, colsum = self.vnni_operands(nid)
        rows = _gemm.vnni_rows(dot, kind)
        if rows == 1:
            return None
        blk, count = tir.Var("rb", I64), self.hi - self.lo

        def at(r: Any) -> Any:  # (the last group's rows past the end: its last row again)
            return tir.min(self.lo + blk * i64(rows) + r, self.hi - i64(1))

        product = _gemm.vnni_product(
            dot, K, N, kind, lambda r, k: self.acc(ra, t, at(r)).load([k]), za, words, colsum,
            lambda r, col, v: self.out(nid, t, at(r)).store([col], v), rows=rows,
        )  # fmt: skip
        kind_ = tir.ForKind.PARALLEL if self.threads else tir.ForKind.SERIAL
        n_groups = tir.floordiv(count + i64(rows - 1), i64(rows))
        groups = tir.For(blk, i64(0), n_groups, kind_, product)
        b = self.bvar()
        single = self.batch_loop(self.vnni_matmul(nid, t, b), b)
        return tir.IfThenElse(count >= i64(rows), groups, single)

    def scratch(self, nid: int, t: Any, b: Any) -> Any:
        """Temporaries for node ``nid``'s rule: buffers the caller allocates, like the node's
        (of the model's float type unless a rule asks for another)."""
        batched = self.g.nodes[nid]["type"].batched
        name = self.g.nodes[nid]["name"]

        def make(shape: list[int], dtype: str | None = None) -> Acc:
            full = ("T", "B", *shape) if batched else tuple(shape)
            buf = self.add_arg(Arg("node", f"{name}.scratch", full, dtype or self.dtype))
            lead = [t, b] if batched else []
            return Acc(
                tuple(shape),
                lambda idx: buf[(*lead, *idx)],
                lambda idx, v: tir.BufferStore(buf, v, [*lead, *idx]),
                dtype or self.dtype,
            )

        return make

    # ------------------------------------------------------------ regions
    def bvar(self) -> Any:
        return self.row_b if self.gpu else tir.Var("b", I64)

    def batch_loop(self, body: Any, b: Any) -> Any:
        """``body`` for every batch row ``b`` of this part of the kernel."""
        if self.gpu:
            return body
        kind = tir.ForKind.PARALLEL if self.threads else tir.ForKind.SERIAL
        return tir.For(b, self.lo, self.hi - self.lo, kind, body)

    def parallel(self, nid: int) -> Any:
        t, b = tir.Var("t", I64), self.bvar()
        whole = self.blocked_matmul(nid, None)
        if whole is not None:
            return whole
        stmt = self.rows_matmul(nid, t)
        if stmt is None:
            stmt = self.batch_loop(self.node_stmt(nid, t, b), b)
        return tir.For(t, i64(0), self.T, tir.ForKind.SERIAL, stmt)

    def matmul_operands(self, nid: int) -> tuple[Read, Read, int, int] | None:
        """``(a, W, K, N)`` of a signal ``(B, ..., K)`` times a weight ``(K, N)``, or None."""
        d = self.g.nodes[nid]
        if d["op"] != "matmul":
            return None
        ra, rb = self.p.reads[nid]
        ta, tb = (self.g.nodes[r.source]["type"] for r in (ra, rb))
        if not (ta.batched and ta.rank >= 2 and not tb.batched and tb.rank == 2):
            return None
        K, N = (int(v) for v in tb.shape)
        return ra, rb, K, N

    def packed(self, *nids: int) -> Any:
        """The buffer of weight node ``nids[0]`` packed in panels (an argument the caller
        fills); of weights ``nids`` stacked along ``K``, if several."""
        if nids not in self.panels:
            shapes = [[int(v) for v in self.g.nodes[n]["type"].shape] for n in nids]
            K, N = sum(k for k, _ in shapes), shapes[0][1]
            nr = self.plan.panel_width(self.dtype)
            self.panels[nids] = self.add_arg(
                Arg(
                    "static",
                    "+".join(self.g.nodes[n]["name"] for n in nids),
                    (-(-N // nr), K, nr),
                    self.dtype,
                    None if len(nids) > 1 else nids[0],
                    pack=nr,
                    stack=nids if len(nids) > 1 else (),
                )
            )
        return self.panels[nids]

    def blocked_matmul(self, nid: int, t: Any, span: tuple[Any, Any] | None = None) -> Any:
        """``x @ W`` by the blocked kernel at step ``t`` (None: every step at once, or the
        ``span`` ``(first, count)`` of steps), or None.

        The rows are every (step,) batch row and leading row index of ``x``
        (a recursive net's nodes of a level: ``(M, K)`` per batch row), in
        row-major order; a delayed operand is first copied to a row buffer.
        """
        ops = self.matmul_operands(nid)
        if not self.blocked or ops is None:
            return None
        if nid in self.stacking and t is not None:
            return self.stacked_matmul(nid, t)
        ra, rb, K, N = ops
        w = self.packed(rb.source)
        lead = list(self.row(ra.source)[:-1])
        per_row = i64(1)
        for n in lead:
            per_row = per_row * extent(n)
        group = (self.hi - self.lo) * per_row

        def unravel(r: Any) -> list[Any]:  # batch row and leading indices of row r
            idx = []
            for n in reversed(lead):
                size = extent(n) if isinstance(n, int) else tir.max(extent(n), i64(1))
                idx.append(tir.floormod(r, size))
                r = tir.floordiv(r, size)
            return [self.lo + r, *reversed(idx)]

        if t is None:
            if ra.delay:
                return None  # a tap: step by step below
            a = self.node_buf[ra.source]
            start, count = span or (i64(0), self.T)

            # (a group of rows may be empty: TVM's common-subexpression pass can move a
            # division out of the condition that guards it, so never divide by zero;
            # likewise a symbolic leading size in unravel)
            per_step = tir.max(group, i64(1))

            def at(r: Any) -> list[Any]:  # step-major
                return [start + tir.floordiv(r, per_step), *unravel(tir.floormod(r, per_step))]

            return _gemm.product(
                count * group,
                lambda idx, k: a[(*idx, k)],
                w,
                K,
                N,
                lambda r, col, v: self.put(nid, at(r)[0], at(r)[1:], col, v),
                self.dtype,
                self.plan,
                threads=self.threads,
                index=at,
                table=self.index_table(nid, K, 2 + len(lead)),
            )
        first: list[Any] = []
        if ra.delay:  # the previous step's rows (or the initial value) in one buffer
            name = self.g.nodes[nid]["name"]
            rows_buf = self.add_arg(Arg("node", f"{name}.rows", ("B", *lead, K), self.dtype))
            b = self.bvar()

            def copy() -> Any:
                src = self.acc(ra, t, b)
                return loops(
                    [*lead, K], lambda i: tir.BufferStore(rows_buf, src.load(i), [b, *i]), "c"
                )

            first.append(self.batch_loop(self.unswitched([nid], t, b, copy), b))

            def load(at: list[Any], k: Any) -> Any:
                return rows_buf[(*at, k)]
        else:
            a = self.node_buf[ra.source]

            def load(at: list[Any], k: Any) -> Any:
                return a[(*self.lead(ra.source, t, at[0]), *at[1:], k)]

        prod = _gemm.product(
            group,
            load if lead else (lambda r, k: load(unravel(r), k)),
            w,
            K,
            N,
            lambda r, col, v: self.put(nid, t, unravel(r), col, v),
            self.dtype,
            self.plan,
            chunked=bool(lead),  # a batch's rows: one chunk; a level's nodes: many
            threads=self.threads,
            index=unravel if lead else None,  # (a batch row alone needs no division)
            table=self.index_table(nid, K, 1 + len(lead)) if lead else None,
        )
        return seq([*first, prod])

    def index_table(self, nid: int, k_size: int, n_index: int) -> tuple[Any, Any]:
        """Where product ``nid`` keeps a chunk's rows' indices (see ``_gemm.product``):
        a buffer the caller provides, one part per group of rows that runs at once."""
        size = _gemm.table_size(k_size, self.dtype, self.plan, n_index)
        if nid not in self.row_tables:
            parts = self.groups if self.rows == "parallel" else 1
            name = f"{self.g.nodes[nid]['name']}.rows"
            self.row_tables[nid] = self.add_arg(Arg("node", name, (size * parts,), "int64"))
        base = self.row_b * i64(size) if self.rows == "parallel" else i64(0)
        return self.row_tables[nid], base

    def stacked_matmul(self, nid: int, t: Any) -> Any:
        """Product ``nid`` (``h W``) and the input product it absorbs (``x_t U``) at step
        ``t`` as one: ``[x_t | h] @ [U; W]``, the rows copied side by side into one
        buffer, the epilogue reading the absorbed product as zero (see :meth:`stackable`)."""
        ra, rb, K, N = self.matmul_operands(nid)  # type: ignore[misc]
        xa, xb, KX, _ = self.matmul_operands(self.stacking[nid])  # type: ignore[misc]
        name = self.g.nodes[nid]["name"]
        rows_buf = self.add_arg(Arg("node", f"{name}.stacked", ("B", KX + K), self.dtype))
        b = self.bvar()

        def copy() -> Any:
            x, h = self.acc(xa, t, b), self.acc(ra, t, b)
            return seq(
                [
                    loops([KX], lambda i: tir.BufferStore(rows_buf, x.load(i), [b, *i]), "c"),
                    loops([K], lambda i: tir.BufferStore(rows_buf, h.load(i), [b, i[0] + KX]), "c"),
                ]
            )

        prod = _gemm.product(
            self.hi - self.lo,
            lambda r, k: rows_buf[self.lo + r, k],
            self.packed(xb.source, rb.source),
            KX + K,
            N,
            lambda r, col, v: self.put(nid, t, [self.lo + r], col, v),
            self.dtype,
            self.plan,
            chunked=False,
            threads=self.threads,
        )
        return seq(
            [self.batch_loop(self.unswitched([nid, self.stacking[nid]], t, b, copy), b), prod]
        )

    def put(self, nid: int, t: Any, at: list[Any], col: Any, v: Any) -> Any:
        """Store the sum ``v`` of product ``nid`` at step ``t``, row ``at`` (batch row, leading
        indices), column ``col``: as it is, or through the consumer it is fused into."""
        b, lead = at[0], at[1:]
        c = self.epilogues.get(nid)
        if c is None:
            return self.out(nid, t, b).store([*lead, col], v)
        d = self.g.nodes[c]
        mine = Acc(self.row(nid), lambda idx: v, read_only, self.dtype)
        args = [mine if r.source == nid else self.acc(r, t, b) for r in self.p.reads[c]]
        element = ELEMENTS[d["op"]](_NodeView(d), self.row(c), self.elem(d["type"]), args)
        return self.out(c, t, b).store([*lead, col], element([*lead, col]))

    def rows_matmul(self, nid: int, t: Any) -> Any:
        """``x @ W`` of a signal ``(B, K)`` and a weight ``(K, N)`` at step ``t``, or None.

        The blocked kernel on CPUs; on GPUs one output column per thread (the
        threads of a warp read consecutive columns of a weight row: one
        transaction), accumulated over ``k`` in a register and stored through
        the product's epilogue.
        """
        blocked = self.blocked_matmul(nid, t)
        if blocked is not None:
            return blocked
        if self.g.nodes[nid]["op"] == "int_matmul" and self.vnni(nid):
            return self.vnni_rows_matmul(nid, t)
        ops = self.matmul_operands(nid)
        if not self.gpu or ops is None or len(self.row(ops[0].source)) != 1:
            return None
        ra, rb, K, N = ops
        w = self.node_buf[rb.source]
        b, k = self.bvar(), tir.Var("k", I64)
        a = self.acc(ra, t, b)
        reg = tir.decl_buffer((i64(1),), self.dtype, name="acc", scope="local")
        zero = i64(0)

        def column(col: Any) -> Any:
            return tir.SeqStmt(
                [
                    tir.AllocBuffer(reg),
                    tir.BufferStore(reg, tir.const(0, self.dtype), [zero]),
                    tir.For(
                        k,
                        i64(0),
                        i64(K),
                        tir.ForKind.SERIAL,
                        tir.BufferStore(reg, reg[zero] + a.load([k]) * w[k, col], [zero]),
                    ),
                    self.put(nid, t, [b], col, reg[zero]),
                ]
            )

        return self.spread((N,), lambda idx: column(idx[0]))

    # ------------------------------------------------------------ GPU blocks
    def grid(self, shape: Any, body: Any) -> Any:
        """``body(indices)`` for every element of ``shape``, once the rows' work is done
        (sums over steps and what follows them). On the GPU a kernel of its own,
        launched after the rows' kernel (so it reads every block's results), one thread
        per element; emulated, its blocks and threads one after another."""
        if not self.gpu:
            return loops(shape, body)
        n = i64(self.block_threads)
        size = _size(shape)
        gx, tx = tir.Var("gx", I64), tir.Var("gtx", I64)
        flat = gx * n + tx
        work = tir.IfThenElse(flat < size, body(_unravel(flat, shape)), None)
        blocks = tir.floordiv(size + n - i64(1), n)
        if self.emulated:
            threads = tir.For(tx, i64(0), n, tir.ForKind.SERIAL, work)
            return tir.For(gx, i64(0), blocks, tir.ForKind.SERIAL, threads)
        return self.bind(gx, blocks, "blockIdx.x", self.bind(tx, n, "threadIdx.x", work))

    def summed(self, nid: int, idx: list[Any]) -> Any:
        """Element ``idx`` of a sum over steps (and rows, and leading axes), from zero."""
        t, b = tir.Var("t", I64), tir.Var("b", I64)
        reg = tir.decl_buffer((i64(1),), self.dtype, name="sum", scope="local")
        zero = i64(0)

        def add(at: list[Any]) -> Any:
            return tir.BufferStore(reg, reg[zero] + self.summand(nid, t, b, at, idx), [zero])

        steps = tir.For(
            t,
            i64(0),
            self.T,
            tir.ForKind.SERIAL,
            tir.For(b, i64(0), self.B, tir.ForKind.SERIAL, loops(self.summed_axes(nid), add, "l")),
        )
        zeroed = tir.BufferStore(reg, tir.const(0, self.dtype), [zero])
        out = tir.BufferStore(self.node_buf[nid], reg[zero], list(idx))
        return tir.SeqStmt([tir.AllocBuffer(reg), zeroed, steps, out])

    def summed_axes(self, nid: int) -> tuple[Any, ...]:
        """The leading row axes a sum adds up besides steps and rows (``total_outer``'s)."""
        if self.g.nodes[nid]["op"] == "total":
            return ()
        return self.row(self.p.reads[nid][0].source)[:-1]

    def summand(self, nid: int, t: Any, b: Any, at: list[Any], idx: list[Any]) -> Any:
        """The term of sum ``nid`` at step ``t``, row ``b``, leading indices ``at``, element
        ``idx`` (``total``: the operand; ``total_outer``: the outer product of its two),
        zero past the row's length."""
        reads = self.p.reads[nid]
        if self.g.nodes[nid]["op"] == "total":
            v = self.node_buf[reads[0].source][(t, b, *idx)]
        else:
            (a, c), (i, j) = (self.node_buf[r.source] for r in reads), idx
            v = a[(t, b, *at, i)] * c[(t, b, *at, j)]
        return self.valid(v, t, b)

    @functools.cached_property
    def block_threads(self) -> int:
        """Threads per block on the GPU: one per element of the widest row a node computes
        (a product's columns included), in whole warps of 32, at most ``block``."""
        widest = 1
        for nid in self.g.nodes:
            t = self.g.nodes[nid]["type"]
            if t.batched:
                n = 1
                for d in t.row_shape:
                    n *= d if isinstance(d, int) else 64  # (a data-sized axis: a guess)
                widest = max(widest, n)
        return int(min(self.max_block, -(-widest // 32) * 32))

    def phase(self, work: Any) -> Any:
        """One node's work in a GPU block: ``work`` is one thread's share (index
        ``self.tx``); the barrier after it makes every thread's stores visible to the
        next node's readers. Emulated: the threads' shares one after another."""
        if not self.gpu:
            return work
        if self.emulated:
            return tir.For(self.tx, i64(0), i64(self.block_threads), tir.ForKind.SERIAL, work)
        return tir.SeqStmt([work, tir.Evaluate(tir.op.tvm_storage_sync("shared"))])

    def spread(self, shape: Any, body: Any, hint: str = "i") -> Any:
        """A loop nest over ``shape`` around ``body(indices)``; on the GPU one phase, the
        elements dealt out to the block's threads (element ``e`` to thread ``e mod n``:
        neighbouring threads, neighbouring addresses)."""
        if not self.gpu:
            return loops(shape, body, hint)
        n = i64(self.block_threads)
        size = _size(shape)
        o = tir.Var(f"{hint}o", I64)
        flat = o * n + self.tx
        share = tir.IfThenElse(flat < size, body(_unravel(flat, shape)), None)
        return self.phase(
            tir.For(o, i64(0), tir.floordiv(size + n - i64(1), n), tir.ForKind.SERIAL, share)
        )

    def ahead_of(self) -> dict[int, RecurrentRegion]:
        """Time-parallel products read only inside one loop: product -> that loop.

        Computed over every step up front (an LSTM's input projection), their
        results would be written for the whole sequence and read back step by
        step, from memory once they outgrow the caches; instead the loop
        computes them a few steps at a time (:attr:`Plan.ahead_rows` rows: enough for
        the blocked kernel to reuse each weight panel), just before it reads them.
        """
        if not self.blocked or self.gpu:
            return {}
        found: dict[int, RecurrentRegion] = {}
        part_of = self.part_of
        for nid, part in part_of.items():
            ops = self.matmul_operands(nid)
            if not isinstance(part, ParallelRegion) or ops is None or ops[0].delay:
                continue
            if nid in self.epilogues or nid in self.kept or self.row(ops[0].source)[:-1]:
                continue  # (rows with leading axes, a recursive net's: left whole)
            places: list[Any] = []
            for _, u, e in self.g.out_edges(nid, data=True):
                while u in self.inlined and not e["delay"]:  # evaluated where it is read
                    _, u, e = next(iter(self.g.out_edges(u, data=True)))
                places.append(None if e["delay"] else part_of.get(u))
            loop = places[0]
            if isinstance(loop, RecurrentRegion) and all(x is loop for x in places):
                found[nid] = loop
        return found

    def stackable(self) -> dict[int, int]:
        """Recurrent products that absorb their loop's input product: product -> absorbed.

        An LSTM's gates are ``x_t U + b + h_{t-1} W``: the input product ``x_t
        U`` is computed ahead (:meth:`ahead_of`), stored, and read back by the
        recurrent product's epilogue. With a batch of a few rows or more, one
        product over the rows ``[x_t | h_{t-1}]`` and the weight ``[U; W]``
        (stacked once, when the model is built) does the same work in one pass:
        no input product's stores and loads, one product with a longer ``K``.
        The absorbed product must be added in the epilogue and nowhere else:
        its consumer, or the one inlined ``add`` between them, must be that
        epilogue's ``add``, read once each; both products take rows without
        leading axes and give ``N`` columns, and the recurrent weight must be
        bigger than L1 (:attr:`Plan.streamed_bytes`: a smaller one gains little, and
        the loop's code would be twice as long to compile). Used from
        :attr:`Plan.stack_rows` batch rows (fewer: the input product stays ahead,
        where it reuses each panel over many steps' rows).
        """
        if self.gpu:
            return {}
        found: dict[int, int] = {}
        for m, c in self.epilogues.items():
            ops = self.matmul_operands(m)
            part = self.part_of.get(m)
            if ops is None or not isinstance(part, RecurrentRegion) or self.row(m)[:-1]:
                continue
            if self.row(ops[0].source)[:-1] or self.g.nodes[c]["op"] != "add":
                continue
            if not _gemm.streamed(ops[2], ops[3], self.dtype, self.plan):
                continue
            others = [r for r in self.p.reads[c] if r.source != m]
            if len(others) != 1 or others[0].delay:
                continue
            u = others[0].source
            candidates = [u]
            if u in self.inlined and self.g.nodes[u]["op"] == "add":
                candidates = [r.source for r in self.p.reads[u] if not r.delay]
            for a in candidates:
                x = self.matmul_operands(a)
                if a in self.ahead and self.ahead[a] is part and x is not None:
                    edges = [(v, e["delay"]) for _, v, e in self.g.out_edges(a, data=True)]
                    if edges == [(u if u != a else c, 0)] and x[3] == ops[3]:
                        found[m] = a
                        break
        return found

    def recurrent(self, region: RecurrentRegion) -> Any:
        """The loop of ``region``; with products to stack (:meth:`stackable`), two: the
        stacked one for :attr:`Plan.stack_rows` batch rows or more, the other below."""
        stacked = {m: a for m, a in self.stacks.items() if self.part_of[m] is region}
        if not stacked:
            return self.loop(region)
        plain = self.loop(region)
        self.stacking = stacked
        try:
            together = self.loop(region)
        finally:
            self.stacking = {}
        wide = self.hi - self.lo >= i64(self.plan.stack_rows)
        return tir.IfThenElse(wide, together, plain)

    def loop(self, region: RecurrentRegion) -> Any:
        tt = tir.Var("tt", I64)
        t = tt if region.direction >= 0 else self.T - i64(1) - tt
        body, first = [], []
        absorbed = set(self.stacking.values())
        ahead = [m for m, loop in self.ahead.items() if loop is region and m not in absorbed]
        if ahead:
            width = tir.max(self.hi - self.lo, i64(1))  # (a group of rows may be empty)
            steps = tir.max(i64(1), tir.floordiv(i64(self.plan.ahead_rows), width))
            count = tir.min(steps, self.T - tt)
            span = (tt, count) if region.direction >= 0 else (self.T - tt - count, count)
            chunk = seq([self.blocked_matmul(m, None, span) for m in ahead])
            body.append(tir.IfThenElse(tir.floormod(tt, steps) == i64(0), chunk, None))
        states = {c.consumer for c in self.tables.values()}
        for carry in region.carries:
            if carry.source in self.tables:  # the table starts as the initial value
                first.append(self.fill(carry))
        # Consecutive nodes computed row by row share one loop over the rows (rows never
        # read each other within a step): a row's values stay in cache from one node to
        # the next, and with threads, one parallel phase (one barrier) instead of one per node.
        rows: list[Any] = []
        b = self.bvar()
        for nid in region.nodes:
            if nid in self.inlined or nid in states or nid in self.epilogues:
                continue  # (a table's state is the table; a fused product runs at its consumer)
            stmt = self.rows_matmul(self.fused_at.get(nid, nid), t)
            if stmt is None:
                rows.append(self.node_stmt(nid, t, b))
                continue
            if rows:
                body.append(self.batch_loop(seq(rows), b))
                rows, b = [], self.bvar()
            body.append(stmt)
        if rows:
            body.append(self.batch_loop(seq(rows), b))
        return seq([*first, self.time_loop(tt, seq(body), region.unroll)])

    def time_loop(self, tt: Any, body: Any, k: int) -> Any:
        """``body`` for every step ``tt``: a loop of ``k`` steps per iteration, written
        out (``rg.compile(unroll=k)``; ``k`` = the sequence length: no loop for it), and
        the steps left over in a plain loop, so every length still runs."""
        if k <= 1:
            return tir.For(tt, i64(0), self.T, tir.ForKind.SERIAL, body)
        to, ti, tr = (tir.Var(v, I64) for v in ("to", "ti", "tr"))
        whole = tir.floordiv(self.T, i64(k)) * i64(k)

        def at(step: Any) -> Any:  # the body with tt bound to ``step``
            return tir.SeqStmt([tir.LetStmt(tt, step), body])

        unrolled = tir.For(ti, i64(0), i64(k), tir.ForKind.UNROLLED, at(to * i64(k) + ti))
        main = tir.For(to, i64(0), tir.floordiv(self.T, i64(k)), tir.ForKind.SERIAL, unrolled)
        rest = tir.For(tr, whole, self.T - whole, tir.ForKind.SERIAL, at(tr))
        return tir.SeqStmt([main, rest])

    def fill(self, carry: Read) -> Any:
        """Copy ``carry``'s initial value into the table updated in place."""
        b, buf, init = self.bvar(), self.node_buf[carry.source], self.init_buf[carry]
        row = self.row(carry.source)
        return self.batch_loop(
            self.spread(row, lambda i: tir.BufferStore(buf, init[(b, *i)], [b, *i])), b
        )

    def total(self, nid: int) -> Any:
        if self.gpu:  # one thread per element, each summing its steps and rows
            return self.grid(self.row(nid), lambda idx: self.summed(nid, idx))
        if self.blocked and self.g.nodes[nid]["op"] == "total_outer":
            blocked = self.outer_total(nid)
            if blocked is not None:
                return blocked
        outb = self.node_buf[nid]
        shape = self.row(nid)
        t, b = tir.Var("t", I64), tir.Var("b", I64)
        init = loops(shape, lambda idx: tir.BufferStore(outb, tir.const(0, self.dtype), idx), "z")

        def add(at: list[Any]) -> Any:  # every element's term at leading indices ``at``
            def one(idx: list[Any]) -> Any:
                return tir.BufferStore(
                    outb, outb[tuple(idx)] + self.summand(nid, t, b, at, idx), idx
                )

            return loops(shape, one, "o")

        acc = loops(self.summed_axes(nid), add, "l")
        rows = tir.For(b, i64(0), self.B, tir.ForKind.SERIAL, acc)  # across rows: never per row
        steps = tir.For(t, i64(0), self.T, tir.ForKind.SERIAL, rows)
        return tir.SeqStmt([init, steps])

    def outer_total(self, nid: int) -> Any:
        """``total_outer`` (a weight's gradient: ``Σ a ⊗ c`` over steps, rows and leading
        axes) as blocked products, or None for a sum that is not a matrix: the terms are
        taken in chunks of ``kc``; each chunk's ``c`` is packed in panels (the product's
        weight) and its ``a`` by columns, and ``out += aᵀ c`` by :func:`_gemm.product` —
        the out rows in registers, not one read and write of ``out`` per term. A chunk past
        the last term (or a step past a row's length) packs zeros."""
        shape = self.row(nid)
        if len(shape) != 2 or not all(isinstance(d, int) for d in shape):
            return None
        n_i, n_j = (int(d) for d in shape)
        ra, rc = self.p.reads[nid]
        a_buf, c_buf, outb = self.node_buf[ra.source], self.node_buf[rc.source], self.node_buf[nid]
        lead = list(self.summed_axes(nid))
        per_b = _size(lead)
        terms = self.T * self.B * per_b
        nr = self.plan.panel_width(self.dtype)
        n_panels = -(-n_j // nr)
        item = np.dtype(self.dtype).itemsize
        kc = int(np.clip(self.plan.chunk_bytes // (n_panels * nr * item), 16, 1024)) // 8 * 8
        name = self.g.nodes[nid]["name"]
        cols = self.add_arg(Arg("node", f"{name}.columns", (kc, n_i), self.dtype))
        panels = self.add_arg(Arg("node", f"{name}.panels", (n_panels, kc, nr), self.dtype))
        ch, kk, j = (tir.Var(v, I64) for v in ("ch", "kk", "j"))
        g = ch * i64(kc) + kk
        gc = tir.min(g, terms - i64(1))  # (a chunk's zeros past the end read the last term)
        t = tir.floordiv(gc, tir.max(self.B * per_b, i64(1)))
        rest = tir.floormod(gc, tir.max(self.B * per_b, i64(1)))
        b = tir.floordiv(rest, tir.max(per_b, i64(1)))
        at = _unravel(tir.floormod(rest, tir.max(per_b, i64(1))), lead)
        zero = tir.const(0, self.dtype)

        def term(buf: Any, e: Any) -> Any:
            v = self.valid(buf[(t, b, *at, e)], t, b)
            return tir.Select(g < terms, v, zero)

        q = tir.Var("q", I64)
        whole = n_j // nr  # (panels of real columns only: contiguous vector copies)
        panel_rows = [
            tir.For(q, i64(0), i64(whole), tir.ForKind.SERIAL, tir.For(
                j, i64(0), i64(nr), tir.ForKind.VECTORIZED,
                tir.BufferStore(panels, term(c_buf, q * i64(nr) + j), [q, kk, j]),
            ))
        ] if whole else []  # fmt: skip
        if n_j % nr:  # the last panel, partly padding
            panel_rows.append(tir.For(j, i64(0), i64(nr), tir.ForKind.SERIAL, tir.BufferStore(
                panels,
                tir.Select(i64(whole * nr) + j < i64(n_j),
                           term(c_buf, tir.min(i64(whole * nr) + j, i64(n_j - 1))), zero),
                [i64(whole), kk, j],
            )))  # fmt: skip
        pack = tir.For(
            kk,
            i64(0),
            i64(kc),
            tir.ForKind.SERIAL,
            seq([*_vector_rows(n_i, nr, lambda e: tir.BufferStore(cols, term(a_buf, e), [kk, e])),
                 *panel_rows]),
        )  # fmt: skip

        def add(r: Any, c: Any, v: Any) -> Any:
            return tir.BufferStore(outb, outb[r, c] + v, [r, c])

        prod = _gemm.product(
            i64(n_i),
            lambda r, k: cols[k, r],
            panels,
            kc,
            n_j,
            add,
            self.dtype,
            self.plan,
            chunked=False,
            threads=self.groups > 1,
        )
        chunks = tir.For(
            ch,
            i64(0),
            tir.floordiv(terms + i64(kc - 1), i64(kc)),
            tir.ForKind.SERIAL,
            seq([pack, prod]),
        )
        init = loops(shape, lambda idx: tir.BufferStore(outb, zero, idx), "z")
        return seq([init, chunks])

    def valid(self, v: Any, t: Any, b: Any, dtype: str | None = None) -> Any:
        """``v`` at step ``t`` of row ``b``, zero past the row's length."""
        if not self.with_lens:
            return v
        return tir.Select(t < self.lens[b], v, tir.const(0, dtype or self.dtype))

    # ------------------------------------------------------------ results
    def results(self) -> tuple[list[Any], list[Any]]:
        """Copies of the outputs and final states (per row), and of the sums (after them)."""
        stmts, sums = [], []
        graph = self.p.graph
        for name, nid in graph.output_nodes().items():
            t_ = self.g.nodes[nid]["type"]
            src = self.node_buf[nid]
            if self.written.get(nid) == name:
                continue  # computed in place
            if not t_.batched:
                dst = self.add_arg(Arg("total", name, self.row(nid), self.elem(t_), nid))

                def keep(idx: list[Any], dst: Any = dst, src: Any = src) -> Any:
                    return tir.BufferStore(dst, src[tuple(idx)], idx)

                sums.append(self.grid(self.row(nid), keep))
                continue
            dst = self.add_arg(Arg("output", name, ("T", "B", *self.row(nid)), self.elem(t_), nid))
            t, b = tir.Var("t", I64), self.bvar()

            lead = [b] if nid in self.per_seq else [t, b]  # (one value for every step)

            def copy(
                idx: list[Any], dst: Any = dst, src: Any = src, t: Any = t, b: Any = b, lead=lead
            ) -> Any:
                v = self.valid(src[(*lead, *idx)], t, b, dst.dtype)
                return tir.BufferStore(dst, v, [t, b, *idx])

            stmts.append(
                tir.For(
                    t,
                    i64(0),
                    self.T,
                    tir.ForKind.SERIAL,
                    self.batch_loop(self.spread(self.row(nid), copy), b),
                )
            )
        for name, read in self.p.finals.items():
            t_ = self.g.nodes[read.source]["type"]
            dst = self.add_arg(Arg("final", name, ("B", *self.row(read.source)), self.elem(t_)))
            src = self.node_buf[read.source]
            b = self.bvar()
            n = self.bound(b)
            step = tir.max(n - i64(1), i64(0)) if read.delay > 0 else i64(0)

            def last(
                idx: list[Any],
                dst: Any = dst,
                src: Any = src,
                read: Read = read,
                b: Any = b,
                n: Any = n,
                step: Any = step,
                table: bool = read.source in self.tables,
            ) -> Any:
                if table:  # updated in place from the initial value: its last value
                    return tir.BufferStore(dst, src[(b, *idx)], [b, *idx])
                v = tir.if_then_else(
                    n > i64(0), src[(step, b, *idx)], self.past(read, i64(-1), b, idx)
                )
                return tir.BufferStore(dst, v, [b, *idx])

            stmts.append(self.batch_loop(self.spread(self.row(read.source), last), b))
        return stmts, sums

    @staticmethod
    def bind(var: Any, n: Any, tag: str, body: Any) -> Any:
        """``body`` for ``var`` in ``[0, n)``, one GPU block or thread each (``tag``)."""
        binding = tir.IterVar(None, var, tir.IterVar.ThreadIndex, tag)
        return tir.For(var, i64(0), n, tir.ForKind.THREAD_BINDING, body, thread_binding=binding)

    def generate(self) -> Kernel:
        self.declare()
        self.ahead = self.ahead_of()
        self.stacks = self.stackable()
        body = []
        for nid in self.p.per_sequence:  # once, before the steps (if there are any)
            if self.g.nodes[nid]["op"] != "input":
                b = self.bvar()
                once = self.batch_loop(self.node_stmt(nid, i64(0), b), b)
                body.append(tir.IfThenElse(i64(0) < self.T, once, None))
        for part in self.p.parts:
            if isinstance(part, ParallelRegion):
                nid = part.node
                if self.g.nodes[nid]["op"] == "input" or nid in self.inlined:
                    continue
                if nid not in self.epilogues and nid not in self.ahead:
                    body.append(self.parallel(self.fused_at.get(nid, nid)))
            else:
                body.append(self.recurrent(part))
        per_row, sums = self.results()
        body += per_row
        after = []
        for nid in self.p.post:
            op = self.g.nodes[nid]["op"]
            total = lookup(op).after_steps
            after.append(self.total(nid) if total else self.node_stmt(nid, None, None))
        after += sums
        if self.threads:  # the thread pool launched once, not once per node and step
            body = [_threads.one_launch(seq(body))] if body else []
        if self.rows == "parallel":
            groups = i64(self.groups)
            body = [tir.For(self.row_b, i64(0), groups, tir.ForKind.PARALLEL, seq(body))]
        elif self.gpu:  # (what comes after the rows: kernels of their own, see grid)
            if self.emulated:  # rows one after another, each phase's threads in a loop
                body = [tir.For(self.row_b, i64(0), self.B, tir.ForKind.SERIAL, seq(body))]
            else:
                body = [
                    self.bind(
                        self.row_b,
                        self.B,
                        self.rows,
                        self.bind(self.tx, i64(self.block_threads), "threadIdx.x", seq(body)),
                    )
                ]
        func = tir.PrimFunc(self.bufs, seq(body + after))
        # an unrolled loop binds its step in every copy of the body: one variable each
        body_ssa = tir.transform.ConvertSSA()(tvm.IRModule({"main": func}))["main"].body
        # Time-invariant values the kernel never reads (the raw weights behind their
        # transposed and packed copies) are not arguments: a caller would keep, copy and
        # export every one of them.
        read = {v.name for v in tir.analysis.undefined_vars(body_ssa, [])}
        kept = [
            i
            for i, (a, b) in enumerate(zip(self.args, self.bufs, strict=True))
            if a.kind != "static" or b.name in read
        ]
        bufs, args = [self.bufs[i] for i in kept], [self.args[i] for i in kept]
        return Kernel(tir.PrimFunc(bufs, body_ssa).with_attr("global_symbol", "main"), args)


def _size(shape: Any) -> Any:
    """The number of elements of a row shape (sizes and symbolic dimensions)."""
    size = i64(1)
    for d in shape:
        size = size * extent(d)
    return size


def _unravel(flat: Any, shape: Any) -> list[Any]:
    """The row-major indices into ``shape`` of element number ``flat``."""
    idx, rest = [], flat
    for d in reversed(shape):
        idx.append(tir.floormod(rest, extent(d)))
        rest = tir.floordiv(rest, extent(d))
    return list(reversed(idx))


@dataclass(frozen=True)
class _NodeView:
    """What a rule reads of its node."""

    d: Mapping[str, Any]

    @property
    def attrs(self) -> Mapping[str, Any]:
        return self.d["attrs"]

    @property
    def name(self) -> str:
        return str(self.d["name"])


def generate(
    program: Program,
    dtype: str = "float32",
    *,
    with_lens: bool = False,
    rows: str = "",
    blocked: bool = True,
    groups: int = 2,
    threads: bool = False,
    block: int = 1024,
    plan: Plan | None = None,
) -> Kernel:
    """The kernel of ``program`` (see the module docstring).

    ``rows``: "" (batch loops inside each node), "parallel" (an outer loop over
    ``groups`` groups of batch rows, spread over CPU cores), "blockIdx.x" (the
    GPU: one row per thread block, each node's elements shared out over the
    block's threads, a barrier after each node) or "emulated" (that GPU kernel
    run on the CPU, its threads one after another: a test of its indexing).
    ``block``: the most threads a GPU block has (1024: CUDA's limit).
    ``threads``: every blocked
    product splits its weight's panels over the CPU's cores and every other
    node its batch rows (for work with few batch rows and big products: a
    recursive net's levels, whole sequences).
    ``blocked``: matrix products by the register-blocked CPU kernel (``_gemm``).
    ``plan``: the CPU kernels' shapes (default: derived for this machine's CPU).
    """
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise CompileError(f"dtype must be float32 or float64, got {dtype}")
    return _Gen(
        program, str(np.dtype(dtype)), with_lens, rows, blocked, groups, threads, block, plan
    ).generate()
