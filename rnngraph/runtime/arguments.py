"""Run-time arguments, checked the same way by the interpreter and every backend.

Each backend's ``run`` accepts what :func:`rnngraph.run` accepts, so the
checks (and their messages) live here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.errors import InputError
from rnngraph.ir.graph import Graph, InitSpec
from rnngraph.ir.types import numpy_dtype

__all__ = [
    "bind_dims",
    "caller_states",
    "carried_initial",
    "check_initial_states",
    "check_inputs",
    "check_lens",
    "float_dtype",
    "initial_value",
    "match_row",
    "np_dtype",
    "step_feeds",
    "stream",
]


def float_dtype(dtype: Any, *groups: Mapping[str, Any] | None) -> np.dtype:
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise InputError(f"dtype must be float32 or float64, got {dt}")
        return dt
    for group in groups:
        for v in (group or {}).values():
            if getattr(v, "dtype", None) == np.float64:
                return np.dtype(np.float64)
    return np.dtype(np.float32)


def np_dtype(kind: str, ft: np.dtype) -> np.dtype:
    return numpy_dtype(kind, ft)


def check_inputs(
    graph: Graph, inputs: Mapping[str, Any], ft: np.dtype, steps: int | None
) -> tuple[dict[int, np.ndarray], int | None, int | None]:
    declared = graph.inputs
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        hint = ""
        if set(unknown) & set(graph.states):
            hint = "; initial states go in initial_states="
        raise InputError(
            f"graph {graph.name!r} has no inputs {unknown}{hint}; its inputs: {sorted(declared)}"
        )
    missing = sorted(set(declared) - set(inputs))
    if missing:
        raise InputError(f"graph {graph.name!r} needs inputs {missing}")
    T: int | None = steps
    B: int | None = None
    out = {}
    input_ids = graph.input_nodes()
    dims: dict[str, int] = {}
    per_seq = graph.per_sequence_inputs
    for name, t in sorted(declared.items(), key=lambda item: item[0] in per_seq):
        arr = np.asarray(inputs[name])
        row = t.row_shape
        if name in per_seq:
            if arr.ndim != 1 + len(row) or not match_row(row, arr.shape[1:], dims):
                raise InputError(
                    f"input {name!r} is per-sequence (axis=None): one row per sequence, "
                    f"shape (B, {', '.join(map(str, row))}), got {arr.shape}"
                )
            if B is not None and arr.shape[0] != B:
                raise InputError(f"input {name!r} has batch {arr.shape[0]}; other inputs have {B}")
            B = arr.shape[0]
        else:
            if arr.ndim != 2 + len(row) or not match_row(row, arr.shape[2:], dims):
                raise InputError(
                    f"input {name!r} must be a time-major sequence of shape (T, B, "
                    f"{', '.join(map(str, row))}), got {arr.shape}"
                )
            if T is not None and arr.shape[0] != T:
                raise InputError(f"input {name!r} has {arr.shape[0]} steps; expected {T}")
            if B is not None and arr.shape[1] != B:
                raise InputError(f"input {name!r} has batch {arr.shape[1]}; other inputs have {B}")
            T, B = arr.shape[0], arr.shape[1]
        if t.dtype == "float" and not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"input {name!r} must be numeric, got dtype {arr.dtype}")
        if np.issubdtype(arr.dtype, np.complexfloating):
            raise InputError(
                f"input {name!r} is complex ({arr.dtype}); rnngraph computes in real numbers: "
                "pass the real and imaginary parts as features of their own"
            )
        if t.dtype == "int64" and not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"input {name!r} is declared int64, got dtype {arr.dtype}")
        out[input_ids[name]] = np.asarray(arr, dtype=np_dtype(t.dtype, ft))
    return out, T, B


def match_row(row: tuple[Any, ...], shape: tuple[int, ...], dims: dict[str, int]) -> bool:
    """Whether ``shape`` fits the declared ``row``; binds symbolic dims in ``dims`` on the way.

    A name seen before must take the same size again.
    """
    if len(row) != len(shape):
        return False
    for want, got in zip(row, shape, strict=True):
        if isinstance(want, str):
            if dims.setdefault(want, int(got)) != got:
                return False
        elif want != got:
            return False
    return True


def bind_dims(
    graph: Graph, inputs: Mapping[str, Any], initial_states: Mapping[str, Any]
) -> dict[str, int]:
    """The sizes the data gives the graph's symbolic dimensions (inputs, then initial states)."""
    dims: dict[str, int] = {}
    per_seq = graph.per_sequence_inputs
    for name, t in graph.inputs.items():
        if t.symbolic and name in inputs:
            match_row(t.row_shape, np.shape(inputs[name])[1 if name in per_seq else 2 :], dims)
    for name, t in graph.states.items():
        if t.symbolic and name in initial_states:
            shape = np.shape(initial_states[name])
            match_row(t.row_shape, shape[len(shape) - len(t.row_shape) :], dims)
    return dims


