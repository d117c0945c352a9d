"""One training step (forward + gradient) of an LSTM: our adjoint graph in onnxruntime vs PyTorch.

LSTM I=64 H=256 T=100 B=32, fp32. Ours: ``rg.adjoint`` of the LSTM (the
weights' gradients only, ``input_gradients=False``: the work PyTorch does for
an input that needs no gradient) compiled to ONNX (forward loop and
reversed-time adjoint loop as ``Scan``, weight gradients as one GEMM over all
steps) and run by onnxruntime, and compiled by the TVM backend (one kernel:
the same blocked products as the forward one, the weight gradients as blocked
products over chunks of steps); also the same gradient from the reference
interpreter (``rg.vjp``). PyTorch: ``nn.LSTM`` forward and ``backward()`` on
the same weights. Gradients are cross-checked before timing; the contenders
take turns. Writes ``benchmarks/results/training_step.json``.

Run: ``python benchmarks/training_step.py [--quick]``
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Any

import numpy as np
from _common import NO_TORCH, machine, timed, torch_with, write

import rnngraph as rg
from rnngraph.tools.bench import timed_together, torch_lstm_step

I, H, T = 64, 256, 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument(
        "--out", default="training_step", help="results/<OUT>.json (another CPU's figures)"
    )
    args = ap.parse_args()
    reps = 4 if args.quick else 20
    B = args.batch
    g = rg.Graph("lstm")
    g.output("y", rg.cells.lstm(g.input("x", I), H, name="c"))
    p = g.init_params(seed=0)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((T, B, I)).astype(np.float32)
    cy = rng.standard_normal((T, B, H)).astype(np.float32) / (T * B)
    rows: list[dict[str, Any]] = []
    adj = rg.adjoint(g, input_gradients=False)
    feeds = {"x": xs, "cot:y": cy}
    _, want = rg.vjp(g, {"x": xs}, p, cotangents={"y": cy})

    def error(got: dict[str, np.ndarray]) -> float:
        return max(float(np.max(np.abs(got[f"grad:{k}"] - want[k]))) for k in p)

    for threads in (1, 2):
        row: dict[str, Any] = {"batch": B, "threads": threads, "T": T, "I": I, "H": H}
        contenders: dict[str, Any] = {}
        m = rg.compile(adj, target="onnx", params=p, threads=threads)
        row["max_abs_err_onnx_vs_reference"] = error(m.run(feeds))
        contenders["ours_onnx_adjoint"] = partial(m.run, feeds)
        try:
            t0 = time.perf_counter()
            tm = rg.compile(adj, target="tvm", params=p, threads=threads)
            row["max_abs_err_tvm_vs_reference"] = error(tm.run(feeds))
            row["tvm_compile_s"] = round(time.perf_counter() - t0, 2)
            contenders["ours_tvm_adjoint"] = partial(tm.run, feeds)
        except rg.BackendUnavailableError as e:
            row["ours_tvm_adjoint"] = f"skipped: {e}"
        if threads == 1:
            row["reference_vjp"] = timed(partial(rg.vjp, g, {"x": xs}, p, cotangents={"y": cy}), 2)
            time.sleep(0.3)  # (numpy's BLAS threads spin a while after a product)
        torch = torch_with(threads)
        if torch is None:
            row["torch"] = NO_TORCH
        else:
            step, recurrent_gradient = torch_lstm_step(p, xs, cy)
            step()
            row["max_abs_err_torch_vs_reference"] = float(
                np.max(np.abs(recurrent_gradient() - want["c.R"]))
            )
            contenders["torch_autograd"] = step
        row.update(timed_together(contenders, reps, per_turn=max(1, reps // 5)))
        if torch is not None:
            for ours, key in (("ours_onnx_adjoint", "onnx"), ("ours_tvm_adjoint", "tvm")):
                if isinstance(row.get(ours), dict):
                    ratio = row[ours]["median_ms"] / row["torch_autograd"]["median_ms"]
                    row[f"ratio_ours_{key}_over_torch"] = round(ratio, 3)
        print({k: v.get("median_ms", v) if isinstance(v, dict) else v for k, v in row.items()})
        rows.append(row)
    doc = {
        "benchmark": "one LSTM training step (forward + all gradients), I=64 H=256 T=100, fp32",
        "note": "ours runs the adjoint graph (the weights' gradients; forward and backward "
        "loops as ONNX Scan) in onnxruntime, and as one TVM kernel; PyTorch runs its fused "
        "nn.LSTM forward and autograd backward; contenders in turns",
        "machine": machine(),
        "rows": rows,
    }
    print(f"wrote {write(args.out, doc)}")


if __name__ == "__main__":
    main()
