"""ONNX lowering of each rnngraph op, one rule per op name.

A rule receives the emitter, the node being lowered and the names of its
operand tensors, and returns the name of its result. Signals may carry extra
leading axes: ``lead`` is how many come before the batch axis (1 over whole
sequences ``(T, B, ...)``, 0 inside a loop body or a step model). Axis
attributes are stored counted from the end, so most rules ignore ``lead``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from rnngraph.ir.types import INT_RANGES, TensorType
from rnngraph.ops import fixed
from rnngraph.ops import random as rnd
from rnngraph.ops.quant import per_axis
from rnngraph_onnx._integer import INTEGER_LOWERING, widened

if TYPE_CHECKING:
    from rnngraph_onnx._emit import Emitter

__all__ = ["LOWERING", "LoweredNode", "onnx_dtype"]

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


@dataclass(frozen=True)
class LoweredNode:
    """What a rule knows about the node it lowers."""

    name: str
    op: str
    attrs: Mapping[str, Any]
    type: TensorType
    operand_types: tuple[TensorType, ...]
    lead: int

    def lead_of(self, t: TensorType) -> int:
        """Leading axes before a tensor's own shape: ``lead + 1`` batch axis for a signal."""
        return self.lead + 1 if t.batched else 0


LowerFn = Callable[["Emitter", LoweredNode, Sequence[str]], str]
LOWERING: dict[str, LowerFn] = {}


def onnx_dtype(kind: str, float_type: int) -> int:
    """The ONNX element type of an rnngraph dtype name."""
    return {
        "float": float_type, "int64": TensorProto.INT64, "bool": TensorProto.BOOL,
        "int8": TensorProto.INT8, "int16": TensorProto.INT16, "int32": TensorProto.INT32,
    }[kind]  # fmt: skip


