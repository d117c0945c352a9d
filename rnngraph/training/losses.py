"""Losses as graphs: each adds a target input and a per-step loss output to a copy of a graph.

A loss is averaged over every valid step and batch row (``sequence_lens``
ends rows early), so :func:`value_and_grad` feeds the per-step loss output a
cotangent of ``1 / N`` and runs the adjoint graph.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("reg")
>>> g.output("y", rg.cells.rnn(g.input("x", 2), 3, name="r"))
>>> p = g.init_params(seed=0)
>>> xs, ts = np.ones((4, 2, 2)), np.zeros((4, 2, 3))
>>> loss, grads = value_and_grad(g, {"x": xs, "t": ts}, p, loss=mse("t"))
>>> sorted(grads)
['r.B', 'r.R', 'r.W', 'r.h', 'x']
>>> bool(np.isclose(loss, np.mean(rg.run(g, {"x": xs}, p)["y"] ** 2)))
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph import ops
from rnngraph.autodiff.reverse import vjp
from rnngraph.errors import GraphError, InputError
from rnngraph.ir.graph import DEFAULT_AXIS, Graph, Value
from rnngraph.program.axes import is_staged, node_axes, split
from rnngraph.runtime.interpreter import run
from rnngraph.runtime.staged import lens_by_axis

__all__ = [
    "Loss",
    "SequenceLoss",
    "binary_cross_entropy",
    "ctc",
    "ctc_graph",
    "ctc_loss",
    "loss",
    "mse",
    "one_hot",
    "softmax_cross_entropy",
    "value_and_grad",
]

LOSS_OUTPUT = "loss"


LossFn = Callable[..., Value]
"""``fn(y, *targets) -> (B, 1)`` per step: a loss written with graph ops."""


@dataclass(frozen=True)
class Loss:
    """A per-step loss comparing ``output`` (default: the only output) with the inputs
    ``targets`` (each fed like a graph input, ``(T, B, ...)``), computed by ``fn``
    (graph ops; see :func:`loss`). ``terms``: a sum of weighted losses (``a + b``,
    ``0.5 * a``), each with its own output and targets."""

    kind: str
    target: str
    output: str | None = None
    fn: LossFn | None = field(default=None, compare=False)
    extra: tuple[str, ...] = ()
    terms: tuple[tuple[float, Loss], ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        """Every target input the loss adds to the graph."""
        if self.terms:
            names: list[str] = []
            for _, t in self.terms:
                names += [n for n in t.targets if n not in names]
            return tuple(names)
        return (self.target, *self.extra)

    def __add__(self, other: Loss) -> Loss:
        return _combined([*self._weighted(1.0), *other._weighted(1.0)])

    def __mul__(self, weight: float) -> Loss:
        return _combined(self._weighted(float(weight)))

    __rmul__ = __mul__

    def _weighted(self, w: float) -> list[tuple[float, Loss]]:
        return [(w * v, t) for v, t in self.terms] if self.terms else [(w, self)]

    def attach(self, graph: Graph) -> Graph:
        """A copy of ``graph`` with the target inputs and a ``"loss"`` output ``(B, 1)`` per
        step."""
        key = f"loss:{self._key()}"
        attached: Graph = graph.memo(key, lambda: self._attach(graph))
        return attached

    def _key(self) -> str:
        if self.terms:
            return "+".join(f"{w}*({t._key()})" for w, t in self.terms)
        ident = f"{self.kind}#{id(self.fn)}" if self.fn is not None else self.kind
        return f"{ident}:{self.targets}:{self.output}"

    def _attach(self, graph: Graph) -> Graph:
        g = graph.copy(f"{graph.name}.loss")
        inputs: dict[str, Value] = {}
        total: Value | None = None
        for w, term in self.terms or ((1.0, self),):
            part = term._per_step(graph, g, inputs)
            part = part if w == 1.0 else part * w
            total = part if total is None else total + part
        assert total is not None
        g.output(LOSS_OUTPUT, total)
        return g

    def _per_step(self, graph: Graph, g: Graph, inputs: dict[str, Value]) -> Value:
        name = _output_name(graph, self.output)
        y = g.value(g.output_nodes()[name])
        axis = node_axes(graph).get(y.node, DEFAULT_AXIS) if is_staged(graph) else DEFAULT_AXIS
        for n in self.targets:  # on the output's axis; the output's row shape unless given
            if n not in inputs:
                shape = y.type.row_shape if n == self.target else (1,)  # a mask, weights
                inputs[n] = g.input(n, shape, axis=axis)
        fn = self.fn if self.fn is not None else _LOSSES[self.kind]
        value = fn(y, *(inputs[n] for n in self.targets))
        if not isinstance(value, Value) or value.type.row_shape not in ((1,), ()):
            got = value.type if isinstance(value, Value) else type(value).__name__
            raise GraphError(f"loss {self.kind!r} must give (B, 1) or (B,) per step, got {got}")
        return value if value.type.row_shape == (1,) else ops.reshape(value, [1])


@dataclass(frozen=True)
class SequenceLoss:
    """A loss of whole sequences, not of steps (CTC): computed with its gradient with
    respect to ``output`` outside the graph, which the adjoint then carries back. Its
    value is the mean over rows; ``labels`` names the batch entry holding them."""

    kind: str
    labels: str
    output: str | None = None
    blank: int = 0

    @property
    def target(self) -> str:
        return self.labels

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.labels,)

    def value_and_cotangent(
        self, graph: Graph, outputs: Mapping[str, np.ndarray], labels: Any, sequence_lens: Any
    ) -> tuple[float, dict[str, np.ndarray]]:
        """The mean loss over rows, and its gradient w.r.t. the graph's output (the
        cotangent to give that output), from a run's ``outputs``."""
        name = _output_name(graph, self.output)
        logits = outputs[name]
        per_row, grad = ctc(
            logits, _label_lists(labels), blank=self.blank, sequence_lens=sequence_lens
        )
        B = max(len(per_row), 1)
        return float(per_row.mean()) if len(per_row) else 0.0, {
            name: (grad / B).astype(logits.dtype)
        }


