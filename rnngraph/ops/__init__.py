"""The op set: builder functions, and the registry tables keyed by op name.

Importing this package registers every op. ``OPS`` and ``REFERENCE`` (in
:mod:`rnngraph.ir.registry`) map each op name to its definition and its
numpy semantics.
"""

from __future__ import annotations

from rnngraph.ir.registry import OPS, REFERENCE, OpDef, lookup, register_op
from rnngraph.ops import random
from rnngraph.ops.axes import final, whole, whole_mask
from rnngraph.ops.elementwise import (
    abs,
    add,
    cast,
    clip,
    div,
    equal,
    exp,
    greater,
    hard_sigmoid,
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
    softplus,
    softsign,
    sqrt,
    sub,
    tanh,
    where,
)
from rnngraph.ops.fixed import fixed_point
from rnngraph.ops.linalg import linear, matmul
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
    "cast",
    "clip",
    "concat",
    "delay",
    "div",
    "equal",
    "exp",
    "final",
    "fixed_point",
    "gather",
    "gather_rows",
    "greater",
    "hard_sigmoid",
    "layer_norm",
    "leaky_relu",
    "less",
    "linear",
    "log",
    "log_softmax",
    "lookup",
    "matmul",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "pad",
    "pow",
    "random",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_prod",
    "reduce_sum",
    "register_op",
    "relu",
    "reshape",
    "scatter_add_rows",
    "scatter_rows",
    "sigmoid",
    "slice",
    "softmax",
    "softplus",
    "softsign",
    "split",
    "sqrt",
    "stop_gradient",
    "sub",
    "tanh",
    "total",
    "total_outer",
    "transpose",
    "unsqueeze",
    "where",
    "whole",
    "whole_mask",
    "zeros_like",
]

# Adjoint and tangent rules use the op functions above, so they register last.
from rnngraph.ops import _adjoints, _tangents  # noqa: F401
