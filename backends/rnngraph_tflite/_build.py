"""The step of a quantised graph as a fully integer TensorFlow Lite flatbuffer.

A quantised graph (``rg.quantize``) puts every signal on an integer grid; TFLite's
integer kernels compute an op from its inputs' grids straight into its output's. So
each op followed by its ``fake_quant`` becomes one TFLite op whose output tensor has
that grid; ops that only move values (slices, reshapes, transposes) keep their
input's; ``x @ W (+ b)`` is a ``FULLY_CONNECTED`` with int8 weights per output channel
and an int32 bias. What depends on params only (weights, transposed or sliced) is
computed here, once. Inputs, states and outputs are int8 tensors with their grids:
the caller quantises (:class:`~rnngraph_tflite._model.TfliteModel` does, so its
``run`` is float in, float out like ``rg.run``).

Only the ops an LSTM, GRU or Elman step needs have rules (``RULES``); any other op,
and any value left in float, is a :class:`~rnngraph.errors.CompileError` naming the
node — those models are not integer-only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import flatbuffers
import networkx as nx
import numpy as np
import tflite

from rnngraph.errors import CompileError
from rnngraph.ir.graph import Graph, Node
from rnngraph.ir.registry import REFERENCE
from rnngraph.quant.transform import FIXED_GRIDS

__all__ = ["RULES", "StepFlatbuffer", "build_step"]

OP = tflite.BuiltinOperator
_VERSIONS = {OP.FULLY_CONNECTED: 5, OP.ADD: 2, OP.SUB: 2, OP.MUL: 2, OP.LOGISTIC: 2,
             OP.TANH: 2, OP.STRIDED_SLICE: 2, OP.CONCATENATION: 2, OP.RESHAPE: 1,
             OP.TRANSPOSE: 2, OP.QUANTIZE: 2, OP.RELU: 2}  # fmt: skip


@dataclass
class Grid:
    kind: str
    scale: float
    zero_point: int

    def attrs(self) -> dict[str, Any]:
        """This grid as the attributes of rnngraph's ``quantize`` / ``dequantize`` ops."""
        return {"scale": [self.scale], "zero_point": [self.zero_point], "axis": None,
                "to": self.kind}  # fmt: skip


@dataclass
class T:
    """A tensor of the model: its index, shape and grid."""

    index: int
    shape: tuple[int, ...]
    grid: Grid


