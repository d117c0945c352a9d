"""The documentation site builds with warnings as errors (broken references, malformed
docstrings of public names), and its API page lists every public name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rnngraph as rg

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_page_lists_every_public_name() -> None:
    page = (ROOT / "docs" / "api.md").read_text()
    listed = {line.strip() for line in page.splitlines() if line.startswith("   ")}
    public = {n for n in rg.__all__ if not n.startswith("__")}
    assert public - listed == set(), "add the new public names to docs/api.md"
    assert listed - public - {":toctree: generated"} == set()


@pytest.mark.slow
def test_the_site_builds_without_warnings(tmp_path) -> None:
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("furo")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", str(ROOT / "docs"),
         str(tmp_path / "html")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "html" / "generated" / "rnngraph.quantize.html").exists()
    assert (tmp_path / "html" / "guide" / "int8.html").exists()
