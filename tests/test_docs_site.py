"""The documentation site builds with warnings as errors (broken references, malformed
docstrings of public names), its API page lists every public name, and each has an
example."""

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


def test_every_public_name_has_a_runnable_example() -> None:
    """Each reference entry shows a runnable example (the doctests run them)."""
    import inspect

    bare = [
        n
        for n in rg.__all__
        if not n.startswith("__") and ">>>" not in (inspect.getdoc(getattr(rg, n)) or "")
    ]
    assert bare == [], f"public names without an example in their docstring: {bare}"


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


def test_the_gallery_shows_every_example_and_its_pictures() -> None:
    """docs/gallery.md (written by ``python tools/gallery.py examples``) has an entry for
    every script in examples/, and every picture a page shows is in the repository."""
    import re

    from tools.gallery import NO_PICTURE, SIZES, examples

    page = (ROOT / "docs" / "gallery.md").read_text()
    assert set(examples()) == set(SIZES), "give the new example a gallery size in tools/gallery.py"
    for name in examples():
        assert f"python examples/{name}.py" in page, (
            f"run: python tools/gallery.py examples --only {name}"
        )
        if name not in NO_PICTURE:
            assert f"](gallery/{name}" in page, f"{name} drew no picture"
    for md in [ROOT / "docs" / "gallery.md", ROOT / "docs" / "performance.md"]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md.read_text()):
            assert (md.parent / target).is_file(), f"{md.name} shows a missing picture {target}"
