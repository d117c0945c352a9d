"""A recurrent controller evolved to balance a pole it only half sees: GA, PSO and CMA-ES.

The cart-pole of Barto, Sutton and Anderson (1983), written here in numpy and stepped
for a whole population at once (Euler steps of 0.02 s; the episode fails when the cart
leaves ±2.4 m or the pole tilts past ±12°). The controller sees only the cart's
position and the pole's angle, not their velocities, so it has to estimate them from
what it saw before: an Elman net (``rg.cells.elman``) whose output, squashed by tanh,
is the force (±10 N).

Each optimizer of ``rg.evolve`` trains the net's weights with no gradient. The net is
compiled once as a population *step* model (``mode="step"``): every generation, the
fitness function runs the closed loop — the model's step for all individuals and
starting states in one call, then the simulator's — and returns each individual's
loss, the share of the episode it did not survive. A net *solves* the task when it
balances from every starting state for the whole episode; evolution stops there
(``stop_at=0.0``).

Reports, per optimizer: generations and evaluations to solve, wall time; draws the
curves (``--plot``). Run: ``python examples/evolve_controller.py [--generations 60]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

import rnngraph as rg

GRAVITY, CART, POLE, HALF_LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
X_LIMIT, ANGLE_LIMIT = 2.4, 12 * np.pi / 180


def cart_pole_step(s: np.ndarray, force: np.ndarray) -> np.ndarray:
    """One Euler step of every cart-pole in ``s`` (..., 4): x, x', theta, theta'."""
    x, dx, th, dth = np.moveaxis(s, -1, 0)
    cos, sin = np.cos(th), np.sin(th)
    total = CART + POLE
    tmp = (force + POLE * HALF_LENGTH * dth**2 * sin) / total
    ddth = (GRAVITY * sin - cos * tmp) / (HALF_LENGTH * (4 / 3 - POLE * cos**2 / total))
    ddx = tmp - POLE * HALF_LENGTH * ddth * cos / total
    return np.stack([x + TAU * dx, dx + TAU * ddx, th + TAU * dth, dth + TAU * ddth], -1)


# the double pole (Wieland 1991; as in ESP, NEAT, CoSyNE): a long and a short pole on one
# cart, 0.01 s steps, failure past ±36°; masses and half-lengths of the two poles
POLES_M, POLES_L, DOUBLE_TAU, DOUBLE_LIMIT = (0.1, 0.01), (0.5, 0.05), 0.01, 36 * np.pi / 180


def double_pole_step(s: np.ndarray, force: np.ndarray) -> np.ndarray:
    """One Euler step of every double pole in ``s`` (..., 6): x, x', th1, th1', th2, th2'.

    Wieland's equations as Gomez and Miikkulainen state them, with their convention
    of a negative gravity constant (angles grow as a pole falls)."""
    g = -GRAVITY
    x, dx = s[..., 0], s[..., 1]
    ths, dths = (s[..., 2], s[..., 4]), (s[..., 3], s[..., 5])
    eff_force, eff_mass = 0.0, 0.0
    for m, ell, th, dth in zip(POLES_M, POLES_L, ths, dths, strict=True):
        cos, sin = np.cos(th), np.sin(th)
        eff_force = eff_force + m * ell * dth**2 * sin + 0.75 * m * cos * g * sin
        eff_mass = eff_mass + m * (1 - 0.75 * cos**2)
    ddx = (force + eff_force) / (CART + eff_mass)
    out = [x + DOUBLE_TAU * dx, dx + DOUBLE_TAU * ddx]
    for ell, th, dth in zip(POLES_L, ths, dths, strict=True):
        ddth = -0.75 / ell * (ddx * np.cos(th) + g * np.sin(th))
        out += [th + DOUBLE_TAU * dth, dth + DOUBLE_TAU * ddth]
    return np.stack(out, -1)


TASKS = {
    # name: (step, state size, observed entries, their scales, failure test)
    "single": (cart_pole_step, 4, [0, 2], [X_LIMIT, ANGLE_LIMIT]),
    "double": (double_pole_step, 6, [0, 2, 4], [X_LIMIT, DOUBLE_LIMIT, DOUBLE_LIMIT]),
}


def failed(task: str, s: np.ndarray) -> np.ndarray:
    if task == "single":
        return (np.abs(s[..., 0]) >= X_LIMIT) | (np.abs(s[..., 2]) >= ANGLE_LIMIT)
    return (
        (np.abs(s[..., 0]) >= X_LIMIT)
        | (np.abs(s[..., 2]) >= DOUBLE_LIMIT)
        | (np.abs(s[..., 4]) >= DOUBLE_LIMIT)
    )


def controller(hidden: int, observed: int) -> rg.Graph:
    g = rg.Graph("pole_controller")
    h = rg.cells.elman(g.input("obs", observed), hidden, name="rnn")
    g.output("force", rg.tanh(rg.linear(h, 1, name="out")))
    return g


def starts(task: str, n: int, seed: int) -> np.ndarray:
    """Starting states: the long pole tilted 4.5° (the double pole's standard start) or
    small offsets (the single pole), each start jittered a little."""
    rng = np.random.default_rng(seed)
    size = TASKS[task][1]
    s = rng.uniform(-0.05, 0.05, (n, size))
    if task == "double":
        s[:, 2] += 4.5 * np.pi / 180
    return s


def episode(
    task: str, model: Any, params: dict[str, np.ndarray], s0: np.ndarray, steps: int
) -> np.ndarray:
    """Steps survived by each individual from each start, (P, B): the closed loop."""
    step, size, seen, scale = TASKS[task]
    P, B = len(next(iter(params.values()))), len(s0)
    state = np.broadcast_to(s0, (P, B, size)).copy()
    carried = {"rnn.h": np.zeros((P, B, model.graph.states["rnn.h"].shape[-1]), np.float32)}
    alive = np.ones((P, B), bool)
    survived = np.zeros((P, B))
    for _ in range(steps):
        obs = (state[..., seen] / scale).astype(np.float32)  # positions only, no velocities
        out = model.run({"obs": obs, **carried}, params=params)
        carried = {"rnn.h": out["rnn.h_final"]}
        state = step(state, FORCE * out["force"][..., 0])
        alive &= ~failed(task, state)
        survived += alive
        if not alive.any():
            break
    return survived


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=sorted(TASKS), default="double")
    ap.add_argument("--optimizers", nargs="+", default=["ga", "pso", "cma"])
    ap.add_argument("--population", type=int, default=32)
    ap.add_argument("--generations", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=3)
    ap.add_argument("--starts", type=int, default=1, help="starting states per individual")
    ap.add_argument("--steps", type=int, default=1000, help="steps of a full episode")
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None, help="draw the curves to this .svg/.png")
    ap.add_argument("--save", default=None, help="write the results as JSON")
    args = ap.parse_args(argv)

    g = controller(args.hidden, len(TASKS[args.task][2]))
    s0 = starts(args.task, args.starts, args.seed)

    def fitness(model: Any, params: dict[str, np.ndarray]) -> np.ndarray:
        survived = episode(args.task, model, params, s0, args.steps)
        return 1.0 - survived.mean(axis=1) / args.steps

    rows, curves = [], {}
    for name in args.optimizers:
        t0 = time.perf_counter()
        res = rg.evolve(
            g, fitness, g.init_params(seed=args.seed), optimizer=name,
            population=args.population, generations=args.generations, sigma=args.sigma,
            seed=args.seed, target=args.target, mode="step", stop_at=0.0, progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        solved_at = next((i for i, f in enumerate(res.history.best) if f == 0.0), None)
        # the winner, from starting states it never saw
        check = rg.compile(g, args.target, population=1, mode="step")
        best = {k: v[None] for k, v in res.params.items()}
        fresh = starts(args.task, 16, args.seed + 1000)
        held = (episode(args.task, check, best, fresh, args.steps) == args.steps).mean()
        row = {
            "optimizer": name,
            "best_loss": res.best_fitness,
            "solved": solved_at is not None,
            "generations_to_solve": None if solved_at is None else solved_at + 1,
            "evaluations_to_solve": None
            if solved_at is None
            else (solved_at + 1) * args.population,
            "evaluations": res.history.evaluations,
            "seconds": round(seconds, 2),
            "held_out_survival": float(held),
        }
        rows.append(row)
        curves[name] = res.history.best
        print(
            f"{name:4s}: best loss {res.best_fitness:.4f}, "
            + (f"solved in {row['generations_to_solve']} generations " if row["solved"] else "")
            + f"({seconds:.1f} s); survives {held:.0%} of 16 new starts"
        )
    if args.plot:
        rg.plot.line_chart(
            curves, args.plot, title=f"{args.task} pole balancing without velocities",
            xlabel="generation", ylabel="loss (share of the episode lost)",
        )  # fmt: skip
    result = {"settings": vars(args), "rows": rows}
    if args.save:
        rg.files.atomic_write(args.save, json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
