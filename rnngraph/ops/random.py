"""Random numbers inside a graph: counter-based, so every backend draws the same bits.

A draw is a pure function of ``(seed, site, step, row, element)``: the run's
seed, the draw's site in the graph (each draw node gets its own), the step
(counted by the graph's ``rng.step`` state), the batch row and the element's
place in the row. Five rounds of a 32-bit integer hash (Wellons' ``lowbias32``:
xor-shifts and multiplications modulo 2**32, which NumPy, ONNX and TVM all
compute alike) give 32 bits; a uniform number is ``(bits >> 8) + 0.5`` times
``2**-24``, exact in float32, so uniform draws are **bit-identical** on every
backend and in every float dtype. Normal draws (Box–Muller on two uniform
draws) go through ``log``, ``sqrt`` and ``cos``, so backends agree to the
rounding of those functions.

The seed and the step counter are two states the first draw adds to the graph:
``rng.seed`` (read, never changed; ``seed=`` of :func:`rnngraph.run` and of
every compiled model's ``run`` sets its initial value, default 0) and
``rng.step`` (0, 1, 2, ...). Being states, they are carried by step models, so
a stream continues the random sequence a whole-sequence run draws. Both are
floats: seeds lie in ``[0, 2**24)`` and steps count exactly to ``2**24``.

Gradients: ``uniform`` and ``normal`` draws are constants to the adjoint (a
reparameterised sample ``mu + sigma * normal(mu)`` differentiates through
``mu`` and ``sigma``); ``bernoulli`` and ``categorical`` pass the gradient of
their probabilities straight through when asked (``straight_through=True``).

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("noisy")
>>> x = g.input("x", 4)
>>> g.output("y", x + 0.1 * rg.random.normal(x))
>>> xs = np.zeros((3, 2, 4), "float32")
>>> a = rg.run(g, {"x": xs}, seed=7)["y"]
>>> b = rg.run(g, {"x": xs}, seed=7)["y"]
>>> c = rg.run(g, {"x": xs}, seed=8)["y"]
>>> bool((a == b).all()), bool((a == c).any())
(True, False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph, Value, as_value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import BATCH, TensorType

__all__ = [
    "KINDS",
    "MAX_SEED",
    "SEED_STATE",
    "STEP_STATE",
    "bernoulli",
    "categorical",
    "hash_bits",
    "mix",
    "normal",
    "seeded",
    "stop_gradient",
    "uniform",
    "uniform_from_bits",
]

SEED_STATE = "rng.seed"
STEP_STATE = "rng.step"
MAX_SEED = 2**24
KINDS = ("uniform", "normal")

SALT = 0x243F6A88
"""Mixed into the seed first, so the all-zero key does not hash to zero."""
MUL1, MUL2 = 0x7FEB352D, 0x846CA68B
"""The multipliers of ``lowbias32``."""


def mix(x: np.ndarray) -> np.ndarray:
    """One round of the hash on uint32 values (``lowbias32``)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(MUL1)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(MUL2)
    return x ^ (x >> np.uint32(16))


def hash_bits(
    seed: np.ndarray, site: int, step: np.ndarray, row: np.ndarray, element: np.ndarray
) -> np.ndarray:
    """32 random bits for each key (broadcast): the definition every backend follows."""
    with np.errstate(over="ignore"):
        h = mix(seed.astype(np.uint32) ^ np.uint32(SALT))
        h = mix(h ^ np.uint32(site))
        h = mix(h ^ step.astype(np.uint32))
        h = mix(h ^ row.astype(np.uint32))
        return mix(h ^ element.astype(np.uint32))


def uniform_from_bits(bits: np.ndarray, dtype: Any) -> np.ndarray:
    """The uniform number in (0, 1) of 32 bits: ``((bits >> 8) + 0.5) * 2**-24``, exact."""
    top = (bits >> np.uint32(8)).astype(dtype)
    return (top + dtype(0.5)) * dtype(2.0**-24)


def _random_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    for what, t in zip(("seed", "step"), types, strict=True):
        if t.shape != (BATCH, 1) or t.dtype != "float":
            raise ValueError(f"the {what} operand must be a float signal (B, 1), got {t}")
    if attrs.get("kind") not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {attrs.get('kind')!r}")
    shape = attrs.get("shape")
    if not isinstance(shape, list | tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"draws need a fixed row shape of non-negative ints, got {shape!r}")
    return TensorType((BATCH, *shape))


