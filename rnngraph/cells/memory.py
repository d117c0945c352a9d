"""Memory-augmented recurrent nets: the continuous stack and queue, and the neural
Turing machine.

The memories are states of the graph (tables ``(B, rows, width)``) updated by
differentiable reads and writes, so the whole machine trains by backpropagation
through time like any cell. Each cell has an LSTM controller that reads the
step's input and what the memory returned at the step before.

- :func:`stack_memory` / :func:`neural_stack`: Grefenstette et al. (2015),
  "Learning to Transduce with Unbounded Memory": values pushed with a strength
  ``d``, popped by an amount ``u`` (strength removed from the top, or for a
  queue from the bottom), read as the strength-weighted top (bottom) unit of
  value. A fixed ``capacity`` of slots (pushes past it are dropped).
- :func:`ntm`: Graves et al. (2014): content addressing by cosine similarity
  sharpened by ``beta``, interpolation with the last weighting by ``g``, a
  circular shift by a softmax over ``-1, 0, +1``, sharpening by ``gamma``; reads
  ``w M``, writes ``M (1 - w e^T) + w a^T``.
- :func:`dnc`: Graves et al. (2016), the differentiable neural computer: writes
  to content or to the least used rows (usage freed by the read heads' free
  gates, allocation by a sort of the usage), a temporal link matrix of the order
  of writes, reads by content or forward or backward along the links.
"""

from __future__ import annotations

import itertools

import numpy as np

from rnngraph import ops
from rnngraph.cells._common import check_size, whole
from rnngraph.cells.gated import lstm
from rnngraph.errors import GraphError
from rnngraph.ir.graph import Value

__all__ = ["address", "allocation", "content_weights", "dnc", "neural_stack", "ntm", "stack_memory"]

EPS = 1e-8
TIE = 4096.0
"""The DNC sorts usages on a grid of this many steps per unit (see :func:`allocation`)."""


def controller(inputs: list[Value], size: int, name: str) -> Value:
    """An LSTM layer (``rg.cells.lstm``: states ``<name>.h``, ``<name>.c``) over ``inputs``
    side by side."""
    return lstm(ops.concat(inputs) if len(inputs) > 1 else inputs[0], size, name=name)


# ------------------------------------------------------------------ stack, queue


def stack_memory(
    values: Value,
    strengths: Value,
    pointer: Value,
    push: Value,
    pop: Value,
    value: Value,
    *,
    queue: bool = False,
) -> tuple[Value, Value, Value]:
    """One step of Grefenstette et al.'s continuous stack (or queue), by its equations.

    ``values`` ``(B, m, d)`` and ``strengths`` ``(B, m)`` are the memory before the
    step, ``pointer`` ``(B, 1)`` the next free slot; ``push``, ``pop`` ``(B, 1)`` in
    ``[0, 1]`` and ``value`` ``(B, d)`` the controller's. Returns ``(values,
    strengths, read)`` after the step: first ``pop`` strength is removed from the top
    (a queue: the bottom) down, then ``value`` lands in the free slot with strength
    ``push``, then the read is the top (bottom) unit of strength's weighted values.
    """
    m = int(strengths.shape[-1])
    g = values.graph
    slot = ops.cast(ops.equal(g.constant(np.arange(m, dtype=np.float64)), pointer), "float")

    def ahead(s: Value) -> Value:
        """For each slot, the strength that comes before it: above it for a stack."""
        return ops.cumsum(s, -1, reverse=not queue, exclusive=True)

    left = ops.relu(strengths - ops.relu(pop - ahead(strengths)))
    new_s = left * (1.0 - slot) + push * slot
    here = ops.unsqueeze(slot, -1)
    new_v = values * (1.0 - here) + ops.unsqueeze(value, -2) * here
    weights = ops.minimum(new_s, ops.relu(1.0 - ahead(new_s)))
    read = ops.reduce_sum(new_v * ops.unsqueeze(weights, -1), -2)
    return new_v, new_s, read


