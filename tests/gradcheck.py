"""Gradient checks against float64 central finite differences, shared by the tests.

``check_gradients(g)`` compares ``rg.vjp`` with the directional derivative of a
random linear functional of every output and final state, along a random
direction per param, for the inputs and for the initial states. ``OP_CASES`` puts
each differentiable op inside a small loop (``op_graph``).
"""

from __future__ import annotations

import numpy as np

import rnngraph as rg
from tests import zoo

__all__ = ["OP_CASES", "check_gradients", "op_graph"]

T, B = 6, 2
EPS = 1e-6
TOL = 1e-6


def _setup(g: rg.Graph, seed: int = 0, keep: tuple[str, ...] = ()):
    rng = np.random.default_rng(seed)
    p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, seed).items()}
    per_seq = g.per_sequence_inputs
    xs = {}
    for k, t in g.inputs.items():
        row = tuple(3 if isinstance(d, str) else d for d in t.row_shape)  # symbolic: 3
        xs[k] = rng.standard_normal((B, *row) if k in per_seq else (T, B, *row))
    started = {  # states that start from a per-sequence input: its gradient is checked there
        k for k, sid in g.state_nodes().items() if str(g.operands(sid)[0][2].ref) in per_seq
    }
    init = {
        k: rng.standard_normal((B, *t.row_shape)) * 0.5
        for k, t in g.states.items()
        if k not in keep and k not in started
    }
    out = rg.run(g, xs, p, initial_states=init)
    cots = {k: rng.standard_normal(v.shape) for k, v in out.items()}
    return rng, p, xs, init, cots


def _loss(g, p, xs, init, cots, **kw) -> float:
    out = rg.run(g, xs, p, initial_states=init, **kw)
    return float(sum(np.sum(out[k] * c) for k, c in cots.items()))


def _rel(a: float, b: float) -> float:
    """Relative error; below 1e-3 in size, central differences' own rounding (~1e-10 here)
    dominates, so small derivatives are judged against 1e-3."""
    return abs(a - b) / max(abs(a), abs(b), 1e-3)


def check_gradients(g: rg.Graph, seed: int = 0, keep: tuple[str, ...] = (), **kw) -> None:
    """``keep``: states left at their declared initial values (counters: the clocks and the
    random generator's step, whose values are integers by construction)."""
    rng, p, xs, init, cots = _setup(g, seed, keep)
    _, grads = rg.vjp(g, xs, p, cotangents=cots, initial_states=init, **kw)

    def fd(perturb) -> float:
        plus = _loss(g, *perturb(EPS), cots, **kw)
        minus = _loss(g, *perturb(-EPS), cots, **kw)
        return (plus - minus) / (2 * EPS)

    for name in p:
        v = rng.standard_normal(p[name].shape)
        want = fd(lambda e, v=v, name=name: ({**p, name: p[name] + e * v}, xs, init))
        got = float(np.sum(grads[name] * v))
        assert _rel(got, want) < TOL, (name, got, want)
    for name in xs:
        v = rng.standard_normal(xs[name].shape)
        want = fd(lambda e, v=v, name=name: (p, {**xs, name: xs[name] + e * v}, init))
        got = float(np.sum(grads[name] * v))
        assert _rel(got, want) < TOL, (name, got, want)
    for name in init:
        v = rng.standard_normal(init[name].shape)
        want = fd(lambda e, v=v, name=name: (p, xs, {**init, name: init[name] + e * v}))
        got = float(np.sum(grads[name] * v))
        assert _rel(got, want) < TOL, (name, got, want)


def op_graph(core) -> rg.Graph:
    """x, a state h and ``core(g, x, h)`` inside the loop: h(t) = tanh(linear(core))."""
    g = rg.Graph("op")
    x = g.input("x", 3)
    h = g.state("h", 3)
    y = core(g, x, h)
    flat = rg.reshape(y, [-1]) if len(y.shape) != 2 else y
    g.assign(h, rg.tanh(rg.linear(flat, 3, name="mix")))
    g.output("y", y)
    return g