class _Flat:
    """Tensors, buffers, op codes and operators, written out as one flatbuffer."""

    def __init__(self) -> None:
        self.tensors: list[dict[str, Any]] = []
        self.buffers: list[bytes] = [b""]  # buffer 0: the empty one, by convention
        self.codes: list[int] = []
        self.ops: list[tuple[int, list[int], list[int], int, Callable[[Any], int] | None]] = []
        self.names: set[str] = set()

    def tensor(
        self,
        name: str,
        shape: Sequence[int],
        grid: Grid | None,
        *,
        kind: str | None = None,
        data: np.ndarray | None = None,
        channel_scales: Sequence[float] | None = None,
    ) -> int:
        base, i = name, 0
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buf = len(self.buffers) - 1
        self.tensors.append(
            {"name": name, "shape": list(shape), "kind": kind or (grid.kind if grid else "int32"),
             "buffer": buf, "grid": grid, "channels": channel_scales}
        )  # fmt: skip
        return len(self.tensors) - 1

    def op(
        self,
        code: int,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options: tuple[int, Callable[[Any], int]] | None = None,
    ) -> None:
        if code not in self.codes:
            self.codes.append(code)
        kind, write = options if options else (0, None)
        self.ops.append((self.codes.index(code), list(inputs), list(outputs), kind, write))

    def finish(self, inputs: Sequence[int], outputs: Sequence[int], description: str) -> bytes:
        b = flatbuffers.Builder(1024)
        _ints = {"int8": tflite.TensorType.INT8, "int16": tflite.TensorType.INT16,
                 "int32": tflite.TensorType.INT32, "int64": tflite.TensorType.INT64}  # fmt: skip

        def vec(start: Callable[..., None], items: Sequence[int], kind: str = "i32") -> int:
            start(b, len(items))
            for v in reversed(items):
                {"i32": b.PrependInt32, "u8": b.PrependUint8, "off": b.PrependUOffsetTRelative,
                 "f32": b.PrependFloat32, "i64": b.PrependInt64}[kind](v)  # fmt: skip
            return b.EndVector()

        bufs = []
        for data in self.buffers:
            d = vec(tflite.BufferStartDataVector, list(data), "u8") if data else None
            tflite.BufferStart(b)
            if d is not None:
                tflite.BufferAddData(b, d)
            bufs.append(tflite.BufferEnd(b))
        tens = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = vec(tflite.TensorStartShapeVector, t["shape"])
            q = None
            grid = t["grid"]
            if t["channels"] is not None or grid is not None:
                scales = list(t["channels"]) if t["channels"] is not None else [grid.scale]
                zps = [0] * len(scales) if t["channels"] is not None else [grid.zero_point]
                sv = vec(tflite.QuantizationParametersStartScaleVector, scales, "f32")
                zv = vec(tflite.QuantizationParametersStartZeroPointVector, zps, "i64")
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, sv)
                tflite.QuantizationParametersAddZeroPoint(b, zv)
                tflite.QuantizationParametersAddQuantizedDimension(b, 0)
                q = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, _ints[t["kind"]])
            tflite.TensorAddBuffer(b, t["buffer"])
            tflite.TensorAddName(b, name)
            if q is not None:
                tflite.TensorAddQuantization(b, q)
            tens.append(tflite.TensorEnd(b))
        ops = []
        for code, ins, outs, okind, write in self.ops:
            opts = write(b) if write else None
            iv = vec(tflite.OperatorStartInputsVector, ins)
            ov = vec(tflite.OperatorStartOutputsVector, outs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, code)
            tflite.OperatorAddInputs(b, iv)
            tflite.OperatorAddOutputs(b, ov)
            if opts is not None:
                tflite.OperatorAddBuiltinOptionsType(b, okind)
                tflite.OperatorAddBuiltinOptions(b, opts)
            ops.append(tflite.OperatorEnd(b))
        tv = vec(tflite.SubGraphStartTensorsVector, tens, "off")
        iv = vec(tflite.SubGraphStartInputsVector, list(inputs))
        ov = vec(tflite.SubGraphStartOutputsVector, list(outputs))
        opv = vec(tflite.SubGraphStartOperatorsVector, ops, "off")
        sname = b.CreateString("step")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tv)
        tflite.SubGraphAddInputs(b, iv)
        tflite.SubGraphAddOutputs(b, ov)
        tflite.SubGraphAddOperators(b, opv)
        tflite.SubGraphAddName(b, sname)
        sub = tflite.SubGraphEnd(b)
        codes = []
        for c in self.codes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddBuiltinCode(b, c)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(c, 127))
            tflite.OperatorCodeAddVersion(b, _VERSIONS.get(c, 1))
            codes.append(tflite.OperatorCodeEnd(b))
        cv = vec(tflite.ModelStartOperatorCodesVector, codes, "off")
        sv = vec(tflite.ModelStartSubgraphsVector, [sub], "off")
        bv = vec(tflite.ModelStartBuffersVector, bufs, "off")
        desc = b.CreateString(description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, cv)
        tflite.ModelAddSubgraphs(b, sv)
        tflite.ModelAddBuffers(b, bv)
        tflite.ModelAddDescription(b, desc)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


# ------------------------------------------------------------------ options
def _fc_options(b: Any) -> int:
    tflite.FullyConnectedOptionsStart(b)
    return int(tflite.FullyConnectedOptionsEnd(b))


def _no_activation(start: Callable[..., None], end: Callable[..., int]) -> Callable[[Any], int]:
    def write(b: Any) -> int:
        start(b)
        return end(b)

    return write


def _concat_options(axis: int) -> Callable[[Any], int]:
    def write(b: Any) -> int:
        tflite.ConcatenationOptionsStart(b)
        tflite.ConcatenationOptionsAddAxis(b, axis)
        return int(tflite.ConcatenationOptionsEnd(b))

    return write


def _reshape_options(shape: Sequence[int]) -> Callable[[Any], int]:
    def write(b: Any) -> int:
        tflite.ReshapeOptionsStartNewShapeVector(b, len(shape))
        for v in reversed(shape):
            b.PrependInt32(v)
        vec = b.EndVector()
        tflite.ReshapeOptionsStart(b)
        tflite.ReshapeOptionsAddNewShape(b, vec)
        return int(tflite.ReshapeOptionsEnd(b))

    return write


