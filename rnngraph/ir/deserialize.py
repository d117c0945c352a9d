"""Loading graphs saved by :func:`rnngraph.save` (see :mod:`rnngraph.ir.serialize`).

``load`` reads a ``.json`` and its ``.npz`` as one pair (their hashes must match: a
save under way is read again, never mixed), checks every field, rebuilds the graph
through :meth:`Graph.from_records` and verifies it; ``load_params`` reads the saved
parameter values. Nothing is ever unpickled; a malformed file is a
:class:`~rnngraph.errors.SerializationError` naming what is wrong.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import GraphError, SerializationError
from rnngraph.files import sha256
from rnngraph.ir.graph import Graph, InitSpec, Node
from rnngraph.ir.serialize import FORMAT, VERSION, paths
from rnngraph.ir.types import TensorType
from rnngraph.ir.verify import verify

__all__ = ["from_json", "load", "load_params", "load_with_params"]


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The ``.json`` document and the ``.npz`` arrays of one save; read again while they
    do not match (another process saving to the same path), then refused."""
    json_path, npz_path = paths(path)
    for attempt in range(_READS):
        doc = _read_json(json_path)
        try:
            data = npz_path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as e:
            raise SerializationError(f"cannot read {npz_path}: {e}") from None
        want = doc.get("npz_sha256")
        if want is None or (data is not None and sha256(data) == want):
            return doc, {} if data is None else _read_npz(npz_path, data)
        time.sleep(0.01 * (attempt + 1))
    raise SerializationError(
        f"{npz_path} is not the one saved with {json_path.name} (its content hash differs): "
        "another process is saving to the same path, or one file of the pair was replaced; "
        "save the graph again"
    )


_READS = 8
"""How often :func:`_read` reads a pair whose ``.npz`` does not match its ``.json``."""


