"""The cell library at a glance: each cell, what it is, its paper and the oracle the
tests check it against (what ``rnngraph inspect --cells`` prints and the README's
cell table shows)."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CATALOG", "Entry", "table"]


class Entry(NamedTuple):
    names: tuple[str, ...]
    what: str
    paper: str
    oracle: str


CATALOG: tuple[Entry, ...] = (
    Entry(
        ("rnn", "lstm", "gru", "rnn_step", "lstm_step", "gru_step"),
        "ONNX's RNN/LSTM/GRU (peepholes, clip, both GRU resets, bidirectional)",
        "Hochreiter & Schmidhuber 1997; Cho et al. 2014",
        "onnxruntime's own ops, PyTorch",
    ),
    Entry(("elman", "jordan"), "simple recurrent nets; Jordan's context may decay",
          "Elman 1990; Jordan 1986", "a numpy loop"),
    Entry(("indrnn",), "element-wise recurrence, its recurrent weights bounded in training",
          "Li et al. 2018", "a numpy loop"),
    Entry(("mgu", "gru_variant"), "the minimal gated unit; GRUs whose gates read less",
          "Zhou et al. 2016; Dey & Salem 2017", "a numpy loop"),
    Entry(("fir", "narx", "tapped"), "finite-impulse taps; nonlinear autoregression",
          "Lin et al. 1996", "a numpy loop"),
    Entry(("stacked", "bidirectional", "rmlp"),
          "layers stacked; both directions; the recurrent multilayer perceptron",
          "Schuster & Paliwal 1997; Puskorius & Feldkamp 1994", "the layers by hand; numpy"),
    Entry(("attention",), "dot, general and additive attention, masked",
          "Luong et al. 2015; Bahdanau et al. 2015", "PyTorch scaled_dot_product_attention"),
    Entry(("hopfield", "bam"),
          "Hopfield nets (sync, async, Glauber, continuous); bidirectional associative memory",
          "Hopfield 1982, 1984; Kosko 1988", "numpy loops (the same draws for Glauber)"),
    Entry(("esn",), "echo state network: a fixed leaky reservoir, a ridge readout",
          "Jaeger 2001", "reservoirpy (its matrices, states and readout)"),
    Entry(("lif", "lsm"),
          "leaky integrate-and-fire neurons with surrogate gradients; a liquid state machine",
          "Maass et al. 2002; Neftci et al. 2019", "snntorch's Leaky (spikes and gradients)"),
    Entry(("ctrnn", "mtrnn"), "continuous-time nets (Euler, RK4, irregular steps); fast and "
          "slow units", "Beer 1995; Yamashita & Tani 2008",
          "scipy solve_ivp (RK45); the paper's update in numpy"),
    Entry(("clockwork", "hrnn", "history_compressor"),
          "modules on clocks; two levels; a chunker that ticks on surprise",
          "Koutník et al. 2014; El Hihi & Bengio 1996; Schmidhuber 1992", "numpy loops"),
    Entry(("second_order",), "state-input products: an automaton's transitions; "
          "rg.extract_fsm recovers the automaton", "Giles et al. 1992; Omlin & Giles 1996",
          "Tomita grammars 1-7: the extracted DFA's language"),
    Entry(("neural_stack", "ntm", "dnc"),
          "a continuous stack or queue; the neural Turing machine; the differentiable "
          "neural computer", "Grefenstette et al. 2015; Graves et al. 2014, 2016",
          "numpy from the papers' equations"),
    Entry(("child_sum_tree_lstm", "nary_tree_lstm"), "tree-LSTMs over trees and DAGs",
          "Tai et al. 2015", "a per-node Python recursion"),
    Entry(("recursive_nn", "rntn", "dag_rnn"), "recursive nets over trees and DAGs",
          "Socher et al. 2011, 2013; Shuai et al. 2015", "a per-node Python recursion"),
    Entry(("Feedback",), "a decoder's previous token: teacher forcing, free running, "
          "scheduled sampling", "Bengio et al. 2015", "a numpy loop"),
)  # fmt: skip


def table() -> str:
    """The catalog as a Markdown table."""
    rows = ["| cell | what it is | paper | oracle in the tests |", "|---|---|---|---|"]
    for e in CATALOG:
        names = ", ".join(f"`{n}`" for n in e.names)
        rows.append(f"| {names} | {e.what} | {e.paper} | {e.oracle} |")
    return "\n".join(rows)
