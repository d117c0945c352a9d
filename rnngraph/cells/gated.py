"""Gated cells exactly as ONNX defines them: LSTM (with peepholes) and GRU.

Weights use ONNX's layout and gate order for one direction: LSTM
``W (4H, I)``, ``R (4H, H)``, ``B (8H,)`` (= ``[Wb, Rb]``), ``P (3H,)``, gates
``i, o, f, c``; GRU ``W (3H, I)``, ``R (3H, H)``, ``B (6H,)``, gates
``z, r, h``. A bidirectional layer has ``<name>.fw.*`` and ``<name>.bw.*``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rnngraph import ops
from rnngraph.cells._common import (
    activation,
    check_size,
    clipped,
    direction_delay,
    onnx_weights,
    weight,
    whole,
)
from rnngraph.cells.compose import directional
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Value

__all__ = ["GRU_VARIANTS", "gru", "gru_step", "gru_variant", "lstm", "lstm_step", "mgu"]


def lstm_step(
    x: Value,
    h: Value,
    c: Value,
    W: Value,
    R: Value,
    B: Value | None = None,
    P: Value | None = None,
    *,
    activations: Sequence[str] = ("sigmoid", "tanh", "tanh"),
    clip: float | None = None,
    input_forget: bool = False,
) -> tuple[Value, Value]:
    """One ONNX LSTM step: ``(h_new, c_new)`` from ``x(t)``, ``h(t-1)``, ``c(t-1)``.

    ``it = f(Xt Wi' + Ht-1 Ri' + Pi (.) Ct-1 + Wbi + Rbi)``, and likewise
    ``ft``; ``ct = g(...)``; ``Ct = ft (.) Ct-1 + it (.) ct``;
    ``ot = f(... + Po (.) Ct)``; ``Ht = ot (.) h(Ct)``.
    """
    f, g, hf = (activation(a) for a in activations)
    gates = ops.matmul(x, ops.transpose(W)) + ops.matmul(h, ops.transpose(R))
    if B is not None:
        wb, rb = ops.split(B, 2)
        gates = gates + (wb + rb)
    gi, go, gf, gc = ops.split(gates, 4)
    if P is not None:
        pi, po, pf = ops.split(P, 3)
        gi = gi + pi * c
        gf = gf + pf * c
    i = f(clipped(gi, clip))
    fg = 1.0 - i if input_forget else f(clipped(gf, clip))
    c_new = fg * c + i * g(clipped(gc, clip))
    if P is not None:
        go = go + po * c_new
    o = f(clipped(go, clip))
    return o * hf(c_new), c_new


@directional
def lstm(
    x: Value,
    hidden: int,
    *,
    name: str = "lstm",
    direction: str = "forward",
    peepholes: bool = False,
    bias: bool = True,
    activations: Sequence[str] = ("sigmoid", "tanh", "tanh"),
    clip: float | None = None,
    input_forget: bool = False,
    initial: str = "zeros",
    weights: Mapping[str, Value] | None = None,
) -> Value:
    """An LSTM layer over the sequence ``x``; returns the hidden-state sequence.

    Parameters
    ----------
    x : Value
        Input signal ``(B, I)``.
    hidden : int
        Hidden size ``H``.
    name : str
        Prefix of the params (``<name>.W``, ``.R``, ``.B``, ``.P``) and states
        (``<name>.h``, ``<name>.c``).
    direction : {"forward", "reverse", "bidirectional"}
        A reverse layer runs from each row's last step to the first; a
        bidirectional one concatenates both along features, ``(B, 2H)``.
    peepholes, bias, activations, clip, input_forget
        As ONNX's LSTM (activations ``f, g, h``).
    initial : {"zeros", "param", "input"}
        Initial value of both states (see :meth:`Graph.state`).
    weights : dict, optional
        Existing Values to use for ``"W"``, ``"R"``, ``"B"``, ``"P"``
        instead of new params (an importer passes slices of ONNX initializers).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("lm")
    >>> y = rg.cells.lstm(g.input("x", 8), 16, name="enc", peepholes=True)
    >>> y.shape, sorted(g.params), sorted(g.states)
    (('B', 16), ['enc.B', 'enc.P', 'enc.R', 'enc.W'], ['enc.c', 'enc.h'])
    """
    W, R, B = onnx_weights(x, weights, name, 4, hidden, bias=bias)
    H = int(hidden)
    P = weight(x, weights, "P", name, (3 * H,), scale=1.0 / H**0.5) if peepholes else None
    g, delay = x.graph, direction_delay(direction)
    h = g.state(f"{name}.h", H, initial, delay=delay)
    c = g.state(f"{name}.c", H, initial, delay=delay)
    h_new, c_new = lstm_step(
        x, h, c, W, R, B, P, activations=activations, clip=clip, input_forget=input_forget
    )
    g.assign(h, h_new)
    g.assign(c, c_new)
    return h_new


def gru_step(
    x: Value,
    h: Value,
    W: Value,
    R: Value,
    B: Value | None = None,
    *,
    linear_before_reset: bool = False,
    activations: Sequence[str] = ("sigmoid", "tanh"),
    clip: float | None = None,
) -> Value:
    """One ONNX GRU step: the new hidden state from ``x(t)`` and ``h(t-1)``.

    ``zt = f(Xt Wz' + Ht-1 Rz' + Wbz + Rbz)``, ``rt`` likewise;
    ``ht = g(Xt Wh' + (rt (.) Ht-1) Rh' + Rbh + Wbh)``, or with
    ``linear_before_reset`` ``ht = g(Xt Wh' + rt (.) (Ht-1 Rh' + Rbh) + Wbh)``;
    ``Ht = (1 - zt) (.) ht + zt (.) Ht-1``.
    """
    f, g = (activation(a) for a in activations)
    xw = ops.matmul(x, ops.transpose(W))
    Rz, Rr, Rh = ops.split(R, 3, axis=0)
    hzr = ops.matmul(h, ops.transpose(ops.concat([Rz, Rr], axis=0)))
    xz, xr, xh = ops.split(xw, 3)
    hz, hr = ops.split(hzr, 2)
    if B is not None:
        wbz, wbr, wbh, rbz, rbr, rbh = ops.split(B, 6)
        hz = hz + (wbz + rbz)
        hr = hr + (wbr + rbr)
        xh = xh + wbh
    z = f(clipped(xz + hz, clip))
    r = f(clipped(xr + hr, clip))
    if linear_before_reset:
        hh = ops.matmul(h, ops.transpose(Rh))
        if B is not None:
            hh = hh + rbh
        cand = xh + r * hh
    else:
        cand = xh + ops.matmul(r * h, ops.transpose(Rh))
        if B is not None:
            cand = cand + rbh
    hc = g(clipped(cand, clip))
    return (1.0 - z) * hc + z * h


@directional
def gru(
    x: Value,
    hidden: int,
    *,
    name: str = "gru",
    direction: str = "forward",
    linear_before_reset: bool = False,
    bias: bool = True,
    activations: Sequence[str] = ("sigmoid", "tanh"),
    clip: float | None = None,
    initial: str = "zeros",
    weights: Mapping[str, Value] | None = None,
) -> Value:
    """A GRU layer over ``x`` (ONNX semantics, both ``linear_before_reset`` modes).

    Params ``<name>.W (3H, I)``, ``.R (3H, H)``, ``.B (6H,)``; state ``<name>.h``.
    Other arguments as :func:`lstm`. PyTorch's ``nn.GRU`` is
    ``linear_before_reset=True``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("g")
    >>> rg.cells.gru(g.input("x", 3), 5, direction="bidirectional").shape
    ('B', 10)
    """
    W, R, B = onnx_weights(x, weights, name, 3, hidden, bias=bias)
    g = x.graph
    h = g.state(f"{name}.h", int(hidden), initial, delay=direction_delay(direction))
    h_new = gru_step(
        x, h, W, R, B, linear_before_reset=linear_before_reset, activations=activations, clip=clip
    )
    g.assign(h, h_new)
    return h_new


@whole
def mgu(
    x: Value,
    size: int,
    *,
    name: str = "mgu",
    initial: str = "zeros",
) -> Value:
    """The minimal gated unit (Zhou et al., 2016): one forget gate does the GRU's two jobs.

    ``f = sigmoid(x Wf + h Uf + bf)``, ``c = tanh(x Wh + (f * h) Uh + bh)``,
    ``h(t) = (1 - f) h(t-1) + f c``. Params ``<name>.f.*``, ``<name>.fr.W``,
    ``<name>.c.*``, ``<name>.cr.W``; state ``<name>.h``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("m")
    >>> rg.cells.mgu(g.input("x", 3), 6).shape
    ('B', 6)
    """
    g = x.graph
    H = check_size(size, f"mgu {name!r}: size")
    h = g.state(f"{name}.h", H, initial)
    f = ops.sigmoid(
        ops.linear(x, H, name=f"{name}.f") + ops.linear(h, H, bias=False, name=f"{name}.fr")
    )
    c = ops.tanh(
        ops.linear(x, H, name=f"{name}.c") + ops.linear(f * h, H, bias=False, name=f"{name}.cr")
    )
    new = (1.0 - f) * h + f * c
    g.assign(h, new)
    return new


GRU_VARIANTS = {1: "state and bias", 2: "state only", 3: "bias only"}
"""Dey & Salem's (2017) reduced GRUs: what their update and reset gates read."""


