"""Child-sum tree-LSTM inference: level-batched (ours) vs per-node PyTorch eager recursion.

Hidden 150, node features 300, fp32; batches of 1, 10 and 100 random trees
of 10-200 nodes (random recursive trees: each node's parent drawn uniformly
from the nodes before it). Ours: ``rg.recursive`` compiled once to ONNX (one
``Scan`` over levels with ``GatherND``/``ScatterND``) and run by onnxruntime
on every batch; compiled once by the TVM backend (one kernel; with two
threads, every level's products are shared by the cores);
also the reference interpreter. PyTorch: the same cell and
weights applied node by node in Python recursion, one tree at a time — how
tree-LSTMs are usually written (Tai et al.'s code, most tutorials). Root
states are cross-checked before timing. Writes
``benchmarks/results/tree_lstm.json``.

Run: ``python benchmarks/tree_lstm.py [--quick]``
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Any

import numpy as np
from _common import NO_TORCH, machine, timed, torch_with, write

import rnngraph as rg
from rnngraph.tools.bench import (
    TREE_F,
    TREE_H,
    random_trees,
    timed_together,
    torch_tree_lstm,
    tree_lstm_graph,
)  # fmt: skip
from rnngraph.trees.recursion import layout

F, H = TREE_F, TREE_H


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument(
        "--out", default="tree_lstm", help="results/<OUT>.json: another CPU's figures beside these"
    )
    args = ap.parse_args()
    reps = 2 if args.quick else 6
    import sys

    sys.setrecursionlimit(10_000)
    g = tree_lstm_graph(F, H)
    params = {k: v.astype(np.float32) for k, v in g.init_params(seed=0).items()}
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    for threads in (1, 2):
        t0 = time.perf_counter()
        model = rg.compile(g, target="onnx", params=params, threads=threads)
        compile_s = time.perf_counter() - t0
        torch = torch_with(threads)
        if torch is not None:
            per_node = torch_tree_lstm(params, H)
        tvm_model = None
        try:  # (two threads: a level's products shared by both cores, as the plan chooses)
            t0 = time.perf_counter()
            tvm_model = rg.compile(g, target="tvm", params=params, threads=threads)
            tvm_compile_s = time.perf_counter() - t0
        except Exception as e:  # the TVM backend is optional
            tvm_note = f"skipped: {type(e).__name__}: {e}"
        for count in (1, 10, 100):
            items = random_trees(count, rng)
            batch = rg.trees.batch(items)
            lay = layout(batch)
            row: dict[str, Any] = {
                "threads": threads,
                "trees": count,
                "nodes": batch.num_nodes,
                "levels": lay.num_levels,
                "padded_level_width": int(lay.nodes.shape[1]),
                "max_children": int(lay.children.shape[2]),
                "compile_s": round(compile_s, 3),
            }
            want = rg.run(g, batch, params)["root"]
            got = model.run(batch)["root"]
            row["max_abs_err_onnx_vs_reference"] = float(np.max(np.abs(got - want)))
            contenders: dict[str, Any] = {"ours_onnx": partial(model.run, batch)}
            if tvm_model is None:
                row["ours_tvm"] = tvm_note
            else:
                got_tvm = tvm_model.run(batch)["root"]
                row["max_abs_err_tvm_vs_reference"] = float(np.max(np.abs(got_tvm - want)))
                contenders["ours_tvm"] = partial(tvm_model.run, batch)
                row["tvm_compile_s"] = round(tvm_compile_s, 2)
            if threads == 1:
                row["reference"] = timed(partial(rg.run, g, batch, params), 1)
            if torch is None:
                row["torch_per_node"] = NO_TORCH
            else:
                row["max_abs_err_torch_vs_reference"] = float(
                    np.max(np.abs(per_node(items) - want))
                )
                contenders["torch_per_node"] = partial(per_node, items)
            # in turns: the same drift for all, and no thread pool left spinning by the
            # last contender (onnxruntime's, TVM's, OpenMP's) takes the next one's cores
            row.update(timed_together(contenders, reps, per_turn=max(1, reps // 2)))
            if torch is not None:
                for ours, key in (("ours_onnx", ""), ("ours_tvm", "tvm_")):
                    if isinstance(row.get(ours), dict):
                        ratio = row["torch_per_node"]["median_ms"] / row[ours]["median_ms"]
                        row[f"{key}speedup_vs_torch_per_node"] = round(ratio, 2)
            print(row, flush=True)
            rows.append(row)
    path = write(args.out, {"machine": machine(), "F": F, "H": H, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
