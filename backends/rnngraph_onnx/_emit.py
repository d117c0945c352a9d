"""Program -> ONNX model: sequence models (dynamic T and B) and step models.

Sequence model
    Static nodes become initializers and ops on them; each parallel region
    one op over whole ``(T, B, ...)`` sequences; each finite-impulse tap a
    shifted copy (``Concat`` of initial rows and a ``Slice``); each recurrent
    region one ``Scan`` whose state variables are the region's carried past
    values (a delay of ``d`` keeps ``d`` of them) — or the native
    ``LSTM``/``GRU``/``RNN`` op where the region is exactly such a cell.
    ``sequence_lens`` (an optional input) masks the carried values so a row
    stops updating after its last step, zeroes outputs past it, and picks
    final states at each row's last valid step, as :func:`rnngraph.run`.
Step model
    One step of every input plus every carried past value as inputs; the
    outputs at that step plus the new carried values. A state's carried
    value is an input named as the state and an output named
    ``"<state>_final"``; a delay of ``d > 1`` adds ``"<state>@2"`` ...
    ``"<state>@d"`` (older values), other taps are named after the node that
    reads them.

Names are chosen in one deterministic order, so the same program and
parameters give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rnngraph.errors import CompileError
from rnngraph.ir.graph import InitSpec
from rnngraph.ir.types import TensorType, numpy_dtype
from rnngraph.program.schedule import (
    CellMatch,
    CellRegion,
    ParallelRegion,
    Program,
    Read,
    RecurrentRegion,
    StateSlot,
    step_slots,
)
from rnngraph_onnx._lowering import LOWERING, LoweredNode, onnx_dtype

__all__ = ["OPSET", "STEPS", "Emitter", "build_sequence_model", "build_step_model"]

OPSET = 21
STEPS = "steps"
"""The input holding the number of steps of a model whose graph has no sequence input."""
_PRODUCER = "rnngraph"


_BROADCASTS = frozenset(
    {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "greater", "less", "equal"}
    | {"where", "matmul"}
)
"""Ops whose ONNX form broadcasts a unit step axis (so per-sequence operands need no copies)."""


class _Names:
    """Unique tensor names across a model and all its subgraphs."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self._next: dict[str, int] = {}

    def reserve(self, name: str) -> str:
        if name in self.used:
            raise CompileError(f"the name {name!r} is used twice in the model's interface")
        self.used.add(name)
        return name

    def fresh(self, hint: str) -> str:
        base = hint.replace(" ", "_") or "t"
        name, k = base, self._next.get(base, 0)
        while name in self.used:
            k += 1
            name = f"{base}__{k}"
        self._next[base] = k  # (the next call with this hint starts here: no rescan)
        self.used.add(name)
        return name


class _Initializers:
    """Constants and weights of the whole model, deduplicated by value."""

    def __init__(self, names: _Names) -> None:
        self.names = names
        self.tensors: list[TensorProto] = []
        self._by_key: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def add(self, array: np.ndarray, hint: str, *, exact_name: bool = False) -> str:
        # (not np.ascontiguousarray: it turns a scalar into a 1-element vector)
        arr = np.array(array, order="C", copy=True)
        if exact_name:  # (a param: its name was reserved with the interface's)
            name = hint
        else:
            key = (arr.dtype.str, arr.tobytes(), arr.shape)
            if key in self._by_key:
                return self._by_key[key]
            name = self.names.fresh(hint)
            self._by_key[key] = name
        self.tensors.append(numpy_helper.from_array(arr, name))
        return name


class Emitter:
    """Appends ONNX nodes to one graph body; shares names and constants with the model."""

    def __init__(self, names: _Names, inits: _Initializers, float_type: int) -> None:
        self.names, self.inits, self.float_type = names, inits, float_type
        self.np_float = np.dtype(helper.tensor_dtype_to_np_dtype(float_type))
        self.nodes: list[onnx.NodeProto] = []

    def add(self, op_type: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        (out,) = self.add_multi(op_type, inputs, [hint], **attrs)
        return out

    def add_multi(
        self,
        op_type: str,
        inputs: Sequence[str],
        hints: Sequence[str],
        *,
        node_name: str | None = None,
        **attrs: Any,
    ) -> list[str]:
        """A node with an output per hint; named ``node_name`` (made unique) or after
        its op and first output."""
        outs = [self.names.fresh(h) if h else "" for h in hints]
        node_name = self.names.fresh(
            node_name or f"{op_type}:{next((o for o in outs if o), op_type)}"
        )
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=node_name, **attrs))
        return outs

    def ints(self, values: Sequence[int]) -> str:
        return self.inits.add(np.asarray(list(values), np.int64), "ints")

    def scalar(self, value: float) -> str:
        return self.inits.add(np.asarray(value, self.np_float), "scalar")

    def const(self, array: np.ndarray, hint: str) -> str:
        return self.inits.add(array, hint)


def _vi(name: str, elem: int, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape))