@whole
def neural_stack(
    x: Value,
    size: int,
    *,
    name: str = "stack",
    width: int = 8,
    capacity: int = 32,
    kind: str = "stack",
) -> tuple[Value, Value]:
    """A recurrent net with a continuous stack (``kind="stack"``) or queue
    (``"queue"``) of ``capacity`` values of ``width``: an LSTM controller of ``size``
    units reads ``x`` and the last read, and decides each step's push strength, pop
    amount and value (params ``<name>.push.*``, ``<name>.pop.*``, ``<name>.value.*``).
    Returns ``(controller output, read)``; states ``<name>.values``,
    ``<name>.strengths``, ``<name>.pointer``, ``<name>.read``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("pda")
    >>> out, read = rg.cells.neural_stack(g.input("x", 4), 16, width=4, capacity=20)
    >>> out.shape, read.shape
    (('B', 16), ('B', 4))
    """
    if kind not in ("stack", "queue"):
        raise GraphError(f"neural_stack {name!r}: kind must be 'stack' or 'queue', got {kind!r}")
    g = x.graph
    H = check_size(size, f"neural_stack {name!r}: size")
    d = check_size(width, f"neural_stack {name!r}: width")
    m = check_size(capacity, f"neural_stack {name!r}: capacity")
    values = g.state(f"{name}.values", (m, d))
    strengths = g.state(f"{name}.strengths", m)
    pointer = g.state(f"{name}.pointer", 1)
    last = g.state(f"{name}.read", d)
    h = controller([x, last], H, f"{name}.controller")
    push = ops.sigmoid(ops.linear(h, 1, name=f"{name}.push"))
    pop = ops.sigmoid(ops.linear(h, 1, name=f"{name}.pop"))
    value = ops.tanh(ops.linear(h, d, name=f"{name}.value"))
    new_v, new_s, read = stack_memory(
        values, strengths, pointer, push, pop, value, queue=kind == "queue"
    )
    g.assign(values, new_v)
    g.assign(strengths, new_s)
    g.assign(pointer, pointer + 1.0)
    g.assign(last, read)
    return h, read


# -------------------------------------------------------------------------- NTM


def _roll(w: Value, k: int) -> Value:
    """``w`` shifted circularly by ``k`` along its last axis (``np.roll``)."""
    n = int(w.shape[-1])
    k %= n
    if k == 0:
        return w
    return ops.concat([ops.slice(w, n - k, n), ops.slice(w, 0, n - k)])


def address(
    memory: Value,
    key: Value,
    beta: Value,
    gate: Value,
    shift: Value,
    gamma: Value,
    previous: Value,
) -> Value:
    """A neural Turing machine head's weighting over the rows of ``memory`` ``(B, N, W)``:
    content (softmax of ``beta`` times the cosine similarity of ``key`` ``(B, W)`` with
    each row), interpolated with ``previous`` by ``gate``, shifted circularly by
    ``shift`` (``(B, 3)``: the weights of -1, 0, +1), sharpened by ``gamma`` >= 1."""
    w = gate * content_weights(memory, key, beta) + (1.0 - gate) * previous
    shifted = None
    for j, k in enumerate((-1, 0, 1)):
        term = _roll(w, k) * ops.slice(shift, j, j + 1)
        shifted = term if shifted is None else shifted + term
    assert shifted is not None
    sharp = ops.pow(ops.relu(shifted) + EPS, gamma)  # (relu: a caller's odd start stays real)
    return sharp / ops.reduce_sum(sharp, -1, keepdims=True)


def content_weights(memory: Value, key: Value, strength: Value) -> Value:
    """``softmax(strength * cosine(key, each row of memory))`` over the rows."""
    dot = ops.reduce_sum(memory * ops.unsqueeze(key, -2), -1)
    norms = ops.sqrt(ops.reduce_sum(memory * memory, -1) + EPS) * ops.sqrt(
        ops.reduce_sum(key * key, -1, keepdims=True) + EPS
    )
    return ops.softmax(strength * (dot / norms))


def _head(h: Value, memory: Value, previous: Value, name: str, extra: int) -> tuple[Value, ...]:
    """A head's weighting from the controller output, and ``extra`` more outputs."""
    width = int(memory.shape[-1])
    out = ops.linear(h, width + 6 + extra, name=name)
    key = ops.slice(out, 0, width)
    beta = ops.softplus(ops.slice(out, width, width + 1))
    gate = ops.sigmoid(ops.slice(out, width + 1, width + 2))
    shift = ops.softmax(ops.slice(out, width + 2, width + 5))
    gamma = 1.0 + ops.softplus(ops.slice(out, width + 5, width + 6))
    w = address(memory, key, beta, gate, shift, gamma, previous)
    return (w, ops.slice(out, width + 6, width + 6 + extra)) if extra else (w,)


