"""Calibration: the range of every value of a float graph over the user's batches.

The graph runs in the reference interpreter with every float signal as an extra
output, so a value's range covers all its steps (a state's over the whole sequence)
and only the valid ones (each row to its ``sequence_lens``). Ranges are min/max, or a
symmetric percentile of the magnitudes (robust to rare outliers), from a bounded
sample of each value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph
from rnngraph.runtime.interpreter import run

__all__ = ["Range", "calibrate"]

_SAMPLE = 200_000  # values kept per node for percentiles


@dataclass
class Range:
    """What calibration saw of one value: its extremes, its RMS and a sample."""

    lo: float = np.inf
    hi: float = -np.inf
    sum_sq: float = 0.0
    count: int = 0
    sample: np.ndarray | None = None

    def add(self, values: np.ndarray, rng: np.random.Generator) -> None:
        if values.size == 0:
            return
        self.lo = min(self.lo, float(values.min()))
        self.hi = max(self.hi, float(values.max()))
        self.sum_sq += float(np.sum(values.astype(np.float64) ** 2))
        self.count += values.size
        take = values if values.size <= _SAMPLE else rng.choice(values, _SAMPLE, replace=False)
        both = take if self.sample is None else np.concatenate([self.sample, take])
        if both.size > _SAMPLE:
            both = rng.choice(both, _SAMPLE, replace=False)
        self.sample = both

    @property
    def rms(self) -> float:
        return float(np.sqrt(self.sum_sq / max(self.count, 1)))

    def bounds(self, percentile: float | None) -> tuple[float, float]:
        """``(lo, hi)``: the extremes, or ``±`` the ``percentile`` of the magnitudes."""
        if not self.count:
            return 0.0, 0.0
        if percentile is None or self.sample is None:
            return self.lo, self.hi
        m = float(np.percentile(np.abs(self.sample), percentile))
        return max(self.lo, -m), min(self.hi, m)


def _probe(graph: Graph, nodes: list[int]) -> Graph:
    g = graph.copy(f"{graph.name}.calibration")
    for nid in nodes:
        g.output(f"calib:{nid}", g.value(nid))
    return g


def calibrate(
    graph: Graph,
    params: Mapping[str, np.ndarray],
    batches: Iterable[Mapping[str, Any]],
    nodes: list[int],
    *,
    seed: int = 0,
) -> dict[int, Range]:
    """The :class:`Range` of each of ``nodes`` (float signals of ``graph``) over ``batches``.

    Each batch maps input names to arrays, with optional ``"sequence_lens"`` and
    ``"initial_states"`` (as :func:`rnngraph.run` takes them).
    """
    probe = _probe(graph, nodes)
    rng = np.random.default_rng(seed)
    ranges = {nid: Range() for nid in nodes}
    seen = 0
    for batch in batches:
        if not isinstance(batch, Mapping):
            raise GraphError(f"calibration batches are dicts of inputs, got {type(batch).__name__}")
        feeds = {k: v for k, v in batch.items() if k not in ("sequence_lens", "initial_states")}
        lens = batch.get("sequence_lens")
        out = run(
            probe, feeds, params, sequence_lens=lens, initial_states=batch.get("initial_states"),
            dtype=np.float64,
        )  # fmt: skip
        for nid in nodes:
            v = np.asarray(out[f"calib:{nid}"])
            seq = v.ndim == len(graph.node(nid).type.shape) + 1  # (T, B, ...) or (B, ...)
            if seq and lens is not None:
                T = v.shape[0]
                valid = np.arange(T)[:, None] < np.asarray(lens)[None, :]
                v = v[valid]
            ranges[nid].add(np.ravel(v), rng)
        seen += 1
    if not seen:
        raise GraphError("calibration needs at least one batch of inputs")
    return ranges
