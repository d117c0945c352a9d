"""Gradient-free training (rg.evolve): every optimizer lowers a small recurrent fit's loss
with batched population calls, CMA-ES and the swarm solve it, the same seed repeats the
same run, frozen params stay, and a Ray cluster gives what one process gives."""

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


def fitness(model, params):
    """Mean squared error of each individual: one batched call for the population."""
    y = model.run({"x": XS}, params=params)["y"]
    return np.mean((y - TARGET) ** 2, axis=(1, 2, 3))


def _loss(g: rg.Graph, p: dict) -> float:
    return float(np.mean((rg.run(g, {"x": XS}, p)["y"] - TARGET) ** 2))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_improves(optimizer: str) -> None:
    g = _graph()
    p = g.init_params(seed=1)
    start = _loss(g, p)
    res = rg.evolve(
        g, fitness, p, optimizer=optimizer, population=12, generations=40, sigma=0.3,
        seed=3, progress=False,
    )  # fmt: skip
    assert res.best_fitness == min(res.history.best) and res.best_fitness < start
    assert res.best_fitness == pytest.approx(_loss(g, res.params), rel=1e-4, abs=1e-6)
    assert res.history.evaluations == 12 * 40
    if optimizer in ("cma", "pso"):
        assert res.best_fitness < 1e-3  # (a = 1, in.W = 0.5, in.b = 0)
    else:
        assert res.best_fitness < start * 0.5


def test_same_seed_same_run_and_frozen_params_stay(tmp_path) -> None:
    g = _graph()
    p = g.init_params(seed=1)
    kw = {"population": 8, "generations": 10, "progress": False}
    a = rg.evolve(g, fitness, p, optimizer="ga", seed=5, **kw)
    b = rg.evolve(g, fitness, p, optimizer="ga", seed=5, **kw)
    assert a.best_fitness == b.best_fitness and a.history.best == b.history.best
    c = rg.evolve(g, fitness, p, optimizer="pso", frozen=["a"], seed=5, **kw)
    assert np.array_equal(c.params["a"], p["a"])
    assert a.history.plot(str(tmp_path / "e.svg")).endswith("e.svg")
    with pytest.raises(rg.GraphError, match="unknown optimizer"):
        rg.evolve(g, fitness, p, optimizer="tabu")
    with pytest.raises(rg.GraphError, match="one loss per individual"):
        rg.evolve(g, lambda m, q: np.zeros(3), p, population=4, generations=1, progress=False)
    with pytest.raises(rg.GraphError, match="unknown executor"):
        rg.evolve(g, fitness, p, executor="dask")


def test_a_closed_loop_in_step_mode() -> None:
    """mode='step': the fitness drives a step model; each individual its own trajectory."""
    g = _graph()
    target_gain = 0.8

    def closed_loop(model, params):
        P = len(params["a"])
        x = np.ones((P, 2, 1), "float32")  # a per-individual observation
        state = {"h": np.zeros((P, 2, 1), "float32")}
        loss = np.zeros(P)
        for _ in range(5):
            out = model.run({"x": x, **state}, params=params)
            state = {"h": out["h_final"]}
            x = target_gain * out["y"]  # the plant feeds the output back
            loss += np.mean((out["y"] - 1.0) ** 2, axis=(1, 2))
        return loss

    res = rg.evolve(
        g, closed_loop, g.init_params(seed=0), optimizer="cma", population=8, generations=15,
        mode="step", sigma=0.3, progress=False,
    )  # fmt: skip
    assert (
        res.best_fitness
        < closed_loop(
            rg.compile(g, "onnx", population=1, mode="step"),
            {k: v[None] for k, v in g.init_params(seed=0).items()},
        )[0]
    )


@pytest.mark.slow
def test_ray_gives_what_one_process_gives() -> None:
    ray = pytest.importorskip("ray")
    g = _graph()
    p = g.init_params(seed=1)
    kw = {"population": 8, "generations": 4, "seed": 2, "progress": False, "target": "reference"}
    local = rg.evolve(g, fitness, p, optimizer="cma", **kw)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        spread = rg.evolve(g, fitness, p, optimizer="cma", executor="ray", workers=2, **kw)
    finally:
        ray.shutdown()
    assert spread.history.best == local.history.best
    for k in p:
        np.testing.assert_array_equal(spread.params[k], local.params[k])