def caller_states(graph: Graph) -> list[str]:
    """The states whose initial value every run must be given (``init="input"``: the
    caller's value of a state); a state started from a per-sequence value (an input, or
    one computed from per-sequence values) takes that value instead."""
    states = graph.state_nodes()
    out = []
    for name, sid in states.items():
        reads = graph.operands(sid)  # (none for a state not yet assigned)
        if reads and reads[0][2].kind == "input" and str(reads[0][2].ref) in states:
            out.append(name)
    return out


def check_initial_states(
    graph: Graph, initial_states: Mapping[str, Any], B: int, ft: np.dtype
) -> dict[str, np.ndarray]:
    """Initial-state overrides by name, each as ``(B, *row)`` (one row is broadcast)."""
    states = graph.states
    unknown = sorted(set(initial_states) - set(states))
    if unknown:
        raise InputError(f"initial_states names {unknown}, which are not states of the graph")
    out = {}
    for name, value in initial_states.items():
        row = states[name].row_shape
        arr = np.asarray(value, dtype=ft)
        if match_row(row, arr.shape, {}):
            arr = np.broadcast_to(arr, (B, *arr.shape))
        if arr.shape[:1] != (B,) or not match_row(row, arr.shape[1:], {}):
            raise InputError(
                f"initial state {name!r} must have shape {(B, *row)} or one row {row}, "
                f"got {arr.shape}"
            )
        out[name] = arr
    return out


def check_lens(sequence_lens: Any, T: int, B: int) -> np.ndarray | None:
    if sequence_lens is None:
        return None
    lens = np.asarray(sequence_lens)
    if lens.shape != (B,) or not np.issubdtype(lens.dtype, np.integer):
        raise InputError(f"sequence_lens must be {B} integers (one per batch row), got {lens!r}")
    if lens.min(initial=0) < 0 or lens.max(initial=0) > T:
        raise InputError(f"sequence_lens must lie in [0, {T}], got {lens.tolist()}")
    return lens.astype(np.int64)


def initial_value(
    graph: Graph,
    spec: InitSpec,
    params: Mapping[str, np.ndarray],
    shape: tuple[int, ...],
    dtype: np.dtype,
) -> np.ndarray | None:
    """What a delayed edge with initial value ``spec`` reads, shaped ``(B, *row)``.

    A read-only broadcast view; None for ``"input"``, which the caller supplies.
    """
    if spec.kind == "zeros":
        return np.zeros(shape, dtype)
    if spec.kind == "param":
        return np.broadcast_to(np.asarray(params[str(spec.ref)]).astype(dtype), shape)
    if spec.kind == "array":
        stored = np.asarray(graph.arrays[str(spec.ref)], dtype=dtype)
        if stored.shape not in (shape, shape[1:]):
            raise InputError(
                f"the fixed initial value {spec.ref!r} has shape {stored.shape}, which "
                f"does not fit batch {shape[0]}: expected {shape[1:]} or {shape}"
            )
        return np.broadcast_to(stored, shape)
    return None


def carried_initial(
    graph: Graph,
    read: Any,
    params: Mapping[str, np.ndarray],
    batch: int,
    float_type: np.dtype,
) -> np.ndarray | None:
    """A step model's carried value of delayed ``read`` before the first step: a
    writable ``(batch, *row)`` array, or None when the caller supplies it."""
    t = graph.nx_graph.nodes[read.source]["type"]
    shape = (batch, *t.row_shape)
    value = initial_value(graph, read.init, params, shape, np_dtype(t.dtype, float_type))
    return None if value is None else np.array(value)


