"""Gradient-free training over populations: a genetic algorithm, simulated annealing,
particle swarm optimisation and CMA-ES (the survey's global methods).

:func:`evolve` treats the params that train as one vector and asks an optimizer for a
population of candidates each generation; ``fitness(params) -> float`` scores each
(higher is better). CMA-ES is the ``cma`` package's (install ``cma``); the other
three are the textbook updates, written here.
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

__all__ = ["OPTIMIZERS", "EvolveHistory", "EvolveResult", "evolve"]

OPTIMIZERS = ("ga", "sa", "pso", "cma")

Fitness = Callable[[dict[str, np.ndarray]], float]


@dataclass
class EvolveHistory:
    """Per generation: the best fitness so far and the population's mean."""

    best: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    evaluations: int = 0
    seconds: float = 0.0

    def plot(self, path: str) -> str:
        """Draw both curves to ``path`` (.svg/.png/.pdf)."""
        return line_chart(
            {"best": self.best, "population mean": self.mean},
            path,
            title="evolution",
            xlabel="generation",
            ylabel="fitness",
            log_y=False,
        )


@dataclass
class EvolveResult:
    params: dict[str, np.ndarray]
    fitness: float
    history: EvolveHistory


class _Vector:
    """The learning params as one float64 vector, and back."""

    def __init__(self, params: Mapping[str, np.ndarray], names: Sequence[str]) -> None:
        self.base = {k: np.asarray(v) for k, v in params.items()}
        self.names = list(names)
        self.shapes = [self.base[k].shape for k in self.names]
        self.sizes = [int(np.prod(s)) for s in self.shapes]

    def flat(self) -> np.ndarray:
        return np.concatenate([np.ravel(self.base[k]).astype(np.float64) for k in self.names])

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
    frozen: Sequence[str] = (),
    trainable: Sequence[str] | None = None,
    progress: bool = True,
) -> EvolveResult:
    """Maximise ``fitness(params)`` over the params of ``graph`` without gradients.

    ``optimizer``: ``"ga"`` (tournament selection, blend crossover, Gaussian mutation of
    scale ``sigma``, the best kept), ``"sa"`` (simulated annealing: ``population``
    proposals per generation around the current point, Metropolis acceptance at a
    temperature falling geometrically), ``"pso"`` (particle swarm: inertia 0.72, pulls
    1.49 to each particle's best and the swarm's), or ``"cma"`` (CMA-ES from the
    ``cma`` package, step size ``sigma``). The search starts from ``params`` (default
    ``graph.init_params(seed)``); ``frozen``/``trainable`` as in ``rg.train``. The
    same ``seed`` gives the same result.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("fit")
    >>> g.output("y", rg.linear(g.input("x", 1), 1, name="lin"))
    >>> xs = np.linspace(-1, 1, 8).reshape(1, 8, 1)
    >>> def fitness(p):
    ...     return -float(np.mean((rg.run(g, {"x": xs}, p)["y"] - (2 * xs + 1)) ** 2))
    >>> res = rg.evolve(g, fitness, optimizer="cma", generations=40, progress=False)
    >>> res.fitness > -1e-4
    True
    """
    if optimizer not in OPTIMIZERS:
        raise GraphError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")
    if population < 2 or generations < 1:
        raise GraphError(
            f"need population >= 2 and generations >= 1, got {population}, {generations}"
        )
    start = dict(graph.init_params(seed=seed) if params is None else params)
    vec = _Vector(start, learning_params(graph, start, frozen, trainable))
    if not vec.names:
        raise GraphError("evolve: no param is left to train")
    rng = np.random.default_rng(seed)
    history = EvolveHistory()
    t0 = time.perf_counter()

    def score(v: np.ndarray) -> float:
        history.evaluations += 1
        f = float(fitness(vec.params(v)))
        return f if np.isfinite(f) else -np.inf

    step = _STEPPERS[optimizer](vec.flat(), score, population, sigma, generations, rng, seed)
    best_x, best_f = None, -np.inf
    for gen in range(generations):
        xs, fs = step()
        i = int(np.argmax(fs))
        if fs[i] > best_f:
            best_x, best_f = xs[i].copy(), float(fs[i])
        finite = [f for f in fs if np.isfinite(f)]
        history.best.append(best_f)
        history.mean.append(float(np.mean(finite)) if finite else -np.inf)
        if progress:
            sys.stderr.write(
                f"\rgeneration {gen + 1}/{generations}: best {best_f:.6g}, "
                f"mean {history.mean[-1]:.6g} ({time.perf_counter() - t0:.1f} s)   "
            )
    if progress:
        sys.stderr.write("\n")
    history.seconds = time.perf_counter() - t0
    assert best_x is not None
    return EvolveResult(vec.params(best_x), best_f, history)


