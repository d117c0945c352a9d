"""The ONNX file of an imported model's drop-in replacement: the compiled model wrapped in
the original model's interface (:class:`rnngraph.runtime.interface.Interface`).

The compiled model's inputs and outputs are renamed ``inner/<name>`` (its names are
unique across its subgraphs, so one renaming serves the Scan bodies that read them) and
a few nodes around it speak the original tensors: batch-major inputs and outputs (and
those with their steps on another axis) are transposed, an attention mask is expanded to
the query's batch and steps, a per-sequence output is taken from the first step, a
model read as rows or whole gets its one step (and row) added and taken away, ``sequence_lens`` is
cast to int64, a ``(D, B, H)`` initial state is split into its states, weights fed as
inputs are repeated over the batch (the compiled model takes one weight vector a row),
``Y`` stacks its directions and ``Y_h``/``Y_c`` the final states —
so a file written here takes exactly the feeds the original took."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rnngraph.errors import CompileError
from rnngraph.runtime.interface import ONNX_FLOATS, ONNX_SMALL_INTS, Interface
from rnngraph_onnx._emit import STEPS

__all__ = ["with_interface"]

_P = "inner/"


def with_interface(
    model: onnx.ModelProto, iface: Interface, lifted: Sequence[str] = ()
) -> onnx.ModelProto:
    """``model`` (a compiled sequence model of the imported graph; ``lifted``: the params
    it takes as ``(B, *shape)`` inputs) behind the original model's interface."""
    inner = _renamed(model, {*iface.names_in, *iface.names_out})
    names_inside = {i.name[len(_P) :]: i for i in inner.graph.input}
    if STEPS in names_inside:
        raise CompileError("a graph with no sequence input cannot take its model's interface")
    float_type = next(  # (the compiled model's float: of its float inputs or outputs)
        (
            v.type.tensor_type.elem_type
            for v in [*model.graph.input, *model.graph.output]
            if v.type.tensor_type.elem_type in ONNX_FLOATS
        ),
        TensorProto.FLOAT,
    )
    nodes: list[onnx.NodeProto] = []  # before the compiled model's nodes, then after
    inits: list[onnx.TensorProto] = []

    def node(op: str, ins: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=f"interface/{op}:{out}", **attrs))
        return out

    def const(value: np.ndarray, name: str) -> str:
        if all(t.name != f"interface/{name}" for t in inits):
            inits.append(numpy_helper.from_array(value, f"interface/{name}"))
        return f"interface/{name}"

    types = iface.input_types
    inputs = [
        helper.make_tensor_value_info(n, types.get(n, (float_type, []))[0], _dims(iface, n))
        for n in iface.names_in
    ]
    # the batch size, for weights repeated over the rows
    seq = next(n for n in iface.names_in if iface.role(n) == "sequence")
    axis = iface.batch_axis(seq)

    def batch() -> str:  # (made where a weight first needs it)
        if iface.layout == "whole":  # (one row)
            return const(np.ones(1, np.int64), "one")
        if not any(x.output[0] == "interface/B" for x in nodes):
            node("Shape", [seq], "interface/B", start=axis, end=axis + 1)
        return "interface/B"

    for n in iface.names_in:
        role = iface.role(n)
        if role == "unused":
            continue
        fed = n  # (a float16 or double input: in the compiled model's float type)
        elem = types.get(n, (float_type,))[0]
        small_int = elem in ONNX_SMALL_INTS and role == "sequence"  # (only compared: as floats)
        if (elem in ONNX_FLOATS and elem != float_type) or small_int:
            fed = node("Cast", [n], f"interface/{n}.as_float", to=float_type)
        if role == "sequence_lens":
            node("Cast", [n], _P + "sequence_lens", to=TensorProto.INT64)
        elif role == "states":
            for d, state in enumerate(iface.state_inputs[n]):
                if state is not None:
                    index = const(np.array(d, np.int64), f"{n}.{d}")
                    node("Gather", [fed, index], _P + state, axis=0)
        elif role == "state_row":
            node("Identity", [fed], _P + iface.state_rows[n])
        elif role == "param":
            if n not in lifted:
                raise CompileError(f"weight input {n!r} is not an input of the compiled model")
            rank = len(types.get(n, (0, []))[1])
            ones = const(np.ones(rank, np.int64), f"{n}.ones")
            shape = node("Concat", [batch(), ones], f"interface/{n}.shape", axis=0)
            row = node(
                "Unsqueeze", [fed, const(np.array([0], np.int64), "axis0")], f"interface/{n}.1"
            )
            node("Expand", [row, shape], _P + n)
        elif n in iface.broadcast:  # (an attention mask: to the query's batch and steps)
            like, rank = iface.broadcast[n]["like"], int(iface.broadcast[n]["rank"])
            extra = rank - len(types.get(n, (0, []))[1])
            if extra:
                axes = const(np.arange(extra, dtype=np.int64), f"{n}.lead")
                fed = node("Unsqueeze", [fed, axes], f"interface/{n}.rank{rank}")
            at, k = iface.batch_axis(like), iface.time_axis(like)
            sizes = [
                node("Shape", [like], f"interface/{n}.{what}", start=a, end=a + 1)
                for what, a in (("B", at), ("T", k))
            ]
            one = const(np.ones(1, np.int64), "one")
            where = iface.time_axis(n)
            parts = [sizes[0], *[sizes[1] if i == where else one for i in range(1, rank)]]
            shape = node("Concat", parts, f"interface/{n}.shape", axis=0)
            full = node("Expand", [fed, shape], f"interface/{n}.full")
            node("Transpose", [full], _P + n, perm=_time_first(where, rank))
        elif iface.steps:  # one step (of one row)
            axes = const(np.arange(iface.steps, dtype=np.int64), f"axes{iface.steps}")
            node("Unsqueeze", [fed, axes], _P + n)
        elif n not in iface.per_sequence and iface.time_axis(n):
            rank = len(types.get(n, (0, [0, 0, 0]))[1])
            node("Transpose", [fed], _P + n, perm=_time_first(iface.time_axis(n), rank))
        else:
            node("Identity", [fed], _P + n)
    before, nodes = nodes, []
    outputs = []
    for n in iface.names_out:
        spec = iface.outputs.get(n)
        if spec is None:  # a graph output of the same name
            rank = _rank(inner, _P + n)
            if n in iface.flat:  # rows (-1, k)
                rows = const(np.array([-1, iface.flat[n]], np.int64), f"{n}.rows")
                node("Reshape", [_P + n, rows], n)
                rank = 2
            elif iface.steps:  # one step (of one row)
                axes = const(np.arange(iface.steps, dtype=np.int64), f"axes{iface.steps}")
                node("Squeeze", [_P + n, axes], n)
                rank -= iface.steps
            elif n in iface.per_sequence:  # (the compiled model repeats it every step)
                node("Gather", [_P + n, const(np.array(0, np.int64), "first")], n, axis=0)
                rank -= 1
            elif iface.time_axis(n):
                k = iface.time_axis(n)
                node("Transpose", [_P + n], n, perm=_time_first(k, rank, back=True))
            else:
                node("Identity", [_P + n], n)
        elif "directions" in spec:  # Y: (T, D, B, H); batch-major (B, T, D, H)
            parts = [
                node(
                    "Unsqueeze", [_P + d, const(np.array([1], np.int64), "axis1")], f"interface/{d}"
                )
                for d in spec["directions"]
            ]
            stacked = node("Concat", parts, f"interface/{n}.stacked" if spec["batch_major"] else n,
                           axis=1)  # fmt: skip
            if spec["batch_major"]:
                node("Transpose", [stacked], n, perm=[2, 0, 1, 3])
            rank = _rank(inner, _P + spec["directions"][0]) + 1
        elif spec.get("squeezed"):
            node("Identity", [f"{_P}{spec['finals'][0]}_final"], n)
            rank = _rank(inner, f"{_P}{spec['finals'][0]}_final")
        else:  # Y_h, Y_c: (D, B, H); batch-major (B, D, H)
            axis = 1 if spec["batch_major"] else 0
            axes = const(np.array([axis], np.int64), f"axis{axis}")
            parts = [
                node("Unsqueeze", [f"{_P}{s}_final", axes], f"interface/{s}_final")
                for s in spec["finals"]
            ]
            node("Concat", parts, n, axis=axis)
            rank = _rank(inner, f"{_P}{spec['finals'][0]}_final") + 1
        kind = iface.output_types.get(n, float_type)
        if kind in ONNX_FLOATS and kind != float_type:  # (back to the original's float16/double)
            last = next(x for x in reversed(nodes) if x.output[0] == n)
            last.output[0] = f"interface/{n}.computed"
            node("Cast", [last.output[0]], n, to=kind)
        else:  # (as computed: a float, or a comparison's bool)
            kind = _elem(inner, _P + n) if spec is None else float_type
        outputs.append(helper.make_tensor_value_info(n, kind, [None] * rank))
    wanted = {_P + k for k in _inner_inputs_used(iface, lifted, names_inside)}
    missing = sorted(k for k in (i.name for i in inner.graph.input) if k not in wanted)
    if missing:
        raise CompileError(f"the compiled model takes {missing}, which the interface does not feed")
    body = helper.make_graph(
        [*before, *inner.graph.node, *nodes],
        model.graph.name,
        inputs,
        outputs,
        initializer=inits + list(inner.graph.initializer),
    )
    out = helper.make_model(
        body, opset_imports=list(model.opset_import), producer_name=model.producer_name
    )
    out.ir_version = model.ir_version
    for f in model.functions:
        out.functions.append(f)
    return out


