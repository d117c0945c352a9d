"""An encoder–decoder with additive attention, forward pass: two axes vs one axis vs PyTorch.

S = T = 50 steps, hidden 256, inputs 64, 256 output classes, fp32, batches of 1
and 32. Contenders, in turns (:func:`rnngraph.tools.bench.timed_together`):

* ``ours_onnx`` / ``ours_tvm``: the graph written with two sequence axes
  (``rg.final``, ``rg.whole``; the attention's key projection of the memory is
  per-sequence, computed once), compiled as a ``StagedModel`` — the encoder as
  onnxruntime's native GRU or one TVM kernel, the decoder as one ``Scan`` or
  one kernel;
* ``phase_onnx`` / ``phase_tvm``: the same network on one axis of S + T steps,
  the way it had to be written before axes: phase masks as inputs, the memory a
  state table filled by ``scatter_rows`` during the encoder's steps, the decoder
  held during them (and so its attention, keys included, recomputed every step);
* ``torch_eager``: PyTorch, ``nn.GRU`` encoder and a Python loop of ``nn.GRUCell``
  steps with the additive attention written out (keys computed once), with the
  same weights.

Every contender's logits are checked against the reference interpreter's before
timing. Writes ``benchmarks/results/seq2seq_attention.json``.

Run: ``python benchmarks/seq2seq_attention.py [--quick]``
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Any

import numpy as np
from _common import NO_TORCH, machine, torch_with, write

import rnngraph as rg
from rnngraph.tools.bench import timed_together

S = T = 50
H, E, V = 256, 64, 256


def _decoder_params(g: rg.Graph) -> tuple[rg.Value, rg.Value, rg.Value]:
    return (
        g.param("dec.W", (3 * H, E + H)),
        g.param("dec.R", (3 * H, H)),
        g.param("dec.B", 6 * H),
    )


def two_axes() -> rg.Graph:
    g = rg.Graph("seq2seq")
    src = g.input("src", E, axis="src")
    tgt = g.input("tgt", E, axis="tgt")
    enc = rg.cells.gru(src, H, name="enc", linear_before_reset=True)
    memory = rg.whole(enc, name="memory")
    h = g.state("dec.h", H, init=rg.final(enc, name="h0"))
    ctx, _ = rg.cells.attention(h, memory, kind="additive", name="att")
    W, R, B = _decoder_params(g)
    new = rg.cells.gru_step(rg.concat([tgt, ctx]), h, W, R, B, linear_before_reset=True)
    g.assign(h, new)
    g.output("logits", rg.linear(rg.concat([new, ctx]), V, name="out"))
    return g


def one_axis() -> rg.Graph:
    """The same network on one axis of S + T steps (phase masks, a scattered memory table)."""
    g = rg.Graph("seq2seq_phases")
    x = g.input("x", E)  # the source during the encoder's steps, then zeros
    y = g.input("y", E)  # zeros, then the target during the decoder's steps
    encoding = rg.greater(g.input("encoding", 1), 0.5)  # 1 during the encoder's steps
    first = rg.greater(g.input("first", 1), 0.5)  # 1 at the decoder's first step
    pos = g.input("pos", 1, dtype="int64")  # the memory slot an encoder step writes
    mask = g.input("mask", S)  # the memory's valid positions
    he = g.state("enc.h", H)
    We, Re, Be = (
        g.param("enc.W", (3 * H, E)),
        g.param("enc.R", (3 * H, H)),
        g.param("enc.B", 6 * H),
    )
    he_new = rg.where(encoding, rg.cells.gru_step(x, he, We, Re, Be, linear_before_reset=True), he)
    g.assign(he, he_new)
    table = g.state("memory", (S, H))
    written = rg.scatter_rows(table, pos, rg.unsqueeze(he_new, -2))
    g.assign(table, rg.where(rg.unsqueeze(encoding, -1), written, table))
    hd = g.state("dec.h", H)
    h = rg.where(first, he, hd)  # the decoder starts from the encoder's last state
    ctx, _ = rg.cells.attention(h, table, kind="additive", mask=mask, name="att")
    W, R, B = _decoder_params(g)
    new = rg.cells.gru_step(rg.concat([y, ctx]), h, W, R, B, linear_before_reset=True)
    g.assign(hd, rg.where(encoding, hd, new))
    g.output("logits", rg.linear(rg.concat([new, ctx]), V, name="out"))
    return g


def phase_feeds(src: np.ndarray, tgt: np.ndarray) -> dict[str, np.ndarray]:
    B = src.shape[1]
    steps = S + T
    x = np.zeros((steps, B, E), np.float32)
    y = np.zeros((steps, B, E), np.float32)
    x[:S], y[S:] = src, tgt
    encoding = np.zeros((steps, B, 1), np.float32)
    encoding[:S] = 1
    first = np.zeros((steps, B, 1), np.float32)
    first[S] = 1
    pos = np.zeros((steps, B, 1), np.int64)
    pos[:S, :, 0] = np.arange(S)[:, None]
    mask = np.ones((steps, B, S), np.float32)
    return {"x": x, "y": y, "encoding": encoding, "first": first, "pos": pos, "mask": mask}


def _gates(a: Any, torch: Any) -> Any:
    z, r, h = a.chunk(3, 0)
    return torch.cat([r, z, h], 0)


def torch_eager(params: dict[str, np.ndarray], torch: Any) -> Any:
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in params.items()}
    enc = torch.nn.GRU(E, H)
    dec = torch.nn.GRUCell(E + H, H)
    with torch.no_grad():
        for mod, w, r, b in ((enc, "weight_ih_l0", "weight_hh_l0", "bias_ih_l0"),):
            getattr(mod, w).copy_(_gates(t["enc.W"], torch))
            getattr(mod, r).copy_(_gates(t["enc.R"], torch))
            getattr(mod, b).copy_(_gates(t["enc.B"][: 3 * H], torch))
            mod.bias_hh_l0.copy_(_gates(t["enc.B"][3 * H :], torch))
        dec.weight_ih.copy_(_gates(t["dec.W"], torch))
        dec.weight_hh.copy_(_gates(t["dec.R"], torch))
        dec.bias_ih.copy_(_gates(t["dec.B"][: 3 * H], torch))
        dec.bias_hh.copy_(_gates(t["dec.B"][3 * H :], torch))
    Wk, Wq, bq, v = t["att.Wk"], t["att.q.W"], t["att.q.b"], t["att.v"]
    Wo, bo = t["out.W"], t["out.b"]

    def run(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out, hn = enc(torch.from_numpy(src))
            memory = out.transpose(0, 1)  # (B, S, H)
            keys = memory @ Wk  # once per sequence
            h = hn[0]
            steps = []
            for y in torch.from_numpy(tgt):
                scores = torch.tanh(keys + (h @ Wq + bq)[:, None, :]) @ v
                a = torch.softmax(scores, -1)
                ctx = (a[:, :, None] * memory).sum(1)
                h = dec(torch.cat([y, ctx], -1), h)
                steps.append(torch.cat([h, ctx], -1) @ Wo + bo)
            return torch.stack(steps).numpy()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument(
        "--out",
        default="seq2seq_attention",
        help="results/<OUT>.json: another CPU's figures beside these",
    )
    args = ap.parse_args()
    reps = 3 if args.quick else 10
    g2, g1 = two_axes(), one_axis()
    params = {k: v.astype(np.float32) for k, v in g2.init_params(seed=0).items()}
    params = {k: v * 0.5 if k.endswith((".R", ".Wk")) else v for k, v in params.items()}
    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        torch = torch_with(threads)
        models: dict[str, Any] = {}
        compile_s: dict[str, float] = {}
        for name, graph, target in (
            ("ours_onnx", g2, "onnx"),
            ("phase_onnx", g1, "onnx"),
            ("ours_tvm", g2, "tvm"),
            ("phase_tvm", g1, "tvm"),
        ):
            options: dict[str, Any] = {"threads": threads} if target == "onnx" else {}
            if target == "tvm" and threads > 1:
                options["parallel"] = "products"
            t0 = time.perf_counter()
            try:
                models[name] = rg.compile(graph, target=target, params=params, **options)
            except Exception as e:  # the TVM backend is optional
                models[name] = f"skipped: {type(e).__name__}: {e}"
            compile_s[name] = round(time.perf_counter() - t0, 2)
        for B in (1, 32):
            src = rng.standard_normal((S, B, E)).astype(np.float32)
            tgt = rng.standard_normal((T, B, E)).astype(np.float32)
            feeds2, feeds1 = {"src": src, "tgt": tgt}, phase_feeds(src, tgt)
            want = rg.run(g2, feeds2, params)["logits"]
            row: dict[str, Any] = {"threads": threads, "batch": B, "S": S, "T": T, "H": H}
            contenders: dict[str, Any] = {}
            for name, model in models.items():
                if isinstance(model, str):
                    row[name] = model
                    continue
                phase = name.startswith("phase")
                call = partial(model.run, feeds1 if phase else feeds2)
                got = call()["logits"][S:] if phase else call()["logits"]
                row[f"max_abs_err_{name}"] = float(np.max(np.abs(got - want)))
                row[f"compile_s_{name}"] = compile_s[name]
                contenders[name] = call
            if torch is None:
                row["torch_eager"] = NO_TORCH
            else:
                eager = torch_eager(params, torch)
                row["max_abs_err_torch_eager"] = float(np.max(np.abs(eager(src, tgt) - want)))
                contenders["torch_eager"] = partial(eager, src, tgt)
            row.update(timed_together(contenders, reps, per_turn=max(1, reps // 2)))
            for name in ("ours_onnx", "ours_tvm"):
                if not isinstance(row.get(name), dict):
                    continue
                ours = row[name]["median_ms"]
                if isinstance(row.get("torch_eager"), dict):
                    row[f"{name}_time_vs_torch"] = round(ours / row["torch_eager"]["median_ms"], 3)
                phase = name.replace("ours", "phase")
                if isinstance(row.get(phase), dict):
                    row[f"{name}_speedup_vs_{phase}"] = round(row[phase]["median_ms"] / ours, 2)
            print(row, flush=True)
            rows.append(row)
    doc = {"machine": machine(), "S": S, "T": T, "H": H, "E": E, "V": V, "rows": rows}
    print(f"wrote {write(args.out, doc)}")


if __name__ == "__main__":
    main()
