"""``rnngraph demo``: build models, check them against onnxruntime's own ops, time, save, draw.

The demo is the README's main job: it shows the library working end to end
on this machine, with progress, in well under two minutes.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.files import atomic_write
from rnngraph.tools.bench import native_op_session, timed

__all__ = ["demo", "sample_text"]


def _step(i: int, n: int, text: str) -> float:
    print(f"[{i}/{n}] {text}", flush=True)
    return time.perf_counter()


def sample_text(
    step: Any,
    chars: str,
    prime: str,
    n: int,
    rng: np.random.Generator,
    *,
    temperature: float = 1.0,
) -> str:
    """Feed ``prime`` to a character model's step model, then draw ``n`` characters.

    The model takes one-hot characters ``x`` and gives ``logits``; each drawn
    character is fed back, its state carried by ``step.advance``.
    """
    eye = np.eye(len(chars), dtype=np.float32)
    carried = step.initial_states(1)
    logits = None
    for c in prime:
        o, carried = step.advance({"x": eye[[chars.index(c)]]}, carried)
        logits = o["logits"][0]
    out = []
    for _ in range(n):
        if logits is None:
            raise ValueError("sample_text needs a non-empty prime")
        z = logits / temperature
        p = np.exp(z - z.max())
        i = int(rng.choice(len(chars), p=p / p.sum()))
        out.append(chars[i])
        o, carried = step.advance({"x": eye[[i]]}, carried)
        logits = o["logits"][0]
    return "".join(out)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("      " + line for line in lines)


def demo(out_dir: Path = Path("rnngraph-demo"), *, quick: bool = False) -> int:
    """Run the demo; returns a process exit code (non-zero if a parity check fails)."""
    import importlib.resources

    import rnngraph as rg
    from rnngraph.tools.drawing import draw
    from rnngraph.tools.summary import format_summary, summarize

    n = 6
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    rng = np.random.default_rng(0)

    t0 = _step(1, n, "building a character-level LSTM language model (and drawing it)")
    text = importlib.resources.files("rnngraph").joinpath("data/sonnets.txt").read_text()
    chars = "".join(sorted(set(text)))
    ids = np.array([chars.index(c) for c in text])
    V, H = len(chars), 48 if quick else 64
    g = rg.Graph("char_lstm")
    g.output("logits", rg.linear(rg.cells.lstm(g.input("x", V), H, name="lstm"), V, name="head"))
    params = g.init_params(seed=0)
    info = format_summary(summarize(g, params), nodes=False).splitlines()
    print("\n".join("      " + line for line in info[:6]))
    drawn = [draw(g, out_dir / "model.dot")]
    if shutil.which("dot"):
        drawn.append(draw(g, out_dir / "model.svg"))
    print(
        f"      {len(text)} characters of Shakespeare's sonnets, vocabulary {V}; "
        f"drew {', '.join(drawn)}"
    )
    print(f"      ({time.perf_counter() - t0:.2f} s)")

    steps = 60 if quick else 150
    t0 = _step(2, n, f"training it briefly: {steps} steps of BPTT through the adjoint graph, Adam")
    eye = np.eye(V, dtype=np.float32)

    def batches(epoch: int) -> Any:
        for _ in range(30):
            starts = rng.integers(0, len(ids) - 33, 16)
            win = np.stack([ids[s : s + 33] for s in starts], axis=1)
            yield {"x": eye[win[:-1]], "t": eye[win[1:]]}

    result = rg.train(
        g,
        params,
        batches,
        loss=rg.losses.softmax_cross_entropy("t"),
        optimizer=rg.optim.Adam(0.01),
        epochs=steps // 30,
        clip_norm=5.0,
    )
    params, hist = result.params, result.history
    try:
        paths = [hist.plot(str(out_dir / f"training.{ext}")) for ext in ("png", "svg")]
        curve = f"curve in {', '.join(paths)}"
    except ImportError as e:  # matplotlib is an extra
        curve = f"no curve drawn ({e})"
    print(
        f"      loss {hist.losses[0]:.3f} -> {hist.epoch_losses[-1]:.3f} "
        f"(uniform {np.log(V):.3f}); {curve}  ({time.perf_counter() - t0:.1f} s)"
    )
    report["training"] = {"first": hist.losses[0], "last": hist.epoch_losses[-1]}
    ok = hist.epoch_losses[-1] < 0.85 * np.log(V)

    t0 = _step(3, n, "exporting to ONNX and checking every engine against the reference")
    seq = rg.compile(g, target="onnx", params=params)
    seq.save(out_dir / "char_lstm.onnx")
    step = rg.compile(g, target="onnx", params=params, mode="step")
    step.save(out_dir / "char_lstm_step.onnx")
    T, B = 24, 3
    win = np.stack([ids[s : s + T] for s in rng.integers(0, len(ids) - T, B)], axis=1)
    xs = eye[win]
    lens = np.array([24, 11, 3])
    want = rg.run(g, {"x": xs}, params, sequence_lens=lens)
    got = seq.run({"x": xs}, sequence_lens=lens)
    ys = step.stream({"x": xs})["logits"]
    full = rg.run(g, {"x": xs}, params)
    cot = rng.standard_normal(full["logits"].shape).astype(np.float32)
    adj = rg.compile(rg.adjoint(g), target="onnx", params=params).run({"x": xs, "cot:logits": cot})
    _, grads = rg.vjp(g, {"x": xs}, params, cotangents={"logits": cot})
    ops = [n.op_type for n in seq.model.graph.node]
    parity = {
        "ONNX sequence model (native LSTM op), ragged batch": float(
            np.max(np.abs(got["logits"] - want["logits"]))
        ),
        "ONNX step model, streamed step by step": float(np.max(np.abs(ys - full["logits"]))),
        "ONNX adjoint graph: weight gradients (relative)": max(
            float(
                np.max(np.abs(adj[f"grad:{k}"] - grads[k])) / max(np.max(np.abs(grads[k])), 1e-12)
            )
            for k in params
        ),
    }
    cases: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
        ("LSTM", rg.cells.lstm, {}),
        ("GRU", rg.cells.gru, {"linear_before_reset": True}),
    ]
    for op, cell, kw in cases:
        gc = rg.Graph(op.lower())
        gc.output("y", cell(gc.input("x", 16), 32, name="c", **kw))
        pc = gc.init_params(seed=1)
        xc = rng.standard_normal((20, 4, 16)).astype(np.float32)
        lc = np.array([20, 13, 7, 1], dtype=np.int32)
        ours = rg.run(gc, {"x": xc}, pc, sequence_lens=lc)
        ref = native_op_session(op, pc, "c", 32).run(None, {"X": xc, "lens": lc})
        parity[f"reference {op} cell vs onnxruntime's own {op} op"] = float(
            np.max(np.abs(ours["y"] - ref[0][:, 0]))
        )
    rows = [["check", "max |error|"]] + [[k, f"{v:.2e}"] for k, v in parity.items()]
    print(_table(rows))
    print(
        f"      (the sequence model uses {ops.count('LSTM')} native LSTM op; "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    report["parity"] = parity
    ok = ok and all(v <= 1e-4 for v in parity.values())

    t0 = _step(4, n, "sampling text from the ONNX step model in onnxruntime")
    sample = "Shall I " + sample_text(step, chars, "Shall I ", 120, rng, temperature=0.7)
    print("\n".join("      | " + line for line in sample.splitlines()))
    report["sample"] = sample

    sizes = [(1, 32, 64, 64)] if quick else [(1, 100, 64, 256), (32, 100, 64, 256)]
    t0 = _step(
        5, n, "speed: LSTM in our ONNX, the reference, onnxruntime's op (1 thread, median ms)"
    )
    speed = []
    for batch, steps_, inp, hid in sizes:
        gl = rg.Graph("lstm")
        gl.output("y", rg.cells.lstm(gl.input("x", inp), hid, name="c"))
        pl = gl.init_params(seed=3)
        xl = rng.standard_normal((steps_, batch, inp)).astype(np.float32)
        sess = native_op_session("LSTM", pl, "c", hid)
        ours_m = rg.compile(gl, target="onnx", params=pl, threads=1)
        repeats = 3 if quick else 5
        feeds = {"X": xl, "lens": np.full(batch, steps_, np.int32)}
        row = {
            "batch": batch,
            "T": steps_,
            "I": inp,
            "H": hid,
            "reference_ms": timed(partial(rg.run, gl, {"x": xl}, pl), repeats)["median_ms"],
            "ours_onnx_ms": timed(partial(ours_m.run, {"x": xl}), repeats * 4)["median_ms"],
            "onnxruntime_lstm_op_ms": timed(partial(sess.run, None, feeds), repeats * 4)[
                "median_ms"
            ],
        }
        speed.append(row)
    rows = [["B", "T", "I", "H", "reference", "ours (ONNX)", "ORT LSTM op", "ours / op"]]
    for r in speed:
        rows.append(
            [
                str(r["batch"]),
                str(r["T"]),
                str(r["I"]),
                str(r["H"]),
                f"{r['reference_ms']:.2f}",
                f"{r['ours_onnx_ms']:.2f}",
                f"{r['onnxruntime_lstm_op_ms']:.2f}",
                f"{r['ours_onnx_ms'] / r['onnxruntime_lstm_op_ms']:.2f}x",
            ]
        )
    print(_table(rows))
    report["speed"] = speed

    _step(6, n, f"saving under {out_dir}/")
    saved = g.save(out_dir / "char_lstm.json", params=params)
    back = rg.load(saved)
    same = np.array_equal(rg.run(back, {"x": xs}, rg.load_params(saved))["logits"], full["logits"])
    print(f"      wrote {saved} (+ .npz), the ONNX models, pictures; reload identical: {same}")
    ok = bool(ok and same)
    report["ok"] = ok
    report["seconds"] = time.perf_counter() - start
    atomic_write(out_dir / "demo.json", json.dumps(report, indent=1))
    print(
        f"done in {report['seconds']:.1f} s: {'all checks passed' if ok else 'A CHECK FAILED'}; "
        f"report in {out_dir / 'demo.json'}"
    )
    return 0 if ok else 1
