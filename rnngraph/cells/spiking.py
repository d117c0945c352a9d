"""Spiking neurons: leaky integrate-and-fire layers and liquid state machines.

A LIF neuron integrates its input current into a membrane potential that leaks
by ``beta`` each step and fires a spike (1) when the potential crosses
``threshold``; a spike lowers the potential by the threshold at the next step
(or resets it to zero). The spike is :func:`rnngraph.heaviside`, so training
goes through its surrogate gradient. The equations are snntorch's ``Leaky``
neuron (``reset_delay=True``, the reset signal detached), which the tests check
spike for spike and gradient for gradient.

A refractory period of ``r`` steps keeps a neuron that just fired from integrating
input, and from firing, for the next ``r`` steps (its potential still leaks and
resets).

A liquid state machine (Maass et al., 2002) is a fixed random recurrent pool of
such neurons, read out by a trained linear layer (:func:`rnngraph.fit_readout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rnngraph import ops
from rnngraph.cells._common import check_size, weight, whole
from rnngraph.cells.reservoir import fixed_weight, reservoir_weights
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Value

__all__ = ["RESETS", "lif", "lif_step", "lsm"]

RESETS = ("subtract", "zero", "none")


def lif_step(
    current: Value,
    mem: Value,
    *,
    beta: Value | float,
    threshold: float,
    reset: str,
    surrogate: str,
    slope: float | None,
    blocked: Value | None = None,
) -> tuple[Value, Value]:
    """One step of LIF neurons from the previous potential ``mem``: ``(spikes, potential)``.

    ``blocked``: 1 where a neuron is refractory: it integrates no input and does not
    fire this step (its potential still leaks and resets).
    """
    if reset not in RESETS:
        raise GraphError(f"reset must be one of {RESETS}, got {reset!r}")
    fired = ops.stop_gradient(ops.heaviside(mem - threshold, surrogate, slope=slope))
    if blocked is not None:
        current = current * (1.0 - blocked)
    if reset == "zero":
        new = beta * ((1.0 - fired) * mem) + current
    else:
        new = beta * mem + current
        if reset == "subtract":
            new = new - fired * threshold
    spikes = ops.heaviside(new - threshold, surrogate, slope=slope)
    return (spikes if blocked is None else spikes * (1.0 - blocked)), new


def _refractory(g: Any, name: str, n: int, steps: int) -> Value | None:
    """Each neuron's steps left to rest (None without a refractory period)."""
    return g.state(f"{name}.refractory", n) if steps > 0 else None


def _blocked(count: Value | None) -> Value | None:
    return None if count is None else ops.cast(ops.greater(count, 0.5), "float")


def _rest(g: Any, count: Value | None, spikes: Value, steps: int) -> None:
    """A neuron that fires rests ``steps`` steps; the others count down."""
    if count is not None:
        g.assign(count, ops.where(ops.greater(spikes, 0.5), float(steps), ops.relu(count - 1.0)))


@whole
def lif(
    x: Value,
    size: int | None = None,
    *,
    name: str = "lif",
    beta: float = 0.9,
    threshold: float = 1.0,
    reset: str = "subtract",
    surrogate: str = "arctan",
    slope: float | None = None,
    refractory: int = 0,
    projection: bool = True,
    learn_beta: bool = False,
    weights: Mapping[str, Value] | None = None,
) -> tuple[Value, Value]:
    """A layer of leaky integrate-and-fire neurons: ``(spikes, membrane potential)``.

    With ``projection`` (the default) the input current is ``x @ <name>.W + <name>.b``
    (``size`` neurons); without, ``x`` is the current itself. ``surrogate`` and
    ``slope`` choose the spike's gradient (see :func:`rnngraph.heaviside`; snntorch's
    default is ``"arctan"``). ``learn_beta``: the decay is a param ``<name>.beta``
    (one per neuron, clipped to [0, 1]). State ``<name>.mem`` starts at zero.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("snn")
    >>> spikes, mem = rg.cells.lif(g.input("x", 1), projection=False, beta=0.5)
    >>> g.output("s", spikes)
    >>> rg.run(g, {"x": np.full((5, 1, 1), 0.6)})["s"][:, 0, 0].tolist()
    [0.0, 0.0, 1.0, 0.0, 0.0]
    """
    g = x.graph
    if projection:
        n = check_size(size, f"lif {name!r}: size")
        inp = int(x.shape[-1])
        current = x @ weight(x, weights, "W", name, (inp, n)) + weight(
            x, weights, "b", name, (n,), "zeros"
        )
    else:
        n = int(x.shape[-1])
        if size is not None and check_size(size, f"lif {name!r}: size") != n:
            raise GraphError(f"lif {name!r}: size {size} differs from the input's {n} features")
        current = x
    decay: Value | float = float(beta)
    if learn_beta:
        decay = ops.clip(g.param(f"{name}.beta", n, float(beta)), 0.0, 1.0)
    mem = g.state(f"{name}.mem", n)
    count = _refractory(g, name, n, refractory)
    spikes, new = lif_step(
        current,
        mem,
        beta=decay,
        threshold=float(threshold),
        reset=reset,
        surrogate=surrogate,
        slope=slope,
        blocked=_blocked(count),
    )
    g.assign(mem, new)
    _rest(g, count, spikes, refractory)
    return spikes, new


@whole
def lsm(
    x: Value,
    size: int,
    *,
    name: str = "lsm",
    connectivity: float = 0.1,
    spectral_radius: float = 1.0,
    input_scaling: float = 1.0,
    input_connectivity: float = 0.5,
    beta: float = 0.9,
    threshold: float = 1.0,
    refractory: int = 2,
    surrogate: str = "fast_sigmoid",
    slope: float | None = None,
    seed: int = 0,
    trainable: bool = False,
) -> tuple[Value, Value]:
    """A liquid state machine: ``size`` LIF neurons (refractory for ``refractory`` steps
    after a spike) driven by ``x`` through fixed random input weights and by their own
    spikes of the step before through a sparse random recurrent matrix scaled to
    ``spectral_radius`` (:func:`rnngraph.cells.reservoir_weights`, drawn from ``seed``).
    Returns ``(spikes, membrane potential)``; read it out with a linear layer fitted by
    :func:`rnngraph.fit_readout`, or train through the spikes' surrogate gradient
    (``trainable=True`` makes the weights params ``<name>.Win`` and ``<name>.W``).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("liquid")
    >>> spikes, mem = rg.cells.lsm(g.input("x", 2), 50, seed=1)
    >>> spikes.shape
    ('B', 50)
    """
    g = x.graph
    n = check_size(size, f"lsm {name!r}: size")
    inp = int(x.shape[-1])
    w = reservoir_weights(
        inp,
        n,
        connectivity=connectivity,
        spectral_radius=spectral_radius,
        input_scaling=input_scaling,
        input_connectivity=input_connectivity,
        seed=seed,
    )
    Win = fixed_weight(g, f"{name}.Win", w["Win"], trainable)
    W = fixed_weight(g, f"{name}.W", w["W"], trainable)
    mem = g.state(f"{name}.mem", n)
    spiked = g.state(f"{name}.spikes", n)
    count = _refractory(g, name, n, refractory)
    spikes, new = lif_step(
        x @ Win + spiked @ W,
        mem,
        beta=float(beta),
        threshold=float(threshold),
        reset="subtract",
        surrogate=surrogate,
        slope=slope,
        blocked=_blocked(count),
    )
    g.assign(mem, new)
    g.assign(spiked, spikes)
    _rest(g, count, spikes, refractory)
    return spikes, new
