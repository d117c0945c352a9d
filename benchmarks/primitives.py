"""The new primitives' speed: a convolutional front end, top-k and a solve per step.

Three small graphs over T = 20 steps of a batch of 8, float32, one thread, in turns
(:func:`rnngraph.tools.bench.timed_together`), each checked against the reference
first:

* ``conv``: ``conv2d(8 -> 16, 3x3, padding 1)`` on ``(8, 16, 16)`` images, ReLU,
  ``max_pool(2)``;
* ``top_k``: the 8 largest of 256 values, and their positions;
* ``solve``: a 16 x 16 system per row.

Contenders: our ONNX model (onnxruntime's Conv/MaxPool/TopK; the solve unrolled),
our TVM kernel (direct loop nests: untuned), and PyTorch eager on the same T x B
rows. Writes ``benchmarks/results/primitives.json``.

Run: ``python benchmarks/primitives.py [--quick]``
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _common import NO_TORCH, machine, one_thread_models, torch_with, write

import rnngraph as rg
from rnngraph.tools.bench import timed_together

T, B = 20, 8


def cases() -> dict[str, tuple[rg.Graph, dict[str, np.ndarray], Any]]:
    rng = np.random.default_rng(0)
    out: dict[str, tuple[rg.Graph, dict[str, np.ndarray], Any]] = {}

    g = rg.Graph("conv")
    y = rg.max_pool(rg.relu(rg.conv2d(g.input("x", (8, 16, 16)), 16, 3, padding=1, name="c")), 2)
    g.output("y", y)
    xs = {"x": rng.standard_normal((T, B, 8, 16, 16)).astype(np.float32)}

    def conv_torch(torch: Any, p: dict[str, np.ndarray]) -> Any:
        F = torch.nn.functional
        w, b = torch.tensor(p["c.W"]), torch.tensor(p["c.b"][:, 0, 0])
        x = torch.tensor(xs["x"].reshape(T * B, 8, 16, 16))
        return lambda: F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)

    out["conv"] = (g, xs, conv_torch)

    g = rg.Graph("top_k")
    v, i = rg.top_k(g.input("x", 256), 8)
    g.output("v", v)
    g.output("i", i)
    xs_k = {"x": rng.standard_normal((T, B, 256)).astype(np.float32)}

    def topk_torch(torch: Any, p: dict[str, np.ndarray]) -> Any:
        x = torch.tensor(xs_k["x"].reshape(T * B, 256))
        return lambda: torch.topk(x, 8)

    out["top_k"] = (g, xs_k, topk_torch)

    g = rg.Graph("solve")
    g.output("x", rg.solve(g.input("A", (16, 16)), g.input("b", 16)))
    A = rng.standard_normal((T, B, 16, 16)).astype(np.float32) + 4 * np.eye(16, dtype=np.float32)
    xs_s = {"A": A, "b": rng.standard_normal((T, B, 16)).astype(np.float32)}

    def solve_torch(torch: Any, p: dict[str, np.ndarray]) -> Any:
        a = torch.tensor(xs_s["A"].reshape(T * B, 16, 16))
        b = torch.tensor(xs_s["b"].reshape(T * B, 16, 1))
        return lambda: torch.linalg.solve(a, b)

    out["solve"] = (g, xs_s, solve_torch)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats, nothing written")
    args = ap.parse_args(argv)
    torch = torch_with(1)
    rows = []
    for name, (g, xs, make_torch) in cases().items():
        p = {k: v.astype(np.float32) for k, v in g.init_params(seed=0).items()}
        want = rg.run(g, xs, p)
        fns: dict[str, Any] = {}
        for key, m in one_thread_models(g, p).items():
            got = m.run(xs)
            for k in want:
                np.testing.assert_allclose(got[k], want[k], rtol=1e-3, atol=1e-4, err_msg=k)
            fns[key] = lambda m=m, xs=xs: m.run(xs)
        if torch is not None:
            fns["torch_eager"] = make_torch(torch, p)
        times = timed_together(fns, 10 if args.quick else 60)
        row: dict[str, Any] = {"case": name, "ms": times}
        if torch is not None:
            base = times["torch_eager"]["median_ms"]
            row["time_vs_torch"] = {k: round(v["median_ms"] / base, 3) for k, v in times.items()}
        else:
            row["torch"] = NO_TORCH
        rows.append(row)
        print(name, {k: round(v["median_ms"], 3) for k, v in times.items()})
    doc = {
        "benchmark": "primitives",
        "setup": {"T": T, "B": B, "dtype": "float32", "threads": 1},
        "machine": machine(),
        "rows": rows,
    }
    if not args.quick:
        print(f"wrote {write('primitives', doc)}")
    return doc


if __name__ == "__main__":
    main()