@whole
def ntm(
    x: Value,
    size: int,
    *,
    name: str = "ntm",
    rows: int = 32,
    width: int = 8,
    read_heads: int = 1,
) -> tuple[Value, Value]:
    """A neural Turing machine (Graves et al., 2014): an LSTM controller of ``size``
    units, a memory of ``rows`` x ``width``, ``read_heads`` read heads and one write
    head, each addressed by :func:`address` (content, interpolation, shift,
    sharpening). Each step the controller reads ``x`` and the last reads; the read
    heads read the memory, then the write head erases and adds. Returns
    ``(controller output, reads side by side)``.

    States ``<name>.memory`` (starting at 1e-6 everywhere), ``<name>.w_read<i>``,
    ``<name>.w_write`` (starting on row 0), ``<name>.reads``; params
    ``<name>.controller.*``, ``<name>.read<i>.*``, ``<name>.write.*``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("ntm")
    >>> out, reads = rg.cells.ntm(g.input("x", 9), 32, rows=16, width=8)
    >>> out.shape, reads.shape
    (('B', 32), ('B', 8))
    """
    g = x.graph
    H = check_size(size, f"ntm {name!r}: size")
    N = check_size(rows, f"ntm {name!r}: rows")
    W = check_size(width, f"ntm {name!r}: width")
    R = check_size(read_heads, f"ntm {name!r}: read_heads")
    start = np.eye(N)[0]
    memory = g.state(f"{name}.memory", (N, W), init=np.full((N, W), 1e-6))
    w_reads = [g.state(f"{name}.w_read{i}", N, init=start) for i in range(R)]
    w_write = g.state(f"{name}.w_write", N, init=start)
    last = g.state(f"{name}.reads", R * W)
    h = controller([x, last], H, f"{name}.controller")
    reads = []
    for i, prev in enumerate(w_reads):
        (w,) = _head(h, memory, prev, f"{name}.read{i}", 0)
        g.assign(prev, w)
        reads.append(ops.reduce_sum(memory * ops.unsqueeze(w, -1), -2))
    w, ea = _head(h, memory, w_write, f"{name}.write", 2 * W)
    erase, add = ops.sigmoid(ops.slice(ea, 0, W)), ops.tanh(ops.slice(ea, W, 2 * W))
    at = ops.unsqueeze(w, -1)
    g.assign(memory, memory * (1.0 - at * ops.unsqueeze(erase, -2)) + at * ops.unsqueeze(add, -2))
    g.assign(w_write, w)
    read = ops.concat(reads) if R > 1 else reads[0]
    g.assign(last, read)
    return h, read


# -------------------------------------------------------------------------- DNC


def allocation(usage: Value) -> Value:
    """The DNC's allocation weighting: the rows sorted by usage, each row's free share
    ``(1 - u)`` times the product of the usages of the rows freer than it (computed as
    the exponential of a cumulative sum of logs). The sort passes no gradient, as in the
    paper; usages within ``1 / TIE`` of each other sort by row index."""
    # Rows whose usages agree to 2^-12 count as tied (the lower index first): a fresh
    # memory's usages are equal but for rounding, which differs from backend to backend.
    step = ops.cast(ops.cast(ops.clip(ops.stop_gradient(usage), 0.0, 1.0) * TIE, "int64"), "float")
    order = ops.argsort(step)
    sorted_u = ops.take_along(usage, order)
    # (usage lies in [0, 1]; clipped, a caller's odd start cannot make the log NaN)
    before = ops.exp(ops.cumsum(ops.log(ops.clip(sorted_u, 0.0, 1.0) + EPS), exclusive=True))
    share = (1.0 - sorted_u) * before
    return ops.scatter_add_along(ops.zeros_like(usage), order, share)


def _oneplus(v: Value) -> Value:
    return 1.0 + ops.softplus(v)


