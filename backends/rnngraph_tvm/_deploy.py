"""Running an exported kernel where it is deployed: numpy and the TVM runtime only.

:meth:`TvmModel.export` writes ``model.so`` (the kernel), ``model.json`` (the
arguments of its two entry functions, ``main`` and ``main_lens``, in order)
and ``model.npz`` (the time-invariant values and the fixed initial values).
:func:`load` reads the three back on the device — it needs neither
rnngraph's graph nor onnx — and ``run`` takes whole sequences ``(T, B,
...)`` by input name, and ``sequence_lens``. A CUDA library runs on the
machine's first GPU: inputs are copied there and results back.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RESULTS", "DeployedModel", "load", "result_buffer", "result_name", "sidecars"]

RESULTS = ("output", "final", "total")
"""Kinds of kernel arguments that a run returns."""


def result_name(kind: str, name: str) -> str:
    """The name a run returns a result argument under (a final state's: ``<state>_final``)."""
    return f"{name}_final" if kind == "final" else str(name)


ALIGN = 64
"""Bytes TVM's kernels assume a buffer's data is aligned to (and its DLPack import checks)."""


def aligned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised C-ordered array whose data starts on an :data:`ALIGN`-byte boundary
    (numpy aligns to 16)."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    raw = np.empty(size + ALIGN, np.uint8)
    start = -raw.__array_interface__["data"][0] % ALIGN  # (ctypes.data is slower)
    return raw[start : start + size].view(dtype).reshape(shape)


def result_buffer(shape: tuple[int, ...], dtype: Any) -> tuple[np.ndarray, Any]:
    """A result's array and the TVM tensor over the same memory, for a CPU kernel to write
    the result in place (returned as it is: no copy out)."""
    import tvm

    if math.prod(shape) == 0:  # (nothing to write; DLPack refuses an empty view's pointer)
        return np.empty(shape, dtype), tvm.runtime.empty(shape, str(np.dtype(dtype)))
    array = aligned_empty(shape, dtype)
    return array, tvm.runtime.from_dlpack(array)


def sidecars(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The layout (``.json``) and values (``.npz``) that go with library ``path``."""
    p = Path(path)
    return p.with_suffix(".json"), p.with_suffix(".npz")


class DeployedModel:
    """An exported kernel, loaded with the TVM runtime."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import tvm

        layout_path, values_path = sidecars(path)
        self.layout = json.loads(layout_path.read_text())
        with np.load(values_path, allow_pickle=False) as z:
            self.values = {k: z[k] for k in z.files}
        self.module = tvm.runtime.load_module(str(path))
        self._tvm = tvm
        self._static: dict[str, Any] = {}  # weights on the device by name, copied once

    def run(
        self,
        inputs: Mapping[str, Any],
        *,
        sequence_lens: Any = None,
        initial_states: Mapping[str, Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """Outputs (and ``<state>_final``) for whole input sequences ``(T, B, ...)``.

        ``sequence_lens`` (B,): each row's number of valid steps; outputs past
        it are zero and final states are taken at its last valid step.
        ``initial_states``: ``(B, ...)`` (or one row) by state name, in place of
        the graph's own; required for states declared ``init="input"``. To
        stream, call with ``T = 1`` and pass the final states back (states read
        one step back).
        """
        tvm = self._tvm
        cuda = self.layout["device"].get("kind") == "cuda"
        dev = tvm.cuda(0) if cuda else tvm.cpu()
        names = list(self.layout["inputs"])
        if not isinstance(inputs, Mapping):  # (no rnngraph here: Python's own exceptions)
            raise TypeError(
                f"inputs must be a dict of arrays by name ({names}), got {type(inputs).__name__}; "
                "a library takes arrays (a TreeBatch is laid out by levels by the compiled "
                "model: rg.compile(g, 'tvm').run(batch))"
            )
        missing = [k for k in names if k not in inputs]
        if missing:
            raise ValueError(f"missing inputs {missing}: this library takes {names}")
        first = np.asarray(inputs[names[0]])
        T, B = first.shape[:2]
        entry = "main" if sequence_lens is None else "main_lens"
        given = dict(initial_states or {})
        known = {a["state"] for a in self.layout["entries"][entry] if "state" in a}
        if set(given) - known:
            raise ValueError(
                f"initial_states {sorted(set(given) - known)} are no states of this model; "
                f"it has {sorted(known)}"
            )
        args, outs = [], {}
        for a in self.layout["entries"][entry]:
            shape = tuple(T if d == "T" else B if d == "B" else int(d) for d in a["shape"])
            if a["kind"] == "static":  # (both entries' weights: one copy)
                if a["value"] not in self._static:
                    value = np.array(self.values[a["value"]], a["dtype"], order="C")
                    self._static[a["value"]] = tvm.runtime.tensor(value, dev)
                args.append(self._static[a["value"]])
                continue
            if a["kind"] == "input":
                arr = np.asarray(inputs[a["name"]], a["dtype"])
            elif a["kind"] == "lens":
                arr = np.asarray(sequence_lens, np.int64).reshape(B)
                if np.any(arr < 0) or np.any(arr > T):
                    raise ValueError(f"sequence_lens must lie in [0, {T}], got {arr.tolist()}")
            elif a["kind"] == "init" and a.get("state") in given:
                rows = shape[a["shape"].index("B") :]  # (a tap's: without its steps back)
                arr = np.broadcast_to(np.asarray(given[a["state"]], a["dtype"]), rows)
                arr = np.broadcast_to(arr, shape)
            elif a["kind"] == "init" and "value" in a:
                arr = np.broadcast_to(self.values[a["value"]], shape)
            elif a["kind"] == "init" and a.get("required"):
                rows = shape[a["shape"].index("B") :]
                raise ValueError(
                    f"state {a['state']!r} takes its initial value from the caller: pass "
                    f"initial_states={{{a['state']!r}: array of shape {rows}}}"
                )
            elif a["kind"] == "init":
                arr = np.zeros(shape, a["dtype"])
            else:
                name = result_name(a["kind"], a["name"])
                if a["kind"] in RESULTS and not cuda:
                    outs[name], t = result_buffer(shape, a["dtype"])  # written in place
                    args.append(t)
                    continue
                t = tvm.runtime.empty(shape, a["dtype"], dev)
                args.append(t)
                if a["kind"] in RESULTS:
                    outs[name] = t
                continue
            args.append(tvm.runtime.tensor(np.array(arr, dtype=a["dtype"], order="C"), dev))
        self.module[entry](*args)
        return {k: v if isinstance(v, np.ndarray) else v.numpy() for k, v in outs.items()}


def load(path: str | os.PathLike[str]) -> DeployedModel:
    """Load ``path`` (a library written by :meth:`TvmModel.export`) and its two sidecars."""
    return DeployedModel(path)
