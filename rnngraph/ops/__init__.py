"""The op set: builder functions, and the registry tables keyed by op name.

Importing this package registers every op. ``OPS`` and ``REFERENCE`` (in
:mod:`rnngraph.ir.registry`) map each op name to its definition and its
numpy semantics.
"""

from __future__ import annotations

from rnngraph.ir.registry import OPS, REFERENCE, OpDef, lookup, register_op
from rnngraph.ops import integer, random
from rnngraph.ops.axes import final, whole, whole_mask
from rnngraph.ops.convolution import avg_pool, conv, conv1d, conv2d, fold, max_pool, unfold
from rnngraph.ops.elementwise import (
    abs,
    add,
    atan,
    cast,
    ceil,
    clip,
    cos,
    div,
    equal,
    erf,
    exp,
    floor,
    greater,
    hard_sigmoid,
    heaviside,
    leaky_relu,
    less,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sin,
    softplus,
    softsign,
    sqrt,
    sub,
    tanh,
    where,
)
from rnngraph.ops.fixed import fixed_point
from rnngraph.ops.linalg import linear, matmul, solve
from rnngraph.ops.order import (
    argmax,
    argmin,
    argsort,
    cumsum,
    scatter_add_along,
    sort,
    take_along,
    top_k,
)
from rnngraph.ops.quant import dequantize_linear, fake_quant, quantize_linear
from rnngraph.ops.random import stop_gradient
from rnngraph.ops.reduce import (
    layer_norm,
    log_softmax,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_sum,
    softmax,
)
from rnngraph.ops.rows import gather_rows, scatter_add_rows, scatter_rows
from rnngraph.ops.sources import delay
from rnngraph.ops.structure import concat, gather, reshape, slice, split, transpose, unsqueeze
from rnngraph.ops.totals import pad, total, total_outer, zeros_like

__all__ = [
    "OPS",
    "REFERENCE",
    "OpDef",
    "abs",
    "add",
    "argmax",
    "argmin",
    "argsort",
    "atan",
    "avg_pool",
    "cast",
    "ceil",
    "clip",
    "concat",
    "conv",
    "conv1d",
    "conv2d",
    "cos",
    "cumsum",
    "delay",
    "dequantize_linear",
    "div",
    "equal",
    "erf",
    "exp",
    "fake_quant",
    "final",
    "fixed_point",
    "floor",
    "fold",
    "gather",
    "gather_rows",
    "greater",
    "hard_sigmoid",
    "heaviside",
    "integer",
    "layer_norm",
    "leaky_relu",
    "less",
    "linear",
    "log",
    "log_softmax",
    "lookup",
    "matmul",
    "max_pool",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "pad",
    "pow",
    "quantize_linear",
    "random",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_prod",
    "reduce_sum",
    "register_op",
    "relu",
    "reshape",
    "scatter_add_along",
    "scatter_add_rows",
    "scatter_rows",
    "sigmoid",
    "sin",
    "slice",
    "softmax",
    "softplus",
    "softsign",
    "solve",
    "sort",
    "split",
    "sqrt",
    "stop_gradient",
    "sub",
    "take_along",
    "tanh",
    "top_k",
    "total",
    "total_outer",
    "transpose",
    "unfold",
    "unsqueeze",
    "where",
    "whole",
    "whole_mask",
    "zeros_like",
]

# Adjoint and tangent rules use the op functions above, so they register last.
from rnngraph.ops import _adjoints, _tangents  # noqa: F401
