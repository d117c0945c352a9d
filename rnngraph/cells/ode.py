"""Continuous-time recurrent nets: explicit ODE steps and the cells built on them.

``rg.ode.euler(f, y, dt)`` and ``rg.ode.rk4(f, y, dt)`` advance ``dy/dt = f(y)``
by one step of ``dt`` — a number, or a Value (a per-row input ``(B, 1)`` for
irregularly sampled sequences) — written with graph ops, so they differentiate
and compile like any other. Inputs are held constant over a step (zero-order
hold), as a sampled signal is.

:func:`ctrnn` is Beer's continuous-time recurrent net, ``tau dy/dt = -y + W
sigma(y) + I(t)``; :func:`mtrnn` is Yamashita & Tani's multiple-timescale net:
fast and slow units with their own time constants (the Euler step of size 1 of a
CTRNN, as the paper writes it).

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("decay")
>>> y = g.state("y", 1, init=np.ones(1))
>>> _ = g.input("t", 0)  # (a graph with no other input: its steps)
>>> new = rg.ode.rk4(lambda v: -v, y, 0.1)  # dy/dt = -y
>>> g.assign(y, new)
>>> g.output("z", new)
>>> out = rg.run(g, {"t": np.zeros((10, 1, 0))}, dtype="float64")["z"]
>>> bool(abs(out[-1, 0, 0] - np.exp(-1.0)) < 1e-6)  # fourth order: error ~ dt^4
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rnngraph import ops
from rnngraph.cells._common import activation, check_size, whole
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Value

__all__ = ["METHODS", "ctrnn", "euler", "integrate", "mtrnn", "rk4"]

Field = Callable[[Value], Value]
Step = Value | float


def euler(f: Field, y: Value, dt: Step) -> Value:
    """One explicit Euler step: ``y + dt f(y)``."""
    return y + f(y) * dt


def rk4(f: Field, y: Value, dt: Step) -> Value:
    """One classical Runge-Kutta step (fourth order)."""
    half = dt * 0.5
    k1 = f(y)
    k2 = f(y + k1 * half)
    k3 = f(y + k2 * half)
    k4 = f(y + k3 * dt)
    return y + (k1 + (k2 + k3) * 2.0 + k4) * (dt * (1.0 / 6.0))


METHODS: dict[str, Callable[[Field, Value, Step], Value]] = {"euler": euler, "rk4": rk4}


def integrate(f: Field, y: Value, dt: Step, *, method: str = "rk4", substeps: int = 1) -> Value:
    """``y`` advanced by ``dt`` in ``substeps`` steps of ``method`` (``"euler"``, ``"rk4"``)."""
    if method not in METHODS:
        raise GraphError(f"unknown ODE method {method!r}; choose one of {sorted(METHODS)}")
    if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
        raise GraphError(f"substeps must be an integer of at least 1, got {substeps!r}")
    h = dt * (1.0 / substeps) if substeps > 1 else dt
    for _ in range(substeps):
        y = METHODS[method](f, y, h)
    return y


def _time_constants(g: Any, name: str, tau: Any, n: int, learn: bool) -> Value | np.ndarray:
    """``1 / tau`` per unit: constants, or (``learn``) from a param ``<name>.log_tau``."""
    taus = np.broadcast_to(np.asarray(tau, np.float64), (n,)).copy()
    if np.any(taus <= 0):
        raise GraphError(f"{name}: time constants must be positive, got {tau!r}")
    if learn:
        return ops.exp(-g.param(f"{name}.log_tau", n, np.log(taus).astype(np.float32)))
    return 1.0 / taus


@whole
def ctrnn(
    x: Value,
    size: int,
    *,
    name: str = "ctrnn",
    tau: float | Sequence[float] = 1.0,
    dt: Step = 0.1,
    method: str = "rk4",
    substeps: int = 1,
    activation_name: str = "tanh",
    learn_tau: bool = False,
) -> Value:
    """A continuous-time recurrent net (Beer, 1995): ``size`` units with
    ``tau dy/dt = -y + sigma(y) W + x(t) Win + b``, integrated over ``dt`` per step.

    ``tau``: one time constant or one per unit (``learn_tau``: learned, as
    ``<name>.log_tau``). ``dt``: a number, or a Value ``(B, 1)`` (the time since the
    last sample, for irregular sampling). Params ``<name>.Win``, ``<name>.W``,
    ``<name>.b``; state ``<name>.y`` (starts at zero). Returns the state.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("ct")
    >>> rg.cells.ctrnn(g.input("x", 2), 8, tau=[0.5] * 4 + [2.0] * 4, dt=0.05).shape
    ('B', 8)
    """
    g = x.graph
    n = check_size(size, f"ctrnn {name!r}: size")
    inv_tau = _time_constants(g, f"ctrnn {name!r}", tau, n, learn_tau)
    return _continuous(x, n, name, inv_tau, dt, method, substeps, activation_name, None)


def _continuous(
    x: Value,
    n: int,
    name: str,
    inv_tau: Value | np.ndarray,
    dt: Step,
    method: str,
    substeps: int,
    activation_name: str,
    input_units: int | None,
) -> Value:
    g = x.graph
    f_act = activation(activation_name)
    inp = int(x.shape[-1])
    driven = n if input_units is None else input_units
    Win = g.param(f"{name}.Win", (inp, driven))
    W = g.param(f"{name}.W", (n, n), "normal", scale=1.0 / np.sqrt(n))
    b = g.param(f"{name}.b", n, "zeros")
    current = x @ Win
    if driven < n:
        current = ops.pad(current, [-1], [(0, n - driven)])
    current = current + b
    rate = inv_tau if isinstance(inv_tau, Value) else g.constant(inv_tau)
    y = g.state(f"{name}.y", n)

    def field(v: Value) -> Value:
        return (f_act(v) @ W + current - v) * rate

    new = integrate(field, y, dt, method=method, substeps=substeps)
    g.assign(y, new)
    return new


@whole
def mtrnn(
    x: Value,
    size: tuple[int, int] = (8, 4),
    *,
    name: str = "mtrnn",
    tau: tuple[float, float] = (2.0, 50.0),
    dt: Step = 1.0,
    method: str = "euler",
    activation_name: str = "tanh",
    learn_tau: bool = False,
) -> tuple[Value, Value]:
    """A multiple-timescale recurrent net (Yamashita & Tani, 2008): ``size = (fast,
    slow)`` units with time constants ``tau = (fast, slow)``, every unit connected
    to every other, the input driving the fast units only. With the defaults (Euler,
    ``dt=1``) a step is the paper's ``u(t+1) = (1 - 1/tau) u(t) + (1/tau) (W
    tanh(u(t)) + input)``. Returns ``(fast activations, slow activations)``
    (``tanh`` of the potentials); the state is ``<name>.y``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("mt")
    >>> fast, slow = rg.cells.mtrnn(g.input("x", 3), (10, 5))
    >>> fast.shape, slow.shape
    (('B', 10), ('B', 5))
    """
    g = x.graph
    if len(size) != 2 or len(tau) != 2:
        raise GraphError(f"mtrnn {name!r}: size and tau are (fast, slow) pairs")
    nf = check_size(size[0], f"mtrnn {name!r}: fast size")
    ns = check_size(size[1], f"mtrnn {name!r}: slow size")
    taus = [float(tau[0])] * nf + [float(tau[1])] * ns
    inv_tau = _time_constants(g, f"mtrnn {name!r}", taus, nf + ns, learn_tau)
    u = _continuous(x, nf + ns, name, inv_tau, dt, method, 1, activation_name, nf)
    out = activation(activation_name)(u)
    return ops.slice(out, 0, nf), ops.slice(out, nf, nf + ns)