OPTS = tflite.BuiltinOptions


# ------------------------------------------------------------------ lowering
class StepFlatbuffer:
    """Lowers one step of a quantised graph (see the module docstring)."""

    def __init__(self, graph: Graph, params: Mapping[str, np.ndarray], batch: int) -> None:
        self.g, self.params, self.B = graph, dict(params), int(batch)
        self.flat = _Flat()
        self.values: dict[int, T] = {}
        self.consts: dict[int, np.ndarray] = {}
        self.inputs: dict[str, int] = {}
        self.outputs: dict[str, int] = {}
        self.grids: dict[str, Grid] = {}  # every model input's and output's grid, by name

    # -- helpers
    def node(self, nid: int) -> Node:
        return self.g.node(nid)

    def operands(self, nid: int) -> list[int]:
        return self.g.operand_ids(nid)

    def shape(self, nid: int) -> tuple[int, ...]:
        t = self.node(nid).type
        if any(isinstance(d, str) for d in t.row_shape):
            raise CompileError(f"tflite: node {t} of {self.node(nid).name!r} has a symbolic size")
        return (self.B, *(int(d) for d in t.row_shape))

    @staticmethod
    def grid_of(fq: Node) -> Grid:
        if fq.attrs["axis"] is not None:
            raise CompileError(f"tflite: {fq.name!r} quantises per channel; signals are per tensor")
        return Grid(fq.attrs["to"], float(fq.attrs["scale"][0]), int(fq.attrs["zero_point"][0]))

    def new(self, name: str, shape: Sequence[int], grid: Grid) -> T:
        return T(self.flat.tensor(name, shape, grid), tuple(shape), grid)

    def const_tensor(
        self, value: np.ndarray, name: str, shape: Sequence[int] | None = None, kind: str = "int8"
    ) -> T:
        """A constant operand of an element-wise op: per tensor, its own symmetric grid."""
        v = np.asarray(value, np.float64)
        m = float(np.max(np.abs(v))) if v.size else 0.0
        top = 127 if kind == "int8" else 32767
        grid = Grid(kind, m / top if m > 0 else 1.0, 0)
        q = np.clip(np.rint(v / grid.scale), -top - 1, top).astype(np.dtype(kind))
        shp = tuple(shape) if shape is not None else v.shape
        idx = self.flat.tensor(name, shp, grid, data=q.reshape(shp))
        return T(idx, shp, grid)

    def requantized(self, t: T, grid: Grid, name: str) -> T:
        if t.grid == grid:
            return t
        out = self.new(f"{name}.requantized", t.shape, grid)
        self.flat.op(OP.QUANTIZE, [t.index], [out.index])
        return out

    def wide(self, t: T, name: str) -> T:
        """``t`` as int16 on the same scale, zero point 0 (TFLite's int16 kernels need
        one): exact for an int8 value."""
        if t.grid.kind == "int16":
            return t
        return self.requantized(t, Grid("int16", t.grid.scale, 0), f"{name}.wide")

    @staticmethod
    def wide_grid(grid: Grid) -> Grid:
        """A symmetric int16 grid covering ``grid``'s range (an int16 op's output, before
        it is brought back to an int8 grid)."""
        if grid.kind == "int16":
            return grid
        lo, hi = (-128 - grid.zero_point) * grid.scale, (127 - grid.zero_point) * grid.scale
        return Grid("int16", max(-lo, hi) / 32767, 0)

    def operand(
        self, u: int, name: str, shape: Sequence[int] | None = None, kind: str = "int8"
    ) -> T:
        if u in self.values:
            return self.values[u]
        if u in self.consts:
            c = self.consts[u]
            fit = shape if c.ndim == len(shape or ()) else None
            return self.const_tensor(c, f"{name}.const", fit, kind)
        n = self.node(u)
        raise CompileError(
            f"tflite: node {n.name!r} ({n.op}) is a float value, not on an integer grid: "
            "the TFLite model takes only quantised graphs (rg.quantize), and not ops that "
            "stay float (divisions, logs, roots)"
        )

    # -- the walk
    def build(self) -> bytes:
        g = self.g
        order = list(nx.topological_sort(g.zero_delay_view()))
        for nid in order:
            n = self.node(nid)
            if not n.type.batched:
                self._fold(nid)
            elif n.op == "fake_quant":
                self._quantised(nid)
        for name, nid in g.output_nodes().items():
            self.outputs[name] = self._out(nid, name)
        for name, sid in g.state_nodes().items():
            ((src, delay, _),) = g.operands(sid)
            if delay != 1:
                raise CompileError(
                    f"tflite: state {name!r} has delay {delay}; a step model needs 1"
                )
            state_in = self.values[sid]
            stored = self.requantized(self.values[src], state_in.grid, f"{name}_final")
            self.outputs[f"{name}_final"] = self._out_tensor(stored, f"{name}_final")
        ins = list(self.inputs.values())
        outs = list(self.outputs.values())
        return self.flat.finish(ins, outs, f"rnngraph step model of graph {g.name!r}")

    def _out(self, nid: int, name: str) -> int:
        return self._out_tensor(self.operand(nid, name), name)

    def _out_tensor(self, t: T, name: str) -> int:
        self.grids[name] = t.grid
        if t.index in self.outputs.values() or t.index in self.inputs.values():
            copy = self.new(name, t.shape, t.grid)  # one tensor, two names: a copy
            self.flat.op(OP.RESHAPE, [t.index, self._shape_const(t.shape)], [copy.index])
            return copy.index
        self.flat.tensors[t.index]["name"] = name
        return t.index

    def _shape_const(self, shape: Sequence[int]) -> int:
        data = np.array([-1, *shape[1:]], np.int32)
        return self.flat.tensor("shape", [len(shape)], None, kind="int32", data=data)

    def _fold(self, nid: int) -> None:
        """A value of params and constants only: computed now, in float."""
        n = self.node(nid)
        args = [self.consts[u] for u in self.operands(nid)]
        if n.op == "param":
            self.consts[nid] = np.asarray(self.params[n.name])
        elif n.op == "constant":
            self.consts[nid] = np.asarray(self.g.arrays[n.attrs["array"]], np.float64)
        else:
            attrs = {**n.attrs, "float_dtype": np.float64}
            self.consts[nid] = np.asarray(REFERENCE[n.op](attrs, *args))

    def _quantised(self, fq: int) -> None:
        (src,) = self.operands(fq)
        grid = self.grid_of(self.node(fq))
        s = self.node(src)
        name = s.name
        if s.op in ("input", "state"):
            t = self.new(name, self.shape(src), grid)
            self.inputs[name] = t.index
            self.grids[name] = grid
            self.values[src] = self.values[fq] = t
            return
        self._structural_inputs(src)
        rule = RULES.get(s.op)
        if rule is None:
            raise CompileError(
                f"tflite: node {name!r} ({s.op}) has no TFLite integer op here; the step "
                f"model's ops: {sorted(RULES)}"
            )
        out = rule(self, src, grid)
        self.values[src] = self.values[fq] = out

    def _structural_inputs(self, nid: int) -> None:
        """Lower the grid-keeping ops (slices, reshapes) between quantised values and ``nid``."""
        for u in self.operands(nid):
            if u in self.values or u in self.consts:
                continue
            n = self.node(u)
            if n.op in MOVES:
                self._structural_inputs(u)
                self.values[u] = MOVES[n.op](self, u)