def _output_name(graph: Graph, output: str | None) -> str:
    """The output a loss compares: ``output``, or the graph's only one."""
    outputs = graph.outputs
    name = output or (next(iter(outputs)) if len(outputs) == 1 else None)
    if name is None or name not in outputs:
        raise GraphError(
            f"the loss needs output=<name> (one of {sorted(outputs)}) for graph {graph.name!r}"
        )
    return name


def _label_lists(labels: Any) -> list[list[int]]:
    """Labels as one list per row: a list of lists, or an int array ``(B, L)`` padded with
    negative numbers."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(
                f"labels must be ints (B, L) padded with -1, got {labels.dtype} {labels.shape}"
            )
        return [[int(c) for c in row if c >= 0] for row in labels]
    return [[int(c) for c in row] for row in labels]


def ctc_loss(labels: str = "labels", *, blank: int = 0, output: str | None = None) -> SequenceLoss:
    """Connectionist temporal classification of the output's logits ``(T, B, C)`` against
    the batch entry ``labels`` (one list of class ids per row, or an int array ``(B, L)``
    padded with -1; no blanks), usable in ``rg.train`` and :func:`value_and_grad`: the
    mean over rows of each row's negative log-likelihood (each row to its
    ``sequence_lens``), as PyTorch's ``ctc_loss(..., reduction="sum") / B``."""
    return SequenceLoss("ctc", labels, output, int(blank))


def _combined(terms: list[tuple[float, Loss]]) -> Loss:
    first = terms[0][1]
    return Loss("sum", first.target, first.output, terms=tuple(terms))


def _mse(y: Value, t: Value) -> Value:
    d = y - t
    return ops.reduce_mean(d * d, keepdims=True)


def _softmax_xent(y: Value, t: Value) -> Value:
    return -ops.reduce_sum(t * ops.log_softmax(y), keepdims=True)