class _Lowerer:
    """What both modes share: params, static nodes, node lowering, initial values."""

    def __init__(self, program: Program, params: Mapping[str, np.ndarray], float_type: int):
        self.p, self.graph = program, program.graph
        self.g = program.graph.nx_graph
        self.float_type = float_type
        self.names = _Names()
        self.inits = _Initializers(self.names)
        self.main = Emitter(self.names, self.inits, float_type)
        self.np_float = self.main.np_float
        self.params = params
        self.env: dict[int, str] = {}
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []

    def elem(self, t: TensorType) -> int:
        return onnx_dtype(t.dtype, self.float_type)

    def np_dtype(self, t: TensorType) -> np.dtype:
        return numpy_dtype(t.dtype, self.np_float)

    def reserve_interface(self, names: Sequence[str]) -> None:
        """Claim the model's input and output names and its params' (initializers keep
        their params' names) before any generated name can take one: a param called
        ``B`` or ``T``, as ONNX's own examples name LSTM biases, stays ``B``."""
        nodes = (self.g.nodes[n] for n in self.p.static)
        for n in [*names, *(d["name"] for d in nodes if d["op"] == "param")]:
            self.names.reserve(n)

    def emit_static(self) -> None:
        for nid in self.p.static:
            d = self.g.nodes[nid]
            if d["op"] == "param":
                arr = np.asarray(self.params[d["name"]], self.np_dtype(d["type"]))
                self.env[nid] = self.inits.add(arr, d["name"], exact_name=True)
            elif d["op"] == "constant":
                arr = np.asarray(self.graph.arrays[d["attrs"]["array"]], self.np_dtype(d["type"]))
                self.env[nid] = self.inits.add(arr, d["name"])
            else:
                args = [self.env[r.source] for r in self.p.reads[nid]]
                self.env[nid] = self.lower(self.main, nid, args, lead=0)

    def emit_per_sequence(self) -> None:
        """Per-sequence nodes, once, on ``(B, ...)`` values; loops read them from outside."""
        for nid in self.p.per_sequence:
            if self.g.nodes[nid]["op"] != "input":
                args = [self.env[r.source] for r in self.p.reads[nid]]
                self.env[nid] = self.lower(self.main, nid, args, lead=0)

    def lower(self, e: Emitter, nid: int, args: Sequence[str], *, lead: int) -> str:
        d = self.g.nodes[nid]
        rule = LOWERING.get(d["op"])
        if rule is None:
            raise CompileError(
                f"the ONNX backend has no lowering for op {d['op']!r} (node {d['name']!r}); "
                "add one to rnngraph_onnx._lowering.LOWERING"
            )
        node = LoweredNode(
            d["name"],
            d["op"],
            d["attrs"],
            d["type"],
            tuple(self.g.nodes[r.source]["type"] for r in self.p.reads[nid]),
            lead,
        )
        return rule(e, node, args)

    def row_value(self, read: Read, batch: str, exposed: Mapping[str, str]) -> str:
        """The initial value ``(B, *row)`` of a delayed read, as a tensor name."""
        c = self.g.nodes[read.consumer]
        if c["op"] == "state" and c["name"] in exposed:
            return exposed[c["name"]]
        t: TensorType = self.g.nodes[read.source]["type"]
        spec: InitSpec = read.init
        if spec.kind == "input" and str(spec.ref) in exposed:  # another reader of it
            return exposed[str(spec.ref)]
        row = [self.size_of(d) if isinstance(d, str) else self.main.ints([d]) for d in t.row_shape]
        shape = self.main.add("Concat", [batch, *row], "init_shape", axis=0)
        if spec.kind == "zeros":
            zero = numpy_helper.from_array(np.zeros(1, self.np_dtype(t)), "value")
            return self.main.add("ConstantOfShape", [shape], f"{c['name']}.init", value=zero)
        if spec.kind == "param":
            src = str(spec.ref)  # every param is an initializer under its own name
        elif spec.kind == "array":
            src = self.main.const(
                np.asarray(self.graph.arrays[str(spec.ref)], self.np_dtype(t)), f"{c['name']}.init"
            )
        else:
            raise CompileError(
                f"state {c['name']!r} takes its initial value from the caller; "
                "it must be an input of the model"
            )
        return self.main.add("Expand", [src, shape], f"{c['name']}.init")

    input_lead = 2
    """Axes before the row in the model's inputs: ``(T, B)``; a step model has ``(B,)``."""

    def size_of(self, dim: str) -> str:
        """A symbolic dimension's size (1-D, one element), read off an input that has it."""
        cache = self.__dict__.setdefault("_sizes", {})
        if dim not in cache:
            found = [
                (name, self.input_lead + t.row_shape.index(dim))
                for name, t in self.graph.inputs.items()
                if dim in t.row_shape
            ] + [
                (name, 1 + t.row_shape.index(dim))
                for name, t in self.graph.states.items()
                if dim in t.row_shape
                and self.p.reads[self.graph.state_nodes()[name]][0].init.kind == "input"
            ]
            if not found:
                raise CompileError(
                    f"no input or caller-given state has the symbolic dimension {dim!r}, "
                    "so the model cannot know its size"
                )
            name, axis = found[0]
            cache[dim] = self.main.add("Shape", [name], f"size_{dim}", start=axis, end=axis + 1)
        return str(cache[dim])


def _used_names(graph: onnx.GraphProto) -> set[str]:
    used = {o.name for o in graph.output}
    for node in graph.node:
        used.update(node.input)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                used |= _used_names(a.g)
    return used


def _model(graph: onnx.GraphProto, doc: str) -> onnx.ModelProto:
    # Constants only absorbed nodes read (a native cell's internals) are dropped.
    used = _used_names(graph)
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=_PRODUCER,
        doc_string=doc,
    )
    model.ir_version = 9
    return model


# ----------------------------------------------------------------- sequence


