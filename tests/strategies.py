"""Hypothesis strategies for random recurrent graphs (reused by backend tests)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import rnngraph as rg

UNARY = ["tanh", "sigmoid", "neg", "softsign"]
BINARY = ["add", "sub", "mul"]


@dataclass
class RandomGraph:
    graph: rg.Graph
    features: int
    state_delays: dict[str, int]
    rejected: list[list[str]]


@st.composite
def random_graphs(draw: st.DrawFn, *, min_delay: int = 1, max_delay: int = 3) -> RandomGraph:
    """A graph of element-wise ops over 1-2 inputs and 1-3 states with random feedback.

    Every state is assigned a random node; its delay is drawn from
    ``[min_delay, max_delay]`` (a negative range gives backward recurrences;
    ``min_delay = max_delay = 0`` gives algebraic loops wherever the assigned
    node depends on the state).
    """
    F = draw(st.integers(1, 3))
    g = rg.Graph("random")
    values: list[rg.Value] = [g.input(f"x{i}", F) for i in range(draw(st.integers(1, 2)))]
    n_states = draw(st.integers(1, 3))
    delays = {}
    states = []
    for i in range(n_states):
        d = draw(st.integers(min_delay, max_delay))
        init = draw(st.sampled_from(["zeros", "param"]))
        s = g.state(f"s{i}", F, init=init, delay=d)
        states.append(s)
        delays[s.name] = d
    values += states
    if draw(st.booleans()):
        values.append(rg.linear(values[0], F, name="lin"))
    for _ in range(draw(st.integers(2, 8))):
        if draw(st.booleans()):
            op = draw(st.sampled_from(UNARY))
            v = getattr(rg, op)(draw(st.sampled_from(values)))
        else:
            op = draw(st.sampled_from(BINARY))
            a, b = draw(st.sampled_from(values)), draw(st.sampled_from(values))
            v = getattr(rg, op)(a, b)
        if draw(st.integers(0, 4)) == 0:
            # Taps point the same way in time as the feedback, so the graph has one direction.
            v = rg.delay(v, draw(st.sampled_from([1, 2])) * (-1 if max_delay < 0 else 1))
        values.append(rg.tanh(v))  # keep values bounded over long runs
    computed = values[len(values) - 1 :: -1]
    rejected = []
    for s in states:
        target = draw(st.sampled_from(computed[: max(1, len(computed) - n_states)]))
        if target.op == "state" or target.op == "input":
            target = rg.tanh(target)
        try:
            g.assign(s, target)
        except rg.AlgebraicLoopError as e:
            # A zero-delay assignment that closes a loop; keep the graph complete.
            rejected.append(e.nodes)
            g.assign(s, rg.tanh(values[0]))
    g.output("y", values[-1])
    return RandomGraph(g, F, delays, rejected)


def feeds_for(rgraph: RandomGraph, T: int, B: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal((T, B, rgraph.features)) for n in rgraph.graph.inputs}
