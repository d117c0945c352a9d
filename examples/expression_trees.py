"""A tree-LSTM that learns to evaluate arithmetic expressions, exported to ONNX.

Data (made here): random expression trees over the digits 0-9 with ``+``
and ``-`` (binary, so child order matters), up to ``--depth`` operators
deep; a node's features are a one-hot of its token. The model is
``rg.recursive`` with a binary N-ary tree-LSTM and a linear readout of the
root state; the target is the expression's value / 10. Training: MSE on
the root, gradients from the adjoint graph (levels in reverse), Adam.
Then one ONNX file (any tree shape, any batch) is saved and evaluated with
onnxruntime on held-out expressions, checked against the reference
interpreter.

Run: ``python examples/expression_trees.py [--steps 400] [--plot loss.svg]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

import rnngraph as rg

TOKENS = [str(d) for d in range(10)] + ["+", "-"]


def random_expression(rng: np.random.Generator, depth: int) -> tuple[Any, float, str]:
    """A nested tree ``(one-hot, [left, right])``, its value and its text."""
    if depth == 0 or rng.random() < 0.25:
        d = int(rng.integers(0, 10))
        return np.eye(len(TOKENS))[d], float(d), str(d)
    op = "+" if rng.random() < 0.5 else "-"
    (lt, lv, ls), (rt, rv, rs) = (random_expression(rng, depth - 1) for _ in range(2))
    value = lv + rv if op == "+" else lv - rv
    return (np.eye(len(TOKENS))[TOKENS.index(op)], [lt, rt]), value, f"({ls} {op} {rs})"


def dataset(
    n: int, depth: int, rng: np.random.Generator
) -> tuple[list[Any], np.ndarray, list[str]]:
    trees, values, texts = zip(*(random_expression(rng, depth) for _ in range(n)), strict=True)
    return list(trees), np.array(values)[:, None] / 10.0, list(texts)


def build(hidden: int) -> rg.Graph:
    g = rg.Graph("expression_tree_lstm")
    tree = rg.recursive(
        g, cell=rg.cells.nary_tree_lstm(hidden, arity=2), inputs=g.input("token", len(TOKENS))
    )
    g.output("value", rg.linear(tree.root, 1, name="readout"))
    return g


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--onnx", default="expression_tree_lstm.onnx", help="where to save the model")
    ap.add_argument("--plot", help="draw the training loss to this .svg/.png")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    g = build(args.hidden)
    params = g.init_params(seed=0)
    opt = rg.optim.Adam(0.01)
    history = rg.History()
    t0 = time.perf_counter()
    for step in range(args.steps):
        trees, target, _ = dataset(args.batch, args.depth, rng)
        batch = rg.trees.batch(trees)
        pred = rg.run(g, batch, params)["value"]
        loss = float(np.mean((pred - target) ** 2))
        _, grads = rg.vjp(g, batch, params, cotangents={"value": 2 * (pred - target) / len(pred)})
        grads = {k: grads[k] for k in params}
        history.losses.append(loss)
        history.grad_norms.append(rg.optim.global_norm(grads))
        params = opt.step(params, rg.optim.clip_by_norm(grads, 5.0))
        if step % max(1, args.steps // 8) == 0 or step == args.steps - 1:
            print(f"step {step:4d}  mse {loss:.4f}", flush=True)
    history.seconds = time.perf_counter() - t0

    # Held-out expressions, through one ONNX file for every tree shape and batch.
    trees, target, texts = dataset(500, args.depth, np.random.default_rng(1))
    batch = rg.trees.batch(trees)
    model = rg.compile(g, target="onnx", params=params)
    Path(args.onnx).parent.mkdir(parents=True, exist_ok=True)
    model.save(args.onnx)
    got = model.run(batch)["value"]
    want = rg.run(g, batch, params)["value"]
    onnx_err = float(np.max(np.abs(got - want)))
    mse = float(np.mean((got - target) ** 2))
    baseline = float(np.var(target))  # predicting the mean value
    exact = float(np.mean(np.round(10 * got) == np.round(10 * target)))
    for text, v, p in list(zip(texts, target[:, 0], got[:, 0], strict=True))[:5]:
        print(f"  {text:<40} = {10 * v:6.1f}   model {10 * p:6.1f}")
    print(
        f"held-out mse {mse:.4f} (predicting the mean: {baseline:.4f}); "
        f"rounded value right for {exact:.0%}; onnxruntime vs reference {onnx_err:.1e}; "
        f"saved {args.onnx}; trained in {history.seconds:.1f} s"
    )
    if args.plot:
        history.plot(args.plot, title="expression tree-LSTM: training MSE")
    return {
        "mse": mse,
        "baseline_mse": baseline,
        "exact": exact,
        "onnx_err": onnx_err,
        "first_loss": history.losses[0],
        "last_loss": history.losses[-1],
    }


if __name__ == "__main__":
    main()
