"""A bidirectional LSTM learns to transcribe synthetic "spoken digits" with CTC.

Each digit 0-9 has a template: a short sequence of 8 smooth "spectral" features, made
once from a seed. An utterance says 1-4 digits: each digit's template is stretched in
time by a random factor (0.7-1.4), the digits are joined with short silences, and noise
is added; no frame is labelled, only the utterance's digit string is known. That is
what connectionist temporal classification (``rg.losses.ctc_loss``) trains from: the
net (``rg.cells.lstm(..., direction="bidirectional")`` then a linear layer to 11
classes, blank first) is trained with ``rg.train`` on batches of utterances of
different lengths (``sequence_lens``), then decoded greedily (best class per frame,
repeats merged, blanks dropped). Reports the label error rate (edit distance per
reference digit) on utterances it never saw, decoded from the trained model exported
to ONNX (checked against the reference run first).

Run: ``python examples/ctc_spoken_digits.py [--steps 400] [--plot loss.svg]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

import rnngraph as rg

FEATURES, CLASSES = 8, 11  # 10 digits + the blank (class 0)


def templates(seed: int) -> list[np.ndarray]:
    """Each digit's template: 6-10 frames of smooth random features."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(10):
        n = int(rng.integers(6, 11))
        knots = rng.normal(size=(4, FEATURES))
        grid = np.linspace(0, 3, n)
        out.append(np.stack([np.interp(grid, range(4), knots[:, f]) for f in range(FEATURES)], 1))
    return out


def utterances(
    tpl: list[np.ndarray], n: int, rng: np.random.Generator, noise: float = 0.5
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """``n`` utterances padded to the longest: (T, n, F) features, lengths, digit strings."""
    feats, digits = [], []
    for _ in range(n):
        say = list(rng.integers(0, 10, rng.integers(1, 5)))
        parts = [np.zeros((int(rng.integers(1, 4)), FEATURES))]
        for d in say:
            t = tpl[d]
            frames = max(3, int(len(t) * rng.uniform(0.7, 1.4) + 0.5))
            at = np.linspace(0, len(t) - 1, frames)
            parts.append(
                np.stack([np.interp(at, range(len(t)), t[:, f]) for f in range(FEATURES)], 1)
            )
            parts.append(np.zeros((int(rng.integers(1, 4)), FEATURES)))
        u = np.concatenate(parts)
        feats.append(u + noise * rng.normal(size=u.shape))
        digits.append([int(d) + 1 for d in say])  # class ids 1..10; 0 is the blank
    lens = np.array([len(f) for f in feats])
    x = np.zeros((lens.max(), n, FEATURES), np.float32)
    for b, f in enumerate(feats):
        x[: len(f), b] = f
    return x, lens, digits


def model(hidden: int) -> rg.Graph:
    g = rg.Graph("digits_ctc")
    h = rg.cells.lstm(g.input("x", FEATURES), hidden, name="bilstm", direction="bidirectional")
    g.output("logits", rg.linear(h, CLASSES, name="out"))
    return g


def greedy(logits: np.ndarray, lens: np.ndarray) -> list[list[int]]:
    """Best class per frame, repeats merged, blanks dropped: one string per row."""
    best = logits.argmax(-1)  # (T, B)
    out = []
    for b, n in enumerate(lens):
        seq, prev = [], -1
        for c in best[:n, b]:
            if c != prev and c != 0:
                seq.append(int(c))
            prev = c
        out.append(seq)
    return out


def edits(a: list[int], b: list[int]) -> int:
    """Levenshtein distance."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400, help="training updates")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=24, help="units per direction")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--noise", type=float, default=0.5, help="noise's standard deviation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None, help="draw the loss curve to this .svg/.png")
    args = ap.parse_args(argv)

    tpl = templates(args.seed)
    rng = np.random.default_rng(args.seed + 1)
    g = model(args.hidden)
    batches = []
    for _ in range(args.steps):
        x, lens, digits = utterances(tpl, args.batch, rng, args.noise)
        batches.append({"x": x, "labels": digits, "sequence_lens": lens})
    t0 = time.perf_counter()
    result = rg.train(
        g, g.init_params(seed=args.seed), batches, loss=rg.losses.ctc_loss("labels", blank=0),
        optimizer=rg.optim.Adam(args.lr), epochs=1, clip_norm=5.0, progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    losses = result.history.losses
    if args.plot:
        result.history.plot(args.plot)

    # held-out utterances, decoded from the ONNX export
    x, lens, digits = utterances(tpl, 200, np.random.default_rng(args.seed + 99), args.noise)
    onnx_model = rg.compile(g, target="onnx", params=result.params)
    logits = onnx_model.run({"x": x}, sequence_lens=lens)["logits"]
    ref = rg.run(g, {"x": x}, result.params, sequence_lens=lens)["logits"]
    onnx_err = float(np.abs(logits - ref).max())
    decoded = greedy(logits, lens)
    errors = sum(edits(d, t) for d, t in zip(decoded, digits, strict=True))
    ler = errors / sum(len(t) for t in digits)
    exact = float(np.mean([d == t for d, t in zip(decoded, digits, strict=True)]))
    first, last = float(np.mean(losses[:20])), float(np.mean(losses[-20:]))
    print(
        f"CTC loss {first:.2f} -> {last:.2f} in {len(losses)} updates ({seconds:.0f} s); "
        f"held out: label error rate {ler:.1%}, whole strings right {exact:.0%} "
        f"(ONNX vs reference {onnx_err:.1e})"
    )
    for d, t in list(zip(decoded, digits, strict=True))[:3]:
        print(f"  said {[c - 1 for c in t]}, heard {[c - 1 for c in d]}")
    return {
        "first_loss": first, "last_loss": last, "label_error_rate": ler, "exact": exact,
        "onnx_err": onnx_err, "seconds": seconds,
    }  # fmt: skip


if __name__ == "__main__":
    main()
