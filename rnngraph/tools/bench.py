"""``rnngraph bench``: our engines against PyTorch and onnxruntime, side by side in one run.

For an LSTM, a GRU and a custom cell (an LSTM with layer-normalised gates,
which no fused op covers), over hidden sizes, sequence lengths, batch sizes
and thread counts, it times:

* ours: the ONNX model in onnxruntime (native op for standard cells, ``Scan``
  for the custom one) and the reference interpreter;
* PyTorch eager (``nn.LSTM``/``nn.GRU``; the custom cell as a Python loop) and
  onnxruntime running ``torch.onnx.export``'s file, when PyTorch is installed;
* onnxruntime's own ``LSTM``/``GRU`` op, the strongest CPU baseline.

Every engine's output is checked against the reference interpreter before
it is timed (warm-up, then median and p90). Compile and export times are
reported apart. Achieved GFLOP/s (the recurrent GEMMs' arithmetic) are set
against the machine's GEMM rate measured in the same run (a 1536³
single-precision MatMul in onnxruntime at the same thread count, best of 8);
a fused recurrent kernel can exceed that rate, so ``frac_peak`` above 1 means
"faster than that GEMM", not an error. Results go to JSON; :func:`markdown_table` renders
them for the README.

Two more sections put every engine side by side on the rest of the work: an LSTM's
forward pass with every weight gradient (our adjoint graph in onnxruntime and as one TVM
kernel, against PyTorch's ``nn.LSTM`` and autograd; ``training`` rows), and a child-sum
tree-LSTM over batches of random trees (our level-batched ONNX and TVM models against
the same cell applied node by node in PyTorch; ``trees`` rows). Gradients and root states
are checked against the reference first; the contenders take turns.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.files import atomic_write

__all__ = [
    "bench",
    "cell_graph",
    "machine",
    "markdown_table",
    "native_op_session",
    "random_trees",
    "steady_malloc",
    "timed",
    "timed_together",
    "torch_lstm_step",
    "torch_rnn",
    "torch_tree_lstm",
    "tree_lstm_graph",
    "update_readme",
]

I = 64
FULL: dict[str, list[Any]] = {
    "cells": ["LSTM", "GRU", "LN-LSTM"],
    "hidden": [64, 256, 512],
    "T": [16, 128],
    "batch": [1, 8, 32],
    "threads": [1, 2],
}
QUICK: dict[str, list[Any]] = {
    "cells": ["LSTM", "GRU", "LN-LSTM"],
    "hidden": [64, 256],
    "T": [16],
    "batch": [1, 32],
    "threads": [1],
}
TRAINING: dict[str, dict[str, list[int]]] = {
    "full": {"hidden": [64, 256], "T": [100], "batch": [1, 32]},
    "quick": {"hidden": [256], "T": [100], "batch": [32]},
}
"""The forward + gradients section's LSTMs (input size :data:`I`)."""
TREES: dict[str, list[int]] = {"full": [10, 100], "quick": [10]}
"""The tree section's batch sizes, in random trees of 10-200 nodes."""
NO_TORCH_BENCH = "PyTorch is not installed (pip install 'rnngraph[bench]')"
NO_TVM_BENCH = "TVM is not installed (pip install 'rnngraph[tvm]')"
TREE_F, TREE_H = 300, 150
"""The tree-LSTM's node features and hidden size."""
# Every onnxruntime session here idles without spinning: on two cores, the spinning worker
# threads of one engine's session would steal time from the engine being timed.
NO_SPIN = {"session.intra_op.allow_spinning": "0"}
BLAS_IDLE_S = 0.3
"""How long numpy's BLAS threads may busy-wait after a product (OpenBLAS: 2**28 cycles)."""
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def steady_malloc() -> str:
    """Let glibc's ``malloc`` keep and reuse large buffers (``mallopt``: mmap and trim
    thresholds of 1 GiB) for the rest of the process, and say what was set.

    By default glibc maps every buffer over its (adaptive) threshold afresh and returns
    it on free, so each call that allocates one pays its page faults; whether a
    contender does depends on what the process did before (PyTorch's LSTM training step,
    I=64 H=256 T=100 B=32: 49 ms in a fresh process, 34-36 ms once its buffers are
    reused). Our kernels and onnxruntime allocate once; set here, every contender gets
    the steady state a long-running program reaches."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name and platform.system() == "Linux" else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return "the platform's malloc as it is"
    m_trim_threshold, m_mmap_threshold = -1, -3
    if mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, 1 << 30):
        return "glibc malloc keeping large buffers (mmap and trim thresholds 1 GiB)"
    return "the platform's malloc as it is (mallopt refused)"


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median and p90 wall time in ms of ``repeats`` calls after one warm-up call."""
    stats = timed_together({"": fn}, repeats, per_turn=repeats)[""]
    del stats["min_ms"]  # (its results keep their two figures)
    return stats


