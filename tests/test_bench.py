"""``rnngraph bench``: rows cross-check every engine; the performance page's table
(docs/performance.md) is the committed JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnngraph.tools.bench import (
    README_END,
    README_START,
    _row,
    _training_row,
    _tree_rows,
    markdown_table,
)  # fmt: skip

ROOT = Path(__file__).resolve().parents[1]


def test_a_row_times_every_engine_after_checking_it() -> None:
    row = _row("GRU", 16, 4, 2, 1, peak=50.0, repeats=2)
    for engine in ("ours_onnx", "reference", "ort_native_op"):
        assert row[engine]["median_ms"] > 0 and row[engine]["max_abs_err"] < 1e-4
    assert row["best_baseline"] in ("ort_native_op", "torch_eager", "ort_torch_export")


def test_readme_table_is_generated_from_committed_json() -> None:
    readme = (ROOT / "docs" / "performance.md").read_text()
    section = readme.split(README_START, 1)[1].split(README_END, 1)[0]
    doc = json.loads((ROOT / "benchmarks/results/bench.json").read_text())
    assert markdown_table(doc) in section


@pytest.mark.slow
def test_gradient_and_tree_rows_check_every_engine_then_time_them() -> None:
    """The forward + gradients rows (our adjoint graph in onnxruntime and as a TVM kernel,
    PyTorch autograd) and the tree rows (level-batched ONNX and TVM, per-node PyTorch)
    check each engine against the reference before timing it; the page renders them."""
    pytest.importorskip("torch")
    pytest.importorskip("tvm")
    row = _training_row(16, 5, 3, 1, repeats=2)
    for engine in ("ours_onnx", "ours_tvm", "torch_autograd"):
        assert row[engine]["median_ms"] > 0
    assert row["ours_tvm_over_torch"] > 0 and row["ours_onnx_compile_s"] > 0
    trees = _tree_rows([1, 3], 1, repeats=2, features=6, hidden=5)
    assert [r["trees"] for r in trees] == [1, 3] and trees[1]["nodes"] >= 30
    for r in trees:
        assert r["ours_tvm_speedup_vs_torch"] > 0 and r["torch_per_node"]["median_ms"] > 0
    machine = {"cpu": "x", "isa": [], "cores": 1, "onnxruntime": "", "torch": ""}
    sizes = {"features": 6, "hidden": 5}
    doc = {"rows": [], "training": [row], "trees": trees, "machine": machine,
           "tree_sizes": sizes, "peak_gflops_by_threads": {1: 1.0}}  # fmt: skip
    table = markdown_table(doc)
    assert "| 16 | 5 | 3 | 1 |" in table and "| torch per node |" in table


def test_steady_malloc_keeps_large_buffers_for_the_next_call() -> None:
    """With glibc's default a 48 MB buffer is mapped for its allocation and unmapped when
    freed (the next call maps and faults in fresh pages: what PyTorch's training step paid
    in a fresh process); after steady_malloc it stays in the heap for the next one, which
    is what the benchmarks now give every contender."""
    import platform
    import subprocess
    import sys

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's malloc only")
    script = (
        "import os, sys, numpy as np\n"
        "from rnngraph.tools.bench import steady_malloc\n"
        "if sys.argv[1] == 'steady': steady_malloc()\n"
        "page = os.sysconf('SC_PAGESIZE')\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * page\n"
        "a = np.ones(6_000_000)\n"
        "held = rss()\n"
        "del a\n"
        "print((held - rss()) >> 20)\n"
    )

    def returned_mb(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", script, mode], capture_output=True,
                             text=True, check=True)  # fmt: skip
        return int(run.stdout)

    assert returned_mb("default") >= 40  # (given back to the system when freed)
    assert returned_mb("steady") < 8  # (kept for the next allocation)
