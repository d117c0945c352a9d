"""The original model's interface of an imported graph: its tensors in, its tensors out.

An importer (:func:`rnngraph.import_onnx`) records in ``graph.meta["onnx"]`` how the
original model's tensors map onto the graph: which inputs are batch-major or have their
steps on another axis (``(B, H, T, d)``: an attention's query; ``(B, C, L)``: a causal
convolution's input), which broadcast against another (an attention mask), which hold
one value per sequence (an attention's keys and values), which input is
``sequence_lens``, which inputs hold initial states (``(D, B, H)``: one state per
leading index), which inputs are weights fed at run time, and how each original output
is made of the graph's outputs and final states (the directions of ``Y`` stacked,
``Y_h`` from the final states). :class:`Interface` maps a call both ways, and
:class:`InterfaceModel` wraps any backend's compiled model so that its ``run`` takes and
returns exactly the original tensors: a drop-in replacement for the imported model.

Examples
--------
>>> import numpy as np
>>> from onnx import TensorProto, helper, numpy_helper
>>> import rnngraph as rg
>>> rng = np.random.default_rng(0)
>>> W, R = rng.normal(size=(1, 12, 2)), rng.normal(size=(1, 12, 4))
>>> node = helper.make_node("GRU", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=4)
>>> model = helper.make_model(helper.make_graph(
...     [node], "gru", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", 2])],
...     [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "Y_h")],
...     [numpy_helper.from_array(a.astype("float32"), k) for k, a in (("W", W), ("R", R))]))
>>> g, p = rg.import_onnx(model)
>>> m = rg.compile(g, target="reference", params=p)   # speaks the model's interface
>>> out = m.run({"X": rng.normal(size=(5, 3, 2)).astype("float32")})
>>> {k: v.shape for k, v in out.items()}
{'Y': (5, 1, 3, 4), 'Y_h': (1, 3, 4)}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import InputError
from rnngraph.ir.graph import Graph

__all__ = ["LAYOUTS", "Call", "Interface", "InterfaceModel"]


LAYOUTS: Mapping[str, int] = {"sequence": 0, "rows": 1, "whole": 2}
"""How an imported model's inputs may be read (:func:`rnngraph.import_onnx`'s ``layout``),
and how many of the graph's leading axes (time, batch) its tensors lack."""


