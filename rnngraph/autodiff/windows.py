"""Gradients over windows of a stream: truncated BPTT, online (causal recursive)
backpropagation, and the hybrid of BPTT inside blocks with RTRL across them.

All three cut the sequence into windows and run the adjoint (:func:`vjp`) on each,
starting from the memory a forward run reached at the window's first step. A graph's
memory is every value a later step reads back: its states, and every delayed read
(a tap ``rg.delay(x, 3)``, a state of delay 2, a NARX net's output taps). So the
windows run on :func:`unit_delay_form`: the same graph with each delay of ``d``
steps made a chain of ``d`` states of delay 1 (a shift register), so that its memory
is exactly its states and a window starts from them.

- :func:`truncated_bptt` (BPTT(h; h')): every ``h'`` steps, the last ``h'`` steps'
  loss is propagated back ``h`` steps; earlier paths are dropped.
- :func:`online_gradients`: one gradient per step as the stream arrives (BPTT(h; 1)),
  causal recursive backpropagation for locally recurrent nets with IIR synapses.
- :func:`hybrid_gradients`: exact gradients with memory bounded by the block: BPTT
  inside blocks of ``h`` steps, and across blocks the sensitivities of the memory to
  the params carried forward (real-time recurrent learning), updated once per block.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("iir")
>>> x = g.input("x", 1)
>>> s = g.state("s", 1, delay=2)                     # a two-step feedback
>>> g.assign(s, 0.5 * s + rg.linear(rg.delay(x, 3), 1, name="tap"))
>>> g.output("y", s)
>>> p = g.init_params(seed=0)
>>> xs = np.random.default_rng(0).normal(size=(9, 2, 1))
>>> cot = {"y": np.ones((9, 2, 1))}
>>> full = rg.vjp(g, {"x": xs}, p, cotangents=cot)[1]
>>> hyb = rg.hybrid_gradients(g, {"x": xs}, p, cotangents=cot, block=4)
>>> bool(np.allclose(hyb["tap.W"], full["tap.W"]))
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from rnngraph.autodiff.reverse import vjp
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph, InitSpec, Node
from rnngraph.ir.types import TensorType
from rnngraph.ir.verify import verify
from rnngraph.runtime.interpreter import run

__all__ = ["hybrid_gradients", "online_gradients", "truncated_bptt", "unit_delay_form"]


class UnitDelayForm:
    """A graph whose delays are all 0 or 1 into states, and how it maps to the original:
    ``copies[r]`` is the original state whose initial value register ``r`` also takes
    (the registers of a state of delay ``d``), ``finals[s]`` the state of this graph
    whose final value is state ``s``'s (for a state of delay ``d > 1``, the register
    holding the last value assigned to it)."""

    def __init__(self, graph: Graph, copies: Mapping[str, str], finals: Mapping[str, str]):
        self.graph, self.copies, self.finals = graph, dict(copies), dict(finals)

    def cotangents(self, cots: Mapping[str, Any]) -> dict[str, Any]:
        """Cotangents keyed by the original graph's names, keyed by this graph's."""
        back = {f"{s}_final": f"{r}_final" for s, r in self.finals.items()}
        return {back.get(k, k): v for k, v in cots.items()}

    def initial(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The caller's initial states, extended to the registers that repeat them."""
        out = dict(given or {})
        for reg, src in self.copies.items():
            if src in out:
                out[reg] = out[src]
        return out


def unit_delay_form(graph: Graph) -> UnitDelayForm:
    """``graph`` with every delayed read made a read of a state of delay 1.

    A read of ``u`` delayed ``d`` steps becomes a read of the last of ``d`` registers
    (states ``"<u>.z1"``, ``"<u>.z2"``, ...: ``z1`` stores ``u``, each next one the one
    before), shared by every read of ``u`` with the same initial value; a state of
    delay ``d > 1`` reads the register ``d - 1`` with delay 1. Results are unchanged
    (tested against :func:`rnngraph.run`). Look-aheads (negative delays) have no such
    form: the windowed methods need causal graphs.
    """
    return graph.memo("unit_delay_form", lambda: _unit_delay_form(graph))


