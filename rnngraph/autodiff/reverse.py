"""The signal-flow-graph adjoint (Wan–Beaufays): gradients as another graph.

:func:`adjoint` builds, from a graph ``G``, a graph that contains ``G`` (the
forward pass, unchanged) and its adjoint, node by node, from the local rules
in the registry's ``ADJOINT`` table (each written beside its op's forward
definition):

* every edge is reversed and a delay ``z^-d`` becomes an advance ``z^+d``, so
  each recurrent region of ``G`` has an adjoint region that runs from the last
  step to the first — the result is an ordinary cyclic graph, verified, run
  and compiled like any other;
* a branch point becomes a sum of the adjoints coming back from its consumers;
* a node's rule sends ``cot`` (the adjoint of its output) back to its operands,
  using the forward values of the same step (``x̅ = f'(x(t)) ⊙ y̅`` ...);
* a time-invariant operand (a weight) sums its contributions over every step
  and row: ``W̅ = Σ_t x(t)ᵀ y̅(t)``, one GEMM (:func:`~rnngraph.ops.total_outer`);
* what reaches a delayed edge's initial value becomes that value's gradient.

The adjoint graph's interface: the forward inputs, plus ``"cot:<y>"`` for
each output ``y`` (its cotangent sequence) and, for states named in
``final_cotangents``, an initial state ``"cot:<s>_final"`` (the cotangent of
the state's final value); its outputs: the forward outputs, ``"grad:<p>"``
for each param (summed over steps and rows), ``"grad:<x>"`` for each input
(a sequence), and the final value of a helper state ``"grad:<s>"`` holding
each row's gradient of state ``s``'s initial value. :func:`vjp` wraps it.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("acc")
>>> x = g.input("x", 1)
>>> s = g.state("s", 1)
>>> g.assign(s, 0.5 * s + x)
>>> g.output("y", s)
>>> xs = np.ones((3, 1, 1))
>>> outs, grads = vjp(g, {"x": xs}, {}, cotangents={"y": np.ones((3, 1, 1))})
>>> grads["x"][:, 0, 0].tolist()  # y(t) = sum_{k<t} 0.5^(t-1-k) x(k)
[1.5, 1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np

from rnngraph import ops
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph, InitSpec, Node, Value
from rnngraph.ir.registry import ADJOINT
from rnngraph.ir.types import TensorType
from rnngraph.ir.verify import verify
from rnngraph.ops.random import seeded
from rnngraph.program.axes import is_staged
from rnngraph.runtime import staged
from rnngraph.runtime.arguments import bind_dims, float_dtype
from rnngraph.runtime.interpreter import run, stage_runner
from rnngraph.trees.recursion import feeds as tree_feeds
from rnngraph.trees.recursion import split_inputs, tree_spec, unpack

__all__ = [
    "AdjointContext",
    "AdjointError",
    "adjoint",
    "vjp",
]


class AdjointError(GraphError):
    """An op has no adjoint rule, or its rule does not cover this use."""


class AdjointContext:
    """What a rule may use besides the op functions: broadcasting reduction and zeros."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.needs: list[bool] = []

    def unbroadcast(self, v: Value, like: TensorType) -> Value | None:
        """``v`` summed down to the type of an operand that was broadcast to it.

        A time-invariant operand (a weight) receives the sum over every step
        and row; a signal keeps its steps and rows.
        """
        if like.dtype != "float":
            return None
        if like.batched:
            t = v.type
            axes = [i - t.rank for i in range(1, t.rank) if like.shape[i] == 1 and t.shape[i] != 1]
            return ops.reduce_sum(v, axes, keepdims=True) if axes else v
        if v.type.batched:
            row = v.type.rank - 1
            extra = row - len(like.shape)
            if extra > 0:  # rows of rows (a tree level's nodes): summed while still a signal
                v = ops.reduce_sum(v, list(range(-row, -row + extra)), keepdims=False)
            v = ops.total(v)
        shape, target = v.type.shape, like.shape
        lead = len(shape) - len(target)
        if lead:
            v = ops.reduce_sum(v, list(range(-len(shape), -len(target))), keepdims=False)
            shape = v.type.shape
        ones = [i - len(shape) for i in range(len(shape)) if target[i] == 1 and shape[i] != 1]
        return ops.reduce_sum(v, ones, keepdims=True) if ones else v

    def zeros(self, like: Value) -> Value:
        return ops.zeros_like(like)