@dataclass
class Call:
    """One call of the graph: what :func:`rnngraph.run` (or a compiled model) takes."""

    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    sequence_lens: np.ndarray | None = None
    initial_states: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Interface:
    """How an imported graph speaks its original model's tensors (see the module
    docstring); read from ``graph.meta["onnx"]`` by :meth:`of` — as long as the graph
    keeps the inputs, outputs and states it was imported with (a graph derived from it,
    such as its adjoint, or one edited to take or give other values, speaks its own)."""

    graph_outputs: tuple[str, ...]
    batch_major: frozenset[str]
    sequence_lens: str | None
    state_inputs: Mapping[str, list[str | None]]
    param_inputs: tuple[str, ...]
    outputs: Mapping[str, Mapping[str, Any]]
    names_in: tuple[str, ...]
    names_out: tuple[str, ...]
    unused: frozenset[str] = frozenset()
    state_rows: Mapping[str, str] = field(default_factory=dict)
    """Inputs ``(B, *row)`` that are one state's initial value (a Scan's)."""
    input_types: Mapping[str, tuple[int, list[int | str]]] = field(default_factory=dict)
    """The original inputs' ONNX element types and dims, for a file with its interface."""
    flat: Mapping[str, int] = field(default_factory=dict)
    """Outputs the original gives as rows ``(-1, k)`` (steps, batch rows and leading
    features flattened: ``Flatten``, or a ``Reshape`` for a ``Gemm``), by their ``k``."""
    output_types: Mapping[str, int] = field(default_factory=dict)
    """The original outputs' ONNX element types: a float16 or double output is given in
    its own kind (the graph computes in the model's float type)."""
    time_axes: Mapping[str, int] = field(default_factory=dict)
    """Inputs and outputs the original lays out batch first with time at axis ``k >= 2``
    (``(B, H, T, D)``: ``Attention``'s 4-D query and output), by their ``k``."""
    broadcast: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Inputs the original broadcasts against a sequence (``Attention``'s ``attn_mask``,
    ``(T, S)`` or ``(B, 1, T, S)``...): ``{"like": <input>, "rank": r}``, aligned to rank
    ``r`` from the right and given that input's batch and time sizes."""
    per_sequence: frozenset[str] = frozenset()
    """Inputs and outputs with one value per sequence ``(B, ...)`` (an attention's keys
    and values, its key/value cache)."""
    layout: str = "sequence"
    """How the original tensors map onto the graph's: ``"sequence"`` (time and batch
    axes, as above), ``"rows"`` (one step: the tensors' first axis is the batch) or
    ``"whole"`` (one row of one step: no time and batch axes); see
    :func:`rnngraph.import_onnx`'s ``layout``."""

    @property
    def steps(self) -> int:
        """The time and batch axes the graph's tensors have and the original's lack."""
        return LAYOUTS[self.layout]

    @classmethod
    def of(cls, graph: Graph) -> Interface | None:
        """The interface recorded by the importer, or ``None`` for a graph built here."""
        meta = graph.meta.get("onnx")
        if not isinstance(meta, Mapping):
            return None
        if "graph_outputs" in meta and (
            graph.name != meta.get("graph_name", graph.name)
            or list(graph.outputs) != list(meta["graph_outputs"])
            or list(graph.inputs) != list(meta.get("graph_inputs", []))
        ):
            return None  # a graph made from the imported one (an adjoint, an edit)
        finals = {s for spec in meta.get("outputs", {}).values() for s in spec.get("finals", [])}
        if not finals <= set(graph.states):
            return None
        graph_outputs = tuple(graph.outputs)
        outputs = dict(meta.get("outputs", {}))
        names_in = tuple(
            meta.get("inputs")
            or [
                *graph.inputs,
                *([meta["sequence_lens"]] if meta.get("sequence_lens") else []),
                *meta.get("state_inputs", {}),
                *meta.get("state_rows", {}),
            ]
        )
        covered = {n for s in outputs.values() for n in s.get("directions", [])}
        names_out = tuple(
            meta.get("output_order") or [*(n for n in graph_outputs if n not in covered), *outputs]
        )
        return cls(
            graph_outputs,
            frozenset(meta.get("batch_major", [])),
            meta.get("sequence_lens"),
            dict(meta.get("state_inputs", {})),
            tuple(meta.get("param_inputs", [])),
            outputs,
            names_in,
            names_out,
            frozenset(meta.get("unused_inputs", [])),
            dict(meta.get("state_rows", {})),
            {k: (int(t), list(d)) for k, (t, d) in meta.get("input_types", {}).items()},
            {k: int(v) for k, v in meta.get("flat_outputs", {}).items()},
            {k: int(v) for k, v in meta.get("output_types", {}).items()},
            {k: int(v) for k, v in meta.get("time_axes", {}).items()},
            {k: dict(v) for k, v in meta.get("broadcast", {}).items()},
            frozenset(meta.get("per_sequence", [])),
            str(meta.get("layout", "sequence")),
        )

    def time_axis(self, name: str) -> int:
        """Where the original tensor ``name`` has its time axis (0: ``(T, B, ...)``; 1:
        batch-major; ``k``: ``(B, ..., T, ...)``), for inputs and outputs that are
        sequences; the batch axis is 1 for the first, else 0."""
        if name in self.time_axes:
            return self.time_axes[name]
        return 1 if name in self.batch_major else 0

    def batch_axis(self, name: str) -> int:
        """Where the original input ``name`` (a sequence or a per-sequence value) has its
        batch axis."""
        return 0 if name in self.per_sequence or self.time_axis(name) else 1

    # ------------------------------------------------------------------ in
    def role(self, name: str) -> str:
        """What the original model's input ``name`` is to the graph: ``"unused"`` (no
        output depends on it), ``"sequence_lens"``, ``"states"`` (``(D, B, ...)``: a state
        per leading index), ``"state_row"`` (``(B, ...)``: one state's initial value),
        ``"param"`` (a weight fed at run time) or ``"sequence"``."""
        if name in self.unused:
            return "unused"
        if name == self.sequence_lens:
            return "sequence_lens"
        if name in self.state_inputs:
            return "states"
        if name in self.state_rows:
            return "state_row"
        return "param" if name in self.param_inputs else "sequence"

    @property
    def states_fed(self) -> list[str]:
        """The graph's states whose initial values the original model's inputs give."""
        given = [s for v in self.state_inputs.values() for s in v if s is not None]
        return sorted({*given, *self.state_rows.values()})

    def call(self, feeds: Mapping[str, Any]) -> Call:
        """The graph's call for the original model's ``feeds`` (by the model's names)."""
        unknown = sorted(set(feeds) - set(self.names_in))
        if unknown:
            raise InputError(
                f"the imported model has no inputs {unknown}; it takes {list(self.names_in)}"
            )
        call = Call()
        for name, value in feeds.items():
            arr, role = np.asarray(value), self.role(name)
            if role == "unused":
                continue
            if role == "sequence_lens":
                if arr.ndim != 1 or arr.dtype.kind not in "iu":
                    raise InputError(
                        f"{name!r} (sequence_lens) must be a 1-D integer array (B,), "
                        f"got {arr.dtype} {arr.shape}"
                    )
                call.sequence_lens = arr.astype(np.int64)
            elif role == "states":
                states = self.state_inputs[name]
                if arr.ndim < 2 or arr.shape[0] != len(states):
                    raise InputError(
                        f"initial state input {name!r} must be (D={len(states)}, B, ...), "
                        f"got shape {arr.shape}"
                    )
                for d, state in enumerate(states):
                    if state is not None:
                        call.initial_states[state] = arr[d]
            elif role == "state_row":
                call.initial_states[self.state_rows[name]] = arr
            elif role == "param":
                call.params[name] = arr
            else:
                call.inputs[name] = self._sequence(name, arr, feeds)
        missing = [n for n in self.param_inputs if n not in call.params]
        if missing:
            raise InputError(f"the imported model takes its weights {missing} as inputs: pass them")
        return call

    def _sequence(self, name: str, arr: np.ndarray, feeds: Mapping[str, Any]) -> np.ndarray:
        """Input ``name`` laid out ``(T, B, ...)`` for the graph (a per-sequence one as
        given)."""
        if name in self.per_sequence:
            return arr
        if self.steps:  # (one step: of a batch of rows, or of one row)
            dims = list(self.input_types.get(name, (0, list(arr.shape)))[1])
            fixed = [d if i >= 2 - self.steps else None for i, d in enumerate(dims)]
            if arr.ndim != len(dims) or any(
                d is not None and d != n for d, n in zip(fixed, arr.shape, strict=True)
            ):
                want = tuple("N" if d is None else d for d in fixed)
                raise InputError(f"{name!r} must have shape {want}, got {arr.shape}")
            return arr.reshape((1,) * self.steps + arr.shape)
        k = self.time_axis(name)
        if name in self.broadcast:
            like, rank = self.broadcast[name]["like"], int(self.broadcast[name]["rank"])
            if like not in feeds:
                raise InputError(f"{name!r} is broadcast against {like!r}: feed both")
            ref = np.asarray(feeds[like])
            at = self.time_axis(like)
            if arr.ndim > rank or ref.ndim <= at:
                raise InputError(
                    f"{name!r} must broadcast to rank {rank} against {like!r} "
                    f"{ref.shape}; got shape {arr.shape}"
                )
            full = arr.reshape((1,) * (rank - arr.ndim) + arr.shape)
            target = list(full.shape)
            target[0], target[k] = ref.shape[self.batch_axis(like)], ref.shape[at]
            try:
                full = np.broadcast_to(full, target)
            except ValueError:
                raise InputError(
                    f"{name!r} {arr.shape} does not broadcast to {tuple(target)} (the batch "
                    f"and steps of {like!r})"
                ) from None
            return np.moveaxis(full, k, 0)
        if arr.ndim < 2 or arr.ndim <= k:
            layout = {0: "(T, B, ...)", 1: "batch-major (B, T, ...)"}.get(
                k, f"(B, ...) with its steps on axis {k}"
            )
            raise InputError(f"{name!r} is {layout}; got shape {arr.shape}")
        return np.moveaxis(arr, k, 0)

    # ----------------------------------------------------------------- out
    def results(self, result: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The original model's outputs from a run's ``result`` (the graph's outputs and
        final states)."""
        made: dict[str, np.ndarray] = {}
        for name in self.graph_outputs:
            y = result[name]
            if name in self.flat:
                y = y.reshape(-1, self.flat[name])
            if name in self.per_sequence:  # (the same at every step)
                made[name] = y[0]
            elif self.steps:
                made[name] = y.reshape(y.shape[self.steps :])
            else:
                made[name] = np.moveaxis(y, 0, self.time_axis(name))
        for name, spec in self.outputs.items():
            bm = spec["batch_major"]
            if "directions" in spec:
                y = np.stack([made.pop(n) for n in spec["directions"]], axis=2 if bm else 1)
                made[name] = np.swapaxes(y, 0, 1) if bm else y
            elif spec.get("squeezed"):
                made[name] = result[f"{spec['finals'][0]}_final"]
            else:
                made[name] = np.stack(
                    [result[f"{s}_final"] for s in spec["finals"]], axis=1 if bm else 0
                )
        return {n: _as_kind(made[n], self.output_types.get(n)) for n in self.names_out if n in made}


ONNX_FLOATS = {1: np.float32, 10: np.float16, 11: np.float64}
"""ONNX's float element types (FLOAT, FLOAT16, DOUBLE) as numpy's."""

ONNX_SMALL_INTS = {3: np.int8, 2: np.uint8, 5: np.int16, 4: np.uint16}
"""ONNX's integer element types every float holds exactly (INT8, UINT8, INT16, UINT16):
an input only comparisons read may be read as floats."""


def _as_kind(y: np.ndarray, elem: int | None) -> np.ndarray:
    """An output in the original's float kind (other kinds as computed)."""
    kind = ONNX_FLOATS.get(elem or 0)
    return y.astype(kind) if kind is not None and y.dtype.kind == "f" else y


class InterfaceModel:
    """A compiled model of an imported graph that takes and returns the original model's
    tensors (see the module docstring). ``inner`` is the backend's model, which speaks
    the graph's own interface (``Y[0]``, ``<state>_final``, ...)."""

    def __init__(self, inner: Any, interface: Interface) -> None:
        self.inner, self.interface = inner, interface
        self.graph = getattr(inner, "graph", None)
        self.mode = getattr(inner, "mode", "sequence")
        self.dtype = np.dtype(getattr(inner, "dtype", np.float32))

    def __repr__(self) -> str:
        return f"<InterfaceModel inputs={list(self.interface.names_in)} of {self.inner!r}>"

    def run(self, feeds: Mapping[str, Any], **kw: Any) -> dict[str, np.ndarray]:
        """Run on the original model's inputs; returns its outputs, by its names."""
        call = self.interface.call(feeds)
        args: dict[str, Any] = dict(kw)
        if call.sequence_lens is not None:
            args["sequence_lens"] = call.sequence_lens
        if call.initial_states:
            args["initial_states"] = call.initial_states
        if self.interface.param_inputs:
            args["params"] = call.params
        return self.interface.results(self.inner.run(call.inputs, **args))

    def __getattr__(self, name: str) -> Any:  # the backend model's own (plan, model...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def save(self, path: str | os.PathLike[str], **kw: Any) -> Path:
        """Write what the backend deploys; a backend that can (ONNX) writes the original
        model's interface into the file (``save_with_interface``); ``kw`` (a backend's
        other forms, e.g. TVM's ``standalone=True``) go to the backend's ``save``."""
        save = getattr(self.inner, "save_with_interface", None)
        if save is not None and not kw:
            return Path(save(path, self.interface))
        return Path(self.inner.save(path, **kw))