Step = Callable[[], tuple[np.ndarray, np.ndarray]]


def _ga(x0: np.ndarray, score: Any, P: int, sigma: float, G: int, rng: Any, seed: int) -> Step:
    pop = x0 + sigma * rng.standard_normal((P, x0.size))
    pop[0] = x0
    fit = np.array([score(x) for x in pop])
    first = [True]

    def step() -> tuple[np.ndarray, np.ndarray]:
        nonlocal pop, fit
        if first[0]:  # generation 1: the initial population as drawn
            first[0] = False
            return pop, fit

        def pick() -> np.ndarray:
            a, b = rng.integers(0, P, 2)
            return pop[a] if fit[a] >= fit[b] else pop[b]

        children = [pop[int(np.argmax(fit))].copy()]  # elitism
        while len(children) < P:
            mix = rng.random(x0.size)
            child = mix * pick() + (1 - mix) * pick()
            children.append(child + sigma * rng.standard_normal(x0.size))
        pop = np.array(children)
        fit = np.array([fit.max()] + [score(x) for x in pop[1:]])
        return pop, fit

    return step


def _sa(x0: np.ndarray, score: Any, P: int, sigma: float, G: int, rng: Any, seed: int) -> Step:
    state = {"x": x0.copy(), "f": score(x0), "temp": 1.0}
    cooling = (1e-3) ** (1.0 / max(G, 1))

    def step() -> tuple[np.ndarray, np.ndarray]:
        xs = state["x"] + sigma * rng.standard_normal((P, x0.size))
        fs = np.array([score(x) for x in xs])
        i = int(np.argmax(fs))
        gain = fs[i] - state["f"]
        scale = abs(state["f"]) + 1e-12
        if gain >= 0 or rng.random() < np.exp(gain / (state["temp"] * scale)):
            state["x"], state["f"] = xs[i], fs[i]
        state["temp"] *= cooling
        return xs, fs

    return step


def _pso(x0: np.ndarray, score: Any, P: int, sigma: float, G: int, rng: Any, seed: int) -> Step:
    pos = x0 + sigma * rng.standard_normal((P, x0.size))
    pos[0] = x0
    vel = sigma * rng.standard_normal((P, x0.size)) * 0.1
    fit = np.array([score(x) for x in pos])
    best_pos, best_fit = pos.copy(), fit.copy()
    first = [True]

    def step() -> tuple[np.ndarray, np.ndarray]:
        nonlocal pos, vel, fit
        if first[0]:
            first[0] = False
            return pos, fit
        g = best_pos[int(np.argmax(best_fit))]
        r1, r2 = rng.random(pos.shape), rng.random(pos.shape)
        vel = 0.72 * vel + 1.49 * r1 * (best_pos - pos) + 1.49 * r2 * (g - pos)
        pos = pos + vel
        fit = np.array([score(x) for x in pos])
        better = fit > best_fit
        best_pos[better], best_fit[better] = pos[better], fit[better]
        return pos, fit

    return step


def _cma(x0: np.ndarray, score: Any, P: int, sigma: float, G: int, rng: Any, seed: int) -> Step:
    try:
        import cma
    except ImportError:
        raise GraphError("optimizer='cma' needs the cma package: pip install cma") from None
    opts = {"popsize": P, "seed": seed + 1, "verbose": -9, "maxiter": G}
    es = cma.CMAEvolutionStrategy(x0, sigma, opts)

    def step() -> tuple[np.ndarray, np.ndarray]:
        xs = np.array(es.ask())
        fs = np.array([score(x) for x in xs])
        es.tell(list(xs), list(-np.where(np.isfinite(fs), fs, -1e300)))  # cma minimises
        return xs, fs

    return step


_STEPPERS = {"ga": _ga, "sa": _sa, "pso": _pso, "cma": _cma}