def _pos(v: rg.Value) -> rg.Value:
    return rg.sigmoid(v) + 0.5


def _deq(g: rg.Graph, x: rg.Value, h: rg.Value) -> rg.Value:
    """A fixed point reading a weight, the input and the state (a contraction: |W| < 1/3)."""
    w = 0.3 * rg.tanh(g.param("p", (3, 3)))
    drive = x + h
    return rg.fixed_point(lambda z: rg.tanh(z @ w + drive), drive * 0.0, tol=1e-14, max_iter=400)


_WINDOW = {"kernel": [3], "strides": [1], "pads": [[1, 0]], "dilations": [1]}

OP_CASES = {
    "fixed_point": _deq,
    "add": lambda g, x, h: x + h + g.param("p", 3),
    "sub": lambda g, x, h: x - h * g.param("p", (1,)),
    "mul": lambda g, x, h: x * h * g.param("p", 3),
    "div": lambda g, x, h: x / _pos(h) / _pos(g.param("p", 3)),
    "pow": lambda g, x, h: _pos(x + h) ** g.param("p", 3),
    "maximum": lambda g, x, h: rg.maximum(x, h + g.param("p", 3)),
    "minimum": lambda g, x, h: rg.minimum(x * 2.0, h),
    "where": lambda g, x, h: rg.where(rg.greater(x, 0.0), x * h, g.param("p", 3) + h),
    "cast": lambda g, x, h: rg.cast(x + h, "float"),
    "neg": lambda g, x, h: -(x + h),
    "abs": lambda g, x, h: rg.abs(x + h),
    "exp": lambda g, x, h: rg.exp(x + h),
    "log": lambda g, x, h: rg.log(_pos(x + h)),
    "sqrt": lambda g, x, h: rg.sqrt(_pos(x + h)),
    "tanh": lambda g, x, h: rg.tanh(x + h),
    "sigmoid": lambda g, x, h: rg.sigmoid(x + h),
    "hard_sigmoid": lambda g, x, h: rg.hard_sigmoid(x + h, 0.3, 0.4),
    "relu": lambda g, x, h: rg.relu(x + h),
    "leaky_relu": lambda g, x, h: rg.leaky_relu(x + h, 0.1),
    "softplus": lambda g, x, h: rg.softplus(x + h),
    "softsign": lambda g, x, h: rg.softsign(x + h),
    "erf": lambda g, x, h: rg.erf(x + h),
    "sin": lambda g, x, h: rg.sin(x + h),
    "cos": lambda g, x, h: rg.cos(x + h),
    "atan": lambda g, x, h: rg.atan(x + h),
    "clip": lambda g, x, h: rg.clip(x + h, -0.5, 0.7),
    "matmul": lambda g, x, h: (x @ g.param("p", (3, 4))) @ g.param("q", (4, 3)),
    "matvec": lambda g, x, h: rg.reshape((x + h) @ g.param("p", 3), [1]) * h,
    "matmul_signals": lambda g, x, h: rg.reshape(x, [3, 1]) @ rg.reshape(h, [1, 3]),
    "matmul_static_left": lambda g, x, h: g.param("p", (2, 3)) @ rg.reshape(x + h, [3, 1]),
    "concat": lambda g, x, h: rg.concat([x, h, x * h]),
    "slice": lambda g, x, h: rg.slice(rg.concat([x, h]), 1, 5),
    "reshape": lambda g, x, h: rg.reshape(rg.concat([x, h]), [2, 3]),
    "unsqueeze": lambda g, x, h: rg.reduce_sum(
        rg.unsqueeze(x, -2) * rg.unsqueeze(h * g.param("p", 3), -1), [-1]
    ),
    "transpose": lambda g, x, h: rg.transpose(rg.reshape(rg.concat([x, h]), [2, 3]), [0, 2, 1]),
    "gather": lambda g, x, h: rg.gather(x + h, g.constant(np.array([2, 0, 2])), -1),
    "gather_middle": lambda g, x, h: rg.gather(
        rg.reshape(rg.concat([x, h]), [2, 3]), g.constant(np.array([1, 1, 0])), 1
    ),
    "reduce_sum": lambda g, x, h: (
        rg.reduce_sum(rg.reshape(rg.concat([x, h]), [2, 3]), 1, True) * rg.reshape(x, [1, 3])
    ),
    "reduce_mean": lambda g, x, h: rg.reduce_mean(rg.reshape(rg.concat([x, h]), [2, 3]), 2),
    "reduce_max": lambda g, x, h: rg.reduce_max(rg.reshape(rg.concat([x, h]), [2, 3]), 1),
    "reduce_min": lambda g, x, h: rg.reduce_min(rg.reshape(rg.concat([x, h]), [2, 3]), 2),
    "reduce_prod": lambda g, x, h: rg.reduce_prod(rg.reshape(rg.concat([x, h]), [3, 2]), 2),
    "softmax": lambda g, x, h: rg.softmax(x + h),
    "log_softmax": lambda g, x, h: rg.log_softmax(x * h),
    "pad": lambda g, x, h: rg.ops.pad(x + h, [-1], [(1, 2)]),
    "layer_norm": lambda g, x, h: rg.layer_norm(x * h + x, g.param("p", 3), g.param("q", 3)),
    "delay": lambda g, x, h: rg.delay(x, 2) + rg.delay(h, 1, init=np.ones(3)),
    "top_k": lambda g, x, h: rg.top_k(x * h + x, 2)[0],
    "take_along": lambda g, x, h: rg.sort(x + h, descending=True) * g.param("p", 3),
    "argmax": lambda g, x, h: rg.take_along(x * h, rg.argmax(x, keepdims=True)),
    "argmin": lambda g, x, h: rg.take_along(x + h, rg.argmin(h, keepdims=True)),
    "scatter_add_along": lambda g, x, h: rg.scatter_add_along(x * h, rg.argsort(h), x + 1.0),
    "conv": lambda g, x, h: rg.conv(
        rg.reshape(rg.concat([x, h]), [2, 3]),
        g.param("p", (4, 1, 2)),
        padding=1,
        stride=2,
        groups=2,
    ),
    "conv_2d": lambda g, x, h: rg.conv(
        rg.reshape(rg.concat([x, h, x * h]), [1, 3, 3]),
        g.param("p", (2, 1, 2, 2)),
        padding=[(1, 0), 0],
        dilation=[1, 2],
    ),
    "max_pool": lambda g, x, h: rg.max_pool(rg.reshape(rg.concat([x, h]), [2, 3]), 2, 1, 1),
    "max_pool_2d": lambda g, x, h: rg.max_pool(
        rg.reshape(rg.concat([x, h, x * h]), [1, 3, 3]), 2, 1
    ),
    "unfold": lambda g, x, h: rg.ops.unfold(rg.reshape(rg.concat([x, h]), [2, 3]), _WINDOW),
    "fold": lambda g, x, h: rg.ops.fold(
        rg.reshape(rg.concat([x, h, x * h]), [1, 3, 3]), _WINDOW, [4]
    ),
    "solve": lambda g, x, h: rg.solve(g.param("p", (3, 3)) + 3.0 * g.constant(np.eye(3)), x + h),
    "solve_signals": lambda g, x, h: rg.solve(
        rg.reshape(rg.concat([x, h, x * h]), [3, 3]) + 4.0 * g.constant(np.eye(3)),
        rg.reshape(x, [3, 1]) @ g.param("q", (1, 2)),
    ),
    "cumsum": lambda g, x, h: rg.cumsum(x * h, reverse=True) + rg.cumsum(x, exclusive=True),
}
