"""Echo state networks on Mackey-Glass: rnngraph against reservoirpy, side by side.

The same data (``reservoirpy.datasets.mackey_glass``), the same hyper-parameters
(leak 0.3, spectral radius 1.25, input scaling 1, connectivity 0.1, ridge 1e-6,
100 warm-up steps; 2000 steps to train, the next 999 to test one step ahead),
each library drawing its own reservoirs from seeds 0-4: the test NRMSE
(reservoirpy's ``nrmse``, normalised by the range) of both. Then the speed of
inference over the 999 test steps (batch 1, one thread) of one fitted model:
reservoirpy's ``run``, our reference interpreter, and our model compiled to
ONNX (onnxruntime) and TVM, in turns (:func:`rnngraph.tools.bench.timed_together`).
Every compiled model's predictions are checked against the reference first.
Writes ``benchmarks/results/esn_mackey_glass.json``.

Run: ``python benchmarks/esn_mackey_glass.py [--quick]`` (needs reservoirpy:
``pip install '.[bench]'``)
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _common import machine, one_thread_models, write

import rnngraph as rg
from rnngraph.tools.bench import timed_together

LEAK, SR, RIDGE, WARMUP = 0.3, 1.25, 1e-6, 100
TRAIN, TEST = 2000, 999


def esn_graph(units: int, seed: int) -> rg.Graph:
    g = rg.Graph("esn")
    h = rg.cells.esn(g.input("u", 1), units, leak=LEAK, spectral_radius=SR, seed=seed)
    g.output("y", rg.linear(h, 1, name="readout"))
    return g


def compare(units: int, seeds: range, data: np.ndarray, repeats: int) -> dict[str, Any]:
    from reservoirpy.nodes import Reservoir, Ridge
    from reservoirpy.observables import nrmse

    u = data[: TRAIN + TEST].reshape(-1, 1, 1)
    truth = data[TRAIN + 1 : TRAIN + TEST + 1]
    ours, theirs = [], []
    for seed in seeds:
        g = esn_graph(units, seed)
        p = rg.fit_readout(
            g, {"u": u[:TRAIN]}, data[1 : TRAIN + 1].reshape(-1, 1, 1), warmup=WARMUP, ridge=RIDGE
        )
        pred = rg.run(g, {"u": u}, p)["y"][TRAIN:, 0]
        ours.append(float(nrmse(truth, pred)))
        model = Reservoir(units, lr=LEAK, sr=SR, seed=seed) >> Ridge(ridge=RIDGE)
        model.fit(data[:TRAIN], data[1 : TRAIN + 1], warmup=WARMUP)
        theirs.append(float(nrmse(truth, model.run(data[TRAIN : TRAIN + TEST]))))

    # speed: the last seed's fitted models, over the test span from the trained state
    test_in = u[TRAIN:].astype(np.float32)
    h0 = {"esn.x": rg.run(g, {"u": u[:TRAIN]}, p)["esn.x_final"].astype(np.float32)}
    want = rg.run(g, {"u": test_in}, p, initial_states=h0)["y"]
    fns: dict[str, Any] = {
        "reservoirpy": lambda: model.run(data[TRAIN : TRAIN + TEST]),
        "ours_reference": lambda: rg.run(g, {"u": test_in}, p, initial_states=h0),
    }
    for key, m in one_thread_models(g, p).items():
        got = m.run({"u": test_in}, initial_states=h0)["y"]
        np.testing.assert_allclose(got, want, atol=1e-4)
        fns[key] = lambda m=m: m.run({"u": test_in}, initial_states=h0)
    times = timed_together(fns, repeats)
    base = times["reservoirpy"]["median_ms"]
    return {
        "units": units,
        "nrmse": {
            "ours": ours,
            "reservoirpy": theirs,
            "ours_mean": float(np.mean(ours)),
            "reservoirpy_mean": float(np.mean(theirs)),
        },
        "inference_ms": times,
        "time_vs_reservoirpy": {k: round(v["median_ms"] / base, 3) for k, v in times.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one size, two seeds, few repeats")
    args = ap.parse_args(argv)
    from reservoirpy.datasets import mackey_glass

    data = mackey_glass(TRAIN + TEST + 1)
    sizes = [100] if args.quick else [100, 500]
    seeds = range(2) if args.quick else range(5)
    rows = [compare(n, seeds, data, 10 if args.quick else 40) for n in sizes]
    for r in rows:
        nr = r["nrmse"]
        print(
            f"N={r['units']}: NRMSE ours {nr['ours_mean']:.5f}, reservoirpy "
            f"{nr['reservoirpy_mean']:.5f}; time vs reservoirpy {r['time_vs_reservoirpy']}"
        )
    doc = {
        "benchmark": "esn_mackey_glass",
        "setup": {
            "leak": LEAK,
            "spectral_radius": SR,
            "ridge": RIDGE,
            "warmup": WARMUP,
            "train_steps": TRAIN,
            "test_steps": TEST,
            "threads": 1,
        },
        "machine": machine(),
        "rows": rows,
    }
    if not args.quick:
        print(f"wrote {write('esn_mackey_glass', doc)}")
    return doc


if __name__ == "__main__":
    main()
