"""The numpy reference interpreter: the semantics every backend is tested against.

Meaning, as a plain loop (for a graph whose delays are all ``>= 0``)::

    for t in range(T):
        for node in topological order of the zero-delay edges:
            operand = source(t - delay)   if 0 <= t - delay < len(row)
                      initial value       otherwise
            node(t) = op(operands)
    output(t) = 0 for t >= len(row)        # sequence_lens, as in ONNX
    final state = assigned value at the row's last step

How it is computed: time-invariant nodes once; then the components of the
condensation in dependency order. A component with no cycle runs over the
whole sequence at once (a delayed edge into it is a shifted copy of its
source), so only recurrent regions step through time, forward or — for
regions whose feedback edges are advances — backward. Nothing recurses, so
a 100,000-step sequence runs within Python's limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.errors import InputError
from rnngraph.ir.graph import Graph, InitSpec
from rnngraph.ir.params import check_params
from rnngraph.ir.registry import REFERENCE
from rnngraph.ops.random import seeded
from rnngraph.program.axes import is_staged
from rnngraph.program.schedule import ParallelRegion, Program, RecurrentRegion, schedule
from rnngraph.runtime import staged
from rnngraph.runtime.arguments import (
    bind_dims,
    check_initial_states,
    check_inputs,
    check_lens,
    float_dtype,
    initial_value,
    np_dtype,
)
from rnngraph.runtime.interface import Interface
from rnngraph.trees.recursion import run_trees, split_inputs

__all__ = ["run", "stage_runner"]


class _Run:
    """The state of one interpreter run."""

    def __init__(
        self,
        program: Program,
        ft: np.dtype,
        params: dict[str, np.ndarray],
        T: int,
        B: int,
        lens: np.ndarray | None,
        initial_states: Mapping[str, Any],
    ) -> None:
        self.graph, self.program, self.ft = program.graph, program, ft
        self.params, self.T, self.B, self.lens = params, T, B, lens
        self.values: dict[int, np.ndarray] = {}
        self.overrides = self._check_initial_states(initial_states)
        self.dims: dict[str, int] = {}
        self._init_cache: dict[tuple[int, InitSpec], np.ndarray] = {}
        self.per_seq = set(program.per_sequence)  # (the per-sequence inputs too)

    def seq(self, nid: int) -> np.ndarray:
        """Node ``nid``'s whole sequence ``(T, B, ...)`` (a per-sequence value repeated: a view)."""
        v = self.values[nid]
        if nid in self.per_seq:
            return np.broadcast_to(v, (self.T, *np.shape(v)))
        return v

    def _check_initial_states(self, initial_states: Mapping[str, Any]) -> dict[int, np.ndarray]:
        ids = self.graph.state_nodes()
        checked = check_initial_states(self.graph, initial_states, self.B, self.ft)
        return {ids[name]: arr for name, arr in checked.items()}

    def operands(self, nid: int) -> list[tuple[int, int, InitSpec]]:
        return [(r.source, r.delay, r.init) for r in self.program.reads[nid]]

    def attrs(self, nid: int) -> dict[str, Any]:
        return {**self.graph.nx_graph.nodes[nid]["attrs"], "float_dtype": self.ft}

    def initial(self, consumer: int, source: int, spec: InitSpec) -> np.ndarray:
        """The initial value (B, *row) read by ``consumer`` from ``source``'s delayed edge."""
        if consumer in self.overrides:
            return self.overrides[consumer]
        if spec.kind == "input":  # another reader of a caller-given initial value
            sid = self.graph.state_nodes().get(str(spec.ref))
            if sid in self.overrides:
                return self.overrides[sid]
            if str(spec.ref) in self.graph.per_sequence_inputs:  # a state started from one
                return self.values[self.graph.input_nodes()[str(spec.ref)]]
        key = (source, spec)
        if key in self._init_cache:
            return self._init_cache[key]
        t = self.graph.nx_graph.nodes[source]["type"]
        shape = (self.B, *(self.dims[d] if isinstance(d, str) else d for d in t.row_shape))
        arr = initial_value(self.graph, spec, self.params, shape, np_dtype(t.dtype, self.ft))
        if arr is None:
            name = self.graph.nx_graph.nodes[consumer]["name"]
            raise InputError(
                f"state {name!r} takes its initial value from the caller: pass "
                f"initial_states={{{name!r}: array of shape {shape}}}"
            )
        self._init_cache[key] = arr
        return arr

    # ---------------------------------------------------------- evaluation
    def run_static(self) -> None:
        g = self.graph.nx_graph
        for nid in self.program.static:
            d = g.nodes[nid]
            if d["op"] == "param":
                self.values[nid] = self.params[d["name"]]
            elif d["op"] == "constant":
                self.values[nid] = np.asarray(
                    self.graph.arrays[d["attrs"]["array"]],
                    dtype=np_dtype(d["type"].dtype, self.ft),
                )
            else:
                args = [self.values[u] for u, _, _ in self.operands(nid)]
                self.values[nid] = REFERENCE[d["op"]](self.attrs(nid), *args)

    def run_per_sequence(self) -> None:
        """Per-sequence nodes: once, on ``(B, ...)`` values, before the steps."""
        g = self.graph.nx_graph
        for nid in self.program.per_sequence:
            if g.nodes[nid]["op"] == "input":
                continue
            args = [self.values[u] for u, _, _ in self.operands(nid)]
            self.values[nid] = REFERENCE[g.nodes[nid]["op"]](self.attrs(nid), *args)

    def run_post(self) -> None:
        """Totals (sums over valid steps and rows) and the static work that follows them."""
        g = self.graph.nx_graph
        for nid in self.program.post:
            d = g.nodes[nid]
            args = []
            for u, _, _ in self.operands(nid):
                a = self.seq(u) if g.nodes[u]["type"].batched else self.values[u]
                if g.nodes[u]["type"].batched and self.lens is not None:
                    valid = np.arange(self.T)[:, None] < self.lens[None, :]
                    a = np.where(valid.reshape(valid.shape + (1,) * (a.ndim - 2)), a, 0)
                args.append(a)
            self.values[nid] = REFERENCE[d["op"]](self.attrs(nid), *args)

    def shifted(self, consumer: int, source: int, delay: int, spec: InitSpec) -> np.ndarray:
        """The whole sequence ``source(t - delay)``, initial value outside the row."""
        seq = self.values[source]
        if delay == 0:
            return seq
        T = self.T
        init = self.initial(consumer, source, spec)
        out = np.empty_like(seq)
        out[...] = init  # broadcasts over time
        lo, hi = max(delay, 0), min(T, T + delay)
        if lo < hi:
            out[lo:hi] = seq[lo - delay : hi - delay]
        if self.lens is not None and delay < 0:
            # A look-ahead past a row's end reads the initial value.
            s = np.arange(T)[:, None] - delay
            invalid = s >= self.lens[None, :]
            out[invalid] = init[np.nonzero(invalid)[1]]
        return out

    def run_parallel(self, nid: int) -> None:
        d = self.graph.nx_graph.nodes[nid]
        if d["op"] == "input":
            return  # bound before the run
        args = []
        for u, delay, spec in self.operands(nid):
            if u in self.per_seq:
                args.append(self.seq(u))
            elif self.graph.nx_graph.nodes[u]["type"].batched:
                args.append(self.shifted(nid, u, delay, spec))
            else:
                args.append(self.values[u])
        # A signal node has a signal operand, so the result carries the (T, B) axes.
        self.values[nid] = REFERENCE[d["op"]](self.attrs(nid), *args)

    def run_recurrent(self, region: RecurrentRegion) -> None:
        g = self.graph.nx_graph
        T, B = self.T, self.B
        members = set(region.nodes)
        for nid in region.nodes:
            t_ = g.nodes[nid]["type"]
            if t_.symbolic:  # sizes the data decides: stacked after the loop
                self.values[nid] = [None] * T  # type: ignore[assignment]
            else:
                self.values[nid] = np.zeros((T, B, *t_.row_shape), np_dtype(t_.dtype, self.ft))
        # Per node: its reference function, attrs, and how to read each operand.
        steps = []
        for nid in region.nodes:
            readers: list[tuple[int, np.ndarray, int, np.ndarray | None]] = []
            for u, delay, spec in self.operands(nid):
                if not g.nodes[u]["type"].batched or u in self.per_seq:
                    readers.append((0, self.values[u], 0, None))
                elif u in members or delay != 0:
                    init = self.initial(nid, u, spec) if delay else None
                    readers.append((1, self.values[u], delay, init))
                else:
                    readers.append((2, self.values[u], 0, None))
            steps.append(
                (self.values[nid], REFERENCE[g.nodes[nid]["op"]], self.attrs(nid), readers)
            )
        valid = None
        if self.lens is not None:
            valid = np.arange(T)[:, None] < self.lens[None, :]  # (T, B)
        order = range(T) if region.direction >= 0 else range(T - 1, -1, -1)
        for t in order:
            for out, fn, attrs, readers in steps:
                args: list[Any] = []
                for kind, seq, delay, init in readers:
                    if kind == 0:
                        args.append(seq)
                    elif kind == 2 or delay == 0:
                        args.append(seq[t])
                    else:
                        s = t - delay
                        if 0 <= s < T:
                            a = seq[s]
                            if valid is not None and not valid[s].all():
                                mask = valid[s].reshape((B,) + (1,) * (a.ndim - 1))
                                a = np.where(mask, a, init)
                            args.append(a)
                        else:
                            args.append(init)
                out[t] = fn(attrs, *args)
        for nid in region.nodes:
            steps_of = self.values[nid]
            if isinstance(steps_of, list) and steps_of:
                self.values[nid] = np.stack(steps_of)
            elif isinstance(steps_of, list):  # no steps: sizes from the data, or 0 if none
                t_ = g.nodes[nid]["type"]
                row = tuple(self.dims.get(d, 0) if isinstance(d, str) else d for d in t_.row_shape)
                self.values[nid] = np.zeros((0, B, *row), np_dtype(t_.dtype, self.ft))

    def final_state(self, state: int) -> np.ndarray:
        ((u, delay, spec),) = self.operands(state)
        init = np.asarray(self.initial(state, u, spec))
        seq = self.values[u]
        T, B = self.T, self.B
        lens = self.lens if self.lens is not None else np.full(B, T)
        step = np.zeros(B, np.int64) if delay < 0 else lens - 1
        out = np.array(init, copy=True)
        has = lens > 0
        if has.any():
            rows = np.nonzero(has)[0]
            out[rows] = seq[step[rows], rows]
        return out


