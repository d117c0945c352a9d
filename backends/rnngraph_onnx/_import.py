"""ONNX -> rnngraph: recurrent models back into a cyclic graph.

What it reads
    ``LSTM``, ``GRU`` and ``RNN`` (every attribute: direction, activations
    with their alpha/beta defaults, clip, ``layout``, ``input_forget``,
    ``linear_before_reset``, peepholes, ``sequence_lens``, initial states);
    ``Scan`` (state variables become states of delay 1, or -1 when every
    scan input runs in reverse); ``Loop`` over a sequence's steps (the trip
    count ``Shape(x)[0]``, a condition that stays true, the body reading
    ``x`` at its iteration: carried values become states); the shape arithmetic and plain ops that
    ``torch.onnx.export`` writes around them for ``nn.LSTM``/``nn.GRU``/
    ``nn.RNN`` (stacked, bidirectional, ``batch_first``, ``h0``/``c0`` as
    inputs); element-wise, matrix and feature-axis ops on sequences; the
    shifted copies rnngraph's own exporter writes for delays.

How tensors are tracked
    Every ONNX tensor is one of: a time-invariant array (evaluated now with
    ``onnx.reference``); a shape vector with symbolic ``T``/``B`` entries; a
    sequence ``(T, B, ...)`` (or batch-major ``(B, T, ...)``), which is one
    graph Value per step; a direction-split output ``Y (T, D, B, H)``; or
    per-row tensors ``(D, B, H)`` such as ``Y_h`` (final states), zeros made
    with ``ConstantOfShape`` or initial states given as inputs. A model with
    no op over time whose inputs cannot be sequences is read *whole*: every
    input one row of one step (``lead`` 0: no time and batch axes, every size
    fixed), so its ops may work along any axis.

Interface
    Parameters keep the initializer names; sequence inputs and outputs keep
    the model's names. What a graph cannot express directly is recorded in
    ``graph.meta["onnx"]``: outputs that are final states (``Y_h``...),
    ``(D, B, H)`` initial-state inputs, batch-major tensors and the input
    that carries ``sequence_lens``. :func:`rnngraph_onnx.run_as_onnx` uses it to take and
    return exactly what the ONNX file takes and returns.

Anything else raises :class:`~rnngraph.errors.ModelImportError` naming the
op and the node; nothing is guessed.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import rnngraph as rg
from rnngraph.cells import gru_step, lstm_step, rnn_step
from rnngraph.errors import GraphError, ModelImportError
from rnngraph.runtime.interface import LAYOUTS, ONNX_FLOATS, ONNX_SMALL_INTS
from rnngraph_onnx._functions import expand, float_type, has_function

__all__ = ["import_onnx"]


# ------------------------------------------------------------------ tensors
@dataclass
class Static:
    """A time-invariant tensor: an initializer (``name``), or computed from constants."""

    value: np.ndarray
    name: str | None = None
    src: tuple[str, str] | None = None  # (op, input) for an Unsqueeze(axis 0) of a static
    node: rg.Value | None = None  # the graph node, made when first needed
    runtime: bool = False  # a weight the model takes as an input: a param fed at run time


@dataclass
class ShapeVec:
    dims: list[int | str]  # "T", "B" symbolic
    scalar: bool = False
    of: Seq | None = None  # the whole shape of this (time-major) sequence, when it is one


@dataclass
class Seq:
    value: rg.Value
    batch_major: bool = False
    time_at: int = 0  # k >= 2: the ONNX tensor is (B, ..., T at axis k, ...) (Attention's)


@dataclass
class PerSequence:
    """One value per sequence ``(B, ...)``: an attention's keys, values and their cache."""

    value: rg.Value


@dataclass
class Dirs:
    """``Y`` of a recurrent op: ``(T, D, B, H)`` (``(B, T, D, H)`` batch-major), per direction."""

    values: list[rg.Value]
    batch_major: bool = False


@dataclass
class RowItem:
    kind: str  # "zeros" | "final" | "input" | "static"
    ref: Any = None


@dataclass
class Rows:
    """A ``(D, B, *row)`` tensor: one item per index of the leading axis."""

    items: list[RowItem]
    row: tuple[int, ...]
    batch_major: bool = False  # (B, D, ...) as layout=1 writes Y_h
    squeezed: bool = False  # one item without its leading axis: (B, ...)


@dataclass
class Flat:
    """A sequence with its steps, rows and leading features flattened into rows ``(-1, k)``,
    as a 2-D ``Gemm`` wants it (our exports' fused ``x @ W + b``) or ``Flatten`` makes it
    (``LayerNormalization``'s body on other axes); ``value`` keeps the time and batch axes,
    its last axis is ``k``. Element-wise ops (with constants of one row), reductions along
    ``k``, ``Gemm`` and a ``Reshape`` back to a sequence read it."""

    value: rg.Value


@dataclass
class Pending:
    """A graph input not yet used: its role (sequence or initial state) comes from its use."""

    name: str
    elem: int
    dims: list[int | str]


# Static | ShapeVec | Seq | Dirs | Rows | Pending, or a part of a shifted copy.
Tensor = Any

_FLOATS = tuple(ONNX_FLOATS)  # (FLOAT, FLOAT16, DOUBLE)
"""The ONNX element types rnngraph reads as float (signals, and weights fed as inputs)."""
_COMPARISONS = ("Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual")
"""The ops that may read small integers as floats (:data:`ONNX_SMALL_INTS`)."""
_STEPPED = ("LSTM", "GRU", "RNN", "Scan", "Loop")
"""Ops that run over a sequence's steps: a model with one is read as sequences only."""

_ACT = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "hardsigmoid": "hard_sigmoid",
    "softsign": "softsign",
    "softplus": "softplus",
    "affine": "identity",
}
_ACT_DEFAULTS = {"hardsigmoid": (0.2, 0.5), "affine": (1.0, 0.0)}

_ELEMENTWISE = {
    "Add": "add",
    "Sub": "sub",
    "Mul": "mul",
    "Div": "div",
    "Pow": "pow",
    "Max": "maximum",
    "Min": "minimum",
    "Greater": "greater",
    "Less": "less",
    "Equal": "equal",
    "Where": "where",
}
_UNARY = {
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Relu": "relu",
    "Neg": "neg",
    "Abs": "abs",
    "Exp": "exp",
    "Erf": "erf",
    "Sin": "sin",
    "Atan": "atan",
    "Floor": "floor",
    "Ceil": "ceil",
    "Cos": "cos",
    "Log": "log",
    "Sqrt": "sqrt",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Identity": None,
}


