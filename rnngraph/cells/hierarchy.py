"""Recurrent nets with several timescales or levels: the clockwork RNN, a two-level
hierarchical RNN, Schmidhuber's neural history compressor and the recurrent
multilayer perceptron.

The slow parts tick on clocks (``g.state(..., every=k)``: updated at steps ``k - 1,
2k - 1, ...``, held in between) or on events (a chunk boundary, a surprise), held
in between with ``rg.where``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rnngraph import ops
from rnngraph.cells._common import activation, check_size, whole
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Value

__all__ = ["clockwork", "history_compressor", "hrnn", "rmlp"]


@whole
def clockwork(
    x: Value,
    size: int,
    *,
    name: str = "clockwork",
    periods: Sequence[int] = (1, 2, 4, 8),
    activation_name: str = "tanh",
) -> Value:
    """A clockwork RNN (Koutník et al., 2014): ``size`` units in ``len(periods)`` equal
    modules; module ``i`` updates every ``periods[i]`` steps (held in between) and reads
    the input and the modules at least as slow as itself. Returns every module's
    state after the step, side by side ``(B, size)``.

    Params ``<name>.in<i>.*``, ``<name>.rec<i>.W``; states ``<name>.m<i>``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("cw")
    >>> rg.cells.clockwork(g.input("x", 2), 8, periods=(1, 2, 4, 8)).shape
    ('B', 8)
    """
    g = x.graph
    n = check_size(size, f"clockwork {name!r}: size")
    periods = [int(p) for p in periods]
    if not periods or n % len(periods) or sorted(periods) != periods or min(periods) < 1:
        raise GraphError(
            f"clockwork {name!r}: periods must be increasing positive ints that divide "
            f"size {n} into equal modules, got {periods}"
        )
    m = n // len(periods)
    f = activation(activation_name)
    mods = [g.state(f"{name}.m{i}", m, every=k) for i, k in enumerate(periods)]
    now = []
    for i, h in enumerate(mods):
        slower = ops.concat(mods[i:]) if i < len(mods) - 1 else h
        pre = ops.linear(x, m, name=f"{name}.in{i}")
        g.assign(h, f(pre + ops.linear(slower, m, bias=False, name=f"{name}.rec{i}")))
        now.append(g.stored(h))  # (held between ticks)
    return ops.concat(now)


@whole
def hrnn(
    x: Value,
    size: int,
    *,
    name: str = "hrnn",
    upper_size: int | None = None,
    every: int = 4,
    boundary: Value | None = None,
    activation_name: str = "tanh",
) -> tuple[Value, Value]:
    """A two-level hierarchical RNN: a lower RNN of ``size`` units at every step, reading
    the input and the upper level; an upper RNN (``upper_size`` units, ``size`` by
    default) reading the lower one and updated only at the end of each chunk — every
    ``every`` steps, or where ``boundary`` (a ``(B, 1)`` input of 0 and 1, say the end
    of each word) is 1 — and held in between. Returns ``(lower, upper)``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("h")
    >>> low, high = rg.cells.hrnn(g.input("x", 3), 8, upper_size=4, every=5)
    >>> low.shape, high.shape
    (('B', 8), ('B', 4))
    """
    g = x.graph
    n = check_size(size, f"hrnn {name!r}: size")
    u = check_size(upper_size or n, f"hrnn {name!r}: upper_size")
    f = activation(activation_name)
    if boundary is None:
        upper = g.state(f"{name}.upper", u, every=every)
    else:
        if tuple(boundary.shape) != ("B", 1):
            raise GraphError(f"hrnn {name!r}: boundary must be (B, 1), got {boundary.type}")
        upper = g.state(f"{name}.upper", u)
    lower = g.state(f"{name}.lower", n)
    low = f(
        ops.linear(x, n, name=f"{name}.in")
        + ops.linear(lower, n, bias=False, name=f"{name}.rec")
        + ops.linear(upper, n, bias=False, name=f"{name}.down")
    )
    g.assign(lower, low)
    high = f(
        ops.linear(low, u, name=f"{name}.up")
        + ops.linear(upper, u, bias=False, name=f"{name}.urec")
    )
    if boundary is None:
        g.assign(upper, high)
        now = g.stored(upper)  # (held between ticks)
    else:
        now = ops.where(ops.greater(boundary, 0.5), high, upper)
        g.assign(upper, now)
    return low, now


@whole
def history_compressor(
    x: Value,
    size: int,
    *,
    name: str = "compressor",
    chunker_size: int | None = None,
    threshold: float = 0.1,
    activation_name: str = "tanh",
) -> tuple[Value, Value, Value]:
    """Schmidhuber's (1992) neural history compressor: an automatizer RNN (``size``
    units) predicts each next input; a chunker RNN (``chunker_size``, ``size`` by
    default) sees only the inputs the automatizer failed to predict (its largest error
    above ``threshold``) and ticks only then, held in between; the automatizer reads
    the chunker's state, so what the chunker learns to expect becomes predictable.

    Returns ``(prediction of the next input, chunker state, surprise)``: ``surprise``
    ``(B, 1)`` is 1 at the steps the chunker ticked. Train the prediction against the
    input shifted by one step; the surprise has no gradient (a hard threshold).

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("hc")
    >>> pred, chunk, surprise = rg.cells.history_compressor(g.input("x", 4), 8)
    >>> pred.shape, chunk.shape, surprise.shape
    (('B', 4), ('B', 8), ('B', 1))
    """
    g = x.graph
    n = check_size(size, f"history_compressor {name!r}: size")
    c = check_size(chunker_size or n, f"history_compressor {name!r}: chunker_size")
    d = int(x.shape[-1])
    f = activation(activation_name)
    auto = g.state(f"{name}.automatizer", n)
    chunk = g.state(f"{name}.chunker", c)
    guess = g.state(f"{name}.guess", d)  # the automatizer's prediction of this input
    miss = ops.reduce_max(ops.abs(x - guess), -1, keepdims=True)
    surprise = ops.stop_gradient(ops.cast(ops.greater(miss, float(threshold)), "float"))
    ticked = f(
        ops.linear(x, c, name=f"{name}.cin") + ops.linear(chunk, c, bias=False, name=f"{name}.crec")
    )
    chunk_now = ops.where(ops.greater(surprise, 0.5), ticked, chunk)
    g.assign(chunk, chunk_now)
    a = f(
        ops.linear(x, n, name=f"{name}.ain")
        + ops.linear(auto, n, bias=False, name=f"{name}.arec")
        + ops.linear(chunk_now, n, bias=False, name=f"{name}.from_chunker")
    )
    g.assign(auto, a)
    prediction = ops.linear(a, d, name=f"{name}.predict")
    g.assign(guess, prediction)
    return prediction, chunk_now, surprise


@whole
def rmlp(
    x: Value,
    size: int | Sequence[int],
    *,
    name: str = "rmlp",
    activation_name: str = "tanh",
) -> Value:
    """A recurrent multilayer perceptron (Puskorius & Feldkamp, 1994): layers of
    ``size`` units (an int, or one per layer), each fed by the layer below at this step
    and by itself at the step before. Returns the top layer. Params
    ``<name>.l<i>.*``, ``<name>.l<i>.rec.W``; states ``<name>.l<i>.h``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("r")
    >>> rg.cells.rmlp(g.input("x", 3), [8, 6, 2]).shape
    ('B', 2)
    """
    sizes = [size] if isinstance(size, int) else list(size)
    if not sizes:
        raise GraphError(f"rmlp {name!r}: needs at least one layer")
    g = x.graph
    f = activation(activation_name)
    h = x
    for i, s in enumerate(sizes):
        n = check_size(s, f"rmlp {name!r}: layer {i} size")
        state = g.state(f"{name}.l{i}.h", n)
        new = f(
            ops.linear(h, n, name=f"{name}.l{i}")
            + ops.linear(state, n, bias=False, name=f"{name}.l{i}.rec")
        )
        g.assign(state, new)
        h = new
    return h
