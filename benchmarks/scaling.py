"""How time and memory grow with a graph's size, a delay's length and a TVM cell's length.

Three sweeps, each size in a fresh process (its peak resident memory is the size's
own), written to ``results/scaling.json``:

- **graph size**: a chain of ``n`` scalar adds (1k to 100k nodes: build, verify, run
  3 steps in the reference interpreter, compile to ONNX and run in onnxruntime);
  building was quadratic (each constant scanned the ``const#k`` names: 7.8 s at 20k);
- **delay**: a state read ``d`` steps back (1 to 10^6) and a tap of ``d``: compile to
  ONNX and run 50 steps; a delay of 10^6 hung the compiler (a Scan state per step);
- **TVM cell length**: a loop whose cell is a chain of ``n`` element-wise nodes (100 to
  1,000): compile (LLVM and linking included) and run; 1,000 raised RecursionError.

Each row records seconds per stage and the process's peak RSS; ``per_node_us`` shows
whether the cost per node stays flat (linear growth)::

    python benchmarks/scaling.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _chain(n: int) -> dict[str, Any]:
    import numpy as np

    import rnngraph as rg

    row: dict[str, Any] = {"nodes": 0}
    t0 = time.perf_counter()
    g = rg.Graph("chain")
    v = g.input("x", ())
    for _ in range(n // 2):  # an add and its constant
        v = v + 1.0
    g.output("y", v)
    row["nodes"] = g.nx_graph.number_of_nodes()
    row["build_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rg.verify(g)
    row["verify_s"] = time.perf_counter() - t0
    xs = {"x": np.ones((3, 2), np.float32)}
    t0 = time.perf_counter()
    want = rg.run(g, xs)["y"]
    row["run_reference_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = rg.compile(g, target="onnx", params={})
    row["compile_onnx_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = m.run(xs)["y"]
    row["run_onnxruntime_s"] = time.perf_counter() - t0
    row["max_abs_err"] = float(np.max(np.abs(got - want)))
    return row


def _delay(d: int) -> dict[str, Any]:

    import rnngraph as rg

    g = rg.Graph("delay")
    x = g.input("x", 4)
    s = g.state("s", 4, delay=d)
    g.assign(s, rg.tanh(rg.linear(x, 4, name="in") + rg.linear(s, 4, bias=False, name="rec")))
    g.output("y", s + rg.delay(x, d))
    return _timed_build(g, 50, "onnx", {"delay": d})


def _tvm_cell(n: int) -> dict[str, Any]:

    import rnngraph as rg

    g = rg.Graph("long")
    x, h = g.input("x", 4), g.state("h", 4)
    v = rg.linear(x, 4, name="in") + rg.linear(h, 4, bias=False, name="rec")
    shared = h * 0.001
    for _ in range(n // 2):  # a multiply and an add
        v = v * 0.999 + shared
    g.assign(h, rg.tanh(v))
    g.output("y", v)
    return _timed_build(g, 20, "tvm", {"cell_nodes": n})


def _timed_build(g: Any, T: int, target: str, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with the seconds to compile ``g`` for ``target`` and to run ``T`` steps of
    2 rows of its 4-feature input ``x``, and the largest error against the reference."""
    import numpy as np

    import rnngraph as rg

    p = g.init_params(seed=0)
    xs = {"x": np.random.default_rng(0).standard_normal((T, 2, 4)).astype(np.float32)}
    runtime = {"onnx": "onnxruntime", "tvm": "tvm"}[target]
    t0 = time.perf_counter()
    m = rg.compile(g, target=target, params=p)
    row[f"compile_{target}_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = m.run(xs)
    row[f"run_{runtime}_s"] = time.perf_counter() - t0
    want = rg.run(g, xs, p)
    row["max_abs_err"] = max(float(np.max(np.abs(got[k] - want[k]))) for k in want)
    return row


def _peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: it starts anew at ``exec``, where
    ``ru_maxrss`` keeps the parent's at the fork)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


CASES = {"chain": _chain, "delay": _delay, "tvm_cell": _tvm_cell}


def _one(case: str, size: int) -> dict[str, Any]:
    """Run one case in a fresh process: its row with the process's peak RSS."""
    proc = subprocess.run(
        [sys.executable, __file__, "--one", case, str(size)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        return {"size": size, "error": proc.stderr.strip().splitlines()[-1]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smaller sizes only")
    parser.add_argument("--one", nargs=2, metavar=("CASE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # (in the fresh process of one row)
        row = CASES[args.one[0]](int(args.one[1]))
        row["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(row))
        return
    sys.path.insert(0, str(ROOT))  # (after the row's process returned: it imports no more)
    from benchmarks._common import machine, write

    sweeps = {
        "chain": [1_000, 10_000, 30_000, 100_000],
        "delay": [1, 10, 100, 10_000, 1_000_000],
        "tvm_cell": [100, 300, 1_000],
    }
    if args.quick:
        sweeps = {k: v[:2] for k, v in sweeps.items()}
    try:
        import tvm  # noqa: F401
    except ImportError:
        sweeps.pop("tvm_cell")
    doc: dict[str, Any] = {"machine": machine(), "sweeps": {}}
    start = time.perf_counter()
    for case, sizes in sweeps.items():
        rows = []
        for size in sizes:
            row = _one(case, size)
            nodes = row.get("nodes") or row.get("cell_nodes")
            stage = {"chain": "compile_onnx_s", "tvm_cell": "compile_tvm_s"}.get(case)
            if nodes and stage and stage in row:
                row["per_node_us"] = round(row[stage] / nodes * 1e6, 1)
            rows.append(row)
            print(case, json.dumps(row), file=sys.stderr, flush=True)
        doc["sweeps"][case] = rows
    doc["seconds"] = round(time.perf_counter() - start, 1)
    doc["peak_rss_mb_of_this_process"] = _peak_rss_mb()
    print(f"wrote {write('scaling', doc)}")


if __name__ == "__main__":
    main()