# ------------------------------------------------------------------ rules
def _fc(self: StepFlatbuffer, x: int, w: np.ndarray, bias: np.ndarray | None, grid: Grid,
        name: str) -> T:  # fmt: skip
    xt = self.operand(x, name)
    if len(xt.shape) != 2:
        raise CompileError(f"tflite: {name!r} multiplies a {len(xt.shape) - 1}-d row; FC takes 1")
    w = np.asarray(w, np.float64)  # (in, out)
    peak = np.max(np.abs(w), axis=0)
    scales = np.where(peak > 0, peak / 127, 1.0)
    q = np.clip(np.rint(w / scales), -127, 127).astype(np.int8).T  # (out, in)
    wt = self.flat.tensor(f"{name}.weights", q.shape, None, kind="int8", data=q,
                          channel_scales=list(scales))  # fmt: skip
    b = np.zeros(q.shape[0]) if bias is None else np.asarray(bias, np.float64).reshape(-1)
    # TFLite's 16x8 kernel (int16 in and out, int64 bias) when either side is int16
    wide = "int16" in (xt.grid.kind, grid.kind)
    if wide:
        xt = self.wide(xt, name)  # (zero point 0)
    bias_scales = xt.grid.scale * scales
    bkind = "int64" if wide else "int32"
    bq = np.rint(b / bias_scales).astype(np.dtype(bkind))
    bt = self.flat.tensor(f"{name}.bias", bq.shape, None, kind=bkind, data=bq,
                          channel_scales=list(bias_scales))  # fmt: skip
    out = self.new(name, (xt.shape[0], q.shape[0]), self.wide_grid(grid) if wide else grid)
    self.flat.op(OP.FULLY_CONNECTED, [xt.index, wt, bt], [out.index],
                 (OPTS.FullyConnectedOptions, _fc_options))  # fmt: skip
    return self.requantized(out, grid, name)


