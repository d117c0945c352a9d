"""Keyword-spotting-sized LSTM and GRU steps on Arm Ethos-U NPUs, compiled by Vela.

Each cell (10 inputs, 64 units, a 12-class readout) is quantised by ``rg.quantize``
in TFLite's all-int8 scheme and in the 8x8_16 one (int16 states, as TFLite's LSTM),
calibrated on random batches (the figures below do not depend on the weights'
values); its step is exported by ``rg.compile(..., target="tflite", mode="step")``,
checked in LiteRT against the quantised reference, and compiled by Arm's Vela for
several accelerator configurations. From Vela's summary: the share of operators
placed on the NPU, NPU cycles, total cycles, SRAM and flash used, and inferences
(steps) per second at the configuration's clock.
Writes ``benchmarks/results/ethos_u_vela.json``.

Run: ``python benchmarks/ethos_u_vela.py`` (needs ``pip install '.[edge]'``)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine, vela, write

import rnngraph as rg

CONFIGS = ["ethos-u55-64", "ethos-u55-128", "ethos-u65-256", "ethos-u85-256"]


SCHEMES = {"int8": {"states": "int8", "vectors": "int8"}, "8x8_16": {}}


def step_model(cell: str, scheme: str) -> tuple[Any, Any, Any]:
    g = rg.Graph(f"kws_{cell}")
    h = getattr(rg.cells, cell)(g.input("x", 10), 64, name="c")
    g.output("y", rg.linear(h, 12, name="out"))
    rng = np.random.default_rng(0)
    cal = [{"x": rng.normal(size=(40, 16, 10)).astype(np.float32)} for _ in range(2)]
    qg, qp = rg.quantize(g, g.init_params(seed=0), calibration=cal, **SCHEMES[scheme])
    return g, qg, qp


def main() -> None:
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cell, scheme in [(c, s) for c in ("lstm", "gru") for s in SCHEMES]:
            g, qg, qp = step_model(cell, scheme)
            m = rg.compile(qg, target="tflite", params=qp, mode="step")
            x = np.random.default_rng(1).normal(size=(1, 10)).astype(np.float32)
            got = m.run({"x": x})
            want = rg.run(qg, {"x": x[None]}, qp)
            err = float(np.abs(got["y"] - want["y"][0]).max() / m.grids["y"].scale)
            path = m.save(Path(tmp) / f"{cell}_{scheme.replace('x', '_')}.tflite")
            rows[f"{cell} {scheme}"] = {
                "tflite_bytes": path.stat().st_size,
                "float_param_bytes": sum(
                    v.astype(np.float32).nbytes for v in g.init_params(seed=0).values()
                ),
                "litert_vs_reference_steps": err,
                "vela": {c: vela(path, c, Path(tmp) / c) for c in CONFIGS},
            }
    doc = {
        "benchmark": "ethos_u_vela",
        "what": "one step of a 64-unit cell (10 inputs, 12 classes), all-int8 TFLite, Vela "
        "default system configuration per accelerator",
        "machine": machine(),
        "anchor_converter": "not run: TensorFlow's TFLiteConverter (the anchor's int8 LSTM "
        "path) is not installed here; its wheel is not among this machine's packages",
        "cells": rows,
    }
    print(write("ethos_u_vela", doc))
    for cell, r in rows.items():
        for c, v in r["vela"].items():
            print(
                f"{cell} {c:14s} NPU {v['npu_operators']}/{v['npu_operators'] + v['cpu_operators']}"
                f" ops, {v['cycles_npu']} NPU cycles, {v['cycles_total']} total, "
                f"{v['sram_kib']:.2f} KiB SRAM, {v['steps_per_second']:.0f} steps/s"
            )


if __name__ == "__main__":
    main()
