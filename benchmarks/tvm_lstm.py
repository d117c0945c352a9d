"""LSTM inference on the host CPU: our TVM kernel vs onnxruntime's LSTM op and PyTorch.

I=64 H=256 T=100, batch 1 and 32, fp32, one thread (TVM's default kernel
is one thread; onnxruntime and torch are pinned to one); at batch 32 also
two threads, TVM both ways: ``parallel=True`` (one group of batch rows per
core; "tvm") and ``parallel="products"`` (every product's weight panels and
every node's rows split over the cores, one launch of the thread pool for
the whole sequence, a barrier between phases; "tvm_products").
Ours: ``rg.compile(target="tvm")`` — the whole program as one TIR kernel
with the time loop inside, built for this machine's CPU, no tuning (there
are no tuning records: the kernels are hand-scheduled — see ``_gemm``).
Baselines: onnxruntime running its native ``LSTM`` op (what our ONNX backend
emits for a recognised LSTM) and ``torch.nn.LSTM``. Outputs are checked
against the reference first; the compile time is recorded. The three run
in turns (one call each per round), so the machine's drift hits them alike;
ratios of medians and of the fastest calls are both recorded. Writes
``benchmarks/results/tvm_lstm.json``.

Run: ``python benchmarks/tvm_lstm.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from typing import Any

# numpy's BLAS threads spin a while after each product (the reference's): on two cores
# they would take the core of TVM's second thread. One BLAS thread, set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from _common import NO_TORCH, lstm_graph, machine, torch_with, write

import rnngraph as rg
from rnngraph.tools.bench import native_op_session, timed_together

I, H, T = 64, 256, 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    reps = 3 if args.quick else 30
    g, p = lstm_graph(I, H)
    rows: list[dict[str, Any]] = []
    for B, threads in ((1, 1), (32, 1), (32, 2)):
        t0 = time.perf_counter()
        tvm_model = rg.compile(g, target="tvm", params=p, parallel=threads > 1)
        compile_s = time.perf_counter() - t0
        xs = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
        want = rg.run(g, {"x": xs}, p)["y"]
        row: dict[str, Any] = {"batch": B, "T": T, "I": I, "H": H, "threads": threads}
        row["tvm_compile_s"] = round(compile_s, 2)
        row["tuning_s"] = 0.0
        row["max_abs_err_tvm_vs_reference"] = float(
            np.max(np.abs(tvm_model.run({"x": xs})["y"] - want))
        )
        contenders = {"tvm": partial(tvm_model.run, {"x": xs})}
        if threads > 1:
            t0 = time.perf_counter()
            products = rg.compile(g, target="tvm", params=p, parallel="products")
            row["tvm_products_compile_s"] = round(time.perf_counter() - t0, 2)
            got = products.run({"x": xs})["y"]
            row["max_abs_err_tvm_products_vs_reference"] = float(np.max(np.abs(got - want)))
            contenders["tvm_products"] = partial(products.run, {"x": xs})
        sess = native_op_session("LSTM", p, "c", H, threads)
        feeds = {"X": xs, "lens": np.full(B, T, np.int32)}
        got = sess.run(["Y"], feeds)[0][:, 0]
        row["max_abs_err_ort_vs_reference"] = float(np.max(np.abs(got - want)))
        contenders["onnxruntime_lstm_op"] = partial(sess.run, ["Y"], feeds)
        torch = torch_with(threads)
        if torch is not None:
            lstm = torch.nn.LSTM(I, H)
            xt = torch.from_numpy(xs)

            def run_torch(lstm: Any = lstm, xt: Any = xt, torch: Any = torch) -> Any:
                with torch.no_grad():
                    return lstm(xt)

            contenders["torch"] = run_torch
        row.update(timed_together(contenders, reps))
        row.setdefault("torch", NO_TORCH)
        for ours in ("tvm", "tvm_products"):
            for base in ("onnxruntime_lstm_op", "torch"):
                if ours in row and isinstance(row[base], dict):
                    for stat, key in (("median_ms", ""), ("min_ms", "_fastest")):
                        ratio = row[ours][stat] / row[base][stat]
                        row[f"{ours}_vs_{base}{key}"] = round(ratio, 2)
        print(row, flush=True)
        rows.append(row)
    path = write("tvm_lstm", {"machine": machine(), "device": "host llvm", "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
