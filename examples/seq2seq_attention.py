"""An encoder–decoder with additive attention that learns to reverse digit strings.

The graph has two sequence axes: the source digits on ``"src"`` (a GRU encoder)
and the output on ``"tgt"`` (a GRU decoder that starts from the encoder's final
state, ``rg.final``, and attends over its whole output, ``rg.whole``, with
Bahdanau's additive score). It is trained with ``rg.train`` by teacher forcing,
with each row's own length on both axes (``sequence_lens={"src": ..., "tgt":
...}``). Then it is deployed as a pair: the encoder's ONNX model once per input,
and the decoder's ONNX *step model*, which greedy decoding calls one step at a
time straight from ``onnxruntime.InferenceSession`` (its per-sequence inputs are
the encoder's memory, its mask and the start state). Exact match on held-out
strings is measured both with the reference interpreter and in onnxruntime, and
one example's attention weights are drawn (the anti-diagonal of a reversal).

Run: ``python examples/seq2seq_attention.py [--steps 1500] [--plot attention.png]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

import rnngraph as rg
from rnngraph.plot import heatmap

DIGITS = 10
BOS = DIGITS  # the decoder's first previous token
PREV = DIGITS + 1  # previous-token vocabulary: the digits and BOS


def build(hidden: int) -> rg.Graph:
    g = rg.Graph("reverse")
    src = g.input("src", DIGITS, axis="src")  # one-hot source digits
    prev = g.input("prev", PREV, axis="tgt")  # one-hot previous output token (BOS first)
    enc = rg.cells.gru(src, hidden, name="enc", linear_before_reset=True)
    memory = rg.whole(enc, name="memory")
    h = g.state("dec.h", hidden, init=rg.final(enc, name="h0"))
    W = g.param("dec.W", (3 * hidden, PREV))
    R = g.param("dec.R", (3 * hidden, hidden))
    B = g.param("dec.B", 6 * hidden, "zeros")
    new = rg.cells.gru_step(prev, h, W, R, B, linear_before_reset=True)
    g.assign(h, new)
    # Luong's order with Bahdanau's score: the new state asks where to look
    ctx, weights = rg.cells.attention(new, memory, kind="additive", name="att")
    g.output(
        "logits",
        rg.linear(
            rg.tanh(rg.linear(rg.concat([new, ctx]), hidden, name="mix")), DIGITS, name="out"
        ),
    )
    g.output("weights", weights)
    return g


def strings(n: int, lo: int, hi: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.integers(0, DIGITS, rng.integers(lo, hi + 1)) for _ in range(n)]


def batch(rows: list[np.ndarray]) -> dict[str, Any]:
    """Time-major one-hot arrays, padded, with each row's length on both axes."""
    S, B = max(len(r) for r in rows), len(rows)
    lens = np.array([len(r) for r in rows])
    src = np.zeros((S, B, DIGITS), np.float32)
    prev = np.zeros((S, B, PREV), np.float32)
    t = np.zeros((S, B, DIGITS), np.float32)
    for b, r in enumerate(rows):
        rev = r[::-1]
        src[np.arange(len(r)), b, r] = 1
        t[np.arange(len(r)), b, rev] = 1
        prev[np.arange(len(r)), b, np.concatenate([[BOS], rev[:-1]])] = 1
    return {"src": src, "prev": prev, "t": t, "sequence_lens": {"src": lens, "tgt": lens}}


def greedy_reference(g: rg.Graph, params: dict[str, np.ndarray], rows: list[np.ndarray]):
    """Greedy decoding with the reference interpreter: the encoder stage once, then the
    decoder stage one step at a time from its own previous output."""
    stages = rg.split_axes(g)
    enc, dec = stages.stages
    data = batch(rows)
    lens = data["sequence_lens"]["src"]
    out = rg.run(enc.graph, {"src": data["src"]}, _sub(params, enc.graph), sequence_lens=lens)
    memory = np.moveaxis(out["memory"], 0, 1)
    S = memory.shape[1]
    given = {
        "h0": out["enc.h_final"],
        "memory": memory,
        "memory.mask": (np.arange(S)[None, :] < lens[:, None]).astype(np.float32),
    }
    h = given["h0"]
    token = np.full(len(rows), BOS)
    decoded = []
    for _ in range(S):
        step = {"prev": np.eye(PREV, dtype=np.float32)[token][None], **given}
        o = rg.run(dec.graph, step, _sub(params, dec.graph), initial_states={"dec.h": h})
        h, token = o["dec.h_final"], o["logits"][0].argmax(-1)
        decoded.append(token)
    return np.stack(decoded, 1)