def _unit_delay_form(graph: Graph) -> UnitDelayForm:
    verify(graph)
    state_ids = set(graph.state_nodes().values())
    nodes: dict[int, Node] = {n.id: n for n in graph.nodes()}
    taken = {n.name for n in nodes.values()}
    next_id = max(nodes, default=-1) + 1
    edges: list[tuple[int, int, int, int, InitSpec]] = []
    registers: dict[tuple[int, InitSpec, str | None], list[int]] = {}
    states = dict(graph.state_nodes())
    copies: dict[str, str] = {}
    finals = {s: s for s in graph.states}

    def register(u: int, init: InitSpec, depth: int, state: str | None = None) -> int:
        """Register ``depth`` of ``u``'s chain (a state's own chain: its registers start
        from whatever that state starts from)."""
        nonlocal next_id
        chain = registers.setdefault((u, init, state), [])
        while len(chain) < depth:
            src = chain[-1] if chain else u
            base = f"{nodes[u].name}.z{len(chain) + 1}"
            name, i = base, 1
            while name in taken or name in graph.outputs:
                name, i = f"{base}_{i}", i + 1
            taken.add(name)
            spec = init
            if state is not None:
                copies[name] = state
                if init.kind == "input" and init.ref == state:  # the caller's value: copied
                    spec = InitSpec("input", name)
            t: TensorType = nodes[u].type
            attrs = {"delay": 1, "init": spec.to_json()}
            nodes[next_id] = Node(next_id, name, "state", t, attrs, None)
            edges.append((src, next_id, 0, 1, spec))
            states[name] = next_id
            chain.append(next_id)
            next_id += 1
        return chain[depth - 1]

    for n in list(nodes.values()):
        for port, (u, d, init) in enumerate(graph.operands(n.id)):
            if d < 0:
                raise GraphError(
                    f"{nodes[u].name!r} -> {n.name!r} looks {-d} steps ahead; gradients over "
                    "windows of a stream need a causal graph (delays >= 0)"
                )
            if d == 0 or (d == 1 and n.id in state_ids) or not nodes[u].type.batched:
                edges.append((u, n.id, port, d, init))
                continue
            if n.id in state_ids:  # a state of delay d: its register d - 1, one step back
                edges.append((register(u, init, d - 1, n.name), n.id, port, 1, init))
                finals[n.name] = nodes[register(u, init, 1, n.name)].name
                nodes[n.id] = Node(n.id, n.name, n.op, n.type, {**n.attrs, "delay": 1}, n.origin)
            else:
                edges.append((register(u, init, d), n.id, port, 0, InitSpec()))
    interface = {
        "inputs": graph.input_nodes(),
        "params": graph.param_nodes(),
        "states": states,
        "outputs": graph.output_nodes(),
    }
    g = Graph.from_records(
        graph.name, list(nodes.values()), edges, interface, dict(graph.arrays), graph.meta
    )
    verify(g)
    return UnitDelayForm(g, copies, finals)


def _cotangents(
    form: UnitDelayForm,
    cotangents: Mapping[str, Any],
    start: int,
    end: int,
    inject: int,
    T: int,
) -> dict[str, np.ndarray]:
    """A window's cotangents: each output's steps ``start..end``, zero before ``inject``;
    a final state's only in the window that ends the sequence."""
    out = {}
    finals = {f"{s}_final" for s in form.graph.states}
    for k, c in form.cotangents(cotangents).items():
        c = np.asarray(c)
        if k in finals:
            if end == T:
                out[k] = c
            continue
        w = np.array(c[start:end], copy=True)
        w[: max(0, inject - start)] = 0
        out[k] = w
    return out


def _with_state_outputs(graph: Graph) -> Graph:
    """A copy of ``graph`` that also outputs, as ``"state:<s>"``, what each state stores."""
    g = graph.copy()
    for name, sid in graph.state_nodes().items():
        g.output(f"state:{name}", g.value(graph.operands(sid)[0][0]))
    return g


