"""What the benchmark scripts share: the machine description and the timer."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

import rnngraph as rg

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, object]:
    """CPU model, ISA flags of interest, core count and library versions."""
    cpu, flags = "", []
    if os.path.exists("/proc/cpuinfo"):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = sorted(have & {"avx2", "avx512f", "avx512_bf16", "fma", "amx_tile"})
    info: dict[str, object] = {
        "cpu": cpu,
        "isa": flags,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "rnngraph": rg.__version__,
    }
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    return info


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median and p90 wall time in ms after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 4),
        "p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 4),
    }


def write(name: str, doc: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` (atomically) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return path