@whole
def gru_variant(
    x: Value,
    size: int,
    *,
    name: str = "gru_variant",
    variant: int = 1,
    initial: str = "zeros",
) -> Value:
    """A GRU whose gates read less (Dey & Salem, 2017): ``variant`` 1 gates on the state
    and a bias, 2 on the state alone, 3 on a bias alone; the candidate is the GRU's,
    ``c = tanh(x Wc + (r * h) Uc + bc)``, and ``h(t) = (1 - z) h(t-1) + z c``.
    Params ``<name>.z*``, ``<name>.r*``, ``<name>.c*``; state ``<name>.h``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("v")
    >>> rg.cells.gru_variant(g.input("x", 3), 6, variant=2).shape
    ('B', 6)
    """
    if variant not in GRU_VARIANTS:
        raise GraphError(f"gru_variant {name!r}: variant must be 1, 2 or 3, got {variant!r}")
    g = x.graph
    H = check_size(size, f"gru_variant {name!r}: size")
    h = g.state(f"{name}.h", H, initial)

    def gate(role: str) -> Value:
        if variant == 3:
            return ops.sigmoid(g.param(f"{name}.{role}.b", H, "zeros") + ops.zeros_like(h))
        pre = ops.linear(h, H, bias=variant == 1, name=f"{name}.{role}")
        return ops.sigmoid(pre)

    z, r = gate("z"), gate("r")
    c = ops.tanh(
        ops.linear(x, H, name=f"{name}.c") + ops.linear(r * h, H, bias=False, name=f"{name}.cr")
    )
    new = (1.0 - z) * h + z * c
    g.assign(h, new)
    return new
