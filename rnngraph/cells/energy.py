"""Energy-based recurrent nets: Hopfield networks and bidirectional associative memories.

Recall runs to convergence inside one step with :func:`rnngraph.fixed_point`
(a row stops when a full update changes no unit; one that never settles is
reported by its iteration count), or over the steps for the stochastic
Glauber dynamics, drawn with :mod:`rnngraph.random`. The weights are params,
filled by Hebb's rule (:func:`hebbian`) or learned (the continuous net is
differentiable: its gradient is the fixed point's implicit one).

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> patterns = np.array([[1, -1, 1, -1, 1, -1], [1, 1, 1, -1, -1, -1]], float)
>>> g = rg.Graph("memory")
>>> probe = g.input("probe", 6, axis=None)
>>> steps = g.input("t", 0)  # the outputs' steps
>>> g.output("z", rg.cells.hopfield(probe, 6, mode="async", name="hop"))
>>> noisy = patterns[:1].copy(); noisy[0, 0] *= -1  # one bit flipped
>>> out = rg.run(g, {"probe": noisy, "t": np.zeros((1, 1, 0))}, {"hop.W": rg.hebbian(patterns)})
>>> out["z"][0, 0].tolist() == patterns[0].tolist()
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnngraph import ops
from rnngraph.cells._common import check_size, whole
from rnngraph.errors import GraphError, ShapeError
from rnngraph.ir.graph import Value

__all__ = ["HOPFIELD_MODES", "bam", "hebbian", "hopfield", "sign"]

HOPFIELD_MODES = ("sync", "async", "glauber", "continuous")


def hebbian(patterns: Any, targets: Any = None) -> np.ndarray:
    """Hebb's rule. ``patterns`` ``(P, N)`` of +-1: the Hopfield weights
    ``xi^T xi / N`` with a zero diagonal. With ``targets`` ``(P, M)``: the
    bidirectional associative memory's ``xi^T eta`` ``(N, M)``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> (rg.hebbian([[1, -1, 1], [1, 1, -1]]) * 3).round().tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, -2.0], [0.0, -2.0, 0.0]]
    """
    xi = np.asarray(patterns, dtype=np.float64)
    if xi.ndim != 2 or not np.isin(xi, (-1.0, 1.0)).all():
        raise ValueError(f"hebbian stores patterns (P, N) of +1 and -1, got shape {xi.shape}")
    if targets is None:
        w = xi.T @ xi / xi.shape[1]
        np.fill_diagonal(w, 0.0)
        return w.astype(np.float32)
    eta = np.asarray(targets, dtype=np.float64)
    if eta.ndim != 2 or eta.shape[0] != xi.shape[0] or not np.isin(eta, (-1.0, 1.0)).all():
        raise ValueError(
            f"hebbian pairs each pattern with a target of +1 and -1: patterns {xi.shape}, "
            f"targets {eta.shape}"
        )
    return (xi.T @ eta).astype(np.float32)


def sign(v: Value) -> Value:
    """+1 where ``v >= 0``, else -1 (a unit at a tie turns on)."""
    return ops.where(ops.less(v, 0.0), -1.0, 1.0)


@whole
def hopfield(
    x: Value,
    size: int | None = None,
    *,
    name: str = "hopfield",
    mode: str = "sync",
    beta: float = 1.0,
    damping: float = 0.5,
    bias: bool = False,
    tol: float | None = None,
    max_iter: int = 100,
    iterations: bool = False,
) -> Any:
    """A Hopfield network recalling from ``x`` ``(B, N)``; param ``<name>.W`` ``(N, N)``.

    ``mode``: ``"sync"`` (every unit at once, ``z <- sign(z W + b)``; may end in a
    2-cycle, which the count reports), ``"async"`` (one unit after another in a
    sweep; always converges), ``"continuous"`` (Hopfield 1984's graded units: the
    equilibrium ``u = tanh(beta u) W + b + x``, found by damped iteration; the result
    is ``tanh(beta u)``), or ``"glauber"`` (stochastic: at each step every unit is +1
    with probability ``sigmoid(2 beta h)``; ``x`` must be per-sequence, the start;
    the result is the state over the steps). ``size`` is ``N`` (checked).
    ``iterations=True`` also returns each row's count (not for ``"glauber"``).

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> xi = np.sign(np.random.default_rng(0).standard_normal((3, 32)))
    >>> g = rg.Graph("hop")
    >>> g.input("t", 0)  # (the steps)
    <Value 't': input -> float(B, 0)>
    >>> z, n = rg.cells.hopfield(g.input("probe", 32, axis=None), 32, iterations=True)
    >>> g.output("z", z); g.output("n", n)
    >>> noisy = xi.copy(); noisy[:, :3] *= -1  # three bits flipped in each
    >>> out = rg.run(g, {"probe": noisy, "t": np.zeros((1, 3, 0))}, {"hopfield.W": rg.hebbian(xi)})
    >>> bool((out["z"][0] == xi).all()), out["n"][0, :, 0].tolist()
    (True, [2.0, 2.0, 2.0])
    """
    if mode not in HOPFIELD_MODES:
        raise ValueError(f"hopfield {name!r}: mode must be one of {HOPFIELD_MODES}, got {mode!r}")
    g = x.graph
    if len(x.shape) != 2:
        raise ShapeError(f"hopfield {name!r}: the probe must be (B, N), got {x.type}")
    n = int(x.shape[1])
    if size is not None and check_size(size, f"hopfield {name!r}: size") != n:
        raise ShapeError(f"hopfield {name!r}: size {size} differs from the probe's {n} units")
    if mode == "continuous":  # learned: small, so the first iterations contract
        W = g.param(f"{name}.W", (n, n), "normal", scale=0.2 / np.sqrt(n))
    else:  # stored: filled by rg.hebbian(patterns)
        W = g.param(f"{name}.W", (n, n), "zeros")
    b = g.param(f"{name}.b", n, "zeros") if bias else None

    def field(z: Value) -> Value:
        h = z @ W
        return h if b is None else h + b

    if mode == "glauber":
        if x.op != "input" or x.name not in g.per_sequence_inputs:
            raise GraphError(
                f"hopfield {name!r}: Glauber dynamics run over the steps from a start; declare "
                "the probe per-sequence, g.input(name, N, axis=None)"
            )
        z = g.state(f"{name}.z", n, init=x)
        p = ops.sigmoid(field(z) * (2.0 * float(beta)))
        new = ops.where(ops.less(ops.random.uniform(z), p), 1.0, -1.0)
        g.assign(z, new)
        return new
    update: Callable[[Value], Value]
    start = x
    if mode == "sync":

        def update(z: Value) -> Value:
            return sign(field(z))

    elif mode == "async":
        columns = [ops.slice(W, i, i + 1, axes=[1]) for i in range(n)]  # (N, 1) each
        masks = [g.constant(np.arange(n) == i) for i in range(n)]
        bs = [None if b is None else ops.slice(b, i, i + 1) for i in range(n)]

        def update(z: Value) -> Value:
            for i in range(n):
                h = z @ columns[i]
                z = ops.where(masks[i], sign(h if bs[i] is None else h + bs[i]), z)
            return z

    else:
        d = float(damping)

        def update(u: Value) -> Value:
            return u * (1.0 - d) + (field(ops.tanh(u * float(beta))) + x) * d

    limit = 0.5 if mode in ("sync", "async") else 1e-6
    found = ops.fixed_point(
        update,
        start,
        tol=limit if tol is None else tol,
        max_iter=max_iter,
        iterations=iterations,
        name=f"{name}.recall",
    )
    z, count = found if iterations else (found, None)
    if mode == "continuous":
        z = ops.tanh(z * float(beta))
    return (z, count) if iterations else z


@whole
def bam(
    x: Value,
    size: int,
    *,
    name: str = "bam",
    max_iter: int = 100,
    iterations: bool = False,
) -> Any:
    """Kosko's bidirectional associative memory: from ``x`` ``(B, N)``, alternately
    ``y <- sign(x W)`` and ``x <- sign(y W^T)`` until neither changes; returns
    ``(x*, y*)`` (and the count with ``iterations=True``). Param ``<name>.W``
    ``(N, size)``, filled by ``rg.hebbian(patterns, targets)``.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> xi = np.array([[1, -1, 1, -1, 1, 1], [1, 1, -1, -1, 1, -1]], float)
    >>> eta = np.array([[1, -1, 1], [-1, 1, 1]], float)
    >>> g = rg.Graph("bam")
    >>> g.input("t", 0)  # (the steps)
    <Value 't': input -> float(B, 0)>
    >>> x, y = rg.cells.bam(g.input("probe", 6, axis=None), 3)
    >>> g.output("y", y)
    >>> feeds = {"probe": xi[1:], "t": np.zeros((1, 1, 0))}
    >>> rg.run(g, feeds, {"bam.W": rg.hebbian(xi, eta)})["y"][0, 0].tolist()
    [-1.0, 1.0, 1.0]
    """
    g = x.graph
    if len(x.shape) != 2:
        raise ShapeError(f"bam {name!r}: the input must be (B, N), got {x.type}")
    n, m = int(x.shape[1]), check_size(size, f"bam {name!r}: size")
    W = g.param(f"{name}.W", (n, m), "zeros")
    Wt = ops.transpose(W)

    def update(s: Value) -> Value:
        xs = ops.slice(s, 0, n)
        y = sign(xs @ W)
        return ops.concat([sign(y @ Wt), y])

    start = ops.concat([x, sign(x @ W)])
    found = ops.fixed_point(
        update, start, tol=0.5, max_iter=max_iter, iterations=iterations, name=f"{name}.recall"
    )
    s, count = found if iterations else (found, None)
    pair = (ops.slice(s, 0, n), ops.slice(s, n, n + m))
    return (*pair, count) if iterations else pair
