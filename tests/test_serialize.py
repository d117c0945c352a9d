"""Saving and loading round-trips structure, delays, initial values and params exactly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import rnngraph as rg
from rnngraph.ir.serialize import to_json


def _rich_graph() -> rg.Graph:
    g = rg.Graph("rich")
    x = g.input("x", 4)
    y = rg.cells.lstm(x, 6, name="enc", direction="bidirectional", peepholes=True)
    y = rg.cells.narx(y, 5, 2, input_taps=2, output_taps=3, name="nx")
    h = g.state("acc", 2, init=np.array([0.5, -0.5]))
    g.assign(h, h + y)
    g.output("y", y)
    g.output("tap", rg.delay(y, 2, init="param", name="tap"))
    return g


def test_round_trip_exact(tmp_path, rng: np.random.Generator) -> None:
    g = _rich_graph()
    p = g.init_params(seed=5)
    path = g.save(tmp_path / "rich.json", params=p)
    g2 = rg.load(path)
    p2 = rg.load_params(path)
    assert to_json(g2) == to_json(g)
    assert sorted(p2) == sorted(p)
    for k in p:
        np.testing.assert_array_equal(p2[k], p[k])
        assert p2[k].dtype == p[k].dtype
    xs = rng.standard_normal((6, 3, 4)).astype(np.float32)
    a, b = rg.run(g, {"x": xs}, p), rg.run(g2, {"x": xs}, p2)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_saving_is_deterministic_and_leaves_no_temp_files(tmp_path) -> None:
    g = _rich_graph()
    p = g.init_params()
    g.save(tmp_path / "a", params=p)
    g.save(tmp_path / "b", params=p)
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    assert sorted(os.listdir(tmp_path)) == ["a.json", "a.npz", "b.json", "b.npz"]


def test_loaded_graph_can_grow(tmp_path, rng: np.random.Generator) -> None:
    """A loaded graph takes new nodes (automatic names clear of the loaded ones), and
    they compute what they say."""
    src = _rich_graph()
    p = src.init_params(seed=2)
    g = rg.load(src.save(tmp_path / "m"))
    g.output("z", rg.tanh(g.value("nx.out"), name="extra") + 1.0)
    xs = {"x": rng.standard_normal((5, 2, 4)).astype(np.float32)}
    got = rg.run(g, xs, p)
    src.output("nx_out", src.value("nx.out"))  # the source's own value, read out
    want = rg.run(src, xs, p)
    np.testing.assert_allclose(got["y"], want["y"])
    np.testing.assert_allclose(got["z"], np.tanh(want["nx_out"]) + 1.0, rtol=1e-6)


def test_saved_files_keep_no_absolute_paths(tmp_path) -> None:
    """Saved JSON recorded the absolute path of the user's script for every node."""
    g = rg.Graph("m")
    g.output("y", rg.cells.gru(g.input("x", 3), 4, name="gru"))
    text = Path(g.save(tmp_path / "m", g.init_params())).read_text()
    here = Path(__file__).resolve()
    assert str(here.parent) not in text and f'"{here.name}:' in text
    assert rg.load(tmp_path / "m.json").node("gru.W").origin.startswith(here.name + ":")