def _renamed(model: onnx.ModelProto, taken: set[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose inputs and outputs, and any tensor named as one of
    ``taken`` (the interface's own names), are called ``inner/<name>``."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    new = {v.name: _P + v.name for v in [*g.input, *g.output]}
    new.update({n: _P + n for n in _all_names(g) & taken})

    def rename(graph: onnx.GraphProto) -> None:
        for v in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
            v.name = new.get(v.name, v.name)
        for n in graph.node:
            n.input[:] = [new.get(x, x) for x in n.input]
            n.output[:] = [new.get(x, x) for x in n.output]
            for sub in _subgraphs(n):
                rename(sub)

    rename(g)
    return out


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """A node's body graphs (a Scan's or Loop's body, an If's branches)."""
    return [g for a in node.attribute for g in ([a.g] if a.HasField("g") else a.graphs)]


def _all_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in [*graph.initializer, *graph.input, *graph.output]}
    for n in graph.node:
        names.update(n.input)
        names.update(n.output)
        for sub in _subgraphs(n):
            names |= _all_names(sub)
    return names


def _inner_inputs_used(
    iface: Interface, lifted: Sequence[str], inside: dict[str, onnx.ValueInfoProto]
) -> list[str]:
    """The compiled model's inputs the wrapper feeds."""
    fed = [n for n in iface.names_in if iface.role(n) in ("sequence", "param")]
    fed += iface.states_fed + (["sequence_lens"] if iface.sequence_lens else [])
    return [n for n in fed if n in inside]


def _dims(iface: Interface, name: str) -> list[int | str]:
    """An input's dims as the original declared them, its time and batch axes symbolic
    (the same feeds fit; the compiled model is not specialised to one size)."""
    dims = list(iface.input_types.get(name, (0, ["T", "B"]))[1])
    role = iface.role(name)
    if role == "param" or iface.layout == "whole":
        return dims
    if iface.layout == "rows":  # (the batch's size as the original names it, or "B")
        return [dims[0] if isinstance(dims[0], str) else "B", *dims[1:]]
    if role in ("sequence_lens", "state_row"):
        lead = {0: "B"}
    elif role == "states":
        lead = {1: "B"}
    elif name in iface.per_sequence:
        lead = {0: "B"}
    elif name in iface.broadcast:
        lead = {}
    else:
        k = iface.time_axis(name)
        lead = {0: "B", k: "T"} if k else {0: "T", 1: "B"}
    return [lead.get(i, d) for i, d in enumerate(dims)]


def _elem(model: onnx.ModelProto, name: str) -> int:
    """The element type of the compiled model's output ``name``."""
    return next(o.type.tensor_type.elem_type for o in model.graph.output if o.name == name)


def _rank(model: onnx.ModelProto, name: str) -> int:
    for o in model.graph.output:
        if o.name == name:
            return len(o.type.tensor_type.shape.dim)
    raise CompileError(f"the compiled model has no output {name[len(_P) :]!r}")


def _time_first(k: int, rank: int, back: bool = False) -> list[int]:
    """The permutation that brings axis ``k`` (the original's time axis) to the front
    (``back``: that puts the front axis at ``k``)."""
    if back:
        return [*range(1, k + 1), 0, *range(k + 1, rank)]
    return [k, *(i for i in range(rank) if i != k)]