def _matmul(self: StepFlatbuffer, nid: int, grid: Grid) -> T:
    x, w = self.operands(nid)
    if w not in self.consts:
        raise CompileError(f"tflite: {self.node(nid).name!r} multiplies two signals")
    return _fc(self, x, self.consts[w], None, grid, self.node(nid).name)


def _binary(code: int, opts: int, start: Any, end: Any) -> Callable[..., T]:
    def rule(self: StepFlatbuffer, nid: int, grid: Grid) -> T:
        n = self.node(nid)
        a, b = self.operands(nid)
        if code == OP.ADD:  # x @ W + b: one FULLY_CONNECTED with its bias
            for mm, bias in ((a, b), (b, a)):
                m = self.node(mm)
                if m.op == "matmul" and bias in self.consts and mm not in self.values:
                    x, w = self.operands(mm)
                    if w in self.consts:
                        return _fc(self, x, self.consts[w], self.consts[bias], grid, n.name)
        shape = self.shape(nid)
        kinds = {self.values[u].grid.kind for u in (a, b) if u in self.values} | {grid.kind}
        if "int16" in kinds:  # in int16 (TFLite's int16 kernels), then to the output's grid
            ta = self.wide(self.operand(a, n.name, shape, "int16"), n.name)
            tb = self.wide(self.operand(b, n.name, shape, "int16"), n.name)
            out = self.new(n.name, shape, self.wide_grid(grid))
        else:
            ta, tb = self.operand(a, n.name, shape), self.operand(b, n.name, shape)
            out = self.new(n.name, shape, grid)
        self.flat.op(code, [ta.index, tb.index], [out.index], (opts, _no_activation(start, end)))
        return self.requantized(out, grid, n.name)

    return rule


_ACTIVATIONS = {OP.LOGISTIC: "sigmoid", OP.TANH: "tanh"}


def _fixed(code: int, kind: str) -> Grid | None:
    """The output grid TFLite's kernel fixes for ``code`` on ``kind`` (the quantiser's)."""
    fixed = FIXED_GRIDS.get((_ACTIVATIONS.get(code, ""), kind))
    return Grid(kind, *fixed) if fixed else None


def _unary(code: int) -> Callable[..., T]:
    def rule(self: StepFlatbuffer, nid: int, grid: Grid) -> T:
        (a,) = self.operands(nid)
        n = self.node(nid)
        src = self.operand(a, n.name)
        if src.grid.kind == "int16":  # int16 in, int16 out (TFLite's int16 kernels)
            wide = _fixed(code, "int16") or (src.grid if code == OP.RELU else self.wide_grid(grid))
            out = self.new(n.name, self.shape(nid), wide)
        else:  # int8 in: the int8 kernel (its fixed grid), then the output's grid
            narrow = _fixed(code, "int8") or (grid if grid.kind == "int8" else src.grid)
            out = self.new(n.name, self.shape(nid), narrow)
        self.flat.op(code, [src.index], [out.index])
        return self.requantized(out, grid, n.name)

    return rule


