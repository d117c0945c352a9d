"""A graph with several sequence axes as ONE ONNX model: its stages' models joined.

``rg.compile`` compiles each axis' stage on its own (see
:mod:`rnngraph.program.axes`); for ONNX this module joins those sequence models
into one graph: each stage's nodes under a prefix (``"src/"``, ``"tgt/"``), its
inputs fed from the model's inputs or from the crossing values an earlier stage
gives — ``final`` its state's final value, ``whole`` its output sequence
transposed to ``(B, S, ...)``, ``whole_mask`` the positions within each row's
length — and the original graph's outputs and final states under their own
names. The joined model takes one ``sequence_lens.<axis>`` input per axis; it is
what a :class:`~rnngraph.runtime.staged.StagedModel` of the ONNX target saves,
and what it runs in one onnxruntime session (one thread pool for every stage).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from rnngraph.files import atomic_write
from rnngraph_onnx._model import DISABLED_OPTIMIZERS

__all__ = ["JoinedModel", "join_stages"]


def lens_input(axis: str) -> str:
    return f"sequence_lens.{axis}"


def join_stages(staged: Any) -> JoinedModel | None:
    """The joined model of a StagedModel whose stages are all ONNX sequence models, else
    None (a step stage runs one step per call: it is not part of one sequence model)."""
    if any(mode != "sequence" for mode in staged.modes.values()):
        return None
    staging = staged.staging
    graph = staging.graph
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    inputs: dict[str, onnx.ValueInfoProto] = {}
    outputs: list[onnx.ValueInfoProto] = []
    crossing: dict[str, str] = {}  # crossing name -> the tensor holding its value
    float_type = TensorProto.FLOAT
    for stage in staging.stages:
        model = staged.models[stage.axis]
        float_type = model._float_type
        prefix = f"{stage.axis}/"
        proto = _prefixed(model._variant(not stage.per_sequence, ())[0], prefix)
        body = proto.graph
        inits.extend(body.initializer)
        for vi in body.input:
            name = vi.name[len(prefix) :]
            if stage.per_sequence:  # per-sequence values as one step: (1, B, ...)
                source = crossing[name] if name in stage.reads else name
                if name not in stage.reads and name not in inputs:
                    inputs[name] = _per_sequence_input(vi, name)
                _step_axis(nodes, inits, "Unsqueeze", source, vi.name)
                continue
            if name == "sequence_lens":
                source = lens_input(stage.axis)
                inputs.setdefault(
                    source, helper.make_tensor_value_info(source, TensorProto.INT64, ["B"])
                )
            elif name in stage.reads:
                source = crossing[name]
            else:
                source = name
                if name not in inputs:
                    renamed = onnx.ValueInfoProto()
                    renamed.CopyFrom(vi)
                    renamed.name = name
                    inputs[name] = renamed
            nodes.append(helper.make_node("Identity", [source], [vi.name], name=f"feed:{vi.name}"))
        nodes.extend(body.node)  # (after what feeds it: nodes stay in topological order)
        produced = {o.name[len(prefix) :]: o for o in body.output}
        for name in [*stage.outputs, *(f"{s}_final" for s in stage.states)]:
            out = produced[name]
            if stage.per_sequence:  # one value per row: the step axis dropped
                _step_axis(nodes, inits, "Squeeze", out.name, name)
                outputs.append(_per_sequence_input(out, name))
                continue
            nodes.append(helper.make_node("Identity", [out.name], [name], name=f"out:{name}"))
            renamed = onnx.ValueInfoProto()
            renamed.CopyFrom(out)
            renamed.name = name
            outputs.append(renamed)
        for name in stage.gives:
            c = staging.crossings[name]
            if c.kind == "final":
                crossing[name] = f"{prefix}{c.key}_final"
            elif c.kind == "start":  # the one step's value: (B, ...)
                crossing[name] = f"cross:{name}"
                _step_axis(nodes, inits, "Squeeze", f"{prefix}{c.key}", crossing[name])
            elif c.kind == "whole":
                rank = len(produced[c.key].type.tensor_type.shape.dim)
                perm = [1, 0, *range(2, rank)]
                crossing[name] = f"cross:{name}"
                nodes.append(
                    helper.make_node(
                        "Transpose",
                        [f"{prefix}{c.key}"],
                        [crossing[name]],
                        perm=perm,
                        name=f"cross:{name}",
                    )
                )
            else:  # whole_mask: position < the row's length
                crossing[name] = _mask(
                    nodes, inits, name, crossing[c.key], lens_input(stage.axis), float_type
                )
    joined = helper.make_graph(nodes, graph.name, list(inputs.values()), outputs, initializer=inits)
    opset = [
        helper.make_opsetid(
            "", max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        )
    ]
    model_proto = helper.make_model(joined, opset_imports=opset, producer_name="rnngraph")
    model_proto.ir_version = proto.ir_version
    model_proto.doc_string = f"rnngraph model of graph {graph.name!r}: axes {list(staging.axes)}"
    onnx.checker.check_model(model_proto)
    threads = getattr(staged.models[staging.axes[0]], "_threads", None)
    return JoinedModel(model_proto, staging, threads)


STEP_AXIS = "per_sequence/step_axis"
"""The joined model's constant ``[0]``: the step axis a one-step stage adds and drops."""