def _stats(times: list[float]) -> dict[str, float]:
    """Median, p90 and least of call times in ms."""
    times = sorted(times)
    return {
        "median_ms": round(statistics.median(times), 4),
        "p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 4),
        "min_ms": round(times[0], 4),
    }


def timed_together(
    fns: Mapping[str, Callable[[], Any]], repeats: int, per_turn: int = 5
) -> dict[str, dict[str, float]]:
    """:func:`timed` for contenders that take turns, ``per_turn`` timed calls each.

    On a shared machine the speed drifts within seconds; in turns, every
    contender sees the same drift, so their ratios hold where one-after-the-
    other medians do not. Each turn starts with an untimed call: thread pools
    (onnxruntime's, OpenMP's) keep spinning a while after their last call and
    would steal the next contender's cores. Adds ``min_ms``, the least
    disturbed call.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    while any(len(ts) < repeats for ts in times.values()):
        for name, fn in fns.items():
            fn()
            for _ in range(min(per_turn, repeats - len(times[name]))):
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: _stats(ts) for name, ts in times.items()}


_CPUINFO = {"cpu family": "cpu_family", "model": "cpu_model", "cache size": "cache_size"}


def machine() -> dict[str, Any]:
    """CPU model (with its family and model numbers and cache: a virtual machine's model
    name may say only "AMD EPYC"), ISA flags, core count and library versions."""
    import onnxruntime

    import rnngraph

    cpu, flags = "", list[str]()
    ids: dict[str, str] = {}
    if os.path.exists("/proc/cpuinfo"):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            key = line.split(":", 1)[0].strip()
            if key in ("cpu family", "model", "cache size") and key not in ids:
                ids[key] = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = sorted(have & {"avx2", "avx512f", "avx512_bf16", "fma", "amx_tile"})
    try:
        import torch

        torch_version: str | None = torch.__version__
    except ImportError:
        torch_version = None
    return {
        "cpu": cpu,
        **{_CPUINFO[k]: v for k, v in ids.items()},
        "isa": flags,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch": torch_version,
        "rnngraph": rnngraph.__version__,
    }


def _session(model_bytes: bytes, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    for key, value in NO_SPIN.items():
        so.add_session_config_entry(key, value)
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def native_op_session(
    op: str, params: Mapping[str, np.ndarray], prefix: str, hidden: int, threads: int = 1
) -> Any:
    """An onnxruntime session of ONNX's own LSTM or GRU op holding our cell's weights."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(params[f"{prefix}.{r}"][None].astype(np.float32), r)
        for r in ("W", "R", "B")
    ]
    n_out = 3 if op == "LSTM" else 2
    outs = ["Y", "Y_h", "Y_c"][:n_out]
    attrs: dict[str, Any] = {"linear_before_reset": 1} if op == "GRU" else {}
    node = helper.make_node(op, ["X", "W", "R", "B", "lens"], outs, hidden_size=hidden, **attrs)
    in_size = params[f"{prefix}.W"].shape[1]
    graph = helper.make_graph(
        [node],
        "native",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", in_size]),
            helper.make_tensor_value_info("lens", TensorProto.INT32, ["N"]),
        ],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    return _session(model.SerializeToString(), threads)


def peak_gflops(threads: int, n: int = 1536) -> float:
    """Single-precision GEMM throughput of onnxruntime at ``threads``: the practical peak."""
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "gemm",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    sess = _session(
        helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString(),
        threads,
    )
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    ms = timed(lambda: sess.run(None, {"a": a, "b": a}), 5)["median_ms"]
    return 2 * n**3 / (ms * 1e-3) / 1e9


def _flops(cell: str, T: int, B: int, H: int) -> float:
    gates = {"LSTM": 4, "GRU": 3, "LN-LSTM": 4}[cell]
    return 2.0 * T * B * (I + H) * gates * H


