"""Simple recurrent cells: Elman, Jordan, the ONNX RNN, IndRNN."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph import ops
from rnngraph.cells._common import activation as activation_fn
from rnngraph.cells._common import (
    clipped,
    direction_delay,
    onnx_weights,
    whole,
)
from rnngraph.cells.compose import directional
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Value

__all__ = ["elman", "indrnn", "jordan", "rnn", "rnn_step", "second_order"]


def rnn_step(
    x: Value,
    h: Value,
    W: Value,
    R: Value,
    B: Value | None = None,
    *,
    activation_name: str = "tanh",
    clip: float | None = None,
) -> Value:
    """One ONNX RNN step: ``Ht = f(Xt Wi' + Ht-1 Ri' + Wbi + Rbi)``."""
    pre = ops.matmul(x, ops.transpose(W)) + ops.matmul(h, ops.transpose(R))
    if B is not None:
        wb, rb = ops.split(B, 2)
        pre = pre + (wb + rb)
    return activation_fn(activation_name)(clipped(pre, clip))


@directional
def rnn(
    x: Value,
    hidden: int,
    *,
    name: str = "rnn",
    direction: str = "forward",
    activation: str = "tanh",
    bias: bool = True,
    clip: float | None = None,
    initial: str = "zeros",
    weights: Mapping[str, Value] | None = None,
) -> Value:
    """The vanilla RNN layer of ONNX: params ``<name>.W (H, I)``, ``.R (H, H)``, ``.B (2H,)``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("r")
    >>> rg.cells.rnn(g.input("x", 3), 4, direction="reverse").shape
    ('B', 4)
    """
    W, R, B = onnx_weights(x, weights, name, 1, hidden, bias=bias)
    h = x.graph.state(f"{name}.h", int(hidden), initial, delay=direction_delay(direction))
    h_new = rnn_step(x, h, W, R, B, activation_name=activation, clip=clip)
    x.graph.assign(h, h_new)
    return h_new


@whole
def elman(
    x: Value,
    hidden: int,
    out_features: int | None = None,
    *,
    name: str = "elman",
    direction: str = "forward",
    activation: str = "tanh",
    initial: str = "zeros",
) -> Value:
    """Elman's simple recurrent network: the hidden layer feeds back through a context state.

    ``h(t) = act(x(t) W + h(t-1) U + b)``; with ``out_features``, the
    result is ``y(t) = h(t) V + c``, else ``h``. Params ``<name>.in.W``,
    ``<name>.in.b``, ``<name>.rec.W`` (and ``<name>.out.W``, ``.out.b``);
    state ``<name>.h``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("e")
    >>> rg.cells.elman(g.input("x", 3), 8, 2).shape
    ('B', 2)
    """
    g = x.graph
    h = g.state(f"{name}.h", int(hidden), initial, delay=direction_delay(direction))
    pre = ops.linear(x, hidden, name=f"{name}.in") + ops.linear(
        h, hidden, bias=False, name=f"{name}.rec"
    )
    h_new = activation_fn(activation)(pre)
    g.assign(h, h_new)
    if out_features is None:
        return h_new
    return ops.linear(h_new, out_features, name=f"{name}.out")


@whole
def jordan(
    x: Value,
    hidden: int,
    out_features: int,
    *,
    name: str = "jordan",
    direction: str = "forward",
    activation: str = "tanh",
    output_activation: str = "identity",
    initial: str = "zeros",
    decay: float = 0.0,
) -> Value:
    """Jordan's network: the *output* feeds back through a state.

    ``h(t) = act(x(t) W + c(t-1) U + b)``, ``y(t) = out_act(h(t) V + c)``, with the
    context ``c(t) = decay c(t-1) + y(t)``: with ``decay`` 0 (the default) the last
    output, else Jordan's self-recurrent context units (a leaky trace of the outputs).
    Params ``<name>.in.*``, ``<name>.rec.W``, ``<name>.out.*``; state
    ``<name>.y`` (the context). Returns ``y``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("j")
    >>> rg.cells.jordan(g.input("x", 3), 8, 2, decay=0.5).shape
    ('B', 2)
    """
    if not 0.0 <= decay < 1.0:
        raise GraphError(f"jordan {name!r}: decay must be in [0, 1), got {decay}")
    g = x.graph
    ctx = g.state(f"{name}.y", int(out_features), initial, delay=direction_delay(direction))
    h = activation_fn(activation)(
        ops.linear(x, hidden, name=f"{name}.in")
        + ops.linear(ctx, hidden, bias=False, name=f"{name}.rec")
    )
    y = activation_fn(output_activation)(ops.linear(h, out_features, name=f"{name}.out"))
    g.assign(ctx, y + ctx * float(decay) if decay else y)
    return y


@whole
def indrnn(
    x: Value,
    hidden: int,
    *,
    name: str = "indrnn",
    direction: str = "forward",
    activation: str = "relu",
    initial: str = "zeros",
    bound: float | None = None,
) -> Value:
    """Independently recurrent network (Li et al. 2018): element-wise recurrence.

    ``h(t) = act(x(t) W + u (.) h(t-1) + b)``. Params ``<name>.W (I, H)``,
    ``<name>.u (H,)``, ``<name>.b (H,)``; state ``<name>.h``. ``bound``: the paper's
    limit on ``|u|`` (``2 ** (1 / T)`` keeps a memory of ``T`` steps from exploding),
    kept by ``rg.train`` after every update.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("ind")
    >>> h = rg.cells.indrnn(g.input("x", 3), 16, bound=2 ** (1 / 100))
    >>> round(g.param_bounds["indrnn.u"], 4)
    1.007
    """
    g = x.graph
    In, H = int(x.shape[-1]), int(hidden)
    W = g.param(f"{name}.W", (In, H), "uniform")
    u_scale = 1.0 if bound is None else min(1.0, float(bound))
    u = g.param(f"{name}.u", (H,), "uniform", scale=u_scale, bound=bound)
    b = g.param(f"{name}.b", (H,), "zeros")
    h = g.state(f"{name}.h", H, initial, delay=direction_delay(direction))
    h_new = activation_fn(activation)(ops.matmul(x, W) + u * h + b)
    g.assign(h, h_new)
    return h_new


@whole
def second_order(
    x: Value,
    size: int,
    *,
    name: str = "second_order",
    activation: str = "sigmoid",
    start: int | None = 0,
) -> Value:
    """A second-order recurrent net (Giles et al., 1992): the state and the input
    multiply, ``h_i(t) = act(sum_jk W_ijk h_j(t-1) x_k(t) + b_i)``, so each input symbol
    selects its own state transition, the structure of a finite automaton. Params
    ``<name>.W`` ``(H * I, H)`` (``W_ijk`` at row ``j * I + k``), ``<name>.b``; state
    ``<name>.h``, starting with unit ``start`` on (the automaton's start state; None:
    all off). Extract the automaton it learned with :func:`rnngraph.extract_fsm`.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("so")
    >>> rg.cells.second_order(g.input("x", 2), 5).shape
    ('B', 5)
    """
    g = x.graph
    H, In = int(size), int(x.shape[-1])
    init = np.zeros(H)
    if start is not None:
        init[int(start)] = 1.0
    h = g.state(f"{name}.h", H, init=init)
    pairs = ops.reshape(ops.unsqueeze(h, -1) * ops.unsqueeze(x, -2), [H * In])
    h_new = activation_fn(activation)(ops.linear(pairs, H, name=name))
    g.assign(h, h_new)
    return h_new