def _steps(inputs: Mapping[str, Any], graph: Graph) -> int:
    per_seq = graph.per_sequence_inputs
    seqs = [np.asarray(v) for k, v in inputs.items() if k not in per_seq]
    if not seqs:
        raise GraphError("gradients over windows need a sequence input")
    return int(seqs[0].shape[0])


def _window(inputs: Mapping[str, Any], graph: Graph, start: int, end: int) -> dict[str, Any]:
    per_seq = graph.per_sequence_inputs
    return {k: v if k in per_seq else np.asarray(v)[start:end] for k, v in inputs.items()}


def truncated_bptt(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    cotangents: Mapping[str, Any],
    h: int,
    h_step: int | None = None,
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = None,
) -> dict[str, np.ndarray]:
    """Gradients by truncated backpropagation through time, BPTT(h; h').

    Every ``h_step`` (``h'``, default ``h``) steps, the cotangents of the last
    ``h'`` steps are propagated back through at most ``h`` steps (``h >= h'``);
    the window starts from the memory a forward run reached there (states and
    delayed reads of any depth, see :func:`unit_delay_form`), and nothing flows
    into earlier steps. How it approximates the full gradient: it drops every path
    by which a step's loss depends on the memory more than ``h`` steps back, which
    is exact when the network forgets within ``h`` steps (contracting dynamics) and
    biased otherwise. ``h >= T`` with ``h' = T`` is full BPTT. Needs a causal graph.

    Returns the gradients of the params and inputs (as :func:`vjp`).
    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("elman")
    >>> g.output("y", rg.cells.elman(g.input("x", 2), 3, 1, name="e"))
    >>> p = {k: v.astype(np.float64) for k, v in g.init_params(seed=0).items()}
    >>> xs = {"x": np.random.default_rng(0).normal(size=(12, 2, 2))}
    >>> cot = {"y": np.ones((12, 2, 1))}
    >>> full = rg.vjp(g, xs, p, cotangents=cot)[1]
    >>> tb = rg.truncated_bptt(g, xs, p, cotangents=cot, h=12, h_step=12)  # BPTT(T; T)
    >>> bool(np.allclose(tb["e.in.W"], full["e.in.W"]))
    True
    """
    h_step = h if h_step is None else int(h_step)
    if not 1 <= h_step <= h:
        raise GraphError(f"truncated BPTT needs 1 <= h' <= h, got h={h}, h'={h_step}")
    form = unit_delay_form(graph)
    ug = form.graph
    T = _steps(inputs, graph)
    grads: dict[str, np.ndarray] = {}
    initial = form.initial(initial_states)
    # One forward run gives the memory at every step; windows start from it, and no
    # gradient flows into it.
    trajectory: dict[str, np.ndarray] = {}
    if h < T:
        tracked: Graph = ug.memo("state_trajectory", lambda: _with_state_outputs(ug))
        trajectory = run(tracked, inputs, params, initial_states=initial, dtype=dtype)
    for end in range(h_step, T + h_step, h_step):
        end = min(end, T)
        start = max(0, end - h)
        window_init = initial
        if start > 0:
            # A state at step `start` holds what it stored at `start - 1` (delay 1).
            window_init = {s: trajectory[f"state:{s}"][start - 1] for s in ug.states}
        # only the last h' steps inject their loss
        cots = _cotangents(form, cotangents, start, end, end - h_step, T)
        feeds = _window(inputs, graph, start, end)
        _, g = vjp(ug, feeds, params, cotangents=cots, initial_states=window_init, dtype=dtype)
        for name in graph.params:
            grads[name] = grads.get(name, 0) + g[name]
        for name in graph.inputs:
            if name in g and name not in graph.per_sequence_inputs:
                full = grads.setdefault(
                    name, np.zeros_like(np.asarray(inputs[name], g[name].dtype))
                )
                full[start:end] += g[name]
        if end == T:
            break
    return grads