@register_op("random", arity=2, infer=_random_rule, attrs=("kind", "site", "shape"))
def _random(attrs: Mapping[str, Any], seed: np.ndarray, step: np.ndarray) -> np.ndarray:
    """y(t)[b, i] = a draw (uniform in (0, 1) or standard normal) keyed by (seed, site, t, b, i)"""
    dtype = seed.dtype.type
    lead = seed.shape[:-1]  # (..., B): the steps and the batch
    row = tuple(int(d) for d in attrs["shape"])
    out_shape = (*lead, *row)
    n = int(np.prod(row, dtype=np.int64))
    shaped = (*lead, *([1] * len(row)))
    rows = np.arange(lead[-1], dtype=np.uint32).reshape((lead[-1],) + (1,) * len(row))
    seed_k, step_k = seed.reshape(shaped), step.reshape(shaped)
    site = int(attrs["site"])

    def draw(elements: np.ndarray) -> np.ndarray:
        bits = hash_bits(seed_k, site, step_k, rows, elements.reshape(row))
        return uniform_from_bits(np.broadcast_to(bits, out_shape), dtype)

    if attrs["kind"] == "uniform":
        return draw(np.arange(n, dtype=np.uint32))
    u1 = draw(2 * np.arange(n, dtype=np.uint32))
    u2 = draw(2 * np.arange(n, dtype=np.uint32) + 1)
    radius = np.sqrt(dtype(-2.0) * np.log(u1))
    return (radius * np.cos(dtype(2.0 * np.pi) * u2)).astype(dtype)


