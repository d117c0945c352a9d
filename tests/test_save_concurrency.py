"""Saves to one path from several processes at once, read meanwhile.

``g.save`` wrote the ``.npz`` and then the ``.json``: two processes saving to one
path left one's JSON with the other's weights (1 in 12 trials), and a reader loaded
mixed pairs (37 in 5,402 loads). Now the pair is written under a lock on its folder
and the ``.json`` records its ``.npz``'s hash: a reader gets one save or a typed error.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np

import rnngraph as rg
from rnngraph.ir import deserialize
from rnngraph.tools.drawing import draw
from tests.zoo import elman_graph


def _writer(path: str, value: float, rounds: int) -> None:
    g = elman_graph()
    g.meta["writer"] = value
    params = {k: np.full(v.shape, value, v.dtype) for k, v in g.init_params().items()}
    for _ in range(rounds):
        g.save(path, params)


def _consistent(path: Path) -> bool:
    doc, arrays = deserialize._read(path)  # one read of the pair, as load and load_params do
    values = {float(v.flat[0]) for k, v in arrays.items() if k.startswith("param::")}
    return values == {doc["meta"]["writer"]}


def test_two_writers_and_a_reader_never_mix(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    _writer(str(path), 0.0, 1)
    ctx = mp.get_context("fork")
    writers = [ctx.Process(target=_writer, args=(str(path), v, 60)) for v in (1.0, 2.0)]
    for w in writers:
        w.start()
    reads = refused = 0
    while any(w.is_alive() for w in writers):
        try:
            assert _consistent(path)
            reads += 1
        except rg.SerializationError:
            refused += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert _consistent(path)  # what the writers left: one pair
    assert reads > refused


def test_a_pair_that_does_not_match_is_refused(tmp_path: Path) -> None:
    g = elman_graph()
    a = g.save(tmp_path / "a", g.init_params(seed=1))
    g.save(tmp_path / "b", g.init_params(seed=2))
    (tmp_path / "a.npz").write_bytes((tmp_path / "b.npz").read_bytes())
    for read in (rg.load, rg.load_params):
        try:
            read(a)
        except rg.SerializationError as e:
            assert "content hash differs" in str(e)
        else:
            raise AssertionError(f"{read.__name__} read a mixed pair")


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    """Files written through the atomic helper came out 0600 (mkstemp's mode) while
    .onnx files were 0644: every file follows the umask, as other tools' files do."""
    import os

    from tests import zoo

    old = os.umask(0o027)
    try:
        g = zoo.CELLS["gru"]()
        p = zoo.params_for(g)
        written = [
            Path(g.save(tmp_path / "g", p)),
            tmp_path / "g.npz",
            Path(rg.compile(g, target="onnx", params=p).save(tmp_path / "g.onnx")),
            Path(draw(g, tmp_path / "g.dot")),
        ]
    finally:
        os.umask(old)
    for f in written:
        assert f.stat().st_mode & 0o777 == 0o640, f
