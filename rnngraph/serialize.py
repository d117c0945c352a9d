"""Saving and loading graphs: versioned JSON for structure, ``.npz`` for arrays.

``save(graph, "model.json", params)`` writes ``model.json`` (nodes, edges
with delays and initial values, interface names) and ``model.npz`` (the
graph's constant arrays and, if given, the parameter values). Both are
written atomically (to a temporary file, then renamed), and nothing is ever
unpickled on load.

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

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import GraphError, SerializationError
from rnngraph.graph import Graph, InitSpec
from rnngraph.types import TensorType

__all__ = ["FORMAT", "VERSION", "load", "load_params", "save"]

FORMAT = "rnngraph.graph"
VERSION = 1


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix == ".json" else p
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")


def _atomic_write(target: Path, write: Callable[[Any], None], mode: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
            "origin": d["origin"],
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


def save(
    graph: Graph, path: str | os.PathLike[str], params: Mapping[str, Any] | None = None
) -> str:
    """Write ``graph`` (and optionally ``params``) to ``<stem>.json`` and ``<stem>.npz``.

    Returns the path of the JSON file. The graph is verified first, so a
    file on disk always holds a valid graph.
    """
    from rnngraph.params import check_params
    from rnngraph.verify import verify

    verify(graph)
    json_path, npz_path = _paths(path)
    doc = to_json(graph)
    arrays = {f"array::{k}": np.asarray(v) for k, v in graph.arrays.items()}
    if params is not None:
        checked = check_params(graph, params, np.dtype(np.float64))
        for k in checked:
            arrays[f"param::{k}"] = np.asarray(params[k])
        doc["saved_params"] = sorted(checked)
    # numpy's stubs type savez's keywords as allow_pickle's bool.
    _atomic_write(npz_path, lambda f: np.savez(f, **arrays), "wb")  # type: ignore[arg-type]
    text = json.dumps(doc, indent=1, sort_keys=True)
    _atomic_write(json_path, lambda f: f.write(text), "w")
    return str(json_path)


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    json_path, npz_path = _paths(path)
    try:
        doc = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise SerializationError(f"no saved graph at {json_path}") from None
    except json.JSONDecodeError as e:
        raise SerializationError(f"{json_path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SerializationError(f"{json_path} is not an rnngraph graph file")
    if doc.get("version") != VERSION:
        raise SerializationError(
            f"{json_path} has format version {doc.get('version')!r}; this rnngraph reads "
            f"version {VERSION}"
        )
    arrays: dict[str, np.ndarray] = {}
    if npz_path.exists():
        try:
            with np.load(npz_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ValueError as e:
            raise SerializationError(f"{npz_path} cannot be read without pickle: {e}") from None
    return doc, arrays


def load(path: str | os.PathLike[str]) -> Graph:
    """Read a graph written by :func:`save` (give the ``.json`` path or its stem).

    Raises
    ------
    SerializationError
        If the file is missing, of another format or version, or incomplete.
    GraphError
        If the graph it holds does not verify.
    """
    from rnngraph.verify import verify

    doc, arrays = _read(path)
    try:
        graph = _rebuild(doc, arrays)
    except (KeyError, TypeError, ValueError) as e:
        raise SerializationError(
            f"{path}: malformed graph file ({type(e).__name__}: {e})"
        ) from None
    verify(graph)
    return graph


def _rebuild(doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Graph:
    graph = Graph(str(doc["name"]))
    g = graph.nx_graph
    for n in doc["nodes"]:
        shape = tuple(d if isinstance(d, str) else int(d) for d in n["shape"])
        if n["name"] in graph._names:
            raise GraphError(f"the file names two nodes {n['name']!r}")
        g.add_node(
            int(n["id"]),
            op=str(n["op"]),
            attrs=dict(n["attrs"]),
            type=TensorType(shape, str(n["dtype"])),
            name=str(n["name"]),
            origin=n.get("origin"),
        )
        graph._names[n["name"]] = int(n["id"])
    graph._next_id = max((int(n["id"]) for n in doc["nodes"]), default=-1) + 1
    for e in doc["edges"]:
        if int(e["src"]) not in g or int(e["dst"]) not in g:
            raise ValueError(f"edge {e} names a node that is not in the file")
        g.add_edge(
            int(e["src"]),
            int(e["dst"]),
            key=int(e["port"]),
            delay=int(e["delay"]),
            init=InitSpec.from_json(e["init"]),
        )
    for field, table in (
        ("inputs", graph._inputs),
        ("params", graph._params),
        ("states", graph._states),
        ("outputs", graph._outputs),
    ):
        for name, nid in doc[field].items():
            if int(nid) not in g:
                raise ValueError(f"{field} entry {name!r} names missing node {nid}")
            table[str(name)] = int(nid)
    for key in doc["arrays"]:
        if f"array::{key}" not in arrays:
            raise ValueError(f"array {key!r} is missing from the .npz file")
        graph._arrays[key] = arrays[f"array::{key}"]
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError("meta must be an object")
    graph.meta.update(meta)
    graph._version += 1
    return graph


def load_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The parameter values saved beside a graph (empty if none were saved)."""
    doc, arrays = _read(path)
    names = doc.get("saved_params", [])
    missing = [n for n in names if f"param::{n}" not in arrays]
    if missing:
        raise SerializationError(f"{path}: parameters {missing} are missing from the .npz file")
    return {n: arrays[f"param::{n}"] for n in names}
