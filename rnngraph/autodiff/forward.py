"""The tangent graph (forward mode) and real-time recurrent learning built on it.

:func:`tangent` builds, from ``G``, a graph containing ``G`` and a tangent
node for every signal node, with the *same* topology and delays: tangents run
forward in time beside the values they differentiate (the dual of
:func:`rnngraph.adjoint`, which runs backward). Tangent rules live in the
registry's ``TANGENT`` table, beside each op (linear ops reuse themselves;
element-wise ops share their local derivative with the adjoint rule).

Interface: tangent inputs ``"tan:<x>"``, tangent params ``"tan:<p>"``,
tangent initial states as the initial states of the tangent state nodes
``"tan:<s>"`` (``init="input"``); outputs ``"tan:<y>"`` beside the forward
outputs. :func:`jvp` wraps it.

:func:`rtrl` computes the gradient of a loss by propagating the sensitivity
of every state to every parameter forward in time — real-time recurrent
learning — as one tangent pass per parameter entry. It is exact (it equals
BPTT) and online (each step's gradient is known at that step; the step model
of the tangent graph streams it), at a cost that grows with the number of
parameters: meant for small networks; for element-wise recurrences such as
IndRNN each tangent pass costs no more than the forward pass.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("acc")
>>> x = g.input("x", 1)
>>> s = g.state("s", 1)
>>> g.assign(s, 0.5 * s + x)
>>> g.output("y", s)
>>> _, tan = jvp(g, {"x": np.ones((3, 1, 1))}, {}, tangents={"x": np.ones((3, 1, 1))})
>>> tan["y"][:, 0, 0].tolist()
[0.0, 1.0, 1.5]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.autodiff.reverse import AdjointError
from rnngraph.ir.graph import Graph, Node, Value
from rnngraph.ir.registry import TANGENT
from rnngraph.ir.verify import verify
from rnngraph.program.axes import is_staged
from rnngraph.runtime import staged
from rnngraph.runtime.interpreter import run

__all__ = ["jvp", "rtrl", "tangent"]


def tangent(graph: Graph) -> Graph:
    """The tangent graph of ``graph`` (see the module docstring for its interface).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("acc")
    >>> x = g.input("x", 1)
    >>> s = g.state("s", 1)
    >>> g.assign(s, 0.5 * s + g.param("w", 1) * x)
    >>> g.output("y", s)
    >>> sorted(rg.tangent(g).inputs)  # a tangent beside each input
    ['tan:x', 'x']
    """
    verify(graph)
    fg = graph.nx_graph
    g = graph.copy(f"{graph.name}.tangent")
    tan: dict[int, Value | None] = {}
    for name, pid in graph.param_nodes().items():
        if fg.nodes[pid]["type"].dtype == "float":
            tan[pid] = g.param(f"tan:{name}", fg.nodes[pid]["type"].shape, "zeros")
    for name, xid in graph.input_nodes().items():
        if fg.nodes[xid]["type"].dtype == "float":
            tan[xid] = g.input(f"tan:{name}", fg.nodes[xid]["type"].row_shape)
    # Placeholders for every signal node computed from others (loops close through them).
    holders: dict[int, int] = {}
    for v in sorted(fg.nodes):
        d = fg.nodes[v]
        if d["type"].batched and d["type"].dtype == "float" and graph.operands(v):
            holders[v] = g.add_node_raw(
                "delay", d["type"], {}, name=g.fresh_name(f"tan:{d['name']}")
            )
            tan[v] = Value(g, holders[v])
    # Static nodes computed from params: their tangents, in dependency order.
    import networkx as nx

    statics = [n for n in fg.nodes if not fg.nodes[n]["type"].batched and graph.operands(n)]
    for v in nx.lexicographical_topological_sort(fg.subgraph(statics)):
        tan[v] = _apply(graph, g, v, tan, {})
    reads: dict[Any, Value] = {}  # one node per distinct delayed read
    for v, h in holders.items():
        value = _apply(graph, g, v, tan, reads)
        if value is None:
            value = Value(g, v) * 0.0
        g.set_operand(h, 0, value.node)
    for name, o in graph.output_nodes().items():
        t = tan.get(o)
        if fg.nodes[o]["type"].batched and t is not None:
            g.output(f"tan:{name}", t)
    verify(g)
    return g


def _apply(
    graph: Graph,
    g: Graph,
    v: int,
    tan: Mapping[int, Value | None],
    reads: dict[Any, Value],
) -> Value | None:
    """The tangent of node ``v`` from its operands' tangents (read with the same delays)."""
    fg = graph.nx_graph
    d = fg.nodes[v]
    ops_ = graph.operands(v)
    rule = TANGENT.get(d["op"])
    if rule is None:
        raise AdjointError(f"op {d['op']!r} (node {d['name']!r}) has no tangent rule")
    args, dots = [], []
    for u, delay, init in ops_:
        args.append(g.read_delayed(u, delay, init, cache=reads, hint="fwd"))
        t = tan.get(u)
        if t is None or not fg.nodes[u]["type"].batched or delay == 0:
            dots.append(t)
            continue
        # The tangent of a delayed read: the tangent source, same delay; before the first
        # step, the tangent of the initial value (a given input for a state).
        if d["op"] == "state":
            s = g.state(f"tan:{d['name']}", t.type.row_shape, "input", delay=delay)
            g.assign(s, t)
            dots.append(s)
        else:
            dots.append(g.read_delayed(t.node, delay, cache=reads, hint=f"tan:{d['name']}.read"))
    if all(t is None for t in dots):
        return None
    node = Node(v, d["name"], d["op"], d["type"], dict(d["attrs"]), d["origin"])
    out = rule(node, args, Value(g, v), dots)
    if out is not None and out.type.shape != d["type"].shape:
        raise AdjointError(f"the tangent rule of {d['op']!r} gave {out.type} for {d['type']}")
    return out