def _step_axis(
    nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], op: str, source: str, out: str
) -> None:
    """``out`` = ``source`` with the step axis of a per-sequence stage added (``Unsqueeze``)
    or dropped (``Squeeze``)."""
    if not any(t.name == STEP_AXIS for t in inits):
        inits.append(onnx.numpy_helper.from_array(np.array([0], np.int64), STEP_AXIS))
    nodes.append(helper.make_node(op, [source, STEP_AXIS], [out], name=f"{op}:{out}"))


def _per_sequence_input(vi: onnx.ValueInfoProto, name: str) -> onnx.ValueInfoProto:
    """The joined model's input (or output) of a per-sequence value a one-step stage
    reads (or gives) as ``(1, B, ...)``: its type without the step axis."""
    t = vi.type.tensor_type
    dims = [d.dim_param or d.dim_value for d in t.shape.dim][1:]
    return helper.make_tensor_value_info(name, t.elem_type, dims)


def _prefixed(model: onnx.ModelProto, prefix: str) -> onnx.ModelProto:
    """A copy with every tensor and node name prefixed, in its loop bodies too (our models'
    names are unique across a model and its subgraphs, so one renaming serves all scopes;
    onnx.compose.add_prefix leaves a body's reads of the outer scope as they were)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)

    def name(n: str) -> str:
        return f"{prefix}{n}" if n else n

    def graph(g: onnx.GraphProto) -> None:
        for vi in [*g.input, *g.output, *g.value_info]:
            vi.name = name(vi.name)
        for t in g.initializer:
            t.name = name(t.name)
        for node in g.node:
            node.input[:] = [name(i) for i in node.input]
            node.output[:] = [name(o) for o in node.output]
            node.name = name(node.name)
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    graph(a.g)
                for sub in a.graphs:
                    graph(sub)

    graph(out.graph)
    return out


def _mask(
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    name: str,
    whole: str,
    lens: str,
    float_type: int,
) -> str:
    def const(value: Any, hint: str) -> str:
        tensor = onnx.numpy_helper.from_array(np.asarray(value), f"{name}/{hint}")
        inits.append(tensor)
        return tensor.name

    def add(op: str, args: list[str], hint: str, **attrs: Any) -> str:
        out = f"{name}/{hint}"
        nodes.append(helper.make_node(op, args, [out], name=out, **attrs))
        return out

    steps = add("Shape", [whole], "S", start=1, end=2)
    steps = add("Squeeze", [steps, const(np.array([0], np.int64), "axis0")], "S_scalar")
    positions = add(
        "Range",
        [const(np.array(0, np.int64), "zero"), steps, const(np.array(1, np.int64), "one")],
        "positions",
    )
    positions = add(
        "Unsqueeze", [positions, const(np.array([0], np.int64), "row")], "positions_row"
    )
    limit = add("Unsqueeze", [lens, const(np.array([1], np.int64), "column")], "lens_column")
    valid = add("Less", [positions, limit], "valid")
    return add("Cast", [valid], "mask", to=float_type)


class JoinedModel:
    """One onnxruntime session for every stage of a graph with several axes."""

    def __init__(self, model: onnx.ModelProto, staging: Any, threads: int | None) -> None:
        self.model, self.staging = model, staging
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"],
            disabled_optimizers=DISABLED_OPTIMIZERS,
        )  # fmt: skip
        self._names = [o.name for o in self.session.get_outputs()]
        self._inputs = {i.name: i for i in self.session.get_inputs()}

    def run(
        self, feeds: Mapping[str, np.ndarray], lens: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The outputs, or None when the joined model cannot take this call (an axis
        with no steps or no rows, which onnxruntime's Scan refuses, or no input giving
        an axis' length)."""
        given = dict(feeds)
        per_seq = self.staging.graph.per_sequence_inputs
        for stage in self.staging.stages:
            if stage.per_sequence:
                continue
            seqs = [
                np.shape(feeds[k])
                for k in stage.graph.inputs
                if k in feeds and k not in per_seq and k not in stage.reads
            ]
            if not seqs or 0 in seqs[0][:2]:
                return None
            T, B = seqs[0][:2]
            n = lens.get(stage.axis)
            given[lens_input(stage.axis)] = (
                np.full(B, T, np.int64) if n is None else np.asarray(n, np.int64)
            )
        types = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}
        feed = {}
        for vi in self.model.graph.input:
            elem = vi.type.tensor_type.elem_type
            feed[vi.name] = np.asarray(given[vi.name], types.get(elem, np.int64))
        try:
            return dict(zip(self._names, self.session.run(self._names, feed), strict=True))
        except (
            ort.capi.onnxruntime_pybind11_state.Fail,
            ort.capi.onnxruntime_pybind11_state.InvalidArgument,
        ):
            return None  # (the stage-by-stage run checks the inputs and names what is wrong)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the joined model to ``path`` atomically."""
        atomic_write(os.fspath(path), self.model.SerializeToString())
        return Path(path)
