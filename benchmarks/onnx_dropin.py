"""Imported ONNX models against the originals: what swapping in rnngraph's file costs or saves.

For each model (ONNX's ``LSTM``; ``Attention`` of a decoder over an encoder memory, and
causal over its own keys; ``CausalConvWithState``, Mamba's convolution, which onnxruntime
has no kernel for: there the reference is ONNX's own and PyTorch the time to beat),
the original file runs in onnxruntime (its own fused ops), then the
drop-in: ``rg.import_onnx`` → ``rg.compile(target="onnx")`` → ``save`` (the file a user
swaps in, run in onnxruntime with the same feeds), and the TVM model of the same graph;
PyTorch where a module does the same (``nn.LSTM``, ``scaled_dot_product_attention``).
Every drop-in's outputs are checked against the original's before it is timed;
contenders take turns (:func:`rnngraph.tools.bench.timed_together`), one thread each.
Writes ``benchmarks/results/onnx_dropin.json`` (``--out NAME`` for another machine).

Run: ``python benchmarks/onnx_dropin.py [--quick]``
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from _common import NO_TORCH, machine, torch_with, write
from onnx import TensorProto, helper, numpy_helper

import rnngraph as rg
from rnngraph.tools.bench import NO_SPIN, timed_together

F = TensorProto.FLOAT


def _session(path_or_bytes: Any) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    for k, v in NO_SPIN.items():
        so.add_session_config_entry(k, v)
    return ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])


def lstm_model(I: int, H: int) -> Any:
    rng = np.random.default_rng(0)
    init = [
        numpy_helper.from_array(rng.uniform(-0.1, 0.1, s).astype(np.float32), n)
        for n, s in (("W", (1, 4 * H, I)), ("R", (1, 4 * H, H)), ("B", (1, 8 * H)))
    ]
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=H)
    graph = helper.make_graph(
        [node], "lstm", [helper.make_tensor_value_info("X", F, ["T", "B", I])],
        [helper.make_tensor_value_info(n, F, None) for n in ("Y", "Y_h")], init,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def attention_model(Hq: int, Hkv: int, d: int, S: int, causal: bool) -> Any:
    inputs = [
        helper.make_tensor_value_info("Q", F, ["B", Hq, "T", d]),
        helper.make_tensor_value_info("K", F, ["B", Hkv, S, d]),
        helper.make_tensor_value_info("V", F, ["B", Hkv, S, d]),
    ]
    node = helper.make_node("Attention", ["Q", "K", "V"], ["Y"], is_causal=int(causal))
    graph = helper.make_graph(
        [node], "attention", inputs, [helper.make_tensor_value_info("Y", F, None)]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])


def conv_model(C: int, k: int) -> Any:
    rng = np.random.default_rng(1)
    init = [
        numpy_helper.from_array(rng.normal(0, 0.3, (C, 1, k)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(0, 0.1, C).astype(np.float32), "b"),
    ]
    node = helper.make_node("CausalConvWithState", ["x", "w", "b"], ["y", "state"],
                            activation="silu")  # fmt: skip
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", F, ["B", C, "L"])],
        [helper.make_tensor_value_info(n, F, None) for n in ("y", "state")], init,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])


def torch_fn(case: str, feeds: dict[str, np.ndarray], model: Any) -> Callable[[], Any] | str:
    torch = torch_with(1)
    if torch is None:
        return NO_TORCH
    t = {k: torch.from_numpy(v) for k, v in feeds.items()}
    if case.startswith("attention"):
        causal = "causal" in case
        return lambda: torch.nn.functional.scaled_dot_product_attention(
            t["Q"], t["K"], t["V"], is_causal=causal, enable_gqa=True
        )
    if case == "lstm":
        w = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        H = w["R"].shape[-1]
        m = torch.nn.LSTM(w["W"].shape[-1], H)
        order = np.r_[0:H, 2 * H : 3 * H, 3 * H : 4 * H, H : 2 * H]  # (ONNX iofc -> torch ifgo)
        with torch.no_grad():
            m.weight_ih_l0.copy_(torch.from_numpy(w["W"][0][order]))
            m.weight_hh_l0.copy_(torch.from_numpy(w["R"][0][order]))
            m.bias_ih_l0.copy_(torch.from_numpy(w["B"][0][: 4 * H][order]))
            m.bias_hh_l0.copy_(torch.from_numpy(w["B"][0][4 * H :][order]))

        def run() -> Any:
            with torch.no_grad():
                return m(t["X"])

        return run
    w = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    k = w["w"].shape[-1]

    def conv() -> Any:
        y = torch.nn.functional.conv1d(
            torch.nn.functional.pad(t["x"], (k - 1, 0)), w["w"], w["b"], groups=w["w"].shape[0]
        )
        return torch.nn.functional.silu(y)

    return conv


def run_case(name: str, model: Any, feeds: dict[str, np.ndarray], reps: int) -> dict[str, Any]:
    names = [o.name for o in model.graph.output]
    try:
        original: ort.InferenceSession | None = _session(model.SerializeToString())
        want = dict(zip(names, original.run(None, feeds), strict=True))
        missing = ""
    except Exception as e:  # (an op onnxruntime has no kernel for: ONNX's own reference)
        from onnx.reference import ReferenceEvaluator

        original, missing = None, f"onnxruntime {ort.__version__} cannot run it: {str(e)[-90:]}"
        want = dict(zip(names, ReferenceEvaluator(model).run(None, feeds), strict=True))
    g, p = rg.import_onnx(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = rg.compile(g, target="onnx", params=p).save(Path(tmp) / "dropin.onnx")
        dropin = _session(str(path))
    tvm = rg.compile(g, target="tvm", params=p, threads=1)
    err: dict[str, float] = {}
    from_file = dict(zip([o.name for o in dropin.get_outputs()], dropin.run(None, feeds),
                         strict=True))  # fmt: skip
    for label, got in (("dropin_onnx", from_file), ("tvm", tvm.run(feeds))):
        err[label] = max(float(np.max(np.abs(got[k] - want[k]))) for k in want)
        if err[label] > 1e-3:
            raise SystemExit(f"{name}: {label} differs from the original by {err[label]:.2e}")
    fns: dict[str, Callable[[], Any]] = {
        "dropin_onnx": lambda: dropin.run(None, feeds),
        "tvm": lambda: tvm.run(feeds),
    }
    if original is not None:
        fns["original_ort"] = lambda: original.run(None, feeds)
    torch_row = torch_fn(name, feeds, model)
    if callable(torch_row):
        fns["torch"] = torch_row
    times = timed_together(fns, reps)
    base_name = "original_ort" if original is not None else "torch"
    base = times[base_name]["median_ms"] if base_name in times else float("nan")
    return {
        "inputs": {k: list(v.shape) for k, v in feeds.items()},
        "max_abs_error_vs_original": err,
        "ms": times,
        f"ratio_to_{base_name}": {k: round(v["median_ms"] / base, 3) for k, v in times.items()},
        **({"original_ort": missing} if missing else {}),
        **({} if callable(torch_row) else {"torch": torch_row}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="onnx_dropin")
    args = ap.parse_args()
    rng = np.random.default_rng(2)
    B, T = (2, 16) if args.quick else (8, 64)
    reps = 10 if args.quick else 40

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    cases = {
        "lstm": (lstm_model(64, 256), {"X": normal(T, B, 64)}),
        "attention_cross": (
            attention_model(8, 2, 64, 128, False),
            {"Q": normal(B, 8, T, 64), "K": normal(B, 2, 128, 64), "V": normal(B, 2, 128, 64)},
        ),
        "attention_causal": (
            attention_model(8, 2, 64, T, True),
            {"Q": normal(B, 8, T, 64), "K": normal(B, 2, T, 64), "V": normal(B, 2, T, 64)},
        ),
        "causal_conv": (conv_model(256, 4), {"x": normal(B, 256, T)}),
    }
    rows = {}
    for name, (model, feeds) in cases.items():
        rows[name] = run_case(name, model, feeds, reps)
        print(name, {k: v for k, v in rows[name].items() if k.startswith("ratio")})
    write(args.out, {"machine": machine(), "threads": 1, "batch": B, "steps": T, "rows": rows})


if __name__ == "__main__":
    main()
