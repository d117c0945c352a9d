"""``rnngraph bench``: rows cross-check every engine; the performance page's table
(docs/performance.md) is the committed JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rnngraph.tools.bench import README_END, README_START, _row, markdown_table

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
