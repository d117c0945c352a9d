"""Canonical small graphs, one per cell and structure of the core library.

Each builder returns a graph with input ``x`` (``I`` features) and output
``y``; backend tests run every one of them against the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

import rnngraph as rg
from rnngraph.runtime.arguments import caller_states
from rnngraph.tools.bench import cell_graph
from rnngraph.tools.check import random_inputs_for
from tests.strategies import RandomGraph, feeds_for

I = 3


def _graph(name: str, build: Callable[[rg.Value], rg.Value]) -> rg.Graph:
    g = rg.Graph(name)
    g.output("y", build(g.input("x", I)))
    return g


def _delay2(x: rg.Value) -> rg.Value:
    g = x.graph
    s = g.state("s", 4, delay=2)
    g.assign(s, rg.tanh(rg.linear(x, 4, name="in") + rg.linear(s, 4, bias=False, name="rec")))
    return rg.delay(s, 1, init=np.full(4, 0.5))


def _param_init(x: rg.Value) -> rg.Value:
    return rg.cells.rnn(x, 4, name="r", initial="param")


def _lif(x: rg.Value) -> rg.Value:
    spikes, mem = rg.cells.lif(x, 4, name="lif", beta=0.8, refractory=1)
    return rg.concat([spikes, mem])


def _layer_norm_lstm(x: rg.Value) -> rg.Value:
    """An LSTM whose gate pre-activations are layer-normalised: no fused op covers it."""
    g = x.graph
    H = 4
    h, c = g.state("h", H), g.state("c", H)
    z = rg.linear(x, 4 * H, name="Wx") + rg.linear(h, 4 * H, bias=False, name="Rh")
    mu = rg.reduce_mean(z, -1, keepdims=True)
    var = rg.reduce_mean((z - mu) * (z - mu), -1, keepdims=True)
    z = (z - mu) / rg.sqrt(var + 1e-5) * g.param("ln.g", 4 * H, 1.0) + g.param("ln.b", 4 * H, 0.0)
    i, f, o, u = rg.split(z, 4)
    c_new = rg.sigmoid(f) * c + rg.sigmoid(i) * rg.tanh(u)
    h_new = rg.sigmoid(o) * rg.tanh(c_new)
    g.assign(h, h_new)
    g.assign(c, c_new)
    return h_new


def elman_graph(inp: int = 3, hidden: int = 5, out: int = 2) -> rg.Graph:
    """The quick-start Elman net: the canonical self-loop with delay 1."""
    g = rg.Graph("elman")
    x = g.input("x", inp)
    h = g.state("h", hidden)
    h_new = rg.tanh(rg.linear(x, hidden, name="in") + rg.linear(h, hidden, bias=False, name="rec"))
    g.assign(h, h_new)
    g.output("y", rg.linear(h_new, out, name="out"))
    return g


CELLS: dict[str, Callable[[], rg.Graph]] = {
    "elman": lambda: _graph("elman", lambda x: rg.cells.elman(x, 5, 2, name="e")),
    "jordan": lambda: _graph("jordan", lambda x: rg.cells.jordan(x, 5, 2, name="j")),
    "rnn": lambda: _graph("rnn", lambda x: rg.cells.rnn(x, 4, name="r")),
    "rnn_reverse": lambda: _graph(
        "rnn_rev", lambda x: rg.cells.rnn(x, 4, name="r", direction="reverse")
    ),
    "lstm": lambda: _graph("lstm", lambda x: rg.cells.lstm(x, 4, name="l")),
    "lstm_peephole_clip": lambda: _graph(
        "lstm_pc", lambda x: rg.cells.lstm(x, 4, name="l", peepholes=True, clip=0.8)
    ),
    "gru": lambda: _graph("gru", lambda x: rg.cells.gru(x, 4, name="g")),
    "gru_lbr": lambda: _graph(
        "gru_lbr", lambda x: rg.cells.gru(x, 4, name="g", linear_before_reset=True)
    ),
    "indrnn": lambda: _graph("indrnn", lambda x: rg.cells.indrnn(x, 4, name="ind")),
    "fir": lambda: _graph("fir", lambda x: rg.cells.fir(x, 2, taps=3, name="f")),
    "narx": lambda: _graph(
        "narx", lambda x: rg.cells.narx(x, 5, 2, input_taps=2, output_taps=2, name="n")
    ),
    "stacked_gru": lambda: _graph(
        "stacked", lambda x: rg.cells.stacked(rg.cells.gru, x, [4, 3], name="s")
    ),
    "bidirectional_lstm": lambda: _graph(
        "bi", lambda x: rg.cells.lstm(x, 3, name="bi", direction="bidirectional")
    ),
    "state_delay_2": lambda: _graph("delay2", _delay2),
    "hopfield_continuous": lambda: _graph(
        "hop", lambda x: rg.cells.hopfield(x, mode="continuous", name="h", tol=1e-12, max_iter=500)
    ),
    "esn": lambda: _graph(
        "esn", lambda x: rg.cells.esn(x, 6, leak=0.5, connectivity=0.5, input_connectivity=0.7)
    ),
    "lif": lambda: _graph("lif", _lif),
    "lsm": lambda: _graph("lsm", lambda x: rg.cells.lsm(x, 6, input_scaling=3.0, seed=1)[1]),
    "ctrnn": lambda: _graph("ctrnn", lambda x: rg.cells.ctrnn(x, 4, tau=[0.5, 1, 2, 4], dt=0.2)),
    "mtrnn": lambda: _graph("mtrnn", lambda x: rg.cells.mtrnn(x, (3, 2), tau=(2.0, 8.0))[0]),
    "clockwork": lambda: _graph("cw", lambda x: rg.cells.clockwork(x, 6, periods=(1, 2, 3))),
    "hrnn": lambda: _graph("hrnn", lambda x: rg.cells.hrnn(x, 4, upper_size=3, every=3)[1]),
    "history_compressor": lambda: _graph(
        "hc", lambda x: rg.cells.history_compressor(x, 4, chunker_size=3, threshold=0.5)[0]
    ),
    "rmlp": lambda: _graph("rmlp", lambda x: rg.cells.rmlp(x, [4, 3])),
    "mgu": lambda: _graph("mgu", lambda x: rg.cells.mgu(x, 4)),
    "gru_variant": lambda: _graph("gv", lambda x: rg.cells.gru_variant(x, 4, variant=1)),
    "jordan_decay": lambda: _graph("jd", lambda x: rg.cells.jordan(x, 4, 2, decay=0.5)),
    "indrnn_bound": lambda: _graph("ib", lambda x: rg.cells.indrnn(x, 4, bound=1.05)),
    "neural_stack": lambda: _graph(
        "stack", lambda x: rg.cells.neural_stack(x, 4, width=2, capacity=8)[1]
    ),
    "neural_queue": lambda: _graph(
        "queue", lambda x: rg.cells.neural_stack(x, 4, width=2, capacity=8, kind="queue")[1]
    ),
    "ntm": lambda: _graph("ntm", lambda x: rg.cells.ntm(x, 4, rows=5, width=3)[1]),
    "dnc": lambda: _graph("dnc", lambda x: rg.cells.dnc(x, 4, rows=4, width=3, read_heads=2)[1]),
    "second_order": lambda: _graph("so", lambda x: rg.cells.second_order(x, 4)),
    "param_initial_state": lambda: _graph("pinit", _param_init),
    "layer_norm_lstm": lambda: _graph("lnlstm", _layer_norm_lstm),
    # the same cell with the layer_norm op (one ONNX LayerNormalization per step)
    "layer_norm_op_lstm": lambda: cell_graph("LN-LSTM", 4, inputs=I),
}

CAUSAL = [k for k in CELLS if k not in ("rnn_reverse", "bidirectional_lstm")]

SURROGATE = {"lif", "lsm"}
"""Cells whose gradient is a spike's surrogate, not the derivative finite differences
see (tests/test_spiking.py checks them against snntorch)."""


def params_for(g: rg.Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Params with every learned initial state made nonzero, so it is visibly used."""
    p = g.init_params(seed=seed)
    rng = np.random.default_rng(seed + 100)
    for k in p:
        if k.endswith(".init"):
            p[k] = rng.uniform(-0.5, 0.5, p[k].shape).astype(p[k].dtype)
    return p