def _read_json(json_path: Path) -> dict[str, Any]:
    try:
        text = json_path.read_bytes().decode("utf-8")
        doc = json.loads(text)
    except FileNotFoundError:
        raise SerializationError(f"no saved graph at {json_path}") from None
    except IsADirectoryError:
        raise SerializationError(f"{json_path} is a folder, not a saved graph") from None
    except OSError as e:
        raise SerializationError(f"cannot read {json_path}: {e}") from None
    except UnicodeDecodeError:
        raise SerializationError(f"{json_path} is not a text file (not UTF-8)") from None
    except RecursionError:
        raise SerializationError(f"{json_path} is nested too deeply to be a graph file") from None
    except ValueError as e:
        raise SerializationError(f"{json_path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SerializationError(f"{json_path} is not an rnngraph graph file")
    if doc.get("version") != VERSION:
        raise SerializationError(
            f"{json_path} has format version {doc.get('version')!r}; this rnngraph reads "
            f"version {VERSION}"
        )
    return doc


def _read_npz(npz_path: Path, data: bytes) -> dict[str, np.ndarray]:
    if not data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise SerializationError(f"{npz_path} is not an .npz archive (numpy's zip of arrays)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # zipfile and numpy raise many kinds on damaged archives
        raise SerializationError(
            f"{npz_path} is damaged or truncated ({type(e).__name__}: {e}); save the graph again"
        ) from None


def load(path: str | os.PathLike[str]) -> Graph:
    """Read a graph written by :func:`save` (give the ``.json`` path or its stem).

    Raises
    ------
    SerializationError
        If the file is missing, of another format or version, or incomplete.
    GraphError
        If the graph it holds does not verify.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> import tempfile, pathlib
    >>> g = rg.Graph("acc")
    >>> x = g.input("x", 1)
    >>> s = g.state("s", 1)
    >>> g.assign(s, 0.5 * s + g.param("w", 1) * x)
    >>> g.output("y", s)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = g.save(folder / "acc", {"w": np.ones(1)})
    >>> rg.load(path).name, rg.load_params(path)["w"].tolist()
    ('acc', [1.0])
    """
    return _graph(path, *_read(path))


def load_with_params(
    path: str | os.PathLike[str],
) -> tuple[Graph, dict[str, np.ndarray]]:
    """:func:`load` and :func:`load_params` from one read of the pair: the graph and the
    values saved with it, never a graph of one save and the values of another."""
    doc, arrays = _read(path)
    return _graph(path, doc, arrays), _params(path, doc, arrays)


def from_json(doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Graph:
    """The graph of :func:`rnngraph.ir.serialize.to_json`'s ``doc`` and the graph's
    ``arrays`` (keyed as :attr:`Graph.arrays`), checked and verified as a file is
    (how a graph travels to another process without pickle)."""
    return _graph("<json>", doc, {f"array::{k}": v for k, v in arrays.items()})


def _graph(
    path: str | os.PathLike[str], doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> Graph:
    try:
        graph = _rebuild(doc, arrays)
        verify(graph)
    except GraphError:
        raise
    except Exception as e:  # a field of the wrong kind, anywhere in the file
        raise SerializationError(
            f"{path}: malformed graph file ({type(e).__name__}: {e})"
        ) from None
    return graph


def _rebuild(doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Graph:
    """The graph a document describes, its fields checked (ValueError names the first
    wrong one), built through :meth:`Graph.from_records`."""
    nodes: dict[int, Node] = {}
    names: set[str] = set()
    for n in doc["nodes"]:
        nid = _int(n["id"], "a node id")
        shape = tuple(d if isinstance(d, str) else _int(d, "a dimension") for d in n["shape"])
        name = str(n["name"])
        if name in names or nid in nodes:
            raise GraphError(f"the file names two nodes {name!r} (or gives two nodes id {nid})")
        if n["op"] == "state":
            _int(n["attrs"]["delay"], f"the delay of state {name!r}")
        names.add(name)
        attrs, origin = dict(n["attrs"]), n.get("origin")
        nodes[nid] = Node(
            nid, name, str(n["op"]), TensorType(shape, str(n["dtype"])), attrs, origin
        )
    edges = []
    for e in doc["edges"]:
        src, dst = _int(e["src"], "an edge's src"), _int(e["dst"], "an edge's dst")
        if src not in nodes or dst not in nodes:
            raise ValueError(f"edge {e} names a node that is not in the file")
        port = _int(e["port"], "an edge's port")
        delay = _int(e["delay"], f"the delay of edge {src} -> {dst}")
        edges.append((src, dst, port, delay, InitSpec.from_json(e["init"])))
    interface: dict[str, dict[str, int]] = {}
    kinds = {"inputs": "input", "params": "param", "states": "state", "outputs": None}
    for field, op in kinds.items():
        interface[field] = {}
        for name, nid in doc[field].items():
            nid = _int(nid, f"{field} entry {name!r}")
            if nid not in nodes:
                raise ValueError(f"{field} entry {name!r} names missing node {nid}")
            if op is not None and nodes[nid].op != op:
                raise ValueError(
                    f"{field} entry {name!r} names node {nid}, a {nodes[nid].op} node, "
                    f"not the {op} node it must be"
                )
            interface[field][str(name)] = nid
    stored = {}
    for key in doc["arrays"]:
        if f"array::{key}" not in arrays:
            raise ValueError(f"array {key!r} is missing from the .npz file")
        stored[str(key)] = arrays[f"array::{key}"]
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError("meta must be an object")
    return Graph.from_records(
        str(doc["name"]), list(nodes.values()), edges, interface, stored, meta
    )


def _int(value: Any, what: str) -> int:
    """``value`` if it is an integer (a JSON ``1``, not ``"1"``, ``1.7`` or ``true``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return value


def load_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The parameter values saved beside a graph (empty if none were saved).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> import tempfile, pathlib
    >>> g = rg.Graph("acc")
    >>> x = g.input("x", 1)
    >>> s = g.state("s", 1)
    >>> g.assign(s, 0.5 * s + g.param("w", 1) * x)
    >>> g.output("y", s)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = g.save(folder / "acc", {"w": np.full(1, 2.0)})
    >>> rg.load_params(path)["w"].tolist()
    [2.0]
    """
    return _params(path, *_read(path))


def _params(
    path: str | os.PathLike[str], doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    names = doc.get("saved_params", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SerializationError(f"{path}: saved_params must be a list of names, got {names!r}")
    missing = [n for n in names if f"param::{n}" not in arrays]
    if missing:
        raise SerializationError(f"{path}: parameters {missing} are missing from the .npz file")
    return {n: arrays[f"param::{n}"] for n in names}
