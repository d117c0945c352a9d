"""Integer-only LSTM inference on the host CPU: TVM's integer kernels against its float ones.

The LSTM of ``tvm_lstm.py`` (I=64 H=256 T=100), quantised (int8 weights and activations,
int16 state: ``rg.quantize``) and written as integer-only ops (``rg.quant.to_integer``),
compiled by the TVM backend with this CPU's integer dot products (AVX-512 VNNI's
``vpdpbusd``/``vpdpwssd`` where the CPU has them: ``int8_dot`` in ``print(m.plan)``), with
plain int32 multiply-adds (the plan's ``int8_dot`` turned off), and the float LSTM for
scale; one thread each, batch 1, 4 and 32. Every integer result is first checked to equal
the integer graph's reference bit for bit. The contenders run in turns. Writes
``benchmarks/results/tvm_integer.json``.

``--mcpu haswell`` builds all three for another x86 CPU this one can run (here: AVX2's
``vpmaddwd`` for the integer products), ``--out`` names the results file.

Run: ``python benchmarks/tvm_integer.py [--quick] [--mcpu NAME --out NAME]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from _common import lstm_graph, machine, write

import rnngraph as rg
from rnngraph.tools.bench import timed_together


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls")
    ap.add_argument("--mcpu", help="build for this LLVM CPU (one this machine can run)")
    ap.add_argument("--out", default="tvm_integer", help="results/<OUT>.json")
    args = ap.parse_args(argv)

    I, H, T = 64, 256, 100
    g, p = lstm_graph(I, H)
    rng = np.random.default_rng(0)
    cal = rng.normal(size=(T, 8, I)).astype("float32")
    qg, qp = rg.quantize(g, p, calibration=[{"x": cal}])
    ig, ip = rg.quant.to_integer(qg, qp)
    kw = {"target": "tvm", "device": {"kind": "llvm", "mcpu": args.mcpu} if args.mcpu else None}
    integer = rg.compile(ig, params=ip, threads=1, **kw)  # the plan derived for that CPU
    plan = integer.plan
    plain_cpu = dataclasses.replace(plan.cpu, int8_dot="")
    models = {
        "tvm_integer": integer,
        "tvm_integer_plain": rg.compile(ig, params=ip, plan=plan.replace(cpu=plain_cpu), **kw),
        "tvm_float": rg.compile(g, params=p, plan=plan, **kw),
    }
    rows = []
    for B in (1, 4, 32):
        xs = {"x": rng.normal(size=(T, B, I)).astype("float32")}
        want = rg.run(ig, xs, ip)["y"]
        for k in ("tvm_integer", "tvm_integer_plain"):
            assert np.array_equal(models[k].run(xs)["y"], want), k
        stats = timed_together(
            {k: (lambda m=m, xs=xs: m.run(xs)) for k, m in models.items()}, 10 if args.quick else 40
        )
        row = {"batch": B, "T": T, "I": I, "H": H, "threads": 1, **stats}
        med = {k: v["median_ms"] for k, v in stats.items()}
        row["integer_vs_float"] = round(med["tvm_integer"] / med["tvm_float"], 2)
        row["plain_integer_vs_float"] = round(med["tvm_integer_plain"] / med["tvm_float"], 2)
        row["dot_product_speedup"] = round(med["tvm_integer_plain"] / med["tvm_integer"], 2)
        rows.append(row)
        print(B, med, row["integer_vs_float"], row["dot_product_speedup"])
    doc = {
        "machine": machine(),
        "built_for": plan.cpu.name,
        "int8_dot": plan.cpu.int8_dot or "none",
        "rows": rows,
    }
    print(write(args.out, doc))
    return doc


if __name__ == "__main__":
    main()