def step_feeds(
    graph: Graph,
    slots: Sequence[Any],
    inputs: Mapping[str, Any],
    initial_states: Mapping[str, Any],
    params: Mapping[str, np.ndarray],
    float_type: np.dtype,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A step model's call: ``inputs`` holds one step ``(B, ...)`` of each input and any
    carried values (the step model's ``slots``, also taken from ``initial_states``).

    Returns the step's inputs checked as a sequence of one step, ``(1, B, ...)``
    by input name, and every carried value: given, else its initial value.
    """
    names = {s.name for s in slots}
    given = {**initial_states, **{k: v for k, v in inputs.items() if k in names}}
    step = {k: v for k, v in inputs.items() if k not in names}
    unknown = sorted(set(step) - set(graph.inputs)) + sorted(set(initial_states) - names)
    if unknown:
        raise InputError(
            f"step model of {graph.name!r} has no inputs {unknown}; its inputs: "
            f"{sorted(graph.inputs)} and carried values {sorted(names)}"
        )
    per_seq = graph.per_sequence_inputs
    seq = {k: np.asarray(v) if k in per_seq else np.asarray(v)[None] for k, v in step.items()}
    bound, _, B = check_inputs(graph, seq, float_type, 1)
    rows = {s.name: graph.nx_graph.nodes[s.read.source]["type"].row_shape for s in slots}
    one_row = {k for k, v in given.items() if match_row(rows[k], np.shape(v), {})}
    if B is None:
        sizes = {np.shape(v)[0] for k, v in given.items() if np.ndim(v) > 0 and k not in one_row}
        B = sizes.pop() if len(sizes) == 1 else 1
    carried: dict[str, np.ndarray] = {}
    for s in slots:
        if s.name in given:
            supplied = np.asarray(given[s.name], float_type)
            if s.name in one_row:  # one row serves every batch row
                supplied = np.broadcast_to(supplied, (B, *supplied.shape))
            carried[s.name] = np.ascontiguousarray(supplied)
            continue
        value = carried_initial(graph, s.read, params, B, float_type)
        ref = str(s.read.init.ref)
        if value is None and s.read.init.kind == "input" and ref in per_seq and ref in step:
            value = np.array(seq[ref], float_type)  # a state started from a per-sequence input
        if value is None:
            raise InputError(f"carried value {s.name!r} has no initial value; pass it in inputs")
        carried[s.name] = value
    named = {graph.nx_graph.nodes[n]["name"]: a for n, a in bound.items()}
    # (per-sequence inputs too as one step of a sequence, (1, B, ...), like the others)
    return {k: a[None] if k in per_seq else a for k, a in named.items()}, carried


def stream(
    advance: Callable[[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]],
    graph: Graph,
    inputs: Mapping[str, Any],
    initial_states: Mapping[str, Any] | None = None,
    dtype: Any = np.float32,
) -> dict[str, np.ndarray]:
    """Feed time-major ``(T, B, ...)`` inputs to a step model one step at a time.

    ``advance(step_inputs, carried) -> (outputs, carried)`` is the model's step for
    ``graph``; its per-sequence inputs ``(B, ...)`` go to every step as they are.
    Returns each output stacked over the steps (``(0, B, ...)`` for no steps) and
    the carried values after the last step (``"<name>_final"``), as a sequence
    model would.
    """
    outputs = graph.outputs
    per_seq = graph.per_sequence_inputs
    sequences = [v for k, v in inputs.items() if k not in per_seq]
    T = len(sequences[0]) if sequences else 0
    carried = dict(initial_states or {})
    steps: list[dict[str, Any]] = []
    for t in range(T):
        out, carried = advance({k: v if k in per_seq else v[t] for k, v in inputs.items()}, carried)
        steps.append(out)
    if not steps:
        B = np.shape(sequences[0])[1] if sequences else 1
        result = {
            name: np.zeros((0, B, *t.row_shape), np_dtype(t.dtype, np.dtype(dtype)))
            for name, t in outputs.items()
        }
    else:
        result = {name: np.stack([o[name] for o in steps]) for name in outputs}
    result.update({f"{k}_final": v for k, v in carried.items()})
    return result
