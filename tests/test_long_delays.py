"""Long delays: compile time and memory that do not grow with the delay.

A state with a delay of 10^6 hung ``rg.compile(target="onnx")`` (one ``Scan`` state
variable per step of delay), and a tap ``rg.delay(x, 10**9)`` failed inside
onnxruntime (a ``Tile`` of 10^9 initial rows). A long delay is now one ring of
``min(|delay|, T)`` past values with a moving index in the loop, and a tap pads at most
``T`` initial rows; a step model, which carries each past value as an input of its
own, refuses a delay it cannot carry, naming the node and the bytes.
"""

from __future__ import annotations

import numpy as np
import pytest
import rnngraph_onnx._emit as emit

import rnngraph as rg
from tests import zoo


def _graph(delay: int, tap: int) -> rg.Graph:
    g = rg.Graph("long")
    x = g.input("x", 3)
    s = g.state("s", 4, delay=delay)
    g.assign(s, rg.tanh(rg.linear(x, 4, name="in") + rg.linear(s, 4, bias=False, name="rec")))
    g.output("y", s + rg.delay(rg.linear(x, 4, name="out"), tap))
    return g


def _check(g: rg.Graph, m: object, p: dict) -> None:
    rng = np.random.default_rng(0)
    for T, B in [(5, 2), (13, 3)]:
        xs, init = zoo.feeds(g, T, B, rng), zoo.every_initial_state(g, B, rng)
        for lens in (None, rng.integers(0, T + 1, B)):
            zoo.assert_close(
                m.run(xs, sequence_lens=lens, initial_states=init),  # type: ignore[attr-defined]
                rg.run(g, xs, p, sequence_lens=lens, initial_states=init),
            )


@pytest.mark.parametrize("delay", [9, 12, -12, 10**6, -(10**6)])
def test_long_delays_in_a_loop_and_in_taps(delay: int) -> None:
    g = _graph(delay, 10**9 if delay > 0 else 11)
    p = zoo.params_for(g)
    m = rg.compile(g, target="onnx", params=p)
    scan = next(n for n in m.model.graph.node if n.op_type == "Scan")
    assert len(scan.input) <= 8  # the ring, its newest value and a counter: not 10^6
    _check(g, m, p)


@pytest.mark.parametrize("name", ["state_delay_2", "narx", "elman", "layer_norm_lstm"])
@pytest.mark.parametrize("unroll", [1, 3])
def test_every_delay_as_a_ring(name: str, unroll: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rings (normally for delays over RING_DELAY) on the zoo's delays of 1 and 2:
    forward and unrolled loops, lengths per row, initial values."""
    monkeypatch.setattr(emit, "RING_DELAY", 0)
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="onnx", params=p, unroll=unroll, optimize=name != "layer_norm_lstm")
    assert any("ScatterND" in str(n) for n in m.model.graph.node if n.op_type == "Scan")
    zoo.check_model(g, p, m)


def test_a_step_model_refuses_a_delay_it_cannot_carry() -> None:
    g = _graph(10**6, 1)
    with pytest.raises(rg.CompileError, match=r"state node 's'.*1000000 steps back.*16,000,000"):
        rg.compile(g, target="onnx", params=zoo.params_for(g), mode="step")


@pytest.mark.slow
def test_tvm_runs_long_delays() -> None:
    """TVM reads delayed values from whole-sequence buffers (any delay, no extra memory);
    a tap's initial values are a (delay, B, ...) buffer: refused when too big."""
    pytest.importorskip("tvm")
    for delay in (10**6, -(10**6)):
        g = _graph(delay, 10**5 if delay > 0 else 11)
        p = zoo.params_for(g)
        _check(g, rg.compile(g, target="tvm", params=p), p)
    g = _graph(3, 10**9)
    m = rg.compile(g, target="tvm", params=zoo.params_for(g))
    with pytest.raises(rg.InputError, match=r"1000000000 steps back.*32,000,000,000 bytes"):
        m.run({"x": np.zeros((4, 2, 3), np.float32)})
