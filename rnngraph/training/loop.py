"""Training loops: full BPTT through the adjoint graph, an optimizer, progress and history.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("echo")
>>> g.output("y", rg.linear(rg.cells.rnn(g.input("x", 1), 8, name="r"), 1, name="out"))
>>> rng = np.random.default_rng(0)
>>> xs = rng.standard_normal((10, 4, 1)).astype("float32")
>>> batch = {"x": xs, "t": np.concatenate([np.zeros((1, 4, 1)), xs[:-1]]).astype("float32")}
>>> result = rg.train(g, g.init_params(seed=0), [batch], loss=rg.losses.mse("t"),
...                   optimizer=rg.optim.Adam(0.02), epochs=60, progress=False)
>>> result.history.losses[-1] < 0.2 * result.history.losses[0]
True
"""

from __future__ import annotations

import fnmatch
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph.errors import ParamError
from rnngraph.ir.graph import Graph
from rnngraph.ops.random import MAX_SEED
from rnngraph.plot import line_chart
from rnngraph.training.losses import Loss, SequenceLoss, value_and_grad
from rnngraph.training.optim import clip_by_norm, global_norm

__all__ = ["History", "TrainResult", "learning_params", "train"]

Batch = Mapping[str, Any]


@dataclass(repr=False)
class History:
    """Loss and gradient norm of every step, and the mean loss of every epoch.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("fit")
    >>> g.output("y", rg.linear(g.input("x", 1), 1, name="lin"))
    >>> xs = np.linspace(-1, 1, 16).reshape(2, 8, 1)
    >>> batch = {"x": xs, "t": 3 * xs - 1}
    >>> adam, mse = rg.optim.Adam(0.05), rg.losses.mse("t")
    >>> p0 = g.init_params(seed=0)
    >>> res = rg.train(g, p0, [batch] * 20, loss=mse, optimizer=adam, progress=False)
    >>> len(res.history.losses), res.history.losses[0] > res.history.losses[-1]
    (20, True)
    """

    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def __repr__(self) -> str:
        last = f", last {self.losses[-1]:.4g}" if self.losses else ""
        return f"<History: {len(self.losses)} steps, {len(self.epoch_losses)} epochs{last}>"

    def plot(self, path: str, *, title: str = "training loss") -> str:
        """Draw the per-step loss (and per-epoch mean) to ``.svg``, ``.png`` or ``.pdf``
        (with matplotlib: ``pip install 'rnngraph[plot]'``)."""
        series = {"loss per step": self.losses}
        if len(self.epoch_losses) > 1:
            per = max(1, len(self.losses) // len(self.epoch_losses))
            series["epoch mean"] = list(np.repeat(self.epoch_losses, per))[: len(self.losses)]
        return line_chart(series, path, title=title, xlabel="step", ylabel="loss")


@dataclass(repr=False)
class TrainResult:
    """The trained params and the history that got there.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("fit")
    >>> g.output("y", rg.linear(g.input("x", 1), 1, name="lin"))
    >>> xs = np.linspace(-1, 1, 16).reshape(2, 8, 1)
    >>> batch = {"x": xs, "t": 3 * xs - 1}
    >>> adam, mse = rg.optim.Adam(0.05), rg.losses.mse("t")
    >>> p0 = g.init_params(seed=0)
    >>> res = rg.train(g, p0, [batch] * 20, loss=mse, optimizer=adam, progress=False)
    >>> sorted(res.params), res.history
    (['lin.W', 'lin.b'], <History: 20 steps, 1 epochs, last 1.527>)
    """

    params: dict[str, np.ndarray]
    history: History

    def __repr__(self) -> str:
        n = sum(int(np.size(v)) for v in self.params.values())
        h = self.history
        loss = (
            f"loss {h.losses[0]:.4g} -> {h.losses[-1]:.4g} over {len(h.losses)} steps"
            if h.losses
            else "no steps"
        )
        return f"<TrainResult: {len(self.params)} params ({n:,} values), {loss}, {h.seconds:.1f} s>"


class _Progress:
    def __init__(self, enabled: bool, epochs: int, per_epoch: int | None) -> None:
        self.enabled, self.epochs, self.per_epoch = enabled, epochs, per_epoch
        self.tty = sys.stderr.isatty()
        self.start = time.perf_counter()

    def update(self, epoch: int, i: int, loss: float) -> None:
        if not (self.enabled and self.tty):
            return
        n = self.per_epoch or (i + 1)
        done = int(20 * (i + 1) / n)
        sys.stderr.write(
            f"\repoch {epoch + 1}/{self.epochs} [{'#' * done}{'.' * (20 - done)}] "
            f"{i + 1}/{n} loss {loss:.4f}"
        )
        sys.stderr.flush()

    def epoch_done(self, epoch: int, mean: float) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        pad = " " * 20
        sys.stderr.write(
            f"\repoch {epoch + 1}/{self.epochs} mean loss {mean:.4f}  ({elapsed:.1f} s){pad}\n"
        )
        sys.stderr.flush()


def _matching(graph: Graph, pattern: str) -> list[str]:
    """The params a name or shell pattern names; a ParamError when none."""
    found = [k for k in graph.params if fnmatch.fnmatchcase(k, pattern)]
    if not found:
        raise ParamError(
            f"{pattern!r} names no param of graph {graph.name!r}; "
            f"its params: {sorted(graph.params)}"
        )
    return found


def learning_params(
    graph: Graph, P: Mapping[str, Any], frozen: Sequence[str], trainable: Sequence[str] | None
) -> list[str]:
    """The names of the params that update, given ``frozen`` or ``trainable`` (names or
    shell patterns; a ParamError for one that names nothing)."""
    if isinstance(frozen, str) or isinstance(trainable, str):
        raise ParamError("frozen= and trainable= take a list of names or patterns, not one string")
    if frozen and trainable is not None:
        raise ParamError("give frozen= or trainable=, not both")
    if trainable is not None:
        keep = {k for pattern in trainable for k in _matching(graph, pattern)}
        return [k for k in P if k in keep]
    still = {k for pattern in frozen for k in _matching(graph, pattern)}
    return [k for k in P if k not in still]


def train(
    graph: Graph,
    params: Mapping[str, np.ndarray],
    data: Sequence[Batch] | Callable[[int], Iterable[Batch]],
    *,
    loss: Loss | SequenceLoss,
    optimizer: Any,
    epochs: int = 1,
    clip_norm: float | None = None,
    progress: bool = True,
    dtype: Any = None,
    seed: int = 0,
    frozen: Sequence[str] = (),
    trainable: Sequence[str] | None = None,
    constraints: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
) -> TrainResult:
    """Train ``params`` of ``graph`` by full backpropagation through time.

    Parameters
    ----------
    data : list of batches, or ``epoch -> iterable of batches``
        A batch maps each graph input and the loss's target to a time-major
        array; it may also hold ``"sequence_lens"`` and ``"initial_states"``.
    loss : Loss
        From :mod:`rnngraph.training.losses`.
    optimizer
        From :mod:`rnngraph.training.optim` (anything with ``step(params, grads)``).
    clip_norm : float, optional
        Clip the global gradient norm to this value before each step.
    progress : bool
        A progress bar (on a terminal) and one line per epoch on stderr.
    seed : int
        For a graph that draws random numbers (:mod:`rnngraph.ops.random`): update
        ``k`` runs with seed ``seed + k`` (modulo ``2**24``), fresh noise at every
        update and the same noise when training is repeated.

    frozen, trainable : sequences of param names or shell patterns (``"esn.*"``)
        The params that keep their values (an ESN's reservoir, a pretrained encoder),
        or the only ones that learn; give one or the other.
    constraints : dict of param name or pattern to function
        ``f(value) -> value`` applied after every update (a projection: a max-norm, a
        sign, a clip).

    Notes
    -----
    Params declared with a ``bound`` (:meth:`Graph.param`) are clipped to it after
    every update (projected gradient descent).
    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("fit")
    >>> g.output("y", rg.linear(g.input("x", 1), 1, name="lin"))
    >>> xs = np.linspace(-1, 1, 16).reshape(2, 8, 1)
    >>> batch = {"x": xs, "t": 3 * xs - 1}
    >>> res = rg.train(g, g.init_params(seed=0), [batch] * 300, loss=rg.losses.mse("t"),
    ...                optimizer=rg.optim.Adam(0.05), progress=False)
    >>> round(float(res.params["lin.W"][0, 0]), 1), round(float(res.params["lin.b"][0]), 1)
    (3.0, -1.0)
    """
    P = {k: np.asarray(v) for k, v in params.items()}
    learning = learning_params(graph, P, frozen, trainable)
    projections = [
        (k, f) for pattern, f in (constraints or {}).items() for k in _matching(graph, pattern)
    ]
    bounds = {k: b for k, b in graph.param_bounds.items() if k in P}
    history = History()
    per_epoch = len(data) if isinstance(data, Sequence) else None
    bar = _Progress(progress, epochs, per_epoch)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        batches = data if isinstance(data, Sequence) else data(epoch)
        epoch_losses = []
        for i, batch in enumerate(batches):
            feeds = {k: v for k, v in batch.items() if k not in ("sequence_lens", "initial_states")}
            value, grads = value_and_grad(
                graph,
                feeds,
                P,
                loss=loss,
                sequence_lens=batch.get("sequence_lens"),
                initial_states=batch.get("initial_states"),
                dtype=dtype,
                seed=(seed + len(history.losses)) % MAX_SEED,
            )
            pgrads = {k: grads[k] for k in learning if k in grads}
            history.grad_norms.append(global_norm(pgrads))
            if clip_norm is not None:
                pgrads = clip_by_norm(pgrads, clip_norm)
            P = optimizer.step(P, pgrads)
            for k, bound in bounds.items():  # the params' declared limits (g.param(bound=))
                P[k] = np.clip(P[k], -bound, bound)
            for k, f in projections:
                P[k] = np.asarray(f(P[k]), dtype=P[k].dtype).reshape(P[k].shape)
            history.losses.append(value)
            epoch_losses.append(value)
            bar.update(epoch, i, value)
        mean = float(np.mean(epoch_losses)) if epoch_losses else float("nan")
        history.epoch_losses.append(mean)
        bar.epoch_done(epoch, mean)
    history.seconds = time.perf_counter() - t0
    return TrainResult(P, history)