def _concat(self: StepFlatbuffer, nid: int, grid: Grid) -> T:
    n = self.node(nid)
    parts = [self.requantized(self.operand(u, n.name, kind=grid.kind), grid, n.name)
             for u in self.operands(nid)]  # fmt: skip
    shape = self.shape(nid)
    out = self.new(n.name, shape, grid)
    axis = len(shape) + int(n.attrs["axis"])
    self.flat.op(OP.CONCATENATION, [p.index for p in parts], [out.index],
                 (OPTS.ConcatenationOptions, _concat_options(axis)))  # fmt: skip
    return out


def _slice(self: StepFlatbuffer, nid: int) -> T:
    n = self.node(nid)
    (a,) = self.operands(nid)
    src = self.operand(a, n.name)
    rank = len(src.shape)
    begin, end, step = [0] * rank, list(src.shape), [1] * rank
    for ax, s0, e0, st in zip(n.attrs["axes"], n.attrs["starts"], n.attrs["ends"],
                              n.attrs["steps"], strict=True):  # fmt: skip
        i = rank + int(ax)
        begin[i], end[i], step[i] = int(s0), int(min(e0, src.shape[i])), int(st)
    end[0] = 2**31 - 1  # (the batch: all of it, whatever it is at run time)
    consts = [self.flat.tensor(f"{n.name}.{k}", [rank], None, kind="int32",
                               data=np.array(v, np.int32))
              for k, v in (("begin", begin), ("end", end), ("strides", step))]  # fmt: skip
    out = self.new(n.name, self.shape(nid), src.grid)

    def opts(b: Any) -> int:
        tflite.StridedSliceOptionsStart(b)
        return int(tflite.StridedSliceOptionsEnd(b))

    self.flat.op(OP.STRIDED_SLICE, [src.index, *consts], [out.index],
                 (OPTS.StridedSliceOptions, opts))  # fmt: skip
    return out


def _reshape(self: StepFlatbuffer, nid: int) -> T:
    n = self.node(nid)
    (a,) = self.operands(nid)
    src = self.operand(a, n.name)
    shape = self.shape(nid)
    out = self.new(n.name, shape, src.grid)
    new_shape = [-1, *shape[1:]]
    self.flat.op(OP.RESHAPE, [src.index, self._shape_const(shape)], [out.index],
                 (OPTS.ReshapeOptions, _reshape_options(new_shape)))  # fmt: skip
    return out


def _transpose(self: StepFlatbuffer, nid: int) -> T:
    n = self.node(nid)
    (a,) = self.operands(nid)
    src = self.operand(a, n.name)
    perm = np.array([0, *(1 + p for p in n.attrs["perm"])], np.int32)
    pt = self.flat.tensor(f"{n.name}.perm", [len(perm)], None, kind="int32", data=perm)
    out = self.new(n.name, self.shape(nid), src.grid)

    def opts(b: Any) -> int:
        tflite.TransposeOptionsStart(b)
        return int(tflite.TransposeOptionsEnd(b))

    self.flat.op(OP.TRANSPOSE, [src.index, pt], [out.index], (OPTS.TransposeOptions, opts))
    return out


RULES: dict[str, Callable[..., T]] = {
    "matmul": _matmul,
    "add": _binary(OP.ADD, OPTS.AddOptions, tflite.AddOptionsStart, tflite.AddOptionsEnd),
    "sub": _binary(OP.SUB, OPTS.SubOptions, tflite.SubOptionsStart, tflite.SubOptionsEnd),
    "mul": _binary(OP.MUL, OPTS.MulOptions, tflite.MulOptionsStart, tflite.MulOptionsEnd),
    "sigmoid": _unary(OP.LOGISTIC),
    "tanh": _unary(OP.TANH),
    "relu": _unary(OP.RELU),
    "concat": _concat,
}
"""Ops computed into a grid (the op's ``fake_quant`` gives the output's)."""

MOVES: dict[str, Callable[..., T]] = {
    "slice": _slice,
    "reshape": _reshape,
    "unsqueeze": _reshape,
    "transpose": _transpose,
}
"""Ops that move values: their output keeps the input's grid."""


def build_step(graph: Graph, params: Mapping[str, np.ndarray], batch: int = 1) -> StepFlatbuffer:
    """Lower ``graph``'s step; ``.build()`` gives the flatbuffer's bytes."""
    return StepFlatbuffer(graph, params, batch)
