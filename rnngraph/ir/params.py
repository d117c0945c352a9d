"""Parameter values: initialization and run-time checking.

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("p")
>>> _ = g.param("W", (4, 3), "orthogonal")
>>> W = g.init_params(seed=1)["W"]
>>> bool(abs((W.T @ W) - __import__("numpy").eye(3)).max() < 1e-5)
True
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rnngraph.errors import ParamError
from rnngraph.ir.types import INT_RANGES, numpy_dtype

if TYPE_CHECKING:
    from rnngraph.ir.graph import Graph

__all__ = ["check_params", "initial_value"]


def _rng(seed: int, name: str) -> np.random.Generator:
    # One stream per (seed, name): adding a parameter leaves the others unchanged.
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def initial_value(graph: Graph, nid: int, seed: int, dtype: np.dtype) -> np.ndarray:
    """A fresh value for parameter node ``nid`` from its declared initializer."""
    node = graph.nx_graph.nodes[nid]
    shape = node["type"].row_shape
    attrs: Mapping[str, Any] = node["attrs"]
    kind, scale = attrs["init"], attrs.get("scale")
    rng = _rng(seed, node["name"])
    fan_in = shape[0] if shape else 1
    if kind == "zeros":
        out = np.zeros(shape)
    elif kind == "ones":
        out = np.ones(shape)
    elif kind == "constant":
        out = np.full(shape, scale)
    elif kind == "array":
        out = np.asarray(graph.arrays[attrs["array"]])
    elif kind == "uniform":
        bound = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
        out = rng.uniform(-bound, bound, shape)
    elif kind == "normal":
        std = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
        out = rng.normal(0.0, std, shape)
    elif kind == "glorot_uniform":
        fan_out = shape[-1] if len(shape) > 1 else 1
        bound = (scale or 1.0) * np.sqrt(6.0 / max(fan_in + fan_out, 1))
        out = rng.uniform(-bound, bound, shape)
    elif kind == "orthogonal":
        rows, cols = shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else 1
        a = rng.normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        out = (scale or 1.0) * q.reshape(shape)
    else:  # pragma: no cover - Graph.param validates the kind
        raise ParamError(f"parameter {node['name']!r} has an unknown initializer {kind!r}")
    if node["type"].dtype != "float":  # a quantised graph's integer weights
        return np.ascontiguousarray(np.rint(out), dtype=numpy_dtype(node["type"].dtype))
    return np.ascontiguousarray(out, dtype=dtype)


def check_params(
    graph: Graph, params: Mapping[str, Any] | None, dtype: np.dtype
) -> dict[str, np.ndarray]:
    """Params as arrays of ``dtype``, each checked against its declaration.

    Raises
    ------
    ParamError
        Naming every missing or unexpected parameter, or the first wrong shape.
    """
    params = dict(params or {})
    declared = graph.params
    missing = sorted(set(declared) - set(params))
    if missing:
        raise ParamError(
            f"graph {graph.name!r} is missing parameters {missing}; pass params=: "
            "trained values (rnngraph.load_params(path)) or fresh ones "
            "(graph.init_params(seed=0))"
        )
    extra = sorted(set(params) - set(declared))
    if extra:
        raise ParamError(
            f"graph {graph.name!r} has no parameters {extra}; declared: {sorted(declared)}"
        )
    out = {}
    for name, t in declared.items():
        arr = np.asarray(params[name])
        if arr.shape != t.row_shape:
            raise ParamError(
                f"parameter {name!r} has shape {arr.shape}, but the graph declares {t.row_shape}"
            )
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ParamError(f"parameter {name!r} has non-numeric dtype {arr.dtype}")
        if t.dtype in INT_RANGES:
            lo, hi = INT_RANGES[t.dtype]
            if not np.issubdtype(arr.dtype, np.integer) or (
                arr.size and (arr.min() < lo or arr.max() > hi)
            ):
                raise ParamError(
                    f"parameter {name!r} is declared {t.dtype}: it needs integers in "
                    f"[{lo}, {hi}], got dtype {arr.dtype}"
                    + (f" with values in [{arr.min()}, {arr.max()}]" if arr.size else "")
                )
            out[name] = np.asarray(arr, dtype=numpy_dtype(t.dtype))
            continue
        out[name] = np.asarray(arr, dtype=dtype)
    return out