def _bce_logits(y: Value, t: Value) -> Value:
    """Mean over features of ``softplus(y) - t y`` (the cross-entropy of sigmoid(y))."""
    return ops.reduce_mean(ops.softplus(y) - t * y, keepdims=True)


def _bce_probabilities(y: Value, t: Value) -> Value:
    p = ops.clip(y, 1e-7, 1.0 - 1e-7)
    return -ops.reduce_mean(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p), keepdims=True)


_LOSSES: dict[str, LossFn] = {
    "mse": _mse,
    "softmax_cross_entropy": _softmax_xent,
    "binary_cross_entropy": _bce_logits,
    "bce": _bce_logits,
    "binary_cross_entropy_probabilities": _bce_probabilities,
}


def loss(
    fn: LossFn,
    target: str = "t",
    *,
    output: str | None = None,
    extra: Sequence[str] = (),
    name: str | None = None,
) -> Loss:
    """A loss of one's own: ``fn(y, t, *extras)`` gives the loss of one step ``(B, 1)`` (or
    ``(B,)``) from the output ``y`` and target ``t`` (and further inputs ``extra`` — a
    mask, per-row weights — each ``(B, 1)`` per step), written with graph ops. Averaged
    over the valid steps and rows by :func:`value_and_grad` and ``rg.train``, and
    differentiated like any graph. Losses add and scale: ``mse("t") + 0.1 * loss(...)``.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("m")
    >>> g.output("y", rg.cells.rnn(g.input("x", 2), 3, name="r"))
    >>> l1 = rg.losses.loss(lambda y, t: rg.reduce_sum(rg.abs(y - t), keepdims=True))
    >>> feeds = {"x": np.ones((4, 2, 2)), "t": np.zeros((4, 2, 3))}
    >>> value, grads = rg.value_and_grad(g, feeds, g.init_params(), loss=l1)
    >>> sorted(grads)[:3]
    ['r.B', 'r.R', 'r.W']
    """
    if not callable(fn):
        raise GraphError(f"loss needs a function of (output, target, ...), got {fn!r}")
    label = str(name or getattr(fn, "__name__", None) or "loss")
    return Loss(label, target, output, fn=fn, extra=tuple(extra))


def mse(target_name: str = "t", *, output: str | None = None) -> Loss:
    """Mean squared error over features, averaged over valid steps and rows."""
    return Loss("mse", target_name, output)


def softmax_cross_entropy(target_name: str = "t", *, output: str | None = None) -> Loss:
    """``-sum_c t_c log softmax(y)_c`` per step; targets are probabilities (:func:`one_hot`)."""
    return Loss("softmax_cross_entropy", target_name, output)


def binary_cross_entropy(
    target_name: str = "t", *, output: str | None = None, logits: bool = True
) -> Loss:
    """Binary cross-entropy, averaged over features: of ``sigmoid(y)`` when the output is
    logits (the default, computed stably as ``softplus(y) - t y``), else of the output
    itself, a probability (clipped to ``[1e-7, 1 - 1e-7]``)."""
    kind = "binary_cross_entropy" if logits else "binary_cross_entropy_probabilities"
    return Loss(kind, target_name, output)


def one_hot(labels: Any, classes: int, dtype: Any = np.float32) -> np.ndarray:
    """Integer labels ``(T, B)`` as one-hot targets ``(T, B, classes)``."""
    lab = np.asarray(labels)
    if lab.min(initial=0) < 0 or lab.max(initial=0) >= classes:
        raise InputError(f"labels must lie in [0, {classes}), got {lab.min()}..{lab.max()}")
    return np.eye(classes, dtype=dtype)[lab]


def _target_lens(g: Graph, loss: Loss, sequence_lens: Any) -> Any:
    """The lengths of the loss' axis (a graph with several axes has one array per axis)."""
    if not is_staged(g):
        return sequence_lens
    axis = g.node(loss.target).attrs.get("axis", DEFAULT_AXIS)
    return lens_by_axis(split(g), sequence_lens).get(axis)