def _needs_grad(t: TensorType) -> bool:
    return t.dtype == "float"


def _sum(values: Sequence[Value]) -> Value:
    acc = values[0]
    for v in values[1:]:
        acc = acc + v
    return acc


class _Builder:
    def __init__(
        self, graph: Graph, final_cotangents: Sequence[str], inputs: Sequence[str] | None = None
    ) -> None:
        verify(graph)
        self.fwd = graph
        self.inputs = None if inputs is None else set(inputs)  # None: every input's gradient
        self.g = graph.copy(f"{graph.name}.adjoint")
        self.ctx = AdjointContext(self.g)
        self.final_cotangents = list(final_cotangents)
        self.contribs: dict[int, list[Value]] = {}
        self.static_contribs: dict[int, list[Value]] = {}
        self.read_cache: dict[tuple[int, int, InitSpec], Value] = {}
        self.placeholders: dict[int, int] = {}
        self.state_cots: dict[int, Value] = {}

    def value(self, nid: int) -> Value:
        return Value(self.g, nid)

    def as_read(self, u: int, delay: int, init: InitSpec) -> Value:
        """The forward value of ``u`` as a node reads it: ``u(t - delay)``."""
        return self.g.read_delayed(u, delay, init, cache=self.read_cache, hint="fwd")

    def shift(self, c: Value, delay: int, hint: str) -> Value:
        """``c(t + delay)``: the reversed edge (zero past either end)."""
        return self.g.read_delayed(c.node, -delay, hint=hint)

    def build(self) -> Graph:
        fg = self.fwd.nx_graph
        g = self.g
        relevant = set(self.fwd.output_nodes().values())
        for s in self.final_cotangents:
            relevant.add(self.fwd.operands(self.fwd.state_nodes()[s])[0][0])
        relevant |= {a for n in list(relevant) for a in nx.ancestors(fg, n)}
        relevant = {n for n in relevant if _needs_grad(fg.nodes[n]["type"])}
        signals = sorted(n for n in relevant if fg.nodes[n]["type"].batched)
        statics = [n for n in relevant if not fg.nodes[n]["type"].batched]
        # 1. A placeholder for the adjoint of every signal (loops close through them).
        for v in signals:
            d = fg.nodes[v]
            self.placeholders[v] = g.add_node_raw(
                "delay", d["type"], {}, name=g.fresh_name(f"adj:{d['name']}")
            )
        # 2. Each signal node sends its adjoint back to its operands.
        for v in signals:
            self.apply_rule(v, self.value(self.placeholders[v]))
        # 3. Cotangents enter at the outputs and at the final states.
        for name, o in self.fwd.output_nodes().items():
            if fg.nodes[o]["type"].batched and o in relevant:
                self.contribs.setdefault(o, []).append(
                    g.input(f"cot:{name}", fg.nodes[o]["type"].row_shape)
                )
        for s in self.final_cotangents:
            self.final_cotangent(s)
        # 4. Close the placeholders: each adjoint is the sum of what reached it.
        for v in signals:
            parts = self.contribs.get(v) or [self.ctx.zeros(self.value(v))]
            total = _sum(parts)
            g.set_operand(self.placeholders[v], 0, total.node)
        # 5. Time-invariant nodes, in reverse dependency order: weights sum over time.
        order = list(nx.lexicographical_topological_sort(fg.subgraph(statics)))
        for s in reversed(order):
            static_parts = self.static_contribs.get(s, [])
            if not static_parts:
                continue
            cot = _sum(static_parts)
            if fg.nodes[s]["op"] == "param":
                g.output(f"grad:{fg.nodes[s]['name']}", cot)
            elif fg.nodes[s]["op"] != "constant":
                self.apply_rule(s, cot)
        # 6. Input sensitivities and initial-state gradients.
        for name, x in self.fwd.input_nodes().items():
            if x in self.placeholders and (self.inputs is None or name in self.inputs):
                g.output(f"grad:{name}", self.value(self.placeholders[x]))
        for name, sid in self.fwd.state_nodes().items():
            if sid in self.placeholders:
                self.initial_gradient(name, sid)
        g.meta["adjoint_of"] = self.fwd.name
        verify(g)
        return g

    def apply_rule(self, v: int, cot: Value) -> None:
        fg = self.fwd.nx_graph
        d = fg.nodes[v]
        reads = self.fwd.operands(v)
        if not reads:
            return
        rule = ADJOINT.get(d["op"])
        if rule is None:
            raise AdjointError(
                f"op {d['op']!r} (node {d['name']!r}) has no adjoint rule; add one with "
                f"rnngraph.ir.registry.register_adjoint({d['op']!r}) beside its definition"
            )
        args = [self.as_read(u, delay, init) for u, delay, init in reads]
        self.ctx.needs = [_needs_grad(fg.nodes[u]["type"]) for u, _, _ in reads]
        node = Node(v, d["name"], d["op"], d["type"], dict(d["attrs"]), d["origin"])
        contributions = list(rule(self.ctx, node, args, self.value(v), cot))
        if len(contributions) != len(reads):
            raise AdjointError(
                f"the adjoint rule of {d['op']!r} returned {len(contributions)} contributions "
                f"for {len(reads)} operands"
            )
        for (u, delay, _), c in zip(reads, contributions, strict=True):
            if c is None or not _needs_grad(fg.nodes[u]["type"]):
                continue
            ut = fg.nodes[u]["type"]
            if c.type.shape != ut.shape:
                raise AdjointError(
                    f"the adjoint rule of {d['op']!r} (node {d['name']!r}) gave {c.type} for "
                    f"operand {fg.nodes[u]['name']!r} of type {ut}"
                )
            if ut.batched:
                self.contribs.setdefault(u, []).append(
                    self.shift(c, delay, f"adj:{d['name']}.back")
                )
            else:
                self.static_contribs.setdefault(u, []).append(c)

    def final_cotangent(self, state: str) -> None:
        """The cotangent of a state's final value enters at the row's last valid step."""
        sid = self.fwd.state_nodes()[state]
        ((u, delay, _),) = self.fwd.operands(sid)
        row = self.fwd.nx_graph.nodes[u]["type"].row_shape
        # A state reading its own zeros, initialised with the cotangent: it holds the
        # cotangent exactly at the step the final value comes from.
        f = self.g.state(f"cot:{state}_final", row, "input", delay=-1 if delay >= 0 else 1)
        self.g.assign(f, self.ctx.zeros(self.value(u)))
        self.contribs.setdefault(u, []).append(f)

    def initial_gradient(self, name: str, sid: int) -> None:
        """Each row's gradient of the initial value state ``name`` reads before its first step."""
        ((_, delay, _),) = self.fwd.operands(sid)
        if delay == 0:
            return
        adj = self.value(self.placeholders[sid])
        k = abs(delay)
        # The initial value is read on the first |delay| steps (the last ones, for an advance).
        window = _sum(
            [self.shift(adj, i if delay > 0 else -i, f"adj:{name}.window") for i in range(k)]
        )
        helper = self.g.state(f"grad:{name}", adj.type.row_shape, delay=-1 if delay > 0 else 1)
        self.g.assign(helper, window if window.op not in ("state", "input") else window + 0.0)


