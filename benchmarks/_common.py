"""What the benchmark scripts share: the machine description and the timer (from
:mod:`rnngraph.tools.bench`), PyTorch when it is installed, and an atomic JSON writer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rnngraph.files import atomic_write
from rnngraph.tools.bench import machine, steady_malloc, timed

__all__ = [
    "NO_TORCH",
    "RESULTS",
    "kws_utterances",
    "lstm_graph",
    "machine",
    "one_thread_models",
    "timed",
    "torch_with",
    "vela",
    "write",
]

RESULTS = Path(__file__).resolve().parent / "results"

# Compile times are reported: every build here is a cold one, not a load from the user's
# kernel cache (set the variable to a folder to time loads instead).
os.environ.setdefault("RNNGRAPH_TVM_KERNEL_CACHE", "off")
# Every contender's large buffers reused, not mapped afresh on each call (see steady_malloc).
MALLOC = steady_malloc()

NO_TORCH = "skipped: PyTorch is not installed (pip install '.[bench]')"
"""What a row records in place of a PyTorch baseline that could not run."""


def torch_with(threads: int) -> Any:
    """PyTorch with ``threads`` intra-op threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def write(name: str, doc: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` (atomically, with the allocator the run used) and
    return its path."""
    return atomic_write(
        RESULTS / f"{name}.json", json.dumps({**doc, "malloc": MALLOC}, indent=1) + "\n"
    )


def lstm_graph(inputs: int, hidden: int) -> tuple[Any, dict[str, Any]]:
    """The TVM benchmarks' LSTM (input ``x``, output ``y``, a cell ``c``) and its float32
    parameters (seed 0)."""
    import numpy as np

    import rnngraph as rg

    g = rg.Graph("lstm")
    g.output("y", rg.cells.lstm(g.input("x", inputs), hidden, name="c"))
    return g, {k: v.astype(np.float32) for k, v in g.init_params(seed=0).items()}


def one_thread_models(g: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Our ONNX and TVM models of ``g``, one thread each (TVM's kernel is serial unless
    compiled with ``parallel=``), keyed ``"ours_onnx"``, ``"ours_tvm"``."""
    import rnngraph as rg

    return {
        "ours_onnx": rg.compile(g, target="onnx", params=params, threads=1),
        "ours_tvm": rg.compile(g, target="tvm", params=params),
    }


def kws_utterances(
    n: int, rng: Any, templates: list[Any], steps: int = 40, noise: float = 1.5
) -> tuple[Any, Any, Any]:
    """Synthetic keyword utterances: each class's template (4 knots of ``F`` features)
    stretched to 20..``steps`` frames and noised; ``(x (T, n, F), labels, lengths)``."""
    import numpy as np

    F = templates[0].shape[1]
    x = np.zeros((steps, n, F), np.float32)
    labels = rng.integers(0, len(templates), n)
    lens = np.zeros(n, int)
    for b, c in enumerate(labels):
        frames = int(rng.integers(20, steps + 1))
        at = np.linspace(0, 3, frames)
        curve = np.stack([np.interp(at, range(4), templates[c][:, f]) for f in range(F)], 1)
        x[:frames, b] = curve + noise * rng.normal(size=curve.shape)
        lens[b] = frames
    return x, labels, lens


def train_kws(cell: str, hidden: int, steps: int, F: int = 10, C: int = 12) -> dict[str, Any]:
    """A keyword classifier (``cell`` of ``hidden`` units, ``F`` features, ``C`` classes)
    trained in float on ``steps`` batches of 32 synthetic utterances: the graph
    (input ``x``, output ``logits``), params, calibration batches, the templates (for
    held-out utterances) and the training seconds."""
    import time

    import numpy as np

    import rnngraph as rg

    rng = np.random.default_rng(1)
    templates = [rng.normal(size=(4, F)) for _ in range(C)]
    g = rg.Graph("kws" if cell == "gru" else f"kws_{cell}")
    h = getattr(rg.cells, cell)(g.input("x", F), hidden, name=cell)
    g.output("logits", rg.linear(h, C, name="out"))
    eye = np.eye(C, dtype=np.float32)
    data = []
    for _ in range(steps):
        x, labels, lens = kws_utterances(32, rng, templates)
        t = np.broadcast_to(eye[labels], (x.shape[0], *eye[labels].shape)).copy()
        data.append({"x": x, "t": t, "sequence_lens": lens})
    t0 = time.perf_counter()
    result = rg.train(
        g, g.init_params(seed=0), data, loss=rg.losses.softmax_cross_entropy("t"),
        optimizer=rg.optim.Adam(1e-2), clip_norm=5.0, progress=False,
    )  # fmt: skip
    calibration = [{"x": d["x"], "sequence_lens": d["sequence_lens"]} for d in data[:4]]
    return {"graph": g, "params": result.params, "calibration": calibration,
            "templates": templates, "train_s": time.perf_counter() - t0}  # fmt: skip


def vela(path: Path, config: str, out: Path) -> dict[str, Any]:
    """Arm's Vela on a .tflite for an accelerator configuration: its summary's figures."""
    import csv
    import re
    import shutil
    import subprocess

    exe = shutil.which("vela")
    assert exe, "Arm's Vela is not installed (pip install '.[edge]')"
    res = subprocess.run(
        [exe, str(path), "--accelerator-config", config, "--output-dir", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    cpu = int(re.search(r"CPU operators = (\d+)", res.stdout).group(1))  # type: ignore[union-attr]
    npu = int(re.search(r"NPU operators = (\d+)", res.stdout).group(1))  # type: ignore[union-attr]
    (summary,) = out.glob(f"{path.stem}_summary_*.csv")
    row = next(csv.DictReader(summary.open()))
    return {
        "npu_operators": npu,
        "cpu_operators": cpu,
        "npu_share": npu / max(npu + cpu, 1),
        "cycles_npu": int(float(row["cycles_npu"])),
        "cycles_total": int(float(row["cycles_total"])),
        "sram_kib": float(row["sram_memory_used"]),
        "flash_kib": float(row.get("off_chip_flash_memory_used", "nan") or "nan"),
        "steps_per_second": float(row["inferences_per_second"]),
    }