def _valid_count(T: int, B: int, lens: Any) -> int:
    return int(T * B if lens is None else np.minimum(np.asarray(lens), T).sum())


def loss_value(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    loss: Loss | SequenceLoss,
    **kw: Any,
) -> float:
    """The loss alone (no gradient)."""
    if isinstance(loss, SequenceLoss):
        feeds = {k: v for k, v in inputs.items() if k != loss.labels}
        outs = run(graph, feeds, params, **kw)
        labels, lens = inputs[loss.labels], kw.get("sequence_lens")
        return loss.value_and_cotangent(graph, outs, labels, lens)[0]
    g = loss.attach(graph)
    out = run(g, inputs, params, **kw)["loss"]
    n = _valid_count(out.shape[0], out.shape[1], _target_lens(g, loss, kw.get("sequence_lens")))
    return float(out.sum() / max(n, 1))


def value_and_grad(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    loss: Loss | SequenceLoss,
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = None,
    seed: int | None = None,
) -> tuple[float, dict[str, np.ndarray]]:
    """The mean loss over valid steps and rows, and its gradients (as :func:`rnngraph.vjp`).

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("fit")
    >>> g.output("y", rg.linear(g.input("x", 1), 1, name="lin"))
    >>> p = {"lin.W": np.zeros((1, 1)), "lin.b": np.zeros(1)}
    >>> xs = np.ones((2, 1, 1))
    >>> value, grads = rg.value_and_grad(g, {"x": xs, "t": 2 * xs}, p, loss=rg.losses.mse("t"))
    >>> float(value), grads["lin.W"].tolist()   # mean of (y - t)^2 = 4; its gradient in W
    (4.0, [[-4.0]])
    """
    if isinstance(loss, SequenceLoss):
        feeds = {k: v for k, v in inputs.items() if k != loss.labels}
        kw = {"sequence_lens": sequence_lens, "initial_states": initial_states, "dtype": dtype}
        outs = run(graph, feeds, params, seed=seed, **kw)
        value, cots = loss.value_and_cotangent(graph, outs, inputs[loss.labels], sequence_lens)
        _, grads = vjp(graph, feeds, params, cotangents=cots, seed=seed, **kw)
        return value, grads
    g = loss.attach(graph)
    first = np.asarray(inputs[loss.target])  # (T, B, ...) on the loss output's axis
    T, B = first.shape[:2]
    n = max(_valid_count(T, B, _target_lens(g, loss, sequence_lens)), 1)
    cot = np.full((T, B, 1), 1.0 / n, dtype=np.float64 if dtype == "float64" else first.dtype)
    if not np.issubdtype(cot.dtype, np.floating):
        cot = cot.astype(np.float32)
    outs, grads = vjp(
        g,
        inputs,
        params,
        cotangents={LOSS_OUTPUT: cot},
        sequence_lens=sequence_lens,
        initial_states=initial_states,
        dtype=dtype,
        seed=seed,
    )
    for name in loss.targets:
        grads.pop(name, None)
    return float(outs[LOSS_OUTPUT].sum() / n), grads


# --------------------------------------------------------------------------- CTC
_NEG = -1e30  # log(0) that stays finite, so log-sum-exp never sees inf - inf


