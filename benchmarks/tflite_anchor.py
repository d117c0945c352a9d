"""Our TFLite export against TensorFlow's own converter, on one trained LSTM.

A keyword-spotting LSTM (10 features, 32 units, 12 classes; the synthetic task of
``int8_accuracy.py``) is trained here in float with ``rg.train``. Then:

- **ours**: ``rg.quantize`` in TFLite's all-int8 scheme, the step exported by
  ``rg.compile(..., target="tflite", mode="step")`` and streamed in LiteRT;
- **the anchor**: the same weights in a Keras ``LSTM`` (gates reordered from ONNX's
  i, o, f, c to Keras' i, f, c, o), converted by TensorFlow's ``TFLiteConverter`` with
  full-integer quantisation on the same calibration data (its fused
  ``UNIDIRECTIONAL_SEQUENCE_LSTM``, int8 with an int16 cell: the 8x8_16 scheme), run in
  LiteRT over whole sequences.

Both are scored on the same 1000 held-out utterances (the prediction at each one's
last step) and compiled by Vela for an Ethos-U55-128: the share of operators on the
NPU and the cycles per step (the anchor's per sequence, divided by its steps).
TensorFlow runs in a separate interpreter (``--tf-python``, e.g. a venv with
``tensorflow-cpu``), so it never shares an environment with onnx or torch.
Writes ``benchmarks/results/tflite_anchor.json``.

Run: ``python benchmarks/tflite_anchor.py --tf-python /path/to/venv/bin/python``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

F, C, H, T = 10, 12, 32, 40


# ------------------------------------------------------------ the anchor (in TF)
def anchor(folder: Path) -> None:
    """Runs under --tf-python: Keras LSTM with our weights -> TFLiteConverter int8."""
    import tensorflow as tf

    w = dict(np.load(folder / "weights.npz"))
    cal = np.load(folder / "calibration.npy")  # (N, T, F)

    # ONNX gate order i, o, f, c -> Keras i, f, c, o
    def keras(m: np.ndarray) -> np.ndarray:
        i, o, f, c = np.split(m, 4, axis=0)
        return np.concatenate([i, f, c, o], axis=0)

    kernel = keras(w["c.W"]).T  # (in, 4H)
    recurrent = keras(w["c.R"]).T  # (H, 4H)
    bias = keras(w["c.B"][: 4 * H] + w["c.B"][4 * H :])
    inp = tf.keras.Input((T, F), batch_size=1)
    h = tf.keras.layers.LSTM(H, return_sequences=True, name="lstm")(inp)
    out = tf.keras.layers.Dense(C, name="out")(h)
    model = tf.keras.Model(inp, out)
    model.get_layer("lstm").set_weights([kernel, recurrent, bias])
    model.get_layer("out").set_weights([w["out.W"], w["out.b"]])
    np.save(folder / "keras_float.npy", model.predict(np.load(folder / "test_x.npy"), verbose=0))

    def representative() -> Any:
        for i in range(len(cal)):
            yield [cal[i : i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    (folder / "anchor.tflite").write_bytes(conv.convert())
    (folder / "tf_version.txt").write_text(tf.__version__)


# ------------------------------------------------------------------- ours
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tf-python", help="a Python with tensorflow (for the anchor)")
    ap.add_argument("--anchor", help=argparse.SUPPRESS)  # (the TF side, in that Python)
    ap.add_argument("--steps", type=int, default=300, help="training updates")
    args = ap.parse_args()
    if args.anchor:
        anchor(Path(args.anchor))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import kws_utterances, machine, vela, write

    def utterances(n: int, seed: int, tpl: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        return kws_utterances(n, np.random.default_rng(seed), tpl, steps=T)

    import rnngraph as rg

    rng = np.random.default_rng(1)
    templates = [rng.normal(size=(4, F)) for _ in range(C)]
    g = rg.Graph("kws_lstm")
    g.output("y", rg.linear(rg.cells.lstm(g.input("x", F), H, name="c"), C, name="out"))
    eye = np.eye(C, dtype=np.float32)
    data = []
    for i in range(args.steps):
        x, labels, lens = utterances(32, 100 + i, templates)
        t = np.broadcast_to(eye[labels], (T, *eye[labels].shape)).copy()
        data.append({"x": x, "t": t, "sequence_lens": lens})
    p = rg.train(
        g, g.init_params(seed=0), data, loss=rg.losses.softmax_cross_entropy("t"),
        optimizer=rg.optim.Adam(1e-2), clip_norm=5.0, progress=False,
    ).params  # fmt: skip
    cal = [{"x": d["x"], "sequence_lens": d["sequence_lens"]} for d in data[:4]]
    x, labels, lens = utterances(1000, 99, templates)

    def accuracy(y: np.ndarray) -> float:  # y (T, B, C)
        return float(np.mean(y[lens - 1, np.arange(len(lens))].argmax(-1) == labels))

    result: dict[str, Any] = {"float": accuracy(rg.run(g, {"x": x}, p)["y"])}
    q16, qp16 = rg.quantize(g, p, calibration=cal)  # the default: int16 states (8x8_16)
    result["ours_8x8_16_reference"] = accuracy(rg.run(q16, {"x": x}, qp16)["y"])
    qg, qp = rg.quantize(g, p, calibration=cal, states="int8", vectors="int8")
    result["ours_int8_reference"] = accuracy(rg.run(qg, {"x": x}, qp)["y"])
    m = rg.compile(qg, target="tflite", params=qp, mode="step")
    state = m.initial_states(len(labels))
    ys = []
    for t in range(T):
        out = m.run({"x": x[t], **state})
        state = {s: out[f"{s}_final"] for s in m.state_names}
        ys.append(out["y"])
    result["ours_tflite_litert"] = accuracy(np.array(ys))
    m16 = rg.compile(q16, target="tflite", params=qp16, mode="step")  # 8x8_16 in LiteRT
    state, ys = m16.initial_states(len(labels)), []
    for t in range(T):
        out = m16.run({"x": x[t], **state})
        state = {s: out[f"{s}_final"] for s in m16.state_names}
        ys.append(out["y"])
    result["ours_8x8_16_tflite_litert"] = accuracy(np.array(ys))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = m.save(folder / "ours.tflite")
        result["ours_vela_u55_128_per_step"] = vela(ours, "ethos-u55-128", folder / "v1")
        if args.tf_python:
            np.savez(folder / "weights.npz", **p)
            xb = np.concatenate([d["x"] for d in data[:4]], axis=1)  # (T, N, F)
            np.save(folder / "calibration.npy", np.ascontiguousarray(xb.transpose(1, 0, 2)[:200]))
            np.save(folder / "test_x.npy", np.ascontiguousarray(x.transpose(1, 0, 2)))
            done = subprocess.run(
                [args.tf_python, __file__, "--anchor", str(folder)],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode:
                version = subprocess.run(
                    [args.tf_python, "-c", "import tensorflow as t; print(t.__version__)"],
                    capture_output=True, text=True,
                ).stdout.strip()  # fmt: skip
                result["anchor"] = (
                    f"failed: TensorFlow {version}'s converter exited with code "
                    f"{done.returncode} (a negative code is the signal that killed it) "
                    f"converting with full-integer quantisation; its last words: "
                    f"{done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else ''}"
                )
                _finish(result, args, machine, write)
                return
            result["keras_float"] = accuracy(np.load(folder / "keras_float.npy").transpose(1, 0, 2))
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_path=str(folder / "anchor.tflite"))
            interp.allocate_tensors()
            (di,), (do,) = interp.get_input_details(), interp.get_output_details()
            (si, zi), (so, zo) = di["quantization"], do["quantization"]
            outs = []
            for b in range(x.shape[1]):
                q = np.clip(np.rint(x[:, b][None] / si) + zi, -128, 127).astype(np.int8)
                interp.set_tensor(di["index"], q)
                interp.invoke()
                outs.append((interp.get_tensor(do["index"])[0].astype(np.float32) - zo) * so)
            result["anchor_tflite_litert"] = accuracy(np.array(outs).transpose(1, 0, 2))
            v = vela(folder / "anchor.tflite", "ethos-u55-128", folder / "v2")
            v["cycles_total_per_step"] = v["cycles_total"] / T
            result["anchor_vela_u55_128_per_sequence"] = v
            result["anchor_tensorflow"] = (folder / "tf_version.txt").read_text()
            ops = _ops(folder / "anchor.tflite")
            result["anchor_ops"] = ops
        else:
            result["anchor"] = "not run: pass --tf-python (a Python with tensorflow)"
    _finish(result, args, machine, write)


def _finish(result: dict[str, Any], args: Any, machine: Any, write: Any) -> None:
    doc = {"benchmark": "tflite_anchor", "machine": machine(),
           "model": f"LSTM({F} -> {H}) + linear({C}), {args.steps} updates", **result}  # fmt: skip
    print(write("tflite_anchor", doc))
    print(json.dumps(result, indent=1))


def _ops(path: Path) -> list[str]:
    import tflite

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    sub = model.Subgraphs(0)
    return sorted(
        {names.get(model.OperatorCodes(sub.Operators(i).OpcodeIndex()).BuiltinCode(), "?")
         for i in range(sub.OperatorsLength())}
    )  # fmt: skip


if __name__ == "__main__":
    main()
