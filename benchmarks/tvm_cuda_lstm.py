"""LSTM inference on a CUDA GPU: our TVM kernel vs PyTorch's ``nn.LSTM`` (cuDNN).

I=64 H=256 T=100, fp32, batch 1, 32 and 256. Ours: ``rg.compile(target="tvm",
device="cuda")`` — the whole program as one CUDA kernel, launched once per
call: one thread block per batch row, the time loop inside it, one thread
per gate column; no tuning. PyTorch's LSTM is cuDNN's. Two timings each,
the contenders in turns (``rnngraph.tools.bench.timed_together``):

- ``kernel``: data already on the GPU, results left there (TVM: the kernel
  bound to its buffers by ``TvmModel.launcher``; torch: ``lstm(x)`` on a
  CUDA tensor), each call waited for;
- ``end_to_end``: numpy in, numpy out (the copies over PCIe included), as a
  user calling ``m.run`` sees it.

Outputs are checked against the reference (numpy) first; compile time is
recorded. Needs a CUDA GPU and PyTorch with CUDA; writes
``benchmarks/results/tvm_cuda_lstm.json`` (or ``--out``).

Run: ``python benchmarks/tvm_cuda_lstm.py [--quick] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import lstm_graph, machine, write

import rnngraph as rg
from rnngraph.tools.bench import timed_together, torch_rnn

I, H, T = 64, 256, 100


def _row(B: int, g: rg.Graph, p: dict[str, np.ndarray], lstm: Any, torch: Any, reps: int) -> Any:
    t0 = time.perf_counter()
    m = rg.compile(g, target="tvm", params=p, device="cuda")
    compile_s = time.perf_counter() - t0
    xs = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    want = rg.run(g, {"x": xs}, p)["y"]
    row: dict[str, Any] = {"batch": B, "T": T, "I": I, "H": H}
    row["tvm_compile_s"] = round(compile_s, 2)
    row["tuning_s"] = 0.0
    row["max_abs_err_tvm_vs_reference"] = float(np.max(np.abs(m.run({"x": xs})["y"] - want)))
    xt = torch.from_numpy(xs).cuda()
    with torch.no_grad():
        got = lstm(xt)[0].cpu().numpy()
    row["max_abs_err_torch_vs_reference"] = float(np.max(np.abs(got - want)))

    def torch_kernel() -> None:
        with torch.no_grad():
            lstm(xt)
        torch.cuda.synchronize()

    def torch_e2e() -> Any:
        with torch.no_grad():
            return lstm(torch.from_numpy(xs).cuda())[0].cpu().numpy()

    kernel = timed_together({"tvm": m.launcher({"x": xs}), "torch_cudnn": torch_kernel}, reps)
    e2e = timed_together({"tvm": lambda: m.run({"x": xs}), "torch_cudnn": torch_e2e}, reps)
    row["kernel"], row["end_to_end"] = kernel, e2e
    for name, stats in (("kernel", kernel), ("end_to_end", e2e)):
        for stat, key in (("median_ms", ""), ("min_ms", "_fastest")):
            ratio = stats["tvm"][stat] / stats["torch_cudnn"][stat]
            row[f"tvm_vs_torch_{name}{key}"] = round(ratio, 2)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--out", type=Path, help="write the JSON here instead of results/")
    args = ap.parse_args()
    reps = 10 if args.quick else 50
    import torch
    import tvm

    if not tvm.cuda(0).exist or not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU (and PyTorch with CUDA)")
    g, p = lstm_graph(I, H)
    lstm = torch_rnn("LSTM", p).cuda()
    rows = [_row(B, g, p, lstm, torch, reps) for B in (1, 32, 256)]
    doc = {
        "machine": machine(),
        "gpu": torch.cuda.get_device_name(0),
        "device": "tvm cuda",
        "versions": {"torch": torch.__version__, "tvm": tvm.__version__},
        "rows": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.out}")
    else:
        print(f"wrote {write('tvm_cuda_lstm', doc)}")


if __name__ == "__main__":
    main()
