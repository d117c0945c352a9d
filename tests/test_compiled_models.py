"""One suite over every installed target: what every compiled model promises.

Each target's sequence model is a ``CompiledModel`` and answers as the reference (two
lengths and batches, lengths per row, caller initial states, no steps, no rows, 8
threads: :func:`tests.zoo.check_model`); each step model is a ``StepModel`` whose
stream equals the sequence. A new backend registered under ``rnngraph.backends`` is
tested here without a line of its own.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.runtime.backends import CompiledModel, StepModel, scope_of
from tests import zoo

TARGETS = [
    pytest.param(t, marks=pytest.mark.slow) if t == "tvm" else t
    for t in rg.available_targets()
    if scope_of(t) is None  # (tflite: quantised steps, tests/test_tflite.py)
]


def _compile(name: str, target: str, **options: object) -> tuple[rg.Graph, dict, object]:
    if target == "tvm":
        pytest.importorskip("tvm")
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    return g, p, rg.compile(g, target=target, params=p, **options)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ["stacked_gru", "state_delay_2"])
def test_sequence_models(target: str, name: str) -> None:
    g, p, m = _compile(name, target)
    assert isinstance(m, CompiledModel) and m.mode == "sequence"
    zoo.check_model(g, p, m)


@pytest.mark.parametrize("target", [t for t in TARGETS if t != "reference"])
def test_step_models(target: str) -> None:
    g, p, s = _compile("narx", target, mode="step")
    assert isinstance(s, StepModel) and s.mode == "step"
    rng = np.random.default_rng(3)
    xs = zoo.feeds(g, 6, 2, rng)
    got, want = s.stream(xs, s.initial_states(2)), rg.run(g, xs, p)
    assert set(want) <= set(got)  # (and the taps' carried values, "<slot>_final")
    zoo.assert_close({k: got[k] for k in want}, want)
