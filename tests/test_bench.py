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