def feeds(g: rg.Graph, T: int, B: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random float32 sequences ``(T, B, *row)`` for every input of ``g`` (``(B, *row)`` for a
    per-sequence one); symbolic dimensions take size 3 (what ``rnngraph check`` feeds)."""
    return random_inputs_for(g, T, B, rng)


def every_initial_state(g: rg.Graph, B: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random float32 initial values ``(B, *row)`` for every state of ``g``."""
    return {
        s: rng.standard_normal((B, *t.row_shape)).astype("float32") for s, t in g.states.items()
    }


def caller_initial_states(g: rg.Graph, B: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random initial values ``(B, *row)`` for the states that take theirs from the caller."""
    return {
        s: rng.standard_normal((B, *t.row_shape)).astype("float32")
        for s, t in g.states.items()
        if s in caller_states(g)
    }


def assert_close(
    got: dict[str, np.ndarray], want: dict[str, np.ndarray], tol: float = 1e-5
) -> None:
    """The same results by name, each within ``tol`` (absolute and relative)."""
    assert set(got) == set(want)
    for k, w in want.items():
        np.testing.assert_allclose(got[k], w, atol=tol, rtol=tol, err_msg=k)


def check_model(
    g: rg.Graph, p: dict[str, np.ndarray], m: Any, seed: int = 0, every_state: bool = True
) -> None:
    """A compiled model of ``g`` against the reference: two lengths and batches from one
    build, with caller initial states, with and without lengths per row; then no steps
    and no rows (:func:`check_empty_axes`; ``every_state``: also with every state's
    initial value given, for models that take them all); then from 8 threads at once
    (:func:`check_threads`)."""
    rng = np.random.default_rng(seed)
    for T, B in [(7, 3), (4, 2)]:
        xs, init = feeds(g, T, B, rng), caller_initial_states(g, B, rng)
        assert_close(m.run(xs, initial_states=init), rg.run(g, xs, p, initial_states=init))
        lens = rng.integers(0, T + 1, B)
        assert_close(
            m.run(xs, initial_states=init, sequence_lens=lens),
            rg.run(g, xs, p, initial_states=init, sequence_lens=lens),
        )
    check_empty_axes(g, p, m, seed, every_state)
    check_threads(g, p, m, calls=64)


def check_empty_axes(
    g: rg.Graph, p: dict[str, np.ndarray], m: Any, seed: int = 0, every_state: bool = True
) -> None:
    """A compiled model of ``g`` against the reference on sequences with no steps or no
    rows (``T=0``, ``B=0``, both): with and without lengths, with the initial states the
    caller must give, and (``every_state``) with every state's initial value given."""
    rng = np.random.default_rng(seed)
    for T, B in [(0, 3), (4, 0), (0, 0)]:
        xs = feeds(g, T, B, rng)
        inits = [caller_initial_states(g, B, rng)]
        if every_state:
            inits.append(every_initial_state(g, B, rng))
        for init in inits:
            for lens in (None, rng.integers(0, T + 1, B)):
                assert_close(
                    m.run(xs, initial_states=init, sequence_lens=lens),
                    rg.run(g, xs, p, initial_states=init, sequence_lens=lens),
                )


def check_threads(
    g: rg.Graph,
    p: dict[str, np.ndarray],
    m: Any,
    calls: int = 1000,
    threads: int = 8,
    lengths: bool = True,
) -> None:
    """``calls`` runs of one compiled model from ``threads`` threads at once, each on its
    own inputs (half of them with lengths per row, if ``lengths``), every result checked
    against the reference."""
    rng = np.random.default_rng(7)
    cases = []
    for i in range(16):
        xs = feeds(g, 5, 16, rng)
        init = caller_initial_states(g, 16, rng)
        lens = rng.integers(0, 6, 16) if lengths and i % 2 else None
        cases.append((xs, init, lens, rg.run(g, xs, p, initial_states=init, sequence_lens=lens)))

    def call(i: int) -> list[str]:
        xs, init, lens, want = cases[i % len(cases)]
        got = m.run(xs, initial_states=init, sequence_lens=lens)
        return [k for k in want if not np.allclose(got[k], want[k], atol=1e-5, rtol=1e-5)]

    with ThreadPoolExecutor(threads) as pool:
        wrong = [(i, bad) for i, bad in enumerate(pool.map(call, range(calls))) if bad]
    assert not wrong, f"{len(wrong)} of {calls} calls wrong, first: {wrong[:3]}"


def check_random_graph(rgraph: RandomGraph, m: Any, p: dict[str, np.ndarray]) -> None:
    """A compiled model of a random graph against the reference: two lengths and batches,
    then lengths per row."""
    g = rgraph.graph
    for T, B in [(5, 2), (8, 3)]:
        xs = {k: v.astype(np.float32) for k, v in feeds_for(rgraph, T, B).items()}
        assert_close(m.run(xs), rg.run(g, xs, p))
    lens = np.array([8, 3, 0])
    assert_close(m.run(xs, sequence_lens=lens), rg.run(g, xs, p, sequence_lens=lens))
