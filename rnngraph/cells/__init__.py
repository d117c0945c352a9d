"""The cell library: recurrent layers built from graph ops.

Every cell is an ordinary subgraph (params, states, ops), so it can be
inspected, changed and differentiated like anything a user writes. The
``*_step`` functions build one step from given weights and states, for
cells of one's own. The tree cells (:mod:`rnngraph.cells.trees`) are applied
over trees and DAGs by :func:`rnngraph.recursive`.

Examples
--------
>>> import numpy as np, rnngraph as rg
>>> g = rg.Graph("tagger")
>>> h = rg.cells.lstm(g.input("x", 4), 8, name="lstm")  # a layer: params, states, ops
>>> g.output("y", rg.linear(h, 3, name="out"))
>>> sorted(g.states), h.shape
(['lstm.c', 'lstm.h'], ('B', 8))
"""

from __future__ import annotations

from rnngraph.cells._common import ACTIVATIONS, activation
from rnngraph.cells.alignment import attention
from rnngraph.cells.classic import elman, indrnn, jordan, rnn, rnn_step, second_order
from rnngraph.cells.compose import bidirectional, stacked
from rnngraph.cells.energy import bam, hebbian, hopfield
from rnngraph.cells.feedback import Feedback, inverse_sigmoid_schedule, teacher_mask
from rnngraph.cells.gated import gru, gru_step, gru_variant, lstm, lstm_step, mgu
from rnngraph.cells.hierarchy import clockwork, history_compressor, hrnn, rmlp
from rnngraph.cells.memory import dnc, neural_stack, ntm
from rnngraph.cells.ode import ctrnn, mtrnn
from rnngraph.cells.reservoir import esn, reservoir_weights
from rnngraph.cells.spiking import lif, lif_step, lsm
from rnngraph.cells.taps import fir, narx, tapped
from rnngraph.cells.trees import child_sum_tree_lstm, dag_rnn, nary_tree_lstm, recursive_nn, rntn

__all__ = [
    "ACTIVATIONS",
    "Feedback",
    "activation",
    "attention",
    "bam",
    "bidirectional",
    "child_sum_tree_lstm",
    "clockwork",
    "ctrnn",
    "dag_rnn",
    "dnc",
    "elman",
    "esn",
    "fir",
    "gru",
    "gru_step",
    "gru_variant",
    "hebbian",
    "history_compressor",
    "hopfield",
    "hrnn",
    "indrnn",
    "inverse_sigmoid_schedule",
    "jordan",
    "lif",
    "lif_step",
    "lsm",
    "lstm",
    "lstm_step",
    "mgu",
    "mtrnn",
    "narx",
    "nary_tree_lstm",
    "neural_stack",
    "ntm",
    "recursive_nn",
    "reservoir_weights",
    "rmlp",
    "rnn",
    "rnn_step",
    "rntn",
    "second_order",
    "stacked",
    "tapped",
    "teacher_mask",
]
