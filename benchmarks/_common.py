"""What the benchmark scripts share: the machine description and the timer (from
:mod:`rnngraph.bench`) and an atomic JSON writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rnngraph.bench import machine, timed

__all__ = ["RESULTS", "machine", "timed", "write"]

RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, doc: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` (atomically) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return path