def run(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    *,
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = None,
    steps: int | None = None,
    seed: int | None = None,
    interface: str = "graph",
) -> dict[str, np.ndarray]:
    """Run ``graph`` over whole sequences with the reference interpreter.

    Parameters
    ----------
    graph : Graph
        The network; it is verified first.
    inputs : dict of str to array, or TreeBatch
        Each input as a time-major sequence ``(T, B, *features)``. A graph
        built with :func:`rnngraph.recursive` also takes an
        :class:`rnngraph.trees.structures.TreeBatch` (or a dict of its further per-node
        inputs with the batch under any key) and returns its outputs per
        example (see :mod:`rnngraph.trees.recursion`).
    params : dict of str to array, optional
        Every declared parameter (see :meth:`Graph.init_params`).
    sequence_lens : array of int, or dict of axis name to array, optional
        Per batch row, the number of valid steps. Past it a row's outputs
        are zero and its states stop updating, as in ONNX's LSTM/GRU/RNN;
        a backward-running region starts at the row's last valid step. A
        graph with several sequence axes takes one array per axis:
        ``{"src": ..., "tgt": ...}`` (see :mod:`rnngraph.program.axes`).
    initial_states : dict of str to array, optional
        Overrides the initial value of any state, as ``(B, *shape)`` or one
        row ``shape``; required for states declared with ``init="input"``.
    dtype : {"float32", "float64"}, optional
        The float dtype of the computation; by default float64 if any input
        or parameter is float64, else float32.
    steps : int, optional
        The number of steps, for a graph with no inputs (a free-running
        generator); the batch then comes from ``initial_states`` or is 1.
    seed : int, optional
        The seed of the graph's random draws (:mod:`rnngraph.ops.random`), in
        ``[0, 2**24)``; default 0. The same seed draws the same numbers on every
        backend.
    interface : {"graph", "original"}
        ``"original"``, for a graph imported from a model (:func:`rnngraph.import_onnx`):
        ``inputs`` are the original model's feeds (its names and layouts; its
        ``sequence_lens``, initial states and weights fed as inputs among them) and the
        result is its outputs (see :mod:`rnngraph.runtime.interface`); as
        ``rg.compile``'s default for such graphs.

    Returns
    -------
    dict of str to ndarray
        Each output sequence ``(T, B, ...)`` under its name, and each state's
        final value ``(B, ...)`` under ``"<state>_final"``.
    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("acc")
    >>> x = g.input("x", 1)
    >>> s = g.state("s", 1)
    >>> g.assign(s, s + x)
    >>> g.output("y", s + x)
    >>> out = rg.run(g, {"x": np.ones((3, 2, 1))}, sequence_lens=np.array([3, 1]))
    >>> out["y"][:, :, 0].tolist(), out["s_final"][:, 0].tolist()
    ([[1.0, 1.0], [2.0, 0.0], [3.0, 0.0]], [3.0, 1.0])
    """
    if interface not in ("graph", "original"):
        raise InputError(f"interface must be 'graph' or 'original', got {interface!r}")
    iface = Interface.of(graph) if interface == "original" else None
    if iface is not None:
        if sequence_lens is not None or initial_states:
            raise InputError(
                "with interface='original' the imported model's own inputs carry its "
                "sequence_lens and initial states: pass them in the feeds, by its names"
            )
        call = iface.call(inputs)
        return iface.results(
            run(
                graph, call.inputs, {**(params or {}), **call.params},
                sequence_lens=call.sequence_lens, initial_states=call.initial_states,
                dtype=dtype, steps=steps, seed=seed,
            )
        )  # fmt: skip
    if is_staged(graph):  # several axes: one run per axis, crossings passed on
        return staged.run(
            graph,
            inputs,
            params,
            stage_runner(dtype, seed),
            sequence_lens=sequence_lens,
            initial_states=initial_states,
        )
    initial_states = seeded(graph, initial_states, seed)
    tree = split_inputs(inputs)
    if tree is not None:
        ft = float_dtype(dtype, tree[1], params)
        return run_trees(
            graph,
            tree,
            initial_states,
            ft,
            lambda f, init: run(graph, f, params, initial_states=init, dtype=ft),
        )
    program = schedule(graph)
    initial_states = dict(initial_states or {})
    ft = float_dtype(dtype, inputs, params)
    P = check_params(graph, params, ft)
    bound, T, B = check_inputs(graph, inputs, ft, steps)
    if T is None:
        raise InputError(f"graph {graph.name!r} has no inputs: pass steps= to say how many steps")
    if B is None:
        sizes = {np.shape(v)[0] for v in initial_states.values() if np.ndim(v) > 0}
        B = sizes.pop() if len(sizes) == 1 else 1
    lens = check_lens(sequence_lens, T, B)
    r = _Run(program, ft, P, T, B, lens, initial_states)
    r.dims = bind_dims(graph, inputs, initial_states)
    r.values.update(bound)
    r.run_static()
    r.run_per_sequence()
    for part in program.parts:
        if isinstance(part, ParallelRegion):
            r.run_parallel(part.node)
        else:
            r.run_recurrent(part)
    r.run_post()
    result: dict[str, np.ndarray] = {}
    for name, nid in graph.output_nodes().items():
        y = np.array(r.seq(nid) if nid in r.per_seq else r.values[nid], copy=True)
        if lens is not None and graph.nx_graph.nodes[nid]["type"].batched:
            y[np.arange(T)[:, None] >= lens[None, :]] = 0
        result[name] = y
    for name, nid in graph.state_nodes().items():
        result[f"{name}_final"] = r.final_state(nid)
    return result


