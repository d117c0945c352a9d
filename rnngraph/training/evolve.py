"""Gradient-free training over populations: a genetic algorithm, simulated annealing,
particle swarm optimisation and CMA-ES (the survey's global methods).

:func:`evolve` treats the params that train as one vector. Each generation the
optimizer proposes ``population`` candidates; they are scored *together*: the graph is
compiled once, in population form (``rg.compile(g, target, population=P)``, weights
as a run-time input), and ``fitness(model, params)`` runs whatever episodes it needs
on all ``P`` weight vectors at once, returning ``P`` losses to minimise. With
``executor="ray"`` the population is split over a Ray cluster's workers, each of
which compiles the model once and scores its share.

CMA-ES is the ``cma`` package's (install ``cma``); the other three are the textbook
updates, written here over whole populations.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph
from rnngraph.plot import line_chart
from rnngraph.training.loop import learning_params

__all__ = ["EXECUTORS", "OPTIMIZERS", "EvolveHistory", "EvolveResult", "evolve"]

OPTIMIZERS = ("ga", "sa", "pso", "cma")
EXECUTORS = (None, "ray")

Fitness = Callable[[Any, dict[str, np.ndarray]], Any]
"""``fitness(model, params) -> (P,) losses``: ``params`` maps each trained param to
``(P, *shape)``; ``model`` is the population-compiled model (``model.run(inputs,
params=params)``)."""


@dataclass
class EvolveHistory:
    """Per generation: the best loss so far, the population's mean and its best."""

    best: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    generation_best: list[float] = field(default_factory=list)
    evaluations: int = 0
    seconds: float = 0.0
    compile_seconds: float = 0.0

    def plot(self, path: str) -> str:
        """Draw the curves to ``path`` (.svg/.png/.pdf)."""
        return line_chart(
            {"best so far": self.best, "generation's best": self.generation_best,
             "population mean": self.mean},
            path,
            title="evolution",
            xlabel="generation",
            ylabel="loss",
        )  # fmt: skip


@dataclass
class EvolveResult:
    """The best params found (every param of the graph), their loss and the history."""

    params: dict[str, np.ndarray]
    best_fitness: float
    history: EvolveHistory

    @property
    def fitness(self) -> float:
        """The same as :attr:`best_fitness`."""
        return self.best_fitness


class _Vector:
    """The learning params as one float64 vector, and back."""

    def __init__(self, params: Mapping[str, np.ndarray], names: Sequence[str]) -> None:
        self.base = {k: np.asarray(v) for k, v in params.items()}
        self.names = list(names)
        self.shapes = [self.base[k].shape for k in self.names]
        self.sizes = [int(np.prod(s)) for s in self.shapes]

    def flat(self) -> np.ndarray:
        return np.concatenate([np.ravel(self.base[k]).astype(np.float64) for k in self.names])

    def stack(self, xs: np.ndarray) -> dict[str, np.ndarray]:
        """A population ``(P, n)`` as each trained param stacked ``(P, *shape)``."""
        out, at = {}, 0
        for k, shape, n in zip(self.names, self.shapes, self.sizes, strict=True):
            out[k] = xs[:, at : at + n].reshape(len(xs), *shape).astype(self.base[k].dtype)
            at += n
        return out

    def params(self, v: np.ndarray) -> dict[str, np.ndarray]:
        out = dict(self.base)
        at = 0
        for k, shape, n in zip(self.names, self.shapes, self.sizes, strict=True):
            out[k] = v[at : at + n].reshape(shape).astype(self.base[k].dtype)
            at += n
        return out