@dataclass
class _Importer:
    model: onnx.ModelProto
    graph: rg.Graph = field(init=False)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    layout: str = "sequence"  # "rows": (B, ...) one step; "whole": one row (import_onnx)
    lead: int = 2  # axes before a signal's row: (T, B); 1 inside a Scan body or rows; 0 whole
    current: onnx.NodeProto | None = None  # the node being imported, for error messages
    opsets: list[onnx.OperatorSetIdProto] = field(default_factory=list)  # (a function's, inside)

    def __post_init__(self) -> None:
        g = self.model.graph
        self.opsets = list(self.model.opset_import)
        self.graph = rg.Graph(g.name or "imported")
        self.meta = {
            "outputs": {},
            "state_inputs": {},
            "batch_major": [],
            "sequence_lens": None,
            "param_inputs": [],
            "state_rows": {},
            "time_axes": {},
            "broadcast": {},
            "per_sequence": [],
        }
        if self.layout != "sequence":
            self.lead = 2 - LAYOUTS[self.layout]
            self.meta["layout"] = self.layout
        self.graph.reserve_names([i.name for i in g.initializer])
        for init in g.initializer:
            self.env[init.name] = Static(numpy_helper.to_array(init), name=init.name)
        for inp in g.input:
            if inp.name in self.env:
                continue  # an initializer listed as an input (old IR): a constant
            t = inp.type.tensor_type
            dims: list[int | str] = [d.dim_param or d.dim_value or "?" for d in t.shape.dim]
            self.env[inp.name] = Pending(inp.name, t.elem_type, dims)
        # An input is batch-major when it is transposed to time-major or read with layout=1;
        # known before the first use, since torch takes its shape before the transpose.
        self.batch_major_inputs: set[str] = set()
        self.time_axes: dict[str, int] = {}  # inputs (B, ..., T at k, ...), by k >= 2
        self.per_sequence_inputs: set[str] = set()
        self.broadcast_inputs: dict[str, str] = {}  # attn_mask: the query it broadcasts to
        made_by = {o: n for n in g.node for o in n.output}

        def heads_layout(name: str) -> None:  # (B, H, T, D): steps on axis 2; (B, T, H*D)
            if len(self._dims(name)) == 4:
                self.time_axes[name] = 2
            else:
                self.batch_major_inputs.add(name)

        # inputs that only comparisons read: small integers compare exactly as floats
        readers: dict[str, set[str]] = {}
        for node in g.node:
            for name in node.input:
                readers.setdefault(name, set()).add(node.op_type)
        self.compared_only = {n for n, ops in readers.items() if ops <= set(_COMPARISONS)}
        for node in g.node:
            at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Transpose" and list(at.get("perm", []))[:2] == [1, 0]:
                src = node.input[0]  # (through Reshapes that split the features: (B, T, H, D))
                while src in made_by and made_by[src].op_type == "Reshape":
                    src = made_by[src].input[0]
                self.batch_major_inputs.add(src)
            if node.op_type in ("LSTM", "GRU", "RNN") and at.get("layout", 0) == 1:
                self.batch_major_inputs.add(node.input[0])
            if node.op_type == "LinearAttention":  # (B, T, H*D): query, key, value, decay, beta
                self.batch_major_inputs.update(
                    n for i, n in enumerate(node.input) if n and i in (0, 1, 2, 4, 5)
                )
            if node.op_type == "Attention":  # Q (B, H, T, D) or (B, T, H*D); K, V per sequence
                q = node.input[0]
                heads_layout(q)
                names = [*node.input, "", "", ""]
                self.per_sequence_inputs.update(n for n in (*names[1:3], *names[4:6]) if n)
                if names[3]:
                    self.broadcast_inputs[names[3]] = q
            if node.op_type == "RotaryEmbedding":  # (B, H, T, D) or (B, T, H*D); ids (B, T)
                heads_layout(node.input[0])
                ids = node.input[3] if len(node.input) > 3 else ""
                # with ids, the caches are tables (max_position, r); without, (B, T, r)
                self.batch_major_inputs.update([ids] if ids else node.input[1:3])
            if node.op_type == "CausalConvWithState" and len(self._dims(node.input[0])) == 3:
                self.time_axes[node.input[0]] = 2  # (B, C, L): time last
            if node.op_type == "Scan":  # (B, T, ...) scan inputs: opset 8's, or axis 1
                M = int(at.get("num_scan_inputs", 0))
                scanned = node.input[len(node.input) - M :]
                axes = list(at.get("scan_input_axes", [0] * M))
                self.batch_major_inputs.update(
                    n for n, a in zip(scanned, axes, strict=False)
                    if self.opset < 9 or _scan_axis_index(a, self._dims(n)) == 1
                )  # fmt: skip
        if self.layout != "sequence":  # (layouts of sequences: one step has none)
            self.batch_major_inputs.clear()
            self.time_axes.clear()
            self.per_sequence_inputs.clear()
            self.broadcast_inputs.clear()

    @property
    def whole(self) -> bool:
        """Whether every input is one row of one step (no time and batch axes)."""
        return self.layout == "whole"

    @property
    def opset(self) -> int:
        """The default domain's opset (of the function being imported, inside one)."""
        return next((o.version for o in self.opsets if o.domain in ("", "ai.onnx")), 21)

    # ------------------------------------------------------------ errors
    def fail(self, node: onnx.NodeProto, why: str) -> ModelImportError:
        label = node.name or (node.output[0] if node.output else "?")
        return ModelImportError(f"cannot import {node.op_type} node {label!r}: {why}")

    # ---------------------------------------------------------- tensors
    def static_node(self, s: Static) -> rg.Value:
        """The graph node of a static tensor: a param for a float initializer (same name)."""
        if s.node is None:
            arr = np.asarray(s.value)
            if s.name and arr.dtype.kind == "f" and arr.ndim > 0:
                if s.runtime:  # fed at run time: no value here (init_params draws one)
                    s.node = self.graph.param(s.name, arr.shape, "uniform", scale=0.5)
                else:
                    self.params[s.name] = arr.astype(np.float32)
                    s.node = self.graph.param(s.name, arr.shape, arr.astype(np.float64))
            elif s.src is not None and isinstance(self.env.get(s.src[1]), Static):
                base = self.static_node(self.env[s.src[1]])
                s.node = rg.reshape(base, arr.shape)
            else:
                s.node = self.graph.constant(arr)
        return s.node

    def seq(self, name: str, node: onnx.NodeProto) -> rg.Value:
        """Tensor ``name`` as a time-major signal; resolves a pending input as a sequence."""
        t = self.get(name, node)
        if isinstance(t, Pending):
            t = self.declare_sequence(t)
        if isinstance(t, Seq):
            if t.batch_major:
                raise self.fail(node, f"{name!r} is batch-major here; only Transpose may use it")
            if t.time_at:
                raise self.fail(
                    node,
                    f"{name!r} is laid out (B, ..., T, ...) with its steps on axis {t.time_at}, "
                    "as Attention reads it; other ops read (T, B, ...) or (B, T, ...)",
                )
            return t.value
        if isinstance(t, _Step):
            raise self.fail(
                node,
                f"{name!r} is a Loop's iteration number: only Gather(x, {name}, axis=0) may "
                "read it (computed conditions and step arithmetic are not imported)",
            )
        raise self.fail(node, f"{name!r} is not a sequence ({type(t).__name__})")

    def declare_sequence(self, p: Pending) -> Seq:
        if p.name in self.broadcast_inputs:
            return self._declare_broadcast(p)
        k = self.time_axes.get(p.name, 0) if self.layout == "sequence" else 0
        if len(p.dims) < (max(2, k + 1) if self.layout == "sequence" else self.lead):
            what = "a sequence" if self.layout == "sequence" else "a batch of rows"
            raise ModelImportError(f"input {p.name!r} of rank {len(p.dims)} cannot be {what}")
        # (B, ..., T, ...) with k >= 2: the graph's (T, B, ...) keeps the other axes in order
        rest = [d for i, d in enumerate(p.dims) if i not in (0, k)] if k else p.dims[self.lead :]
        row = [int(d) if isinstance(d, int) else -1 for d in rest]
        if any(d < 0 for d in row):
            raise ModelImportError(
                f"input {p.name!r} has symbolic dims {p.dims}: read as one row (no time and "
                "batch axes), every size must be fixed"
                if self.whole
                else f"input {p.name!r} has symbolic feature dims {p.dims[self.lead :]}; "
                "rnngraph needs fixed feature sizes (only time and batch may be dynamic)"
            )
        T = onnx.TensorProto
        compared = p.elem in ONNX_SMALL_INTS and p.name in self.compared_only
        if p.elem not in (*_FLOATS, T.INT64, T.BOOL, T.UNDEFINED) and not compared:
            kind = T.DataType.Name(p.elem).lower()
            raise ModelImportError(
                f"input {p.name!r} holds {kind}: rnngraph computes sequences in float "
                "(with int64 indices), and would not wrap, saturate or divide as "
                f"{kind} does; cast the input to float in the model"
            )
        dtype = "int64" if p.elem == T.INT64 else "bool" if p.elem == T.BOOL else "float"
        v = self.graph.input(p.name, row, dtype=dtype)
        batch_major = p.name in self.batch_major_inputs and self.layout == "sequence"
        s = Seq(v, batch_major, time_at=k)
        if batch_major:
            self.meta["batch_major"].append(p.name)
        if k:
            self.meta["time_axes"][p.name] = k
        self.env[p.name] = s
        return s

    def _declare_broadcast(self, p: Pending) -> Seq:
        """An input that broadcasts against a 4-D query's ``(B, H, T, S)`` (``attn_mask``:
        ``(S,)``, ``(T, S)``, ``(H, T, S)``, ``(B, 1, T, S)``...): the graph takes it as
        ``(T, B, H or 1, S)``, the interface giving it the query's batch and steps."""
        if len(p.dims) > 4 or not all(isinstance(d, int) for d in p.dims[-1:]):
            raise ModelImportError(
                f"input {p.name!r} {p.dims}: an attention mask needs at most 4 axes and a "
                "fixed number of key positions (its last axis)"
            )
        dims = [1] * (4 - len(p.dims)) + list(p.dims)
        heads = dims[1] if isinstance(dims[1], int) else -1
        if heads < 0:
            raise ModelImportError(f"input {p.name!r} {p.dims}: its head axis must be fixed")
        T = onnx.TensorProto
        if p.elem not in (*_FLOATS, T.BOOL):
            raise ModelImportError(f"input {p.name!r}: an attention mask is bool or float")
        v = self.graph.input(
            p.name, [heads, int(dims[3])], dtype="bool" if p.elem == T.BOOL else "float"
        )
        s = Seq(v, time_at=2)
        self.meta["time_axes"][p.name] = 2
        self.meta["broadcast"][p.name] = {"like": self.broadcast_inputs[p.name], "rank": 4}
        self.env[p.name] = s
        return s

    def per_sequence(self, name: str, node: onnx.NodeProto, why: str) -> rg.Value:
        """Tensor ``name`` as a per-sequence value ``(B, ...)``: a model input the pre-pass
        found read so (an attention's keys), else refused: ``why``."""
        t = self.get(name, node)
        if isinstance(t, Pending) and name in self.per_sequence_inputs:
            dims = t.dims[1:]  # (a named length, "S", stays symbolic: the memory's length)
            if (
                not dims
                or any(d == "?" for d in dims)
                or not all(isinstance(d, int) for d in [dims[0], *dims[2:]])
            ):
                raise self.fail(
                    node, f"{why}; {name!r} has dims {t.dims} (after the batch: fixed sizes, "
                    "or a named length on axis 2)"
                )  # fmt: skip
            T = onnx.TensorProto
            if t.elem not in (*_FLOATS, T.UNDEFINED):
                raise self.fail(node, f"{name!r} must hold floats")
            v = self.graph.input(name, list(dims), axis=None)
            self.meta["per_sequence"].append(name)
            t = self.env[name] = PerSequence(v)
        if not isinstance(t, PerSequence):
            raise self.fail(node, why)
        return t.value

    def batch_major(self, name: str, node: onnx.NodeProto, why: str) -> rg.Value:
        """Tensor ``name`` as a batch-major ``(B, T, ...)`` signal (a pending input declared
        one), else refused: ``why``."""
        t = self.get(name, node)
        if isinstance(t, Pending):
            t = self.declare_sequence(t)
        if not isinstance(t, Seq) or not t.batch_major:
            raise self.fail(node, why)
        return t.value

    def get(self, name: str, node: onnx.NodeProto) -> Tensor:
        if name not in self.env:
            raise self.fail(node, f"its input {name!r} is not produced by any node")
        return self.env[name]

    # ------------------------------------------------------------- nodes
    def run(self) -> tuple[rg.Graph, dict[str, np.ndarray]]:
        for node in self.model.graph.node:
            self.node(node)
        for out in self.model.graph.output:
            self.output(out.name)
        # the model's inputs in its order (initializers listed as inputs are constants)
        given = [self.env[i.name] for i in self.model.graph.input]
        self.meta["inputs"] = [
            i.name
            for i, t in zip(self.model.graph.input, given, strict=True)
            if not isinstance(t, Static) or t.runtime
        ]
        self.meta["unused_inputs"] = [
            i.name for i, t in zip(self.model.graph.input, given, strict=True)
            if isinstance(t, Pending)
        ]  # fmt: skip
        self.meta["output_order"] = [o.name for o in self.model.graph.output]
        # (the interface holds while the graph keeps these: a graph derived from it, such
        # as its adjoint, speaks its own)
        self.meta["graph_name"] = self.graph.name
        self.meta["graph_inputs"] = list(self.graph.inputs)
        self.meta["graph_outputs"] = list(self.graph.outputs)
        self.meta["input_types"] = {
            i.name: [
                i.type.tensor_type.elem_type,
                [d.dim_param or d.dim_value or "?" for d in i.type.tensor_type.shape.dim],
            ]
            for i in self.model.graph.input
            if i.name in self.meta["inputs"]
        }
        self.meta["output_types"] = {
            o.name: o.type.tensor_type.elem_type
            for o in self.model.graph.output
            if o.type.tensor_type.elem_type
        }
        self.graph.meta["onnx"] = self.meta
        try:
            rg.verify(self.graph)
        except GraphError as e:
            raise ModelImportError(f"the imported graph does not verify: {e}") from e
        return self.graph, self.params

    def node(self, node: onnx.NodeProto) -> None:
        self.current = node
        ins = [self.env.get(n) if n else None for n in node.input]
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(node, f"domain {node.domain!r} is not supported")
        if self.layout != "sequence" and op in _STEPPED:
            raise self.fail(node, f"it runs over time, which a model read as {self.layout} has not")
        if op in ("LSTM", "GRU", "RNN"):
            return self.recurrent(node)
        if op == "Scan":
            return self.scan(node)
        if op == "Loop":
            return self.loop(node)
        if all(isinstance(t, Static) or t is None for t in ins):
            return self.evaluate(node)
        if op == "Identity":
            self.env[node.output[0]] = ins[0]
            return None
        if op in _SHAPE_ARITHMETIC and any(isinstance(t, ShapeVec) for t in ins):
            return self.shape_arithmetic(node)
        handler = getattr(self, f"op_{op}", None)
        if handler is None and (op in _ELEMENTWISE or op in _UNARY):
            handler = self.elementwise
        if handler is None:
            if self.function(node):
                return None
            raise self.fail(node, f"{op} is not supported on sequences")
        try:
            return handler(node)
        except ModelImportError as refused:  # a form our rule does not take: ONNX's definition
            try:
                found = self.function(node)
            except ModelImportError:
                found = False
            if not found:
                raise refused from None
            return None

    def function(self, node: onnx.NodeProto) -> bool:
        """Import ``node`` as the body ONNX defines its op with, if it defines one (see
        :mod:`rnngraph_onnx._functions`); False when it has none."""
        opsets = self.opsets
        if not has_function(node, opsets):
            return False
        found = expand(node, opsets, [self.type_of(n, node) for n in node.input])
        if found is None:
            return False
        body, inner_opsets = found
        outer, self.opsets = self.opsets, inner_opsets
        try:
            for n in body:
                self.node(n)
        except ModelImportError as e:
            raise self.fail(node, f"(as ONNX defines it) {e}") from None
        finally:
            self.opsets = outer
        return True

    def type_of(self, name: str, node: onnx.NodeProto) -> onnx.TypeProto:
        """The ONNX type of an input as the importer knows it (for functions whose body
        depends on their inputs' types)."""
        T = onnx.TensorProto
        if not name:
            return onnx.TypeProto()
        t = self.get(name, node)
        if isinstance(t, Pending):
            return float_type(t.dims, t.elem)
        if isinstance(t, Static):
            arr = np.asarray(t.value)
            return float_type(list(arr.shape), helper.np_dtype_to_tensor_dtype(arr.dtype))
        if isinstance(t, ShapeVec):
            return float_type([1 if t.scalar else len(t.dims)][: 0 if t.scalar else 1], T.INT64)
        if isinstance(t, Seq):
            v = t.value
            elem = {"int64": T.INT64, "bool": T.BOOL}.get(str(v.dtype), T.FLOAT)
            lead: list[int | str] = ["B", "T"] if t.batch_major else ["T", "B"]
            lead = lead[2 - self.lead :]  # (inside a Scan body: one step's (B, ...))
            return float_type([*lead, *(int(d) for d in v.shape[1:])], elem)
        return onnx.TypeProto()

    def evaluate(self, node: onnx.NodeProto) -> None:
        """A node of constants only: computed now by onnx's reference evaluator."""
        feeds = {n: self.env[n].value for n in node.input if n}
        inputs = [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for n, v in feeds.items()
        ]
        outputs = [helper.make_tensor_value_info(o, 0, None) for o in node.output if o]
        g = helper.make_graph([node], "one", inputs, outputs)
        m = helper.make_model(g, opset_imports=self.opsets)
        try:
            results = ReferenceEvaluator(m).run(None, feeds)
        except Exception as e:
            raise self.fail(node, f"evaluating it on constants failed: {e}") from e
        src = None
        if node.op_type in ("Unsqueeze", "Reshape", "Squeeze", "Flatten") and node.input[0]:
            src = (node.op_type, node.input[0])  # keeps the initializer a trainable param
        for name, value in zip([o for o in node.output if o], results, strict=True):
            self.env[name] = Static(np.asarray(value), src=src)

    def set(self, node: onnx.NodeProto, value: Tensor, index: int = 0) -> None:
        self.env[node.output[index]] = value

    def value_of(self, name: str, node: onnx.NodeProto) -> rg.Value:
        t = self.get(name, node)
        if isinstance(t, Static):
            return self.static_node(t)
        return self.seq(name, node)

    def signals(self, node: onnx.NodeProto) -> tuple[list[rg.Value], type]:
        """The values of ``node``'s inputs and what their result is: a :class:`Seq`, or a
        :class:`Flat` when one of them is (then a constant of one row, ``(k,)`` or
        ``(1, k)``, broadcasts along its rows and nothing else may meet it)."""
        self.weights_beside_signals(node)
        if not any(isinstance(self.env.get(n), Flat) for n in node.input):
            values = [self.value_of(n, node) for n in node.input]
            return (self.same_rank(values) if self.whole else values), Seq
        ts = [self.get(n, node) for n in node.input]
        values = []
        for name, t in zip(node.input, ts, strict=True):
            if isinstance(t, Flat):
                values.append(t.value)
            elif isinstance(t, Static) and np.ndim(t.value) < 2:
                values.append(self.static_node(t))
            elif isinstance(t, Static) and np.ndim(t.value) == 2 and np.shape(t.value)[0] == 1:
                values.append(rg.reshape(self.static_node(t), np.shape(t.value)[1:]))
            else:
                raise self.fail(
                    node,
                    f"{name!r} ({type(t).__name__}) meets a sequence flattened to rows "
                    "(-1, k): only such rows and constants of one row, (k,) or (1, k), may",
                )
        return values, Flat

    def same_rank(self, values: list[rg.Value]) -> list[rg.Value]:
        """Rows read whole, given leading axes of size 1 up to the highest rank among
        ``values``: ONNX broadcasts the tensors from the right, and each row sits behind
        its own (unit) step and batch axes."""
        top = max(len(v.shape) - (1 if v.type.batched else 0) for v in values)
        out = []
        for v in values:
            row = [int(d) for d in v.shape[1:]]
            if v.type.batched and len(row) < top:
                v = rg.reshape(v, [1] * (top - len(row)) + row)
            out.append(v)
        return out

    def weights_beside_signals(self, node: onnx.NodeProto) -> None:
        """Graph inputs of ``node`` of fixed float dims and a lower rank than a signal they
        meet are weights the caller feeds (a normalisation's scale): broadcast from the
        right, they have no time and batch axes of their own."""
        seen = [self.env.get(n) for n in node.input]
        ranks = [self.rank(t.value) for t in seen if isinstance(t, Seq)]
        ranks += [2 for t in seen if isinstance(t, Flat)]
        for t in seen:
            if (
                ranks and isinstance(t, Pending) and t.elem in _FLOATS
                and len(t.dims) < max(ranks) and all(isinstance(d, int) for d in t.dims)
            ):  # fmt: skip
                self.runtime_weight(t, tuple(int(d) for d in t.dims), node)

    def elementwise(self, node: onnx.NodeProto) -> None:
        args, kind = self.signals(node)
        op = _ELEMENTWISE.get(node.op_type) or _UNARY.get(node.op_type)
        if op is None:  # Identity
            self.set(node, kind(args[0]))
            return
        try:
            self.set(node, kind(getattr(rg, op)(*args)))
        except (GraphError, ValueError) as e:
            raise self.fail(node, str(e)) from e

    def rank(self, x: rg.Value) -> int:
        """The ONNX rank of a signal: its per-step rank plus the time axis outside a Scan."""
        return len(x.shape) + self.lead - 1

    def _axis(self, node: onnx.NodeProto, axis: int, rank: int) -> int:
        """An ONNX axis of a signal tensor of ``rank`` as a per-step axis."""
        a = axis % rank
        if a < self.lead:
            raise self.fail(node, "it works along the time or batch axis")
        return a - rank  # counted from the end, as rnngraph stores axes

    # -- shape arithmetic ------------------------------------------------
    def op_Shape(self, node: onnx.NodeProto) -> None:
        t = self.get(node.input[0], node)
        if isinstance(t, Pending):
            t = self.declare_sequence(t)
        if not isinstance(t, Seq):
            raise self.fail(node, "shape of a non-sequence")
        row = [int(d) for d in t.value.shape[1:]]
        dims: list[int | str] = ["B", "T", *row] if t.batch_major else ["T", "B", *row]
        if self.layout != "sequence":  # (rows: the batch's size; whole: every size known)
            dims = [*["B"][: self.lead], *row]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        start, end = attrs.get("start", 0), attrs.get("end")
        if self.whole:  # every size known: a constant, which the ops after it fold
            self.set(node, Static(np.array(dims[start:end], np.int64)))
            return
        whole = start == 0 and end is None and not t.batch_major
        self.set(node, ShapeVec(dims[start:end], of=t if whole else None))

    def shape_arithmetic(self, node: onnx.NodeProto) -> None:
        """Arithmetic on shape vectors: numbers combine; a symbolic size survives * 1 only."""
        a, b = (self._shape_input(n, node) for n in node.input)
        n = max(len(a.dims), len(b.dims))
        da = a.dims * n if len(a.dims) == 1 else a.dims
        db = b.dims * n if len(b.dims) == 1 else b.dims
        out: list[int | str] = []
        for x, y in zip(da, db, strict=True):
            if isinstance(x, int) and isinstance(y, int):
                out.append(_SHAPE_ARITHMETIC[node.op_type](x, y))
            elif node.op_type in ("Mul", "Div") and 1 in (x, y):
                out.append(y if x == 1 else x)
            elif node.op_type == "Min" and {type(x), type(y)} == {int, str}:
                k, size = (x, y) if isinstance(x, int) else (y, x)
                out.append(f"min({k},{size})")
            elif node.op_type == "Max" and 1 in (x, y) and "T" in (x, y):
                out.append("T")  # (a sequence's length, at least 1)
            else:
                raise self.fail(node, f"arithmetic on the symbolic sizes {x!r}, {y!r}")
        self.set(node, ShapeVec(out, scalar=a.scalar and b.scalar))

    def _shape_input(self, name: str, node: onnx.NodeProto) -> ShapeVec:
        t = self.get(name, node)
        if isinstance(t, Static):
            flat = np.asarray(t.value).reshape(-1).tolist()
            return ShapeVec([int(v) for v in flat], scalar=np.ndim(t.value) == 0)
        if isinstance(t, ShapeVec):
            return t
        raise self.fail(node, f"{name!r} is not a shape")

    def op_Gather(self, node: onnx.NodeProto) -> None:
        t = self.get(node.input[0], node)
        idx = self.get(node.input[1], node)
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        if isinstance(idx, _Step):  # a Loop body reading a sequence at its step
            if not isinstance(t, Seq | Pending) or axis != 0:
                raise self.fail(node, "a Loop's iteration number indexes a sequence's steps only")
            self.set(node, Seq(self.seq(node.input[0], node)))
            return
        if isinstance(t, ShapeVec) and isinstance(idx, Static):
            i = np.asarray(idx.value)
            picked = [t.dims[int(k)] for k in i.reshape(-1)]
            self.set(node, ShapeVec(picked, scalar=i.ndim == 0))
            return
        if isinstance(t, Seq) and axis == 0 and self.lead == 2 and isinstance(idx, Static):
            # x[-1] / x[0] over time: the value at the last / first step, as a state's final.
            at_step = [int(v) for v in np.asarray(idx.value).reshape(-1)]
            if at_step not in ([-1], [0]):
                raise self.fail(node, f"only the first or last step can be taken, got {at_step}")
            name = self.graph.fresh_name(f"{node.output[0]}.at")
            row_ = [int(d) for d in t.value.shape[1:]]
            s = self.graph.state(name, row_, delay=1 if at_step == [-1] else -1)
            self.graph.assign(s, t.value)
            row = tuple(int(d) for d in s.shape[1:])
            self.set(node, Rows([RowItem("final", name)], row, squeezed=False))
            return
        if isinstance(t, Seq | Pending) and isinstance(idx, Static):
            x = self.seq(node.input[0], node)
            ax = self._axis(node, axis, self.rank(x))
            indices = self.graph.constant(np.asarray(idx.value, np.int64))
            self.set(node, Seq(rg.gather(x, indices, axis=ax)))
            return
        raise self.fail(node, "only constant indices into shapes or feature axes")

    def op_Unsqueeze(self, node: onnx.NodeProto) -> None:
        axes = self._ints(node, 1, "axes")
        t = self._row_axes_of_input(self.get(node.input[0], node), axes, extra=len(axes))
        if isinstance(t, ShapeVec) and t.scalar and axes == [0]:
            self.set(node, ShapeVec(t.dims))
        elif isinstance(t, Rows) and axes == [0] and t.squeezed:
            self.set(node, Rows(t.items, t.row, t.batch_major))
        elif isinstance(t, Seq):
            x = t.value
            rank = self.rank(x)
            (a,) = axes
            a = a % (rank + 1)
            if a < self.lead:
                raise self.fail(node, "it inserts an axis before time or batch")
            row = [int(d) for d in x.shape[1:]]
            row.insert(a - self.lead, 1)
            self.set(node, Seq(rg.reshape(x, row)))
        else:
            raise self.fail(node, f"unsupported operand {type(t).__name__}")

    def _row_axes_of_input(self, t: Tensor, axes: list[int], extra: int = 0) -> Tensor:
        """A model input that a Squeeze or Unsqueeze reads along row axes only: a sequence
        (along its first two axes it could be initial states)."""
        if isinstance(t, Pending) and axes and len(t.dims) >= 2:
            rank = len(t.dims) + extra
            if all(a % rank >= 2 for a in axes):
                return self.declare_sequence(t)
        return t

    def op_Squeeze(self, node: onnx.NodeProto) -> None:
        axes = self._ints(node, 1, "axes")
        t = self._row_axes_of_input(self.get(node.input[0], node), axes)
        if isinstance(t, Dirs) and axes == [1] and len(t.values) == 1:
            self.set(node, Seq(t.values[0]))
        elif isinstance(t, Rows) and axes == [0] and len(t.items) == 1 and not t.squeezed:
            self.set(node, Rows(t.items, t.row, t.batch_major, squeezed=True))
        elif isinstance(t, Seq):
            x = t.value
            rank = self.rank(x)
            drop = {self._axis(node, a, rank) for a in axes}  # (counted from the end)
            width = len(x.shape) - 1
            row = [int(d) for i, d in enumerate(x.shape[1:]) if i - width not in drop]
            self.set(node, Seq(rg.reshape(x, row)))
        elif isinstance(t, ShapeVec) and len(t.dims) == 1 and isinstance(t.dims[0], int):
            self.set(node, Static(np.array(t.dims[0], np.int64)))  # (a known size, a number)
        else:
            raise self.fail(node, f"unsupported operand {type(t).__name__}")

    def _ints(self, node: onnx.NodeProto, index: int, attr: str) -> list[int]:
        for a in node.attribute:
            if a.name == attr:
                return [int(v) for v in helper.get_attribute_value(a)]
        if len(node.input) > index and node.input[index]:
            t = self.get(node.input[index], node)
            if isinstance(t, Static):
                return [int(v) for v in np.asarray(t.value).reshape(-1)]
            raise self.fail(node, f"its {attr} must be constant")
        return []

    def op_Split(self, node: onnx.NodeProto) -> None:
        """``Split`` of a sequence along a feature axis (``torch.chunk`` of a cell's gate
        pre-activations): slices of the sizes in ``split`` (input or attribute), or
        ``num_outputs`` parts, the last one smaller when the axis does not divide."""
        x = self.seq(node.input[0], node)
        rank = self.rank(x)
        ax = self._axis(node, int(self._attr(node, "axis", 0)), rank)
        n = int(x.shape[ax])
        sizes = self._ints(node, 1, "split")
        if not sizes:
            parts = int(self._attr(node, "num_outputs", 0)) or len(node.output)
            each = -(-n // parts)
            sizes = [min(each, n - i * each) for i in range(parts)]
        if len(sizes) != len(node.output) or sum(sizes) != n or min(sizes) < 0:
            raise self.fail(node, f"parts {sizes} do not split an axis of {n} into "
                                  f"{len(node.output)} outputs")  # fmt: skip
        start = 0
        for i, size in enumerate(sizes):
            if node.output[i]:
                self.set(node, Seq(rg.slice(x, start, start + size, axes=ax)), i)
            start += size

    def op_LpNormalization(self, node: onnx.NodeProto) -> None:
        """``x / ||x||_p`` along a feature axis (p 1 or 2); a zero vector stays zero."""
        x = self.seq(node.input[0], node)
        ax = self._axis(node, int(self._attr(node, "axis", -1)), self.rank(x))
        p = int(self._attr(node, "p", 2))
        if p not in (1, 2):
            raise self.fail(node, f"p = {p}: 1 or 2")
        norm = rg.reduce_sum(rg.abs(x) if p == 1 else x * x, ax, keepdims=True)
        norm = norm if p == 1 else rg.sqrt(norm)
        zero = rg.less(norm, float(np.finfo(np.float32).tiny))
        self.set(node, Seq(rg.where(zero, 0.0, x / rg.where(zero, 1.0, norm))))

    def op_Concat(self, node: onnx.NodeProto) -> None:
        parts = [self.get(n, node) for n in node.input]
        axis = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "axis")
        if all(isinstance(p, ShapeVec | Static) for p in parts):
            dims: list[int | str] = []
            for n in node.input:
                dims += self._shape_input(n, node).dims
            self.set(node, ShapeVec(dims))
        elif all(isinstance(p, Rows) for p in parts) and axis == 0:
            rows = [p for p in parts if isinstance(p, Rows)]
            self.set(node, Rows([i for r in rows for i in r.items], rows[0].row))
        elif axis == 0 and len(parts) == 2 and any(isinstance(p, _Pad) for p in parts):
            self.set(node, _Joined(parts))  # a shifted copy in the making (see op_Slice)
        else:
            vals = [self.value_of(n, node) for n in node.input]
            rank = self.rank(vals[0])
            self.set(node, Seq(rg.concat(vals, axis=self._axis(node, axis, rank))))

    def _attr(self, node: onnx.NodeProto, name: str, default: Any) -> Any:
        return next(
            (helper.get_attribute_value(a) for a in node.attribute if a.name == name), default
        )

    def _arg_extreme(self, node: onnx.NodeProto, largest: bool) -> None:
        x = self.seq(node.input[0], node)
        ax = self._axis(node, int(self._attr(node, "axis", 0)), self.rank(x))
        keep = bool(self._attr(node, "keepdims", 1))
        fn = rg.argmax if largest else rg.argmin
        if self._attr(node, "select_last_index", 0):  # the first of the reversed axis
            found = rg.cast(fn(rg.slice(x, None, None, ax, -1), ax, keepdims=keep), "float")
            self.set(node, Seq(rg.cast(float(int(x.shape[ax]) - 1) - found, "int64")))
            return
        self.set(node, Seq(fn(x, ax, keepdims=keep)))

    def op_Trilu(self, node: onnx.NodeProto) -> None:
        """The upper (or lower) triangle of the last two axes from diagonal ``k``: a
        constant mask over a row's known sizes."""
        x = self.seq(node.input[0], node)
        if len(x.shape) < 3:
            raise self.fail(node, f"its last two axes must be a row's, got {x.shape}")
        k = 0
        if len(node.input) > 1 and node.input[1]:
            kt = self.get(node.input[1], node)
            if not isinstance(kt, Static):
                raise self.fail(node, "its diagonal k must be constant")
            k = int(np.asarray(kt.value).reshape(-1)[0])
        n, m = int(x.shape[-2]), int(x.shape[-1])
        upper = int(self._attr(node, "upper", 1))
        keep = (np.triu if upper else np.tril)(np.ones((n, m), bool), k)
        zero = rg.cast(self.graph.constant(np.zeros((), np.float64)), str(x.dtype))
        self.set(node, Seq(rg.where(self.graph.constant(keep), x, zero)))

    def op_Hardmax(self, node: onnx.NodeProto) -> None:
        """1 at the first largest value along the axis, 0 elsewhere."""
        x = self.seq(node.input[0], node)
        ax = self._axis(node, int(self._attr(node, "axis", -1)), self.rank(x))
        n = int(x.shape[ax])
        positions = np.arange(n, dtype=np.int64).reshape([n] + [1] * (-ax - 1))
        hot = rg.equal(rg.argmax(x, ax, keepdims=True), self.graph.constant(positions))
        self.set(node, Seq(rg.cast(hot, "float")))

    def _total(self, node: onnx.NodeProto, scale: float = 1.0) -> None:
        args, kind = self.signals(node)
        total = args[0]
        for a in args[1:]:
            total = total + a
        self.set(node, kind(total * scale if scale != 1.0 else total))

    def op_Sum(self, node: onnx.NodeProto) -> None:
        self._total(node)

    def op_Mean(self, node: onnx.NodeProto) -> None:
        self._total(node, 1.0 / len(node.input))

    def op_Tan(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        self.set(node, Seq(rg.sin(x) / rg.cos(x)))

    def op_Sinh(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        self.set(node, Seq(0.5 * (rg.exp(x) - rg.exp(-x))))

    def op_Cosh(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        self.set(node, Seq(0.5 * (rg.exp(x) + rg.exp(-x))))

    # inverse trigonometric and hyperbolic functions, written with atan, log and sqrt in
    # forms that stay finite over their domains
    def op_Asin(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        self.set(node, Seq(_asin(x)))

    def op_Acos(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        self.set(node, Seq(float(np.pi / 2) - _asin(x)))

    def op_Asinh(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        a = rg.abs(x)
        y = rg.log(a + rg.sqrt(a * a + 1.0))  # (of |x|: no cancellation for x < 0)
        self.set(node, Seq(rg.where(rg.less(x, 0.0), -y, y)))

    def op_Acosh(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        self.set(node, Seq(rg.log(x + rg.sqrt(x * x - 1.0))))

    def op_Atanh(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        self.set(node, Seq(0.5 * rg.log((1.0 + x) / (1.0 - x))))

    def op_Reciprocal(self, node: onnx.NodeProto) -> None:
        (x,), kind = self.signals(node)
        self.set(node, kind(rg.div(1.0, x)))

    def op_Dropout(self, node: onnx.NodeProto) -> None:
        """Inference: the input unchanged (and a mask of ones); training mode is refused
        (its random mask would not be ONNX's)."""
        training = node.input[2] if len(node.input) > 2 else ""
        if training:
            t = self.get(training, node)
            if not isinstance(t, Static) or bool(np.asarray(t.value).reshape(-1)[0]):
                raise self.fail(node, "training_mode must be a constant false (inference)")
        x = self.seq(node.input[0], node)
        self.set(node, Seq(x))
        if len(node.output) > 1 and node.output[1]:  # every element kept
            self.set(node, Seq(rg.equal(rg.zeros_like(x), 0.0)), 1)

    def op_ArgMax(self, node: onnx.NodeProto) -> None:
        self._arg_extreme(node, True)

    def op_ArgMin(self, node: onnx.NodeProto) -> None:
        self._arg_extreme(node, False)

    def op_TopK(self, node: onnx.NodeProto) -> None:
        """Values and indices, sorted (TopK's ``sorted=0`` order is unspecified: sorted
        is one of its answers)."""
        x = self.seq(node.input[0], node)
        ax = self._axis(node, int(self._attr(node, "axis", -1)), self.rank(x))
        largest = bool(self._attr(node, "largest", 1))
        k = self.get(node.input[1], node)
        n = x.shape[ax]
        whole = isinstance(k, ShapeVec) and k.dims == [n]
        if not whole and not isinstance(k, Static):
            raise self.fail(node, "its k must be a constant or the length of its axis")
        count: Any = n if whole else int(np.asarray(k.value).reshape(-1)[0])
        if count == n:
            idx = rg.argsort(x, ax, descending=largest)
        else:
            idx = rg.top_k(x, int(count), ax, largest=largest)[1]
        self.set(node, Seq(rg.take_along(x, idx, ax)), 0)
        self.set(node, Seq(idx), 1)

    def _bools(self, node: onnx.NodeProto) -> tuple[rg.Value, rg.Value]:
        true = self.graph.constant(np.array(True))
        false = self.graph.constant(np.array(False))
        return true, false

    def _logic(self, node: onnx.NodeProto, build: Any) -> None:
        args = [self.value_of(n, node) for n in node.input]
        if self.whole:
            args = self.same_rank(args)
        if any(a.dtype != "bool" for a in args) and node.op_type in ("And", "Or", "Xor", "Not"):
            raise self.fail(node, "its operands must be bool")
        try:
            self.set(node, Seq(build(*args)))
        except (GraphError, ValueError) as e:
            raise self.fail(node, str(e)) from e

    def op_Not(self, node: onnx.NodeProto) -> None:
        true, false = self._bools(node)
        self._logic(node, lambda a: rg.where(a, false, true))

    def op_And(self, node: onnx.NodeProto) -> None:
        _, false = self._bools(node)
        self._logic(node, lambda a, b: rg.where(a, b, false))

    def op_Or(self, node: onnx.NodeProto) -> None:
        true, _ = self._bools(node)
        self._logic(node, lambda a, b: rg.where(a, true, b))

    def op_Xor(self, node: onnx.NodeProto) -> None:
        true, false = self._bools(node)
        self._logic(node, lambda a, b: rg.where(a, rg.where(b, false, true), b))

    def op_GreaterOrEqual(self, node: onnx.NodeProto) -> None:
        true, false = self._bools(node)
        self._logic(node, lambda a, b: rg.where(rg.less(a, b), false, true))

    def op_LessOrEqual(self, node: onnx.NodeProto) -> None:
        true, false = self._bools(node)
        self._logic(node, lambda a, b: rg.where(rg.greater(a, b), false, true))

    def op_GatherElements(self, node: onnx.NodeProto) -> None:
        x, idx = (self.value_of(n, node) for n in node.input[:2])
        ax = self._axis(node, int(self._attr(node, "axis", 0)), self.rank(x))
        self.set(node, Seq(rg.take_along(x, idx, ax)))

    def op_ScatterElements(self, node: onnx.NodeProto) -> None:
        if self._attr(node, "reduction", b"none") not in (b"add", "add"):
            raise self.fail(node, "only reduction='add' is supported")
        base, idx, values = (self.value_of(n, node) for n in node.input[:3])
        ax = self._axis(node, int(self._attr(node, "axis", 0)), self.rank(base))
        self.set(node, Seq(rg.scatter_add_along(base, idx, values, ax)))

    def _quant_params(
        self, node: onnx.NodeProto, x: rg.Value, kind: str | None
    ) -> tuple[list[float], list[int], int | None, str]:
        """A Q/DQ node's constant scale and zero point, its kind and axis (from the end)."""
        scale = self.get(node.input[1], node)
        zp = self.get(node.input[2], node) if len(node.input) > 2 and node.input[2] else None
        if not isinstance(scale, Static) or (zp is not None and not isinstance(zp, Static)):
            raise self.fail(node, "its scale and zero point must be constants")
        if int(self._attr(node, "block_size", 0)):
            raise self.fail(node, "blocked quantisation is not supported")
        zv = np.asarray(zp.value) if zp is not None else None
        if kind is None:  # QuantizeLinear: the zero point's kind, or output_dtype (default uint8)
            code = int(self._attr(node, "output_dtype", 0))
            kind = str(zv.dtype) if zv is not None else {3: "int8", 5: "int16"}.get(code, "uint8")
        if kind not in ("int8", "int16", "int32"):
            raise self.fail(node, f"only int8, int16 and int32 grids are supported, not {kind}")
        scales = [float(v) for v in np.asarray(scale.value).reshape(-1)]
        zps = [int(v) for v in zv.reshape(-1)] if zv is not None else [0] * len(scales)
        axis = None
        if len(scales) > 1:
            axis = self._axis(node, int(self._attr(node, "axis", 1)), self.rank(x))
        return scales, zps, axis, kind

    def op_QuantizeLinear(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        scales, zps, axis, kind = self._quant_params(node, x, None)
        self.set(node, Seq(rg.quantize_linear(x, scales, zps, kind, axis=axis)))

    def op_DequantizeLinear(self, node: onnx.NodeProto) -> None:
        q = self.seq(node.input[0], node)
        if q.dtype not in ("int8", "int16", "int32"):
            raise self.fail(node, f"it dequantises a {q.dtype} sequence")
        scales, zps, axis, _ = self._quant_params(node, q, q.dtype)
        self.set(node, Seq(rg.dequantize_linear(q, scales, zps, axis=axis)))

    def op_CumSum(self, node: onnx.NodeProto) -> None:
        """A running sum along a feature axis is ``rg.cumsum``; along the steps it is a
        recurrence, a state ``s(t) = s(t - 1) + x(t)`` from zeros (``reverse``: from the
        end, ``s(t) = s(t + 1) + x(t)``; ``exclusive``: the sum before the step), which
        adds in the order onnxruntime's kernel does."""
        x = self.seq(node.input[0], node)
        t = self.get(node.input[0], node)
        axis = self.get(node.input[1], node)
        if not isinstance(axis, Static):
            raise self.fail(node, "its axis must be a constant")
        rank = self.rank(x)
        a = int(np.asarray(axis.value).reshape(-1)[0]) % rank
        reverse = bool(self._attr(node, "reverse", 0))
        exclusive = bool(self._attr(node, "exclusive", 0))
        if isinstance(t, Seq) and t.time_at == 0 and a == int(t.batch_major):
            row = tuple(int(d) for d in x.shape[1:])
            s = self.fresh_state(f"{node.output[0]}.sum", row, delay=-1 if reverse else 1)
            total = s + x
            self.graph.assign(s, total)
            self.set(node, Seq(s if exclusive else total, batch_major=t.batch_major))
            return
        ax = self._axis(node, a, rank)
        self.set(node, Seq(rg.cumsum(x, ax, reverse=reverse, exclusive=exclusive)))

    def op_Pad(self, node: onnx.NodeProto) -> None:
        """Zero padding of feature axes (what rnngraph's ``pad`` lowers to)."""
        x = self.seq(node.input[0], node)
        mode = self._attr(node, "mode", b"constant")
        if mode not in (b"constant", "constant"):
            raise self.fail(node, f"only constant padding is supported, not {mode!r}")
        if len(node.input) > 2 and node.input[2]:
            fill = self.get(node.input[2], node)
            if not isinstance(fill, Static) or np.any(np.asarray(fill.value) != 0):
                raise self.fail(node, "only padding with zeros is supported")
        pads = self._ints(node, 1, "pads")
        count = len(pads) // 2
        rank = self.rank(x)
        axes = self._ints(node, 3, "axes") or list(range(count))
        ours, widths = [], []
        for i, a in enumerate(axes):
            lo, hi = pads[i], pads[i + count]
            if lo < 0 or hi < 0:
                raise self.fail(node, "negative pads (cropping) are not supported")
            if lo or hi:
                ours.append(self._axis(node, a, rank))
                widths.append((lo, hi))
        self.set(node, Seq(rg.ops.pad(x, ours, widths) if ours else x))

    def op_ConstantOfShape(self, node: onnx.NodeProto) -> None:
        shape = self._shape_input(node.input[0], node)
        value = next(
            (numpy_helper.to_array(helper.get_attribute_value(a)) for a in node.attribute),
            np.zeros(1, np.float32),
        )
        if "T" in shape.dims and shape.of is not None:
            if float(np.asarray(value).reshape(-1)[0]) != 0.0:
                raise self.fail(node, "only zeros are supported as a sequence-shaped constant")
            self.set(node, Seq(rg.zeros_like(shape.of.value)))  # zeros shaped like a sequence
            return
        if "T" in shape.dims:
            # The tick sequence rnngraph's exporter feeds to a Scan with no input.
            self.set(node, _Ticks())
            return
        if float(np.asarray(value).reshape(-1)[0]) != 0.0:
            raise self.fail(node, "only zeros are supported as a batch-sized constant")
        if shape.dims[:1] == ["B"]:  # (B, ...): one row of zeros
            row = tuple(int(d) for d in shape.dims[1:])
            self.set(node, Rows([RowItem("zeros")], row, squeezed=True))
        elif shape.dims[1:2] == ["B"]:  # (D, B, ...)
            row = tuple(int(d) for d in shape.dims[2:])
            self.set(node, Rows([RowItem("zeros")] * int(shape.dims[0]), row))
        else:
            raise self.fail(node, f"zeros of shape {shape.dims} have no batch axis")

    def op_Expand(self, node: onnx.NodeProto) -> None:
        src = self.get(node.input[0], node)
        shape = self._shape_input(node.input[1], node)
        if isinstance(src, Static) and shape.dims[:1] == ["B"]:
            # An initial value broadcast over the batch: one row item.
            row = tuple(int(d) for d in shape.dims[1:])
            self.set(node, Rows([RowItem("static", src.value)], row, squeezed=True))
            return
        if isinstance(src, Static) and shape.dims[1:2] == ["B"] and isinstance(shape.dims[0], int):
            # (D, B, ...) initial states, as torch's newer exporter writes zeros.
            row = tuple(int(d) for d in shape.dims[2:])
            value = np.broadcast_to(np.asarray(src.value), (int(shape.dims[0]), 1, *row))
            kind = "zeros" if not np.any(value) else "static"
            items = [
                RowItem(kind, None if kind == "zeros" else value[d, 0]) for d in range(len(value))
            ]
            self.set(node, Rows(items, row))
            return
        if self.whole and isinstance(src, Seq | Pending):  # a row to a known shape
            x = self.seq(node.input[0], node)
            have = [int(d) for d in x.shape[1:]]
            dims = [int(d) for d in shape.dims]
            rank = max(len(have), len(dims))
            a = [1] * (rank - len(have)) + have
            b = [1] * (rank - len(dims)) + dims
            if any(p != q and 1 not in (p, q) for p, q in zip(a, b, strict=True)):
                raise self.fail(node, f"{have} does not broadcast to {dims}")
            target = [max(p, q) for p, q in zip(a, b, strict=True)]
            if len(have) < rank:
                x = rg.reshape(x, a)
            every = self.graph.constant(np.ones(target, bool))
            self.set(node, Seq(rg.where(every, x, x)))  # (the broadcast, in any dtype)
            return
        raise self.fail(
            node, f"only a constant broadcast over the batch is supported, got {shape.dims}"
        )

    def op_Slice(self, node: onnx.NodeProto) -> None:
        t = self.get(node.input[0], node)
        starts, ends = self._slice_bounds(node)
        axes = self._ints(node, 3, "axes") or list(range(len(starts)))
        steps = self._ints(node, 4, "steps") or [1] * len(starts)
        if isinstance(t, Pending) and axes == [0] and t.name not in self.batch_major_inputs:
            t = self.state_rows(t)
        if isinstance(t, Rows) and axes == [0] and steps == [1]:
            self.set(node, Rows(t.items[int(starts[0]) : _end(ends[0])], t.row))
        elif isinstance(t, ShapeVec) and axes == [0]:
            self.set(node, ShapeVec(t.dims[int(starts[0]) : _end(ends[0])]))
        elif isinstance(t, _Joined) and axes == [0]:
            self.set(node, t.shift(self, node, starts[0], ends[0]))
        elif isinstance(t, Seq | Pending):
            x = self.seq(node.input[0], node)
            rank = self.rank(x)
            ax = [self._axis(node, a, rank) for a in axes]
            self.set(
                node, Seq(rg.slice(x, [int(s) for s in starts], [_end(e) for e in ends], ax, steps))
            )
        else:
            raise self.fail(node, f"unsupported operand {type(t).__name__}")

    def _slice_bounds(self, node: onnx.NodeProto) -> tuple[list[Any], list[Any]]:
        out: list[list[Any]] = []
        for i in (1, 2):
            t = self.get(node.input[i], node)
            if isinstance(t, Static):
                out.append([int(v) for v in np.asarray(t.value).reshape(-1)])
            elif isinstance(t, ShapeVec):
                out.append(list(t.dims))
            else:
                raise self.fail(node, "its bounds must be constants or shapes")
        return out[0], out[1]

    def op_Tile(self, node: onnx.NodeProto) -> None:
        src = self.get(node.input[0], node)
        reps = self._shape_input(node.input[1], node)
        if (
            isinstance(src, Rows)
            and not src.squeezed
            and len(src.items) == 1
            and all(r == 1 for r in reps.dims[1:])
        ):
            rows = reps.dims[0]  # k, or min(k,T): an exported tap pads at most T rows
            k = _MIN_T.fullmatch(rows) if isinstance(rows, str) else None
            self.set(node, _Pad(src, int(k.group(1)) if k else int(rows), rows))
            return
        raise self.fail(node, "only the initial-value padding of a shifted copy is supported")

    def op_Transpose(self, node: onnx.NodeProto) -> None:
        t = self.get(node.input[0], node)
        perm = self._ints(node, len(node.input), "perm")  # (an attribute only)
        if isinstance(t, Pending):
            t = self.declare_sequence(t)
        if not perm and isinstance(t, Seq):  # (ONNX's default: every axis reversed)
            perm = list(range(self.rank(t.value)))[::-1]
        if isinstance(t, Seq) and self.whole:  # (any axes of a row)
            self.set(node, Seq(rg.transpose(t.value, [0, *(p + 1 for p in perm)])))
        elif isinstance(t, Seq) and self.layout == "rows":  # (the batch stays first)
            if perm[0] != 0:
                raise self.fail(node, f"permutation {perm} moves the batch axis")
            self.set(node, Seq(rg.transpose(t.value, list(perm))))
        elif isinstance(t, Seq) and perm[:2] == [1, 0] and perm[2:] == list(range(2, len(perm))):
            self.set(node, Seq(t.value, batch_major=not t.batch_major))
        elif isinstance(t, Dirs) and perm == [0, 2, 1, 3]:
            H = int(t.values[0].shape[-1])
            stacked = [rg.reshape(v, (1, H)) for v in t.values]
            self.set(node, Seq(stacked[0] if len(stacked) == 1 else rg.concat(stacked, axis=-2)))
        elif isinstance(t, Seq) and perm[:2] == [0, 1]:
            self.set(node, Seq(rg.transpose(t.value, [0, *(p - 1 for p in perm[2:])])))
        else:
            raise self.fail(
                node,
                f"permutation {perm} of {type(t).__name__} moves the time or batch axis among "
                "the features: sequences keep (T, B) or (B, T) in front",
            )

    # -- pools over a step's row (ONNX's (N, C, *S) read as time, batch and the row S)
    def _window(
        self, node: onnx.NodeProto, x: rg.Value, kernel: list[int] | None = None
    ) -> dict[str, Any]:
        """A pool's (or a convolution's) window over the row of ``x`` (read as rows: over
        the row's axes after its channels): kernel, strides, dilations and
        ``(before, after)`` pads (``auto_pad`` worked out; ``ceil_mode``'s last window as
        ``extra`` padding after the end, never chosen and never counted)."""
        size = [int(d) for d in x.shape[1 + self.channels :]]
        d = len(size)
        if d not in (1, 2):
            raise self.fail(node, f"a pool over {d} axes: 1 or 2 are read")
        kernel = kernel or [int(k) for k in self._attr(node, "kernel_shape", [])]
        strides = [int(v) for v in self._attr(node, "strides", [1] * d)]
        dil = [int(v) for v in self._attr(node, "dilations", [1] * d)]
        pads = [int(v) for v in self._attr(node, "pads", [0] * 2 * d)]
        auto = self._attr(node, "auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        span = [(k - 1) * r + 1 for k, r in zip(kernel, dil, strict=True)]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            total = [max((-(-n // st) - 1) * st + sp - n, 0)
                     for n, st, sp in zip(size, strides, span, strict=True)]  # fmt: skip
            small = [t // 2 for t in total]
            big = [t - h for t, h in zip(total, small, strict=True)]
            pads = small + big if auto == "SAME_UPPER" else big + small
        elif auto == "VALID":
            pads = [0] * 2 * d
        pairs = [(pads[i], pads[i + d]) for i in range(d)]
        extra = [0] * d
        if self._attr(node, "ceil_mode", 0):  # a last, partial window: padding past the end
            for i, (n, (a, b), sp, st) in enumerate(zip(size, pairs, span, strides, strict=True)):
                windows = -(-(n + a + b - sp) // st) + 1
                if (windows - 1) * st >= n + a:  # (one starting in the end padding is not)
                    windows -= 1
                extra[i] = max((windows - 1) * st + sp - (n + a + b), 0)
                pairs[i] = (a, b + extra[i])
        return {
            "kernel": kernel, "stride": strides, "dilation": dil, "padding": pairs,
            "extra": extra,
        }  # fmt: skip

    @property
    def channels(self) -> int:
        """Whether a row starts with channels (``(C, *S)``: ONNX's ``(N, C, *S)`` read as
        rows) rather than being the spatial axes alone (read as sequences: ``T, B = N, C``)."""
        return 1 if self.layout == "rows" else 0

    def _channel(self, x: rg.Value) -> rg.Value:
        """The row as rnngraph's pools take it, ``(C, *S)``: ``S`` as one channel."""
        if self.channels:
            return x
        return rg.reshape(x, [1, *(int(d) for d in x.shape[1:])])

    def _unchannel(self, y: rg.Value) -> rg.Value:
        if self.channels:
            return y
        return rg.reshape(y, [int(d) for d in y.shape[2:]])

    def op_MaxPool(self, node: onnx.NodeProto) -> None:
        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "its Indices output is not read")
        x = self.seq(node.input[0], node)
        w = self._window(node, x)
        y = rg.max_pool(
            self._channel(x), w["kernel"], w["stride"], w["padding"], dilation=w["dilation"]
        )
        self.set(node, Seq(self._unchannel(y)))

    def _window_sum(self, x: rg.Value, w: Mapping[str, Any]) -> rg.Value:
        """Each window's sum (zeros beyond the edges), channel by channel: a convolution
        by ones."""
        c = int(x.shape[1])
        ones = self.graph.constant(np.ones([c, 1, *w["kernel"]]))
        return rg.conv(
            x, ones, stride=w["stride"], padding=w["padding"], dilation=w["dilation"], groups=c
        )

    def op_Conv(self, node: onnx.NodeProto) -> None:
        """A convolution of a batch's rows ``(C, *S)`` (read as rows) by a constant
        ``(O, C / group, *K)``, plus its bias."""
        if self.layout != "rows":
            raise self.fail(node, "Conv is not supported on sequences")
        x = self.seq(node.input[0], node)
        for i in (1, 2):  # weights fed as inputs: params the caller gives
            p = self.get(node.input[i], node) if len(node.input) > i and node.input[i] else None
            if isinstance(p, Pending) and all(isinstance(d, int) for d in p.dims):
                self.runtime_weight(p, tuple(int(d) for d in p.dims), node)
        wt = self.get(node.input[1], node)
        if not isinstance(wt, Static):
            raise self.fail(node, "its weights must be constant")
        kernel = [int(k) for k in np.shape(wt.value)[2:]]
        win = self._window(node, x, kernel)
        y = rg.conv(
            x, self.static_node(wt), stride=win["stride"], padding=win["padding"],
            dilation=win["dilation"], groups=int(self._attr(node, "group", 1)),
        )  # fmt: skip
        if len(node.input) > 2 and node.input[2]:
            bias = self.get(node.input[2], node)
            if not isinstance(bias, Static):
                raise self.fail(node, "its bias must be constant")
            y = y + rg.reshape(self.static_node(bias), [len(bias.value), *[1] * len(kernel)])
        self.set(node, Seq(y))

    def op_AveragePool(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        w = self._window(node, x)
        xc = self._channel(x)
        total = self._window_sum(xc, w)
        if self._attr(node, "count_include_pad", 0):
            if any(w["extra"]):
                raise self.fail(
                    node, "ceil_mode's last window with the pads in the count is not read"
                )
            y = total / float(np.prod(w["kernel"]))
        else:  # each window's own count of entries inside the row
            y = total / self._window_sum(rg.zeros_like(xc) + 1.0, w)
        self.set(node, Seq(self._unchannel(y)))

    def op_LpPool(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        w = self._window(node, x)
        p = float(self._attr(node, "p", 2))
        total = self._window_sum(self._channel(rg.pow(rg.abs(x), p)), w)
        self.set(node, Seq(self._unchannel(rg.pow(total, 1.0 / p))))

    def _global(self, node: onnx.NodeProto, fn: str) -> None:
        x = self.seq(node.input[0], node)
        axes = list(range(-(len(x.shape) - 1), 0))
        self.set(node, Seq(getattr(rg, fn)(x, axes, keepdims=True)))

    def op_GlobalAveragePool(self, node: onnx.NodeProto) -> None:
        self._global(node, "reduce_mean")

    def op_GlobalMaxPool(self, node: onnx.NodeProto) -> None:
        self._global(node, "reduce_max")

    def op_Flatten(self, node: onnx.NodeProto) -> None:
        """``(T, B, *row)`` flattened at an axis past time and batch: rows ``(-1, k)`` with
        ``k`` the product of the row's axes from there (:class:`Flat`). A graph input
        flattened where a sequence cannot be (into its time or batch axis) is a weight the
        caller feeds (``LayerNormalization``'s scale and bias in its body)."""
        axis = int(self._attr(node, "axis", 1))
        t = self.get(node.input[0], node)
        known = isinstance(t, Pending) and all(isinstance(d, int) for d in t.dims)
        if known and (axis + len(t.dims) if axis < 0 else axis) < self.lead:
            self.runtime_weight(t, tuple(int(d) for d in t.dims), node)
            return self.evaluate(node)
        x = self.seq(node.input[0], node)
        rank = self.rank(x)
        a = axis + rank if axis < 0 else axis
        if not self.lead <= a <= rank:
            raise self.fail(node, "it works along the time or batch axis")
        row = [int(d) for d in x.shape[1:]]
        if self.whole:  # (a row of known sizes: flattened as it is)
            self.set(node, Seq(rg.reshape(x, [int(np.prod(row[:a])), int(np.prod(row[a:]))])))
            return None
        if self.layout == "rows":  # (N, ...) to (N, k): each row flattened
            if a != 1:
                raise self.fail(node, f"axis {axis} flattens the batch's rows together")
            self.set(node, Seq(rg.reshape(x, [int(np.prod(row))])))
            return None
        j = a - self.lead
        self.set(node, Flat(rg.reshape(x, [*row[:j], int(np.prod(row[j:]))])))

    def op_Reshape(self, node: onnx.NodeProto) -> None:
        src = self.get(node.input[0], node)
        if isinstance(src, ShapeVec):
            self.set(node, ShapeVec(self._shape_input(node.input[0], node).dims))
            return
        shape = self._shape_input(node.input[1], node).dims
        if isinstance(src, Pending):
            src = self.declare_sequence(src)
        if isinstance(src, Seq) and src.batch_major:  # (B, T, ...) to (B, T, ...) only
            kept = all(d in (0, k) for d, k in zip(shape[:2], ["B", "T"], strict=False))
            if self.lead != 2 or not kept or any(isinstance(d, str) for d in shape[2:]):
                raise self.fail(node, f"target shape {shape} does not keep (batch, time) in front")
            row = [int(d) for d in shape[2:]]
            self.set(node, Seq(rg.reshape(src.value, row), batch_major=True))
            return
        if isinstance(src, Flat):  # back from rows: (time, batch) in front, the same row size
            keep = ["T", "B"][2 - self.lead :]
            row = [int(d) for d in shape[self.lead :] if not isinstance(d, str)]
            size = int(np.prod([int(d) for d in src.value.shape[1:]]))
            if (
                [d for d in shape[: self.lead]] != keep
                or len(row) != len(shape) - self.lead
                or -1 in row
                or int(np.prod(row)) != size
            ):
                raise self.fail(
                    node,
                    f"rows reshaped to {shape}: only back to a sequence {[*keep, '...']} "
                    f"of {size} values a step and row",
                )
            same = row == [int(d) for d in src.value.shape[1:]]
            self.set(node, Seq(src.value if same else rg.reshape(src.value, row)))
            return
        x = self.seq(node.input[0], node)
        if self.whole:  # (ONNX's 0 and -1 resolved against the row's known sizes)
            self.set(node, Seq(rg.reshape(x, _resolved_shape(node, shape, x, self.fail))))
            return
        if self.layout == "rows":  # the batch first (kept, or the -1 left), each row resized
            if shape[0] not in (0, -1, "B") or (shape[0] == -1 and -1 in shape[1:]):
                raise self.fail(node, f"target shape {shape} does not keep the batch first")
            row = _resolved_shape(node, shape[1:], x, self.fail)
            self.set(node, Seq(rg.reshape(x, row)))
            return
        if len(shape) == 2 and shape[0] == -1 and shape[1] == x.shape[-1]:
            self.set(node, Flat(x))
            return
        keep = ["T", "B"][2 - self.lead :]
        row = [int(d) for d in shape[self.lead :]]
        front = shape[: self.lead]
        kept = all(d in (0, k) for d, k in zip(front, keep, strict=False))
        # torch's newer exporter writes the traced length: (T, -1, row) with T a number.
        traced = (
            self.lead == 2
            and isinstance(front[0], int)
            and front[0] > 0
            and front[1] in (-1, "B", 0)
            and -1 not in row
            and int(np.prod(row)) == int(np.prod([int(d) for d in x.shape[1:]]))
        )
        if not (kept or traced):
            raise self.fail(node, f"target shape {shape} does not keep (time, batch) in front")
        self.set(node, Seq(rg.reshape(x, row)))

    def op_MatMul(self, node: onnx.NodeProto) -> None:
        b = self.get(node.input[1], node)
        if isinstance(b, Static):
            w = self.static_node(b)
            self.set(node, Seq(rg.matmul(self.seq(node.input[0], node), w)))
            return
        self.elementwise_matmul(node)

    def elementwise_matmul(self, node: onnx.NodeProto) -> None:
        args = [self.value_of(n, node) for n in node.input]
        self.set(node, Seq(rg.matmul(*args)))

    def op_Gemm(self, node: onnx.NodeProto) -> None:
        a = self.get(node.input[0], node)
        attrs = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        plain = all(attrs.get(k, d) == d for k, d in (("alpha", 1.0), ("beta", 1.0)))
        plain = plain and not attrs.get("transA") and not attrs.get("transB")
        ws = [self.get(n, node) for n in node.input[1:] if n]
        if self.whole:  # two matrices (of rows read whole, or constants) as ONNX defines it
            self.set(node, Seq(self.whole_gemm(node, attrs)))
            return
        if self.layout == "rows":  # a batch of rows (N, K) times a weight
            self.set(node, Seq(self.rows_gemm(node, attrs)))
            return
        if not (isinstance(a, Flat) and plain and all(isinstance(w, Static) for w in ws)):
            raise self.fail(
                node, "Gemm works on 2-D tensors; only x @ W + b on rows of a sequence is read"
            )
        y = rg.matmul(a.value, self.static_node(ws[0]))
        if len(ws) > 1:
            y = y + self.static_node(ws[1])
        self.set(node, Flat(y))

    def rows_gemm(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> rg.Value:
        """``alpha * A @ B' + beta * C`` of a model read as rows: ``A`` the batch's rows
        ``(N, K)``, ``B`` a constant ``(K, M)`` (``(M, K)`` with ``transB``), ``C`` a
        constant of one row (or none), or the rows' own ``(N, M)``."""
        a = self.seq(node.input[0], node)
        w = self.get(node.input[1], node)
        if attrs.get("transA") or len(a.shape) != 2 or not isinstance(w, Static):
            raise self.fail(node, "read as rows, Gemm takes the rows (N, K) times a constant")
        wv = np.asarray(w.value)
        wn = self.static_node(w)
        y = rg.matmul(a, rg.transpose(wn, [1, 0]) if attrs.get("transB") else wn)
        if len(node.input) > 2 and node.input[2]:
            c = self.get(node.input[2], node)
            if isinstance(c, Static):
                cv = np.asarray(c.value)
                if cv.ndim == 2 and cv.shape[0] != 1:
                    raise self.fail(
                        node, f"its bias {cv.shape} has rows of its own (of {wv.shape})"
                    )
                cn = self.static_node(c)
                if cv.ndim == 2:
                    cn = rg.reshape(cn, cv.shape[1:])
            else:
                cn = self.seq(node.input[2], node)
            return _gemm_sum(y, cn, attrs)
        return _gemm_sum(y, None, attrs)

    def whole_gemm(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> rg.Value:
        """``alpha * A' @ B' + beta * C`` (``'``: transposed if ``transA``/``transB``)
        of a model read whole."""

        def matrix(i: int, flip: bool) -> rg.Value:
            v = self.value_of(node.input[i], node)
            if len(v.shape) - (1 if v.type.batched else 0) != 2:
                raise self.fail(node, f"Gemm's {'AB'[i]} must be a matrix, got {v.shape}")
            return rg.transpose(v, [0, 2, 1] if v.type.batched else [1, 0]) if flip else v

        a, b = matrix(0, bool(attrs.get("transA"))), matrix(1, bool(attrs.get("transB")))
        if not (a.type.batched or b.type.batched):
            raise self.fail(node, "Gemm of two constants")
        y = rg.matmul(a, b) if a.type.batched else rg.transpose(
            rg.matmul(rg.transpose(b, [0, 2, 1]), rg.transpose(a, [1, 0])), [0, 2, 1]
        )  # fmt: skip
        if len(node.input) > 2 and node.input[2]:
            y, c = self.same_rank([y, self.value_of(node.input[2], node)])
            return _gemm_sum(y, c, attrs)
        return _gemm_sum(y, None, attrs)

    def op_Cast(self, node: onnx.NodeProto) -> None:
        to = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "to")
        kind = {onnx.TensorProto.INT64: "int64", onnx.TensorProto.BOOL: "bool"}.get(to, "float")
        (x,), wrap = self.signals(node)
        self.set(node, wrap(rg.cast(x, kind)))

    def op_CastLike(self, node: onnx.NodeProto) -> None:
        """A cast to the type of the second input: a constant stays a constant (ONNX's
        function bodies cast their constants like the signal they apply to)."""
        x, like = (self.get(n, node) for n in node.input[:2])
        if isinstance(like, Pending):
            like = self.declare_sequence(like)
        if isinstance(like, Static):
            kind = np.asarray(like.value).dtype
        elif isinstance(like, (Seq, Flat)):
            kind = {"int64": np.dtype(np.int64), "bool": np.dtype(bool)}.get(
                str(like.value.dtype), np.dtype(np.float32)
            )
        else:
            raise self.fail(node, f"{node.input[1]!r} is not a tensor ({type(like).__name__})")
        if isinstance(x, Static):
            self.set(node, Static(np.asarray(x.value).astype(kind)))
            return
        to = {"i": "int64", "b": "bool"}.get(kind.kind, "float")
        if isinstance(x, Flat):
            self.set(node, Flat(rg.cast(x.value, to)))
            return
        self.set(node, Seq(rg.cast(self.seq(node.input[0], node), to)))

    def op_Size(self, node: onnx.NodeProto) -> None:
        t = self.get(node.input[0], node)
        if isinstance(t, ShapeVec):  # Size(Shape(x)): x's rank
            self.set(node, Static(np.array(1 if t.scalar else len(t.dims), np.int64)))
            return
        if self.whole and isinstance(t, Seq | Pending):  # (a row's size: known)
            x = self.seq(node.input[0], node)
            self.set(node, Static(np.array(int(np.prod([int(d) for d in x.shape[1:]])), np.int64)))
            return
        raise self.fail(node, "the number of elements of a sequence depends on its length")

    def _reduce(self, node: onnx.NodeProto, fn: str) -> None:
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axes = self._ints(node, 1, "axes")
        if not axes and self.whole:  # every axis of the row (or none: noop_with_empty_axes)
            x = self.seq(node.input[0], node)
            if at.get("noop_with_empty_axes", 0):
                self.set(node, Seq(x))
                return
            axes = list(range(self.rank(x)))
        if not axes:
            raise self.fail(node, "a reduction over every axis includes time and batch")
        flat = self.get(node.input[0], node)
        if isinstance(flat, Flat):  # rows (-1, k): along k only, keeping it
            if [a % 2 for a in axes] != [1] or not at.get("keepdims", 1):
                raise self.fail(node, "rows flattened from a sequence reduce along k, kept")
            self.set(node, Flat(getattr(rg, fn)(flat.value, [-1], keepdims=True)))
            return
        x = self.seq(node.input[0], node)
        rank = self.rank(x)
        ax = [self._axis(node, a, rank) for a in axes]
        self.set(node, Seq(getattr(rg, fn)(x, ax, keepdims=bool(at.get("keepdims", 1)))))

    def op_ReduceMean(self, node: onnx.NodeProto) -> None:
        self._reduce(node, "reduce_mean")

    def op_ReduceSum(self, node: onnx.NodeProto) -> None:
        self._reduce(node, "reduce_sum")

    def op_ReduceMax(self, node: onnx.NodeProto) -> None:
        self._reduce(node, "reduce_max")

    def op_ReduceMin(self, node: onnx.NodeProto) -> None:
        self._reduce(node, "reduce_min")

    def op_ReduceProd(self, node: onnx.NodeProto) -> None:
        self._reduce(node, "reduce_prod")

    def op_LayerNormalization(self, node: onnx.NodeProto) -> None:
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x = self.seq(node.input[0], node)
        self._axis(node, int(at.get("axis", -1)), self.rank(x))  # (not time or batch)
        if at.get("axis", -1) not in (-1, self.rank(x) - 1) or len(node.input) < 3:
            raise self.fail(node, "only the last axis, with scale and bias, is supported")
        scale, bias = (self.get(n, node) for n in node.input[1:3])
        if not isinstance(scale, Static) or not isinstance(bias, Static):
            raise self.fail(node, "scale and bias must be constant")
        eps = float(at.get("epsilon", 1e-5))
        y = rg.layer_norm(x, self.static_node(scale), self.static_node(bias), epsilon=eps)
        self.set(node, Seq(y))

    def op_Softmax(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), -1)
        self.set(node, Seq(rg.softmax(x, self._axis(node, axis, self.rank(x)))))

    def op_LogSoftmax(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), -1)
        self.set(node, Seq(rg.log_softmax(x, self._axis(node, axis, self.rank(x)))))

    def op_LeakyRelu(self, node: onnx.NodeProto) -> None:
        alpha = next(
            (helper.get_attribute_value(a) for a in node.attribute if a.name == "alpha"), 0.01
        )
        self.set(node, Seq(rg.leaky_relu(self.seq(node.input[0], node), alpha)))

    def op_HardSigmoid(self, node: onnx.NodeProto) -> None:
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x = self.seq(node.input[0], node)
        self.set(node, Seq(rg.hard_sigmoid(x, at.get("alpha", 0.2), at.get("beta", 0.5))))

    def op_Clip(self, node: onnx.NodeProto) -> None:
        x = self.seq(node.input[0], node)
        lo, hi = (
            float(np.asarray(self.get(n, node).value).reshape(-1)[0]) if n else None
            for n in [*node.input[1:3], "", ""][:2]
        )
        self.set(node, Seq(rg.clip(x, lo, hi)))

    # -------------------------------------------------------- recurrences
    def state_rows(self, p: Pending) -> Rows:
        """A ``(D, B, *row)`` graph input of initial states: one item per leading index."""
        if len(p.dims) < 2 or not isinstance(p.dims[0], int):
            raise ModelImportError(f"input {p.name!r} {p.dims} cannot hold initial states")
        items = [RowItem("input", (p.name, d)) for d in range(p.dims[0])]
        rows = Rows(items, tuple(int(d) for d in p.dims[2:]))
        self.env[p.name] = rows
        self.meta["state_inputs"].setdefault(p.name, [])
        return rows

    def _initial(self, node: onnx.NodeProto, index: int, D: int, H: int) -> list[tuple[str, Any]]:
        """Per direction, ``(kind, ref)`` of the initial state at input ``index``."""
        if len(node.input) <= index or not node.input[index]:
            return [("zeros", None)] * D
        t = self.get(node.input[index], node)
        if isinstance(t, Pending):
            t = self.state_rows(t)
        if isinstance(t, Static):
            arr = np.asarray(t.value)
            return [("array", arr[d]) for d in range(D)]
        if isinstance(t, Rows) and len(t.items) == D:
            return [(i.kind, i.ref) for i in t.items]
        raise self.fail(node, f"initial state {node.input[index]!r} is {type(t).__name__}")

    def recurrent(self, node: onnx.NodeProto) -> None:
        op = node.op_type
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        direction = at.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        dirs = {"forward": [1], "reverse": [-1], "bidirectional": [1, -1]}.get(direction)
        if dirs is None:
            raise self.fail(node, f"direction {direction!r}")
        D, H = len(dirs), int(at["hidden_size"])
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        layout = int(at.get("layout", 0))
        if layout == 1:
            x = self.batch_major(node.input[0], node, "layout=1 needs a batch-major input")
        else:
            x = self.seq(node.input[0], node)
        names = {i: node.input[i] if len(node.input) > i else "" for i in range(8)}
        I = int(x.shape[-1])
        expected = {
            "W": (D, gates * H, I),
            "R": (D, gates * H, H),
            "B": (D, 2 * gates * H),
            "P": (D, 3 * H),
        }
        for role, idx in (("W", 1), ("R", 2), ("B", 3), ("P", 7)):
            t = self.get(names[idx], node) if names[idx] else None
            if isinstance(t, Pending):  # weights fed at run time: params the caller passes
                self.runtime_weight(t, expected[role], node)
        if names[4]:
            lens = self.get(names[4], node)
            if isinstance(lens, Pending):
                if self.meta["sequence_lens"] not in (None, lens.name):
                    raise self.fail(node, "a second, different sequence_lens input")
                self.meta["sequence_lens"] = lens.name
                self.env[lens.name] = _SequenceLens(lens.name)
            elif not isinstance(lens, _SequenceLens) and not (
                isinstance(lens, Static) and lens.value.size == 0
            ):
                raise self.fail(node, "sequence_lens must be a model input (or absent)")
        acts = [a.decode() if isinstance(a, bytes) else a for a in at.get("activations", [])]
        per_dir = {"LSTM": 3, "GRU": 2, "RNN": 1}[op]
        if not acts:
            acts = {
                "LSTM": ["Sigmoid", "Tanh", "Tanh"],
                "GRU": ["Sigmoid", "Tanh"],
                "RNN": ["Tanh"],
            }[op] * D
        if len(acts) != per_dir * D:
            raise self.fail(node, f"{len(acts)} activations for {D} direction(s)")
        alphas, betas = list(at.get("activation_alpha", [])), list(at.get("activation_beta", []))
        for a in acts:
            key = a.lower()
            if key not in _ACT:
                raise self.fail(node, f"activation {a!r} is not supported")
            if key in _ACT_DEFAULTS:
                want = _ACT_DEFAULTS[key]
                got = (alphas.pop(0), betas.pop(0)) if alphas else want
                if tuple(round(v, 6) for v in got) != want:
                    raise self.fail(node, f"activation {a} with alpha/beta {got} (only {want})")
        clip = at.get("clip")
        if layout == 1 and any(len(node.input) > i and node.input[i] for i in (5, 6)):
            raise self.fail(node, "initial states with layout=1 are not supported")
        init_h = self._initial(node, 5, D, H)
        init_c = self._initial(node, 6, D, H) if op == "LSTM" else []
        for role, idx in (("W", 1), ("R", 2), ("B", 3), ("P", 7)):
            if names[idx]:
                t = self.get(names[idx], node)
                if isinstance(t, Static) and tuple(np.shape(t.value)) != expected[role]:
                    raise self.fail(
                        node,
                        f"input {role} ({names[idx]!r}) has shape {tuple(np.shape(t.value))}; "
                        f"{op} with hidden_size={H}, {D} direction(s) and {I} input features "
                        f"needs {expected[role]}",
                    )
        prefix = _cell_name(node)
        h_news, h_states, c_states = [], [], []
        g = self.graph
        for d, step in enumerate(dirs):
            tag = prefix if D == 1 else f"{prefix}.{'fw' if step > 0 else 'bw'}"
            wts = {}
            for role, idx in (("W", 1), ("R", 2), ("B", 3), ("P", 7)):
                if not names[idx]:
                    continue
                t = self.get(names[idx], node)
                if not isinstance(t, Static):
                    raise self.fail(node, f"{role} must be constant")
                full = self.static_node(t)
                one = rg.slice(full, d, d + 1, axes=0)
                wts[role] = rg.reshape(one, [int(n) for n in full.shape[1:]])
            h = self._state(f"{tag}.h", H, init_h[d], step)
            my_acts = [_ACT[a.lower()] for a in acts[d * per_dir : (d + 1) * per_dir]]
            if op == "LSTM":
                c = self._state(f"{tag}.c", H, init_c[d], step)
                h_new, c_new = lstm_step(
                    x,
                    h,
                    c,
                    wts["W"],
                    wts["R"],
                    wts.get("B"),
                    wts.get("P"),
                    activations=my_acts,
                    clip=clip,
                    input_forget=bool(at.get("input_forget", 0)),
                )
                g.assign(c, c_new)
                c_states.append(c.name)
            elif op == "GRU":
                h_new = gru_step(
                    x,
                    h,
                    wts["W"],
                    wts["R"],
                    wts.get("B"),
                    activations=my_acts,
                    clip=clip,
                    linear_before_reset=bool(at.get("linear_before_reset", 0)),
                )
            else:
                h_new = rnn_step(
                    x, h, wts["W"], wts["R"], wts.get("B"), activation_name=my_acts[0], clip=clip
                )
            g.assign(h, h_new)
            h_news.append(h_new)
            h_states.append(h.name)
        bm = layout == 1
        outs = list(node.output) + [""] * 3
        if outs[0]:
            self.env[outs[0]] = Dirs(h_news, batch_major=bm)
        if outs[1]:
            self.env[outs[1]] = Rows([RowItem("final", s) for s in h_states], (H,), bm)
        if outs[2] and op == "LSTM":
            self.env[outs[2]] = Rows([RowItem("final", s) for s in c_states], (H,), bm)

    def op_LinearAttention(self, node: onnx.NodeProto) -> None:
        """Linear attention as a recurrence (opset 27): per batch row a state ``S`` of
        ``(H_kv, d_k, d_v)``; at each step ``S`` decays by ``exp(g)`` (gated rules), the
        delta rules write ``beta * (v - Sᵀk)`` instead of ``v``, ``S += k ⊗ v``, and each
        query head reads its key/value head's ``S``: ``o = scale * qᵀS``. Inputs
        ``(B, T, H*D)`` batch-major, ``past_state`` the start, ``present_state`` the last."""
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        rule = at.get("update_rule", b"gated_delta")
        rule = rule.decode() if isinstance(rule, bytes) else rule
        if rule not in ("linear", "gated", "delta", "gated_delta"):
            raise self.fail(node, f"update_rule {rule!r}")
        if "q_num_heads" not in at or "kv_num_heads" not in at:
            raise self.fail(node, "q_num_heads and kv_num_heads are required")
        Hq, Hkv = int(at["q_num_heads"]), int(at["kv_num_heads"])
        if Hq <= 0 or Hkv <= 0 or Hq % Hkv:
            raise self.fail(node, f"q_num_heads {Hq} is not a multiple of kv_num_heads {Hkv}")
        names = list(node.input) + [""] * (6 - len(node.input))
        gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
        for i, role, needed in ((4, "decay", gated), (5, "beta", delta)):
            if bool(names[i]) != needed:
                raise self.fail(node, f"update_rule {rule!r} {'needs' if needed else 'forbids'} "
                                      f"input {role}")  # fmt: skip

        def rows(i: int, role: str) -> rg.Value:
            why = f"its {role} must be a (B, T, features) model input"
            x = self.batch_major(names[i], node, why)
            if len(x.shape) != 2:
                raise self.fail(node, why)
            return x

        q, k, v = rows(0, "query"), rows(1, "key"), rows(2, "value")
        width = {r: int(x.shape[-1]) for r, x in (("query", q), ("key", k), ("value", v))}
        dk, dv = width["query"] // Hq, width["value"] // Hkv
        if width["query"] % Hq or width["value"] % Hkv or width["key"] != Hkv * dk:
            raise self.fail(node, f"query/key/value widths {list(width.values())} do not split "
                                  f"into {Hq} query and {Hkv} key/value heads")  # fmt: skip
        scale = float(at.get("scale", 0.0)) or 1.0 / float(np.sqrt(dk))
        g = self.graph
        row = (Hkv, dk, dv)
        name = f"{_cell_name(node)}.state"
        s = self.carried(node, names[3], name, 3, row) if names[3] else self.fresh_state(name, row)
        kh = rg.reshape(k, (Hkv, dk))
        before = s
        if gated:
            decay = rows(4, "decay")
            per = int(decay.shape[-1])
            if per not in (Hkv, Hkv * dk):
                raise self.fail(node, f"decay has {per} features; it needs {Hkv} or {Hkv * dk}")
            before = s * rg.reshape(rg.exp(decay), (Hkv, per // Hkv, 1))
        written = rg.reshape(v, (Hkv, dv))
        if delta:
            beta = rows(5, "beta")
            if int(beta.shape[-1]) not in (Hkv, 1):
                raise self.fail(node, f"beta has {beta.shape[-1]} features; it needs {Hkv} or 1")
            read = rg.reduce_sum(before * rg.unsqueeze(kh, -1), -2)  # Sᵀk: (H_kv, d_v)
            written = rg.reshape(beta, (int(beta.shape[-1]), 1)) * (written - read)
        after = before + rg.unsqueeze(kh, -1) * rg.unsqueeze(written, -2)
        g.assign(s, after)
        group = Hq // Hkv
        heads = after if group == 1 else rg.gather(after, [h // group for h in range(Hq)], -3)
        o = rg.reduce_sum(rg.unsqueeze(rg.reshape(q, (Hq, dk)), -1) * heads, -2) * scale
        outs = [*node.output, "", ""]
        if outs[0]:
            self.env[outs[0]] = Seq(rg.reshape(o, (Hq * dv,)), batch_major=True)
        if outs[1]:
            self.env[outs[1]] = Rows([RowItem("final", s.name)], row, squeezed=True)

    def fresh_state(self, name: str, row: tuple[int, ...], delay: int = 1) -> rg.Value:
        """A zero-initialised state of an op's cell, ``name`` or, when taken (another node
        of the same name), ``name.<n>``; ``delay`` -1 reads the next step's value."""
        g = self.graph
        taken = g.has_name(name)
        return g.state(name if not taken else f"{name}.{len(g.state_nodes())}", row, delay=delay)

    def heads(self, name: str, node: onnx.NodeProto, role: str) -> tuple[rg.Value, bool]:
        """A transformer op's ``(B, H, T, D)`` input (true: its steps ``(B, H, D)``) or
        ``(B, T, H*D)`` one (false: ``(B, H*D)``), else refused."""
        t = self.get(name, node)
        if isinstance(t, Pending):
            t = self.declare_sequence(t)
        four = isinstance(t, Seq) and t.time_at == 2
        if not isinstance(t, Seq) or not (four or t.batch_major):
            raise self.fail(node, f"its {role} must be a (B, H, T, D) or (B, T, H*D) model input")
        return t.value, four

    def op_RotaryEmbedding(self, node: onnx.NodeProto) -> None:
        """ONNX ``RotaryEmbedding``: each step's heads ``(H, D)`` rotated pairwise by the
        angles of their position, ``(x1, x2) -> (cos x1 - sin x2, sin x1 + cos x2)`` on the
        first ``rotary_embedding_dim`` entries (halves, or even and odd entries when
        ``interleaved``). With ``position_ids`` ``(B, T)`` the caches are tables ``(P, r)``
        read at each row's position (by a one-hot product: exact); without, the caches are
        ``(B, T, r)`` sequences. Input ``(B, H, T, D)`` or ``(B, T, H*D)`` with
        ``num_heads``; the output keeps its layout."""
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        names = [*node.input, ""]
        x, four = self.heads(names[0], node, "input")
        if not four:
            heads = int(at.get("num_heads", 0))
            if heads <= 0 or len(x.shape) != 2 or int(x.shape[1]) % heads:
                raise self.fail(node, f"a 3-D input {x.type} needs num_heads that divide it")
            x = rg.reshape(x, (heads, int(x.shape[1]) // heads))
        if len(x.shape) != 3:
            raise self.fail(node, f"its input per step is {x.type}; (B, H, D) is read")
        H, D = int(x.shape[1]), int(x.shape[2])
        rot = int(at.get("rotary_embedding_dim", 0)) or D
        if rot % 2 or rot > D:
            raise self.fail(node, f"rotary_embedding_dim {rot} must be even and at most {D}")
        half = rot // 2
        if names[3]:
            ids = self.batch_major(names[3], node, "its position_ids must be a (B, T) input")
            caches = []
            for n in names[1:3]:
                c = self.get(n, node)
                if isinstance(c, Pending) and len(c.dims) == 2:
                    self.runtime_weight(c, (int(c.dims[0]), half), node)
                    c = self.get(n, node)
                if not isinstance(c, Static) or np.shape(c.value)[1:] != (half,):
                    raise self.fail(node, f"its cache {n!r} must be (positions, {half})")
                caches.append(self.static_node(c))
            positions = int(np.shape(self.get(names[1], node).value)[0])
            where = self.graph.constant(np.arange(positions, dtype=np.float64))
            onehot = rg.cast(rg.equal(where, rg.unsqueeze(rg.cast(ids, "float"), -1)), "float")
            cos, sin = (rg.matmul(onehot, c) for c in caches)
        else:
            why = f"without position_ids its caches must be (B, T, {half}) inputs"
            cos, sin = (self.batch_major(n, node, why) for n in names[1:3])
            if cos.shape[1:] != (half,) or sin.shape[1:] != (half,):
                raise self.fail(node, why)
        cos, sin = rg.unsqueeze(cos, -2), rg.unsqueeze(sin, -2)  # (B, 1, r): every head
        if at.get("interleaved", 0):
            x1, x2 = rg.slice(x, 0, rot, axes=-1, steps=2), rg.slice(x, 1, rot, axes=-1, steps=2)
        else:
            x1, x2 = rg.slice(x, 0, half, axes=-1), rg.slice(x, half, rot, axes=-1)
        real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
        if at.get("interleaved", 0):
            pairs = rg.concat([rg.unsqueeze(real, -1), rg.unsqueeze(imag, -1)], axis=-1)
            turned = rg.reshape(pairs, (H, rot))
        else:
            turned = rg.concat([real, imag], axis=-1)
        y = turned if rot == D else rg.concat([turned, rg.slice(x, rot, D, axes=-1)], axis=-1)
        if four:
            self.set(node, Seq(y, time_at=2))
        else:
            self.set(node, Seq(rg.reshape(y, (H * D,)), batch_major=True))

    def op_CausalConvWithState(self, node: onnx.NodeProto) -> None:
        """ONNX ``CausalConvWithState``: a depthwise causal convolution over time, each
        channel ``c`` of ``(B, C, L)`` (time last) filtered by its own ``k`` taps,
        ``y(t) = sum_j W[c, 0, j] x(t - k + 1 + j) + b[c]`` (SiLU after, if asked), as a
        delay line: a state holding the last ``k - 1`` steps, ``past_state`` ``(B, C,
        k - 1)`` its start (zeros without one), ``present_state`` its end."""
        names = [*node.input, "", ""]
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        act = at.get("activation", b"none")
        act = act.decode() if isinstance(act, bytes) else str(act)
        if act not in ("none", "silu", "swish"):
            raise self.fail(node, f"activation {act!r}: none, silu or swish")
        t = self.get(names[0], node)
        if isinstance(t, Pending):
            t = self.declare_sequence(t)
        if not isinstance(t, Seq) or t.time_at != 2 or len(t.value.shape) != 2:
            raise self.fail(node, "its input must be a (B, C, L) model input, time last")
        x = t.value
        C = int(x.shape[1])
        w = self.get(names[1], node)
        if isinstance(w, Pending):
            self.runtime_weight(w, (C, 1, int(w.dims[2]) if len(w.dims) == 3 else -1), node)
            w = self.get(names[1], node)
        if not isinstance(w, Static) or np.ndim(w.value) != 3 or np.shape(w.value)[:2] != (C, 1):
            raise self.fail(node, f"its weight must be ({C}, 1, k): constants or a model input")
        k = int(np.shape(w.value)[2])
        taps = rg.reshape(self.static_node(w), (C, k))
        g = self.graph
        name = f"{_cell_name(node)}.window"
        outs = [*node.output, ""]
        if k > 1:
            row = (C, k - 1)
            s = (
                self.carried(node, names[3], name, 3, row)
                if names[3]
                else self.fresh_state(name, row)
            )
            window = rg.concat([s, rg.unsqueeze(x, -1)], axis=-1)  # (C, k): oldest first
            g.assign(s, rg.slice(window, 1, k, axes=-1))
        else:
            if outs[1]:
                raise self.fail(node, "a kernel of 1 keeps no past steps: present_state is empty")
            window = rg.unsqueeze(x, -1)
        y = rg.reduce_sum(window * taps, -1)
        if names[2]:
            b = self.get(names[2], node)
            if isinstance(b, Pending):
                self.runtime_weight(b, (C,), node)
                b = self.get(names[2], node)
            if not isinstance(b, Static) or np.shape(b.value) != (C,):
                raise self.fail(node, f"its bias must be ({C},): constants or a model input")
            y = y + self.static_node(b)
        if act != "none":
            y = y * rg.sigmoid(y)
        if outs[0]:
            self.env[outs[0]] = Seq(y, time_at=2)
        if outs[1]:
            self.env[outs[1]] = Rows([RowItem("final", s.name)], row, squeezed=True)

    def op_Attention(self, node: onnx.NodeProto) -> None:
        """ONNX ``Attention`` (opsets 23-25) with the query's sequence as time: at each step
        the query ``(B, H_q, d)`` scores every key of a per-sequence memory ``(B, H_kv, S,
        d)`` (the model's ``K``, after its ``past_key``: ``present_key``), ``scale``
        (``1/sqrt(d)`` by default) times the dot products, ``softcap * tanh(e / softcap)``,
        plus a float ``attn_mask`` or a bool one's ``-inf``, causal (key ``j`` seen by query
        ``t`` iff ``j <= t + past``) and sliding-window limits; softmax over the keys
        (a query that sees no key gets zeros, as ONNX says) weighs ``V``. Query heads share
        key/value heads in groups (GQA: head ``h`` reads ``h // (H_q / H_kv)``). 4-D
        ``(B, H, T, d)`` tensors or 3-D ``(B, T, H*d)`` with ``q_num_heads``/``kv_num_heads``;
        ``qk_matmul_output`` in every mode."""
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        names = [*node.input, *[""] * (7 - len(node.input))]
        if names[6]:
            raise self.fail(
                node, "nonpad_kv_seqlen (an external cache's valid lengths per row) is not read"
            )
        if bool(names[4]) != bool(names[5]):
            raise self.fail(node, "past_key and past_value come together")
        q, four = self.heads(names[0], node, "query")
        why = "its keys and values must be model inputs: a memory every query step reads"
        k, v = self.per_sequence(names[1], node, why), self.per_sequence(names[2], node, why)
        if not four and (isinstance(k.shape[1], str) or isinstance(v.shape[1], str)):
            raise self.fail(node, "3-D keys and values need a fixed length (or 4-D inputs)")
        if four:
            if len(q.shape) != 3 or len(k.shape) != 4 or len(v.shape) != 4:
                raise self.fail(node, "Q, K and V must all be 4-D (B, H, T, d)")
            Hq, dk = int(q.shape[1]), int(q.shape[2])
            Hkv = int(k.shape[1])
        else:
            if "q_num_heads" not in at or "kv_num_heads" not in at:
                raise self.fail(node, "3-D inputs need q_num_heads and kv_num_heads")
            Hq, Hkv = int(at["q_num_heads"]), int(at["kv_num_heads"])
            if len(q.shape) != 2 or len(k.shape) != 3 or len(v.shape) != 3:
                raise self.fail(node, "Q, K and V must all be 3-D (B, T, H*d)")
            width = [int(q.shape[1]), int(k.shape[2]), int(v.shape[2])]
            if width[0] % Hq or width[1] % Hkv or width[2] % Hkv:
                raise self.fail(node, f"widths {width} do not split into {Hq} and {Hkv} heads")
            dk = width[0] // Hq
            q = rg.reshape(q, (Hq, dk))
            k = rg.transpose(rg.reshape(k, (int(k.shape[1]), Hkv, width[1] // Hkv)), [0, 2, 1, 3])
            v = rg.transpose(rg.reshape(v, (int(v.shape[1]), Hkv, width[2] // Hkv)), [0, 2, 1, 3])
        if int(k.shape[-1]) != dk or int(v.shape[1]) != Hkv or Hq % Hkv:
            raise self.fail(
                node, f"query {q.type}, keys {k.type} and values {v.type} do not match: the "
                "keys' head size must be the query's, and the query heads a multiple of theirs"
            )  # fmt: skip
        if k.shape[2] != v.shape[2]:
            raise self.fail(node, f"keys {k.type} and values {v.type} differ in length")
        if isinstance(k.shape[2], str):
            return self._attention_over(node, at, q, k, v, four, Hq, Hkv, dk)
        past = 0
        if names[4]:
            pk = self.per_sequence(names[4], node, "past_key must be a model input")
            pv = self.per_sequence(names[5], node, "past_value must be a model input")
            past = int(pk.shape[2])
            k, v = rg.concat([pk, k], axis=2), rg.concat([pv, v], axis=2)
        L, group = int(k.shape[2]), Hq // Hkv
        e = rg.reshape(_scores(at, q, k, Hkv, group, dk), (Hq, L))
        raw = e
        valid: rg.Value | None = None  # (B, H_q or 1, L): a key this query may see
        if names[3]:
            m = self._mask(names[3], node)  # (B, H_q or 1, S)
            Hm, Lm = int(m.shape[1]), int(m.shape[2])
            if Lm > L or Hm not in (1, Hq):
                raise self.fail(
                    node, f"attn_mask {m.type} (per step) does not broadcast to ({Hq}, {L})"
                )
            if m.dtype == "bool":
                seen = rg.cast(m, "float")
            else:  # (-inf: masked out)
                finite = rg.greater(m, float(-np.finfo(np.float32).max))
                seen = rg.cast(finite, "float")
                e = e + _padded(rg.where(finite, m, 0.0), L)
            valid = rg.greater(_padded(seen, L), 0.5)  # (keys past a short mask are masked)
        left = int(at.get("left_window_size", -1))
        right = int(at.get("right_window_size", -1))
        causal = bool(at.get("is_causal", 0))
        if causal or left >= 0 or right >= 0:
            g = self.graph
            step = self.fresh_state(f"{_cell_name(node)}.step", (1,))  # t: the query's index
            g.assign(step, step + 1.0)
            # j - t - past, (B, 1, L) for every query head
            keys = g.constant(np.arange(L, dtype=np.float64))
            position = rg.unsqueeze(keys - (step + float(past)), -2)
            for ok, limit in ((causal, 0), (right >= 0, right)):
                if ok:
                    near = rg.less(position, limit + 0.5)
                    valid = near if valid is None else rg.where(valid, near, False)
            if left >= 0:
                near = rg.greater(position, -left - 0.5)
                valid = near if valid is None else rg.where(valid, near, False)
        if valid is not None:  # (the mask at its own shape, added: cheaper than a where)
            score = e + rg.where(valid, 0.0, -1e30)
            sees_a_key = rg.reduce_max(rg.cast(valid, "float"), -1, keepdims=True)
            weights = rg.softmax(score, -1) * sees_a_key
        else:
            weights = rg.softmax(e, -1)
        y = rg.matmul(rg.reshape(weights, (Hkv, group, L)), v)  # (B, H_kv, G, d_v)
        outs = self._attention_results(node, y, k, v, four, Hq)
        if outs[3]:
            mode = int(at.get("qk_matmul_output_mode", 0))
            if mode == 3:
                qk = weights
            elif mode == 2:
                qk = e if valid is None else rg.where(valid, e, float("-inf"))
            else:
                qk = raw
            self.env[outs[3]] = Seq(rg.reshape(qk, (Hq, L)), time_at=2)

    def _attention_over(
        self, node: onnx.NodeProto, at: Mapping[str, Any], q: rg.Value, k: rg.Value,
        v: rg.Value, four: bool, Hq: int, Hkv: int, dk: int,
    ) -> None:  # fmt: skip
        """Attention over a memory of a named, variable length (an encoder's outputs):
        every key is seen, so no mask, causal limit, window, cache or ``qk_matmul_output``
        (each needs the key positions counted)."""
        names = [*node.input, *[""] * (7 - len(node.input))]
        outs = [*node.output, "", "", ""]
        limits = at.get("is_causal", 0) or int(at.get("left_window_size", -1)) >= 0 or (
            int(at.get("right_window_size", -1)) >= 0
        )  # fmt: skip
        if names[3] or names[4] or limits or outs[3]:
            raise self.fail(
                node, f"keys of a named length {k.shape[2]!r}: a mask, causal or window limits, "
                "a cache and qk_matmul_output need a fixed number of keys"
            )  # fmt: skip
        e = _scores(at, q, k, Hkv, Hq // Hkv, dk)
        self._attention_results(node, rg.matmul(rg.softmax(e, -1), v), k, v, four, Hq)

    def _attention_results(
        self, node: onnx.NodeProto, y: rg.Value, k: rg.Value, v: rg.Value, four: bool, Hq: int
    ) -> list[str]:
        """Attention's ``Y`` from ``y`` ``(B, H_kv, G, d_v)`` in the query's layout, and its
        keys and values as ``present_key``/``present_value``; the node's outputs (padded)."""
        outs = [*node.output, "", "", ""]
        if outs[0]:
            dv = int(v.shape[-1])
            y = rg.reshape(y, (Hq, dv) if four else (Hq * dv,))
            self.env[outs[0]] = Seq(y, batch_major=not four, time_at=2 if four else 0)
        for i, kv in ((1, k), (2, v)):
            if outs[i]:
                self.env[outs[i]] = PerSequence(kv)
        return outs

    def _mask(self, name: str, node: onnx.NodeProto) -> rg.Value:
        """Attention's ``attn_mask`` at a step: ``(B, H_q or 1, S)``."""
        t = self.get(name, node)
        if isinstance(t, Pending) and name in self.broadcast_inputs:
            t = self.declare_sequence(t)
        if not isinstance(t, Seq) or t.time_at != 2:
            raise self.fail(node, "its attn_mask must be a model input")
        return t.value

    def runtime_weight(self, p: Pending, shape: tuple[int, ...], node: onnx.NodeProto) -> None:
        """A recurrent op's weight that is a graph input: a param of the graph that the
        imported model's caller feeds at run time (``meta["param_inputs"]``)."""
        if p.elem not in _FLOATS:
            raise self.fail(node, f"its weight input {p.name!r} is not float")
        declared = [d for d in p.dims if isinstance(d, int)]
        if len(p.dims) != len(shape) or (len(declared) == len(shape) and
                                         tuple(declared) != shape):  # fmt: skip
            raise self.fail(node, f"weight input {p.name!r} is {p.dims}; it needs {list(shape)}")
        self.env[p.name] = Static(np.zeros(shape, np.float32), name=p.name, runtime=True)
        self.meta["param_inputs"].append(p.name)

    def _state(self, name: str, H: int, init: tuple[str, Any], step: int) -> rg.Value:
        kind, ref = init
        g = self.graph
        if kind == "zeros":
            return g.state(name, H, delay=step)
        if kind == "array" or kind == "static":
            return g.state(name, H, np.asarray(ref, np.float64), delay=step)
        if kind == "input":
            src, index = ref
            self.meta["state_inputs"].setdefault(src, [])
            entries = self.meta["state_inputs"][src]
            entries.extend([None] * (index + 1 - len(entries)))
            entries[index] = name
            return g.state(name, H, "input", delay=step)
        raise ModelImportError(f"state {name!r}: initial value of kind {kind!r}")

    def scan(self, node: onnx.NodeProto) -> None:
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        body: onnx.GraphProto = at["body"]
        M = int(at["num_scan_inputs"])
        # opset 8: a sequence_lens input first, batch-major (B, T, ...) scan inputs and
        # outputs, and a body that sees one batch row (no batch axis); from opset 9 the
        # scanned tensors' axis 1 is rnngraph's batch axis, as the body's axis 0.
        v8 = self.opset < 9
        ins = list(node.input[1:]) if v8 else list(node.input)
        if v8 and node.input[0]:
            raise self.fail(node, "an opset-8 Scan with sequence_lens")
        N = len(ins) - M
        in_dirs = list(at.get("directions" if v8 else "scan_input_directions", [0] * M))
        out_dirs = list(at.get("scan_output_directions", [0] * (len(body.output) - N)))
        # axis 0 is time (time-major), axis 1 time with the batch in front (batch-major)
        in_axes = [self._scan_axis(node, a, self._dims(n)) for a, n in
                   zip(at.get("scan_input_axes", [0] * M), ins[N:], strict=False)]  # fmt: skip
        in_axes += [0] * (M - len(in_axes))
        out_axes = [self._scan_axis(node, a, None) for a in at.get("scan_output_axes", [])]
        out_axes += [0] * (len(body.output) - N - len(out_axes))
        if len(set(in_dirs + out_dirs)) > 1:
            raise self.fail(node, "a Scan mixing forward and reverse directions")
        step = -1 if (in_dirs + out_dirs + [0])[0] == 1 else 1
        local: dict[str, Tensor] = {}
        states = []
        for i, (outer, inner) in enumerate(zip(ins[:N], body.input[:N], strict=True)):
            dims = inner.type.tensor_type.shape.dim
            row: tuple[int, ...] | None = None  # (undeclared: the start's)
            if inner.type.tensor_type.HasField("shape"):
                row = tuple(int(d.dim_value) for d in (dims if v8 else dims[1:]))
            s = self.carried(node, outer, inner.name, i, row, step)
            states.append(s)
            local[inner.name] = Seq(s)
        for outer, inner, axis in zip(ins[N:], body.input[N:], in_axes, strict=True):
            t = self.get(outer, node)
            if isinstance(t, _Ticks):
                continue
            if v8 or axis == 1:
                why = (f"scan input {outer!r} is scanned along its axis 1: it must be a "
                       "batch-major (B, T, ...) input")  # fmt: skip
                local[inner.name] = Seq(self.batch_major(outer, node, why))
            else:
                local[inner.name] = Seq(self.seq(outer, node))
        saved = self.env
        self.env, self.lead = {**saved, **local}, 1
        try:
            for n in body.node:
                self.node(n)
            results = [self.value_of(o.name, node) for o in body.output]
        finally:
            self.env, self.lead = saved, 2
        self.close_loop(node, states, results, [v8 or a == 1 for a in out_axes])

    def _dims(self, name: str) -> list[int | str]:
        """The dims of a graph input not read yet (its rank, for a negative axis)."""
        t = self.env.get(name)
        return list(t.dims) if isinstance(t, Pending) else []

    def _scan_axis(self, node: onnx.NodeProto, axis: int, dims: list[int | str] | None) -> int:
        """A Scan's scan axis as 0 (time-major) or 1 (batch-major); others are refused."""
        a = _scan_axis_index(axis, dims)
        if a not in (0, 1):
            raise self.fail(
                node,
                f"scan axis {axis}: only 0 (time-major, (T, B, ...)) and 1 (batch-major, "
                "(B, T, ...)) are read; rnngraph's sequences have time and batch in front",
            )
        return a

    def close_loop(
        self,
        node: onnx.NodeProto,
        states: list[rg.Value],
        results: list[rg.Value],
        batch_major: list[bool] | None = None,
    ) -> None:
        """After a Scan or Loop body: each carried state takes the body's next value; the
        node's first outputs are the final states, the others the per-step sequences."""
        N = len(states)
        for s, new in zip(states, results[:N], strict=True):
            self.graph.assign(s, new if new.op not in ("state", "input") else rg.add(new, 0.0))
        for k, out_name in enumerate(node.output):
            if not out_name:
                continue
            if k < N:
                row = tuple(int(d) for d in states[k].shape[1:])
                self.env[out_name] = Rows([RowItem("final", states[k].name)], row, squeezed=True)
            else:
                major = bool(batch_major and batch_major[k - N])
                self.env[out_name] = Seq(results[k], batch_major=major)

    def carried(
        self,
        node: onnx.NodeProto,
        outer: str,
        inner: str,
        i: int,
        row: tuple[int, ...] | None,
        step: int = 1,
    ) -> rg.Value:
        """The state a Scan or Loop carries from its initial value ``outer`` (zeros or a
        broadcast constant ``(B, *row)``, or a model input ``(B, *row)``: each row's own),
        named after the body's ``inner`` name; ``row``: the body's, when it declares one."""
        t = self.get(outer, node)
        if isinstance(t, Rows) and len(t.items) == 1 and t.items[0].kind in ("zeros", "static"):
            init: tuple[str, Any] = (t.items[0].kind, t.items[0].ref)
            row = t.row if row is None else row
        elif isinstance(t, Pending) and len(t.dims) >= 1 and all(
            isinstance(d, int) for d in t.dims[1:]
        ) and (row is None or tuple(t.dims[1:]) == row):  # fmt: skip
            init = ("input", outer)  # (B, *row): each row's initial value
            row = tuple(int(d) for d in t.dims[1:])
        elif isinstance(t, Pending) and not t.dims:
            raise self.fail(node, f"initial state {outer!r} is a scalar: it has no batch axis")
        else:
            raise self.fail(
                node,
                f"initial state {outer!r} must be a model input (B, ...) or zeros or a "
                "broadcast constant",
            )
        # The body's name for the carried value ("h@1" in rnngraph's own exports).
        name = inner
        if self.graph.has_name(name):
            name = f"{node.name or node.output[0]}.s{i}"
        return self._state_row(name, row, init, step)

    def loop(self, node: onnx.NodeProto) -> None:
        """A ``Loop`` whose body is one step of a recurrence: its trip count is the
        sequences' length (``Shape(x)[0]``), its condition stays true, the body reads
        sequence ``x`` at the step as ``Gather(x, iteration, axis=0)``; carried values
        become states of delay 1 and scan outputs sequences."""
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        body: onnx.GraphProto = at["body"]
        trip = self.get(node.input[0], node) if node.input[0] else None
        if isinstance(trip, Static) and (fixed := _fixed_point_loop(body)) is not None:
            return self.fixed_point(node, trip, fixed, body)
        if not (isinstance(trip, ShapeVec) and trip.dims == ["T"]):
            raise self.fail(
                node,
                "its trip count must be the sequences' number of steps (Shape(x)[0]): a "
                "Loop that stops on a computed condition or after a fixed count is not a "
                "recurrence over a sequence",
            )
        cond = self.get(node.input[1], node) if len(node.input) > 1 and node.input[1] else None
        if cond is not None and not (isinstance(cond, Static) and bool(np.all(cond.value))):
            raise self.fail(node, "its condition must be absent or a constant true")
        outers = list(node.input[2:])
        local: dict[str, Tensor] = {
            body.input[0].name: _Step(),
            body.input[1].name: Static(np.array(True)),
        }
        states = []
        for i, (outer, inner) in enumerate(zip(outers, body.input[2:], strict=True)):
            dims = inner.type.tensor_type.shape.dim
            declared = None
            if len(dims) >= 1 and all(d.HasField("dim_value") for d in dims[1:]):
                declared = tuple(int(d.dim_value) for d in dims[1:])
            s = self.carried(node, outer, inner.name, i, declared)
            states.append(s)
            local[inner.name] = Seq(s)
        saved = self.env
        self.env, self.lead = {**saved, **local}, 1
        try:
            for n in body.node:
                self.node(n)
            go_on = self.env.get(body.output[0].name)
            results = [self.value_of(o.name, node) for o in body.output[1:]]
        finally:
            self.env, self.lead = saved, 2
        if not (isinstance(go_on, Static) and bool(np.all(go_on.value))):
            raise self.fail(node, "its body's condition must stay true (a recurrence, not a while)")
        self.close_loop(node, states, results)

    def fixed_point(
        self, node: onnx.NodeProto, trip: Static, fixed: _FixedLoop, body: onnx.GraphProto
    ) -> None:
        """A ``Loop`` that is :func:`rg.fixed_point` (as rnngraph writes one): the body's
        map of ``z`` imported as the function, its tolerance and trip count as ``tol``
        and ``max_iter``; outputs the value and each row's number of applications."""
        tol = self.get(fixed.tol, node)
        go = self.get(node.input[1], node) if len(node.input) > 1 and node.input[1] else None
        if not (
            isinstance(tol, Static) and np.size(tol.value) == 1
            and np.size(trip.value) == 1 and int(trip.value) >= 1
            and (go is None or (isinstance(go, Static) and bool(np.all(go.value))))
        ):  # fmt: skip
            raise self.fail(node, "a fixed-point Loop needs a constant tolerance and trip count")
        x0 = self.seq(node.input[2], node)

        def fn(z: rg.Value) -> rg.Value:
            saved = self.env
            self.env = {**saved, fixed.z: Seq(z)}
            try:
                for n in body.node:
                    if n.output[0] in fixed.map_nodes:
                        self.node(n)
                return self.seq(fixed.new, node)
            finally:
                self.env = saved

        try:
            value, count = rg.fixed_point(
                fn, x0, tol=float(str(np.asarray(tol.value).reshape(()))),  # (1e-7, not
                # its float32 neighbour: the shortest decimal that gives the stored value)
                max_iter=int(trip.value), iterations=True,
            )  # fmt: skip
        except GraphError as e:
            raise self.fail(node, f"(as a fixed point) {e}") from e
        self.env[node.output[0]] = Seq(value)
        if len(node.output) > 1 and node.output[1]:  # the count: the rows' shape
            self.env[node.output[1]] = Seq(rg.reshape(count, list(count.shape[1:-1])))

    def _state_row(
        self, name: str, row: tuple[int, ...], init: tuple[str, Any], step: int
    ) -> rg.Value:
        kind, ref = init
        g = self.graph
        if kind == "zeros":
            return g.state(name, row, delay=step)
        if kind in ("array", "static"):
            return g.state(name, row, np.asarray(ref, np.float64), delay=step)
        if kind == "input":  # a model input (B, *row)
            self.env[ref] = _StateRows(ref)
            self.meta["state_rows"][ref] = name
            return g.state(name, row, "input", delay=step)
        raise ModelImportError(f"Scan state {name!r}: initial value of kind {kind!r}")

    # ------------------------------------------------------------ outputs
    def output(self, name: str) -> None:
        t = self.env.get(name)
        if isinstance(t, Pending):  # (an input given back as it came: a sequence)
            t = self.declare_sequence(t)
        if isinstance(t, Seq):
            self.graph.output(name, t.value)
            if t.batch_major:
                self.meta["batch_major"].append(name)
            if t.time_at:
                self.meta["time_axes"][name] = t.time_at
        elif isinstance(t, PerSequence):  # (the graph's repeats it at every step)
            self.graph.output(name, t.value)
            self.meta["per_sequence"].append(name)
        elif isinstance(t, Flat):  # the graph's (T, B, ..., k); the model's rows (-1, k)
            self.graph.output(name, t.value)
            self.meta.setdefault("flat_outputs", {})[name] = int(t.value.shape[-1])
        elif isinstance(t, Static):
            weights = self.meta["param_inputs"]
            raise ModelImportError(
                f"model output {name!r} depends on no sequence: it is computed from constants"
                + (f" and inputs read as weights ({', '.join(weights)}: flattened across "
                   "their first two axes, they cannot be sequences, whose time and batch axes "
                   "those are)" if weights else "")
            )  # fmt: skip
        elif isinstance(t, Rows) and all(i.kind == "final" for i in t.items):
            finals = [i.ref for i in t.items]
            self.meta["outputs"][name] = {
                "finals": finals,
                "batch_major": t.batch_major,
                "squeezed": t.squeezed,
            }
        elif isinstance(t, Dirs):
            names = [f"{name}[{d}]" for d in range(len(t.values))]
            for n, v in zip(names, t.values, strict=True):
                self.graph.output(n, v)
            self.meta["outputs"][name] = {"directions": names, "batch_major": t.batch_major}
        else:
            raise ModelImportError(
                f"model output {name!r} is {type(t).__name__}; only sequences, recurrent "
                "outputs and final states can be outputs"
            )


def _gemm_sum(y: rg.Value, c: rg.Value | None, attrs: Mapping[str, Any]) -> rg.Value:
    """``alpha * y + beta * c`` (``Gemm``'s sum of its product ``y`` and bias ``c``), each
    scale applied only when it is not 1."""
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if alpha != 1.0:
        y = y * alpha
    if c is None:
        return y
    return y + (c * beta if beta != 1.0 else c)


def _resolved_shape(
    node: onnx.NodeProto, shape: list[int | str], x: rg.Value, fail: Any
) -> list[int]:
    """``Reshape``'s target ``shape`` for a row ``x`` of known sizes: a 0 keeps the
    size at its place (unless ``allowzero``), one -1 takes what is left. (Read as rows,
    ``shape`` is the target after the batch, whose row axes line up with ``x``'s.)"""
    row = [int(d) for d in x.shape[1:]]
    if any(isinstance(d, str) for d in shape):
        raise fail(node, f"target shape {shape} is not known")
    zero = any(a.name == "allowzero" and a.i for a in node.attribute)
    out = [row[i] if d == 0 and not zero and i < len(row) else int(d) for i, d in enumerate(shape)]
    size = int(np.prod(row))
    if out.count(-1) == 1:
        rest = int(np.prod([d for d in out if d != -1]))
        if rest == 0 or size % rest:
            raise fail(node, f"cannot reshape {row} to {shape}")
        out[out.index(-1)] = size // rest
    if -1 in out or int(np.prod(out)) != size:
        raise fail(node, f"cannot reshape {row} to {shape}")
    return out


def _scan_axis_index(axis: int, dims: list[int | str] | None) -> int:
    """A Scan's scan axis counted from the front (a negative one by the rank of ``dims``,
    when known)."""
    a = int(axis)
    return a + len(dims) if a < 0 and dims else a


@dataclass
class _FixedLoop:
    """What :func:`_fixed_point_loop` reads from a fixed-point ``Loop``'s body: the
    carried value's name ``z``, the map's result ``new``, the tolerance's tensor, and the
    outputs of the nodes that compute ``new`` from ``z``."""

    z: str
    new: str
    tol: str
    map_nodes: set[str]


def _fixed_point_loop(body: onnx.GraphProto) -> _FixedLoop | None:
    """The body of a fixed point as rnngraph writes one (``rnngraph_onnx._lowering``),
    or None: carried ``(z, count, done)``; ``z' = Where(done, z, new)``,
    ``done' = Or(done, Less(max |new - z|, tol))``, ``count' = count + Cast(Not(done))``,
    the condition ``any(Not(done'))``."""
    if len(body.input) != 5 or len(body.output) != 4:
        return None
    made = {o: n for n in body.node for o in n.output}
    z, count, done = (i.name for i in body.input[2:])

    def op(name: str, kind: str) -> onnx.NodeProto | None:
        n = made.get(name)
        return n if n is not None and n.op_type == kind else None

    def unwrap(name: str, kind: str) -> str:  # through an optional node of this kind
        n = op(name, kind)
        return n.input[0] if n is not None else name

    where = op(body.output[1].name, "Where")
    orr = op(body.output[3].name, "Or")
    add = op(body.output[2].name, "Add")
    if where is None or orr is None or add is None:
        return None
    if unwrap(where.input[0], "Unsqueeze") != done or where.input[1] != z:
        return None
    new = where.input[2]
    less = op(orr.input[1], "Less") if orr.input[0] == done else None
    absn = op(unwrap(less.input[0], "ReduceMax"), "Abs") if less is not None else None
    sub = op(absn.input[0], "Sub") if absn is not None else None
    if less is None or sub is None or list(sub.input) != [new, z] or add.input[0] != count:
        return None
    nott = op(unwrap(add.input[1], "Cast"), "Not")
    if nott is None or nott.input[0] != done:
        return None
    cond = unwrap(unwrap(unwrap(body.output[0].name, "Cast"), "ReduceMax"), "Cast")
    left = op(cond, "Not")
    if left is None or left.input[0] != body.output[3].name:
        return None
    # the nodes computing `new`: its producers back to what the body does not make
    needed, todo = set(), [new]
    while todo:
        name = todo.pop()
        n = made.get(name)
        if n is None or name in needed:
            continue
        if {done, count, body.input[0].name, body.input[1].name} & set(n.input):
            return None  # the map reads the loop's bookkeeping: not a fixed point's
        needed.update(n.output)
        todo.extend(i for i in n.input if i)
    return _FixedLoop(z, new, less.input[1], needed)


@dataclass
class _StateRows:
    """A model input ``(B, *row)`` read as a Scan state's initial value."""

    name: str


@dataclass
class _SequenceLens:
    """A model input read as ``sequence_lens``: it becomes the run's ``sequence_lens``."""

    name: str


def _scores(
    at: Mapping[str, Any], q: rg.Value, k: rg.Value, Hkv: int, group: int, dk: int
) -> rg.Value:
    """Attention's scores ``(B, H_kv, G, S)``: ``scale`` (``1/sqrt(d)`` by default) times
    each query head's dot products with its key/value head's keys, then
    ``softcap * tanh(e / softcap)`` when asked."""
    scale = float(at["scale"]) if "scale" in at else 1.0 / float(np.sqrt(dk))
    e = rg.matmul(rg.reshape(q, (Hkv, group, dk)), rg.transpose(k, [0, 1, 3, 2])) * scale
    softcap = float(at.get("softcap", 0.0))
    return rg.tanh(e / softcap) * softcap if softcap > 0 else e


def _asin(x: rg.Value) -> rg.Value:
    """``asin(x) = 2 atan(x / (1 + sqrt(1 - x^2)))``: no division by zero on [-1, 1]."""
    return 2.0 * rg.atan(x / (1.0 + rg.sqrt(1.0 - x * x)))


def _padded(x: rg.Value, n: int) -> rg.Value:
    """``x`` zero-padded after its last axis to ``n`` entries."""
    have = int(x.shape[-1])
    return x if have == n else rg.pad(x, [-1], [(0, n - have)])


def _cell_name(node: onnx.NodeProto) -> str:
    """The name of an imported recurrent op's cell, which names its states: the node's
    name as a module path, without the op's own part (torch.onnx.export's ``/enc/LSTM``
    is ``enc``; rnngraph's own ``enc.fw`` stays; an older ``LSTM:mul_2.Y`` is ``mul_2.Y``),
    or its first output's name when the node has none."""
    parts = [p for p in node.name.replace(":", "/").split("/") if p]
    if parts and re.fullmatch(rf"{node.op_type}(_\d+)?", parts[-1]):
        parts.pop()
    if parts and parts[0] == node.op_type:  # rnngraph's older "LSTM:<output>"
        parts.pop(0)
    return ".".join(parts) or node.output[0] or node.op_type


_SHAPE_ARITHMETIC: dict[str, Callable[[int, int], int]] = {
    "Mul": lambda x, y: x * y,
    "Add": lambda x, y: x + y,
    "Sub": lambda x, y: x - y,
    "Div": lambda x, y: x // y if y else 0,
    "Min": min,
    "Max": max,
}
"""Ops on shape vectors the importer follows (sizes combine; see shape_arithmetic)."""

_MIN_T = re.compile(r"min\((\d+),T\)")


@dataclass
class _Step:
    """A Loop body's iteration number: which step of the sequences the body computes."""


@dataclass
class _Ticks:
    """The step-counting sequence of an exported Scan with no input."""


@dataclass
class _Pad:
    """``k`` copies of an initial value along a new time axis: padding of a shifted copy."""

    rows: Rows
    k: int
    dim: int | str = 0  # the padding's length as the file computes it: k or "min(k,T)"


@dataclass
class _Joined:
    parts: list[Tensor]

    def shift(self, imp: _Importer, node: onnx.NodeProto, start: Any, end: Any) -> Seq:
        a, b = self.parts
        if isinstance(a, _Pad) and isinstance(b, Seq) and start == 0 and end == "T":
            return Seq(rg.delay(b.value, a.k, init=_row_init(imp, node, a.rows)))
        if isinstance(b, _Pad) and isinstance(a, Seq) and start in (b.k, b.dim):
            return Seq(rg.delay(a.value, -b.k, init=_row_init(imp, node, b.rows)))
        raise imp.fail(node, "a time-axis slice that is not a shifted copy")


def _row_init(imp: _Importer, node: onnx.NodeProto, rows: Rows) -> Any:
    (item,) = rows.items
    if item.kind == "zeros":
        return "zeros"
    if item.kind == "static":
        return np.asarray(item.ref, np.float64)
    raise imp.fail(node, f"a shifted copy with initial value of kind {item.kind!r}")


def _end(v: Any) -> Any:
    return None if isinstance(v, int) and v >= np.iinfo(np.int64).max // 2 else v


def import_onnx(
    model: str | os.PathLike[str] | onnx.ModelProto,
    layout: str = "auto",
) -> tuple[rg.Graph, dict[str, np.ndarray]]:
    """Read a recurrent ONNX model into ``(graph, params)``; see the module docstring.

    ``layout``: ``"sequence"`` reads the model's inputs as sequences (their first two
    axes time and batch, or as the model's ops lay them out); ``"rows"`` reads each
    input as one step of a batch of rows (its first axis the batch, of any size: a
    classifier's ``(N, features)``); ``"whole"`` reads every input as one row of one
    step (no time and batch axes: every size fixed), so that its ops may work along any
    axis. The last two suit a model without an op that runs over time. ``"auto"`` (the
    default) reads a model as sequences, and one that cannot be read so and has no op
    that runs over time (``LSTM``, ``GRU``, ``RNN``, ``Scan``, ``Loop``) as rows, else
    whole; if none reads, the error is the sequence reading's. Either way the compiled
    model takes and returns the original tensors.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("m")
    >>> g.output("y", rg.cells.gru(g.input("x", 3), 4, name="gru"))
    >>> p = g.init_params(seed=0)
    >>> g2, p2 = rg.import_onnx(rg.compile(g, target="onnx", params=p).model)
    >>> sorted(p2)
    ['gru.B', 'gru.R', 'gru.W']
    >>> xs = np.random.default_rng(0).normal(size=(6, 2, 3)).astype("float32")
    >>> bool(np.allclose(rg.run(g2, {"x": xs}, p2)["y"], rg.run(g, {"x": xs}, p)["y"], atol=1e-6))
    True
    """
    where = "the model" if isinstance(model, onnx.ModelProto) else os.fspath(model)
    if not isinstance(model, onnx.ModelProto):
        try:
            model = onnx.load(os.fspath(model))
        except Exception as e:
            raise ModelImportError(f"cannot read ONNX model {model}: {e}") from e
    if not model.graph.output:
        raise ModelImportError(
            f"{where} is not an ONNX model with a graph: it declares no outputs "
            "(an empty or truncated file?)"
        )
    for t in model.graph.initializer:
        _check_initializer(t, where)
    if layout not in ("auto", *LAYOUTS):
        raise ValueError(f"layout must be 'auto', 'sequence', 'rows' or 'whole', got {layout!r}")
    if layout != "auto":
        return _import(model, where, layout)
    try:
        return _import(model, where, "sequence")
    except ModelImportError as as_sequences:
        if any(n.op_type in _STEPPED for n in model.graph.node):
            raise
        for other in ("rows", "whole"):
            try:
                return _import(model, where, other)
            except GraphError:  # (refused that way too, or not a valid graph that way)
                pass
        raise as_sequences from None


def _import(
    model: onnx.ModelProto, where: str, layout: str
) -> tuple[rg.Graph, dict[str, np.ndarray]]:
    importer = None
    try:
        importer = _Importer(model, layout=layout)
        return importer.run()
    except GraphError:
        raise
    except Exception as e:  # a malformed model trips the importer or ONNX's evaluator
        node = importer.current if importer is not None else None
        at = f" at {node.op_type} node {node.name or node.output[0]!r}" if node else ""
        raise ModelImportError(
            f"cannot import {where}{at}: {type(e).__name__}: {e}. The model may be malformed; "
            "onnx.checker.check_model(model, full_check=True) says more"
        ) from e


def _check_initializer(t: onnx.TensorProto, where: str) -> None:
    """Refuse an initializer whose data does not fill its declared shape (or is absurd)."""
    if any(d < 0 for d in t.dims):
        raise ModelImportError(f"{where}: initializer {t.name!r} has negative dimensions {t.dims}")
    size = math.prod(t.dims)
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return
    try:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        raise ModelImportError(
            f"{where}: initializer {t.name!r} has unknown data type {t.data_type}"
        ) from None
    counts = [
        len(t.float_data),
        len(t.int32_data),
        len(t.int64_data),
        len(t.double_data),
        len(t.uint64_data),
        len(t.string_data),
    ]
    have = len(t.raw_data) // itemsize if t.raw_data else max(counts)
    if t.data_type in (onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128) and not t.raw_data:
        have //= 2
    if have != size and not (t.data_type == onnx.TensorProto.STRING):
        raise ModelImportError(
            f"{where}: initializer {t.name!r} declares shape {list(t.dims)} ({size:,} values) "
            f"but holds {have:,}"
        )
