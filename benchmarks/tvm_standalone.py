"""The standalone C model (no TVM runtime) against the same kernel through TVM's runtime.

LSTM I=64 H=256 T=100, fp32: batch 1 and 32 on one thread, and batch 32 on
two (compiled with ``parallel=True``: the C program starts a POSIX thread per
group of rows; TVM's runtime uses its thread pool; onnxruntime two intra-op
threads). The model is exported with ``m.export(folder, standalone=True)`` for this machine, its
``lstm.c`` and the kernels' object compiled by gcc into a shared library, and
``lstm_run`` called through ctypes (a ``ctypes.Structure`` mirroring
``lstm_io`` from ``lstm.json``), with a workspace given once and with none
(``malloc`` per call). Against: ``m.run`` (TVM's runtime calling the same
kernel; results written in place) and onnxruntime's ``LSTM`` op. Contenders
take turns. Also recorded: the sizes of what a device gets (weights as C, the
kernels' object; a static armv7 program when the cross compiler is there) and
the export and C build times. Writes ``benchmarks/results/tvm_standalone.json``.

Run: ``python benchmarks/tvm_standalone.py [--quick]``
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from _common import lstm_graph, machine, write

import rnngraph as rg
from rnngraph.tools.bench import native_op_session, timed_together

I, H, T = 64, 256, 100
_CTYPES = {"float32": ctypes.c_float, "float64": ctypes.c_double, "int64": ctypes.c_int64}


def load_standalone(folder: Path, out: Path) -> tuple[Any, Any, dict[str, Any]]:
    """The folder's model as a shared library: its run function, the io struct, the layout."""
    desc = json.loads(next(folder.glob("*.json")).read_text())
    name = desc["name"]
    lib = out / f"lib{name}_{folder.name}.so"
    sources = [str(folder / f"{name}.c"), str(folder / desc["kernel"])]
    cmd = ["gcc", "-std=c11", "-O2", "-shared", "-fPIC", "-o", str(lib), *sources, "-lm"]
    cmd += ["-pthread"] if desc["threads"] else []
    subprocess.run(cmd, check=True)
    fields = [(f["name"], ctypes.POINTER(_CTYPES[f["dtype"]])) for f in desc["fields"]]
    io = type(
        "io", (ctypes.Structure,), {"_fields_": [*fields, ("sequence_lens", ctypes.c_void_p)]}
    )
    so = ctypes.CDLL(str(lib))
    # (attributes, not so[...]: ctypes keeps the attribute's function and its types)
    run, space = getattr(so, f"{name}_run"), getattr(so, f"{name}_workspace_bytes")
    run.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(io), ctypes.c_void_p]
    space.argtypes, space.restype = [ctypes.c_int64, ctypes.c_int64], ctypes.c_size_t
    getattr(so, f"{name}_last_error").restype = ctypes.c_char_p
    return so, io, desc


