"""Fitness evaluations per second for a population of weight vectors (issue 22's row).

P = 256 individuals of a small Elman net (4 inputs, 16 hidden, 2 outputs), each scored
on one episode of T = 200 steps (mean squared error against a fixed target). Ways to
score the whole population, each checked against ``rg.run`` first:

- ``population_<target>``: ``rg.compile(g, target, population=P)`` once, then one call
  with every weight vector (params as a run-time input, the population folded into
  the batch) — what ``rg.evolve`` does;
- ``params_as_inputs_onnx``: the model compiled once, called once per individual;
- ``recompile_<target>``: a model compiled per individual with its weights baked in
  (what a user's own loop did before), timed on a few individuals and scaled to P;
- ``reference_per_individual``: ``rg.run`` per individual (likewise scaled);
- ``torch_batched``: PyTorch with per-individual weights (``bmm`` over the population,
  one thread), an outside yardstick;
- ``ray_onnx_2cpu``: ``rg.evolve``'s Ray executor on a local 2-CPU cluster (two
  workers, each with its compiled model, half the population each; the time
  includes Ray's transfers).

The batched contenders take turns (:func:`rnngraph.tools.bench.timed_together`).
Writes ``benchmarks/results/population_fitness.json``.

Run: ``python benchmarks/population_fitness.py [--quick]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import machine, torch_with, write

import rnngraph as rg
from rnngraph.tools.bench import timed_together

I, H, O = 4, 16, 2


def elman() -> rg.Graph:
    g = rg.Graph("elman_controller")
    h = rg.cells.elman(g.input("x", I), H, name="rnn")
    g.output("y", rg.linear(h, O, name="out"))
    return g


def per_eval_seconds(fn: Any, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a smaller P")
    args = ap.parse_args()
    P, T = (64, 100) if args.quick else (256, 200)
    repeats = 5 if args.quick else 15
    g = elman()
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((T, 1, I)).astype(np.float32)
    target = np.sin(np.cumsum(xs[..., :O], axis=0) * 0.1).astype(np.float32)
    ps = [{k: v.astype(np.float32) for k, v in g.init_params(seed=s).items()} for s in range(P)]
    stacked = {k: np.stack([p[k] for p in ps]) for k in g.params}

    def loss_of(y: np.ndarray) -> np.ndarray:  # (P, T, B, O) -> (P,)
        return np.mean((y - target) ** 2, axis=tuple(range(1, y.ndim)))

    want = np.array([loss_of(rg.run(g, {"x": xs}, p)["y"][None])[0] for p in ps[:8]])
    compile_s: dict[str, float] = {}
    models = {}
    for target_name in rg.available_targets():
        if target_name not in ("onnx", "tvm", "reference"):
            continue
        t0 = time.perf_counter()
        kw = {"threads": 1} if target_name == "onnx" else {}
        models[target_name] = rg.compile(g, target_name, population=P, **kw)
        compile_s[target_name] = time.perf_counter() - t0
        got = loss_of(models[target_name].run({"x": xs}, params=stacked)["y"])
        np.testing.assert_allclose(got[:8], want, rtol=1e-4, atol=1e-6)

    fns: dict[str, Any] = {
        f"population_{k}": (lambda m=m: m.run({"x": xs}, params=stacked)) for k, m in models.items()
    }
    torch = torch_with(1)
    if torch is not None:
        W = torch.from_numpy(stacked["rnn.in.W"])  # (P, I, H)
        R = torch.from_numpy(stacked["rnn.rec.W"])  # (P, H, H)
        b = torch.from_numpy(stacked["rnn.in.b"])[:, None]
        Wo, bo = torch.from_numpy(stacked["out.W"]), torch.from_numpy(stacked["out.b"])[:, None]
        x_t = torch.from_numpy(xs)

        def torch_batched() -> Any:
            with torch.no_grad():
                h = torch.zeros(P, 1, H)
                ys = []
                for t in range(T):
                    xt = x_t[t].expand(P, 1, I)
                    h = torch.tanh(torch.bmm(xt, W) + torch.bmm(h, R) + b)
                    ys.append(torch.bmm(h, Wo) + bo)
                return torch.stack(ys, 1)

        ty = torch_batched().numpy()  # (P, T, 1, O)
        np.testing.assert_allclose(loss_of(ty)[:8], want, rtol=1e-4, atol=1e-6)
        fns["torch_batched"] = torch_batched
    timings = timed_together(fns, repeats, per_turn=3)
    evals = {k: P / (v["median_ms"] / 1e3) for k, v in timings.items()}

    one = rg.compile(g, "onnx", params_as_inputs=True, threads=1)
    evals["params_as_inputs_onnx"] = 1 / per_eval_seconds(
        lambda i: one.run({"x": xs}, params=ps[i]), min(P, 64)
    )
    evals["reference_per_individual"] = 1 / per_eval_seconds(
        lambda i: rg.run(g, {"x": xs}, ps[i]), 8 if args.quick else 16
    )
    for target_name in ("onnx", "tvm"):
        if target_name in models:
            kw = {"threads": 1} if target_name == "onnx" else {}
            evals[f"recompile_{target_name}"] = 1 / per_eval_seconds(
                lambda i, t=target_name, kw=kw: rg.compile(g, t, ps[i], **kw).run({"x": xs}),
                3 if target_name == "tvm" else 8,
            )

    ray_row: dict[str, Any] = {}
    try:
        import ray

        from rnngraph.training.evolve import _RayScorer

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        t0 = time.perf_counter()
        scorer = _RayScorer(
            g, {}, list(g.params), "onnx", {"threads": 1},
            lambda m, q: loss_of(m.run({"x": xs}, params=q)["y"]), 2,
        )  # fmt: skip
        got = scorer(stacked)  # (the first call waits for the workers to compile)
        ray_row["startup_s"] = time.perf_counter() - t0
        np.testing.assert_allclose(got[:8], want, rtol=1e-4, atol=1e-6)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            scorer(stacked)
            ts.append(time.perf_counter() - t0)
        scorer.close()
        ray.shutdown()
        evals["ray_onnx_2cpu"] = P / float(np.median(ts))
        ray_row["median_ms"] = float(np.median(ts)) * 1e3
    except ImportError:
        ray_row["skipped"] = "ray is not installed (pip install '.[ray]')"

    base = evals["recompile_onnx"]
    doc = {
        "benchmark": "population_fitness",
        "what": f"fitness evaluations per second, P={P} Elman({I},{H},{O}) individuals, "
        f"T={T} steps, batch 1 each, one thread per process",
        "machine": machine(),
        "evaluations_per_second": {k: round(v, 1) for k, v in evals.items()},
        "speedup_over_recompile_onnx": {k: round(v / base, 1) for k, v in evals.items()},
        "population_vs_torch_batched": (
            {
                k: round(evals[k] / evals["torch_batched"], 3)
                for k in evals
                if k.startswith("population")
            }
            if "torch_batched" in evals
            else "skipped: PyTorch is not installed"
        ),
        "compile_seconds": {k: round(v, 3) for k, v in compile_s.items()},
        "timings_ms": timings,
        "ray": ray_row,
    }
    print(write("population_fitness_quick" if args.quick else "population_fitness", doc))
    for k, v in sorted(evals.items(), key=lambda kv: -kv[1]):
        print(f"{k:28s} {v:12.1f} eval/s  ({v / base:8.1f}x recompiling ONNX)")


if __name__ == "__main__":
    main()
