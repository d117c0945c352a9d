"""Mutations of valid files for fuzzing the loaders (the tests and tools/fuzz_loaders.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

__all__ = ["mutate_bytes", "mutate_json", "mutations"]


def mutations() -> st.SearchStrategy:
    return st.lists(
        st.tuples(st.sampled_from(["flip", "cut", "drop", "set"]), st.integers(0, 2**31)),
        min_size=1,
        max_size=4,
    )


def mutate_json(doc: object, rng: np.random.Generator, kind: str) -> object:
    """One structural change somewhere in ``doc``: a field deleted or given another value."""
    paths: list[tuple[object, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((node, i))
                walk(v)

    walk(doc)
    parent, key = paths[int(rng.integers(len(paths)))]
    if kind == "drop" and isinstance(parent, dict):
        del parent[key]
    else:
        values = [None, -1, 0, 1, 2**40, 1.5, "1", "x", [], {}, [3, "B"], True]
        parent[key] = values[int(rng.integers(len(values)))]  # type: ignore[index]
    return doc


def mutate_bytes(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    buf = bytearray(data)
    if not buf:
        return data
    if kind == "cut":
        return bytes(buf[: int(rng.integers(len(buf)))])
    for _ in range(int(rng.integers(1, 8))):
        i = int(rng.integers(len(buf)))
        buf[i] = int(rng.integers(256))
    return bytes(buf)
