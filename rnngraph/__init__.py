"""rnngraph: a compiler for recurrent and recursive networks as cyclic dataflow graphs.

Declare a network with :class:`Graph` (inputs, params, states that feed back
through delays, outputs) and the op functions; run it with :func:`run`, the
numpy reference interpreter whose behaviour defines the semantics.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("elman")
>>> x = g.input("x", 8)
>>> h = g.state("h", 16)
>>> h_new = rg.tanh(rg.linear(x, 16, name="in") + rg.linear(h, 16, bias=False, name="rec"))
>>> g.assign(h, h_new)
>>> g.output("y", rg.linear(h_new, 4, name="out"))
>>> params = g.init_params(seed=0)
>>> out = rg.run(g, {"x": np.random.rand(20, 3, 8).astype("float32")}, params)
>>> out["y"].shape, out["h_final"].shape
((20, 3, 4), (3, 16))
"""

from __future__ import annotations

from rnngraph import cells, trees
from rnngraph.autodiff.forward import jvp, rtrl, tangent
from rnngraph.autodiff.reverse import adjoint, vjp
from rnngraph.autodiff.windows import hybrid_gradients, online_gradients, truncated_bptt
from rnngraph.cells import ode
from rnngraph.cells.energy import hebbian
from rnngraph.errors import (
    AlgebraicLoopError,
    BackendUnavailableError,
    CompileError,
    DirectionError,
    DuplicateNameError,
    GraphError,
    InputError,
    ModelImportError,
    ParamError,
    SerializationError,
    ShapeError,
    UnassignedStateError,
    UnknownOpError,
)
from rnngraph.ir.deserialize import load, load_params
from rnngraph.ir.graph import Graph, InitSpec, Value
from rnngraph.ir.serialize import save
from rnngraph.ir.structure import fir_taps, recurrent_regions, regions
from rnngraph.ir.verify import verify
from rnngraph.ops import (
    abs,
    add,
    argmax,
    argmin,
    argsort,
    atan,
    avg_pool,
    cast,
    ceil,
    clip,
    concat,
    conv,
    conv1d,
    conv2d,
    cos,
    cumsum,
    delay,
    dequantize_linear,
    div,
    equal,
    erf,
    exp,
    fake_quant,
    final,
    fixed_point,
    floor,
    gather,
    gather_rows,
    greater,
    hard_sigmoid,
    heaviside,
    layer_norm,
    leaky_relu,
    less,
    linear,
    log,
    log_softmax,
    matmul,
    max_pool,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    quantize_linear,
    random,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_sum,
    relu,
    reshape,
    scatter_add_along,
    scatter_add_rows,
    scatter_rows,
    sigmoid,
    sin,
    slice,
    softmax,
    softplus,
    softsign,
    solve,
    sort,
    split,
    sqrt,
    stop_gradient,
    sub,
    take_along,
    tanh,
    top_k,
    transpose,
    unsqueeze,
    where,
    whole,
    whole_mask,
)
from rnngraph.ops.totals import pad, total, total_outer, zeros_like
from rnngraph.program.axes import split as split_axes
from rnngraph.program.schedule import Program, schedule
from rnngraph.quant import quantize
from rnngraph.runtime.backends import available_targets, compile
from rnngraph.runtime.importers import import_onnx
from rnngraph.runtime.interpreter import run
from rnngraph.runtime.staged import StagedModel
from rnngraph.tools.automata import DFA, extract_fsm
from rnngraph.training import losses, optim
from rnngraph.training.evolve import evolve
from rnngraph.training.loop import History, TrainResult, train
from rnngraph.training.losses import value_and_grad
from rnngraph.training.readout import fit_readout
from rnngraph.trees.recursion import Recursion, recursive

__version__ = "0.1.0"

__all__ = [
    "DFA",
    "AlgebraicLoopError",
    "BackendUnavailableError",
    "CompileError",
    "DirectionError",
    "DuplicateNameError",
    "Graph",
    "GraphError",
    "History",
    "InitSpec",
    "InputError",
    "ModelImportError",
    "ParamError",
    "Program",
    "Recursion",
    "SerializationError",
    "ShapeError",
    "StagedModel",
    "TrainResult",
    "UnassignedStateError",
    "UnknownOpError",
    "Value",
    "__version__",
    "abs",
    "add",
    "adjoint",
    "argmax",
    "argmin",
    "argsort",
    "atan",
    "available_targets",
    "avg_pool",
    "cast",
    "ceil",
    "cells",
    "clip",
    "compile",
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
    "evolve",
    "exp",
    "extract_fsm",
    "fake_quant",
    "final",
    "fir_taps",
    "fit_readout",
    "fixed_point",
    "floor",
    "gather",
    "gather_rows",
    "greater",
    "hard_sigmoid",
    "heaviside",
    "hebbian",
    "hybrid_gradients",
    "import_onnx",
    "jvp",
    "layer_norm",
    "leaky_relu",
    "less",
    "linear",
    "load",
    "load_params",
    "log",
    "log_softmax",
    "losses",
    "matmul",
    "max_pool",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "ode",
    "online_gradients",
    "optim",
    "pad",
    "pow",
    "quantize",
    "quantize_linear",
    "random",
    "recurrent_regions",
    "recursive",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_prod",
    "reduce_sum",
    "regions",
    "relu",
    "reshape",
    "rtrl",
    "run",
    "save",
    "scatter_add_along",
    "scatter_add_rows",
    "scatter_rows",
    "schedule",
    "sigmoid",
    "sin",
    "slice",
    "softmax",
    "softplus",
    "softsign",
    "solve",
    "sort",
    "split",
    "split_axes",
    "sqrt",
    "stop_gradient",
    "sub",
    "take_along",
    "tangent",
    "tanh",
    "top_k",
    "total",
    "total_outer",
    "train",
    "transpose",
    "trees",
    "truncated_bptt",
    "unsqueeze",
    "value_and_grad",
    "verify",
    "vjp",
    "where",
    "whole",
    "whole_mask",
    "zeros_like",
]
