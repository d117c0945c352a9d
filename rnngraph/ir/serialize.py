"""Saving graphs: versioned JSON for structure, ``.npz`` for arrays (loading them:
:mod:`rnngraph.ir.deserialize`).

``save(graph, "model.json", params)`` writes ``model.json`` (nodes, edges
with delays and initial values, interface names) and ``model.npz`` (the
graph's constant arrays and, if given, the parameter values). Both are
written atomically (to a temporary file, then renamed) while holding a lock
on their folder, so two processes saving to one path leave one pair, not a
mix; the ``.json`` records the SHA-256 of its ``.npz``, and a reader that
finds another ``.npz`` beside it (a save under way) reads again, then raises
:class:`~rnngraph.errors.SerializationError`: it never gets a mixed pair.
Nothing is ever unpickled on load.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("acc")
>>> x = g.input("x", 2)
>>> s = g.state("s", 2, init="param")
>>> g.assign(s, s + x)
>>> g.output("y", s)
>>> p = g.init_params()
>>> d = tempfile.mkdtemp()
>>> path = g.save(os.path.join(d, "acc"), params=p)
>>> os.path.basename(path)
'acc.json'
>>> g2 = rg.load(path)
>>> sorted(g2.states), sorted(rg.load_params(path))
(['s'], ['s.init'])
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnngraph.errors import SerializationError
from rnngraph.files import atomic_write, folder_lock, sha256

if TYPE_CHECKING:  # (graph.py imports this module for Graph.save)
    from rnngraph.ir.graph import Graph

__all__ = ["FORMAT", "VERSION", "paths", "save", "to_json"]

FORMAT = "rnngraph.graph"
VERSION = 1


def paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The ``.json`` and ``.npz`` paths of a saved graph, from either or their stem."""
    p = Path(path)
    if not p.name or p.name in (".", "..") or p.is_dir():
        raise SerializationError(f"{os.fspath(path)!r} is a folder; give the graph file's path")
    stem = p.with_suffix("") if p.suffix == ".json" else p
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")


def to_json(graph: Graph) -> dict[str, Any]:
    """The structure of ``graph`` as a JSON-ready dict (arrays by key only)."""
    g = graph.nx_graph
    nodes = [
        {
            "id": int(n),
            "name": d["name"],
            "op": d["op"],
            "shape": list(d["type"].shape),
            "dtype": d["type"].dtype,
            "attrs": d["attrs"],
            "origin": _shareable(d["origin"]),
        }
        for n, d in sorted(g.nodes(data=True))
    ]
    edges = [
        {
            "src": int(u),
            "dst": int(v),
            "port": int(k),
            "delay": int(d["delay"]),
            "init": d["init"].to_json(),
        }
        for u, v, k, d in sorted(g.edges(keys=True, data=True), key=lambda e: (e[1], e[2]))
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": graph.name,
        "nodes": nodes,
        "edges": edges,
        "inputs": graph.input_nodes(),
        "params": graph.param_nodes(),
        "states": graph.state_nodes(),
        "outputs": graph.output_nodes(),
        "arrays": sorted(graph.arrays),
        "meta": graph.meta,
    }


def _shareable(origin: str | None) -> str | None:
    """``file:line`` of where a node was built, without the folders: a saved model is
    shared, and the user's absolute paths are theirs (``/home/ann/train.py:4`` ->
    ``train.py:4``)."""
    if not origin:
        return origin
    path, sep, line = origin.rpartition(":")
    if not sep or not line.isdigit():
        return os.path.basename(origin)
    return f"{os.path.basename(path)}:{line}"


def save(
    graph: Graph, path: str | os.PathLike[str], params: Mapping[str, Any] | None = None
) -> Path:
    """Write ``graph`` (and optionally ``params``) to ``<stem>.json`` and ``<stem>.npz``.

    Returns the path of the JSON file. The graph is verified first, so a
    file on disk always holds a valid graph.
    Examples
    --------
    >>> import tempfile, pathlib
    >>> import rnngraph as rg
    >>> g = rg.Graph("lin")
    >>> g.output("y", rg.linear(g.input("x", 2), 1, name="lin"))
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = rg.save(g, folder / "lin", g.init_params(seed=0))
    >>> path.name, sorted(rg.load_params(path))
    ('lin.json', ['lin.W', 'lin.b'])
    >>> rg.load(path).name
    'lin'
    """
    from rnngraph.ir.params import check_params
    from rnngraph.ir.verify import verify

    verify(graph)
    json_path, npz_path = paths(path)
    doc = to_json(graph)
    arrays = {f"array::{k}": np.asarray(v) for k, v in graph.arrays.items()}
    if params is not None:
        checked = check_params(graph, params, np.dtype(np.float64))
        for k in checked:
            arrays[f"param::{k}"] = np.asarray(params[k])
        doc["saved_params"] = sorted(checked)
    buffer = io.BytesIO()
    # numpy's stubs type savez's keywords as allow_pickle's bool.
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    data = buffer.getvalue()
    doc["npz_sha256"] = sha256(data)
    text = json.dumps(doc, indent=1, sort_keys=True)
    with folder_lock(json_path.parent):
        atomic_write(npz_path, data)
        atomic_write(json_path, text)
    return json_path
