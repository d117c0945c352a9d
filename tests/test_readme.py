"""The README's Python examples run as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["out"]["logits"].shape == (12, 3, 5)  # type: ignore[index]
    assert namespace["roots"].shape == (3, 150)  # type: ignore[attr-defined]
    assert sorted(os.listdir(tmp_path)) == [
        "kws.tflite", "loss.svg", "tagger.json", "tagger.npz", "tagger.onnx"
    ]  # fmt: skip
    assert namespace["step"]["logits"].shape == (16, 12)  # type: ignore[index]
    grads = namespace["grads"]
    assert grads["lstm.W"].shape == (128, 8)  # type: ignore[index]
    assert namespace["result"].history.losses  # type: ignore[attr-defined]
    assert set(namespace["g3"].outputs) == {"logits"}  # type: ignore[attr-defined]
    assert namespace["nout"]["weights"].shape == (6, 4, 9)  # type: ignore[index]
    assert namespace["step_out"]["logits"].shape == (4, 10)  # type: ignore[index]
