"""Image captioning: a small CNN reads a synthetic picture, an LSTM decoder writes its caption.

Each 16x16 RGB image holds one shape (square, disc, cross or bar) of one colour
(red, green, blue, yellow), small or large, on the left or the right; its caption
is "<size> <colour> <shape> <side> <eos>". The image is a per-sequence input
(``axis=None``): the CNN (``rg.conv2d``, ``rg.max_pool``) runs once per caption and
its feature feeds every step of an LSTM decoder, trained with teacher forcing
(``rg.train``, softmax cross-entropy). The trained decoder is exported to ONNX as
a step model and captions held-out images greedily in onnxruntime, each chosen
word fed back; the caption accuracy (every word right) is printed.

Run: ``python examples/captioning.py [--steps 600] [--plot losses.svg]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import rnngraph as rg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bits import save_curve

SIZES, COLOURS = ("small", "large"), ("red", "green", "blue", "yellow")
SHAPES, SIDES = ("square", "disc", "cross", "bar"), ("left", "right")
VOCAB = ("<bos>", "<eos>", *SIZES, *COLOURS, *SHAPES, *SIDES)
RGB = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0)}
SIDE = 16
T = 5  # four words and <eos>


def draw(size: str, colour: str, shape: str, side: str, rng: np.random.Generator) -> np.ndarray:
    """One image ``(3, 16, 16)``: the shape on a dim noisy background."""
    r = 2 if size == "small" else 4
    cx = int(rng.integers(r, SIDE // 2 - r + 1)) + (SIDE // 2 if side == "right" else 0)
    cy = int(rng.integers(r, SIDE - r))
    yy, xx = np.mgrid[:SIDE, :SIDE]
    dy, dx = yy - cy, xx - cx
    mask = {
        "square": (np.abs(dx) <= r) & (np.abs(dy) <= r),
        "disc": dx**2 + dy**2 <= r * r,
        "cross": ((np.abs(dx) <= r) & (np.abs(dy) <= 0)) | ((np.abs(dy) <= r) & (np.abs(dx) <= 0)),
        "bar": (np.abs(dx) <= r) & (np.abs(dy) <= max(r // 2 - 1, 0)),
    }[shape]
    img = rng.uniform(0, 0.2, (3, SIDE, SIDE))
    img[:, mask] = np.asarray(RGB[colour], float)[:, None] * 0.8 + 0.2
    return img.astype(np.float32)


def dataset(n: int, rng: np.random.Generator):
    """Images ``(n, 3, 16, 16)``, decoder inputs and targets ``(T, n, V)`` (one-hot)."""
    eye = np.eye(len(VOCAB), dtype=np.float32)
    images, words = [], []
    for _ in range(n):
        cap = (
            SIZES[rng.integers(2)],
            COLOURS[rng.integers(4)],
            SHAPES[rng.integers(4)],
            SIDES[rng.integers(2)],
        )
        images.append(draw(*cap, rng))
        words.append([VOCAB.index(w) for w in (*cap, "<eos>")])
    ids = np.array(words).T  # (T, n)
    prev = np.concatenate([np.zeros((1, n), int), ids[:-1]])  # <bos>, then the words
    return np.stack(images), eye[prev], eye[ids], ids


def captioner(hidden: int) -> rg.Graph:
    g = rg.Graph("captioner")
    image = g.input("image", (3, SIDE, SIDE), axis=None)  # once per caption
    prev = g.input("prev", len(VOCAB))  # the word before, one-hot
    f = rg.relu(rg.conv2d(image, 8, 3, padding=1, name="conv1"))
    f = rg.max_pool(f, 2)  # (8, 8, 8)
    f = rg.relu(rg.conv2d(f, 16, 3, padding=1, name="conv2"))
    f = rg.max_pool(f, 2)  # (16, 4, 4)
    feature = rg.relu(rg.linear(rg.reshape(f, [16 * 4 * 4]), hidden, name="feature"))
    h = rg.cells.lstm(rg.concat([prev, feature]), hidden, name="decoder")
    g.output("logits", rg.linear(h, len(VOCAB), name="words"))
    return g


def greedy(step, images: np.ndarray) -> np.ndarray:
    """Captions word by word in the step model, each chosen word fed back: ``(T, n)``."""
    n = len(images)
    eye = np.eye(len(VOCAB), dtype=np.float32)
    carried = step.initial_states(n)
    word = np.zeros(n, int)  # <bos>
    out = []
    for _ in range(T):
        o, carried = step.advance({"image": images, "prev": eye[word]}, carried)
        word = o["logits"].argmax(-1)
        out.append(word)
    return np.array(out)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training batches")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", help="draw the training loss to this file")
    ap.add_argument("--onnx", help="also save the ONNX step model here")
    ap.add_argument("--save", help="write the settings, results and loss curve to this JSON file")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    g = captioner(args.hidden)
    params = g.init_params(seed=args.seed)
    images, prev, target, _ = dataset(args.steps * args.batch, rng)
    batches = [
        {
            "image": images[i : i + args.batch],
            "prev": prev[:, i : i + args.batch],
            "t": target[:, i : i + args.batch],
        }
        for i in range(0, len(images), args.batch)
    ]
    t0 = time.perf_counter()
    result = rg.train(
        g,
        params,
        batches,
        loss=rg.losses.softmax_cross_entropy("t"),
        optimizer=rg.optim.Adam(args.lr),
        clip_norm=5.0,
    )
    losses = result.history.losses
    print(f"{len(batches)} batches in {time.perf_counter() - t0:.0f} s; loss {losses[0]:.3f} -> "
          f"{np.mean(losses[-20:]):.3f}")  # fmt: skip

    test_images, _, _, test_ids = dataset(200, np.random.default_rng(10_000 + args.seed))
    step = rg.compile(g, target="onnx", params=result.params, mode="step")
    if args.onnx:
        step.save(args.onnx)
    words = greedy(step, test_images)
    exact = float((words == test_ids).all(axis=0).mean())
    per_word = float((words == test_ids).mean())
    for i in range(3):
        said = " ".join(VOCAB[w] for w in words[:-1, i])
        truth = " ".join(VOCAB[w] for w in test_ids[:-1, i])
        print(f"  image {i}: {said!r} (truth {truth!r})")
    print(
        f"held-out captions in onnxruntime: {100 * exact:.1f}% exact, "
        f"{100 * per_word:.1f}% of words"
    )
    if args.plot:
        rg.plot.line_chart({"training loss": losses}, args.plot, title="captioning", xlabel="batch")
        print(f"wrote {args.plot}")
    result = {"first_loss": float(losses[0]), "last_loss": float(np.mean(losses[-20:])),
              "exact": exact, "word_accuracy": per_word}  # fmt: skip
    if args.save:
        save_curve(args.save, args, result, list(losses), time.perf_counter() - t0)
    return result


if __name__ == "__main__":
    main()
