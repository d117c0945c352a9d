"""A keyword spotter from training to a microcontroller: float, int8, integer-only C.

A GRU (10 "MFCC" features, 32 units, 6 keywords) learns synthetic utterances: each
keyword a smooth template of the features, stretched in time and noised. Then:

1. ``rg.quantize`` calibrates it on training batches (int8 weights and activations,
   int16 state);
2. the ``micro`` backend writes its kernels as integer arithmetic only
   (``rg.quant.to_integer``: multiply-and-shift requantisation, tables for the sigmoid
   and tanh; the model keeps that graph as ``integer_graph``);
3. compiles that to C with no float and no malloc, and runs it on
   a Cortex-M4 board model under ``qemu-system-arm`` (Debian's ``gcc-arm-none-eabi``
   and ``qemu-system-arm``; without them, natively on this machine), streaming the
   held-out utterances frame by frame.

Prints the accuracy of each form on the held-out utterances (the C's equals the
integer graph's bit for bit), the firmware's flash, RAM and instructions per frame,
writes the C to ``--out``, and draws one utterance's keyword probabilities over time,
float against the microcontroller's (``--plot``).

Run: ``python examples/keyword_spotting_mcu.py [--steps 200] [--out firmware] [--plot kws.svg]``
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from rnngraph_micro import missing_board_tools

import rnngraph as rg

F, H, C, FRAMES = 10, 32, 6, 30


def utterances(n: int, rng: np.random.Generator, templates: list[np.ndarray]) -> Any:
    """``n`` utterances (FRAMES, n, F), their keywords, and their lengths (12..FRAMES)."""
    x = np.zeros((FRAMES, n, F), np.float32)
    labels = rng.integers(0, len(templates), n)
    lens = rng.integers(12, FRAMES + 1, n)
    for b, (c, frames) in enumerate(zip(labels, lens, strict=True)):
        at = np.linspace(0, 3, frames)
        curve = np.stack([np.interp(at, range(4), templates[c][:, f]) for f in range(F)], 1)
        x[:frames, b] = curve + 2.0 * rng.normal(size=curve.shape)
    return x, labels, lens


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="training batches of 32")
    ap.add_argument("--out", default="firmware", help="folder for the C")
    ap.add_argument("--plot", help="draw one utterance's keyword probabilities (.svg/.png)")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    templates = [rng.normal(size=(4, F)) for _ in range(C)]
    g = rg.Graph("kws")
    g.output("logits", rg.linear(rg.cells.gru(g.input("x", F), H, name="gru"), C, name="out"))
    eye = np.eye(C, dtype=np.float32)
    data = []
    for _ in range(args.steps):
        x, labels, lens = utterances(32, rng, templates)
        data.append({"x": x, "t": np.broadcast_to(eye[labels], (FRAMES, 32, C)).copy(),
                     "sequence_lens": lens})  # fmt: skip
    trained = rg.train(
        g, g.init_params(seed=0), data, loss=rg.losses.softmax_cross_entropy("t"),
        optimizer=rg.optim.Adam(1e-2), clip_norm=5.0,
    ).params  # fmt: skip

    qg, qp = rg.quantize(g, trained, calibration=[{"x": d["x"]} for d in data[:4]])
    device = "cortex-m4" if missing_board_tools() is None else "host"
    x, labels, lens = utterances(64, np.random.default_rng(1), templates)
    mcu = rg.compile(qg, target="micro", params=qp, device=device, batch=64)
    on_device = mcu.run({"x": x})["logits"]  # every frame streamed through the C step

    def accuracy(logits: np.ndarray) -> float:
        return float(np.mean(logits[lens - 1, np.arange(len(lens))].argmax(-1) == labels))

    float_out = rg.run(g, {"x": x}, trained)["logits"]
    integer_out = rg.run(mcu.integer_graph, {"x": x}, mcu.integer_params)["logits"]
    one = rg.compile(qg, target="micro", params=qp, device=device)  # the firmware: 1 row
    one.run({"x": x[:, :1]})
    result = {
        "device": device,
        "float_accuracy": accuracy(float_out),
        "int8_accuracy": accuracy(rg.run(qg, {"x": x}, qp)["logits"]),
        "integer_accuracy": accuracy(integer_out),
        "c_accuracy": accuracy(on_device),
        "c_bit_exact": bool(np.array_equal(on_device, integer_out)),
        "memory": one.memory(),
        "instructions_per_frame": one.stats.get("instructions_per_step"),
        "firmware": str(one.save(args.out)),
    }
    print(
        f"accuracy on 64 held-out utterances: float {result['float_accuracy']:.3f}, int8 "
        f"{result['int8_accuracy']:.3f}, integer {result['integer_accuracy']:.3f}, C on "
        f"{device} {result['c_accuracy']:.3f} (bit-exact: {result['c_bit_exact']})"
    )
    mem = result["memory"]
    per_frame = result["instructions_per_frame"]
    print(
        f"firmware: flash {mem['flash_bytes']} B, RAM {mem['ram_bytes']} B"
        + (f", {per_frame:.0f} instructions a frame" if per_frame else "")
        + f" -> {result['firmware']}"
    )
    if args.plot:
        from rnngraph.plot import line_chart

        def probs(z: np.ndarray) -> np.ndarray:
            e = np.exp(z[:, 0] - z[:, 0].max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)

        k = int(labels[0])
        series = {"float": probs(float_out)[:, k], f"C on {device}": probs(on_device)[:, k]}
        line_chart(series, args.plot, title=f"keyword {k}: probability frame by frame",
                   xlabel="frame", ylabel="p(keyword)", log_y=False,
                   vline=(float(lens[0] - 1), "the word ends"))  # fmt: skip
    return result


if __name__ == "__main__":
    main()
