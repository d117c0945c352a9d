"""The README's and the guide's Python examples run as written, each page on its own."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))


def _run(path: Path, tmp_path: Path, monkeypatch) -> dict[str, object]:
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(path), "exec"), namespace)
    return namespace


def test_readme_python_blocks_run(tmp_path, monkeypatch) -> None:
    ns = _run(README, tmp_path, monkeypatch)
    assert ns["out"]["logits"].shape == (12, 3, 5)  # type: ignore[index]
    assert sorted(os.listdir(tmp_path)) == ["tagger.json", "tagger.npz", "tagger.onnx"]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_guide_python_blocks_run(page: Path, tmp_path, monkeypatch) -> None:
    ns = _run(page, tmp_path, monkeypatch)
    checks = {
        "training.md": lambda: (
            ns["grads"]["lstm.W"].shape == (128, 8)  # type: ignore[index]
            and bool(ns["result"].history.losses)  # type: ignore[attr-defined]
            and (tmp_path / "loss.svg").exists()
        ),
        "trees.md": lambda: ns["roots"].shape == (3, 150),  # type: ignore[attr-defined]
        "axes.md": lambda: ns["nout"]["weights"].shape == (6, 4, 9),  # type: ignore[index]
        "int8.md": lambda: (
            ns["step"]["logits"].shape == (16, 12)  # type: ignore[index]
            and (tmp_path / "kws.tflite").exists()
            and ns["out"]["logits"].shape == (40, 16, 12)  # type: ignore[index]
            and (tmp_path / "firmware" / "rg_model.c").exists()
        ),
        "tvm.md": lambda: np.allclose(ns["ys"], ns["m"].run({"x": ns["xs"]})["logits"]),  # type: ignore[attr-defined,index]
    }
    check = checks.get(page.name)
    assert check is None or check(), page.name
