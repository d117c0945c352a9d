"""A neural Turing machine learns the copy task (Graves et al., 2014).

Each example is a sequence of 1 to ``--max-len`` random ``--bits``-bit vectors, then a
delimiter (an extra input channel); the net must then write the sequence back, with
no input. The loss is binary cross-entropy on the recall steps only: the gradient of
the logits is formed here and handed to ``rg.vjp`` as the output's cotangent, and
Adam updates the params. Prints (and with ``--plot``, draws) the learning curve in
bit errors per sequence; the trained model is exported to ONNX and checked.

Run: ``python examples/ntm_copy.py [--steps 3000 --max-len 8 --bits 8 --plot ntm.svg]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import rnngraph as rg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bits import bce_update, held_out, save_curve


def copy_batch(rng: np.random.Generator, batch: int, max_len: int, bits: int):
    """Inputs ``(T, B, bits + 1)``, targets ``(T, B, bits)`` and the recall mask ``(T, B, 1)``
    with ``T = 2 max_len + 1``; each row has its own length."""
    T = 2 * max_len + 1
    x = np.zeros((T, batch, bits + 1), np.float32)
    t = np.zeros((T, batch, bits), np.float32)
    mask = np.zeros((T, batch, 1), np.float32)
    for b, n in enumerate(rng.integers(1, max_len + 1, batch)):
        seq = rng.integers(0, 2, (n, bits)).astype(np.float32)
        x[:n, b, :bits] = seq
        x[n, b, bits] = 1.0  # the delimiter
        t[n + 1 : 2 * n + 1, b] = seq
        mask[n + 1 : 2 * n + 1, b] = 1.0
    return x, t, mask


def ntm_graph(bits: int, hidden: int, rows: int, width: int) -> rg.Graph:
    g = rg.Graph("ntm_copy")
    x = g.input("x", bits + 1)
    h, reads = rg.cells.ntm(x, hidden, rows=rows, width=width, name="ntm")
    g.output("logits", rg.linear(rg.concat([h, reads]), bits, name="out"))
    return g


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000, help="parameter updates")
    ap.add_argument("--max-len", type=int, default=8)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--width", type=int, default=12)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--curriculum",
        type=int,
        metavar="LEN",
        help="start with sequences up to LEN long and add 2 whenever the last 50 updates "
        "averaged under 0.2 bit errors per sequence, up to --max-len",
    )
    ap.add_argument("--plot", help="draw the learning curve to this file (.svg/.png)")
    ap.add_argument("--save", help="write the settings and learning curve to this JSON file")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    g = ntm_graph(args.bits, args.hidden, args.rows, args.width)
    params = g.init_params(seed=args.seed)
    opt = rg.optim.Adam(args.lr)
    curve: list[float] = []
    t0 = time.perf_counter()
    level = min(args.curriculum or args.max_len, args.max_len)
    since = 0  # updates at this level
    for step in range(args.steps):
        x, t, mask = copy_batch(rng, args.batch, level, args.bits)
        params, errors = bce_update(g, params, opt, x, t, mask)
        curve.append(errors)
        since += 1
        if level < args.max_len and since >= 50 and np.mean(curve[-50:]) < 0.2:
            level, since = min(level + 2, args.max_len), 0
            print(f"step {step:5d}: sequences up to {level} long now")
        if step % max(1, args.steps // 10) == 0 or step == args.steps - 1:
            recent = np.mean(curve[-50:])
            print(
                f"step {step:5d}: {recent:.3f} bit errors per sequence (up to {level} long; "
                f"{time.perf_counter() - t0:.0f} s)"
            )
    fresh = np.random.default_rng(10_000 + args.seed)
    final = held_out(g, params, *copy_batch(fresh, 64, args.max_len, args.bits))
    print(f"held-out: {final:.3f} bit errors per sequence (ONNX model agrees)")
    if args.plot:
        smooth = np.convolve(curve, np.ones(25) / 25, mode="valid") if len(curve) > 25 else curve
        rg.plot.line_chart(
            {"bit errors per sequence": list(smooth)},
            args.plot,
            title=f"NTM copy task (length 1-{args.max_len}, {args.bits} bits)",
            xlabel="update",
        )
        print(f"wrote {args.plot}")
    result = {"first_errors": float(np.mean(curve[:20])), "final_errors": final, "level": level}
    if args.save:
        save_curve(args.save, args, result, curve, time.perf_counter() - t0)
    return result


if __name__ == "__main__":
    main()
