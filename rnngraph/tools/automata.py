"""Finite automata extracted from trained recurrent nets (Omlin & Giles, 1996).

:func:`extract_fsm` quantises each hidden unit's range into ``bins`` intervals,
explores the net breadth-first from its start state — every quantised state
reached, one step on every input symbol, each frontier run as one batch by the
reference interpreter — labels each state by the net's accept output, and
minimises the resulting automaton (Moore's partition refinement). The result is
a :class:`DFA`: run it on strings, compare its language with another's, draw it
with networkx.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph
from rnngraph.runtime.interpreter import run
from rnngraph.tools.drawing import render_dot

__all__ = ["DFA", "extract_fsm", "language_agreement"]


@dataclass(frozen=True)
class DFA:
    """A deterministic finite automaton over ``alphabet`` (symbols ``range(k)`` unless
    given): states ``range(n)``, ``start``, the ``accepting`` ones and the
    ``transitions`` ``{(state, symbol): state}`` (total).

    Examples
    --------
    >>> import rnngraph as rg
    >>> parity = rg.DFA(2, 0, frozenset({0}), {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 0}, (0, 1))
    >>> parity.accepts([1, 0, 1]), parity.accepts([1, 1, 1])
    (True, False)
    """

    n_states: int
    start: int
    accepting: frozenset[int]
    transitions: Mapping[tuple[int, int], int]
    alphabet: tuple[Any, ...]

    def accepts(self, string: Iterable[int]) -> bool:
        """Whether the automaton accepts ``string`` (a sequence of symbol indices)."""
        s = self.start
        for a in string:
            s = self.transitions[(s, int(a))]
        return s in self.accepting

    def minimized(self) -> DFA:
        """The equivalent automaton with the fewest states (unreachable ones dropped)."""
        return _minimize(self)

    def to_dot(self) -> str:
        """The automaton in Graphviz's DOT: accepting states double circles, the start
        marked by an arrow, one edge per pair of states labelled with its symbols."""
        lines = ["digraph dfa {", "  rankdir=LR;", '  start [shape=point, label=""];']
        for s in range(self.n_states):
            shape = "doublecircle" if s in self.accepting else "circle"
            lines.append(f'  s{s} [shape={shape}, label="{s}"];')
        lines.append(f"  start -> s{self.start};")
        labels: dict[tuple[int, int], list[str]] = {}
        for (s, a), t in sorted(self.transitions.items()):
            labels.setdefault((s, t), []).append(str(self.alphabet[a]))
        for (s, t), syms in labels.items():
            lines.append(f'  s{s} -> s{t} [label="{",".join(syms)}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def draw(self, path: str | os.PathLike[str]) -> str:
        """Draw the automaton to ``path`` (``.dot``, or ``.svg``/``.png``/``.pdf`` with
        Graphviz); returns the path."""
        return render_dot(self.to_dot(), path)

    def to_networkx(self) -> Any:
        """A ``networkx.MultiDiGraph``: nodes with ``accepting`` and ``start`` flags, edges
        labelled by ``symbol``."""
        import networkx as nx

        g = nx.MultiDiGraph()
        for s in range(self.n_states):
            g.add_node(s, accepting=s in self.accepting, start=s == self.start)
        for (s, a), t in self.transitions.items():
            g.add_edge(s, t, symbol=self.alphabet[a])
        return g


def _reachable(d: DFA) -> list[int]:
    seen, order = {d.start}, [d.start]
    for s in order:
        for a in range(len(d.alphabet)):
            t = d.transitions[(s, a)]
            if t not in seen:
                seen.add(t)
                order.append(t)
    return order


def _minimize(d: DFA) -> DFA:
    states = _reachable(d)
    k = len(d.alphabet)
    block = {s: int(s in d.accepting) for s in states}
    while True:
        sig = {s: (block[s], *(block[d.transitions[(s, a)]] for a in range(k))) for s in states}
        ids: dict[tuple[int, ...], int] = {}
        new = {s: ids.setdefault(sig[s], len(ids)) for s in states}
        if len(ids) == len(set(block.values())):
            break
        block = new
    # number the blocks in breadth-first order from the start
    order, rename = [d.start], {block[d.start]: 0}
    for s in order:
        for a in range(k):
            t = d.transitions[(s, a)]
            if block[t] not in rename:
                rename[block[t]] = len(rename)
                order.append(t)
    trans = {
        (rename[block[s]], a): rename[block[d.transitions[(s, a)]]]
        for s in states
        for a in range(k)
    }
    accepting = frozenset(rename[block[s]] for s in states if s in d.accepting)
    return DFA(len(rename), 0, accepting, trans, d.alphabet)


def extract_fsm(
    graph: Graph,
    params: Mapping[str, Any],
    alphabet: Sequence[Any] | int,
    *,
    input: str | None = None,
    state: str | None = None,
    output: str | None = None,
    bins: int = 3,
    bounds: tuple[float, float] = (0.0, 1.0),
    threshold: float = 0.5,
    accept_empty: bool = False,
    max_states: int = 5000,
) -> DFA:
    """The finite automaton a trained recurrent net implements, minimised.

    ``alphabet``: the number of symbols (fed one-hot), or one input vector per symbol.
    ``input``, ``state``, ``output``: the graph's symbol input, the state holding the
    hidden units, and the accept output ``(B, 1)`` (each may be left out when the graph
    has only one). Each unit's ``bounds`` (``(0, 1)`` for sigmoid units) are cut into
    ``bins`` equal intervals; a state is accepting when the output is above
    ``threshold`` on entering it (the start state: ``accept_empty``).

    Examples
    --------
    A one-unit net with weights set by hand to remember whether it has seen a 1 (see
    ``examples/tomita.py`` for nets trained on the Tomita grammars):

    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("seen_a_one")
    >>> h = g.state("h", 1)
    >>> new = rg.sigmoid(rg.linear(rg.concat([g.input("x", 2), h]), 1, name="cell"))
    >>> g.assign(h, new)
    >>> g.output("accept", new)
    >>> p = {"cell.W": np.array([[-5.0], [5.0], [10.0]]), "cell.b": np.zeros(1)}
    >>> dfa = rg.extract_fsm(g, p, 2, bins=2)
    >>> dfa.n_states, dfa.accepts([0, 0]), dfa.accepts([0, 1, 0])
    (2, False, True)
    """

    def only(kind: str, names: Iterable[str], given: str | None) -> str:
        names = list(names)
        if given is not None:
            if given not in names:
                raise GraphError(f"extract_fsm: no {kind} {given!r}; the graph has {names}")
            return given
        if len(names) != 1:
            raise GraphError(f"extract_fsm: name the {kind} (one of {names})")
        return names[0]

    x_name = only("input", graph.inputs, input)
    s_name = only("state", graph.states, state)
    y_name = only("output", graph.outputs, output)
    width = int(graph.inputs[x_name].row_shape[-1])
    if isinstance(alphabet, int):
        symbols: list[np.ndarray] = list(np.eye(alphabet))
        names: tuple[Any, ...] = tuple(range(alphabet))
    else:
        symbols = [np.asarray(a, np.float64).reshape(width) for a in alphabet]
        names = tuple(range(len(symbols)))
    lo, hi = bounds

    def key(h: np.ndarray) -> tuple[int, ...]:
        q = np.floor((h - lo) / (hi - lo) * bins).astype(int)
        return tuple(np.clip(q, 0, bins - 1).tolist())

    empty = {x_name: np.zeros((0, 1, width))}
    h0 = run(graph, empty, params, dtype=np.float64)[f"{s_name}_final"][0]
    index = {key(h0): 0}
    reps = [h0]
    accepting = {0} if accept_empty else set()
    trans: dict[tuple[int, int], int] = {}
    frontier = [0]
    while frontier:
        pairs = [(s, a) for s in frontier for a in range(len(symbols))]
        xs = np.stack([symbols[a] for _, a in pairs])[None]
        init = {s_name: np.stack([reps[s] for s, _ in pairs])}
        out = run(graph, {x_name: xs}, params, initial_states=init, dtype=np.float64)
        frontier = []
        for i, (s, a) in enumerate(pairs):
            h = out[f"{s_name}_final"][i]
            k = key(h)
            if k not in index:
                if len(index) >= max_states:
                    raise GraphError(
                        f"extract_fsm: more than {max_states} quantised states; use fewer bins"
                    )
                index[k] = len(reps)
                reps.append(h)
                frontier.append(index[k])
                if float(np.ravel(out[y_name][0, i])[0]) > threshold:
                    accepting.add(index[k])
            trans[(s, a)] = index[k]
    raw = DFA(len(reps), 0, frozenset(accepting), trans, names)
    return raw.minimized()


def language_agreement(
    dfa: DFA, member: Callable[[tuple[int, ...]], bool], max_len: int, *, min_len: int = 1
) -> float:
    """The fraction of strings of length ``min_len .. max_len`` over the automaton's
    alphabet on which it agrees with ``member`` (1.0: the same language up to that length)."""
    agree = total = 0
    for n in range(min_len, max_len + 1):
        for s in product(range(len(dfa.alphabet)), repeat=n):
            agree += dfa.accepts(s) == bool(member(s))
            total += 1
    return agree / max(total, 1)