def cell_graph(cell: str, H: int, inputs: int = I, *, concat: bool = False) -> Any:
    """The benchmarked model: ``"LSTM"``, ``"GRU"`` or ``"LN-LSTM"`` (layer-normalised gates).

    ``concat=True`` writes the LN-LSTM's pre-activation as ``linear(concat([x, h]))``
    (one weight ``W``), as it is often written, instead of ``x Wx + h Rh``.
    """
    import rnngraph as rg

    g = rg.Graph(cell)
    x = g.input("x", inputs)
    if cell == "LSTM":
        g.output("y", rg.cells.lstm(x, H, name="c"))
    elif cell == "GRU":
        g.output("y", rg.cells.gru(x, H, name="c", linear_before_reset=True))
    else:
        h, c = g.state("h", H), g.state("c", H)
        if concat:
            z = rg.linear(rg.concat([x, h]), 4 * H, name="W")
        else:
            z = rg.linear(x, 4 * H, name="Wx") + rg.linear(h, 4 * H, bias=False, name="Rh")
        z = rg.layer_norm(z, g.param("ln.g", 4 * H, 1.0), g.param("ln.b", 4 * H, 0.0))
        i, f, o, u = rg.split(z, 4)
        c_new = rg.sigmoid(f) * c + rg.sigmoid(i) * rg.tanh(u)
        h_new = rg.sigmoid(o) * rg.tanh(c_new)
        g.assign(h, h_new)
        g.assign(c, c_new)
        g.output("y", h_new)
    return g


def torch_rnn(cell: str, params: Mapping[str, np.ndarray], prefix: str = "c") -> Any:
    """``torch.nn.LSTM`` or ``torch.nn.GRU`` holding the weights of our recognised cell
    ``prefix`` (``W``, ``R``, ``B`` as ONNX's op: gates i, o, f, c / z, r, h, which
    torch orders i, f, c, o / r, z, h). On the CPU; move it with ``.cuda()``."""
    import torch

    n = 4 if cell == "LSTM" else 3
    order = [0, 2, 3, 1] if cell == "LSTM" else [1, 0, 2]
    W, R, B = (np.asarray(params[f"{prefix}.{k}"], np.float32) for k in ("W", "R", "B"))
    H = R.shape[1]
    m = getattr(torch.nn, cell)(W.shape[1], H)

    def to_torch(a: np.ndarray) -> Any:
        parts = np.split(a, n)
        return torch.from_numpy(np.concatenate([parts[k] for k in order]))

    with torch.no_grad():
        m.weight_ih_l0.copy_(to_torch(W))
        m.weight_hh_l0.copy_(to_torch(R))
        m.bias_ih_l0.copy_(to_torch(B[: n * H]))
        m.bias_hh_l0.copy_(to_torch(B[n * H :]))
    return m