def adjoint(
    graph: Graph,
    *,
    final_cotangents: Sequence[str] = (),
    input_gradients: bool | Sequence[str] = True,
) -> Graph:
    """The adjoint graph of ``graph`` (see the module docstring for its interface).

    Parameters
    ----------
    graph : Graph
        The forward graph; it is not changed.
    final_cotangents : sequence of str
        States whose final values receive a cotangent (as the initial state
        ``"cot:<s>_final"``), e.g. an encoder's state fed to a decoder. A row of
        length 0 runs no step of the reversed loop, so the graph's ``"grad:<s>"``
        stays zero for it although its final value is its initial value: add the
        row's ``"cot:<s>_final"`` to it, as :func:`vjp` does (which is what
        ``rg.train`` and ``value_and_grad`` use).
    input_gradients : bool or sequence of str
        The inputs whose sensitivities ``"grad:<x>"`` are outputs: all of them
        (``True``), none (``False``: a training step needs only the weights'
        gradients, and the compiler then drops the work, e.g. an LSTM's
        ``z̅ Wᵀ`` at every step) or those named.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("elman")
    >>> g.output("y", rg.cells.elman(g.input("x", 2), 3, name="e"))
    >>> adj = rg.adjoint(g)          # an ordinary graph: verified, run, compiled like any
    >>> sorted(k for k in adj.outputs if k.startswith("grad:"))[:2]
    ['grad:e.in.W', 'grad:e.in.b']
    >>> "cot:y" in adj.inputs
    True
    >>> "grad:x" in rg.adjoint(g, input_gradients=False).outputs
    False
    """
    unknown = sorted(set(final_cotangents) - set(graph.states))
    if unknown:
        raise GraphError(f"final_cotangents names {unknown}, which are not states of the graph")
    inputs: list[str] | None
    if isinstance(input_gradients, bool):
        inputs = None if input_gradients else []
    elif isinstance(input_gradients, str):
        raise GraphError(
            f"input_gradients takes True, False or a list of input names, not the string "
            f"{input_gradients!r}: write [{input_gradients!r}]"
        )
    else:
        inputs = list(input_gradients)
        unknown = sorted(set(inputs) - set(graph.inputs))
        if unknown:
            raise GraphError(
                f"input_gradients names {unknown}, which are not inputs of the graph; its "
                f"inputs: {sorted(graph.inputs)}"
            )
    return _Builder(graph, final_cotangents, inputs).build()