def greedy_onnxruntime(pair: Any, path: str, rows: list[np.ndarray]):
    """Greedy decoding from the decoder's ONNX step model in a plain onnxruntime session."""
    import onnxruntime as ort

    data = batch(rows)
    given = pair.encode({"src": data["src"]}, sequence_lens={"src": data["sequence_lens"]["src"]})
    pair.models["tgt"].save(path)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    h = given["h0"]
    token = np.full(len(rows), BOS)
    decoded = []
    for _ in range(given["memory"].shape[1]):
        feeds = {
            "prev": np.eye(PREV, dtype=np.float32)[token],
            "memory": given["memory"],
            "memory.mask": given["memory.mask"],
            "h0": given["h0"],
            "dec.h": h,
        }
        logits, h = session.run(["logits", "dec.h_final"], feeds)
        token = logits.argmax(-1)
        decoded.append(token)
    return np.stack(decoded, 1)


def exact_match(decoded: np.ndarray, rows: list[np.ndarray]) -> float:
    hits = [np.array_equal(d[: len(r)], r[::-1]) for d, r in zip(decoded, rows, strict=True)]
    return float(np.mean(hits))


def _sub(params: dict[str, np.ndarray], graph: rg.Graph) -> dict[str, np.ndarray]:
    return {k: v for k, v in params.items() if k in graph.params}


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1500, help="training steps (batches)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--min-len", type=int, default=5)
    ap.add_argument("--max-len", type=int, default=15)
    ap.add_argument("--test", type=int, default=200, help="held-out strings")
    ap.add_argument("--plot", default="attention.png", help="the attention map (.png/.svg)")
    ap.add_argument("--onnx", default="reverse_decoder_step.onnx", help="the decoder step model")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    g = build(args.hidden)
    params = g.init_params(seed=0)
    per_epoch = 50
    epochs = max(1, args.steps // per_epoch)

    def epoch(_: int):
        for _ in range(per_epoch):
            yield batch(strings(args.batch, args.min_len, args.max_len, rng))

    print(
        f"reversing digit strings of {args.min_len}-{args.max_len}: GRU {args.hidden} encoder "
        f"and decoder, additive attention; {epochs * per_epoch} steps of {args.batch}"
    )
    start = time.perf_counter()
    result = rg.train(
        g,
        params,
        epoch,
        loss=rg.losses.softmax_cross_entropy("t", output="logits"),
        optimizer=rg.optim.Adam(0.005),
        epochs=epochs,
        clip_norm=5.0,
    )
    params = result.params
    seconds = time.perf_counter() - start
    h = result.history
    print(f"loss {h.losses[0]:.3f} -> {h.epoch_losses[-1]:.3f} in {seconds:.0f} s")

    held_out = strings(args.test, args.min_len, args.max_len, np.random.default_rng(1))
    ref = exact_match(greedy_reference(g, params, held_out), held_out)
    pair = rg.compile(g, target="onnx", params=params, mode="step")
    ort_acc = exact_match(greedy_onnxruntime(pair, args.onnx, held_out), held_out)
    print(f"held-out exact match: reference {ref:.1%}, onnxruntime step model {ort_acc:.1%}")

    example = held_out[0]
    one = batch([example])
    weights = rg.run(g, {"src": one["src"], "prev": one["prev"]}, params)["weights"][:, 0]
    labels = [str(d) for d in example]
    out_labels = [str(d) for d in example[::-1]]
    if args.plot:
        heatmap(
            weights,
            args.plot,
            title="attention while reversing " + "".join(labels),
            xlabel="source position",
            ylabel="output step",
            xticks=labels,
            yticks=out_labels,
        )
        print(f"wrote {Path(args.plot)}")
    return {
        "first_loss": h.losses[0],
        "last_loss": h.epoch_losses[-1],
        "exact_match": ref,
        "onnx_exact_match": ort_acc,
        "seconds": seconds,
        "anti_diagonal": float(
            np.mean(weights[np.arange(len(example)), np.arange(len(example))[::-1]])
        ),
    }


if __name__ == "__main__":
    main()
