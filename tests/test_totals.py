"""Sums over time: values, sequence_lens, the schedule, and misuse."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.ops import total, total_outer

T, B = 6, 3


def test_total_and_total_outer_against_numpy() -> None:
    g = rg.Graph("totals")
    x, y = g.input("x", 4), g.input("y", 5)
    g.output("sx", total(rg.tanh(x)))
    g.output("xy", total_outer(x, y) * 2.0)
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((T, B, 4)), rng.standard_normal((T, B, 5))
    lens = np.array([6, 2, 0])
    out = rg.run(g, {"x": xs, "y": ys}, sequence_lens=lens)
    valid = (np.arange(T)[:, None] < lens[None, :])[..., None]
    np.testing.assert_allclose(out["sx"], np.tanh(xs * valid).sum((0, 1)), atol=1e-12)
    want = 2.0 * np.einsum("tbi,tbj->ij", xs * valid, ys * valid)
    np.testing.assert_allclose(out["xy"], want, atol=1e-12)
    prog = rg.schedule(g)
    assert {g.node(n).op for n in prog.post} == {"total", "total_outer", "mul"}


def test_a_total_cannot_feed_a_step() -> None:
    g = rg.Graph("bad")
    x = g.input("x", 2)
    s = total(x)
    g.output("y", x * s)
    with pytest.raises(rg.GraphError, match="computed from total"):
        rg.verify(g)


def test_static_outputs_need_a_total() -> None:
    g = rg.Graph("bad")
    with pytest.raises(rg.ShapeError, match="time-invariant"):
        g.output("w", g.param("w", 3))
