"""Pass infrastructure: a pass declares its contract; the runner checks it.

A pass takes a verified graph and its params and returns a
:class:`PassResult` ``(graph, params, modified)``. Passes never work in
place: they change a copy, so the caller's graph is untouched. The runner
checks the contract every pass shares: the input verifies; the output
verifies and keeps the interface (inputs, outputs, states and params, with
their types). That a pass keeps the *results* is checked by the tests, each
pass's against the reference interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph
from rnngraph.ir.verify import verify

__all__ = ["GraphPass", "PassResult", "run_passes"]

Params = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class PassResult:
    """What a pass returns: the new graph and params, and whether anything changed."""

    graph: Graph
    params: dict[str, np.ndarray]
    modified: bool


@dataclass(frozen=True)
class GraphPass:
    """A named graph-to-graph transform with the shared contract (see the module docstring).

    ``rewrite(graph, params) -> bool`` changes the copy it is given and
    says whether it changed anything.
    """

    name: str
    rewrite: Callable[[Graph, dict[str, np.ndarray]], bool]
    doc: str = ""

    def __call__(self, graph: Graph, params: Params | None = None) -> PassResult:
        verify(graph)
        out = graph.copy()
        P = dict(params or {})
        modified = self.rewrite(out, P)
        if not modified:
            return PassResult(graph, dict(params or {}), False)
        _check_interface(self.name, graph, out)
        return PassResult(out, P, True)


def _check_interface(name: str, before: Graph, after: Graph) -> None:
    try:
        verify(after)
    except GraphError as e:
        raise GraphError(f"pass {name!r} produced an invalid graph: {e}") from e
    for what in ("inputs", "outputs", "states", "params"):
        a, b = getattr(before, what), getattr(after, what)
        if a != b:
            raise GraphError(f"pass {name!r} changed the graph's {what}: {a} -> {b}")


def run_passes(
    passes: Sequence[GraphPass],
    graph: Graph,
    params: Params | None = None,
    *,
    max_rounds: int = 4,
) -> PassResult:
    """Run ``passes`` in order, repeating the list until none changes anything, for at
    most ``max_rounds`` rounds. Every pass keeps the results unchanged, so a graph that
    still changes in the last round is correct, only perhaps not fully optimised."""
    P = dict(params or {})
    modified_any = False
    for _ in range(max_rounds):
        changed = False
        for p in passes:
            r = p(graph, P)
            graph, P = r.graph, r.params
            changed |= r.modified
        modified_any |= changed
        if not changed:
            break
    return PassResult(graph, P, modified_any)
