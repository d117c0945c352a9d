"""A character-level LSTM language model trained on Shakespeare's sonnets, sampled in onnxruntime.

The text (``examples/data/sonnets.txt``, public domain) becomes one-hot
characters; the model is an LSTM and a linear readout to next-character
logits, trained by full BPTT (the adjoint graph) with Adam on random
windows of the text. The loss falls; samples are printed as training goes.
Then the model's *step* graph (one character in, state in and out) is
exported to ONNX and sampled in onnxruntime, checked first against the
reference interpreter on the same characters.

Run: ``python examples/char_lstm.py [--steps 300] [--plot loss.png]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import rnngraph as rg
from rnngraph.tools.demo import sample_text

TEXT = Path(__file__).resolve().parent / "data" / "sonnets.txt"


def build(vocab: int, hidden: int) -> rg.Graph:
    g = rg.Graph("char_lstm")
    x = g.input("x", vocab)
    h = rg.cells.lstm(x, hidden, name="lstm")
    g.output("logits", rg.linear(h, vocab, name="head"))
    return g


def batches(ids: np.ndarray, vocab: int, T: int, B: int, rng: np.random.Generator):
    """Random windows: inputs are characters t, targets characters t + 1 (one-hot, time-major)."""
    eye = np.eye(vocab, dtype=np.float32)
    while True:
        starts = rng.integers(0, len(ids) - T - 1, B)
        win = np.stack([ids[s : s + T + 1] for s in starts], axis=1)  # (T + 1, B)
        yield {"x": eye[win[:-1]], "t": eye[win[1:]]}


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps (batches)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seq", type=int, default=32, help="characters per window")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--plot", help="draw the loss history to this .png or .svg")
    ap.add_argument("--onnx", default="char_lstm_step.onnx", help="where to write the step model")
    args = ap.parse_args(argv)

    text = TEXT.read_text()
    chars = "".join(sorted(set(text)))
    ids = np.array([chars.index(c) for c in text])
    V = len(chars)
    rng = np.random.default_rng(0)
    g = build(V, args.hidden)
    params = g.init_params(seed=0)
    data = batches(ids, V, args.seq, args.batch, rng)
    per_epoch = 50
    epochs = max(1, args.steps // per_epoch)
    print(f"{len(text)} characters, vocabulary {V}; LSTM {args.hidden}; {epochs * per_epoch} steps")
    result = rg.train(
        g,
        params,
        lambda epoch: (next(data) for _ in range(per_epoch)),
        loss=rg.losses.softmax_cross_entropy("t"),
        optimizer=rg.optim.Adam(0.01),
        epochs=epochs,
        clip_norm=5.0,
    )
    params = result.params
    h = result.history
    print(f"loss {h.losses[0]:.3f} -> {h.epoch_losses[-1]:.3f} (uniform: {np.log(V):.3f})")
    if args.plot:
        print(f"wrote {h.plot(args.plot)}")

    # The same model as a streaming step, in ONNX, checked against the reference.
    step = rg.compile(g, target="onnx", params=params, mode="step")
    step.save(args.onnx)
    probe = {"x": np.eye(V, dtype=np.float32)[ids[:20]][:, None]}
    ref = rg.run(g, probe, params)["logits"][:, 0]
    ours = step.stream(probe)["logits"][:, 0]
    err = float(np.max(np.abs(ours - ref)))
    print(f"onnxruntime step model vs reference: max |err| {err:.2e}")
    text_out = sample_text(step, chars, "Shall I ", 160, rng, temperature=0.7)
    print("sample:\n" + "Shall I " + text_out)
    return {
        "first_loss": h.losses[0],
        "last_loss": h.epoch_losses[-1],
        "uniform_loss": float(np.log(V)),
        "onnx_err": err,
        "sample": text_out,
    }


if __name__ == "__main__":
    main()
