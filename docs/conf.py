"""Sphinx configuration of rnngraph's documentation site.

Sphinx, because the API reference comes straight from the numpydoc docstrings
(autodoc + napoleon, one entry per public name by autosummary), and the guide stays
Markdown (myst-parser) that GitHub renders as it is. Build: ``python -m sphinx -b html
docs docs/_build/html`` (``-W`` turns warnings into errors, as the test does).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rnngraph  # noqa: E402

project = "rnngraph"
author = "the rnngraph team"
release = rnngraph.__version__
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "README.md"]
autosummary_generate = True
autodoc_default_options = {"members": False}
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing", "myst.header"]
html_theme = "furo"
html_title = f"rnngraph {release}"