def evolve(
    graph: Graph,
    fitness: Fitness,
    params: Mapping[str, np.ndarray] | None = None,
    *,
    optimizer: str = "cma",
    population: int = 16,
    generations: int = 50,
    sigma: float = 0.1,
    seed: int = 0,
    target: str = "onnx",
    mode: str = "sequence",
    executor: str | None = None,
    workers: int | None = None,
    stop_at: float | None = None,
    frozen: Sequence[str] = (),
    trainable: Sequence[str] | None = None,
    progress: bool = True,
    **compile_options: Any,
) -> EvolveResult:
    """Minimise ``fitness(model, params)`` over the params of ``graph`` without gradients.

    Parameters
    ----------
    fitness : callable
        ``fitness(model, params) -> (P,)`` losses (lower is better; NaN and inf count
        as the worst). ``params`` maps each trained param to ``(P, *shape)``;
        ``model`` is ``graph`` compiled once for ``target`` in population form, so
        ``model.run(inputs, params=params)`` returns ``(P, ...)`` results for one
        batched call (see :mod:`rnngraph.runtime.population`). The function runs
        whatever episodes it needs: one call on fixed data, or a closed loop with a
        simulator (``mode="step"``).
    optimizer : str
        ``"ga"`` (tournament selection, blend crossover, Gaussian mutation of scale
        ``sigma``, the best kept), ``"sa"`` (simulated annealing: ``population``
        proposals around the current point each generation, Metropolis acceptance at
        a temperature falling geometrically), ``"pso"`` (particle swarm: inertia 0.72,
        pulls 1.49 to each particle's best and the swarm's) or ``"cma"`` (CMA-ES from
        the ``cma`` package, step size ``sigma``).
    population, generations : int
        Candidates per generation (one batched fitness call) and generations.
    params : dict, optional
        Where the search starts (default ``graph.init_params(seed)``); ``frozen`` /
        ``trainable`` as in ``rg.train`` (frozen params are compiled in).
    target, mode : str
        The backend (``"onnx"``, ``"tvm"``, ``"reference"``) and ``"sequence"`` or
        ``"step"`` (a step model, for closed loops).
    executor : None or "ray"
        ``"ray"`` spreads each generation over ``workers`` Ray actors (default: the
        cluster's CPUs); each compiles the model once. Connect to a cluster first
        with ``ray.init(address=...)``; otherwise a local one is started. The same
        ``seed`` gives the same result as ``executor=None``.

    stop_at : float, optional
        Stop after the first generation whose best loss is at most this (a task
        solved); ``history`` then holds the generations run.

    The same ``seed`` gives the same run.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("fit")
    >>> g.output("y", rg.linear(g.input("x", 1), 1, name="lin"))
    >>> xs = np.linspace(-1, 1, 8).reshape(1, 8, 1)
    >>> def fitness(model, params):
    ...     y = model.run({"x": xs}, params=params)["y"]          # (P, 1, 8, 1)
    ...     return np.mean((y - (2 * xs + 1)) ** 2, axis=(1, 2, 3))
    >>> res = rg.evolve(g, fitness, optimizer="cma", generations=40, progress=False)
    >>> res.best_fitness < 1e-4
    True
    """
    if optimizer not in OPTIMIZERS:
        raise GraphError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")
    if executor not in EXECUTORS:
        raise GraphError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    if mode not in ("sequence", "step"):
        raise GraphError(f"mode must be 'sequence' or 'step', got {mode!r}")
    if isinstance(population, bool) or not isinstance(population, int) or population < 2:
        raise GraphError(f"need an int population >= 2, got {population!r}")
    if isinstance(generations, bool) or not isinstance(generations, int) or generations < 1:
        raise GraphError(f"need an int generations >= 1, got {generations!r}")
    start = dict(graph.init_params(seed=seed) if params is None else params)
    vec = _Vector(start, learning_params(graph, start, frozen, trainable))
    if not vec.names:
        raise GraphError("evolve: no param is left to train")
    rng = np.random.default_rng(seed)
    history = EvolveHistory()
    t0 = time.perf_counter()
    fixed = {k: v for k, v in start.items() if k not in vec.names}
    options = dict(compile_options, **({"mode": "step"} if mode == "step" else {}))
    if executor == "ray":
        scorer: _Scorer = _RayScorer(graph, fixed, vec.names, target, options, fitness, workers)
    else:
        scorer = _LocalScorer(graph, fixed, vec.names, target, options, fitness, population)
    history.compile_seconds = time.perf_counter() - t0

    def score(xs: np.ndarray) -> np.ndarray:
        history.evaluations += len(xs)
        fs = np.asarray(scorer(vec.stack(xs)), dtype=np.float64).reshape(-1)
        if fs.shape != (len(xs),):
            raise GraphError(
                f"fitness returned {fs.size} values for a population of {len(xs)}: "
                "return one loss per individual, shape (P,)"
            )
        return np.where(np.isfinite(fs), fs, np.inf)

    opt = _OPTIMIZERS[optimizer](vec.flat(), population, sigma, generations, rng, seed)
    best_x, best_f = vec.flat(), np.inf
    try:
        for gen in range(generations):
            xs = opt.ask()
            fs = score(xs)
            opt.tell(xs, fs)
            i = int(np.argmin(fs))
            if fs[i] < best_f or (gen == 0 and not np.isfinite(best_f)):
                best_x, best_f = xs[i].copy(), float(fs[i])
            finite = fs[np.isfinite(fs)]
            history.best.append(best_f)
            history.generation_best.append(float(fs[i]))
            history.mean.append(float(np.mean(finite)) if finite.size else np.inf)
            if progress:
                sys.stderr.write(
                    f"\rgeneration {gen + 1}/{generations}: best {best_f:.6g}, "
                    f"mean {history.mean[-1]:.6g} ({time.perf_counter() - t0:.1f} s)   "
                )
            if stop_at is not None and best_f <= stop_at:
                break
    finally:
        scorer.close()
        if progress:
            sys.stderr.write("\n")
    history.seconds = time.perf_counter() - t0
    return EvolveResult(vec.params(best_x), best_f, history)