@whole
def dnc(
    x: Value,
    size: int,
    *,
    name: str = "dnc",
    rows: int = 16,
    width: int = 8,
    read_heads: int = 1,
) -> tuple[Value, Value]:
    """A differentiable neural computer (Graves et al., 2016): an LSTM controller of
    ``size`` units, a memory of ``rows`` x ``width``, ``read_heads`` read heads and one
    write head. Each step the controller reads ``x`` and the last reads and emits the
    interface (keys, strengths, erase and write vectors, free gates, allocation and
    write gates, read modes); usage is updated and freed, the write goes to content or
    to the least used rows, the temporal links record the order of writes, and each
    read head mixes backward, content and forward weightings. Returns ``(controller
    output, reads side by side)``.

    States ``<name>.memory``, ``<name>.usage``, ``<name>.links``, ``<name>.precedence``,
    ``<name>.w_write``, ``<name>.w_read<i>``, ``<name>.reads``; params
    ``<name>.controller.*``, ``<name>.interface.*``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("dnc")
    >>> out, reads = rg.cells.dnc(g.input("x", 6), 32, rows=10, width=5, read_heads=2)
    >>> out.shape, reads.shape
    (('B', 32), ('B', 10))
    """
    g = x.graph
    H = check_size(size, f"dnc {name!r}: size")
    N = check_size(rows, f"dnc {name!r}: rows")
    W = check_size(width, f"dnc {name!r}: width")
    R = check_size(read_heads, f"dnc {name!r}: read_heads")
    memory = g.state(f"{name}.memory", (N, W))
    usage = g.state(f"{name}.usage", N)
    links = g.state(f"{name}.links", (N, N))
    precedence = g.state(f"{name}.precedence", N)
    w_write = g.state(f"{name}.w_write", N)
    w_reads = [g.state(f"{name}.w_read{i}", N) for i in range(R)]
    last = g.state(f"{name}.reads", R * W)
    h = controller([x, last], H, f"{name}.controller")
    sizes = [R * W, R, W, 1, W, W, R, 1, 1, 3 * R]
    cuts = np.cumsum([0, *sizes]).tolist()
    iface = ops.linear(h, int(cuts[-1]), name=f"{name}.interface")
    part = [ops.slice(iface, int(a), int(b)) for a, b in itertools.pairwise(cuts)]
    r_keys, r_str, w_key, w_str, erase, vec, free, g_alloc, g_write, modes = part
    erase, free = ops.sigmoid(erase), ops.sigmoid(free)
    g_alloc, g_write = ops.sigmoid(g_alloc), ops.sigmoid(g_write)

    # usage: raised by the last write, lowered where the read heads free their rows
    keep = None
    for i, w in enumerate(w_reads):
        term = 1.0 - ops.slice(free, i, i + 1) * w
        keep = term if keep is None else keep * term
    assert keep is not None
    new_usage = (usage + w_write - usage * w_write) * keep
    g.assign(usage, new_usage)
    content = content_weights(memory, w_key, _oneplus(w_str))
    ww = g_write * (g_alloc * allocation(new_usage) + (1.0 - g_alloc) * content)
    g.assign(w_write, ww)
    at = ops.unsqueeze(ww, -1)
    new_memory = memory * (1.0 - at * ops.unsqueeze(erase, -2)) + at * ops.unsqueeze(vec, -2)
    g.assign(memory, new_memory)
    # temporal links: L[i, j] = (1 - w[i] - w[j]) L[i, j] + w[i] p[j], zero diagonal
    wi, wj = ops.unsqueeze(ww, -1), ops.unsqueeze(ww, -2)
    off = g.constant(1.0 - np.eye(N))
    new_links = ((1.0 - wi - wj) * links + wi * ops.unsqueeze(precedence, -2)) * off
    g.assign(links, new_links)
    g.assign(precedence, (1.0 - ops.reduce_sum(ww, -1, keepdims=True)) * precedence + ww)
    reads = []
    for i, prev in enumerate(w_reads):
        forward = ops.reduce_sum(new_links * ops.unsqueeze(prev, -2), -1)  # L w
        backward = ops.reduce_sum(new_links * ops.unsqueeze(prev, -1), -2)  # L^T w
        key = ops.slice(r_keys, i * W, (i + 1) * W)
        by_content = content_weights(new_memory, key, _oneplus(ops.slice(r_str, i, i + 1)))
        pi = ops.softmax(ops.slice(modes, 3 * i, 3 * i + 3))
        w = (
            ops.slice(pi, 0, 1) * backward
            + ops.slice(pi, 1, 2) * by_content
            + ops.slice(pi, 2, 3) * forward
        )
        g.assign(prev, w)
        reads.append(ops.reduce_sum(new_memory * ops.unsqueeze(w, -1), -2))
    read = ops.concat(reads) if R > 1 else reads[0]
    g.assign(last, read)
    return h, read
