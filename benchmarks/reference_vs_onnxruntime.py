"""The reference interpreter against onnxruntime's own LSTM op, side by side in one run.

The reference interpreter is the semantics, not a fast path; this records how
far it is from the strongest CPU baseline so that backends can be judged
against both. Writes ``benchmarks/results/reference_vs_onnxruntime.json``.

Run: ``python benchmarks/reference_vs_onnxruntime.py``
"""

from __future__ import annotations

from functools import partial

import numpy as np
from _common import machine, write

import rnngraph as rg
from rnngraph.tools.bench import native_op_session, timed


def main() -> None:
    rows = []
    rng = np.random.default_rng(0)
    for batch in (1, 32):
        T, I, H = 100, 64, 256
        g = rg.Graph("lstm")
        g.output("y", rg.cells.lstm(g.input("x", I), H, name="c"))
        p = g.init_params(seed=0)
        xs = rng.standard_normal((T, batch, I)).astype(np.float32)
        sess = native_op_session("LSTM", p, "c", H)
        feeds = {"X": xs, "lens": np.full(batch, T, np.int32)}
        ours = rg.run(g, {"x": xs}, p)["y"]
        err = float(np.max(np.abs(ours - sess.run(None, feeds)[0][:, 0])))
        ref_ms = timed(partial(rg.run, g, {"x": xs}, p), 7)["median_ms"]
        ort_ms = timed(partial(sess.run, None, feeds), 30)["median_ms"]
        rows.append(
            {
                "model": "LSTM",
                "batch": batch,
                "T": T,
                "I": I,
                "H": H,
                "reference_interpreter_ms": round(ref_ms, 3),
                "onnxruntime_lstm_op_1thread_ms": round(ort_ms, 3),
                "ratio_reference_over_ort": round(ref_ms / ort_ms, 2),
                "max_abs_err_vs_ort": err,
            }
        )
        print(rows[-1])
    doc = {
        "benchmark": "reference interpreter vs onnxruntime LSTM op (median, fp32)",
        "note": "onnxruntime runs with intra_op_num_threads=1; the reference interpreter's "
        "numpy uses its BLAS's default thread count, so the ratio flatters the reference",
        "machine": machine(),
        "rows": rows,
    }
    print(f"wrote {write('reference_vs_onnxruntime', doc)}")


if __name__ == "__main__":
    main()