def online_gradients(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    cotangents: Mapping[str, Any],
    h: int,
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = None,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Online gradients, one per step, for locally recurrent nets (causal recursive backprop).

    At each step ``t``, as soon as its input has arrived, yields the gradient
    of step ``t``'s loss (``<cotangents[y][t], y(t)>``) with respect to the
    params, propagated back through at most ``h`` steps — the causal,
    truncated form of backpropagation that Campolucci et al. use for
    locally recurrent networks, multi-tap IIR synapses (delays > 1) included.
    The forward pass runs one step at a time, keeping the memory (states and
    delayed reads, :func:`unit_delay_form`) of the last ``h`` steps, so memory
    stays bounded for a stream.

    How it approximates the full gradient: each step's loss sees its
    dependence on the last ``h`` steps only (as BPTT(h; 1), and the sum over
    all steps equals :func:`truncated_bptt` with ``h_step=1``); when weights
    are updated online after every step, the earlier states were produced by
    older weights — the usual online-learning approximation, small for small
    learning rates. Needs a causal graph.
    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("iir")
    >>> x = g.input("x", 1)
    >>> s = g.state("s", 1, delay=2)           # an IIR synapse with a two-step feedback
    >>> g.assign(s, 0.5 * s + rg.linear(x, 1, name="w"))
    >>> g.output("y", s)
    >>> p = g.init_params(seed=0)
    >>> xs, cot = {"x": np.ones((6, 1, 1))}, {"y": np.ones((6, 1, 1))}
    >>> steps = list(rg.online_gradients(g, xs, p, cotangents=cot, h=3))
    >>> len(steps), sorted(steps[0][1])
    (6, ['w.W', 'w.b'])
    """
    form = unit_delay_form(graph)
    ug = form.graph
    T = _steps(inputs, graph)
    memory: list[dict[str, Any]] = [form.initial(initial_states)]  # memory before step t
    for t in range(T):
        out = run(
            ug, _window(inputs, graph, t, t + 1), params, initial_states=memory[-1], dtype=dtype
        )
        memory.append({s: out[f"{s}_final"] for s in ug.states})
        start = max(0, t + 1 - h)
        cots = _cotangents(form, cotangents, start, t + 1, t, T)
        base = memory[-(t + 2 - start)]  # the memory before the window's first step
        window = _window(inputs, graph, start, t + 1)
        _, g = vjp(ug, window, params, cotangents=cots, initial_states=base, dtype=dtype)
        yield t, {name: g[name] for name in graph.params}
        del memory[: max(0, len(memory) - h - 1)]


def hybrid_gradients(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    cotangents: Mapping[str, Any],
    block: int,
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = None,
) -> dict[str, np.ndarray]:
    """Exact parameter gradients, BPTT inside blocks of ``block`` steps and RTRL across.

    Williams and Zipser's hybrid (also Schmidhuber's 1992 O(n³) algorithm): the
    sequence is cut into blocks; each block's loss is backpropagated inside the
    block only, and what reaches the block's starting memory ``m`` (its states and
    delayed reads, :func:`unit_delay_form`) is turned into a parameter gradient by
    the sensitivities ``S = dm/dθ`` carried forward from block to block
    (``S' = ∂m'/∂θ + ∂m'/∂m · S``, each block's Jacobians from one adjoint run per
    entry of the memory). The result equals full BPTT's; the adjoint never sees
    more than ``block`` steps, so memory is bounded by the block and ``|m| × |θ|``
    — what makes it an online method for long streams. Sensitivities are per
    sequence, so each batch row runs on its own. Needs a causal graph.

    Returns the gradients of the params (summed over the batch, as :func:`vjp`).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("acc")
    >>> x = g.input("x", 1)
    >>> s = g.state("s", 1)
    >>> g.assign(s, 0.5 * s + g.param("w", 1) * x)
    >>> g.output("y", s)
    >>> xs, p = {"x": np.ones((6, 1, 1))}, {"w": np.ones(1)}
    >>> cot = {"y": np.ones((6, 1, 1))}
    >>> hybrid = rg.hybrid_gradients(g, xs, p, cotangents=cot, block=2)["w"]
    >>> bool(np.allclose(hybrid, rg.vjp(g, xs, p, cotangents=cot)[1]["w"]))  # equals BPTT
    True
    """
    if isinstance(block, bool) or not isinstance(block, int | np.integer) or block < 1:
        raise GraphError(f"hybrid gradients need a block of at least 1 step, got {block!r}")
    form = unit_delay_form(graph)
    ug = form.graph
    T = _steps(inputs, graph)
    names = list(graph.params)
    sizes = [int(np.prod(np.shape(params[k]))) for k in names]
    mem_names = list(ug.states)
    per_seq = graph.per_sequence_inputs
    batch = {np.shape(v)[0 if k in per_seq else 1] for k, v in inputs.items()}
    if len(batch) != 1:
        raise GraphError(f"inputs disagree on the batch size: {sorted(batch)}")
    B = batch.pop()
    given = form.initial(initial_states)
    final_keys = {f"{s}_final" for s in mem_names}
    total = {k: np.zeros(np.shape(params[k])) for k in names}
    for b in range(B):
        row = {k: np.asarray(v)[b : b + 1] if k in per_seq else np.asarray(v)[:, b : b + 1]
               for k, v in inputs.items()}  # fmt: skip
        memory = {k: np.asarray(v)[b : b + 1] if np.ndim(v) > 1 else v for k, v in given.items()}
        S: np.ndarray | None = None  # d memory / d params, (|m|, |θ|); None: zero
        for start in range(0, T, block):
            end = min(start + block, T)
            feeds = _window(row, graph, start, end)
            cots = {
                k: c[b : b + 1] if k in final_keys else c[:, b : b + 1]
                for k, c in _cotangents(form, cotangents, start, end, start, T).items()
            }
            outs, g = vjp(ug, feeds, params, cotangents=cots, initial_states=memory, dtype=dtype)
            _add(total, names, sizes, _through(g, names, mem_names, S))
            if end == T:
                break
            finals = {s: outs[f"{s}_final"] for s in mem_names}
            S = _carry(ug, feeds, params, memory, finals, names, mem_names, S, dtype)
            memory = finals
    return {k: v.astype(np.asarray(params[k]).dtype) for k, v in total.items()}


def _carry(
    ug: Graph,
    feeds: Mapping[str, Any],
    params: Mapping[str, Any],
    memory: Mapping[str, Any],
    finals: Mapping[str, np.ndarray],
    names: list[str],
    mem_names: list[str],
    S: np.ndarray | None,
    dtype: Any,
) -> np.ndarray:
    """The sensitivities after a block: ``∂m'/∂θ + ∂m'/∂m · S``, row by row of ``m'``."""
    rows = []
    for s in mem_names:
        for i in range(finals[s].size):
            e = np.zeros(finals[s].size)
            e[i] = 1.0
            cot = {f"{s}_final": e.reshape(finals[s].shape)}
            _, g = vjp(ug, feeds, params, cotangents=cot, initial_states=memory, dtype=dtype)
            rows.append(_through(g, names, mem_names, S))
    return np.array(rows)


def _through(
    g: Mapping[str, Any], names: list[str], mem_names: list[str], S: np.ndarray | None
) -> np.ndarray:
    """A block's gradient in the params, flat: directly, plus through the memory it
    started from (its gradient times the sensitivities ``S``; None: zero)."""

    def flat(keys: list[str]) -> np.ndarray:
        return np.concatenate([np.ravel(g[k]) for k in keys]) if keys else np.zeros(0)

    return flat(names) if S is None else flat(names) + flat(mem_names) @ S


def _add(total: dict[str, np.ndarray], names: list[str], sizes: list[int], v: np.ndarray) -> None:
    at = 0
    for k, n in zip(names, sizes, strict=True):
        total[k] += v[at : at + n].reshape(total[k].shape)
        at += n
