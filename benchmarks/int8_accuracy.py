"""int8 against float: accuracy and size of quantised recurrent models (issue 23's table).

Two models, each trained here in float, quantised by ``rg.quantize`` (post-training,
calibrated on training batches) and evaluated on held-out data both in the reference
interpreter and as the ONNX QDQ model in onnxruntime:

- a character-level LSTM language model (64 units, the model of
  ``examples/char_lstm.py``) on English prose shipped with Python: the docstrings
  of 50 standard-library modules and their public functions and classes (290k
  characters, 96 symbols); bits per character on the last tenth, which it never
  trained on, in windows of 64 characters from a zero state (as it trained);
- a keyword-spotting-sized GRU classifier (64 units, 10 "MFCC" features, 12
  classes): synthetic utterances, each class a smooth template stretched in time
  and noised; accuracy of the last step's prediction.

Reports float and int8 side by side, the relative change (goal: bits per character
within 2 %, accuracy within 1 point), and the params' bytes (goal: about 4x smaller).
Writes ``benchmarks/results/int8_accuracy.json``.

Run: ``python benchmarks/int8_accuracy.py [--quick]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import kws_utterances, machine, train_kws, write

import rnngraph as rg

MODULES = [
    *("argparse", "collections", "json", "textwrap", "functools", "itertools", "pathlib"),
    *("subprocess", "threading", "logging", "unittest", "email", "http.client"),
    *("urllib.request", "csv", "sqlite3", "datetime", "decimal", "fractions", "random"),
    *("statistics", "string", "re", "shutil", "tempfile", "zipfile", "tarfile", "typing"),
    *("dataclasses", "enum", "heapq", "bisect", "asyncio", "socket", "ssl", "xml.dom.minidom"),
    *("html.parser", "inspect", "pickle", "copy", "pprint", "difflib", "calendar"),
    *("configparser", "gettext", "locale", "optparse", "pdb", "timeit", "trace"),
]


def corpus() -> str:
    """English prose that ships with Python: standard-library docstrings."""
    import importlib
    import inspect
    import re

    parts = []
    for name in MODULES:
        m = importlib.import_module(name)
        parts.append(inspect.getdoc(m) or "")
        for k in sorted(dir(m)):
            o = getattr(m, k)
            if not k.startswith("_") and (inspect.isfunction(o) or inspect.isclass(o)):
                parts.append(inspect.getdoc(o) or "")
    text = re.sub(r"[^\x20-\x7e\n]", "", "\n".join(parts))
    return re.sub(r"[ \t]+", " ", text)


def nbytes(p: dict[str, np.ndarray], as_float32: bool) -> int:
    return sum((v.astype(np.float32) if as_float32 else v).nbytes for v in p.values())


def char_lm(steps: int, hidden: int) -> dict[str, Any]:
    text = corpus()
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    V = len(chars)
    cut = int(len(ids) * 0.9)
    train_ids, test_ids = ids[:cut], ids[cut:]
    g = rg.Graph("char_lstm")
    h = rg.cells.lstm(g.input("x", V), hidden, name="lstm")
    g.output("logits", rg.linear(h, V, name="head"))
    eye = np.eye(V, dtype=np.float32)
    rng = np.random.default_rng(0)

    def window(T: int, B: int) -> dict[str, np.ndarray]:
        starts = rng.integers(0, len(train_ids) - T - 1, B)
        win = np.stack([train_ids[s : s + T + 1] for s in starts], axis=1)
        return {"x": eye[win[:-1]], "t": eye[win[1:]]}

    t0 = time.perf_counter()
    result = rg.train(
        g, g.init_params(seed=0), [window(32, 16) for _ in range(steps)],
        loss=rg.losses.softmax_cross_entropy("t"), optimizer=rg.optim.Adam(1e-2),
        clip_norm=5.0, progress=False,
    )  # fmt: skip
    train_s = time.perf_counter() - t0
    p = result.params
    calibration = [{"x": window(64, 16)["x"]} for _ in range(4)]
    qg, qp = rg.quantize(g, p, calibration=calibration)
    # held out: the test text in windows of 64 characters (as trained), each from a zero state
    n = (len(test_ids) - 1) // 64
    streams = np.stack([test_ids[i * 64 : i * 64 + 65] for i in range(n)], axis=1)
    x, nxt = eye[streams[:-1]], streams[1:]

    def bpc(logits: np.ndarray) -> float:
        z = logits - logits.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        picked = np.take_along_axis(logp, nxt[..., None], -1)
        return float(-picked.mean() / np.log(2))

    float_bpc = bpc(rg.run(g, {"x": x}, p)["logits"])
    int8_bpc = bpc(rg.run(qg, {"x": x}, qp)["logits"])
    onnx_bpc = bpc(rg.compile(qg, "onnx", params=qp).run({"x": x})["logits"])
    return {
        "model": f"LSTM({V} -> {hidden}) char LM, {steps} updates ({train_s:.0f} s)",
        "corpus_chars": len(text),
        "held_out_chars": int(x.shape[0] * x.shape[1]),
        "float_bpc": float_bpc,
        "int8_bpc": int8_bpc,
        "int8_onnx_bpc": onnx_bpc,
        "relative_change": (int8_bpc - float_bpc) / float_bpc,
        "float_bytes": nbytes(p, True),
        "int8_bytes": nbytes(qp, False),
    }


def kws(steps: int, hidden: int) -> dict[str, Any]:
    F, C = 10, 12
    task = train_kws("gru", hidden, steps, F, C)
    g, p, train_s = task["graph"], task["params"], task["train_s"]
    qg, qp = rg.quantize(g, p, calibration=task["calibration"])
    x, labels, lens = kws_utterances(1000, np.random.default_rng(99), task["templates"])

    def accuracy(logits: np.ndarray) -> float:
        last = logits[lens - 1, np.arange(len(lens))]
        return float(np.mean(last.argmax(-1) == labels))

    fa = accuracy(rg.run(g, {"x": x}, p, sequence_lens=lens)["logits"])
    qa = accuracy(rg.run(qg, {"x": x}, qp, sequence_lens=lens)["logits"])
    oa = accuracy(rg.compile(qg, "onnx", params=qp).run({"x": x}, sequence_lens=lens)["logits"])
    return {
        "model": f"GRU({F} -> {hidden}) keyword classifier, {C} classes, {steps} updates "
        f"({train_s:.0f} s)",
        "held_out_utterances": len(labels),
        "float_accuracy": fa,
        "int8_accuracy": qa,
        "int8_onnx_accuracy": oa,
        "change_points": 100 * (qa - fa),
        "float_bytes": nbytes(p, True),
        "int8_bytes": nbytes(qp, False),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer training updates")
    args = ap.parse_args()
    lm = char_lm(100 if args.quick else 1500, 64)
    kw = kws(60 if args.quick else 300, 64)
    for row in (lm, kw):
        row["size_ratio"] = row["float_bytes"] / row["int8_bytes"]
    doc = {"benchmark": "int8_accuracy", "machine": machine(), "char_lm": lm, "kws": kw}
    print(write("int8_accuracy_quick" if args.quick else "int8_accuracy", doc))
    print(
        f"char LM: float {lm['float_bpc']:.4f} bpc, int8 {lm['int8_bpc']:.4f} "
        f"({100 * lm['relative_change']:+.2f} %), ONNX {lm['int8_onnx_bpc']:.4f}; "
        f"{lm['size_ratio']:.2f}x smaller"
    )
    print(
        f"KWS: float {kw['float_accuracy']:.3f}, int8 {kw['int8_accuracy']:.3f} "
        f"({kw['change_points']:+.1f} points), ONNX {kw['int8_onnx_accuracy']:.3f}; "
        f"{kw['size_ratio']:.2f}x smaller"
    )


if __name__ == "__main__":
    main()
