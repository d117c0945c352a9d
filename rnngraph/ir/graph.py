"""The cyclic dataflow graph: nodes are op applications, edges carry delays.

The graph is a ``networkx.MultiDiGraph``. A node is one op applied to its
operands; its value is a *signal* (one tensor per time step, with a leading
batch axis) or a time-invariant tensor (params, constants and what is
computed from them only). An edge ``u -> v`` with key ``port`` feeds operand
``port`` of ``v`` and carries an integer ``delay``: at step ``t``, ``v`` reads
``u(t - delay)``, and where that step lies outside the sequence (or past the
row's length) it reads the edge's initial value (:class:`InitSpec`). A
negative delay is an *advance* (look-ahead), which is how backward-running
recurrences (the reverse half of a bidirectional net, adjoint graphs) are
written.

Feedback is declared with :meth:`Graph.state` and closed with
:meth:`Graph.assign`; finite-impulse taps with :func:`rnngraph.delay`.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("accumulator")
>>> x = g.input("x", 2)
>>> s = g.state("s", 2)            # s(t) = s_new(t - 1), zero before step 0
>>> s_new = s + x
>>> g.assign(s, s_new)
>>> g.output("y", s_new)
>>> out = rg.run(g, {"x": np.ones((3, 1, 2), "float32")})
>>> out["y"][:, 0, 0].tolist()
[1.0, 2.0, 3.0]
>>> out["s_final"].tolist()
[[3.0, 3.0]]
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from rnngraph.errors import (
    AlgebraicLoopError,
    DuplicateNameError,
    GraphError,
    ShapeError,
)
from rnngraph.ir.registry import lookup
from rnngraph.ir.types import BATCH, Dim, TensorType, format_shape

__all__ = ["DEFAULT_AXIS", "PARAM_INITS", "Graph", "InitSpec", "Node", "Value", "as_value"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # rnngraph/

DEFAULT_AXIS = "t"
"""The name of the one sequence axis of a graph's sequence inputs."""

PARAM_INITS = ("zeros", "ones", "constant", "uniform", "normal", "glorot_uniform", "orthogonal")
"""Named initializers accepted by :meth:`Graph.param`."""


@dataclass(frozen=True)
class InitSpec:
    """The value a delayed edge reads before the sequence starts.

    ``kind`` is ``"zeros"``; ``"array"`` (``ref`` names an array stored in the
    graph, shaped like one batch row or like the whole batch); ``"param"``
    (``ref`` names a parameter, a learned initial value shared by all rows);
    or ``"input"`` (``ref`` names a value the caller must supply per run, as
    for streaming).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("i")
    >>> s = g.state("s", 2, init="param")
    >>> g.assign(s, s + g.input("x", 2))
    >>> g.operands(s.node)[0][2]  # what the state reads before the first step
    InitSpec(kind='param', ref='s.init')
    """

    kind: str = "zeros"
    ref: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("zeros", "array", "param", "input"):
            raise ValueError(f"unknown initial value kind {self.kind!r}")
        if (self.kind == "zeros") != (self.ref is None):
            raise ValueError(f"initial value {self.kind!r} needs a ref iff it is not zeros")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind} if self.ref is None else {"kind": self.kind, "ref": self.ref}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> InitSpec:
        return cls(str(d["kind"]), d.get("ref"))


ZEROS = InitSpec()


@dataclass(frozen=True)
class Node:
    """A read-only view of one node, for inspection."""

    id: int
    name: str
    op: str
    type: TensorType
    attrs: Mapping[str, Any]
    origin: str | None


