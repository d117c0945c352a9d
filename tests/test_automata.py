"""Automaton extraction (rg.extract_fsm) and the DFA it returns: minimisation against
hand-built automata, extraction from a second-order net whose weights are set by hand
to compute parity, and the Tomita example (trained nets, languages compared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.tools.automata import DFA, language_agreement


def test_minimisation_merges_equivalent_states() -> None:
    # parity of 1s written with four states (two copies of each class), one unreachable
    t = {(0, 0): 2, (0, 1): 1, (1, 0): 3, (1, 1): 2, (2, 0): 0, (2, 1): 3, (3, 0): 1}
    t.update({(3, 1): 0, (4, 0): 4, (4, 1): 4})
    d = DFA(5, 0, frozenset({0, 2}), t, (0, 1)).minimized()
    assert d.n_states == 2
    assert language_agreement(d, lambda s: s.count(1) % 2 == 0, 10, min_len=0) == 1.0


def test_extraction_from_a_hand_set_parity_net() -> None:
    """Two one-hot state units, even and odd: symbol 1 swaps them, 0 keeps them."""
    g = rg.Graph("parity")
    h = rg.cells.second_order(g.input("x", 2), 2, name="so")
    g.output("accept", rg.sigmoid(rg.linear(h, 1, name="readout")))
    W = np.zeros((4, 2))  # row j * 2 + k: from unit j on symbol k
    W[0 * 2 + 0, 0] = W[1 * 2 + 0, 1] = 10.0  # 0: stay
    W[0 * 2 + 1, 1] = W[1 * 2 + 1, 0] = 10.0  # 1: swap
    p = {"so.W": W, "so.b": np.full(2, -5.0), "readout.W": np.array([[10.0], [-10.0]]),
         "readout.b": np.array([-5.0])}  # fmt: skip
    dfa = rg.extract_fsm(g, p, 2, bins=2, accept_empty=True)
    assert dfa.n_states == 2
    assert language_agreement(dfa, lambda s: s.count(1) % 2 == 0, 12, min_len=0) == 1.0
    nx_graph = dfa.to_networkx()
    assert nx_graph.number_of_edges() == 4 and nx_graph.nodes[0]["start"]


def test_extraction_errors() -> None:
    g = rg.Graph("two")
    h = rg.cells.second_order(g.input("x", 2), 3)
    g.output("a", rg.sigmoid(rg.linear(h, 1, name="r1")))
    g.output("b", rg.sigmoid(rg.linear(h, 1, name="r2")))
    p = g.init_params()
    with pytest.raises(rg.GraphError, match="name the output"):
        rg.extract_fsm(g, p, 2)
    with pytest.raises(rg.GraphError, match="no state 'nope'"):
        rg.extract_fsm(g, p, 2, output="a", state="nope")
    with pytest.raises(rg.GraphError, match="more than 3 quantised states"):
        rg.extract_fsm(g, p, 2, output="a", bins=50, max_states=3)


def test_dfa_drawing(tmp_path) -> None:
    t = {(0, 0): 1, (0, 1): 0, (1, 0): 1, (1, 1): 0}
    d = DFA(2, 0, frozenset({1}), t, ("a", "b"))
    text = d.to_dot()
    assert "s1 [shape=doublecircle" in text and "s0 [shape=circle" in text
    assert "start -> s0" in text and 's0 -> s1 [label="a"]' in text
    path = d.draw(tmp_path / "d.dot")
    assert Path(path).read_text() == text
