"""LSTM inference on the host CPU: our TVM kernel vs onnxruntime's LSTM op and PyTorch.

I=64 H=256 T=100, batch 1 and 32, fp32, on one thread and on every core
(two here). Ours: ``rg.compile(target="tvm")`` — the whole program as one TIR
kernel with the time loop inside, built for this machine's CPU, its kernels
shaped by the plan derived from the CPU (``print(m.plan)``):
``threads=1``; as a user compiles it (every core by default, each call split
by its batch: every product's panels for a few rows, a group of batch rows
per core from four rows a core; "tvm"); split by products at batch 32
("tvm_products"); and tuned on this machine (``tune=True``, cached: the
tuning time is recorded once); also a layer-normalised LSTM written as a
custom cell (``tvm_ln_lstm``: no fused op covers it) against the standard
LSTM's baselines of the same size. Baselines: onnxruntime running its native
``LSTM`` op (what our ONNX backend emits for a recognised LSTM) with as many
threads (its default, every core, on the rows on two threads) and
``torch.nn.LSTM``. Outputs are checked against the reference first; the
compile time is recorded. The contenders run in turns (one call each per
round), so the machine's drift hits them alike; ratios of medians and of the
fastest calls are both recorded. Writes ``benchmarks/results/tvm_lstm.json``
(``--out`` elsewhere: another CPU's figures beside this one's).

Run: ``python benchmarks/tvm_lstm.py [--quick] [--out NAME]``
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
from rnngraph.tools.bench import cell_graph, native_op_session, timed_together

I, H, T = 64, 256, 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--out", default="tvm_lstm", help="results/<OUT>.json (default tvm_lstm)")
    args = ap.parse_args()
    reps = 3 if args.quick else 30
    g, p = lstm_graph(I, H)
    ln_g = cell_graph("LN-LSTM", H, inputs=I)  # a custom cell no fused op covers
    ln_p = {k: v.astype(np.float32) for k, v in ln_g.init_params(seed=0).items()}
    cores = len(os.sched_getaffinity(0))
    t0 = time.perf_counter()
    rg.compile(g, target="tvm", params=p, tune={"batch": [1, 32], "steps": T})
    tuning_s = round(time.perf_counter() - t0, 1)  # (0 when the cache had it)
    rows: list[dict[str, Any]] = []
    for B, threads in ((1, 1), (1, cores), (32, 1), (32, cores)):
        xs = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
        want = rg.run(g, {"x": xs}, p)["y"]
        row: dict[str, Any] = {"batch": B, "T": T, "I": I, "H": H, "threads": threads}
        contenders: dict[str, Any] = {}
        kinds: dict[str, dict[str, Any]] = {"tvm": {"threads": threads}}
        if threads > 1:
            kinds["tvm"] = {}  # as a user compiles it: every core
            kinds["tvm_tuned"] = {"tune": {"batch": [1, 32], "steps": T}}
            if B > 1:
                kinds["tvm_products"] = {"parallel": "products"}
        kinds["tvm_ln_lstm"] = {"threads": threads}  # the custom cell, as a user compiles it
        for name, opts in kinds.items():
            graph, params, ref = (
                (ln_g, ln_p, rg.run(ln_g, {"x": xs}, ln_p)["y"])
                if (name == "tvm_ln_lstm")
                else (g, p, want)
            )
            t0 = time.perf_counter()
            model = rg.compile(graph, target="tvm", params=params, **opts)
            model.run({"x": xs})  # (builds the kernel of this batch's split)
            row[f"{name}_compile_s"] = round(time.perf_counter() - t0, 2)
            row[f"{name}_split"] = model.split_for(B)
            err = float(np.max(np.abs(model.run({"x": xs})["y"] - ref)))
            row[f"max_abs_err_{name}_vs_reference"] = err
            contenders[name] = partial(model.run, {"x": xs})
            if name == "tvm":
                row["plan"] = str(model.plan).splitlines()
        row["tuning_s"] = tuning_s
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
        for ours in ("tvm", "tvm_tuned", "tvm_products", "tvm_ln_lstm"):
            for base in ("onnxruntime_lstm_op", "torch"):
                if ours in row and isinstance(row[base], dict):
                    for stat, key in (("median_ms", ""), ("min_ms", "_fastest")):
                        ratio = row[ours][stat] / row[base][stat]
                        row[f"{ours}_vs_{base}{key}"] = round(ratio, 2)
        print({k: v for k, v in row.items() if k != "plan"}, flush=True)
        rows.append(row)
    path = write(args.out, {"machine": machine(), "device": "host llvm", "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