def _simple(op: str, onnx_op: str, **fixed: Any) -> None:
    def rule(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
        attrs = {
            k: (n.attrs[v] if isinstance(v, str) and v in n.attrs else v) for k, v in fixed.items()
        }
        return e.add(onnx_op, args, n.name, **attrs)

    LOWERING[op] = rule


for _op, _onnx in {
    "add": "Add",
    "sub": "Sub",
    "mul": "Mul",
    "div": "Div",
    "pow": "Pow",
    "maximum": "Max",
    "minimum": "Min",
    "greater": "Greater",
    "less": "Less",
    "equal": "Equal",
    "where": "Where",
    "neg": "Neg",
    "abs": "Abs",
    "exp": "Exp",
    "erf": "Erf",
    "sin": "Sin",
    "atan": "Atan",
    "floor": "Floor",
    "ceil": "Ceil",
    "cos": "Cos",
    "log": "Log",
    "sqrt": "Sqrt",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "relu": "Relu",
    "softplus": "Softplus",
    "softsign": "Softsign",
    "state": "Identity",
    "delay": "Identity",
    "stop_gradient": "Identity",
}.items():
    _simple(_op, _onnx)
_simple("hard_sigmoid", "HardSigmoid", alpha="alpha", beta="beta")
_simple("leaky_relu", "LeakyRelu", alpha="alpha")
_simple("concat", "Concat", axis="axis")
_simple("gather", "Gather", axis="axis")
_simple("softmax", "Softmax", axis="axis")
_simple("log_softmax", "LogSoftmax", axis="axis")
_simple("take_along", "GatherElements", axis="axis")
_simple("scatter_add_along", "ScatterElements", axis="axis", reduction="add")


def _matmul(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    """``MatMul``; a product by a weight vector ``(..., K) @ (K,)`` (an additive
    attention's ``v``) as one by a column ``(K, 1)``, the axis dropped after:
    onnxruntime's kernel for a 1-D second operand is several times slower (6.4x on
    (32, 50, 256) @ (256,), one thread)."""
    b = n.operand_types[1]
    if b.batched or len(b.shape) != 1:
        return e.add("MatMul", args, n.name)
    column = e.add("Unsqueeze", [args[1], e.ints([-1])], f"{n.name}.column")
    product = e.add("MatMul", [args[0], column], f"{n.name}.product")
    return e.add("Squeeze", [product, e.ints([-1])], n.name)


def _heaviside(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    above = e.add("Greater", [args[0], e.scalar(0.0)], f"{n.name}.above")
    return e.add("Cast", [above], n.name, to=e.float_type)


def _arg(onnx_op: str) -> LowerFn:
    def rule(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
        keep = int(n.attrs["keepdims"])
        return e.add(onnx_op, args, n.name, axis=n.attrs["axis"], keepdims=keep)

    return rule


def _top_k(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    """TopK's indices (sorted, ties by the lower index); k None: the whole axis. An int8
    or int16 operand (an integer graph's) is widened to int32 first."""
    axis, k = n.attrs["axis"], n.attrs["k"]
    if k is None:
        bounds = {"start": axis} if axis == -1 else {"start": axis, "end": axis + 1}
        count = e.add("Shape", [args[0]], f"{n.name}.k", **bounds)
    else:
        count = e.ints([k])
    x = args[0]
    if n.operand_types[0].dtype in ("int8", "int16"):  # (onnxruntime's TopK: int32 and up)
        x = e.add("Cast", [x], f"{n.name}.wide", to=TensorProto.INT32)
    _, idx = e.add_multi(
        "TopK",
        [x, count],
        [f"{n.name}.values", n.name],
        axis=axis,
        largest=int(n.attrs["largest"]),
        sorted=1,
    )
    return idx


def _images(e: Emitter, n: LoweredNode, x: str) -> str:
    """Operand ``x`` ``(*lead, B, *row)`` as one batch ``(N, *row)``, as Conv and the
    pools take it."""
    if n.lead == 0:
        return x
    row = [int(v) for v in n.operand_types[0].shape[1:]]
    return e.add("Reshape", [x, e.ints([-1, *row])], f"{n.name}.images")


def _restore(e: Emitter, n: LoweredNode, y: str, x: str) -> str:
    """The batch ``y`` ``(N, ...)`` as the node's result ``(*lead, B, *row)``, the leading
    shape taken from the operand ``x``."""
    row = [int(v) for v in n.type.shape[1:]]
    if n.lead == 0:
        shape = e.ints([-1, *row])
    else:
        front = e.add("Shape", [x], f"{n.name}.front", start=0, end=n.lead + 1)
        shape = e.add("Concat", [front, e.ints(row)], f"{n.name}.shape", axis=0)
    return e.add("Reshape", [y, shape], n.name)


def _window(a: Mapping[str, Any]) -> dict[str, Any]:
    pads = a["pads"]
    return {
        "kernel_shape": list(a["kernel"]),
        "strides": list(a["strides"]),
        "pads": [p[0] for p in pads] + [p[1] for p in pads],
        "dilations": list(a["dilations"]),
    }


def _conv(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    x, w = args
    images = _images(e, n, x)
    y = e.add("Conv", [images, w], f"{n.name}.conv", group=n.attrs["groups"], **_window(n.attrs))
    return _restore(e, n, y, x)


def _max_pool(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    y = e.add("MaxPool", [_images(e, n, args[0])], f"{n.name}.pool", **_window(n.attrs))
    return _restore(e, n, y, args[0])


def _one_hot_kernels(e: Emitter, channels: int, kernel: Sequence[int]) -> str:
    """Weights ``(C * K, 1, *kernel)`` that copy each window entry to a channel of its own:
    a Conv with them (C groups) is im2col, a ConvTranspose col2im."""
    k = int(np.prod(kernel))
    w = np.zeros((channels * k, 1, k), e.np_float)
    for c in range(channels):
        w[c * k : (c + 1) * k, 0, :] = np.eye(k)
    return e.const(w.reshape(channels * k, 1, *kernel), "one_hot")


def _unfold(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    a = n.attrs
    C = int(n.operand_types[0].shape[1])
    w = _one_hot_kernels(e, C, a["kernel"])
    y = e.add("Conv", [_images(e, n, args[0]), w], f"{n.name}.conv", group=C, **_window(a))
    return _restore(e, n, y, args[0])  # (N, C * K, *L) -> (*lead, B, C, *K, *L)


def _fold(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    """ConvTranspose with one-hot kernels; ``output_padding`` makes up the tail that no
    window reached (PyTorch's and ONNX's out-size formula rounds it away)."""
    a = n.attrs
    d = len(a["kernel"])
    row = [int(v) for v in n.operand_types[0].shape[1:]]
    C, L = row[0], row[1 + d :]
    cols = e.add(
        "Reshape", [args[0], e.ints([-1, C * int(np.prod(a["kernel"])), *L])], f"{n.name}.cols"
    )
    extra = []
    for size, k, s, (lo, hi), dil, positions in zip(
        a["sizes"], a["kernel"], a["strides"], a["pads"], a["dilations"], L, strict=True
    ):
        extra.append(size + lo + hi - (s * (positions - 1) + dil * (k - 1) + 1))
    w = _one_hot_kernels(e, C, a["kernel"])
    y = e.add(
        "ConvTranspose", [cols, w], f"{n.name}.fold", group=C, output_padding=extra, **_window(a)
    )
    return _restore(e, n, y, args[0])


def _solve(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    """Gauss-Jordan elimination with partial pivoting, unrolled over the n columns, on the
    augmented matrix ``[A | b]`` (ONNX has no solver): at column k the row with the
    largest entry at or below the diagonal swaps up (GatherElements by a permutation),
    is divided by its pivot, and clears the column from every other row."""
    a, b = args
    size = int(n.operand_types[0].shape[-1])
    h = n.name
    if n.attrs["vector"]:
        b = e.add("Unsqueeze", [b, e.ints([-1])], f"{h}.b")
    # both broadcast to the common leading shape, then side by side: (..., n, n + m)
    corner = [e.ints([-2, -1])]
    sa = e.add("ReduceSum", [a, *corner], f"{h}.sa", keepdims=1)
    sb = e.add("ReduceSum", [b, *corner], f"{h}.sb", keepdims=1)
    lead = e.add("Shape", [e.add("Add", [sa, sb], f"{h}.s")], f"{h}.lead", end=-2)
    a_full = e.add(
        "Expand", [a, e.add("Concat", [lead, e.ints([size, size])], f"{h}.sha", axis=0)], f"{h}.A"
    )
    m_cols = e.add("Shape", [b], f"{h}.m", start=-1)
    b_full = e.add(
        "Expand", [b, e.add("Concat", [lead, e.ints([size]), m_cols], f"{h}.shb", axis=0)], f"{h}.B"
    )
    aug = e.add("Concat", [a_full, b_full], f"{h}.aug", axis=-1)
    rows = e.const(np.arange(size, dtype=np.int64), "rows")
    for k in range(size):
        kk = e.ints([k])
        col = e.add("Gather", [aug, e.const(np.array(k, np.int64), "k")], f"{h}.col{k}", axis=-1)
        below = e.const(np.arange(size) >= k, f"below{k}")
        score = e.add(
            "Where", [below, e.add("Abs", [col], f"{h}.abs{k}"), e.scalar(-1.0)], f"{h}.score{k}"
        )
        p = e.add("ArgMax", [score], f"{h}.p{k}", axis=-1, keepdims=1)  # (..., 1)
        is_k = e.const(np.arange(size) == k, f"is{k}")
        is_p = e.add("Equal", [rows, p], f"{h}.isp{k}")
        perm = e.add(
            "Where", [is_k, p, e.add("Where", [is_p, kk, rows], f"{h}.q{k}")], f"{h}.perm{k}"
        )
        perm = e.add("Unsqueeze", [perm, e.ints([-1])], f"{h}.perm{k}")
        perm = e.add("Expand", [perm, e.add("Shape", [aug], f"{h}.shape{k}")], f"{h}.perm{k}")
        aug = e.add("GatherElements", [aug, perm], f"{h}.swap{k}", axis=-2)
        prow = e.add("Slice", [aug, kk, e.ints([k + 1]), e.ints([-2])], f"{h}.prow{k}")
        pivot = e.add("Slice", [prow, kk, e.ints([k + 1]), e.ints([-1])], f"{h}.pivot{k}")
        prow = e.add("Div", [prow, pivot], f"{h}.unit{k}")
        factor = e.add("Slice", [aug, kk, e.ints([k + 1]), e.ints([-1])], f"{h}.f{k}")
        cleared = e.add("Sub", [aug, e.add("Mul", [factor, prow], f"{h}.fp{k}")], f"{h}.clear{k}")
        row_k = e.const((np.arange(size) == k).reshape(size, 1), f"row{k}")
        aug = e.add("Where", [row_k, prow, cleared], f"{h}.step{k}")
    x = e.add("Slice", [aug, e.ints([size]), e.ints([_INT64_MAX]), e.ints([-1])], f"{h}.x")
    if n.attrs["vector"]:
        return e.add("Squeeze", [x, e.ints([-1])], h)
    return e.add("Identity", [x], h)


def _cumsum(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    axis = e.const(np.array(n.attrs["axis"], np.int64), "axis")
    flags = {"reverse": int(n.attrs["reverse"]), "exclusive": int(n.attrs["exclusive"])}
    return e.add("CumSum", [args[0], axis], n.name, **flags)


def _cast(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    return e.add("Cast", args, n.name, to=onnx_dtype(n.attrs["to"], e.float_type))


def _clip(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    lo, hi = n.attrs["min"], n.attrs["max"]
    bounds = ["" if b is None else e.scalar(float(b)) for b in (lo, hi)]
    while bounds and bounds[-1] == "":
        bounds.pop()
    return e.add("Clip", [*args, *bounds], n.name)


def _slice(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    starts, ends = [], []
    for start, stop, step in zip(n.attrs["starts"], n.attrs["ends"], n.attrs["steps"], strict=True):
        if start is None:
            start = 0 if step > 0 else _INT64_MAX
        if stop is None:
            stop = _INT64_MAX if step > 0 else _INT64_MIN
        starts.append(start)
        ends.append(stop)
    ins = [
        args[0],
        e.ints(starts),
        e.ints(ends),
        e.ints(n.attrs["axes"]),
        e.ints(n.attrs["steps"]),
    ]
    return e.add("Slice", ins, n.name)


def _reshape(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    # 0 copies the input's dimension: the leading (time, batch) axes stay dynamic.
    lead = n.lead_of(n.operand_types[0])
    return e.add("Reshape", [args[0], e.ints([0] * lead + list(n.attrs["shape"]))], n.name)


def _transpose(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    lead = n.lead_of(n.operand_types[0])
    perm = [*range(lead), *(lead + p for p in n.attrs["perm"])]
    return e.add("Transpose", args, n.name, perm=perm)


def _reduce(onnx_op: str) -> LowerFn:
    def rule(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
        keep = int(bool(n.attrs["keepdims"]))
        shape = n.operand_types[0].shape
        if all(shape[a] == 1 for a in n.attrs["axes"]):  # over unit axes: the value itself
            if keep:
                return e.add("Identity", [args[0]], n.name)
            return e.add("Squeeze", [args[0], e.ints(n.attrs["axes"])], n.name)
        return e.add(onnx_op, [args[0], e.ints(n.attrs["axes"])], n.name, keepdims=keep)

    return rule


# Quantisation: ONNX's QuantizeLinear / DequantizeLinear where they take the kinds (a
# Q/DQ pair is what onnxruntime fuses into its integer kernels), else the same formula.
_QDQ_KINDS = ("int8", "int16")


def _qparams(e: Emitter, n: LoweredNode, to: str) -> tuple[str, str, dict[str, Any]]:
    scale = np.asarray(n.attrs["scale"], e.np_float)
    zp = np.asarray(n.attrs["zero_point"], np.dtype(to))
    axis = n.attrs["axis"]
    if axis is None:
        scale, zp = scale.reshape(()), zp.reshape(())
    return (
        e.const(scale, f"{n.name}.scale"),
        e.const(zp, f"{n.name}.zero_point"),
        ({} if axis is None else {"axis": int(axis)}),
    )


def _by_formula(e: Emitter, n: LoweredNode, x: str, to: str) -> str:
    """saturate(round(x / scale) + zero_point) with ONNX arithmetic (float64, int32)."""
    axis = n.attrs["axis"]
    scale = e.const(per_axis(n.attrs["scale"], axis, e.np_float), f"{n.name}.scale")
    zp = e.const(per_axis(n.attrs["zero_point"], axis, e.np_float), f"{n.name}.zp")
    lo, hi = INT_RANGES[to]
    q = e.add("Round", [e.add("Div", [x, scale], f"{n.name}.scaled")], f"{n.name}.rounded")
    q = e.add("Add", [q, zp], f"{n.name}.shifted")
    return e.add("Clip", [q, e.scalar(lo), e.scalar(hi)], f"{n.name}.grid")


def _quantize(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    to = n.attrs["to"]
    if to in _QDQ_KINDS and e.np_float == np.float32:
        scale, zp, axis = _qparams(e, n, to)
        return e.add("QuantizeLinear", [args[0], scale, zp], n.name, **axis)
    grid = _by_formula(e, n, args[0], to)
    return e.add("Cast", [grid], n.name, to=onnx_dtype(to, e.float_type))


def _dequantize(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    kind = n.operand_types[0].dtype
    if e.np_float == np.float32:
        scale, zp, axis = _qparams(e, n, kind)
        return e.add("DequantizeLinear", [args[0], scale, zp], n.name, **axis)
    axis = n.attrs["axis"]
    zp = e.const(per_axis(n.attrs["zero_point"], axis, np.int64), f"{n.name}.zp")
    scale = e.const(per_axis(n.attrs["scale"], axis, e.np_float), f"{n.name}.scale")
    wide = e.add("Cast", [args[0]], f"{n.name}.wide", to=TensorProto.INT64)
    centred = e.add(
        "Cast", [e.add("Sub", [wide, zp], f"{n.name}.c")], f"{n.name}.f", to=e.float_type
    )
    return e.add("Mul", [centred, scale], n.name)


def _fake_quant(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    to = n.attrs["to"]
    if to in _QDQ_KINDS and e.np_float == np.float32:
        scale, zp, axis = _qparams(e, n, to)
        q = e.add("QuantizeLinear", [args[0], scale, zp], f"{n.name}.q", **axis)
        return e.add("DequantizeLinear", [q, scale, zp], n.name, **axis)
    axis = n.attrs["axis"]
    scale = e.const(per_axis(n.attrs["scale"], axis, e.np_float), f"{n.name}.scale")
    zp = e.const(per_axis(n.attrs["zero_point"], axis, e.np_float), f"{n.name}.zp")
    grid = _by_formula(e, n, args[0], to)
    return e.add("Mul", [e.add("Sub", [grid, zp], f"{n.name}.c"), scale], n.name)


def _zeros_like(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    shape = e.add("Shape", args, f"{n.name}.shape")
    dtype = e.np_float if n.type.dtype == "float" else np.dtype(n.type.dtype)
    zero = numpy_helper.from_array(np.zeros(1, dtype), "value")
    return e.add("ConstantOfShape", [shape], n.name, value=zero)


def _pad(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    pads = [lo for lo, _ in n.attrs["pads"]] + [hi for _, hi in n.attrs["pads"]]
    return e.add("Pad", [args[0], e.ints(pads), "", e.ints(n.attrs["axes"])], n.name)


def _total(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    # The operand is a whole sequence (T, B, ...) with invalid steps already zeroed.
    return e.add("ReduceSum", [args[0], e.ints([0, 1])], n.name, keepdims=0)


def _total_outer(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    a, b = args
    m, k = (int(t.shape[-1]) for t in n.operand_types)
    a2 = e.add("Reshape", [a, e.ints([-1, m])], f"{n.name}.a")
    b2 = e.add("Reshape", [b, e.ints([-1, k])], f"{n.name}.b")
    return e.add("MatMul", [e.add("Transpose", [a2], f"{n.name}.at", perm=[1, 0]), b2], n.name)


def _layer_norm(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    return e.add("LayerNormalization", args, n.name, axis=-1, epsilon=float(n.attrs["epsilon"]))


def _row_indices(e: Emitter, n: LoweredNode, idx: str, table: str) -> tuple[str, str, int]:
    """Indices expanded to the table's leading axes ``(*lead, *idx_dims)``, where they
    are valid (not the padding -1), and the row axis. Nothing copies the table: row
    counts may be symbolic and tables large (a recursive net's node states)."""
    ttab, tidx = n.operand_types[0], n.operand_types[1]
    lead = n.lead_of(ttab)
    if not tidx.batched:  # constant indices serve every batch row
        front = e.add("Shape", [table], f"{n.name}.front", start=0, end=lead)
        own = e.add("Shape", [idx], f"{n.name}.own")
        shape = e.add("Concat", [front, own], f"{n.name}.ishape", axis=0)
        idx = e.add("Expand", [idx, shape], f"{n.name}.idx")
    valid = e.add("GreaterOrEqual", [idx, e.ints([0])], f"{n.name}.valid")
    return idx, valid, lead


def _zero_of(e: Emitter, t: TensorType) -> str:
    return e.scalar(0.0) if t.dtype == "float" else e.const(np.zeros((), np.int64), "zero")


def _tail_axes(e: Emitter, x: str, first: int, count: int, hint: str) -> str:
    """``x`` with ``count`` axes of length 1 inserted from axis ``first``."""
    if not count:
        return x
    return e.add("Unsqueeze", [x, e.ints(range(first, first + count))], hint)


def _gather_rows(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    table, idx = args
    idx, valid, lead = _row_indices(e, n, idx, table)
    safe = e.add("Where", [valid, idx, e.ints([0])], f"{n.name}.safe")
    safe = e.add("Unsqueeze", [safe, e.ints([-1])], f"{n.name}.safe")
    got = e.add("GatherND", [table, safe], f"{n.name}.got", batch_dims=lead)
    tail = len(n.operand_types[0].shape) - 2
    rank = len(n.type.shape) + n.lead
    mask = _tail_axes(e, valid, rank - tail, tail, f"{n.name}.mask")
    return e.add("Where", [mask, got, _zero_of(e, n.type)], n.name)


def _scatter(reduction: str) -> LowerFn:
    """ScatterND over the table's rows. Padding entries must change nothing without a
    copy of the table: for a sum they add zero to row 0; for an overwrite they repeat the
    first valid entry of their batch row (same row, same value, so the order of the
    writes does not matter), or rewrite row 0 with itself when the row has none."""

    def rule(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
        table, idx, values = args
        idx, _, lead = _row_indices(e, n, idx, table)
        tail = len(n.operand_types[0].shape) - 2
        front = e.add("Shape", [idx], f"{n.name}.front", start=0, end=lead)
        flat = e.add("Concat", [front, e.ints([-1])], f"{n.name}.flat", axis=0)
        idx = e.add("Reshape", [idx, flat], f"{n.name}.idx")  # (*lead, P)
        rest = e.add("Shape", [table], f"{n.name}.rest", start=lead + 1)
        vshape = e.add("Concat", [front, e.ints([-1]), rest], f"{n.name}.vshape", axis=0)
        values = e.add("Reshape", [values, vshape], f"{n.name}.values")  # (*lead, P, *tail)
        valid = e.add("GreaterOrEqual", [idx, e.ints([0])], f"{n.name}.valid")
        vmask = _tail_axes(e, valid, lead + 1, tail, f"{n.name}.vmask")
        zero = _zero_of(e, n.type)
        if reduction == "add":
            idx = e.add("Where", [valid, idx, e.ints([0])], f"{n.name}.idx")
            values = e.add("Where", [vmask, values, zero], f"{n.name}.values")
        else:
            as_int = e.add("Cast", [valid], f"{n.name}.valid_i", to=TensorProto.INT32)
            first = e.add("ArgMax", [as_int], f"{n.name}.first", axis=-1, keepdims=1)
            fidx = e.add("GatherElements", [idx, first], f"{n.name}.fidx", axis=-1)
            fvalid = e.add("GreaterOrEqual", [fidx, e.ints([0])], f"{n.name}.fvalid")
            fidx = e.add("Where", [fvalid, fidx, e.ints([0])], f"{n.name}.fidx")
            fval = e.add("GatherND", [values, first], f"{n.name}.fval", batch_dims=lead)
            tval = e.add("GatherND", [table, fidx], f"{n.name}.tval", batch_dims=lead)
            fmask = _tail_axes(e, fvalid, lead + 1, tail - 1, f"{n.name}.fmask")
            pval = e.add("Where", [fmask, fval, tval], f"{n.name}.pval")  # (*lead, *tail)
            pval = e.add("Unsqueeze", [pval, e.ints([lead])], f"{n.name}.pval")
            idx = e.add("Where", [valid, idx, fidx], f"{n.name}.idx")
            values = e.add("Where", [vmask, values, pval], f"{n.name}.values")
        safe = e.add("Unsqueeze", [idx, e.ints([-1])], f"{n.name}.safe")  # (*lead, P, 1)
        # ScatterND indexes from the first axis: prepend each leading axis's coordinate.
        shape = e.add("Shape", [safe], f"{n.name}.ishape")
        coords = []
        for j in range(lead):
            size = e.add("Shape", [safe], f"{n.name}.n{j}", start=j, end=j + 1)
            size = e.add("Squeeze", [size, e.ints([0])], f"{n.name}.n{j}")
            r = e.add("Range", [_zero(e), size, _one(e)], f"{n.name}.r{j}")
            r = e.add("Reshape", [r, e.ints([-1] + [1] * (lead + 1 - j))], f"{n.name}.r{j}")
            coords.append(e.add("Expand", [r, shape], f"{n.name}.c{j}"))
        full = e.add("Concat", [*coords, safe], f"{n.name}.coords", axis=-1) if coords else safe
        return e.add("ScatterND", [table, full, values], n.name, reduction=reduction)

    return rule


def _unsqueeze(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    return e.add("Unsqueeze", [args[0], e.ints([n.attrs["axis"]])], n.name)


def _u32(e: Emitter, value: int | np.ndarray, hint: str = "u32") -> str:
    return e.const(np.asarray(value, np.uint32), hint)


def _mix(e: Emitter, x: str, hint: str) -> str:
    """One round of the draws' hash (:func:`rnngraph.ops.random.mix`) on uint32 tensors."""
    for shift, mul in ((16, rnd.MUL1), (15, rnd.MUL2)):
        x = e.add(
            "BitwiseXor", [x, e.add("BitShift", [x, _u32(e, shift)], hint, direction="RIGHT")], hint
        )
        x = e.add("Mul", [x, _u32(e, mul)], hint)
    return e.add(
        "BitwiseXor", [x, e.add("BitShift", [x, _u32(e, 16)], hint, direction="RIGHT")], hint
    )


def _random(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    """Counter-based draws: the hash of (seed, site, step, row, element) in uint32, exactly
    as :func:`rnngraph.ops.random.hash_bits` computes it."""
    seed, step = args
    row = [int(d) for d in n.attrs["shape"]]
    lead, h = n.lead + 1, f"{n.name}.bits"
    keep = e.ints([0] * lead + [1] * len(row))  # (..., B, 1, ..., 1): one key per batch row

    def key(x: str) -> str:
        return e.add("Reshape", [e.add("Cast", [x], h, to=TensorProto.UINT32), keep], h)

    batch = e.add("Shape", [seed], f"{n.name}.B", start=lead - 1, end=lead)
    batch = e.add("Squeeze", [batch, e.ints([0])], f"{n.name}.B")
    rows = e.add("Range", [_zero(e), batch, _one(e)], f"{n.name}.rows")
    rows = e.add("Cast", [rows], f"{n.name}.rows", to=TensorProto.UINT32)
    rows = e.add("Reshape", [rows, e.ints([-1] + [1] * len(row))], f"{n.name}.rows")
    x = _mix(e, e.add("BitwiseXor", [key(seed), _u32(e, rnd.SALT)], h), h)
    x = _mix(e, e.add("BitwiseXor", [x, _u32(e, int(n.attrs["site"]))], h), h)
    x = _mix(e, e.add("BitwiseXor", [x, key(step)], h), h)
    x = _mix(e, e.add("BitwiseXor", [x, rows], h), h)
    count = int(np.prod(row, dtype=np.int64))

    def draw(elements: np.ndarray, hint: str) -> str:
        bits = e.add("BitwiseXor", [x, _u32(e, elements.reshape(row), "elements")], h)
        bits = e.add("BitShift", [_mix(e, bits, h), _u32(e, 8)], h, direction="RIGHT")
        top = e.add("Cast", [bits], hint, to=e.float_type)
        return e.add("Mul", [e.add("Add", [top, e.scalar(0.5)], hint), e.scalar(2.0**-24)], hint)

    index = np.arange(count, dtype=np.uint32)
    if n.attrs["kind"] == "uniform":
        return e.add("Identity", [draw(index, f"{n.name}.u")], n.name)
    u1, u2 = draw(2 * index, f"{n.name}.u1"), draw(2 * index + 1, f"{n.name}.u2")
    radius = e.add("Sqrt", [e.add("Mul", [e.add("Log", [u1], h), e.scalar(-2.0)], h)], h)
    angle = e.add("Cos", [e.add("Mul", [u2, e.scalar(2.0 * np.pi)], h)], h)
    return e.add("Mul", [radius, angle], n.name)


def _fixed_point(e: Emitter, n: LoweredNode, args: Sequence[str]) -> str:
    """A ``Loop`` whose condition is "some row still changes": each row keeps its value from
    the first step whose largest change is below ``tol`` (see :mod:`rnngraph.ops.fixed`)."""
    body = fixed.Body.of(n.attrs)
    z_type = n.operand_types[0]
    row = len(z_type.shape) - 1
    lead = n.lead + 1  # axes before the row: (..., B)
    h = n.name
    b = type(e)(e.names, e.inits, e.float_type)
    it, cond_in = e.names.fresh(f"{h}.iter"), e.names.fresh(f"{h}.cond_in")
    z, count, done = (e.names.fresh(f"{h}.{k}_in") for k in ("z", "count", "done"))
    values: list[str] = []
    types: list[TensorType] = []
    for bn in body.nodes:
        operands = [body.pick(a, z, args[1:], values) for a in bn.args]
        otypes = tuple(body.pick(a, z_type, n.operand_types[1:], types) for a in bn.args)
        node = LoweredNode(f"{h}/{bn.name}", bn.op, bn.attrs, bn.type, otypes, n.lead)
        values.append(LOWERING[bn.op](b, node, operands))
        types.append(bn.type)
    new = values[-1]
    zf, newf = z, new
    if z_type.dtype != "float":  # (an integer graph's: exactly, in float: the change, the pick)
        zf, newf = (b.add("Cast", [v], f"{h}.wide", to=e.float_type) for v in (z, new))
    change = b.add("Abs", [b.add("Sub", [newf, zf], f"{h}.diff")], f"{h}.change")
    keep = done
    if row:
        tail = b.ints(range(lead, lead + row))
        change = b.add("ReduceMax", [change, tail], f"{h}.change", keepdims=0)
        keep = b.add("Unsqueeze", [done, tail], f"{h}.keep")
    z_next = b.add("Where", [keep, zf, newf], f"{h}.z")
    if z_type.dtype != "float":  # (onnxruntime's Where takes no int16)
        z_next = b.add("Cast", [z_next], f"{h}.z", to=onnx_dtype(z_type.dtype, e.float_type))
    step = b.add("Cast", [b.add("Not", [done], f"{h}.active")], f"{h}.step", to=e.float_type)
    count_next = b.add("Add", [count, step], f"{h}.count")
    conv = b.add("Less", [change, b.scalar(body.tol)], f"{h}.converged")
    done_next = b.add("Or", [done, conv], f"{h}.done")
    left = b.add("Not", [done_next], f"{h}.left")
    left = b.add("Cast", [left], f"{h}.left", to=TensorProto.INT64)
    cond = b.add("ReduceMax", [left], f"{h}.cond", keepdims=0)
    cond = b.add("Cast", [cond], f"{h}.cond", to=TensorProto.BOOL)
    fl, bl = e.float_type, TensorProto.BOOL
    zt = onnx_dtype(z_type.dtype, fl)

    def vi(name: str, elem: int, shape: list[int] | None = None) -> Any:
        return helper.make_tensor_value_info(name, elem, shape)

    graph = helper.make_graph(
        b.nodes,
        f"{h}.body",
        [
            vi(it, TensorProto.INT64, []),
            vi(cond_in, bl, []),
            vi(z, zt),
            vi(count, fl),
            vi(done, bl),
        ],
        [vi(cond, bl, []), vi(z_next, zt), vi(count_next, fl), vi(done_next, bl)],
    )
    x0 = args[0]
    rows = e.add("Shape", [x0], f"{h}.rows", end=lead)
    false = numpy_helper.from_array(np.zeros(1, bool), "value")
    zero = numpy_helper.from_array(np.zeros(1, e.np_float), "value")
    done0 = e.add("ConstantOfShape", [rows], f"{h}.done0", value=false)
    count0 = e.add("ConstantOfShape", [rows], f"{h}.count0", value=zero)
    limit = e.const(np.array(body.max_iter, np.int64), "max_iter")
    go = e.const(np.array(True), "true")
    z_out, n_out, _ = e.add_multi(
        "Loop", [limit, go, x0, count0, done0], [h, f"{h}.count", f"{h}.done"], body=graph
    )
    if n.attrs.get("report", "value") == "count":
        return e.add("Unsqueeze", [n_out, e.ints([-1])], h)
    return z_out


def _zero(e: Emitter) -> str:
    return e.const(np.array(0, np.int64), "zero")


def _one(e: Emitter) -> str:
    return e.const(np.array(1, np.int64), "one")


LOWERING.update(
    matmul=_matmul,
    solve=_solve,
    heaviside=_heaviside,
    conv=_conv,
    max_pool=_max_pool,
    unfold=_unfold,
    fold=_fold,
    argmax=_arg("ArgMax"),
    argmin=_arg("ArgMin"),
    top_k=_top_k,
    cumsum=_cumsum,
    fixed_point=_fixed_point,
    random=_random,
    gather_rows=_gather_rows,
    scatter_rows=_scatter("none"),
    scatter_add_rows=_scatter("add"),
    unsqueeze=_unsqueeze,
    layer_norm=_layer_norm,
    zeros_like=_zeros_like,
    pad=_pad,
    total=_total,
    total_outer=_total_outer,
    cast=_cast,
    clip=_clip,
    slice=_slice,
    reshape=_reshape,
    transpose=_transpose,
    quantize=_quantize,
    dequantize=_dequantize,
    fake_quant=_fake_quant,
    reduce_sum=_reduce("ReduceSum"),
    reduce_mean=_reduce("ReduceMean"),
    reduce_max=_reduce("ReduceMax"),
    reduce_min=_reduce("ReduceMin"),
    reduce_prod=_reduce("ReduceProd"),
)

# the integer-only ops (rg.quant.to_integer's graphs): their own module; selections and
# extremes of int8 / int16 (and selections of bool) values go through int32
LOWERING.update(INTEGER_LOWERING)
for _op in ("reduce_max", "reduce_min", "pad", "minimum", "maximum"):
    LOWERING[_op] = widened(LOWERING[_op])
LOWERING["where"] = widened(LOWERING["where"], condition=0)