# ------------------------------------------------------------------- scoring


class _Scorer:
    def __call__(self, params: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _population_model(
    graph: Graph,
    fixed: Mapping[str, np.ndarray],
    names: Sequence[str],
    target: str,
    options: Mapping[str, Any],
    population: int | None,
) -> Any:
    from rnngraph.runtime.backends import compile

    return compile(
        graph, target, dict(fixed) or None, population=population,
        population_params=list(names), **options,
    )  # fmt: skip


class _LocalScorer(_Scorer):
    """The population model, compiled once (for ``population`` individuals, or any)."""

    def __init__(
        self,
        graph: Graph,
        fixed: Mapping[str, np.ndarray],
        names: Sequence[str],
        target: str,
        options: Mapping[str, Any],
        fitness: Fitness,
        population: int | None,
    ) -> None:
        self.model = _population_model(graph, fixed, names, target, options, population)
        self.fitness = fitness

    def __call__(self, params: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.fitness(self.model, params))


class _RayScorer(_Scorer):
    """Each Ray actor compiles the population model once and scores a share."""

    def __init__(
        self,
        graph: Graph,
        fixed: Mapping[str, np.ndarray],
        names: Sequence[str],
        target: str,
        options: Mapping[str, Any],
        fitness: Fitness,
        workers: int | None,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise GraphError("executor='ray' needs Ray: pip install 'rnngraph[ray]'") from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        from rnngraph.ir.serialize import to_json

        spec = (to_json(graph), dict(graph.arrays))  # the graph travels as JSON and arrays
        worker: Any = ray.remote(num_cpus=1)(_Worker)
        self.actors: list[Any] = [
            worker.remote(spec, dict(fixed), list(names), target, dict(options), fitness)
            for _ in range(n)
        ]

    def __call__(self, params: dict[str, np.ndarray]) -> np.ndarray:
        P = len(next(iter(params.values())))
        shares = np.array_split(np.arange(P), len(self.actors))
        calls = [
            a.score.remote({k: v[idx] for k, v in params.items()})
            for a, idx in zip(self.actors, shares, strict=True)
            if len(idx)
        ]
        return np.concatenate([np.asarray(r).reshape(-1) for r in self.ray.get(calls)])

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        if self.started:
            self.ray.shutdown()


class _Worker(_LocalScorer):
    """A Ray actor: a local scorer of any population size, built from the graph's JSON."""

    def __init__(
        self,
        spec: tuple[dict[str, Any], dict[str, np.ndarray]],
        fixed: dict[str, np.ndarray],
        names: list[str],
        target: str,
        options: dict[str, Any],
        fitness: Fitness,
    ) -> None:
        from rnngraph.ir.deserialize import from_json

        super().__init__(from_json(*spec), fixed, names, target, options, fitness, None)

    def score(self, params: dict[str, np.ndarray]) -> np.ndarray:
        return self(params)  # (a Ray actor's methods are called by name)


# ---------------------------------------------------------------- optimizers


class _Optimizer:
    """``ask()`` a population ``(P, n)``; ``tell(xs, losses)``."""

    def __init__(
        self, x0: np.ndarray, P: int, sigma: float, G: int, rng: np.random.Generator, seed: int
    ) -> None:
        self.x0, self.P, self.sigma, self.G, self.rng, self.seed = x0, P, sigma, G, rng, seed

    def ask(self) -> np.ndarray:
        raise NotImplementedError

    def tell(self, xs: np.ndarray, fs: np.ndarray) -> None:
        raise NotImplementedError


class _GA(_Optimizer):
    pop: np.ndarray | None = None
    fit: np.ndarray

    def ask(self) -> np.ndarray:
        n, P, rng = self.x0.size, self.P, self.rng
        if self.pop is None:  # generation 1: around the start, the start itself included
            pop = self.x0 + self.sigma * rng.standard_normal((P, n))
            pop[0] = self.x0
            return pop

        def pick() -> np.ndarray:
            a, b = rng.integers(0, P, 2)
            return self.pop[a] if self.fit[a] <= self.fit[b] else self.pop[b]  # type: ignore[index]

        children = [self.pop[int(np.argmin(self.fit))].copy()]  # elitism
        while len(children) < P:
            mix = rng.random(n)
            child = mix * pick() + (1 - mix) * pick()
            children.append(child + self.sigma * rng.standard_normal(n))
        return np.array(children)

    def tell(self, xs: np.ndarray, fs: np.ndarray) -> None:
        self.pop, self.fit = xs, fs


class _SA(_Optimizer):
    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.x, self.f, self.temp = self.x0.copy(), np.inf, 1.0
        self.cooling = (1e-3) ** (1.0 / max(self.G, 1))

    def ask(self) -> np.ndarray:
        xs = self.x + self.sigma * self.rng.standard_normal((self.P, self.x0.size))
        if not np.isfinite(self.f):
            xs[0] = self.x  # (the start is scored with the first proposals)
        return xs

    def tell(self, xs: np.ndarray, fs: np.ndarray) -> None:
        i = int(np.argmin(fs))
        loss = fs[i] - self.f
        scale = abs(self.f) + 1e-12 if np.isfinite(self.f) else 1.0
        if not loss > 0 or self.rng.random() < np.exp(-loss / (self.temp * scale)):
            self.x, self.f = xs[i], fs[i]
        self.temp *= self.cooling


class _PSO(_Optimizer):
    pos: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        P, n, rng, sigma = self.P, self.x0.size, self.rng, self.sigma
        if self.pos is None:
            pos = self.x0 + sigma * rng.standard_normal((P, n))
            pos[0] = self.x0
            self.vel = sigma * rng.standard_normal((P, n)) * 0.1
            self.best_pos, self.best_fit = pos.copy(), np.full(P, np.inf)
            self.pos = pos
            return pos
        g = self.best_pos[int(np.argmin(self.best_fit))]
        r1, r2 = rng.random(self.pos.shape), rng.random(self.pos.shape)
        self.vel = (
            0.72 * self.vel + 1.49 * r1 * (self.best_pos - self.pos) + 1.49 * r2 * (g - self.pos)
        )
        self.pos = self.pos + self.vel
        return self.pos

    def tell(self, xs: np.ndarray, fs: np.ndarray) -> None:
        better = fs < self.best_fit
        self.best_pos[better], self.best_fit[better] = xs[better], fs[better]


class _CMA(_Optimizer):
    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        try:
            import cma
        except ImportError:
            raise GraphError("optimizer='cma' needs the cma package: pip install cma") from None
        opts = {"popsize": self.P, "seed": self.seed + 1, "verbose": -9, "maxiter": self.G}
        self.es = cma.CMAEvolutionStrategy(self.x0, self.sigma, opts)

    def ask(self) -> np.ndarray:
        return np.array(self.es.ask())

    def tell(self, xs: np.ndarray, fs: np.ndarray) -> None:
        self.es.tell(list(xs), list(np.where(np.isfinite(fs), fs, 1e300)))


_OPTIMIZERS: dict[str, type[_Optimizer]] = {"ga": _GA, "sa": _SA, "pso": _PSO, "cma": _CMA}
