"""Property tests on random graphs: cycles with delay run, zero-delay cycles are rejected."""

from __future__ import annotations

from itertools import pairwise

import networkx as nx
import numpy as np
from hypothesis import HealthCheck, given, settings

import rnngraph as rg
from rnngraph.ir.registry import REFERENCE
from tests.strategies import RandomGraph, feeds_for, random_graphs

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def naive_run(g: rg.Graph, feeds, params, T: int, B: int, direction: int = 1):
    """The plainest reading of the semantics: every node at every step, no SCCs, no vectorising.

    Nodes are ordered by the zero-delay edges; a delayed operand reads the
    source's value ``delay`` steps back (or ahead), else the initial value.
    """
    G = g.nx_graph
    zero = nx.subgraph_view(G, filter_edge=lambda u, v, k: G.edges[u, v, k]["delay"] == 0)
    order = list(nx.topological_sort(zero))
    hist: dict[int, dict[int, np.ndarray]] = {n: {} for n in G}
    inputs = g.input_nodes()

    def init_value(spec, shape):
        if spec.kind == "param":
            return np.broadcast_to(params[spec.ref], shape)
        return np.zeros(shape)

    steps = range(T) if direction > 0 else range(T - 1, -1, -1)
    for t in steps:
        for n in order:
            d = G.nodes[n]
            if d["op"] == "input":
                name = next(k for k, v in inputs.items() if v == n)
                hist[n][t] = feeds[name][t]
                continue
            if d["op"] == "param":
                hist[n][t] = params[d["name"]]
                continue
            if d["op"] == "constant":
                hist[n][t] = g.arrays[d["attrs"]["array"]]
                continue
            args = []
            for u, delay, spec in g.operands(n):
                s = t - delay
                if 0 <= s < T:
                    args.append(hist[u][s])
                else:
                    args.append(init_value(spec, (B, *G.nodes[u]["type"].row_shape)))
            hist[n][t] = REFERENCE[d["op"]](d["attrs"], *args)
    y = g.output_nodes()["y"]
    return np.stack([hist[y][t] for t in range(T)])


def _params(rgraph: RandomGraph):
    return {k: v.astype(np.float64) + 0.3 for k, v in rgraph.graph.init_params(seed=1).items()}


@SETTINGS
@given(random_graphs(min_delay=1, max_delay=3))
def test_cycles_with_delay_run_and_match_the_naive_loop(rgraph: RandomGraph) -> None:
    g = rgraph.graph
    rg.verify(g)
    params = _params(rgraph)
    for T, B in [(5, 2), (9, 1)]:
        feeds = feeds_for(rgraph, T, B)
        out = rg.run(g, feeds, params, dtype="float64")
        assert out["y"].shape == (T, B, rgraph.features)
        np.testing.assert_allclose(out["y"], naive_run(g, feeds, params, T, B), atol=1e-12)


@SETTINGS
@given(random_graphs(min_delay=-2, max_delay=-1))
def test_backward_recurrences_match_the_naive_backward_loop(rgraph: RandomGraph) -> None:
    g = rgraph.graph
    assert all(d <= 0 for _, _, d in g.nx_graph.edges(data="delay"))
    params = _params(rgraph)
    feeds = feeds_for(rgraph, 6, 2)
    out = rg.run(g, feeds, params, dtype="float64")
    np.testing.assert_allclose(out["y"], naive_run(g, feeds, params, 6, 2, -1), atol=1e-12)


def _assert_names_zero_delay_path(g: rg.Graph, names: list[str], *, closed: bool) -> None:
    G = g.nx_graph
    ids = [g.node(n).id for n in names]
    pairs = list(pairwise([*ids, ids[0]] if closed else ids))
    for a, b in pairs:
        assert any(G.edges[a, b, k]["delay"] == 0 for k in G[a].get(b, {})), names


@SETTINGS
@given(random_graphs(min_delay=1, max_delay=2))
def test_zeroing_every_delay_is_rejected_iff_a_cycle_exists(rgraph: RandomGraph) -> None:
    """As if read from a file whose delays were edited: verify names a real zero-delay cycle."""
    g = rgraph.graph
    G = g.nx_graph
    for u, v, k in list(G.edges(keys=True)):
        g.set_edge(u, v, k, delay=0, init=G.edges[u, v, k]["init"])
    if nx.is_directed_acyclic_graph(G):
        rg.verify(g)
        return
    try:
        rg.verify(g)
    except rg.AlgebraicLoopError as e:
        _assert_names_zero_delay_path(g, e.nodes, closed=True)
    else:
        raise AssertionError("a zero-delay cycle was accepted")


@SETTINGS
@given(random_graphs(min_delay=0, max_delay=0))
def test_zero_delay_assign_is_rejected_at_the_assign_line(rgraph: RandomGraph) -> None:
    g = rgraph.graph
    for names in rgraph.rejected:
        # state -> ... -> assigned value; the rejected edge value -> state is not in the graph.
        _assert_names_zero_delay_path(g, names, closed=False)
    rg.verify(g)  # everything that was accepted is loop-free