@register_op("stop_gradient", arity=1, infer=lambda types, attrs: types[0])
def _stop_gradient(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t); its adjoint and tangent are zero (a value the gradient does not see)"""
    return x


def stop_gradient(x: Value, *, name: str | None = None) -> Value:
    """``x`` itself, as a constant to gradients (PyTorch's ``detach``).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("sg")
    >>> x = g.input("x", 2)
    >>> y = rg.random.stop_gradient(x * x)
    >>> y.op
    'stop_gradient'
    """
    x = _value(x, "stop_gradient")
    return x.graph.apply("stop_gradient", [x], name=name)


def _value(x: Any, what: str) -> Value:
    if not isinstance(x, Value):
        raise TypeError(f"{what}: expected a graph Value, got {type(x).__name__}")
    return x


def _rng_states(g: Graph) -> tuple[Value, Value]:
    """The graph's seed and step states, added by its first draw."""
    states = g.state_nodes()
    if SEED_STATE in states and STEP_STATE in states:
        return g.value(states[SEED_STATE]), g.value(states[STEP_STATE])
    if SEED_STATE in states or STEP_STATE in states or g.has_name(SEED_STATE):
        raise GraphError(
            f"graph {g.name!r} has a value named {SEED_STATE!r} or {STEP_STATE!r} that is not "
            "its random generator's; rename it to draw random numbers"
        )
    seed = g.state(SEED_STATE, 1)
    g.assign(seed, seed)
    step = g.state(STEP_STATE, 1)
    g.assign(step, step + 1.0)
    return seed, step


def _draw(kind: str, like: Value, name: str | None) -> Value:
    g = like.graph
    if like.type.symbolic:
        raise GraphError(
            f"{kind}: draws need a fixed row shape; {like.name!r} has shape {like.shape}"
        )
    seed, step = _rng_states(g)
    site = sum(1 for n in g.nodes() if n.op == "random")
    attrs = {"kind": kind, "site": site, "shape": list(like.type.row_shape)}
    return g.apply("random", [seed, step], attrs, name=name)


def uniform(like: Value, *, name: str | None = None) -> Value:
    """Uniform draws in (0, 1) with the shape of one row of ``like``, new at every step.

    ``like`` gives only the shape: a signal ``(B, ...)`` or a time-invariant value
    (its whole shape is the row's). Bit-identical on every backend for the same
    seed. See :mod:`rnngraph.ops.random`.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("u")
    >>> x = g.input("x", 3)
    >>> g.output("u", rg.random.uniform(x))
    >>> u = rg.run(g, {"x": np.zeros((100, 4, 3))}, seed=1)["u"]
    >>> bool(0 < u.min() and u.max() < 1), round(float(u.mean()), 1)
    (True, 0.5)
    """
    return _draw("uniform", _value(like, "uniform"), name)


def normal(like: Value, *, name: str | None = None) -> Value:
    """Standard normal draws shaped like a row of ``like`` (Box–Muller on two uniform draws).

    Reparameterise for gradients: ``mu + sigma * rg.random.normal(mu)`` differentiates
    through ``mu`` and ``sigma``; the draw itself is a constant to the adjoint.
    """
    return _draw("normal", _value(like, "normal"), name)


def bernoulli(
    p: Value | float,
    like: Value | None = None,
    *,
    straight_through: bool = False,
    name: str | None = None,
) -> Value:
    """1.0 with probability ``p``, else 0.0 (element-wise), new at every step.

    ``p`` is a value (its shape is the draw's) or a number with ``like`` giving the
    shape, as for a dropout mask. ``straight_through=True`` gives the gradient of
    the sample to ``p`` as if the sample were ``p`` (Bengio et al., 2013); by default
    the sample is a constant to gradients.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("dropout")
    >>> h = g.input("h", 8)
    >>> keep = rg.random.bernoulli(0.75, like=h)
    >>> g.output("y", h * keep / 0.75)
    >>> y = rg.run(g, {"h": np.ones((2000, 4, 8))}, seed=3)["y"]
    >>> round(float((y > 0).mean()), 2)
    0.75
    """
    if isinstance(p, Value):
        g = p.graph
        shape_of = p if like is None else like
    elif like is not None:
        g = _value(like, "bernoulli").graph
        shape_of = like
    else:
        raise GraphError("bernoulli: with a number for p, pass like= to give the draw's shape")
    from rnngraph.ops.elementwise import add, cast, less

    if straight_through and not isinstance(p, Value):
        raise GraphError("bernoulli: straight_through needs p to be a graph value")
    prob = as_value(p, g)
    hit = less(uniform(shape_of), prob)
    if not straight_through:
        return cast(hit, "float", name=name)
    return add(cast(hit, "float"), prob - stop_gradient(prob), name=name)


def categorical(logits: Value, *, straight_through: bool = False, name: str | None = None) -> Value:
    """A one-hot sample over the last axis of ``logits``, with probabilities softmax(logits).

    Drawn by the Gumbel-max rule: the largest of ``logits - log(-log(u))`` for uniform
    ``u``. ``straight_through=True`` passes the gradient to the logits as if the sample
    were ``softmax(logits)``.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("cat")
    >>> z = g.input("z", 3)
    >>> g.output("s", rg.random.categorical(z))
    >>> logits = np.log(np.tile([0.2, 0.3, 0.5], (2000, 1, 1)))
    >>> s = rg.run(g, {"z": logits}, seed=0)["s"]
    >>> bool((s.sum(-1) == 1).all()), np.round(s.mean((0, 1)), 1).tolist()
    (True, [0.2, 0.3, 0.5])
    """
    from rnngraph.ops.elementwise import add, cast, equal, log, neg
    from rnngraph.ops.reduce import reduce_max, softmax

    logits = _value(logits, "categorical")
    noisy = logits - log(neg(log(uniform(logits))))
    top = equal(noisy, reduce_max(noisy, -1, keepdims=True))
    if not straight_through:
        return cast(top, "float", name=name)
    probs = softmax(logits, -1)
    return add(cast(top, "float"), probs - stop_gradient(probs), name=name)


def seeded(
    graph: Graph, initial_states: Mapping[str, Any] | None, seed: int | None
) -> dict[str, Any]:
    """``initial_states`` with the seed state set to ``seed`` (the ``seed=`` of every ``run``).

    A graph that draws nothing ignores the seed.
    """
    out = dict(initial_states or {})
    if seed is None or SEED_STATE not in graph.states:
        return out
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= int(seed) < MAX_SEED:
        raise ValueError(f"seed must lie in [0, 2**24), got {seed}")
    if SEED_STATE in out:
        raise ValueError(f"pass either seed= or initial_states[{SEED_STATE!r}], not both")
    out[SEED_STATE] = np.full((1,), float(seed))
    return out