def ctc_graph(classes: int, max_label: int) -> Graph:
    """The CTC forward (alpha) recursion as a cyclic graph; its adjoint is the backward pass.

    Per step, for the extended label sequence ``l'`` (blanks between and
    around the labels, ``S = 2 * max_label + 1`` positions)::

        e(t)[s]  = log_softmax(logits(t))[l'[s]]
        alpha(t)[s] = logsumexp(alpha(t-1)[s], alpha(t-1)[s-1],
                                alpha(t-1)[s-2] if l'[s] != blank and l'[s] != l'[s-2])
                      + e(t)[s]

    with ``alpha(-1) = [0, -inf, ...]``. Inputs: ``logits`` ``(C,)``;
    ``labels`` ``(C, S)``, the one-hot of ``l'`` (per row, repeated every
    step); ``skip`` ``(S,)``, 1 where the ``s-2`` transition is allowed. The
    state ``alpha``'s final value (at each row's last step) gives the loss.
    """
    g = Graph("ctc")
    S = 2 * max_label + 1
    logits = g.input("logits", classes)
    onehot = g.input("labels", (classes, S))
    skip = g.input("skip", S)
    logp = ops.log_softmax(logits)
    e = ops.reshape(ops.matmul(ops.reshape(logp, (1, classes)), onehot), (S,))
    init = np.full(S, _NEG)
    init[0] = 0.0
    alpha = g.state("alpha", S, init)
    edge = ops.zeros_like(ops.slice(alpha, 0, 1)) + _NEG
    one_back = ops.concat([edge, ops.slice(alpha, 0, S - 1)])
    if S > 2:
        two_back = ops.concat([edge, edge, ops.slice(alpha, 0, S - 2)])
    else:
        two_back = ops.zeros_like(alpha) + _NEG
    two_back = ops.where(ops.greater(skip, 0.5), two_back, ops.zeros_like(alpha) + _NEG)
    m = ops.maximum(ops.maximum(alpha, one_back), two_back)
    lse = m + ops.log(ops.exp(alpha - m) + ops.exp(one_back - m) + ops.exp(two_back - m))
    new = lse + e
    g.assign(alpha, new)
    g.output("alphas", new)
    return g


def _ctc_inputs(
    labels: list[list[int]], T: int, classes: int, blank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    B = len(labels)
    L = max((len(lab) for lab in labels), default=0)
    S = 2 * L + 1
    onehot = np.zeros((B, classes, S))
    skip = np.zeros((B, S))
    ends = np.zeros((B, S), bool)
    for b, lab in enumerate(labels):
        if any(c == blank or not 0 <= c < classes for c in lab):
            raise InputError(f"labels of row {b} must lie in [0, {classes}) and avoid the blank")
        ext = [blank]
        for c in lab:
            ext += [c, blank]
        for s, c in enumerate(ext):
            onehot[b, c, s] = 1.0
            if s >= 2 and c != blank and c != ext[s - 2]:
                skip[b, s] = 1.0
        ends[b, len(ext) - 1] = True
        if len(ext) > 1:
            ends[b, len(ext) - 2] = True
    return (
        np.broadcast_to(onehot, (T, *onehot.shape)),
        np.broadcast_to(skip, (T, *skip.shape)),
        ends,
        L,
    )


def ctc(
    logits: Any, labels: list[list[int]], *, blank: int = 0, sequence_lens: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Connectionist temporal classification: per-row loss and its gradient w.r.t. the logits.

    ``logits`` ``(T, B, C)``; ``labels`` one list of class ids per row (no
    blanks). The forward pass is :func:`ctc_graph` run by the reference
    interpreter; the gradient is its adjoint graph (the backward, beta
    recursion), fed the loss's cotangent at each row's final alpha.
    Returns ``(loss (B,), dloss/dlogits (T, B, C))``.
    """
    x = np.asarray(logits, dtype=np.float64)
    T, _, C = x.shape
    onehot, skip, ends, L = _ctc_inputs(labels, T, C, blank)
    g = ctc_graph(C, L)
    feeds = {"logits": x, "labels": onehot, "skip": skip}
    out = run(g, feeds, {}, sequence_lens=sequence_lens, dtype="float64")
    final = out["alpha_final"]
    masked = np.where(ends, final, -np.inf)
    loss = -np.logaddexp.reduce(masked, axis=1)
    # dL/dalpha_final: minus the posterior of each end position.
    cot = np.where(ends, -np.exp(final + loss[:, None]), 0.0)
    _, grads = vjp(
        g,
        feeds,
        {},
        cotangents={"alpha_final": cot},
        sequence_lens=sequence_lens,
        dtype="float64",
    )
    return loss, grads["logits"]
