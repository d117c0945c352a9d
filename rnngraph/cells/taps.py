"""Finite-impulse structures: the tapped delay line (TDNN) and NARX networks."""

from __future__ import annotations

from rnngraph import ops
from rnngraph.cells._common import activation as activation_fn
from rnngraph.cells._common import whole
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Value

__all__ = ["fir", "narx", "tapped"]


@whole
def tapped(x: Value, taps: int, *, name: str) -> Value:
    """``[x(t), x(t-1), ..., x(t-taps)]`` concatenated along features."""
    if taps < 0:
        raise GraphError(f"taps must be >= 0, got {taps}")
    delayed = [x] + [ops.delay(x, k, name=f"{name}.z{k}") for k in range(1, taps + 1)]
    return delayed[0] if taps == 0 else ops.concat(delayed, name=f"{name}.taps")


@whole
def fir(
    x: Value,
    out_features: int,
    taps: int,
    *,
    name: str = "fir",
    activation: str = "identity",
) -> Value:
    """A finite-impulse-response layer (tapped delay line, TDNN).

    ``y(t) = act(sum_k x(t-k) W_k + b)`` for ``k = 0..taps``, as one linear
    map ``<name>.W ((taps+1) I, out)`` over the concatenated taps. No cycle:
    it runs over all time steps at once.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("tdnn")
    >>> rg.cells.fir(g.input("x", 2), 3, taps=4).shape
    ('B', 3)
    """
    z = tapped(x, taps, name=name)
    return activation_fn(activation)(ops.linear(z, out_features, name=name))


@whole
def narx(
    x: Value,
    hidden: int,
    out_features: int,
    *,
    input_taps: int = 2,
    output_taps: int = 2,
    name: str = "narx",
    activation: str = "tanh",
    initial: str = "zeros",
) -> Value:
    """Nonlinear autoregressive network with exogenous inputs.

    ``y(t) = V act(W [x(t..t-a), y(t-1..t-b)] + b) + c`` with ``a =
    input_taps`` and ``b = output_taps >= 1``. The output feeds back
    through state ``<name>.y`` (delay 1) and further taps on it.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("narx")
    >>> rg.cells.narx(g.input("u", 1), 8, 1, input_taps=3, output_taps=2).shape
    ('B', 1)
    """
    if output_taps < 1:
        raise GraphError("a NARX net feeds back at least one past output (output_taps >= 1)")
    g = x.graph
    y_prev = g.state(f"{name}.y", int(out_features), initial)
    past_y = tapped(y_prev, output_taps - 1, name=f"{name}.y")
    past_x = tapped(x, input_taps, name=f"{name}.x")
    h = activation_fn(activation)(
        ops.linear(ops.concat([past_x, past_y]), hidden, name=f"{name}.hidden")
    )
    y = ops.linear(h, out_features, name=f"{name}.out")
    g.assign(y_prev, y)
    return y
