"""``rnngraph demo``: build models, check them against onnxruntime's own ops, time, save, draw.

The demo is the README's main job: it shows the library working end to end
on this machine, with progress, in well under two minutes.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["demo", "median_ms", "native_op_session"]


def _step(i: int, n: int, text: str) -> float:
    print(f"[{i}/{n}] {text}", flush=True)
    return time.perf_counter()


def native_op_session(op: str, params: Mapping[str, np.ndarray], prefix: str, hidden: int) -> Any:
    """An onnxruntime session of ONNX's own LSTM or GRU op holding our cell's weights."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(params[f"{prefix}.{r}"][None].astype(np.float32), r)
        for r in ("W", "R", "B")
    ]
    n_out = 3 if op == "LSTM" else 2
    outs = ["Y", "Y_h", "Y_c"][:n_out]
    attrs: dict[str, Any] = {"linear_before_reset": 1} if op == "GRU" else {}
    node = helper.make_node(op, ["X", "W", "R", "B", "lens"], outs, hidden_size=hidden, **attrs)
    in_size = params[f"{prefix}.W"].shape[1]
    graph = helper.make_graph(
        [node],
        "native",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", in_size]),
            helper.make_tensor_value_info("lens", TensorProto.INT32, ["N"]),
        ],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def demo(out_dir: Path = Path("rnngraph-demo"), *, quick: bool = False) -> int:
    """Run the demo; returns a process exit code (non-zero if a parity check fails)."""
    import rnngraph as rg
    from rnngraph.drawing import draw
    from rnngraph.summary import format_summary, summarize

    n = 5
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    rng = np.random.default_rng(0)

    t0 = _step(
        1, n, "building a tagger: bidirectional LSTM -> GRU -> linear, with a 2-step look-back tap"
    )
    g = rg.Graph("tagger")
    x = g.input("x", 16)
    enc = rg.cells.lstm(x, 32, name="enc", direction="bidirectional")
    dec = rg.cells.gru(rg.concat([enc, rg.delay(enc, 2)]), 24, name="dec", linear_before_reset=True)
    g.output("logits", rg.linear(dec, 5, name="head"))
    params = g.init_params(seed=0)
    print(
        "\n".join(
            "      " + line
            for line in format_summary(summarize(g, params), nodes=False).splitlines()
        )
    )
    print(f"      ({time.perf_counter() - t0:.2f} s)")

    t0 = _step(
        2, n, "parity: our cells against onnxruntime's own LSTM and GRU ops (float32, ragged batch)"
    )
    T, B = 20, 4
    lens = np.array([20, 13, 7, 1], dtype=np.int32)
    rows: list[dict[str, Any]] = []
    cases: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
        ("LSTM", rg.cells.lstm, {}),
        ("GRU", rg.cells.gru, {"linear_before_reset": True}),
    ]
    for op, cell, kw in cases:
        gc = rg.Graph(op.lower())
        gc.output("y", cell(gc.input("x", 16), 32, name="c", **kw))
        pc = gc.init_params(seed=1)
        xs = rng.standard_normal((T, B, 16)).astype(np.float32)
        ours = rg.run(gc, {"x": xs}, pc, sequence_lens=lens)
        ref = native_op_session(op, pc, "c", 32).run(None, {"X": xs, "lens": lens})
        err_y = float(np.max(np.abs(ours["y"] - ref[0][:, 0])))
        err_h = float(np.max(np.abs(ours["c.h_final"] - ref[1][0])))
        rows.append({"cell": op, "max_abs_err_Y": err_y, "max_abs_err_Y_h": err_h})
        print(f"      {op:<5} max |ours - onnxruntime|: Y {err_y:.2e}   Y_h {err_h:.2e}")
    report["parity"] = rows
    ok = all(r["max_abs_err_Y"] <= 1e-5 and r["max_abs_err_Y_h"] <= 1e-5 for r in rows)

    _step(3, n, "streaming: the tagger's forward half run in chunks, state carried between calls")
    gs = rg.Graph("stream")
    gs.output("y", rg.cells.lstm(gs.input("x", 16), 32, name="enc"))
    ps = gs.init_params(seed=2)
    xs = rng.standard_normal((30, 2, 16)).astype(np.float32)
    whole = rg.run(gs, {"x": xs}, ps)
    state: dict[str, np.ndarray] = {}
    parts = []
    for chunk in np.array_split(xs, 4):
        o = rg.run(gs, {"x": chunk}, ps, initial_states=state)
        parts.append(o["y"])
        state = {"enc.h": o["enc.h_final"], "enc.c": o["enc.c_final"]}
    err = float(np.max(np.abs(np.concatenate(parts) - whole["y"])))
    print(f"      4 chunks vs one call: max abs difference {err:.1e}")
    report["streaming_max_abs_diff"] = err
    ok = ok and err <= 1e-6

    sizes = [(1, 32, 64, 64)] if quick else [(1, 100, 64, 256), (32, 100, 64, 256)]
    _step(4, n, "speed: reference interpreter vs onnxruntime's LSTM op (1 thread, median)")
    speed = []
    for batch, steps, inp, hid in sizes:
        gl = rg.Graph("lstm")
        gl.output("y", rg.cells.lstm(gl.input("x", inp), hid, name="c"))
        pl = gl.init_params(seed=3)
        xs = rng.standard_normal((steps, batch, inp)).astype(np.float32)
        lens_full = np.full(batch, steps, np.int32)
        sess = native_op_session("LSTM", pl, "c", hid)
        repeats = 3 if quick else 5
        feeds = {"X": xs, "lens": lens_full}
        ref_ms = median_ms(partial(rg.run, gl, {"x": xs}, pl), repeats)
        ort_ms = median_ms(partial(sess.run, None, feeds), repeats * 4)
        speed.append(
            {
                "batch": batch,
                "T": steps,
                "I": inp,
                "H": hid,
                "reference_ms": ref_ms,
                "onnxruntime_lstm_op_ms": ort_ms,
                "ratio": ref_ms / ort_ms,
            }
        )
        print(
            f"      B={batch:<3} T={steps} I={inp} H={hid}:  reference {ref_ms:8.2f} ms   "
            f"onnxruntime LSTM op {ort_ms:7.2f} ms   ratio {ref_ms / ort_ms:5.1f}x"
        )
    report["speed"] = speed

    _step(5, n, f"saving and drawing the tagger under {out_dir}/")
    saved = g.save(out_dir / "tagger.json", params=params)
    drawn = [draw(g, out_dir / "tagger.dot")]
    if shutil.which("dot"):
        drawn.append(draw(g, out_dir / "tagger.svg"))
    back = rg.load(saved)
    xs = rng.standard_normal((9, 2, 16)).astype(np.float32)
    same = np.array_equal(
        rg.run(back, {"x": xs}, rg.load_params(saved))["logits"],
        rg.run(g, {"x": xs}, params)["logits"],
    )
    print(
        f"      wrote {saved} (+ .npz), {', '.join(drawn)}; "
        f"reloaded graph gives identical outputs: {same}"
    )
    ok = ok and same
    report["ok"] = bool(ok)
    report["seconds"] = time.perf_counter() - start
    (out_dir / "demo.json").write_text(json.dumps(report, indent=1))
    print(
        f"done in {report['seconds']:.1f} s: {'all checks passed' if ok else 'A CHECK FAILED'}; "
        f"report in {out_dir / 'demo.json'}"
    )
    return 0 if ok else 1