def _cached_adjoint(graph: Graph, finals: tuple[str, ...]) -> Graph:
    adj: Graph = graph.memo(
        f"adjoint:{','.join(finals)}", lambda: adjoint(graph, final_cotangents=finals)
    )
    return adj


def vjp(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    *,
    cotangents: Mapping[str, Any],
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = None,
    seed: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs and the vector–Jacobian product, by running the adjoint graph.

    Parameters
    ----------
    cotangents : dict
        ``dL/dy`` for outputs ``y`` (sequences ``(T, B, ...)``; missing ones
        are zero) and for final states under ``"<state>_final"`` (``(B, ...)``).
    sequence_lens, initial_states, dtype, seed
        As :func:`rnngraph.run` (the adjoint draws what the forward run draws).

    Returns
    -------
    outs : dict
        What :func:`rnngraph.run` returns.
    grads : dict
        For every param its gradient (shaped like the param, summed over
        steps and rows, including what reaches a learned initial state), for
        every input its sensitivity sequence, and for every state the
        gradient of each row's initial value ``(B, ...)``.
    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("scale")
    >>> g.output("y", 3.0 * g.input("x", 2))
    >>> _, grads = rg.vjp(g, {"x": np.ones((4, 1, 2))}, {}, cotangents={"y": np.ones((4, 1, 2))})
    >>> grads["x"][:, 0, 0].tolist()
    [3.0, 3.0, 3.0, 3.0]
    """
    if is_staged(graph):  # several axes: back through the stages (rnngraph.runtime.staged)
        return staged.vjp(
            graph,
            inputs,
            params,
            cotangents,
            stage_runner(dtype, seed),
            lambda stage, feeds, p, cots, lens, init: vjp(
                stage.graph,
                feeds,
                p,
                cotangents=cots,
                sequence_lens=lens,
                initial_states=init,
                dtype=dtype,
                seed=seed,
            ),
            sequence_lens=sequence_lens,
            initial_states=initial_states,
        )
    initial_states = seeded(graph, initial_states, seed)
    tree = split_inputs(inputs)
    if tree is not None:
        return _tree_vjp(graph, *tree, params, cotangents, initial_states, dtype)
    params = dict(params or {})
    finals = tuple(
        sorted(
            k[: -len("_final")]
            for k in cotangents
            if k.endswith("_final") and k[: -len("_final")] in graph.states
        )
    )
    unknown = sorted(set(cotangents) - set(graph.outputs) - {f"{s}_final" for s in finals})
    if unknown:
        raise GraphError(f"cotangents names {unknown}: not outputs or '<state>_final' of the graph")
    adj = _cached_adjoint(graph, finals)
    feeds = dict(inputs)
    per_seq = graph.per_sequence_inputs
    sequences = [v for k, v in inputs.items() if k not in per_seq]
    first = np.asarray(sequences[0]) if sequences else None
    dims = bind_dims(graph, inputs, initial_states or {})  # (sizes of symbolic rows)
    for name, t in graph.outputs.items():
        if f"cot:{name}" not in adj.inputs:
            continue
        if name in cotangents:
            feeds[f"cot:{name}"] = cotangents[name]
        else:
            T, B = (first.shape[0], first.shape[1]) if first is not None else (1, 1)
            row = tuple(dims.get(d, 0) if isinstance(d, str) else d for d in t.row_shape)
            feeds[f"cot:{name}"] = np.zeros((T, B, *row))
    init = dict(initial_states or {})
    for s in finals:
        init[f"cot:{s}_final"] = cotangents[f"{s}_final"]
    res = run(adj, feeds, params, sequence_lens=sequence_lens, initial_states=init, dtype=dtype)
    outs = {k: v for k, v in res.items() if not k.startswith(("grad:", "cot:"))}
    grads: dict[str, np.ndarray] = {}
    ft = np.dtype(next(iter(outs.values())).dtype if outs else np.float64)
    for name, t in graph.params.items():
        shape = tuple(int(d) for d in t.shape)
        grads[name] = np.asarray(res.get(f"grad:{name}", np.zeros(shape, ft)))
    for name, t in graph.inputs.items():
        if t.dtype == "float" and first is not None:
            grads[name] = res.get(f"grad:{name}", np.zeros_like(np.asarray(inputs[name], ft)))
            if name in per_seq and f"grad:{name}" in res:  # the same value at every step
                grads[name] = _valid_sum(grads[name], sequence_lens)
    for name, t in graph.states.items():
        g0 = res.get(f"grad:{name}_final")
        if g0 is None and t.symbolic:
            continue
        B = next(iter(outs.values())).shape[1] if outs else 1
        g0 = np.zeros((B, *t.row_shape), ft) if g0 is None else g0
        (_, delay, spec), *_ = graph.operands(graph.state_nodes()[name])
        cot = cotangents.get(f"{name}_final")
        if cot is not None and sequence_lens is not None and delay == 1:
            # a row with no steps: its final value is its initial value (the adjoint's
            # reversed loop never runs for it)
            empty = (np.asarray(sequence_lens) == 0).reshape((-1,) + (1,) * (g0.ndim - 1))
            g0 = np.where(empty, g0 + np.asarray(cot, ft), g0)
        grads[name] = g0
        if spec.kind == "param" and name not in init:
            grads[str(spec.ref)] = grads[str(spec.ref)] + g0.sum(axis=0)
        if spec.kind == "input" and str(spec.ref) in per_seq and name not in init:
            grads[str(spec.ref)] = grads[str(spec.ref)] + g0  # started from that input
    return outs, grads


def _valid_sum(per_step: np.ndarray, sequence_lens: Any) -> np.ndarray:
    """A per-step gradient ``(T, B, ...)`` summed over each row's valid steps: ``(B, ...)``."""
    if sequence_lens is None:
        return per_step.sum(axis=0)
    T = per_step.shape[0]
    valid = np.arange(T)[:, None] < np.asarray(sequence_lens)[None, :]
    return np.where(valid.reshape(valid.shape + (1,) * (per_step.ndim - 2)), per_step, 0).sum(0)


def _tree_vjp(
    graph: Graph,
    batch: Any,
    extra: Mapping[str, Any],
    params: Mapping[str, Any] | None,
    cotangents: Mapping[str, Any],
    initial_states: Mapping[str, Any] | None,
    dtype: Any,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`vjp` of a recursive net on a TreeBatch: per-example cotangents, per-node grads."""
    ft = float_dtype(dtype, extra, params)
    lay, feeds, init = tree_feeds(graph, batch, extra, ft)
    init.update(initial_states or {})
    cots: dict[str, Any] = {}
    for name, t in graph.outputs.items():
        if t.symbolic:
            cots[name] = lay.sequence(cotangents.get(name), t.row_shape)
        elif name in cotangents:
            cots[name] = cotangents[name]
    for name, c in cotangents.items():
        if name.endswith("_final"):
            cots[name] = np.asarray(c)[None]
        elif name not in graph.outputs:
            raise GraphError(f"cotangents names {name!r}: not an output of the graph")
    outs, grads = vjp(graph, feeds, params, cotangents=cots, initial_states=init, dtype=ft)
    per_node = tree_spec(graph)["inputs"]  # type: ignore[index]
    for name in list(grads):
        if name in per_node:
            grads[name] = lay.per_node(grads[name])
        elif name in graph.states and graph.states[name].symbolic:
            grads[name] = grads[name][0]
    return unpack(graph, lay, outs), grads
