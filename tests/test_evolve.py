"""Gradient-free training (rg.evolve): every optimizer improves a small recurrent fit,
CMA-ES and the swarm reach it, the same seed repeats the same run, frozen params stay."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.training.evolve import OPTIMIZERS

XS = np.random.default_rng(0).standard_normal((6, 8, 1))
TARGET = np.cumsum(XS, axis=0) * 0.5  # a leaky sum: what one recurrent unit can do


def _graph() -> rg.Graph:
    g = rg.Graph("acc")
    h = g.state("h", 1)
    new = h * g.param("a", 1, 0.0) + rg.linear(g.input("x", 1), 1, name="in")
    g.assign(h, new)
    g.output("y", new)
    return g


def _fitness(g: rg.Graph):
    def f(p):
        return -float(np.mean((rg.run(g, {"x": XS}, p)["y"] - TARGET) ** 2))

    return f


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_improves(optimizer: str) -> None:
    g = _graph()
    p = g.init_params(seed=1)
    start = _fitness(g)(p)
    res = rg.evolve(
        g, _fitness(g), p, optimizer=optimizer, population=12, generations=40, sigma=0.3,
        seed=3, progress=False,
    )  # fmt: skip
    assert res.fitness == max(res.history.best) and res.fitness > start
    assert res.fitness == pytest.approx(_fitness(g)(res.params))
    assert res.history.evaluations >= 11 * 40  # (the GA keeps its best unevaluated)
    if optimizer in ("cma", "pso"):
        assert res.fitness > -1e-3  # (a = 1, in.W = 0.5, in.b = 0)
    else:
        assert res.fitness > start * 0.5


def test_same_seed_same_run_and_frozen_params_stay(tmp_path) -> None:
    g = _graph()
    p = g.init_params(seed=1)
    kw = {"population": 8, "generations": 10, "progress": False}
    a = rg.evolve(g, _fitness(g), p, optimizer="ga", seed=5, **kw)
    b = rg.evolve(g, _fitness(g), p, optimizer="ga", seed=5, **kw)
    assert a.fitness == b.fitness and a.history.best == b.history.best
    c = rg.evolve(g, _fitness(g), p, optimizer="pso", frozen=["a"], seed=5, **kw)
    assert np.array_equal(c.params["a"], p["a"])
    assert a.history.plot(str(tmp_path / "e.svg")).endswith("e.svg")
    with pytest.raises(rg.GraphError, match="unknown optimizer"):
        rg.evolve(g, _fitness(g), p, optimizer="tabu")
