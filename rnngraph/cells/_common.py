"""What the cells share: activation names, directions, parameter declaration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rnngraph import ops
from rnngraph.graph import Value

__all__ = ["ACTIVATIONS", "activation", "clipped", "direction_delay", "weight"]

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


def activation(name: str) -> Callable[[Value], Value]:
    """The builder function for an activation given by name (``"tanh"``, ``"Sigmoid"``...)."""
    key = name.lower()
    key = _ONNX_NAMES.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]


def direction_delay(direction: str) -> int:
    """The state delay that makes a recurrence run in ``direction``."""
    if direction == "forward":
        return 1
    if direction == "reverse":
        return -1
    raise ValueError(f"direction must be 'forward' or 'reverse' here, got {direction!r}")


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
            raise x.graph._shape_error(
                "cell", name, f"weight {role!r} must have shape {shape}, got {w.type}", [w]
            )
        return w
    return x.graph.param(f"{name}.{role}", shape, init, scale=scale)


def clipped(v: Value, clip: float | None) -> Value:
    """``v`` clipped to ``[-clip, clip]`` (ONNX's cell clip), or ``v`` itself."""
    return v if clip is None else ops.clip(v, -float(clip), float(clip))
