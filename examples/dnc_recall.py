"""A differentiable neural computer learns associative recall (Graves et al., 2016).

Each example shows 2 to ``--items`` random ``--bits``-bit items, one per step (an
item flag on), then one of them again as a query (a query flag on); on the next
step the net must give the item that followed the query in the list. Trained as
``examples/ntm_copy.py`` is (binary cross-entropy on the answer step, Adam); prints
the learning curve in bit errors per answer and checks the trained model's ONNX
export against the reference.

Run: ``python examples/dnc_recall.py [--steps 2000 --items 4 --bits 6]``
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


def recall_batch(rng: np.random.Generator, batch: int, items: int, bits: int):
    """Inputs ``(T, B, bits + 2)``, targets ``(T, B, bits)``, the answer mask ``(T, B, 1)``;
    ``T = items + 2``, shorter lists padded at the start."""
    T = items + 2
    x = np.zeros((T, batch, bits + 2), np.float32)
    t = np.zeros((T, batch, bits), np.float32)
    mask = np.zeros((T, batch, 1), np.float32)
    for b in range(batch):
        n = int(rng.integers(2, items + 1))
        seq = rng.integers(0, 2, (n, bits)).astype(np.float32)
        start = items - n
        x[start : start + n, b, :bits] = seq
        x[start : start + n, b, bits] = 1.0  # item flag
        q = int(rng.integers(0, n - 1))  # a query with a successor
        x[items, b, :bits] = seq[q]
        x[items, b, bits + 1] = 1.0  # query flag
        t[items + 1, b] = seq[q + 1]
        mask[items + 1, b] = 1.0
    return x, t, mask


def dnc_graph(bits: int, hidden: int, rows: int, width: int) -> rg.Graph:
    g = rg.Graph("dnc_recall")
    h, reads = rg.cells.dnc(g.input("x", bits + 2), hidden, rows=rows, width=width, name="dnc")
    g.output("logits", rg.linear(rg.concat([h, reads]), bits, name="out"))
    return g


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--items", type=int, default=4)
    ap.add_argument("--bits", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--width", type=int, default=12)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", help="write the settings and learning curve to this JSON file")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    g = dnc_graph(args.bits, args.hidden, args.rows, args.width)
    params = g.init_params(seed=args.seed)
    opt = rg.optim.Adam(args.lr)
    curve: list[float] = []
    t0 = time.perf_counter()
    for step in range(args.steps):
        x, t, mask = recall_batch(rng, args.batch, args.items, args.bits)
        params, errors = bce_update(g, params, opt, x, t, mask)
        curve.append(errors)
        if step % max(1, args.steps // 10) == 0 or step == args.steps - 1:
            print(
                f"step {step:5d}: {np.mean(curve[-50:]):.3f} bit errors per answer "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    fresh = np.random.default_rng(10_000 + args.seed)
    final = held_out(g, params, *recall_batch(fresh, 256, args.items, args.bits))
    chance = args.bits / 2
    print(f"held-out: {final:.3f} bit errors per answer (chance {chance}); ONNX model agrees")
    result = {"first_errors": float(np.mean(curve[:20])), "final_errors": final, "chance": chance}
    if args.save:
        save_curve(args.save, args, result, curve, time.perf_counter() - t0)
    return result


if __name__ == "__main__":
    main()