def stage_runner(dtype: Any, seed: int | None) -> staged.Runner:
    """The reference run of one axis' stage, for :mod:`rnngraph.runtime.staged`."""

    def runner(stage: Any, feeds: Any, p: Any, lens: Any, init: Any) -> dict[str, np.ndarray]:
        return run(
            stage.graph, feeds, p, sequence_lens=lens, initial_states=init, dtype=dtype, seed=seed
        )

    return runner


def run_empty(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    sequence_lens: Any,
    initial_states: Mapping[str, Any] | None,
    dtype: Any,
) -> dict[str, np.ndarray] | None:
    """:func:`run`'s answer when ``inputs`` have no steps or no batch rows, else None.

    For backends whose runtime cannot run empty axes (onnxruntime's ``Scan``
    refuses them; its ``LSTM`` op returns uninitialised memory at ``T=0`` and
    aborts the process at ``B=0``): with nothing to compute, the reference's
    answer (outputs with an empty axis, each state's initial value as its final
    one) is exact and cheap. TVM's kernels run empty axes themselves.
    """
    shapes = [np.shape(a) for a in inputs.values()]
    if not shapes or not any(len(s) >= 2 and 0 in s[:2] for s in shapes):
        return None
    return run(
        graph,
        inputs,
        params,
        sequence_lens=sequence_lens,
        initial_states=initial_states,
        dtype=dtype,
    )
