"""What the cells share: activation names, directions, parameter declaration."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from rnngraph import ops
from rnngraph.errors import GraphError, ShapeError
from rnngraph.ir.graph import Value

__all__ = [
    "ACTIVATIONS",
    "activation",
    "check_size",
    "clipped",
    "direction_delay",
    "onnx_weights",
    "weight",
    "whole",
]

CellFn = TypeVar("CellFn", bound=Callable[..., Any])

ACTIVATIONS: dict[str, Callable[[Value], Value]] = {
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "relu": ops.relu,
    "hard_sigmoid": ops.hard_sigmoid,
    "softsign": ops.softsign,
    "softplus": ops.softplus,
    "identity": lambda v: v,
}
"""Activation names the cells accept (ONNX's names, lower-cased, also work)."""

_ONNX_NAMES = {"hardsigmoid": "hard_sigmoid", "affine": "identity"}


def check_size(n: Any, what: str) -> int:
    """``n`` if it is a size of at least 1 (a layer's width), else a ShapeError naming ``what``."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ShapeError(f"{what} must be an integer of at least 1, got {n!r}")
    return int(n)


def activation(name: str) -> Callable[[Value], Value]:
    """The builder function for an activation given by name (``"tanh"``, ``"Sigmoid"``...)."""
    key = name.lower()
    key = _ONNX_NAMES.get(key, key)
    if key not in ACTIVATIONS:
        raise GraphError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]


def direction_delay(direction: str) -> int:
    """The state delay that makes a recurrence run in ``direction``."""
    if direction == "forward":
        return 1
    if direction == "reverse":
        return -1
    raise GraphError(f"direction must be 'forward' or 'reverse' here, got {direction!r}")


def weight(
    x: Value,
    weights: Mapping[str, Value] | None,
    role: str,
    name: str,
    shape: tuple[int, ...],
    init: Any = "uniform",
    scale: float | None = None,
) -> Value:
    """The parameter for ``role``: the caller's Value if given, else a new ``<name>.<role>``."""
    if weights and role in weights:
        w = weights[role]
        if tuple(w.shape) != shape:
            raise x.graph.shape_error(
                "cell", name, f"weight {role!r} must have shape {shape}, got {w.type}", [w]
            )
        return w
    return x.graph.param(f"{name}.{role}", shape, init, scale=scale)


def clipped(v: Value, clip: float | None) -> Value:
    """``v`` clipped to ``[-clip, clip]`` (ONNX's cell clip), or ``v`` itself."""
    return v if clip is None else ops.clip(v, -float(clip), float(clip))


def onnx_weights(
    x: Value,
    weights: Mapping[str, Value] | None,
    name: str,
    gates: int,
    hidden: int,
    *,
    bias: bool,
) -> tuple[Value, Value, Value | None]:
    """``W (gates*H, I)``, ``R (gates*H, H)`` and ``B (2*gates*H,)`` in ONNX's layout.

    Drawn from ``U(-1/sqrt(H), 1/sqrt(H))``, as PyTorch initialises its RNNs.
    """
    In, H = int(x.shape[-1]), int(hidden)
    s = 1.0 / H**0.5
    W = weight(x, weights, "W", name, (gates * H, In), scale=s)
    R = weight(x, weights, "R", name, (gates * H, H), scale=s)
    B = weight(x, weights, "B", name, (2 * gates * H,), scale=s) if bias else None
    return W, R, B


def whole(cell: CellFn) -> CellFn:
    """Build ``cell`` all or nothing (:meth:`rnngraph.Graph.building`): a call that raises
    leaves the graph of its first Value argument as it was, its names free."""

    @functools.wraps(cell)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        graph = next((a.graph for a in args if isinstance(a, Value)), None)
        if graph is None:
            return cell(*args, **kwargs)
        with graph.building():
            return cell(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