def jvp(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    *,
    tangents: Mapping[str, Any],
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs and the Jacobian–vector product: how outputs move along ``tangents``.

    ``tangents`` maps params, inputs and states (initial values) to
    directions; missing ones are zero. Returns ``(outs, output_tangents)``: the
    tangent of every output and of every state's final value (``"<state>_final"``).
    A graph with several axes runs stage by stage, the tangents of the values that
    cross between them passed on (:func:`rnngraph.runtime.staged.jvp`).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("acc")
    >>> x = g.input("x", 1)
    >>> s = g.state("s", 1)
    >>> g.assign(s, 0.5 * s + g.param("w", 1) * x)
    >>> g.output("y", s)
    >>> xs = {"x": np.ones((3, 1, 1))}
    >>> _, tan = rg.jvp(g, xs, {"w": np.ones(1)}, tangents={"w": np.ones(1)})
    >>> tan["y"].ravel().tolist()  # how y moves as w grows
    [0.0, 1.0, 1.5]
    """
    if is_staged(graph):
        return staged.jvp(
            graph,
            inputs,
            params,
            tangents,
            lambda stage, feeds, p, t, lens, init: jvp(
                stage.graph,
                feeds,
                p,
                tangents=t,
                sequence_lens=lens,
                initial_states=init,
                dtype=dtype,
            ),
            sequence_lens=sequence_lens,
            initial_states=initial_states,
        )
    params = dict(params or {})
    tg: Graph = graph.memo("tangent", lambda: tangent(graph))
    per_seq = graph.per_sequence_inputs
    first = np.asarray(next(v for k, v in inputs.items() if k not in per_seq))
    T, B = first.shape[:2]
    feeds = dict(inputs)
    for name in graph.inputs:
        if f"tan:{name}" in tg.inputs:
            d = tangents.get(name)
            given = np.shape(inputs[name])  # (its rows may have symbolic sizes)
            if name in per_seq:  # the same direction at every step
                d = np.zeros(given) if d is None else np.asarray(d)
                d = np.broadcast_to(d, (T, *d.shape))
            feeds[f"tan:{name}"] = np.zeros(given) if d is None else d
    P = dict(params)
    for name, t in graph.params.items():
        if f"tan:{name}" in tg.params:
            P[f"tan:{name}"] = np.asarray(tangents.get(name, np.zeros(t.row_shape)))
    init = dict(initial_states or {})
    for name, t in graph.states.items():
        if f"tan:{name}" in tg.states:
            start = str(graph.operands(graph.state_nodes()[name])[0][2].ref)
            if name not in tangents and start in per_seq and name not in init:
                init[f"tan:{name}"] = tangents.get(start, np.zeros((B, *t.row_shape)))
                continue  # a state started from a per-sequence input moves with it
            init[f"tan:{name}"] = tangents.get(name, np.zeros((B, *t.row_shape)))
    res = run(tg, feeds, P, sequence_lens=sequence_lens, initial_states=init, dtype=dtype)
    outs = {k: v for k, v in res.items() if not k.startswith("tan:")}
    tans = {o: res[f"tan:{o}"] for o in graph.outputs if f"tan:{o}" in res}
    tans |= {f"{s}_final": res[f"tan:{s}_final"] for s in graph.states if f"tan:{s}_final" in res}
    return outs, tans


def rtrl(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    cotangents: Mapping[str, Any],
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = None,
    elementwise: bool = False,
) -> dict[str, np.ndarray]:
    """Parameter gradients by forward sensitivity propagation (RTRL).

    Gives the same numbers as :func:`rnngraph.vjp` (BPTT) for the loss
    ``sum_y <cotangents[y], y>``. By default one tangent pass per parameter
    entry (any network; see the module docstring for the cost).

    ``elementwise=True`` is the cheap exact case for recurrences whose units
    do not interact (IndRNN, diagonal or element-wise RNNs) and whose
    outputs are per unit along their last axis: a parameter entry's unit is
    its last index, so one tangent pass moves every unit's entry of a row at
    once — ``I + 2`` passes for an IndRNN layer instead of ``(I + 2) H`` —
    and each unit's gradient is read from its own output. On a network whose
    units interact it gives wrong numbers: use the default there.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("acc")
    >>> x = g.input("x", 1)
    >>> s = g.state("s", 1)
    >>> g.assign(s, 0.5 * s + g.param("w", 1) * x)
    >>> g.output("y", s)
    >>> xs, p = {"x": np.ones((3, 1, 1))}, {"w": np.ones(1)}
    >>> cot = {"y": np.ones((3, 1, 1))}
    >>> forward = rg.rtrl(g, xs, p, cotangents=cot)["w"]
    >>> bool(np.allclose(forward, rg.vjp(g, xs, p, cotangents=cot)[1]["w"]))
    True
    """
    grads: dict[str, np.ndarray] = {}

    def directional(name: str, e: np.ndarray) -> dict[str, np.ndarray]:
        return jvp(
            graph,
            inputs,
            params,
            tangents={name: e},
            sequence_lens=sequence_lens,
            initial_states=initial_states,
            dtype=dtype,
        )[1]

    for name, t in graph.params.items():
        if t.dtype != "float":
            continue
        shape = tuple(int(d) for d in t.shape)
        g: np.ndarray = np.zeros(shape, np.float64)
        if elementwise and shape:
            for lead in np.ndindex(*shape[:-1]):
                e = np.zeros(shape)
                e[lead] = 1.0  # every unit's entry of this row at once
                tans = directional(name, e)
                g[lead] = sum(
                    np.sum(tans[k] * np.asarray(c), axis=tuple(range(np.ndim(c) - 1)))
                    for k, c in cotangents.items()
                )
        else:
            for idx in np.ndindex(*shape):
                e = np.zeros(shape)
                e[idx] = 1.0
                tans = directional(name, e)
                g[idx] = sum(float(np.sum(tans[k] * np.asarray(c))) for k, c in cotangents.items())
        grads[name] = g
    return grads