def _torch_engines(
    cell: str, H: int, p: dict[str, np.ndarray], threads: int, xs: np.ndarray
) -> dict[str, Any]:
    """PyTorch eager and onnxruntime on torch.onnx.export's file, as ``name -> (fn, compile_s)``."""
    import torch

    torch.set_num_threads(threads)
    x = torch.from_numpy(xs)
    out: dict[str, Any] = {}
    if cell in ("LSTM", "GRU"):
        m = torch_rnn(cell, p)

        def eager() -> np.ndarray:
            with torch.no_grad():
                return m(x)[0].numpy()

        out["torch_eager"] = (eager, 0.0)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on its legacy path
            path = os.path.join(tmp, "m.onnx")
            torch.onnx.export(
                m,
                (x,),
                path,
                input_names=["x"],
                output_names=["y"],
                opset_version=18,
                dynamo=False,
                dynamic_axes={"x": {0: "T", 1: "B"}, "y": {0: "T", 1: "B"}},
            )
            sess = _session(Path(path).read_bytes(), threads)
        compile_s = time.perf_counter() - t0
        out["ort_torch_export"] = (lambda: sess.run(["y"], {"x": xs})[0], compile_s)
    else:
        Wx, bx, Rh = (torch.from_numpy(p[k]) for k in ("Wx.W", "Wx.b", "Rh.W"))
        lg, lb = torch.from_numpy(p["ln.g"]), torch.from_numpy(p["ln.b"])

        def loop() -> np.ndarray:
            with torch.no_grad():
                h = torch.zeros(x.shape[1], H)
                c = torch.zeros(x.shape[1], H)
                ys = []
                xw = x @ Wx + bx
                for t in range(x.shape[0]):
                    z = torch.nn.functional.layer_norm(xw[t] + h @ Rh, (4 * H,), lg, lb, 1e-5)
                    i, f, o, u = z.chunk(4, -1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(u)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    ys.append(h)
                return torch.stack(ys).numpy()

        out["torch_eager"] = (loop, 0.0)
    return out


def _has_tvm() -> bool:
    """Whether the TVM backend is installed (its rows are timed, else skipped, saying so)."""
    return importlib.util.find_spec("rnngraph_tvm") is not None


def _checked(name: str, err: float, what: str) -> None:
    """Refuse to time an engine whose result is off the reference by more than 1e-3."""
    if err > 1e-3:
        raise RuntimeError(f"{name} disagrees with the reference on {what}: {err:.2e}")


def _row(
    cell: str, H: int, T: int, B: int, threads: int, peak: float, repeats: int
) -> dict[str, Any]:
    import rnngraph as rg

    g = cell_graph(cell, H)
    p = g.init_params(seed=0)
    xs = np.random.default_rng(T * B + H).standard_normal((T, B, I)).astype(np.float32)
    want = rg.run(g, {"x": xs}, p)["y"]
    engines: dict[str, tuple[Callable[[], Any], float]] = {}
    t0 = time.perf_counter()
    m = rg.compile(g, target="onnx", params=p, threads=threads, session_config=NO_SPIN)
    engines["ours_onnx"] = (lambda: m.run({"x": xs})["y"], time.perf_counter() - t0)
    skipped = {}
    if _has_tvm():  # the TVM backend's kernel
        t0 = time.perf_counter()
        tm = rg.compile(g, target="tvm", params=p, threads=threads)
        tm.run({"x": xs})  # (builds the kernel of this batch's split over the threads)
        engines["ours_tvm"] = (lambda: tm.run({"x": xs})["y"], time.perf_counter() - t0)
    else:
        skipped["ours_tvm"] = NO_TVM_BENCH
    if cell in ("LSTM", "GRU"):
        sess = native_op_session(cell, p, "c", H, threads)
        feeds = {"X": xs, "lens": np.full(B, T, np.int32)}
        engines["ort_native_op"] = (lambda: sess.run(["Y"], feeds)[0][:, 0], 0.0)
    try:
        # PyTorch first: onnxruntime's worker threads spin for a while after each run,
        # which would slow a multi-threaded PyTorch timed right after them.
        engines = {**_torch_engines(cell, H, p, threads, xs), **engines}
    except ImportError:
        skipped["torch"] = NO_TORCH_BENCH
    # The reference first, then a pause: numpy's BLAS threads busy-wait for up to a tenth of
    # a second after each product, and on two cores they would take the core a threaded
    # engine timed next waits for (every call of it one scheduler tick, 4 ms, late).
    engines = {"reference": (lambda: rg.run(g, {"x": xs}, p)["y"], 0.0), **engines}
    row: dict[str, Any] = {"cell": cell, "H": H, "T": T, "B": B, "I": I, "threads": threads}
    flops = _flops(cell, T, B, H)
    for name, (fn, compile_s) in engines.items():
        got = np.asarray(fn())
        err = float(np.max(np.abs(got.reshape(want.shape) - want)))
        _checked(name, err, f"{cell} H={H}")
        reps = (
            max(2, repeats // 4)
            if name in ("reference", "torch_eager") and cell == "LN-LSTM"
            else repeats
        )
        t = timed(fn, reps if name != "reference" else max(2, repeats // 4))
        if name == "reference":
            time.sleep(BLAS_IDLE_S)
        gflops = flops / (t["median_ms"] * 1e-3) / 1e9
        row[name] = {
            **t,
            "gflops": round(gflops, 2),
            "frac_peak": round(gflops / peak, 3),
            "max_abs_err": err,
            **({"compile_s": round(compile_s, 3)} if compile_s else {}),
        }
    baselines = {
        k: row[k]["median_ms"]
        for k in ("ort_native_op", "torch_eager", "ort_torch_export")
        if k in row
    }
    if baselines:
        best = min(baselines, key=lambda k: baselines[k])
        row["best_baseline"] = best
        row["ours_over_best"] = round(row["ours_onnx"]["median_ms"] / baselines[best], 3)
        if "ours_tvm" in row:
            row["tvm_over_best"] = round(row["ours_tvm"]["median_ms"] / baselines[best], 3)
    if skipped:
        row["skipped"] = skipped
    return row


def torch_lstm_step(
    params: Mapping[str, np.ndarray], xs: np.ndarray, cotangent: np.ndarray
) -> tuple[Callable[[], None], Callable[[], np.ndarray]]:
    """One PyTorch training step of our recognised LSTM ``c``: ``nn.LSTM`` forward, then
    autograd's backward of ``sum(y * cotangent)``; and a reader of the recurrent weight's
    gradient in our gate order (ONNX's i, o, f, c)."""
    import torch

    lstm = torch_rnn("LSTM", params)
    x, c = torch.from_numpy(xs), torch.from_numpy(cotangent)

    def step() -> None:
        lstm.zero_grad()
        y, _ = lstm(x)
        (y * c).sum().backward()

    def recurrent_gradient() -> np.ndarray:
        i, f, cc, o = np.split(lstm.weight_hh_l0.grad.numpy(), 4)
        return np.concatenate([i, o, f, cc])

    return step, recurrent_gradient


def tree_lstm_graph(features: int = TREE_F, hidden: int = TREE_H) -> Any:
    """A child-sum tree-LSTM over node features ``x``; output ``root``."""
    import rnngraph as rg

    g = rg.Graph("tree_lstm")
    cell: Any = rg.cells.child_sum_tree_lstm(hidden)
    tree = rg.recursive(g, cell=cell, inputs=g.input("x", features))
    g.output("root", tree.root)
    return g


def random_trees(count: int, rng: np.random.Generator, features: int = TREE_F) -> list[Any]:
    """``count`` random recursive trees of 10-200 nodes (each node's parent drawn uniformly
    from the nodes before it) with normal node features."""
    import rnngraph as rg

    out = []
    for n in rng.integers(10, 201, count):
        parents = [-1] + [int(rng.integers(0, i)) for i in range(1, int(n))]
        feats = rng.standard_normal((int(n), features)).astype(np.float32)
        out.append(rg.trees.from_parents(parents, feats))
    return out


def torch_tree_lstm(params: Mapping[str, np.ndarray], hidden: int = TREE_H) -> Any:
    """Our child-sum tree-LSTM's cell as PyTorch applied node by node, by recursion over
    each tree (how tree-LSTMs are usually written); returns ``run(trees) -> roots``."""
    import torch

    def t(name: str) -> Any:
        return torch.from_numpy(np.ascontiguousarray(params[f"tree_lstm.{name}"]))

    W_iou, b_iou, U_iou = t("W_iou.W"), t("W_iou.b"), t("U_iou.W")
    W_f, b_f, U_f = t("W_f.W"), t("W_f.b"), t("U_f.W")
    H = hidden

    def node(x: Any, hs: Any, cs: Any) -> tuple[Any, Any]:
        iou = x @ W_iou + b_iou + hs.sum(0) @ U_iou
        i, o, u = torch.sigmoid(iou[:H]), torch.sigmoid(iou[H : 2 * H]), torch.tanh(iou[2 * H :])
        f = torch.sigmoid(x @ W_f + b_f + hs @ U_f)
        c = i * u + (f * cs).sum(0)
        return o * torch.tanh(c), c

    def run(items: Sequence[Any]) -> np.ndarray:
        roots = []
        with torch.no_grad():
            for s in items:
                x = torch.from_numpy(s.features.astype(np.float32))

                def visit(v: int, s: Any = s, x: Any = x) -> tuple[Any, Any]:
                    kids = [visit(c) for c in s.children[v]]
                    if kids:
                        hs = torch.stack([k[0] for k in kids])
                        cs = torch.stack([k[1] for k in kids])
                    else:
                        hs = cs = torch.zeros(1, H)
                    return node(x[v], hs, cs)  # a tree: every node is visited once

                roots.append(visit(0)[0])
        return torch.stack(roots).numpy()

    return run


def _training_row(H: int, T: int, B: int, threads: int, repeats: int) -> dict[str, Any]:
    """An LSTM's forward pass and every weight gradient: our adjoint graph in onnxruntime
    and as one TVM kernel against PyTorch autograd, gradients checked first."""
    import rnngraph as rg

    g = cell_graph("LSTM", H)
    p = {k: v.astype(np.float32) for k, v in g.init_params(seed=0).items()}
    rng = np.random.default_rng(H + T + B)
    xs = rng.standard_normal((T, B, I)).astype(np.float32)
    cy = (rng.standard_normal((T, B, H)) / (T * B)).astype(np.float32)
    _, want = rg.vjp(g, {"x": xs}, p, cotangents={"y": cy})
    adj = rg.adjoint(g, input_gradients=False)
    feeds = {"x": xs, "cot:y": cy}
    what = f"LSTM H={H} gradients"
    row: dict[str, Any] = {"H": H, "T": T, "B": B, "I": I, "threads": threads}
    fns: dict[str, Callable[[], Any]] = {}
    targets: list[tuple[str, str, dict[str, Any]]] = [
        ("ours_onnx", "onnx", {"session_config": NO_SPIN})
    ]
    if _has_tvm():
        targets.append(("ours_tvm", "tvm", {}))
    else:
        row["skipped"] = {"ours_tvm": NO_TVM_BENCH}
    for name, target, options in targets:
        t0 = time.perf_counter()
        m = rg.compile(adj, target=target, params=p, threads=threads, **options)
        got = m.run(feeds)
        row[f"{name}_compile_s"] = round(time.perf_counter() - t0, 2)
        _checked(name, max(float(np.max(np.abs(got[f"grad:{k}"] - want[k]))) for k in p), what)
        fns[name] = functools.partial(m.run, feeds)
    try:
        import torch

        torch.set_num_threads(threads)
        step, recurrent = torch_lstm_step(p, xs, cy)
        step()
        _checked("torch_autograd", float(np.max(np.abs(recurrent() - want["c.R"]))), what)
        fns = {"torch_autograd": step, **fns}
    except ImportError:
        row.setdefault("skipped", {})["torch"] = NO_TORCH_BENCH
    row.update(timed_together(fns, repeats))
    if "torch_autograd" in row:
        for ours in ("ours_onnx", "ours_tvm"):
            if ours in row:
                ratio = row[ours]["median_ms"] / row["torch_autograd"]["median_ms"]
                row[f"{ours}_over_torch"] = round(ratio, 3)
    return row


def _tree_rows(
    counts: Sequence[int], threads: int, repeats: int, features: int = TREE_F, hidden: int = TREE_H
) -> list[dict[str, Any]]:
    """A child-sum tree-LSTM over ``counts`` random trees at a time: our ONNX and TVM models
    (compiled once) against per-node PyTorch, root states checked first."""
    import rnngraph as rg

    g = tree_lstm_graph(features, hidden)
    p = {k: v.astype(np.float32) for k, v in g.init_params(seed=0).items()}
    models: dict[str, Any] = {}
    compile_s: dict[str, float] = {}
    skipped: dict[str, str] = {}
    targets = ["onnx"] + (["tvm"] if _has_tvm() else [])
    if len(targets) == 1:
        skipped["ours_tvm"] = NO_TVM_BENCH
    for target in targets:
        t0 = time.perf_counter()
        models[f"ours_{target}"] = rg.compile(g, target=target, params=p, threads=threads)
        compile_s[f"ours_{target}_compile_s"] = round(time.perf_counter() - t0, 2)
    try:
        import torch

        torch.set_num_threads(threads)
        per_node = torch_tree_lstm(p, hidden)
    except ImportError:
        per_node = None
        skipped["torch"] = NO_TORCH_BENCH
    rows = []
    rng = np.random.default_rng(threads)
    for count in counts:
        items = random_trees(count, rng, features)
        batch: Any = rg.trees.batch(items)
        want = rg.run(g, batch, p)["root"]
        fns: dict[str, Callable[[], Any]] = {}
        for name, m in models.items():
            _checked(name, float(np.max(np.abs(m.run(batch)["root"] - want))), "tree roots")
            fns[name] = functools.partial(m.run, batch)
        if per_node is not None:
            _checked("torch", float(np.max(np.abs(per_node(items) - want))), "tree roots")
            fns = {"torch_per_node": functools.partial(per_node, items), **fns}
        row: dict[str, Any] = {"trees": count, "nodes": batch.num_nodes, "threads": threads}
        row.update(compile_s)
        row.update(timed_together(fns, repeats, per_turn=max(1, repeats // 2)))
        if "torch_per_node" in row:
            for ours in models:
                speedup = row["torch_per_node"]["median_ms"] / row[ours]["median_ms"]
                row[f"{ours}_speedup_vs_torch"] = round(speedup, 2)
        if skipped:
            row["skipped"] = skipped
        rows.append(row)
    return rows


def bench(
    *, quick: bool = False, out: str | os.PathLike[str] | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the sweep (``quick``: a small one) and write the JSON; returns the document.
    Compile times are cold builds: the TVM kernel cache is off for the run unless
    ``$RNNGRAPH_TVM_KERNEL_CACHE`` names a folder."""
    os.environ.setdefault("RNNGRAPH_TVM_KERNEL_CACHE", "off")
    allocator = steady_malloc()
    grid = QUICK if quick else FULL
    repeats = 5 if quick else 10
    peaks = {n: round(peak_gflops(n), 1) for n in grid["threads"]}
    configs = [
        (c, h, t, b, n)
        for n in grid["threads"]
        for c in grid["cells"]
        for h in grid["hidden"]
        for t in grid["T"]
        for b in grid["batch"]
    ]
    rows = []
    start = time.perf_counter()
    for i, (c, h, t, b, n) in enumerate(configs):
        rows.append(_row(c, h, t, b, n, peaks[n], repeats))
        if progress:
            r = rows[-1]
            ratio = r.get("ours_over_best")
            print(
                f"[{i + 1}/{len(configs)}] {c:<7} H={h:<3} T={t:<3} B={b:<2} threads={n}: ours "
                f"{r['ours_onnx']['median_ms']:8.3f} ms"
                + (f", {ratio:.2f}x the best baseline ({r['best_baseline']})" if ratio else ""),
                flush=True,
            )
    mode = "quick" if quick else "full"
    tg = TRAINING[mode]
    steps = [(h, t, b, n) for n in grid["threads"] for h in tg["hidden"] for t in tg["T"]
             for b in tg["batch"]]  # fmt: skip
    training = []
    for i, (h, t, b, n) in enumerate(steps):
        training.append(_training_row(h, t, b, n, repeats))
        if progress:
            r = training[-1]
            print(f"[training {i + 1}/{len(steps)}] LSTM H={h} T={t} B={b} threads={n}: "
                  + ", ".join(f"{k} {r[k]['median_ms']:.2f} ms" for k in
                              ("ours_onnx", "ours_tvm", "torch_autograd") if k in r),
                  flush=True)  # fmt: skip
    trees = []
    for n in grid["threads"]:
        trees += _tree_rows(TREES[mode], n, max(2, repeats // 2))
        if progress:
            for r in trees[-len(TREES[mode]) :]:
                print(f"[trees] {r['trees']} trees, {r['nodes']} nodes, threads={n}: "
                      + ", ".join(f"{k} {r[k]['median_ms']:.1f} ms" for k in
                                  ("ours_onnx", "ours_tvm", "torch_per_node") if k in r),
                      flush=True)  # fmt: skip
    doc = {
        "benchmark": "rnngraph bench: LSTM, GRU and a layer-normalised LSTM, I=64, fp32, wall time "
        "per whole sequence (median of repeats after a warm-up); an LSTM's forward pass with "
        "every weight gradient; a child-sum tree-LSTM over random trees",
        "quick": quick,
        "grid": grid,
        "training_grid": tg,
        "tree_counts": TREES[mode],
        "tree_sizes": {"features": TREE_F, "hidden": TREE_H},
        "peak_gflops_by_threads": peaks,
        "machine": machine(),
        "malloc": allocator,
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
        "training": training,
        "trees": trees,
    }
    path = (
        Path(out)
        if out
        else Path("benchmarks/results") / ("bench_quick.json" if quick else "bench.json")
    )
    atomic_write(path, json.dumps(doc, indent=1) + "\n")
    if progress:
        print(markdown_table(doc))
        skipped = {k: v for r in rows for k, v in r.get("skipped", {}).items()}
        for name, why in skipped.items():
            print(f"skipped {name}: {why}")
        print(f"wrote {path}")
    return doc


def markdown_table(doc: dict[str, Any]) -> str:
    """The README table of a bench JSON: each row's times and our ratio to the best baseline."""
    cols = [
        "ours_onnx", "ours_tvm", "reference", "ort_native_op", "torch_eager", "ort_torch_export"
    ]  # fmt: skip
    head = (
        "| cell | H | T | B | threads | ours (ONNX) | ours (TVM) | reference | ORT op "
        "| torch eager | ORT(torch export) | ONNX / best | TVM / best |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in doc["rows"]:
        cells = [f"{r[c]['median_ms']:.3f}" if c in r else "—" for c in cols]
        ratios = [
            f"{r[k]:.2f}x ({r['best_baseline']})" if k in r else "—"
            for k in ("ours_over_best", "tvm_over_best")
        ]
        lines.append(
            f"| {r['cell']} | {r['H']} | {r['T']} | {r['B']} | {r['threads']} | "
            + " | ".join(cells + ratios)
            + " |"
        )
    lines += _training_table(doc.get("training", []))
    lines += _tree_table(doc.get("trees", []), doc.get("tree_sizes", {}))
    m = doc["machine"]
    lines.append("")
    lines.append(
        f"Milliseconds per sequence, median; {m['cpu']} ({', '.join(m['isa'])}), "
        f"{m['cores']} cores; "
        f"onnxruntime {m['onnxruntime']}, torch {m['torch']}; GEMM peak "
        + ", ".join(
            f"{v} GFLOP/s at {k} thread(s)" for k, v in doc["peak_gflops_by_threads"].items()
        )
        + ". Generated from the committed JSON by `rnngraph bench --update-readme`."
    )
    return "\n".join(lines)


def _ms(row: Mapping[str, Any], key: str) -> str:
    return f"{row[key]['median_ms']:.2f}" if key in row else "—"


def _ratio(row: Mapping[str, Any], key: str) -> str:
    return f"{row[key]:.2f}x" if key in row else "—"


def _section(
    caption: str, rows: Sequence[Mapping[str, Any]], keys: Sequence[str],
    times: Mapping[str, str], ratios: Mapping[str, str],
) -> list[str]:  # fmt: skip
    """A captioned table of ``rows``: their ``keys``, the median ms of ``times`` and the
    ``ratios`` (row key -> column label); nothing when there are no rows."""
    if not rows:
        return []
    labels = [*keys, *times.values(), *ratios.values()]
    lines = ["", caption, "", "| " + " | ".join(labels) + " |", "|" + "---|" * len(labels)]
    for r in rows:
        cells = [str(r[k]) for k in keys] + [_ms(r, k) for k in times]
        lines.append("| " + " | ".join(cells + [_ratio(r, k) for k in ratios]) + " |")
    return lines


def _training_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The forward + gradients section of a bench JSON, if it has one."""
    return _section(
        "Forward pass and every weight gradient (LSTM, I=64): our adjoint graph against "
        "PyTorch's `nn.LSTM` and autograd.",
        rows, ["H", "T", "B", "threads"],
        {"ours_onnx": "ours (ONNX)", "ours_tvm": "ours (TVM)", "torch_autograd": "torch autograd"},
        {"ours_onnx_over_torch": "ONNX / torch", "ours_tvm_over_torch": "TVM / torch"},
    )  # fmt: skip


def _tree_table(rows: Sequence[Mapping[str, Any]], sizes: Mapping[str, int]) -> list[str]:
    """The tree-LSTM section of a bench JSON, if it has one."""
    return _section(
        f"Child-sum tree-LSTM (node features {sizes.get('features')}, hidden "
        f"{sizes.get('hidden')}) over batches of random trees of 10-200 nodes: ours "
        "level-batched against the cell applied node by node in PyTorch.",
        rows, ["trees", "nodes", "threads"],
        {"ours_onnx": "ours (ONNX)", "ours_tvm": "ours (TVM)", "torch_per_node": "torch per node"},
        {"ours_onnx_speedup_vs_torch": "torch / ONNX", "ours_tvm_speedup_vs_torch": "torch / TVM"},
    )  # fmt: skip


def update_readme(readme: str | os.PathLike[str], results: Sequence[str | os.PathLike[str]]) -> str:
    """Replace the README's bench section with tables rendered from ``results`` (JSON files)."""
    path = Path(readme)
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path} has no {README_START} ... {README_END} section")
    tables = []
    for r in results:
        doc = json.loads(Path(r).read_text())
        tables.append(f"From `{Path(r).as_posix()}`:\n\n" + markdown_table(doc))
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = head + README_START + "\n" + "\n\n".join(tables) + "\n" + README_END + tail
    atomic_write(path, new)
    return str(path)
