"""Elman, Jordan, IndRNN, FIR, NARX and stacked layers against numpy loops written here."""

from __future__ import annotations

import numpy as np

import rnngraph as rg

T, B, I = 8, 3, 4
XS = np.random.default_rng(11).standard_normal((T, B, I))


def _run(build, seed: int = 0):
    g = rg.Graph("cell")
    g.output("y", build(g.input("x", I)))
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=seed).items()}
    return g, p, rg.run(g, {"x": XS}, p)


def test_elman() -> None:
    _, p, out = _run(lambda x: rg.cells.elman(x, 6, 2, name="e"))
    h = np.zeros((B, 6))
    for t in range(T):
        h = np.tanh(XS[t] @ p["e.in.W"] + p["e.in.b"] + h @ p["e.rec.W"])
        np.testing.assert_allclose(out["y"][t], h @ p["e.out.W"] + p["e.out.b"], atol=1e-12)
    np.testing.assert_allclose(out["e.h_final"], h, atol=1e-12)


def test_jordan() -> None:
    _, p, out = _run(lambda x: rg.cells.jordan(x, 6, 2, name="j", output_activation="sigmoid"))
    y = np.zeros((B, 2))
    for t in range(T):
        h = np.tanh(XS[t] @ p["j.in.W"] + p["j.in.b"] + y @ p["j.rec.W"])
        y = 1 / (1 + np.exp(-(h @ p["j.out.W"] + p["j.out.b"])))
        np.testing.assert_allclose(out["y"][t], y, atol=1e-12)


def test_indrnn_reverse() -> None:
    _, p, out = _run(lambda x: rg.cells.indrnn(x, 5, name="ind", direction="reverse"))
    h = np.zeros((B, 5))
    for t in reversed(range(T)):
        h = np.maximum(XS[t] @ p["ind.W"] + p["ind.u"] * h + p["ind.b"], 0)
        np.testing.assert_allclose(out["y"][t], h, atol=1e-12)
    np.testing.assert_allclose(out["ind.h_final"], h, atol=1e-12)


def test_fir_is_time_parallel_and_correct() -> None:
    K = 3
    g, p, out = _run(lambda x: rg.cells.fir(x, 2, taps=K, name="f"))
    assert rg.recurrent_regions(g) == []
    assert len(rg.fir_taps(g)) == K
    W = p["f.W"].reshape(K + 1, I, 2)
    for t in range(T):
        y = p["f.b"] + sum(XS[t - k] @ W[k] for k in range(K + 1) if t - k >= 0)
        np.testing.assert_allclose(out["y"][t], y, atol=1e-12)


def test_narx() -> None:
    a, b = 2, 3
    _, p, out = _run(lambda x: rg.cells.narx(x, 7, 2, input_taps=a, output_taps=b, name="n"))
    ys: list[np.ndarray] = []
    for t in range(T):
        past_x = [XS[t - k] if t - k >= 0 else np.zeros((B, I)) for k in range(a + 1)]
        past_y = [ys[t - k] if t - k >= 0 else np.zeros((B, 2)) for k in range(1, b + 1)]
        h = np.tanh(np.concatenate(past_x + past_y, -1) @ p["n.hidden.W"] + p["n.hidden.b"])
        ys.append(h @ p["n.out.W"] + p["n.out.b"])
        np.testing.assert_allclose(out["y"][t], ys[-1], atol=1e-12)


def test_stacked_lstm_equals_layer_by_layer() -> None:
    g, p, out = _run(lambda x: rg.cells.stacked(rg.cells.lstm, x, [5, 3], name="s"))
    # Layer by layer through separate graphs with the same weights.
    g1 = rg.Graph("l0")
    g1.output("y", rg.cells.lstm(g1.input("x", I), 5, name="s.0"))
    y0 = rg.run(g1, {"x": XS}, {k: v for k, v in p.items() if k.startswith("s.0.")})["y"]
    g2 = rg.Graph("l1")
    g2.output("y", rg.cells.lstm(g2.input("x", 5), 3, name="s.1"))
    y1 = rg.run(g2, {"x": y0}, {k: v for k, v in p.items() if k.startswith("s.1.")})["y"]
    np.testing.assert_allclose(out["y"], y1, atol=1e-12)
    assert len(rg.recurrent_regions(g)) == 2


def test_the_catalog_lists_every_cell_and_the_readme_shows_it() -> None:
    """Each cell function of rg.cells is in the catalog (``rnngraph inspect --cells``),
    and the guide's cell table (docs/guide/cells.md) is the catalog's."""
    import inspect
    from pathlib import Path

    from rnngraph.cells.catalog import CATALOG, table

    helpers = {"activation", "hebbian", "inverse_sigmoid_schedule", "teacher_mask"}
    helpers |= {"reservoir_weights", "lif_step"}
    cells = {
        n
        for n in rg.cells.__all__
        if n not in helpers and (inspect.isfunction(getattr(rg.cells, n)) or n == "Feedback")
    }
    listed = {n for e in CATALOG for n in e.names}
    assert cells - listed == set(), "add these to rnngraph/cells/catalog.py"
    assert listed - cells == set(), "the catalog names cells that do not exist"
    page = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "cells.md").read_text()
    assert table() in page, "regenerate docs/guide/cells.md's table from catalog.table()"
