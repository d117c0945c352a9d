"""Reservoir computing: echo state networks and the random weights reservoirs share.

An echo state network (Jaeger, 2001) drives a fixed, sparse, random recurrent
pool of leaky tanh units with its input; only a linear readout is trained, in
closed form by ridge regression (:func:`rnngraph.fit_readout`). The update is
reservoirpy's ``Reservoir``::

    x(t) = (1 - leak) x(t-1) + leak tanh(u(t) Win + x(t-1) W + b)

with ``W`` scaled to a chosen spectral radius, so the tests load reservoirpy's
own matrices into :func:`esn` and compare the states step by step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnngraph.cells._common import activation, check_size, whole
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph, Value

__all__ = ["esn", "fixed_weight", "reservoir_weights"]


def reservoir_weights(
    inputs: int,
    size: int,
    *,
    connectivity: float = 0.1,
    spectral_radius: float = 1.0,
    input_scaling: float = 1.0,
    input_connectivity: float = 0.1,
    bias_scaling: float = 0.0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A reservoir's random weights, as reservoirpy draws them by default.

    ``Win`` ``(inputs, size)``: a fraction ``input_connectivity`` of entries are
    ``±input_scaling`` (each sign equally likely), the rest zero. ``W`` ``(size, size)``:
    a fraction ``connectivity`` of standard normal entries, scaled so the largest
    eigenvalue modulus is ``spectral_radius``. ``b`` ``(size,)``: uniform in
    ``±bias_scaling``. Each unit gets at least one input and one recurrent weight.
    """
    for what, v in (("connectivity", connectivity), ("input_connectivity", input_connectivity)):
        if not 0.0 < v <= 1.0:
            raise GraphError(f"{what} must be in (0, 1], got {v}")
    rng = np.random.default_rng(seed)

    def sparse(shape: tuple[int, int], density: float) -> np.ndarray:
        mask = rng.random(shape) < density
        mask[rng.integers(0, shape[0], shape[1]), np.arange(shape[1])] = True  # no dead column
        return mask

    Win = sparse((inputs, size), input_connectivity) * rng.choice([-1.0, 1.0], (inputs, size))
    W = sparse((size, size), connectivity) * rng.standard_normal((size, size))
    radius = float(np.max(np.abs(np.linalg.eigvals(W)))) if size else 0.0
    if radius > 0:
        W *= spectral_radius / radius
    b = rng.uniform(-bias_scaling, bias_scaling, size) if bias_scaling else np.zeros(size)
    return {"Win": Win * input_scaling, "W": W, "b": b}


def fixed_weight(g: Graph, name: str, value: np.ndarray, trainable: bool) -> Value:
    """A reservoir weight: a constant of the graph, or (``trainable``) a param starting
    at ``value``."""
    value = np.asarray(value, np.float64)  # (a run in float32 rounds it then)
    if trainable:
        return g.param(name, value.shape, value)
    return g.constant(value, name=name)


@whole
def esn(
    x: Value,
    size: int,
    *,
    name: str = "esn",
    leak: float = 1.0,
    spectral_radius: float = 1.0,
    input_scaling: float = 1.0,
    connectivity: float = 0.1,
    input_connectivity: float = 0.1,
    bias_scaling: float = 0.0,
    activation_name: str = "tanh",
    seed: int = 0,
    trainable: bool = False,
    weights: dict[str, Any] | None = None,
) -> Value:
    """An echo state network's reservoir of ``size`` leaky units; returns its state
    ``<name>.x`` ``(B, size)`` (starts at zero).

    The weights come from :func:`reservoir_weights` (drawn from ``seed``) unless
    ``weights`` gives arrays ``{"Win": (in, size), "W": (size, size), "b": (size,)}``;
    they are constants of the graph, or params ``<name>.Win``, ``<name>.W``,
    ``<name>.b`` with ``trainable=True``. Read the state out with ``rg.linear`` and
    fit it with :func:`rnngraph.fit_readout`.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("esn")
    >>> state = rg.cells.esn(g.input("u", 1), 100, leak=0.3, spectral_radius=1.25, seed=0)
    >>> g.output("y", rg.linear(state, 1, name="readout"))
    >>> u = np.sin(np.arange(300) / 8.0).reshape(300, 1, 1)
    >>> params = rg.fit_readout(g, {"u": u[:-1]}, u[1:], warmup=50, ridge=1e-8)
    >>> pred = rg.run(g, {"u": u[:-1]}, params)["y"]
    >>> float(np.sqrt(np.mean((pred[50:] - u[51:]) ** 2))) < 1e-3
    True
    """
    g = x.graph
    n = check_size(size, f"esn {name!r}: size")
    if not 0.0 < leak <= 1.0:
        raise GraphError(f"esn {name!r}: leak must be in (0, 1], got {leak}")
    inp = int(x.shape[-1])
    if weights is None:
        w = reservoir_weights(
            inp,
            n,
            connectivity=connectivity,
            spectral_radius=spectral_radius,
            input_scaling=input_scaling,
            input_connectivity=input_connectivity,
            bias_scaling=bias_scaling,
            seed=seed,
        )
    else:
        w = {k: np.asarray(weights[k], np.float64) for k in ("Win", "W", "b")}
        want = {"Win": (inp, n), "W": (n, n), "b": (n,)}
        for k, shape in want.items():
            if w[k].shape != shape:
                raise GraphError(f"esn {name!r}: weights[{k!r}] must be {shape}, got {w[k].shape}")
    f = activation(activation_name)
    state = g.state(f"{name}.x", n)
    drive = x @ fixed_weight(g, f"{name}.Win", w["Win"], trainable)
    drive = drive + state @ fixed_weight(g, f"{name}.W", w["W"], trainable)
    if trainable or np.any(w["b"]):
        drive = drive + fixed_weight(g, f"{name}.b", w["b"], trainable)
    new = f(drive) if leak == 1.0 else state * (1.0 - leak) + f(drive) * leak
    g.assign(state, new)
    return new