class _SequenceModel(_Lowerer):
    def __init__(
        self,
        program: Program,
        params: Mapping[str, np.ndarray],
        float_type: int,
        with_lens: bool,
        exposed_states: Sequence[str],
        native: bool = True,
    ) -> None:
        super().__init__(program, params, float_type)
        self.with_lens = with_lens
        self.native = native
        graph = self.graph
        self.per_seq = graph.per_sequence_inputs
        # A graph without sequence inputs (a free-running generator, a net started from
        # its params) takes its number of steps as an input of its own.
        self.free_running = len(self.per_seq) == len(graph.inputs)
        needs_input = {
            n
            for n, sid in graph.state_nodes().items()
            if program.reads[sid][0].init.kind == "input"
            and str(program.reads[sid][0].init.ref) not in self.per_seq
        }
        self.exposed_names = sorted(needs_input | set(exposed_states))
        self.reserve_interface(
            [
                *graph.inputs,
                *graph.outputs,
                *(f"{s}_final" for s in graph.states),
                *self.exposed_names,
                *(["sequence_lens"] if with_lens else []),
                *([STEPS] if self.free_running else []),
            ]
        )
        self._taps: dict[Read, str] = {}
        self._inits: dict[Read, str] = {}
        self._masks: dict[int, str] = {}
        self._repeated: dict[int, str] = {}
        self._unit_step: dict[int, str] = {}

    # The dynamic sizes, as 1-D int64 tensors of one element.
    def dims(self) -> None:
        e = self.main
        if self.free_running:
            self.T = STEPS
            # rows: a per-sequence input's, else a given initial state's, else one
            given = [*self.per_seq, *self.exposed_names]
            if given:
                self.B = e.add("Shape", [given[0]], "B", start=0, end=1)
            else:
                self.B = e.ints([1])
        else:
            first_name = next(n for n in self.graph.inputs if n not in self.per_seq)
            self.T = e.add("Shape", [first_name], "T", start=0, end=1)
            self.B = e.add("Shape", [first_name], "B", start=1, end=2)
        if self.with_lens:
            self.lens = "sequence_lens"
            self.valid = self.before(self.lens, "valid")  # (T, B)

    def before(self, limit: str, hint: str) -> str:
        """``(T, B)`` booleans ``t < limit[b]``."""
        e = self.main
        if not hasattr(self, "_steps_col"):
            T0 = e.add("Squeeze", [self.T, e.ints([0])], "T_scalar")
            zero, one = (e.const(np.asarray(v, np.int64), "step") for v in (0, 1))
            steps = e.add("Range", [zero, T0, one], "steps")
            self._steps_col = e.add("Unsqueeze", [steps, e.ints([1])], "steps_col")
        row = e.add("Unsqueeze", [limit, e.ints([0])], f"{limit}_row")
        return e.add("Less", [self._steps_col, row], hint)

    def mask(self, rank: int) -> str:
        """``valid`` reshaped to broadcast against ``(T, B, *row)`` of row rank ``rank``."""
        if rank not in self._masks:
            self._masks[rank] = (
                self.valid
                if rank == 0
                else self.main.add(
                    "Unsqueeze", [self.valid, self.main.ints(range(2, 2 + rank))], f"valid{rank}"
                )
            )
        return self._masks[rank]

    def initial(self, read: Read) -> str:
        if read not in self._inits:
            exposed = {n: n for n in [*self.exposed_names, *self.per_seq]}
            self._inits[read] = self.row_value(read, self.B, exposed)
        return self._inits[read]

    def sequence(self, nid: int) -> str:
        """Node ``nid``'s whole sequence ``(T, B, ...)``: a per-sequence value repeated."""
        if nid not in self.p.per_sequence:
            return self.env[nid]
        if nid not in self._repeated:
            e, name = self.main, self.g.nodes[nid]["name"]
            shape = e.add(
                "Concat", [self.T, e.add("Shape", [self.env[nid]], "shape")], "shape", axis=0
            )
            self._repeated[nid] = e.add("Expand", [self.env[nid], shape], f"{name}.steps")
        return self._repeated[nid]

    def ring(self, read: Read) -> str:
        """A long delay's ring of past values before the first step: ``min(|delay|, T)``
        rows of the initial value (a delay past the sequence's end reads only those)."""
        e = self.main
        t: TensorType = self.g.nodes[read.source]["type"]
        T1 = e.add("Max", [self.T, e.ints([1])], "T_at_least_1")
        n = e.add("Min", [e.ints([abs(read.delay)]), T1], "ring_rows")
        reps = e.add("Concat", [n, e.ints([1] * t.rank)], "reps", axis=0)
        first = e.add("Unsqueeze", [self.initial(read), e.ints([0])], "init_row")
        return e.add("Tile", [first, reps], f"{self.g.nodes[read.source]['name']}@ring")

    def tap(self, read: Read) -> str:
        """``source(t - delay)`` over the whole sequence: a shifted copy."""
        if read in self._taps:
            return self._taps[read]
        e = self.main
        src = self.env[read.source]
        t: TensorType = self.g.nodes[read.source]["type"]
        init = self.initial(read)
        # min(|delay|, T) rows of initial values: a longer delay reads only them
        k = e.add("Min", [e.ints([abs(read.delay)]), self.T], "tap_rows")
        reps = e.add("Concat", [k, e.ints([1] * t.rank)], "reps", axis=0)
        pad = e.add("Tile", [e.add("Unsqueeze", [init, e.ints([0])], "init_row"), reps], "pad")
        name = f"{self.g.nodes[read.source]['name']}@{read.delay}"
        zero = e.ints([0])
        if read.delay > 0:
            joined = e.add("Concat", [pad, src], "joined", axis=0)
            out = e.add("Slice", [joined, zero, self.T, zero], name)
        else:
            joined = e.add("Concat", [src, pad], "joined", axis=0)
            end = e.add("Add", [self.T, k], "end")
            out = e.add("Slice", [joined, k, end, zero], name)
            if self.with_lens:
                # A look-ahead past a row's end reads the initial value.
                ahead = e.add("Sub", [self.lens, e.ints([abs(read.delay)])], "lens_ahead")
                ok = self.before(ahead, "ahead_valid")
                if t.rank > 1:
                    ok = e.add("Unsqueeze", [ok, e.ints(range(2, 1 + t.rank))], "ahead_valid")
                out = e.add("Where", [ok, out, init], name)
        self._taps[read] = out
        return out

    def parallel_operand(self, nid: int, read: Read) -> str:
        """An operand over whole sequences. A per-sequence value read by an op that
        broadcasts gets a unit step axis ``(1, B, ...)``, not ``T`` copies."""
        if read.source in self.p.per_sequence and self.g.nodes[nid]["op"] in _BROADCASTS:
            if read.source not in self._unit_step:
                e, name = self.main, self.g.nodes[read.source]["name"]
                self._unit_step[read.source] = e.add(
                    "Unsqueeze", [self.env[read.source], e.ints([0])], f"{name}.step"
                )
            return self._unit_step[read.source]
        return self.operand(read)

    def per_row_product(self, nid: int) -> str | None:
        """``a(t) @ m`` over whole sequences where ``m`` is a per-sequence value with its
        own matrix for each row (and head: ``(B, ..., k, n)``; an encoder's memory, a
        population model's weights), or ``m @ b(t)``: the steps folded into the product's
        rows (columns), one GEMM per row and head over all steps, ``(B, ..., T*m, k) @
        (B, ..., k, n)``, instead of ``T * B * ...`` tiny ones."""
        d = self.g.nodes[nid]
        if d["op"] != "matmul":
            return None
        a, b = self.p.reads[nid]
        ta, tb = self.g.nodes[a.source]["type"], self.g.nodes[b.source]["type"]
        seq_a, seq_b = (r.source not in self.p.per_sequence for r in (a, b))
        if seq_a == seq_b or not (ta.batched and tb.batched) or ta.rank != tb.rank or ta.rank < 3:
            return None
        e, name, r = self.main, d["name"], ta.rank  # (a sequence is (T, B, ..., m, k): rank r + 1)
        keep = [0] * (r - 2)  # (Reshape's 0: the batch and head axes as they are)
        if seq_a:  # (T, B, ..., m, k) -> (B, ..., T, m, k) -> (B, ..., T*m, k)
            x = e.add("Transpose", [self.operand(a)], f"{name}.by_row",
                      perm=[*range(1, r - 1), 0, r - 1, r])  # fmt: skip
            k = e.add("Shape", [x], f"{name}.k", start=-1)
            rows = e.add("Concat", [e.ints([*keep, -1]), k], f"{name}.rows_shape", axis=0)
            x = e.add("Reshape", [x, rows], f"{name}.rows")
            y = e.add("MatMul", [x, self.env[b.source]], f"{name}.product")
            m = e.add("Shape", [self.operand(a)], f"{name}.m", start=-2, end=-1)
            n = e.add("Shape", [self.env[b.source]], f"{name}.n", start=-1)
            out = e.add("Concat", [e.ints([*keep, -1]), m, n], f"{name}.out_shape", axis=0)
            y = e.add("Reshape", [y, out], f"{name}.by_row_steps")  # (B, ..., T, m, n)
            perm = [r - 2, *range(r - 2), r - 1, r]
        else:  # (T, B, ..., k, n) -> (B, ..., k, T, n) -> (B, ..., k, T*n)
            x = e.add("Transpose", [self.operand(b)], f"{name}.by_row",
                      perm=[*range(1, r), 0, r])  # fmt: skip
            x = e.add("Reshape", [x, e.ints([*keep, 0, -1])], f"{name}.columns")
            y = e.add("MatMul", [self.env[a.source], x], f"{name}.product")  # (B, ..., m, T*n)
            n = e.add("Shape", [self.operand(b)], f"{name}.n", start=-1)
            out = e.add("Concat", [e.ints([*keep, 0, -1]), n], f"{name}.out_shape", axis=0)
            y = e.add("Reshape", [y, out], f"{name}.by_row_steps")  # (B, ..., m, T, n)
            perm = [r - 1, *range(r - 1), r]
        return e.add("Transpose", [y], name, perm=perm)  # (T, B, ..., m, n)

    def operand(self, read: Read) -> str:
        if read.delay and self.g.nodes[read.source]["type"].batched:
            return self.tap(read)
        return self.sequence(read.source)

    def build(self) -> onnx.ModelProto:
        graph, e = self.graph, self.main
        for name, t in graph.inputs.items():
            lead = ["B"] if name in self.per_seq else ["T", "B"]
            self.inputs.append(_vi(name, self.elem(t), [*lead, *t.row_shape]))
        for nid in graph.input_nodes().values():
            self.env[nid] = self.g.nodes[nid]["name"]
        for s in self.exposed_names:
            t = graph.states[s]
            self.inputs.append(_vi(s, self.elem(t), ["B", *t.row_shape]))
        if self.with_lens:
            self.inputs.append(_vi("sequence_lens", TensorProto.INT64, ["B"]))
        if self.free_running:
            self.inputs.append(_vi(STEPS, TensorProto.INT64, [1]))
        self.dims()
        self.emit_static()
        self.emit_per_sequence()
        fused = self.affine_pairs()
        finals: dict[Read, str] = {}
        for region in self.p.regions:
            if isinstance(region, CellRegion) and self.native:
                finals.update(self.native_cell(region.match))
                continue
            for part in region.parts if isinstance(region, CellRegion) else (region,):
                if isinstance(part, ParallelRegion):
                    nid = part.node
                    if self.g.nodes[nid]["op"] == "input" or nid in fused.values():
                        continue
                    if nid in fused:
                        self.env[nid] = self.affine(nid, fused[nid])
                        continue
                    product = self.per_row_product(nid)
                    if product is not None:
                        self.env[nid] = product
                        continue
                    args = [self.parallel_operand(nid, r) for r in self.p.reads[nid]]
                    self.env[nid] = self.lower(e, nid, args, lead=1)
                else:
                    finals.update(self.scan(part))
        self.emit_post()
        for name, nid in graph.output_nodes().items():
            y = self.sequence(nid)
            t = graph.outputs[name]
            if not t.batched:  # a sum over steps
                e.nodes.append(helper.make_node("Identity", [y], [name], name=f"Output:{name}"))
                self.outputs.append(_vi(name, self.elem(t), list(t.shape)))
                continue
            if self.with_lens:
                zero = e.const(np.zeros((), self.np_dtype(t)), "zero_value")
                y = e.add("Where", [self.mask(len(t.row_shape)), y, zero], f"{name}.masked")
            e.nodes.append(helper.make_node("Identity", [y], [name], name=f"Output:{name}"))
            self.outputs.append(_vi(name, self.elem(t), ["T", "B", *t.row_shape]))
        for name, read in self.p.finals.items():
            out = finals.get(read) or self.gather_final(read)
            t = graph.states[name]
            e.nodes.append(
                helper.make_node("Identity", [out], [f"{name}_final"], name=f"Output:{name}_final")
            )
            self.outputs.append(_vi(f"{name}_final", self.elem(t), ["B", *t.row_shape]))
        body = helper.make_graph(
            e.nodes, graph.name, self.inputs, self.outputs, initializer=self.inits.tensors
        )
        return _model(body, f"rnngraph sequence model of graph {graph.name!r}")

    def emit_post(self) -> None:
        """Sums over steps (invalid steps zeroed first) and the static work after them."""
        e = self.main
        for nid in self.p.post:
            args = []
            for r in self.p.reads[nid]:
                a = self.sequence(r.source)
                t = self.g.nodes[r.source]["type"]
                if t.batched and self.with_lens:
                    zero = e.const(np.zeros((), self.np_dtype(t)), "zero_value")
                    a = e.add("Where", [self.mask(len(t.row_shape)), a, zero], f"{a}.valid")
                args.append(a)
            self.env[nid] = self.lower(e, nid, args, lead=1)

    def affine_pairs(self) -> dict[int, int]:
        """``add(matmul(x, W), b)`` over whole sequences, W and b time-invariant: add -> matmul.

        Emitted as one ``Gemm`` on the flattened rows (bias fused), which onnxruntime
        runs in one pass instead of a MatMul and a broadcast Add over the result.
        """
        out = {}
        parallel = {r.node for r in self.p.regions if isinstance(r, ParallelRegion)}
        for nid in parallel:
            if self.g.nodes[nid]["op"] != "add":
                continue
            a, b = self.p.reads[nid]
            if a.delay or b.delay or a.source not in parallel:
                continue
            mm, bias = self.g.nodes[a.source], self.g.nodes[b.source]["type"]
            if mm["op"] != "matmul" or self.g.out_degree(a.source) != 1 or bias.batched:
                continue
            x, w = self.p.reads[a.source]
            tw = self.g.nodes[w.source]["type"]
            if x.delay or tw.batched or tw.rank != 2 or bias.rank != 1:
                continue
            out[nid] = a.source
        return out

    def affine(self, add: int, matmul: int) -> str:
        e = self.main
        x, w = self.p.reads[matmul]
        _, b = self.p.reads[add]
        name = self.g.nodes[add]["name"]
        xs = self.operand(x)
        k = int(self.g.nodes[w.source]["type"].shape[0])
        rows = e.add("Reshape", [xs, e.ints([-1, k])], f"{name}.rows")
        y = e.add("Gemm", [rows, self.env[w.source], self.env[b.source]], f"{name}.gemm")
        front = e.add("Shape", [xs], f"{name}.front", start=0, end=-1)
        n = e.ints([int(self.g.nodes[add]["type"].shape[-1])])
        return e.add("Reshape", [y, e.add("Concat", [front, n], f"{name}.shape", axis=0)], name)

    def gather_final(self, read: Read) -> str:
        """The source at each row's last valid step (step 0 for a backward read)."""
        e = self.main
        seq = self.env[read.source]
        t: TensorType = self.g.nodes[read.source]["type"]
        name = f"{self.g.nodes[read.consumer]['name']}.last"
        if not self.with_lens:
            idx = e.ints([0] if read.delay < 0 else [-1])
            return e.add("Squeeze", [e.add("Gather", [seq, idx], name, axis=0), e.ints([0])], name)
        one = e.ints([1])
        if read.delay < 0:
            idx = e.add("Mul", [self.lens, e.ints([0])], "first_step")
        else:
            idx = e.add(
                "Max", [e.add("Sub", [self.lens, one], "last_step"), e.ints([0])], "last_step"
            )
        shape = e.add("Concat", [one, self.B, e.ints([1] * len(t.row_shape))], "idx_shape", axis=0)
        full = e.add("Concat", [one, self.B, e.ints(t.row_shape)], "idx_full", axis=0)
        idx = e.add("Expand", [e.add("Reshape", [idx, shape], "idx"), full], "idx")
        picked = e.add(
            "Squeeze", [e.add("GatherElements", [seq, idx], name, axis=0), e.ints([0])], name
        )
        has = self.has_steps()
        if t.row_shape:
            has = e.add("Unsqueeze", [has, e.ints(range(1, 1 + len(t.row_shape)))], "has_steps")
        return e.add("Where", [has, picked, self.initial(read)], name)

    def native_cell(self, cm: CellMatch) -> dict[Read, str]:
        """The native ``LSTM``/``GRU``/``RNN`` op; returns the final values it gives."""
        e = self.main
        one_dir = e.ints([0])
        ins = [self.sequence(cm.x)]
        for role in ("W", "R", "B"):
            if role in cm.weights:
                ins.append(
                    e.add("Unsqueeze", [self.env[cm.weights[role]], one_dir], f"{cm.kind}.{role}")
                )
            else:
                ins.append("")
        if self.with_lens and not hasattr(self, "lens32"):
            self.lens32 = e.add("Cast", [self.lens], "sequence_lens.int32", to=TensorProto.INT32)
        ins.append(self.lens32 if self.with_lens else "")
        state_reads = [self.p.reads[cm.h_state][0]]
        if cm.c_state is not None:
            state_reads.append(self.p.reads[cm.c_state][0])
        for r in state_reads:
            spec = r.init
            c = self.g.nodes[r.consumer]
            if spec.kind == "zeros" and c["name"] not in self.exposed_names:
                ins.append("")
            else:
                ins.append(e.add("Unsqueeze", [self.initial(r), one_dir], f"{c['name']}.initial"))
        if cm.kind == "LSTM":
            ins.append(
                e.add("Unsqueeze", [self.env[cm.weights["P"]], one_dir], "LSTM.P")
                if "P" in cm.weights
                else ""
            )
        while ins and ins[-1] == "":
            ins.pop()
        attrs: dict[str, Any] = {
            "hidden_size": cm.hidden,
            "direction": "forward" if cm.direction > 0 else "reverse",
            "activations": list(cm.activations),
        }
        if any(a == "HardSigmoid" for a in cm.activations):
            attrs["activation_alpha"] = list(cm.activation_alpha)
            attrs["activation_beta"] = list(cm.activation_beta)
        if cm.clip is not None:
            attrs["clip"] = cm.clip
        if cm.input_forget:
            attrs["input_forget"] = 1
        if cm.kind == "GRU":
            attrs["linear_before_reset"] = int(cm.linear_before_reset)
        name = self.g.nodes[cm.h_new]["name"]
        hints = [f"{name}.Y", f"{name}.Y_h"] + ([f"{name}.Y_c"] if cm.kind == "LSTM" else [])
        # The op is named after its cell (the states' common scope: "enc.fw" for
        # "enc.fw.h" and "enc.fw.c"), so that importing the file names its states again.
        scopes = {self.g.nodes[r.consumer]["name"].rpartition(".")[0] for r in state_reads}
        cell = scopes.pop() if len(scopes) == 1 and "" not in scopes else None
        outs = e.add_multi(cm.kind, ins, hints, node_name=cell, **attrs)
        self.env[cm.h_new] = e.add("Squeeze", [outs[0], e.ints([1])], name)
        finals = {}
        for r, out in zip(state_reads, outs[1:], strict=True):
            last = e.add("Squeeze", [out, one_dir], f"{name}.last")
            if self.with_lens:
                # onnxruntime zeroes a length-0 row; rnngraph keeps its initial state.
                has = e.add("Unsqueeze", [self.has_steps(), e.ints([1])], "has_steps")
                last = e.add("Where", [has, last, self.initial(r)], f"{name}.last")
            finals[r] = last
        return finals

    def has_steps(self) -> str:
        if not hasattr(self, "_has_steps"):
            e = self.main
            self._has_steps = e.add("Greater", [self.lens, e.ints([0])], "has_steps")
        return self._has_steps

    def scan(self, region: RecurrentRegion) -> dict[Read, str]:
        """A ``Scan`` loop for a recurrent region; returns the final carried value per carry.

        With ``region.unroll == k > 1`` one iteration runs ``k`` steps: the
        sequences are padded to a multiple of ``k`` with steps marked invalid,
        on which the carried values hold (as past a row's ``sequence_lens``),
        and the padding is cut from the outputs.
        """
        e = self.main
        # Outer sequences the loop reads: inputs at t, taps, then the validity mask.
        seqs: list[tuple[str, TensorType | None, str]] = []  # (outer name, type, body hint)
        for nid in region.inputs:
            seqs.append(
                (self.env[nid], self.g.nodes[nid]["type"], f"{self.g.nodes[nid]['name']}.t")
            )
        for r in region.taps:
            name = f"{self.g.nodes[r.source]['name']}@{r.delay}.t"
            seqs.append((self.tap(r), self.g.nodes[r.source]["type"], name))
        if not seqs:
            # A free-running region (no outside input): Scan still needs a sequence to count steps.
            ticks = e.add("Concat", [self.T, e.ints([1])], "ticks_shape", axis=0)
            seqs.append((e.add("ConstantOfShape", [ticks], "ticks"), None, "tick.t"))
        inits = []
        for c in region.carries:  # a ring: its newest value, then the ring
            inits += (
                [self.initial(c), self.ring(c)] if _ring(c) else [self.initial(c)] * abs(c.delay)
            )
        if any(_ring(c) for c in region.carries):
            inits.append(e.ints([0]))  # the rings' step counter
        k = max(1, region.unroll)
        valid = self.valid if self.with_lens else None
        if k > 1:
            seqs, valid = self._pad_to_blocks(seqs, valid, k)
        if valid is not None:
            seqs.append((valid, None, "valid.t"))
        finals, exports = self._loop(region, seqs, inits, k, masked=valid is not None)
        for nid, name in zip(region.exports, exports, strict=True):
            if k > 1:
                # (T'/k, k, B, ...) -> (T', B, ...) -> the first T steps
                rest = e.add("Shape", [name], "export.shape", start=2)
                flat_shape = e.add("Concat", [e.ints([-1]), rest], "flat_shape", axis=0)
                flat = e.add("Reshape", [name, flat_shape], "flat")
                nm = self.g.nodes[nid]["name"]
                name = e.add("Slice", [flat, e.ints([0]), self.T, e.ints([0])], nm)
            self.env[nid] = name
        out: dict[Read, str] = {}
        i = 0
        for c in region.carries:
            out[c] = finals[i]  # the newest carried value
            i += 2 if _ring(c) else abs(c.delay)
        return out

    def _pad_to_blocks(
        self, seqs: list[tuple[str, TensorType | None, str]], valid: str | None, k: int
    ) -> tuple[list[tuple[str, TensorType | None, str]], str]:
        """Sequences padded to whole blocks ``(T'/k, k, B, ...)``, and the padded validity."""
        e = self.main
        kk = e.ints([k])
        padded = e.add(
            "Mul",
            [e.add("Div", [e.add("Add", [self.T, e.ints([k - 1])], "Tk"), kk], "blocks"), kk],
            "T_padded",
        )
        pad = e.add("Sub", [padded, self.T], "T_pad")
        out = []
        for outer, t_, hint in seqs:
            rest = e.add("Shape", [outer], f"{hint}.shape", start=1)
            dtype = self.np_dtype(t_) if t_ is not None else self.np_float
            zero = numpy_helper.from_array(np.zeros(1, dtype), "value")
            fill = e.add(
                "ConstantOfShape",
                [e.add("Concat", [pad, rest], "pad_shape", axis=0)],
                f"{hint}.pad",
                value=zero,
            )
            full = e.add("Concat", [outer, fill], f"{hint}.padded", axis=0)
            shape = e.add("Concat", [e.ints([-1, k]), rest], f"{hint}.block_shape", axis=0)
            out.append((e.add("Reshape", [full, shape], f"{hint}.blocks"), t_, hint))
        if valid is None:
            T0 = e.add("Squeeze", [padded, e.ints([0])], "T_padded_scalar")
            zero_i, one_i = (e.const(np.asarray(v, np.int64), "step") for v in (0, 1))
            steps = e.add(
                "Unsqueeze",
                [e.add("Range", [zero_i, T0, one_i], "steps_padded"), e.ints([1])],
                "steps_padded",
            )
            inside = e.add("Less", [steps, self.T], "in_sequence")
            valid_p = e.add(
                "Expand",
                [inside, e.add("Concat", [padded, self.B], "valid_shape", axis=0)],
                "valid_padded",
            )
        else:
            no = numpy_helper.from_array(np.zeros(1, bool), "value")
            fill = e.add(
                "ConstantOfShape",
                [e.add("Concat", [pad, self.B], "pad_shape", axis=0)],
                "valid.pad",
                value=no,
            )
            valid_p = e.add("Concat", [valid, fill], "valid_padded", axis=0)
        blocks = e.add("Concat", [e.ints([-1, k]), self.B], "valid_block_shape", axis=0)
        return out, e.add("Reshape", [valid_p, blocks], "valid.blocks")

    def _loop(
        self,
        region: RecurrentRegion,
        seqs: Sequence[tuple[str, TensorType | None, str]],
        inits: Sequence[str],
        k: int,
        *,
        masked: bool,
    ) -> tuple[list[str], list[str]]:
        """One ``Scan`` running ``k`` steps per iteration; its final registers and exports.

        ``masked``: the last sequence is the validity ``(T, B)`` on which registers update.
        """
        outer = [s_[0] for s_ in seqs]
        e = self.main
        body = Emitter(self.names, self.inits, self.float_type)
        b_inputs: list[onnx.ValueInfoProto] = []
        b_outputs: list[onnx.ValueInfoProto] = []
        block = [k] if k > 1 else []
        # State variables: for each carry, its past values, newest first; for a long
        # delay, its newest value and a ring of past values read and written at the
        # step counter (the last state variable) modulo the ring's length.
        registers: dict[Read, list[str]] = {}
        for c in region.carries:
            t = self.g.nodes[c.source]["type"]
            name = self.g.nodes[c.source]["name"]
            regs = []
            for age in range(1, 2 if _ring(c) else abs(c.delay) + 1):
                nm = self.names.fresh(f"{name}@{age}")
                b_inputs.append(_vi(nm, self.elem(t), ["B", *t.row_shape]))
                regs.append(nm)
            if _ring(c):
                nm = self.names.fresh(f"{name}@ring")
                b_inputs.append(_vi(nm, self.elem(t), [f"{nm}_rows", "B", *t.row_shape]))
                regs.append(nm)
            registers[c] = regs
        counter = None
        if any(_ring(c) for c in region.carries):
            counter = self.names.fresh("ring_step")
            b_inputs.append(_vi(counter, TensorProto.INT64, [1]))
        elems = []
        for _, t_, hint in seqs:
            nm = self.names.fresh(hint)
            if t_ is None:
                b_inputs.append(
                    _vi(
                        nm,
                        TensorProto.BOOL if "valid" in hint else TensorProto.FLOAT,
                        [*block, "B"] if "valid" in hint else [*block, 1],
                    )
                )
            else:
                b_inputs.append(_vi(nm, self.elem(t_), [*block, "B", *t_.row_shape]))
            elems.append(nm)
        steps = range(k) if region.direction > 0 else range(k - 1, -1, -1)
        per_step: dict[int, list[str]] = {}
        for j in steps:
            at_j = elems
            if k > 1:
                idx = body.const(np.asarray(j, np.int64), "step_index")
                at_j = [body.add("Gather", [el, idx], f"{el}.{j}", axis=0) for el in elems]
            registers, exports, counter = self._step(body, region, registers, at_j, masked, counter)
            per_step[j] = exports
        new_states: list[str] = []
        body_inputs = {vi.name for vi in b_inputs}
        for c in region.carries:
            t = self.g.nodes[c.source]["type"]
            regs = registers[c]
            for reg in regs:
                # A value computed in the body is its own output; a passed-through
                # register or a value given twice needs a copy with a name of its own.
                new = reg
                if reg in body_inputs or reg in new_states:
                    new = body.add("Identity", [reg], f"{reg}.next")
                new_states.append(new)
                ring_rows = [f"{new}_rows"] if _ring(c) and reg != regs[0] else []
                b_outputs.append(_vi(new, self.elem(t), [*ring_rows, "B", *t.row_shape]))
        if counter is not None:
            new_states.append(counter)
            b_outputs.append(_vi(counter, TensorProto.INT64, [1]))
        scan_outs = []
        for i, nid in enumerate(region.exports):
            t = self.g.nodes[nid]["type"]
            name = f"{self.g.nodes[nid]['name']}.out"
            if k > 1:
                rows = [
                    body.add("Unsqueeze", [per_step[j][i], body.ints([0])], name) for j in range(k)
                ]
                out = body.add("Concat", rows, name, axis=0)
            else:
                out = body.add("Identity", [per_step[0][i]], name)
            scan_outs.append(out)
            b_outputs.append(_vi(out, self.elem(t), [*block, "B", *t.row_shape]))
        body_graph = helper.make_graph(
            body.nodes, self.names.fresh("scan_body"), b_inputs, b_outputs
        )
        n_states = len(new_states)
        hints = [f"{n}.final" for n in new_states] + [
            self.g.nodes[nid]["name"] for nid in region.exports
        ]
        backward = region.direction < 0
        directions: dict[str, Any] = {"scan_output_directions": [int(backward)] * len(scan_outs)}
        results = e.add_multi(
            "Scan",
            [*inits, *outer],
            hints,
            body=body_graph,
            num_scan_inputs=len(outer),
            scan_input_directions=[int(backward)] * len(outer),
            **(directions if scan_outs else {}),
        )
        return results[:n_states], results[n_states:]

    def _step(
        self,
        body: Emitter,
        region: RecurrentRegion,
        registers: dict[Read, list[str]],
        elems: Sequence[str],
        masked: bool,
        counter: str | None,
    ) -> tuple[dict[Read, list[str]], list[str], str | None]:
        """One step of the region inside a loop body: new registers, the exported values
        and the rings' next step counter."""
        members = set(region.nodes)
        local: dict[int, str] = dict(zip(region.inputs, elems, strict=False))
        taps = dict(zip(region.taps, elems[len(region.inputs) :], strict=False))
        valid_t = elems[-1] if masked else None
        carries = set(region.carries)
        slots, oldest = {}, {}
        for c in region.carries:
            if _ring(c):  # the ring's row at the counter: written |delay| steps ago
                assert counter is not None
                rows = body.add("Shape", [registers[c][1]], "ring_rows", start=0, end=1)
                slots[c] = body.add("Mod", [counter, rows], "ring_slot")
                row = body.add("Gather", [registers[c][1], slots[c]], "ring_row", axis=0)
                oldest[c] = body.add("Squeeze", [row, body.ints([0])], "ring_oldest")
            else:
                oldest[c] = registers[c][-1]
        for nid in region.nodes:
            args = []
            for r in self.p.reads[nid]:
                if r in carries:
                    args.append(oldest[r])
                elif r in taps:
                    args.append(taps[r])
                elif r.source in members or r.source in local:
                    args.append(local[r.source])
                else:
                    args.append(self.env[r.source])  # static, from the outer scope
            local[nid] = self.lower(body, nid, args, lead=0)
        # New registers: each shifts by one, where the row is valid.
        out: dict[Read, list[str]] = {}
        for c in region.carries:
            regs = registers[c]
            t = self.g.nodes[c.source]["type"]
            if _ring(c):  # the newest value, and the ring with it written at the slot
                olds, news = [regs[0], oldest[c]], [local[c.source], local[c.source]]
            else:
                olds, news = regs, [local[c.source], *regs[:-1]]
            if valid_t is not None:
                cond = valid_t
                if t.row_shape:
                    axes = body.ints(range(1, 1 + len(t.row_shape)))
                    cond = body.add("Unsqueeze", [valid_t, axes], "valid_b")
                news = [
                    body.add("Where", [cond, new, old], f"{old}.next")
                    for old, new in zip(olds, news, strict=True)
                ]
            if _ring(c):
                where = body.add("Unsqueeze", [slots[c], body.ints([0])], "ring_index")
                row = body.add("Unsqueeze", [news[1], body.ints([0])], "ring_update")
                news = [news[0], body.add("ScatterND", [regs[1], where, row], f"{regs[1]}.next")]
            out[c] = news
        if counter is not None:
            counter = body.add("Add", [counter, body.ints([1])], "ring_step.next")
        return out, [local[nid] for nid in region.exports], counter


