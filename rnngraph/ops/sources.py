"""Ops with values from outside the dataflow (inputs, params, constants) and delays.

``state`` and ``delay`` are identities whose single operand edge carries the
delay and the initial value: all time structure lives on edges, so analyses
and transforms read delays in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import InitSpec, Value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import TensorType

__all__ = ["delay"]


def _declared(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    raise ValueError("a source op's type is declared, not inferred")


def _source(attrs: Mapping[str, Any]) -> np.ndarray:
    raise RuntimeError("source values are bound by the interpreter, not computed")


for _op, _meaning in (
    ("input", "y(t) = the caller's sequence at step t"),
    ("param", "y(t) = the parameter's value, the same at every step"),
    ("constant", "y(t) = the stored array, the same at every step"),
):
    _fn = lambda attrs: _source(attrs)  # noqa: E731
    _fn.__doc__ = _meaning
    register_op(_op, arity=0, infer=_declared, source=True)(_fn)


def _identity_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    if not types[0].batched:
        raise ValueError(
            f"only signals can be delayed; {types[0]} is time-invariant, so every step "
            "already sees the same value"
        )
    return types[0]


@register_op("state", arity=1, infer=_identity_rule, attrs=("delay", "init"))
def _state(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = v(t - delay), or the initial value where t - delay is outside the sequence"""
    return x


@register_op("delay", arity=1, infer=_identity_rule)
def _delay(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t) = x(t - steps), or the initial value where t - steps is outside the sequence"""
    return x


def delay(
    value: Value, steps: int = 1, init: str | np.ndarray = "zeros", *, name: str | None = None
) -> Value:
    """A finite-impulse tap: ``value`` as it was ``steps`` steps ago.

    Parameters
    ----------
    value : Value
        A signal.
    steps : int
        The delay; negative for a look-ahead (``value(t + |steps|)``), which
        suits offline sequence models only.
    init : {"zeros", "param"} or ndarray
        What is read before the sequence starts (or past its end, for a
        look-ahead): zeros, a learned parameter ``<name>.init`` of one row's
        shape, or a fixed array.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("fir")
    >>> x = g.input("x", 1)
    >>> g.output("y", x + rg.delay(x, 2))       # y(t) = x(t) + x(t - 2)
    >>> seq = np.arange(1, 6, dtype="float32").reshape(5, 1, 1)
    >>> rg.run(g, {"x": seq})["y"].ravel().tolist()
    [1.0, 2.0, 4.0, 6.0, 8.0]
    """
    if not isinstance(value, Value):
        raise TypeError(f"delay: expected a graph Value, got {type(value).__name__}")
    if int(steps) == 0:
        return value
    g = value.graph
    node = g.apply("delay", [value], {}, name=name)
    nid = node.node
    spec: InitSpec
    node_name = node.name
    if isinstance(init, np.ndarray):
        spec = g.init_spec(node_name, value.type, init)
    elif init == "zeros":
        spec = InitSpec()
    elif init == "param":
        spec = g.init_spec(node_name, value.type, "param")
    else:
        raise GraphError(f"delay: init must be 'zeros', 'param' or an array, got {init!r}")
    g.set_edge(value.node, nid, 0, delay=int(steps), init=spec)
    return node
