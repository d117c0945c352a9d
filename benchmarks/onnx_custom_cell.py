"""Our ONNX of a custom cell against the same cell as a naive Scan and onnxruntime's LSTM op.

The custom cell is an LSTM with layer-normalised gate pre-activations over
``linear(concat([x, h]))`` (``rnngraph.tools.bench.cell_graph("LN-LSTM",
concat=True)``), the way it is often written: no fused op covers it.
Compiled as written (``optimize=False``) the input projection stays inside
the Scan body, one small GEMM per step; with the default passes it is
hoisted out (one GEMM over all steps) and only ``h @ R`` stays in the loop.
Also timed: the same passes with the loop unrolled by 4, a standard LSTM
through our compiler (recognised as ONNX's native op) and, where PyTorch is
installed, ``nn.LSTM`` and the custom cell as an eager Python loop.

Every model's output is checked against the reference interpreter before it
is timed. onnxruntime and PyTorch run with the same thread count per row.
Writes ``benchmarks/results/onnx_custom_cell.json``.

Run: ``python benchmarks/onnx_custom_cell.py [--quick]``
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

import numpy as np
from _common import NO_TORCH, machine, timed, torch_with, write

import rnngraph as rg
from rnngraph.tools.bench import NO_SPIN, cell_graph, native_op_session

I, H, T = 64, 256, 100


def ln_lstm(I: int, H: int) -> rg.Graph:
    return cell_graph("LN-LSTM", H, inputs=I, concat=True)


def lstm(I: int, H: int) -> rg.Graph:
    g = rg.Graph("lstm")
    g.output("y", rg.cells.lstm(g.input("x", I), H, name="c"))
    return g


def _check(name: str, got: np.ndarray, want: np.ndarray) -> float:
    err = float(np.max(np.abs(got - want)))
    if err > 1e-4:
        raise SystemExit(f"{name}: output differs from the reference by {err:.2e}")
    return err


def torch_rows(
    batch: int, threads: int, xs: np.ndarray, p_ln: dict, p_lstm: dict, reps: int
) -> dict[str, Any]:
    torch = torch_with(threads)
    if torch is None:
        return {"torch": NO_TORCH}
    out: dict[str, Any] = {}
    x = torch.from_numpy(xs)
    m = torch.nn.LSTM(I, H)
    W, R, B = (torch.from_numpy(p_lstm[f"c.{k}"]) for k in "WRB")

    def reorder(a: torch.Tensor) -> torch.Tensor:  # ONNX iofc -> torch ifgo
        i, o, f, c = a.chunk(4, 0)
        return torch.cat([i, f, c, o], 0)

    with torch.no_grad():
        m.weight_ih_l0.copy_(reorder(W))
        m.weight_hh_l0.copy_(reorder(R))
        m.bias_ih_l0.copy_(reorder(B[: 4 * H]))
        m.bias_hh_l0.copy_(reorder(B[4 * H :]))
        out["torch_nn_lstm"] = timed(lambda: m(x), reps)
        Wt, bt = torch.from_numpy(p_ln["W.W"]), torch.from_numpy(p_ln["W.b"])
        lg, lb = torch.from_numpy(p_ln["ln.g"]), torch.from_numpy(p_ln["ln.b"])

        def eager() -> torch.Tensor:
            h = torch.zeros(batch, H)
            c = torch.zeros(batch, H)
            ys = []
            for t in range(T):
                z = torch.cat([x[t], h], -1) @ Wt + bt
                z = torch.nn.functional.layer_norm(z, (4 * H,), lg, lb, 1e-5)
                i, f, o, u = z.chunk(4, -1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(u)
                h = torch.sigmoid(o) * torch.tanh(c)
                ys.append(h)
            return torch.stack(ys)

        out["torch_eager_ln_lstm"] = timed(eager, max(3, reps // 3))
        out["_torch_ln_lstm_y"] = eager().numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    reps = 5 if args.quick else 20
    rng = np.random.default_rng(0)
    g_ln, g_lstm = ln_lstm(I, H), lstm(I, H)
    p_ln, p_lstm = g_ln.init_params(seed=0), g_lstm.init_params(seed=0)
    rows = []
    for threads in (1, 2):
        opts = {"threads": threads, "session_config": NO_SPIN}
        compiled = {
            "ours_ln_lstm_hoisted": rg.compile(g_ln, "onnx", p_ln, **opts),
            "ours_ln_lstm_unroll4": rg.compile(g_ln, "onnx", p_ln, unroll=4, **opts),
            "naive_scan_ln_lstm": rg.compile(g_ln, "onnx", p_ln, optimize=False, **opts),
            "ours_lstm_native": rg.compile(g_lstm, "onnx", p_lstm, **opts),
        }
        for batch in (1, 32):
            xs = rng.standard_normal((T, batch, I)).astype(np.float32)
            want_ln = rg.run(g_ln, {"x": xs}, p_ln)["y"]
            want_lstm = rg.run(g_lstm, {"x": xs}, p_lstm)["y"]
            row: dict[str, Any] = {"batch": batch, "threads": threads, "T": T, "I": I, "H": H}
            errs = {}
            for name, m in compiled.items():
                want = want_lstm if "native" in name else want_ln
                errs[name] = _check(name, m.run({"x": xs})["y"], want)
                row[name] = timed(partial(m.run, {"x": xs}), reps)
            sess_threads = native_op_session("LSTM", p_lstm, "c", H, threads)
            feeds = {"X": xs, "lens": np.full(batch, T, np.int32)}
            errs["ort_lstm_op"] = _check(
                "ort_lstm_op", sess_threads.run(None, feeds)[0][:, 0], want_lstm
            )
            row["ort_lstm_op"] = timed(partial(sess_threads.run, None, feeds), reps)
            extra = torch_rows(batch, threads, xs, p_ln, p_lstm, reps)
            if "_torch_ln_lstm_y" in extra:
                errs["torch_eager_ln_lstm"] = _check(
                    "torch", extra.pop("_torch_ln_lstm_y"), want_ln
                )
            row.update(extra)
            med = {k: v["median_ms"] for k, v in row.items() if isinstance(v, dict)}
            row["ratios"] = {
                "hoisted_over_naive_scan": round(
                    med["ours_ln_lstm_hoisted"] / med["naive_scan_ln_lstm"], 3
                ),
                "unroll4_over_hoisted": round(
                    med["ours_ln_lstm_unroll4"] / med["ours_ln_lstm_hoisted"], 3
                ),
                "hoisted_custom_over_ort_lstm_op": round(
                    med["ours_ln_lstm_hoisted"] / med["ort_lstm_op"], 3
                ),
                "ours_native_lstm_over_ort_lstm_op": round(
                    med["ours_lstm_native"] / med["ort_lstm_op"], 3
                ),
            }
            if "torch_nn_lstm" in med:
                row["ratios"]["ours_native_lstm_over_torch_nn_lstm"] = round(
                    med["ours_lstm_native"] / med["torch_nn_lstm"], 3
                )
                row["ratios"]["hoisted_custom_over_torch_eager_custom"] = round(
                    med["ours_ln_lstm_hoisted"] / med["torch_eager_ln_lstm"], 3
                )
            row["max_abs_err_vs_reference"] = errs
            print(
                {
                    k: (v["median_ms"] if isinstance(v, dict) and "median_ms" in v else v)
                    for k, v in row.items()
                    if k != "max_abs_err_vs_reference"
                }
            )
            rows.append(row)
    doc = {
        "benchmark": "custom cell (layer-normalised LSTM) through our ONNX vs naive Scan vs "
        "onnxruntime's LSTM op; I=64 H=256 T=100, fp32, wall time per whole sequence",
        "note": "ort_lstm_op and ours_lstm_native run a standard LSTM of the same size (the "
        "strongest fused baseline); the ln_lstm rows run the custom cell, which costs more "
        "arithmetic (layer norm per step). Ratios < 1 mean the first is faster.",
        "machine": machine(),
        "rows": rows,
    }
    print(f"wrote {write('onnx_custom_cell', doc)}")


if __name__ == "__main__":
    main()
