"""Keyword spotting on a Cortex-M: the integer-only C of an LSTM and a GRU step.

Each model (64 units, 10 "MFCC" features, 12 classes; synthetic utterances as in
``int8_accuracy.py``) is trained here in float, quantised by ``rg.quantize``
(post-training, 8x8_16: int8 weights and activations, int16 states), written as
integer-only arithmetic (``rg.quant.to_integer``) and compiled to C by the ``micro``
backend. Reports, side by side:

- accuracy on 1000 held-out utterances: float, the quantised (Q/DQ) reference, the
  integer graph's reference — and the C itself, run under qemu-system-arm on a
  Cortex-M4 board model (MPS2 AN386) on 200 of them, bit for bit the integer graph's;
- flash and RAM of the step (from the compiled object's sections; the stack frame
  from GCC's ``-fstack-usage``), for the Cortex-M3, M4, M7 and M55;
- instructions per step on each core (qemu's ``-icount``: SysTick counts one
  instruction a nanosecond), and per multiply-accumulate of the step's products.

Writes ``benchmarks/results/cortex_m.json``. Needs Debian's ``gcc-arm-none-eabi`` and
``qemu-system-arm``.

Run: ``python benchmarks/cortex_m.py [--quick]``
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _common import kws_utterances, machine, train_kws, write

import rnngraph as rg

DEVICES = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m55")
F, C, H = 10, 12, 64


def model(cell: str, steps: int) -> dict[str, Any]:
    task = train_kws(cell, H, steps, F, C)
    g, p, train_s = task["graph"], task["params"], task["train_s"]
    qg, qp = rg.quantize(g, p, calibration=task["calibration"])
    # the C on a Cortex-M4 board model (50 rows a run), and the integer graph it computes
    m = rg.compile(qg, target="micro", params=qp, device="cortex-m4", batch=50)
    ig, ip = m.integer_graph, m.integer_params
    templates = task["templates"]
    x, labels, lens = kws_utterances(1000, np.random.default_rng(99), templates)

    def accuracy(logits: np.ndarray, n: int = len(labels)) -> float:
        last = logits[lens[:n] - 1, np.arange(n)]
        return float(np.mean(last.argmax(-1) == labels[:n]))

    integer = rg.run(ig, {"x": x}, ip)["logits"]
    row: dict[str, Any] = {
        "model": f"{cell.upper()}({F} -> {H}) keyword classifier, {C} classes, {steps} "
        f"updates ({train_s:.0f} s)",
        "float_accuracy": accuracy(rg.run(g, {"x": x}, p)["logits"]),
        "qdq_accuracy": accuracy(rg.run(qg, {"x": x}, qp)["logits"]),
        "integer_accuracy": accuracy(integer),
        "int8_weight_bytes": int(sum(v.nbytes for v in ip.values())),
        "float_weight_bytes": int(sum(np.asarray(v, np.float32).nbytes for v in p.values())),
        "macs_per_step": (4 if cell == "lstm" else 3) * H * (F + H) + H * C,
    }
    ref = integer[:, :200]  # (200 utterances in 4 runs of 50 rows)
    got = np.concatenate([m.run({"x": x[:, i : i + 50]})["logits"] for i in range(0, 200, 50)], 1)
    row["c_cortex_m4_bit_exact"] = bool(np.array_equal(got, ref))
    row["c_cortex_m4_accuracy_200"] = accuracy(got, 200)
    row["integer_accuracy_200"] = accuracy(ref, 200)
    row["devices"] = {}
    for dev in DEVICES:
        one = rg.compile(qg, target="micro", params=qp, device=dev)
        out = one.run({"x": x[:, :1]})["logits"]
        assert np.array_equal(out, ref[:, :1]), dev
        assert one.float_symbols() == [], dev
        per_step = one.stats["instructions_per_step"]
        row["devices"][dev] = {
            **one.memory(),
            "instructions_per_step": round(per_step),
            "instructions_per_mac": round(per_step / row["macs_per_step"], 2),
        }
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer training updates")
    args = ap.parse_args()
    steps = 60 if args.quick else 300
    doc = {"benchmark": "cortex_m", "machine": machine(),
           "models": {cell: model(cell, steps) for cell in ("lstm", "gru")}}  # fmt: skip
    print(write("cortex_m_quick" if args.quick else "cortex_m", doc))
    for cell, row in doc["models"].items():
        print(
            f"{cell}: float {row['float_accuracy']:.3f}, Q/DQ {row['qdq_accuracy']:.3f}, "
            f"integer {row['integer_accuracy']:.3f}; C on Cortex-M4 bit-exact "
            f"{row['c_cortex_m4_bit_exact']}"
        )
        for dev, d in row["devices"].items():
            print(
                f"  {dev}: flash {d['flash_bytes']} B, RAM {d['ram_bytes']} B + "
                f"{d.get('stack_bytes', 0)} B stack, {d['instructions_per_step']} "
                f"instructions/step ({d['instructions_per_mac']} per MAC)"
            )


if __name__ == "__main__":
    main()
