"""The op registry: one entry per op name, and one table per concern.

``OPS[name]`` holds what the IR needs to know about an op (arity, attributes,
its shape and dtype rule and the docstring stating its per-step meaning).
``REFERENCE[name]`` holds its numpy semantics. Later transforms (adjoint,
tangent) and backends (ONNX, TVM) keep *their own* tables keyed by the same
name, so adding a gradient or a lowering never edits the IR classes.

A reference function receives its attributes and its operand arrays. A signal
operand arrives with any number of leading axes (``(B, ...)`` for one step,
``(T, B, ...)`` for a whole sequence); time-invariant operands arrive as they
are. Every axis attribute is stored counted from the end (negative), which is
what lets one function serve both forms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph.errors import UnknownOpError
from rnngraph.ir.types import TensorType

__all__ = [
    "ADJOINT",
    "OPS",
    "REFERENCE",
    "TANGENT",
    "AdjointFn",
    "InferFn",
    "OpDef",
    "ReferenceFn",
    "lookup",
    "register_adjoint",
    "register_op",
    "register_tangent",
]

InferFn = Callable[[Sequence[TensorType], Mapping[str, Any]], TensorType]
ReferenceFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class OpDef:
    """What the IR knows about one op.

    Attributes
    ----------
    name : str
        The key of this op in every table.
    arity : int or None
        Number of operands; None for variadic ops (at least one operand).
    infer : callable
        ``infer(operand_types, attrs) -> TensorType``; raises ``ValueError``
        with a plain description of the mismatch, which the graph wraps into
        a :class:`~rnngraph.errors.ShapeError` naming the node.
    doc : str
        The per-step meaning of the op, as a formula.
    attrs : tuple of str
        The attribute names the op takes.
    source : bool
        True for ops with no operands whose values come from outside the
        graph's dataflow (inputs, params, constants, states).
    after_steps : bool
        True for ops whose value is known only after every step has run (a sum
        over steps and rows, such as a weight's gradient): they and what is
        computed from them run after the loops.
    between_axes : bool
        True for the ops that carry a value from one sequence axis to another
        (:mod:`rnngraph.ops.axes`): a graph with them runs axis by axis
        (:mod:`rnngraph.program.axes`), and they are computed between the
        axes' programs, never inside one (so no backend lowers them).
    """

    name: str
    arity: int | None
    infer: InferFn
    doc: str
    attrs: tuple[str, ...] = ()
    source: bool = False
    after_steps: bool = False
    between_axes: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


AdjointFn = Callable[..., Sequence[Any]]
"""``rule(ctx, node, operands, out, cot) -> [contribution or None per operand]``.

``operands`` are the forward values as the node reads them (delays applied),
``out`` its forward value and ``cot`` the adjoint of ``out``; each
contribution has its operand's type (see :mod:`rnngraph.autodiff.reverse`)."""

OPS: dict[str, OpDef] = {}
REFERENCE: dict[str, ReferenceFn] = {}
ADJOINT: dict[str, AdjointFn] = {}
TANGENT: dict[str, Callable[..., Any]] = {}
"""``rule(node, operands, out, tangents) -> tangent of out`` (a tangent may be None: zero)."""


def register_op(
    name: str,
    *,
    arity: int | None,
    infer: InferFn,
    attrs: Sequence[str] = (),
    source: bool = False,
    after_steps: bool = False,
    between_axes: bool = False,
) -> Callable[[ReferenceFn], ReferenceFn]:
    """Register an op; decorates its numpy reference function.

    The reference function's docstring is the op's per-step meaning.
    """

    def decorate(fn: ReferenceFn) -> ReferenceFn:
        if name in OPS:
            raise ValueError(f"op {name!r} is registered twice")
        OPS[name] = OpDef(
            name=name,
            arity=arity,
            infer=infer,
            doc=(fn.__doc__ or "").strip(),
            attrs=tuple(attrs),
            source=source,
            after_steps=after_steps,
            between_axes=between_axes,
        )
        REFERENCE[name] = fn
        return fn

    return decorate


def register_adjoint(name: str) -> Callable[[AdjointFn], AdjointFn]:
    """Register the local adjoint rule of op ``name`` (the rules are in ``ops/_adjoints.py``)."""

    def decorate(fn: AdjointFn) -> AdjointFn:
        if name not in OPS:
            raise ValueError(f"adjoint for unknown op {name!r}")
        if name in ADJOINT:
            raise ValueError(f"op {name!r} has two adjoint rules")
        ADJOINT[name] = fn
        return fn

    return decorate


def register_tangent(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the forward-mode (tangent) rule of op ``name``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name not in OPS or name in TANGENT:
            raise ValueError(f"tangent rule for op {name!r}: unknown op or registered twice")
        TANGENT[name] = fn
        return fn

    return decorate


def lookup(name: str, *, where: str = "") -> OpDef:
    """The definition of op ``name``; a clear error if there is none."""
    try:
        return OPS[name]
    except KeyError:
        near = [k for k in sorted(OPS) if k.startswith(name[:3])]
        hint = f" Did you mean one of {near}?" if near else ""
        raise UnknownOpError(
            f"unknown op {name!r}{' at ' + where if where else ''}.{hint} "
            f"Known ops: {', '.join(sorted(OPS))}."
        ) from None