def aligned(shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
    """A zeroed array whose data starts on a 64-byte boundary."""
    raw = np.zeros(int(np.prod(shape)) * np.dtype(dtype).itemsize + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + raw.size - 64].view(dtype).reshape(shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    reps = 3 if args.quick else 30
    g, p = lstm_graph(I, H)
    rows: list[dict[str, Any]] = []
    sizes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        m = rg.compile(g, target="tvm", params=p)
        t0 = time.perf_counter()
        folder = m.export(out / "one", standalone=True)
        sizes["export_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        load_standalone(folder, out)
        sizes["gcc_build_s"] = round(time.perf_counter() - t0, 2)
        sizes["lstm_c_bytes"] = (folder / "lstm.c").stat().st_size
        sizes["kernel_object_bytes"] = (folder / "lstm_kernel.o").stat().st_size
        sizes["weights_bytes"] = sum(v.nbytes for v in p.values())
        if shutil.which("arm-linux-gnueabihf-gcc"):
            edge = rg.compile(g, target="tvm", params=p, device="armv7")
            arm = edge.export(out / "arm", standalone=True)
            main_c = "int main(void) { lstm_io io = {0}; return lstm_run(0, 0, &io, 0); }"
            (arm / "main.c").write_text(f'#include "lstm.h"\n{main_c}\n')
            exe = out / "lstm_armv7"
            sources = [str(arm / f) for f in ("main.c", "lstm.c", "lstm_kernel.o")]
            cc = ["arm-linux-gnueabihf-gcc", "-std=c11", "-O2", "-static", "-s"]
            subprocess.run([*cc, "-o", str(exe), *sources, "-lm"], check=True)
            sizes["armv7_static_program_bytes"] = exe.stat().st_size
        for B, threads in ((1, 1), (32, 1), (32, 2)):
            if threads > 1:  # the batch split in one group of rows per core, both ways
                m = rg.compile(g, target="tvm", params=p, parallel=True)
                folder = m.export(out / "rows", standalone=True)
            so, io_type, desc = load_standalone(folder, out)
            if threads > 1:
                so.lstm_set_threads(threads)
            rows.append(_row(g, p, m, so, io_type, desc, B, threads, reps))
    doc = {"machine": machine(), "device": "host llvm", "sizes": sizes, "rows": rows}
    print(sizes)
    print(f"wrote {write('tvm_standalone', doc)}")


def _row(
    g: Any, p: Any, m: Any, so: Any, io_type: Any, desc: Any, B: int, threads: int, reps: int
) -> dict[str, Any]:
    """One batch: the standalone model, the TVM runtime and onnxruntime's op, in turns."""
    xs = np.random.default_rng(B).standard_normal((T, B, I)).astype(np.float32)
    want = m.run({"x": xs})
    bufs = {"x": aligned(xs.shape)}
    bufs["x"][...] = xs
    for f in desc["fields"]:
        if f["role"] == "result":
            shape = tuple(T if d == "T" else B if d == "B" else d for d in f["shape"])
            bufs[f["source"]] = aligned(shape, f["dtype"])
    io = io_type()
    for f in desc["fields"]:
        if f["source"] in bufs:
            ptr = bufs[f["source"]].ctypes.data_as(ctypes.POINTER(_CTYPES[f["dtype"]]))
            setattr(io, f["name"], ptr)
    work = aligned((int(so.lstm_workspace_bytes(T, B)),), "uint8")

    def c_run(ws: Any) -> None:
        if so.lstm_run(T, B, ctypes.byref(io), ws) != 0:
            raise RuntimeError(so.lstm_last_error())

    c_run(work.ctypes.data)
    row: dict[str, Any] = {"batch": B, "T": T, "I": I, "H": H, "threads": threads}
    row["max_abs_err_standalone_vs_tvm_runtime"] = float(
        max(np.max(np.abs(bufs[k] - v)) for k, v in want.items())
    )
    ref = rg.run(g, {"x": xs}, p)["y"]
    row["max_abs_err_standalone_vs_reference"] = float(np.max(np.abs(bufs["y"] - ref)))
    sess = native_op_session("LSTM", p, "c", H, threads)
    feeds = {"X": xs, "lens": np.full(B, T, np.int32)}
    contenders = {
        "standalone_c": partial(c_run, work.ctypes.data),
        "standalone_c_malloc": partial(c_run, None),
        "tvm_runtime": partial(m.run, {"x": xs}),
        "onnxruntime_lstm_op": partial(sess.run, ["Y"], feeds),
    }
    row.update(timed_together(contenders, reps, per_turn=10))
    for ours in ("standalone_c", "standalone_c_malloc"):
        for base in ("tvm_runtime", "onnxruntime_lstm_op"):
            ratio = row[ours]["median_ms"] / row[base]["median_ms"]
            row[f"{ours}_vs_{base}"] = round(ratio, 3)
    print(row, flush=True)
    return row


if __name__ == "__main__":
    main()
