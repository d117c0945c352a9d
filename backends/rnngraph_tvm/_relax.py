"""The model as a Relax module: its ``main`` calls the kernel through ``call_tir``.

The kernel is one TIR function (the time loop inside, see ``_codegen``);
Relax is the layer that TVM's users compose, pass over and deploy. Here
the Program's kernel becomes ``rnngraph_kernel`` in an ``IRModule`` and
``main`` a Relax function over the model's inputs:

- inputs ``(T, B, ...)`` (and ``sequence_lens (B,)``, int64) are its
  parameters, with ``T`` and ``B`` symbolic, so one build runs every length
  and batch; initial values the caller gives (``init="input"``) are
  parameters ``(B, *row)`` too;
- weights are constants (already packed as the kernel reads them) and fixed
  initial values constants broadcast to the batch;
- the kernel's own buffers (every node it computes) are outputs of
  ``call_tir``, allocated by the Relax VM; ``main`` returns the results
  (outputs, then ``<state>_final``, then sums over steps: the order of
  ``main``'s ``"results"`` attribute).

Built with ``tvm.compile(mod, target)`` it runs in ``relax.VirtualMachine``
and exports with ``export_library`` like any Relax model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from tvm import relax
from tvm import tirx as tir

from rnngraph.errors import CompileError
from rnngraph_tvm._deploy import RESULTS, result_name

if TYPE_CHECKING:
    from rnngraph_tvm._model import TvmModel

__all__ = ["relax_module"]

GIVEN = ("input", "lens", "static", "init")
"""Kinds of kernel arguments ``main`` passes in; the others are ``call_tir``'s outputs."""


def relax_module(model: TvmModel, sequence_lens: bool = False, both: bool = False) -> Any:
    """``model`` as a Relax ``IRModule`` (see the module docstring); ``sequence_lens``:
    ``main`` takes each row's length after the inputs; ``both``: ``main`` without them
    and ``main_lens`` with them (and their kernels), in one module."""
    bb = relax.BlockBuilder()
    for lens in (False, True) if both else (sequence_lens,):
        suffix = "_lens" if both and lens else ""
        _add_main(bb, model, lens, f"main{suffix}", f"rnngraph_kernel{suffix}")
    return bb.get()


def _add_main(bb: Any, model: TvmModel, sequence_lens: bool, name: str, kernel_name: str) -> None:
    """Add to ``bb`` the kernel (plain, or taking lengths) and the Relax function calling it."""
    kernel = model.generated(sequence_lens)
    given = [i for i, a in enumerate(kernel.args) if a.kind in GIVEN]
    made = [i for i, a in enumerate(kernel.args) if a.kind not in GIVEN]
    # call_tir passes its arguments first and its outputs last
    func = tir.PrimFunc([kernel.func.params[i] for i in given + made], kernel.func.body)
    func = func.with_attr("tirx.is_scheduled", True)  # (TVM's default GPU schedule: not ours)
    dims: dict[str, Any] = {}

    def shape(s: tuple[Any, ...]) -> list[Any]:  # sizes, and one variable per symbolic size
        return [dims.setdefault(d, tir.Var(d, "int64")) if isinstance(d, str) else d for d in s]

    params: dict[str, Any] = {}  # main's parameters by name, in order
    for i in given:
        a = kernel.args[i]
        if a.kind in ("input", "lens") or (a.kind == "init" and _from_caller(a)):
            s = a.shape[1:] if a.kind == "init" and a.read.delay > 1 else a.shape  # type: ignore[union-attr]
            params.setdefault(a.name, relax.Var(a.name, relax.TensorType(shape(s), a.dtype)))
    made_args = [kernel.args[i] for i in made]
    results = [i for i in made if kernel.args[i].kind in RESULTS]
    for i in made:
        unbound = {d for d in kernel.args[i].shape if isinstance(d, str)} - set(dims)
        if unbound:
            raise CompileError(
                f"{model.graph.name!r}: the size {sorted(unbound)} of "
                f"{kernel.args[i].name!r} comes from no input; a Relax module needs every "
                "size of a result to be a size of an input"
            )
    names = [result_name(kernel.args[i].kind, kernel.args[i].name) for i in results]
    with bb.function(name, list(params.values()), attrs={"results": names}):
        gv = bb.add_func(func, kernel_name)
        with bb.dataflow():
            args = []
            for i in given:
                a = kernel.args[i]
                if a.kind == "static":
                    args.append(relax.const(np.array(model.static_value(a), order="C")))
                    continue
                if a.kind in ("input", "lens"):
                    args.append(params[a.name])
                    continue
                value = params[a.name] if _from_caller(a) else relax.const(model.initial_row(a))
                args.append(bb.emit(relax.op.broadcast_to(value, relax.ShapeExpr(shape(a.shape)))))
            outs = [relax.TensorType(shape(b.shape), b.dtype) for b in made_args]
            call = bb.emit(relax.call_tir(gv, args, outs))
            picked = [bb.emit(relax.TupleGetItem(call, made.index(i))) for i in results]
            out = bb.emit_output(relax.Tuple(picked))
        bb.emit_func_output(out)


def _from_caller(a: Any) -> bool:
    return bool(a.read is not None and a.read.init.kind == "input")
