"""What the bit-sequence examples share: one training update on binary targets.

The loss is the mean binary cross-entropy of the logits on the steps ``mask``
marks; its gradient with respect to the logits is formed here and handed to
``rg.vjp`` as the output's cotangent, the params updated by the optimizer.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

import rnngraph as rg


def bce_update(
    g: rg.Graph,
    params: dict[str, np.ndarray],
    opt: Any,
    x: np.ndarray,
    t: np.ndarray,
    mask: np.ndarray,
    output: str = "logits",
) -> tuple[dict[str, np.ndarray], float]:
    """One update; returns the new params and the bit errors per sequence."""
    logits = rg.run(g, {"x": x}, params)[output]
    prob = 1 / (1 + np.exp(-logits))
    cot = (prob - t) * mask / max(float(mask.sum()) * t.shape[-1], 1.0)
    _, grads = rg.vjp(g, {"x": x}, params, cotangents={output: cot})
    grads = rg.optim.clip_by_norm({k: grads[k] for k in params}, 10.0)
    errors = float((np.abs((prob > 0.5) - t) * mask).sum() / x.shape[1])
    return opt.step(params, grads), errors


def held_out(
    g: rg.Graph, params: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray, mask: np.ndarray
) -> float:
    """Bit errors per sequence on fresh examples, the trained model's ONNX export checked
    against the reference on them first."""
    logits = rg.run(g, {"x": x}, params)["logits"]
    model = rg.compile(g, target="onnx", params=params)
    np.testing.assert_allclose(model.run({"x": x})["logits"], logits, atol=1e-3)
    return float((np.abs((logits > 0) - t) * mask).sum() / x.shape[1])


def save_curve(
    path: str, settings: Any, result: dict[str, float], curve: list[float], seconds: float
) -> None:
    """The settings, result and learning curve (means of 100 updates) as JSON, atomically."""
    doc = {"settings": vars(settings), "result": result, "seconds": seconds}
    doc["curve_per_100"] = [float(np.mean(curve[i : i + 100])) for i in range(0, len(curve), 100)]
    rg.files.atomic_write(path, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")
