"""Closed-form training of a linear readout: how reservoirs (ESN, LSM) are trained.

:func:`fit_readout` runs the graph, collects what a linear layer (``rg.linear(...,
name=readout)``) reads at every valid step, and solves the ridge regression from
those features to the targets, the bias left unpenalised (the features and
targets centred first, as reservoirpy's ``Ridge`` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.errors import GraphError, InputError, ParamError
from rnngraph.ir.graph import Graph
from rnngraph.runtime.interpreter import run

__all__ = ["fit_readout", "ridge_regression"]


def ridge_regression(
    features: np.ndarray, targets: np.ndarray, ridge: float, *, bias: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` minimising ``|X W + b - Y|² + ridge |W|²`` for rows ``X`` ``(n, f)`` and
    ``Y`` ``(n, o)``, in float64 (``bias=False``: ``b`` is zero)."""
    X = np.asarray(features, np.float64)
    Y = np.asarray(targets, np.float64)
    mx, my = X.mean(axis=0), Y.mean(axis=0)
    if not bias:
        mx, my = np.zeros_like(mx), np.zeros_like(my)
    Xc, Yc = X - mx, Y - my
    A = Xc.T @ Xc + ridge * np.eye(X.shape[1])
    W = np.linalg.solve(A, Xc.T @ Yc)
    return W, my - mx @ W


def _features_node(graph: Graph, readout: str) -> int:
    if f"{readout}.W" not in graph.params:
        raise ParamError(
            f"no readout {readout!r}: the graph has no param {readout + '.W'!r}; declare one "
            f"with rg.linear(features, outputs, name={readout!r})"
        )
    bias = f"{readout}.b" in graph.params
    product = graph.node(f"{readout}.matmul" if bias else readout)
    if product.op != "matmul":
        raise GraphError(f"readout {readout!r} is not an rg.linear layer (found {product.op!r})")
    (src, delay, _), _w = graph.operands(product.id)
    if delay:
        raise GraphError(f"readout {readout!r} reads its features with a delay; fit it unrolled")
    return src


def fit_readout(
    graph: Graph,
    inputs: Mapping[str, Any],
    targets: Any,
    params: Mapping[str, Any] | None = None,
    *,
    readout: str = "readout",
    ridge: float = 1e-6,
    warmup: int = 0,
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """``params`` with the linear layer ``readout`` fitted by ridge regression.

    The layer's features are computed by the reference interpreter over ``inputs``
    (every other param from ``params``, drawn by ``graph.init_params()`` when not
    given), in float64; ``targets`` ``(T, B, outputs)`` are what the layer should give
    at each step. The first ``warmup`` steps (the reservoir's transient) and the steps past
    each row's ``sequence_lens`` are left out.

    Examples
    --------
    See :func:`rnngraph.cells.esn`.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("fit")
    >>> x = g.input("x", 1)
    >>> g.output("y", rg.linear(rg.tanh(x), 1, name="readout"))
    >>> xs = np.linspace(-1, 1, 30).reshape(30, 1, 1)
    >>> p = rg.fit_readout(g, {"x": xs}, 2 * np.tanh(xs) + 1)  # closed form, no gradient steps
    >>> round(float(p["readout.W"].item()), 3), round(float(p["readout.b"].item()), 3)
    (2.0, 1.0)
    """
    src = _features_node(graph, readout)
    p = dict(graph.init_params() if params is None else params)
    W_name, b_name = f"{readout}.W", f"{readout}.b"
    wshape = graph.params[W_name].shape
    p[W_name] = np.zeros(wshape, np.float32)
    probe = graph.copy()
    key = probe.fresh_name(f"{readout}.features")
    probe.output(key, probe.value(src))
    feats = run(
        probe,
        inputs,
        p,
        sequence_lens=sequence_lens,
        initial_states=initial_states,
        dtype=np.float64,
    )[key]
    Y = np.asarray(targets, np.float64)
    if Y.shape != (*feats.shape[:2], wshape[1]):
        raise InputError(
            f"targets must be (T, B, {wshape[1]}) = {(*feats.shape[:2], wshape[1])} for readout "
            f"{readout!r}, got {Y.shape}"
        )
    T, B = feats.shape[:2]
    lens = np.full(B, T) if sequence_lens is None else np.asarray(sequence_lens)
    keep = (np.arange(T)[:, None] >= warmup) & (np.arange(T)[:, None] < lens[None, :])
    if keep.sum() <= 1:
        raise InputError(f"no steps left to fit after {warmup} warm-up steps")
    has_bias = b_name in graph.params
    W, b = ridge_regression(feats[keep], Y[keep], ridge, bias=has_bias)
    dtype = np.asarray(p[W_name]).dtype
    p[W_name] = W.astype(dtype)
    if has_bias:
        p[b_name] = b.astype(dtype)
    return p
