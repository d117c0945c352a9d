"""Crossing between sequence axes: ``rg.final`` and ``rg.whole``.

A graph may have several sequence axes (``g.input("src", 16, axis="src")``): an
encoder runs on one, a decoder on another, each with its own length and its
own sequence lengths. A value on one axis reaches another only through these
ops, whose results are *per-sequence* (one value per batch row):

``final(v)``
    ``(B, ...)``: row ``b``'s value of ``v`` at its last valid step (where ``v``
    is what a state is assigned, that state's initial value for a row with
    no steps; zeros otherwise).
``whole(v)``
    ``(B, S, ...)``: the whole padded sequence of ``v`` (zeros past each row's
    length), ``S`` being the axis' name as a symbolic dimension; it carries the
    lengths, so :func:`rnngraph.cells.attention` masks past them by itself
    (:func:`whole_mask` gives the mask ``(B, S)``).

These ops are computed between the axes' programs (see
:mod:`rnngraph.program.axes`), never inside one.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("sum_then_scale")
>>> a = g.input("a", 1, axis="a")
>>> s = g.state("s", 1)
>>> total = s + a
>>> g.assign(s, total)
>>> b = g.input("b", 1, axis="b")
>>> g.output("y", b * rg.final(total))
>>> out = rg.run(g, {"a": np.ones((4, 2, 1)), "b": np.ones((2, 2, 1))},
...              sequence_lens={"a": np.array([4, 1]), "b": None})
>>> out["y"][:, :, 0].tolist()
[[4.0, 1.0], [4.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import DEFAULT_AXIS, Value
from rnngraph.ir.registry import OPS, register_op
from rnngraph.ir.types import BATCH, TensorType

__all__ = ["CROSSINGS", "final", "value_axis", "whole", "whole_mask"]

CROSSINGS = ("final", "whole", "whole_mask")


def _signal(types: Sequence[TensorType], what: str) -> TensorType:
    (t,) = types
    if not t.batched:
        raise ValueError(f"{what} reads a sequence (B, ...); got the time-invariant {t}")
    return t


def _final_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    return _signal(types, "final")


def _whole_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    t = _signal(types, "whole")
    return TensorType((BATCH, str(attrs["axis"]), *t.shape[1:]), t.dtype)


def _mask_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    (t,) = types
    if len(t.shape) < 2 or t.shape[1] != attrs["axis"]:
        raise ValueError(f"whole_mask reads a whole sequence (B, {attrs['axis']}, ...), got {t}")
    return TensorType((BATCH, str(attrs["axis"])))


def _between(attrs: Mapping[str, Any], *args: np.ndarray) -> np.ndarray:
    raise RuntimeError(
        "final, whole and whole_mask are computed between the axes' programs "
        "(rnngraph.program.axes), not by a program's loop"
    )


for _op, _rule, _meaning in (
    ("final", _final_rule, "y = v at each row's last valid step (per sequence)"),
    ("whole", _whole_rule, "y = the padded sequence of v, (B, S, ...) (per sequence)"),
    ("whole_mask", _mask_rule, "y[b, s] = 1 where s < the row's length, else 0"),
):
    _fn = lambda attrs, *args: _between(attrs, *args)  # noqa: E731
    _fn.__doc__ = _meaning
    register_op(_op, arity=1, infer=_rule, attrs=("axis",), between_axes=True)(_fn)


def value_axis(v: Value) -> str | None:
    """The sequence axis ``v`` runs on, from the sequence inputs it depends on (None for a
    per-sequence or time-invariant value, or one that depends on no input yet)."""
    g = v.graph.nx_graph
    found: dict[str, int] = {}
    seen, todo = {v.node}, [v.node]
    while todo:
        n = todo.pop()
        d = g.nodes[n]
        if d["op"] == "input":
            if "axis" in d["attrs"] and d["attrs"]["axis"] is None:
                continue
            found.setdefault(d["attrs"].get("axis", DEFAULT_AXIS), n)
            continue
        if OPS[d["op"]].between_axes and n != v.node:
            continue
        for u in g.predecessors(n):
            if u not in seen and g.nodes[u]["type"].batched:
                seen.add(u)
                todo.append(u)
    if len(found) > 1:
        names = {a: g.nodes[n]["name"] for a, n in found.items()}
        raise GraphError(
            f"{v.name!r} depends on several sequence axes: "
            + ", ".join(f"{a!r} (input {n!r})" for a, n in sorted(names.items()))
            + "; a value reaches another axis only through rg.final or rg.whole"
        )
    return next(iter(found), None)


def _crossing(op: str, v: Value, axis: str | None, name: str | None) -> Value:
    if not isinstance(v, Value) or not v.type.batched:
        raise GraphError(f"rg.{op} reads a sequence Value (B, ...), got {v!r}")
    found = value_axis(v)
    if axis is None:
        axis = found
    elif found is not None and found != axis:
        raise GraphError(f"rg.{op}({v.name!r}, axis={axis!r}): the value is on axis {found!r}")
    if axis is None:
        raise GraphError(
            f"rg.{op}({v.name!r}): the value depends on no sequence input yet, so its axis "
            "is unknown; pass axis=<name>"
        )
    if name is None and not v.graph.has_name(f"{v.name}.{op}"):
        name = f"{v.name}.{op}"
    return v.graph.apply(op, [v], {"axis": axis}, name=name)


def final(v: Value, *, axis: str | None = None, name: str | None = None) -> Value:
    """Each row's value of ``v`` at its last valid step: per-sequence ``(B, ...)``.

    ``axis`` is the axis ``v`` runs on (found from its inputs when not given).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("ed")
    >>> src = g.input("src", 2, axis="src")
    >>> tgt = g.input("tgt", 2, axis="tgt")
    >>> enc = rg.cells.rnn(src, 3, name="enc")
    >>> h = g.state("dec.h", 3, init=rg.final(enc, name="h0"))
    >>> g.assign(h, rg.tanh(rg.linear(rg.concat([tgt, h]), 3, name="dec")))
    >>> g.output("y", h)
    >>> p = g.init_params(seed=0)
    >>> feeds = {"src": np.ones((4, 2, 2)), "tgt": np.ones((2, 2, 2))}
    >>> out = rg.run(g, feeds, p, sequence_lens={"src": np.array([4, 1])})
    >>> bool(np.allclose(out["y"][0], out["enc.h_final"]))  # the decoder starts from each row's end
    True
    """
    return _crossing("final", v, axis, name)


def whole(v: Value, *, axis: str | None = None, name: str | None = None) -> Value:
    """The whole sequence of ``v`` as a per-sequence value ``(B, S, ...)`` (``S`` named
    after the axis), zero past each row's length, which it carries for masks.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("ed")
    >>> src = g.input("src", 2, axis="src")
    >>> tgt = g.input("tgt", 2, axis="tgt")
    >>> enc = rg.cells.rnn(src, 3, name="enc")
    >>> memory = rg.whole(enc, name="memory")
    >>> memory.shape  # (B, S, 3), one row per sequence
    ('B', 'src', 3)
    """
    return _crossing("whole", v, axis, name)


def whole_mask(memory: Value, *, name: str | None = None) -> Value:
    """``(B, S)``: 1.0 where a position of ``memory = whole(v)`` is within its row's
    length, else 0.0 (what :func:`rnngraph.cells.attention` masks with).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("ed")
    >>> src = g.input("src", 2, axis="src")
    >>> tgt = g.input("tgt", 2, axis="tgt")
    >>> enc = rg.cells.rnn(src, 3, name="enc")
    >>> memory = rg.whole(enc, name="memory")
    >>> rg.whole_mask(memory).shape  # (B, S): 1 within each row's length
    ('B', 'src')
    """
    if not isinstance(memory, Value) or memory.op != "whole":
        raise GraphError(f"whole_mask reads a value made by rg.whole, got {memory!r}")
    axis = memory.graph.node(memory.node).attrs["axis"]
    if name is None and not memory.graph.has_name(f"{memory.name}.mask"):
        name = f"{memory.name}.mask"
    return memory.graph.apply("whole_mask", [memory], {"axis": axis}, name=name)