def _user_origin() -> str | None:
    """``file:line`` of the innermost caller outside this package."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


class Value:
    """A handle to the value of one node; supports ``+ - * / @ **``, unary ``-``.

    Values are made by the builder (``Graph.input``, ``rnngraph.tanh``, ...),
    never directly.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("v")
    >>> x = g.input("x", 3)
    >>> y = 2.0 * x + 1.0  # operators build ops
    >>> type(y).__name__, y.op, y.shape
    ('Value', 'add', ('B', 3))
    """

    __slots__ = ("graph", "node")

    def __init__(self, graph: Graph, node: int) -> None:
        self.graph = graph
        self.node = node

    @property
    def type(self) -> TensorType:
        return self.graph._nx.nodes[self.node]["type"]

    @property
    def shape(self) -> tuple[Dim, ...]:
        """The per-step shape, batch axis ``"B"`` first for signals."""
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def name(self) -> str:
        return self.graph._nx.nodes[self.node]["name"]

    @property
    def op(self) -> str:
        return self.graph._nx.nodes[self.node]["op"]

    def __repr__(self) -> str:
        return f"<Value {self.name!r}: {self.op} -> {self.type}>"

    def __bool__(self) -> bool:
        raise TypeError(
            "a graph Value has no truth value at build time; use rnngraph.where "
            "for data-dependent choices"
        )

    def _bin(self, op: str, other: Any, *, swap: bool = False) -> Value:
        other_v = as_value(other, self.graph)
        a, b = (other_v, self) if swap else (self, other_v)
        return self.graph.apply(op, [a, b])

    def __add__(self, o: Any) -> Value:
        return self._bin("add", o)

    def __radd__(self, o: Any) -> Value:
        return self._bin("add", o, swap=True)

    def __sub__(self, o: Any) -> Value:
        return self._bin("sub", o)

    def __rsub__(self, o: Any) -> Value:
        return self._bin("sub", o, swap=True)

    def __mul__(self, o: Any) -> Value:
        return self._bin("mul", o)

    def __rmul__(self, o: Any) -> Value:
        return self._bin("mul", o, swap=True)

    def __truediv__(self, o: Any) -> Value:
        return self._bin("div", o)

    def __rtruediv__(self, o: Any) -> Value:
        return self._bin("div", o, swap=True)

    def __pow__(self, o: Any) -> Value:
        return self._bin("pow", o)

    def __matmul__(self, o: Any) -> Value:
        return self._bin("matmul", o)

    def __rmatmul__(self, o: Any) -> Value:
        return self._bin("matmul", o, swap=True)

    def __neg__(self) -> Value:
        return self.graph.apply("neg", [self])


def as_value(x: Any, graph: Graph) -> Value:
    """``x`` itself if it is a Value of ``graph``; a constant node for numbers and arrays."""
    if isinstance(x, Value):
        if x.graph is not graph:
            raise GraphError(
                f"value {x.name!r} belongs to graph {x.graph.name!r}, not {graph.name!r}; "
                "values cannot cross graphs"
            )
        return x
    if isinstance(x, int | float | np.ndarray | np.number | bool | list):
        return graph.constant(x)
    raise TypeError(f"cannot use {type(x).__name__} as a graph value")


class Graph:
    """A recurrent network as a cyclic dataflow graph.

    Parameters
    ----------
    name : str
        The graph's name (used in files and exported models).

    Examples
    --------
    The Elman network of the quick start:

    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("elman")
    >>> x = g.input("x", 8)
    >>> h = g.state("h", 16)
    >>> h_new = rg.tanh(rg.linear(x, 16, name="in") + rg.linear(h, 16, bias=False, name="rec"))
    >>> g.assign(h, h_new)
    >>> g.output("y", rg.linear(h_new, 4, name="out"))
    >>> params = g.init_params(seed=0)
    >>> sorted(params)
    ['in.W', 'in.b', 'out.W', 'out.b', 'rec.W']
    >>> rg.run(g, {"x": np.random.rand(20, 3, 8).astype("float32")}, params)["y"].shape
    (20, 3, 4)
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError("a graph needs a non-empty string name")
        self.name = name
        self._nx: nx.MultiDiGraph = nx.MultiDiGraph()
        self._next_id = 0
        self._names: dict[str, int] = {}
        self._counters: dict[str, int] = {}
        self._inputs: dict[str, int] = {}
        self._params: dict[str, int] = {}
        self._states: dict[str, int] = {}
        self._outputs: dict[str, int] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._version = 0
        self._cache: dict[str, tuple[int, Any]] = {}
        self._reserved: set[str] = set()
        self._building = False  # inside a building() block
        self.meta: dict[str, Any] = {}
        """Free-form JSON-serialisable notes saved with the graph (importers record here
        how the source model's interface maps onto the graph's)."""

    # ------------------------------------------------------------------ views
    @property
    def nx_graph(self) -> nx.MultiDiGraph:
        """The underlying networkx graph (read it; change the graph through the builder)."""
        return self._nx

    @property
    def inputs(self) -> dict[str, TensorType]:
        """Graph inputs by name, each with its per-step type."""
        return {k: self._type(v) for k, v in self._inputs.items()}

    @property
    def params(self) -> dict[str, TensorType]:
        """Parameters by name, each with its (time-invariant) type."""
        return {k: self._type(v) for k, v in self._params.items()}

    @property
    def states(self) -> dict[str, TensorType]:
        """States by name, each with its per-step type."""
        return {k: self._type(v) for k, v in self._states.items()}

    @property
    def outputs(self) -> dict[str, TensorType]:
        """Outputs by name, each with its per-step type."""
        return {k: self._type(v) for k, v in self._outputs.items()}

    def output_nodes(self) -> dict[str, int]:
        """Outputs by name, each with the id of the node that produces it."""
        return dict(self._outputs)

    def state_nodes(self) -> dict[str, int]:
        return dict(self._states)

    def input_nodes(self) -> dict[str, int]:
        return dict(self._inputs)

    def param_nodes(self) -> dict[str, int]:
        return dict(self._params)

    @property
    def param_bounds(self) -> dict[str, float]:
        """The params declared with a ``bound``, by name: training keeps each entry in
        ``[-bound, bound]``."""
        out = {}
        for k, nid in self._params.items():
            bound = self._nx.nodes[nid]["attrs"].get("bound")
            if bound is not None:
                out[k] = float(bound)
        return out

    @property
    def arrays(self) -> Mapping[str, np.ndarray]:
        """Arrays stored in the graph itself (constants, fixed initial values)."""
        return self._arrays

    def node(self, ref: int | str | Value) -> Node:
        """A read-only view of a node, by id, name or Value."""
        nid = self._resolve(ref)
        d = self._nx.nodes[nid]
        return Node(nid, d["name"], d["op"], d["type"], dict(d["attrs"]), d["origin"])

    def nodes(self) -> Iterator[Node]:
        """Every node, in the order it was built."""
        for nid in sorted(self._nx.nodes):
            yield self.node(nid)

    def value(self, ref: int | str) -> Value:
        """The Value of a node given by id or name."""
        return Value(self, self._resolve(ref))

    def operands(self, nid: int) -> list[tuple[int, int, InitSpec]]:
        """``(source, delay, init)`` for each operand of node ``nid``, in port order."""
        edges = sorted(self._nx.in_edges(nid, keys=True, data=True), key=lambda e: e[2])
        return [(u, d["delay"], d["init"]) for u, _, _, d in edges]

    def operand_ids(self, nid: int) -> list[int]:
        """The source node of each operand of node ``nid``, in port order."""
        return [u for u, _, _ in self.operands(nid)]

    def __repr__(self) -> str:
        return (
            f"<Graph {self.name!r}: {self._nx.number_of_nodes()} nodes, "
            f"inputs={list(self._inputs)}, states={list(self._states)}, "
            f"outputs={list(self._outputs)}>"
        )

    def _type(self, nid: int) -> TensorType:
        return self._nx.nodes[nid]["type"]

    def _resolve(self, ref: int | str | Value) -> int:
        if isinstance(ref, Value):
            return ref.node
        if isinstance(ref, str):
            if ref not in self._names:
                raise GraphError(f"graph {self.name!r} has no node named {ref!r}")
            return self._names[ref]
        if ref not in self._nx:
            raise GraphError(f"graph {self.name!r} has no node {ref}")
        return int(ref)

    def _describe(self, nid: int) -> str:
        d = self._nx.nodes[nid]
        where = f" (built at {d['origin']})" if d["origin"] else ""
        return f"{d['op']} node {d['name']!r}{where}"

    # ------------------------------------------------------------ node making
    def fresh_name(self, op: str) -> str:
        """A node name not taken yet: ``"<op>_<k>"``."""
        k = self._counters.get(op, 0)
        while f"{op}_{k}" in self._names or f"{op}_{k}" in self._reserved:
            k += 1
        self._counters[op] = k + 1
        return f"{op}_{k}"

    def _claim_name(self, name: str | None, op: str) -> str:
        if name is None:
            return self.fresh_name(op)
        if not isinstance(name, str) or not name:
            raise GraphError(f"a node name must be a non-empty string, got {name!r}")
        if name in self._names:
            raise DuplicateNameError(
                f"graph {self.name!r} already has a node named {name!r} "
                f"({self._describe(self._names[name])}); pick another name"
            )
        return name

    def _add_node(
        self,
        op: str,
        type_: TensorType,
        attrs: Mapping[str, Any],
        name: str | None,
        origin: str | None,
    ) -> int:
        name = self._claim_name(name, op)
        nid = self._next_id
        self._next_id += 1
        self._nx.add_node(nid, op=op, attrs=dict(attrs), type=type_, name=name, origin=origin)
        self._names[name] = nid
        self._version += 1
        return nid

    def apply(
        self,
        op: str,
        operands: Sequence[Value],
        attrs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
    ) -> Value:
        """Add a node applying ``op``; infer its type now, so errors point at the caller."""
        origin = _user_origin()
        opdef = lookup(op, where=origin or "")
        attrs = dict(attrs or {})
        vals = [as_value(v, self) for v in operands]
        if opdef.arity is not None and len(vals) != opdef.arity:
            raise GraphError(f"op {op!r} takes {opdef.arity} operands, got {len(vals)}")
        if opdef.arity is None and not vals:
            raise GraphError(f"op {op!r} needs at least one operand")
        try:
            type_ = opdef.infer([v.type for v in vals], attrs)
        except ValueError as e:
            raise self.shape_error(op, name, str(e), vals, origin) from None
        nid = self._add_node(op, type_, attrs, name, origin)
        for port, v in enumerate(vals):
            self._nx.add_edge(v.node, nid, key=port, delay=0, init=ZEROS)
        return Value(self, nid)

    def shape_error(
        self,
        op: str,
        name: str | None,
        detail: str,
        operands: Sequence[Value],
        origin: str | None = None,
    ) -> ShapeError:
        """A ShapeError naming the op, the node, the user's line and every operand's type."""
        origin = origin or _user_origin()
        label = f" {name!r}" if name else ""
        return ShapeError(
            f"{op}{label}{' at ' + origin if origin else ''}: {detail}. Operands: "
            + ", ".join(f"{v.name!r} {v.type}" for v in operands)
        )

    def set_edge(self, u: int, v: int, port: int, *, delay: int, init: InitSpec) -> None:
        """Give the edge feeding operand ``port`` of ``v`` from ``u`` a new delay and
        initial value."""
        self._nx.edges[u, v, port].update(delay=int(delay), init=init)
        self._version += 1

    def set_operand(
        self, v: int, port: int, source: int, *, delay: int = 0, init: InitSpec | None = None
    ) -> None:
        """Feed operand ``port`` of node ``v`` from ``source`` (read ``delay`` steps back,
        ``init`` before the sequence), in place of what fed it, if anything (a node made
        with a placeholder operand is closed this way)."""
        for u, _, key in list(self._nx.in_edges(v, keys=True)):
            if key == port:
                self._nx.remove_edge(u, v, key=port)
        self._nx.add_edge(source, v, key=port, delay=int(delay), init=init or ZEROS)
        self._version += 1

    def has_name(self, name: str) -> bool:
        """Whether ``name`` is taken: a node's, or reserved (:meth:`reserve_names`)."""
        return name in self._names or name in self._reserved

    def _store_array(self, prefix: str, value: np.ndarray) -> str:
        key = prefix
        k = self._counters.get(f"array:{prefix}", 0)
        while key in self._arrays:
            k += 1
            key = f"{prefix}#{k}"
        self._counters[f"array:{prefix}"] = k
        self._arrays[key] = np.array(value, copy=True)
        return key

    # ---------------------------------------------------------------- builder
    def input(
        self,
        name: str,
        features: int | Sequence[int | str] = (),
        *,
        dtype: str = "float",
        axis: str | None = DEFAULT_AXIS,
    ) -> Value:
        """Declare an input; one step has shape ``(B, *features)``.

        At run time a sequence input is passed time-major, ``(T, B, *features)``.
        ``axis`` names its sequence axis: inputs on different axes (an encoder's
        source and a decoder's target) have their own lengths, and values cross
        between axes through :func:`rnngraph.final` and :func:`rnngraph.whole`
        (see :mod:`rnngraph.program.axes`). With ``axis=None`` the input is
        *per-sequence*: one value per batch row, passed as ``(B, *features)``, the
        same at every step (a speaker's or an image's embedding, an encoder's
        memory). What is computed from
        per-sequence inputs (and weights) only is per-sequence too: every
        backend computes it once, before the steps. A state can start from a
        per-sequence input: ``g.state("h", 32, init=h0)``.

        >>> import numpy as np
        >>> import rnngraph as rg
        >>> g = rg.Graph("styled")
        >>> x = g.input("x", 2)
        >>> style = g.input("style", 2, axis=None)
        >>> g.output("y", x * style)
        >>> out = rg.run(g, {"x": np.ones((3, 1, 2)), "style": np.array([[2.0, 3.0]])})
        >>> out["y"][:, 0].tolist()
        [[2.0, 3.0], [2.0, 3.0], [2.0, 3.0]]
        """
        self._check_interface_name(name)
        if axis is not None and (
            not isinstance(axis, str) or not axis.isidentifier() or axis == BATCH
        ):
            raise GraphError(
                f"input {name!r}: axis must be a name (an identifier other than {BATCH!r}) "
                f"or None for a per-sequence input, got {axis!r}"
            )
        row = _row(f"input {name!r}", features)
        try:
            type_ = TensorType((BATCH, *row), dtype)
        except ValueError as e:
            raise ShapeError(f"input {name!r}: {e}") from None
        attrs: dict[str, Any] = {} if axis == DEFAULT_AXIS else {"axis": axis}
        nid = self._add_node("input", type_, attrs, name, _user_origin())
        self._inputs[name] = nid
        return Value(self, nid)

    @property
    def per_sequence_inputs(self) -> dict[str, TensorType]:
        """The inputs declared with ``axis=None``: one value ``(B, ...)`` per sequence."""
        return {
            k: self._type(v)
            for k, v in self._inputs.items()
            if "axis" in self._nx.nodes[v]["attrs"] and self._nx.nodes[v]["attrs"]["axis"] is None
        }

    def param(
        self,
        name: str,
        shape: int | Sequence[int],
        init: str | float | np.ndarray = "uniform",
        *,
        scale: float | None = None,
        bound: float | None = None,
        dtype: str = "float",
    ) -> Value:
        """Declare a learned, time-invariant parameter.

        Parameters
        ----------
        name : str
            Its key in the params dict.
        shape : int or tuple of int
            Its full shape (no batch axis: a parameter is shared by all rows).
        init : str, float or ndarray
            How :meth:`init_params` fills it: one of :data:`PARAM_INITS`
            (``"uniform"`` draws from ``U(-s, s)`` with ``s = scale`` or
            ``1/sqrt(fan_in)``, ``fan_in`` being the first axis; ``"normal"``
            uses ``scale`` as its standard deviation), a number to fill it
            with, or an array to copy.
        scale : float, optional
            The scale of a random initializer.
        bound : float, optional
            A limit on every entry's magnitude that training keeps (``rg.train``
            clips the param to ``[-bound, bound]`` after each update; an IndRNN's
            recurrent weights, for instance). See :attr:`param_bounds`.
        dtype : str
            ``"float"``, or ``"int8"``, ``"int16"``, ``"int32"`` for the integer
            weights of a quantised graph (initialised from an array or zeros; see
            :func:`rnngraph.quantize`).
        """
        dims = _row(f"param {name!r}", shape)
        if any(isinstance(d, str) for d in dims):
            raise ShapeError(f"param {name!r}: a parameter's shape is fixed, got {shape!r}")
        shp = tuple(int(d) for d in dims)
        attrs: dict[str, Any]
        if isinstance(init, np.ndarray):
            if init.shape != shp:
                raise ShapeError(
                    f"param {name!r}: initial array has shape {init.shape}, "
                    f"declared shape is {format_shape(shp)}"
                )
            attrs = {"init": "array", "array": self._store_array(f"{name}.init_value", init)}
        elif isinstance(init, int | float) and not isinstance(init, bool):
            attrs = {"init": "constant", "scale": float(init)}
        elif init in PARAM_INITS:
            attrs = {"init": init, "scale": None if scale is None else float(scale)}
        else:
            raise GraphError(
                f"param {name!r}: unknown init {init!r}; use one of {PARAM_INITS}, "
                "a number or an array"
            )
        if bound is not None:
            if not float(bound) > 0:
                raise GraphError(f"param {name!r}: bound must be positive, got {bound!r}")
            attrs["bound"] = float(bound)
        if dtype not in ("float", "int8", "int16", "int32"):
            raise GraphError(
                f"param {name!r}: dtype must be 'float', 'int8', 'int16' or 'int32', got {dtype!r}"
            )
        if dtype != "float" and attrs["init"] not in ("array", "zeros", "constant"):
            raise GraphError(
                f"param {name!r}: an integer param starts from an array, zeros or a constant"
            )
        nid = self._add_node("param", TensorType(shp, dtype), attrs, name, _user_origin())
        self._params[name] = nid
        return Value(self, nid)

    def constant(self, value: Any, *, name: str | None = None) -> Value:
        """A time-invariant constant (scalars become float constants)."""
        arr = np.asarray(value)
        if arr.dtype == np.bool_:
            dtype = "bool"
        elif np.issubdtype(arr.dtype, np.integer) and arr.ndim > 0:
            dtype = "int64"
        else:
            # Python numbers are floats in arithmetic, following the run's dtype.
            dtype = "float"
        arr = arr.astype({"bool": np.bool_, "int64": np.int64, "float": np.float64}[dtype])
        key = self._store_array("const", arr)
        nid = self._add_node(
            "constant", TensorType(tuple(arr.shape), dtype), {"array": key}, name, _user_origin()
        )
        return Value(self, nid)

    def state(
        self,
        name: str,
        shape: int | Sequence[int | str],
        init: str | np.ndarray | Value = "zeros",
        *,
        delay: int = 1,
        every: int = 1,
    ) -> Value:
        """Declare a recurrent state: at step ``t`` it reads the assigned value at ``t - delay``.

        Parameters
        ----------
        name : str
            The state's name; its final value is returned as ``"<name>_final"``.
        shape : int or tuple of int
            The shape of one batch row (one step is ``(B, *shape)``).
        init : {"zeros", "param", "input"}, ndarray or Value
            The value read before the first step: zeros; a fixed array (one
            row's shape, or ``(B, *shape)`` for a fixed batch); a learned
            parameter named ``"<name>.init"``; a value the caller supplies
            on every run (``initial_states=`` of :func:`rnngraph.run`), as a
            streaming model does; or a per-sequence value: an input made by
            ``g.input(..., axis=None)``, another axis' final value
            (``rg.final(encoder)``, a decoder's start), or a value computed
            from those, params and constants (``rg.tanh(rg.linear(rg.final(
            encoder), n))``: computed once per row before the state's axis).
            Any state's initial value can be overridden per run.
        delay : int
            Steps of delay, default 1. A negative delay is an advance: the
            state reads the assigned value at ``t + |delay|``, which makes the
            recurrence run from the last step to the first (a reverse RNN).
        every : int
            A clocked state (clockwork RNN, hierarchical RNNs): it takes its
            assigned value only at steps ``every - 1, 2 * every - 1, ...`` and
            holds it in between (with ``sequence_lens``, a row that ends between
            ticks keeps its last held value as its final state). The graph
            counts the steps in a state ``"clock.<every>"``, shared by every
            state of that period. Updates on an event rather than a period are
            written with :func:`rnngraph.where`:
            ``g.assign(s, rg.where(event, new, s))``.

        Examples
        --------
        >>> import numpy as np
        >>> import rnngraph as rg
        >>> g = rg.Graph("slow")
        >>> x = g.input("x", 1)
        >>> s = g.state("s", 1, every=3)
        >>> g.assign(s, s + x)
        >>> g.output("y", s)
        >>> rg.run(g, {"x": np.ones((7, 1, 1))})["y"].ravel().tolist()
        [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]
        """
        self._check_interface_name(name)
        self._check_interface_name(f"{name}_final")
        if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
            raise GraphError(f"state {name!r}: every must be a positive int, got {every!r}")
        if every > 1 and int(delay) != 1:
            raise GraphError(
                f"state {name!r}: a clocked state (every={every}) holds its value from one "
                f"step to the next, so its delay must be 1, got {delay}"
            )
        row = _row(f"state {name!r}", shape)
        try:
            type_ = TensorType((BATCH, *row))
        except ValueError as e:
            raise ShapeError(f"state {name!r}: {e}") from None
        spec = self.init_spec(name, type_, init)
        attrs: dict[str, Any] = {"delay": int(delay), "init": spec.to_json()}
        if every > 1:
            attrs["every"] = int(every)
        nid = self._add_node("state", type_, attrs, name, _user_origin())
        self._states[name] = nid
        return Value(self, nid)

    def init_spec(self, name: str, type_: TensorType, init: Any) -> InitSpec:
        if isinstance(init, Value):
            # (a per-sequence input, rg.final(...) of another axis, or a value computed
            # from those, params and constants: ir/verify.py checks that it is one)
            stepping = init.op in ("state", "delay") or (
                init.op == "input" and init.name not in self.per_sequence_inputs
            )
            if init.graph is not self or not init.type.batched or stepping:
                raise GraphError(
                    f"state {name!r} can start from a per-sequence value of this graph (a "
                    "per-sequence input declared with axis=None, rg.final(...) of another "
                    f"axis, or a value computed from those), got {init!r}"
                )
            if init.type != type_:
                raise ShapeError(
                    f"state {name!r} of type {type_} cannot start from per-sequence value "
                    f"{init.name!r} of type {init.type}"
                )
            return InitSpec("input", init.name)
        if isinstance(init, np.ndarray):
            if init.shape not in (type_.row_shape,) and init.shape[1:] != type_.row_shape:
                raise ShapeError(
                    f"initial value of {name!r} has shape {init.shape}; expected one row "
                    f"{format_shape(type_.row_shape)} or a batch (N, *{type_.row_shape})"
                )
            return InitSpec("array", self._store_array(f"{name}.init", init))
        if init == "zeros":
            return ZEROS
        if init == "param":
            self.param(f"{name}.init", type_.row_shape, "zeros")
            return InitSpec("param", f"{name}.init")
        if init == "input":
            return InitSpec("input", name)
        raise GraphError(
            f"initial value of {name!r} must be 'zeros', 'param', 'input' or an array, got {init!r}"
        )

    def assign(self, state: Value, value: Value) -> None:
        """Close the feedback loop: ``state`` reads ``value`` delayed by the state's delay."""
        value = as_value(value, self)
        if not isinstance(state, Value) or state.graph is not self or state.op != "state":
            raise GraphError(
                f"assign() needs a state made by Graph.state as its first argument, got {state!r}"
            )
        sid = state.node
        if self._nx.in_degree(sid):
            raise GraphError(f"state {state.name!r} is already assigned; assign each state once")
        st, vt = state.type, value.type
        if st != vt:
            raise ShapeError(
                f"cannot assign {self._describe(value.node)} of type {vt} to state "
                f"{state.name!r} of type {st}; the new value must have the state's shape"
            )
        attrs = self._nx.nodes[sid]["attrs"]
        delay = attrs["delay"]
        if attrs.get("every", 1) > 1:
            value = self._held(state, value, int(attrs["every"]))
        self._nx.add_edge(
            value.node, sid, key=0, delay=delay, init=InitSpec.from_json(attrs["init"])
        )
        self._version += 1
        if delay == 0 and nx.has_path(self.zero_delay_view(), sid, value.node):
            path = nx.shortest_path(self.zero_delay_view(), sid, value.node)
            self._nx.remove_edge(value.node, sid, key=0)
            self._version += 1
            names = [self._nx.nodes[n]["name"] for n in path]
            raise AlgebraicLoopError(
                f"assigning {value.name!r} to state {state.name!r} with delay 0 closes a "
                f"cycle with no delay: {' -> '.join([*names, names[0]])}. Give the state a "
                "delay of at least 1",
                names,
            )

    def stored(self, state: Value) -> Value:
        """What an assigned ``state`` stores this step (what it reads next step): the
        assigned value, or for a clocked state (``every=k``) that value on its ticks and
        its own value in between."""
        if not isinstance(state, Value) or state.graph is not self or state.op != "state":
            raise GraphError(f"stored() needs a state made by Graph.state, got {state!r}")
        reads = self.operands(state.node)
        if not reads:
            raise GraphError(f"state {state.name!r} is not assigned yet")
        return Value(self, reads[0][0])

    def _clock(self, every: int) -> Value:
        """True at steps ``every - 1, 2 * every - 1, ...``: the tick of the shared clock state
        ``clock.<every>`` (a phase counting 0, 1, ..., every - 1 and again)."""
        name = f"clock.{every}"
        if name in self._states:
            phase = Value(self, self._states[name])
        else:
            phase = self.state(name, 1)
            last = self.apply("equal", [phase, as_value(every - 1.0, self)], name=f"{name}.tick")
            nxt = self.apply("add", [phase, as_value(1.0, self)], name=f"{name}.next")
            zero = as_value(0.0, self)
            self.assign(phase, self.apply("where", [last, zero, nxt], name=f"{name}.phase"))
        return self.apply("equal", [phase, as_value(every - 1.0, self)])

    def _held(self, state: Value, value: Value, every: int) -> Value:
        """What a clocked state stores: ``value`` on its clock's ticks, else its own value."""
        tick = self._clock(every)
        rank = len(state.type.row_shape)
        if rank != 1:
            tick = self.apply("reshape", [tick], {"shape": [1] * rank, "in_rank": 1})
        return self.apply("where", [tick, value, state], name=f"{state.name}.held")

    def zero_delay_view(self) -> nx.MultiDiGraph:
        """A read-only view of the graph with only its zero-delay edges."""
        return nx.subgraph_view(
            self._nx, filter_edge=lambda u, v, k: self._nx.edges[u, v, k]["delay"] == 0
        )

    def output(self, name: str, value: Value) -> None:
        """Mark ``value`` as an output named ``name``.

        A signal gives a sequence ``(T, B, ...)``; a value computed from a
        :func:`~rnngraph.ops.totals.total` (a sum over all steps, such as a
        weight's gradient) gives that value.
        """
        value = as_value(value, self)
        self._check_interface_name(name)
        if name in self._names and self._names[name] != value.node:
            node = self._nx.nodes[self._names[name]]
            if node["op"] in ("input", "param", "state"):
                raise DuplicateNameError(
                    f"output name {name!r} is already the name of {node['op']} {name!r}"
                )
        if not value.type.batched and not self._after_totals(value.node):
            raise ShapeError(
                f"output {name!r}: {self._describe(value.node)} is time-invariant "
                f"(type {value.type}); an output must be a signal with a batch axis, "
                "or a sum over steps (rnngraph.total)"
            )
        self._outputs[name] = value.node
        self._version += 1

    def _after_totals(self, nid: int) -> bool:
        """True if ``nid`` is a total or computed from one (so it is known after the loops)."""
        nodes = {nid} | nx.ancestors(self._nx, nid)
        return any(lookup(self._nx.nodes[n]["op"]).after_steps for n in nodes)

    def _check_interface_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"names must be non-empty strings, got {name!r}")
        finals = {f"{s}_final": s for s in self._states}
        taken = {
            **dict.fromkeys(self._inputs, "an input"),
            **dict.fromkeys(self._states, "a state"),
        }
        taken.update(dict.fromkeys(self._outputs, "an output"))
        if name in taken:
            raise DuplicateNameError(f"{name!r} is already {taken[name]} of graph {self.name!r}")
        if name in finals:
            raise DuplicateNameError(
                f"{name!r} is the name rnngraph.run gives the final value of state "
                f"{finals[name]!r}; pick another name"
            )

    @contextlib.contextmanager
    def building(self) -> Iterator[Graph]:
        """Build a part of the graph all or nothing: if the block raises, every node,
        name, array, interface entry and assignment it made is undone, so the graph is
        as before (and the names are free for the corrected call). Library cells build
        this way; nested blocks leave the undoing to the outermost.

        >>> import rnngraph as rg
        >>> g = rg.Graph("g")
        >>> x = g.input("x", 3)
        >>> try:
        ...     with g.building():
        ...         y = rg.linear(x, 4, name="enc")
        ...         g.output("y", y)
        ...         raise RuntimeError("a later step failed")
        ... except RuntimeError:
        ...     pass
        >>> sorted(n.name for n in g.nodes()), g.outputs
        (['x'], {})
        """
        if self._building:
            yield self
            return
        first = self._next_id
        arrays = len(self._arrays)
        counters = dict(self._counters)
        outputs = dict(self._outputs)
        unassigned = [s for s in self._states.values() if not self._nx.in_degree(s)]
        self._building = True
        try:
            yield self
        except BaseException:
            new = [n for n in range(first, self._next_id) if n in self._nx]
            for n in new:
                del self._names[self._nx.nodes[n]["name"]]
            self._nx.remove_nodes_from(new)
            for s in unassigned:  # assigned inside the block from a node made before it
                self._nx.remove_edges_from(list(self._nx.in_edges(s, keys=True)))
            for table in (self._inputs, self._params, self._states):
                for name in [k for k, v in table.items() if v >= first]:
                    del table[name]
            self._outputs = outputs
            for key in list(reversed(self._arrays))[: len(self._arrays) - arrays]:
                del self._arrays[key]
            self._counters = counters
            self._next_id = first
            self._version += 1
            raise
        finally:
            self._building = False

    # --------------------------------------------------------------- rewriting
    # The low-level interface of passes and importers: no type inference,
    # no user origin. Callers keep the graph well-typed; verify() checks.
    def copy(self, name: str | None = None) -> Graph:
        """An independent copy (structure, names, arrays; node ids kept)."""
        g = Graph(name or self.name)
        g._nx = self._nx.copy()
        for nid in g._nx.nodes:
            g._nx.nodes[nid]["attrs"] = dict(g._nx.nodes[nid]["attrs"])
        g._next_id = self._next_id
        g._names = dict(self._names)
        g._counters = dict(self._counters)
        g._inputs, g._params = dict(self._inputs), dict(self._params)
        g._states, g._outputs = dict(self._states), dict(self._outputs)
        g._arrays = dict(self._arrays)
        g._reserved = set(self._reserved)
        g.meta = json.loads(json.dumps(self.meta))
        return g

    @classmethod
    def from_records(
        cls,
        name: str,
        nodes: Sequence[Node],
        edges: Sequence[tuple[int, int, int, int, InitSpec]],
        interface: Mapping[str, Mapping[str, int]],
        arrays: Mapping[str, np.ndarray],
        meta: Mapping[str, Any],
    ) -> Graph:
        """A graph from checked records (a loader's): nodes with their ids, edges as
        ``(source, target, port, delay, init)``, the interface as ``{"inputs": {name:
        id}, "params": ..., "states": ..., "outputs": ...}``, stored arrays and meta.
        The result is not verified: the loader verifies it."""
        g = cls(name)
        for n in nodes:
            g._nx.add_node(
                n.id, op=n.op, attrs=dict(n.attrs), type=n.type, name=n.name, origin=n.origin
            )
            g._names[n.name] = n.id
        g._next_id = max((n.id for n in nodes), default=-1) + 1
        for u, v, port, delay, init in edges:
            g._nx.add_edge(u, v, key=port, delay=int(delay), init=init)
        g._inputs = dict(interface.get("inputs", {}))
        g._params = dict(interface.get("params", {}))
        g._states = dict(interface.get("states", {}))
        g._outputs = dict(interface.get("outputs", {}))
        g._arrays = dict(arrays)
        g.meta.update(meta)
        return g

    def add_node_raw(
        self,
        op: str,
        type_: TensorType,
        attrs: Mapping[str, Any],
        operands: Sequence[tuple[int, int, InitSpec]] = (),
        *,
        name: str | None = None,
        origin: str | None = None,
    ) -> int:
        """Add a node with a given type and ``(source, delay, init)`` operands; its id."""
        lookup(op)
        nid = self._add_node(op, type_, attrs, name, origin)
        for port, (u, delay, init) in enumerate(operands):
            self._nx.add_edge(u, nid, key=port, delay=int(delay), init=init)
        return nid

    def reserve_names(self, names: Sequence[str]) -> None:
        """Keep automatic names away from ``names`` (an importer's tensor names, say)."""
        self._reserved.update(names)

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()``, computed once per version of the graph (analyses, derived graphs)."""
        cached = self._cache.get(key)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        value = build()
        self._cache[key] = (self._version, value)
        return value

    def read_delayed(
        self,
        u: int,
        delay: int,
        init: InitSpec = ZEROS,
        *,
        cache: dict[Any, Value] | None = None,
        hint: str = "delay",
    ) -> Value:
        """A node reading ``u(t - delay)`` (``init`` before the sequence's end).

        ``u`` itself for a delay of 0 or a time-invariant ``u``; with ``cache``
        (keyed by ``(u, delay, init)``), one node per distinct read.
        """
        if delay == 0 or not self._nx.nodes[u]["type"].batched:
            return Value(self, u)
        key = (u, delay, init)
        if cache is not None and key in cache:
            return cache[key]
        nid = self.add_node_raw(
            "delay", self._nx.nodes[u]["type"], {}, [(u, delay, init)], name=self.fresh_name(hint)
        )
        if cache is not None:
            cache[key] = Value(self, nid)
        return Value(self, nid)

    def add_array(self, prefix: str, value: np.ndarray) -> str:
        """Store an array in the graph (for constants and fixed initial values); its key."""
        return self._store_array(prefix, value)

    def replace_uses(self, old: int, new: int) -> None:
        """Point every consumer of ``old`` (and any output it feeds) at ``new``."""
        for _, v, port, d in list(self._nx.out_edges(old, keys=True, data=True)):
            self._nx.remove_edge(old, v, key=port)
            self._nx.add_edge(new, v, key=port, **d)
        for k, nid in self._outputs.items():
            if nid == old:
                self._outputs[k] = new
        self._version += 1

    def remove_nodes(self, nids: Sequence[int] | set[int]) -> None:
        """Remove nodes no output, state or remaining node reads (dead code)."""
        for nid in nids:
            d = self._nx.nodes[nid]
            if d["op"] in ("input", "param", "state") or nid in self._outputs.values():
                raise GraphError(f"cannot remove interface node {d['name']!r}")
            self._nx.remove_node(nid)
            del self._names[d["name"]]
        self._version += 1

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str], params: Mapping[str, Any] | None = None) -> Path:
        """Write the graph (and optionally ``params``) as ``<stem>.json`` + ``<stem>.npz``.

        See :func:`rnngraph.save`; returns the JSON file's path.
        """
        from rnngraph.ir.serialize import save

        return save(self, path, params)

    # ----------------------------------------------------------------- params
    def init_params(
        self, seed: int = 0, dtype: str | np.dtype = "float32"
    ) -> dict[str, np.ndarray]:
        """Fresh parameter values, reproducible from ``seed``.

        Each parameter draws from its own stream, keyed by the seed and its
        name, so adding a parameter leaves the others' values unchanged.
        """
        from rnngraph.ir.params import initial_value

        return {
            name: initial_value(self, nid, seed, np.dtype(dtype))
            for name, nid in self._params.items()
        }


def _dim(d: Any) -> int | str:
    """A declared dimension: a size, or the name of a symbolic one (see rnngraph.ir.types)."""
    if isinstance(d, str):
        return d
    if isinstance(d, bool) or not isinstance(d, int | np.integer):
        raise ShapeError(
            f"a dimension must be an integer size or the name of a symbolic one, got {d!r}"
        )
    if d < 0:
        raise ShapeError(f"a dimension must be 0 or more, got {d}")
    return int(d)


def _row(what: str, features: Any) -> tuple[int | str, ...]:
    """The per-row shape ``features`` declares (an int, or a sequence of dims)."""
    if isinstance(features, int | np.integer | str) and not isinstance(features, bool):
        features = (features,)
    try:
        dims = tuple(features)
    except TypeError:
        raise ShapeError(
            f"{what}: the shape must be an integer or a tuple of them, got {features!r}"
        ) from None
    try:
        return tuple(_dim(d) for d in dims)
    except ShapeError as e:
        raise ShapeError(f"{what}: {e} (shape {features!r})") from None