RING_DELAY = 8
"""Delays longer than this are carried in a ``Scan`` as a ring of ``min(|delay|, T)``
past values with a moving index (one state variable, whatever the delay); shorter ones
as one state variable per past value."""


def _ring(read: Read) -> bool:
    return abs(read.delay) > RING_DELAY


def build_sequence_model(
    program: Program,
    params: Mapping[str, np.ndarray],
    *,
    float_type: int = TensorProto.FLOAT,
    sequence_lens: bool = False,
    initial_states: Sequence[str] = (),
    native_cells: bool = True,
) -> onnx.ModelProto:
    """The ONNX model that runs whole sequences ``(T, B, ...)``; see the module docstring.

    ``native_cells=False`` lowers recognised cells as ``Scan`` loops too.
    """
    return _SequenceModel(
        program, params, float_type, sequence_lens, initial_states, native_cells
    ).build()


# --------------------------------------------------------------------- step


class _StepModel(_Lowerer):
    input_lead = 1

    def build(self) -> tuple[onnx.ModelProto, list[StateSlot]]:
        graph, e = self.graph, self.main
        if self.p.post:
            name = self.g.nodes[self.p.post[0]]["name"]
            raise CompileError(
                f"node {name!r} sums over every step; a step model sees one step at a time. "
                "Compile the sequence model, or accumulate the step outputs yourself"
            )
        slots = step_slots(self.p)
        self.reserve_interface(
            [*graph.inputs, *graph.outputs, *(s.name for s in slots), *(s.output for s in slots)]
        )
        for name, t in graph.inputs.items():
            self.inputs.append(_vi(name, self.elem(t), ["B", *t.row_shape]))
        for nid in graph.input_nodes().values():
            self.env[nid] = self.g.nodes[nid]["name"]
        oldest: dict[Read, str] = {}
        for s in slots:
            t = self.g.nodes[s.read.source]["type"]
            self.inputs.append(_vi(s.name, self.elem(t), ["B", *t.row_shape]))
            oldest[s.read] = s.name  # slots come newest first, so the last one wins
        self.emit_static()
        self.emit_per_sequence()
        for part in self.p.parts:
            for nid in (part.node,) if isinstance(part, ParallelRegion) else part.nodes:
                if self.g.nodes[nid]["op"] == "input":
                    continue
                args = [oldest.get(r) or self.env[r.source] for r in self.p.reads[nid]]
                self.env[nid] = self.lower(e, nid, args, lead=0)
        for name, nid in graph.output_nodes().items():
            t = graph.outputs[name]
            e.nodes.append(
                helper.make_node("Identity", [self.env[nid]], [name], name=f"Output:{name}")
            )
            self.outputs.append(_vi(name, self.elem(t), ["B", *t.row_shape]))
        by_read: dict[Read, list[StateSlot]] = {}
        for s in slots:
            by_read.setdefault(s.read, []).append(s)
        for read, group in by_read.items():
            t = self.g.nodes[read.source]["type"]
            newer = [self.env[read.source], *(s.name for s in group[:-1])]
            for s, value in zip(group, newer, strict=True):
                e.nodes.append(
                    helper.make_node("Identity", [value], [s.output], name=f"Output:{s.output}")
                )
                self.outputs.append(_vi(s.output, self.elem(t), ["B", *t.row_shape]))
        body = helper.make_graph(
            e.nodes, graph.name, self.inputs, self.outputs, initializer=self.inits.tensors
        )
        return _model(body, f"rnngraph step model of graph {graph.name!r}"), slots


def build_step_model(
    program: Program, params: Mapping[str, np.ndarray], *, float_type: int = TensorProto.FLOAT
) -> tuple[onnx.ModelProto, list[StateSlot]]:
    """The ONNX model of one step, with its carried values as paired inputs and outputs."""
    return _StepModel(program, params, float_type).build()
