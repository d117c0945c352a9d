"""``to_integer``: a quantised graph as integer arithmetic only.

:func:`rnngraph.quantize` gives each signal an integer grid but computes between the
grids in float (ONNX's Q/DQ form, which onnxruntime and TFLite fuse into their own
integer kernels, each rounding its own way). :func:`to_integer` writes the integer
kernels out as ops of the graph (:mod:`rnngraph.ops.integer`), so their rounding is
*defined* here and any integer-only target can match it bit for bit:

- ``x @ W (+ b)``: an ``int_matmul`` (int8 weights per output channel, the input's
  zero point subtracted, an int32 accumulator whose bound is checked) and an
  ``int_affine`` that adds the bias and requantises with a multiplier and a shift;
- sums, differences, negations and products with constants (a peephole, a time
  constant, ``1 - z``): one ``int_affine`` each, the constants folded into per-channel
  multipliers and an offset;
- the product of two signals (a gate times a state): ``int_mul``;
- any one-operand function (sigmoid, tanh, relu, softsign, ...): ``int_lut``, a table
  over the input's integer range (256 entries for int8, 513 with linear interpolation
  for int16), so a custom cell's nonlinearity costs no more than a standard one's;
- ops that move values (slices, concatenations, reshapes, reads at positions) act on
  the integers; a concatenation first brings each part to the output's grid, a zero
  padding first centres a grid whose zero is not the integer 0 (exactly, one kind wider);
  positions (``top_k``) are computed on the integers as they are (same order, same ties);
- sums along axes, divisions, softmax, layer norms and powers as products by ones,
  ``int_div`` and tables (some need ``integer_only=True`` at quantisation);
- a fixed point iterates on an int16 grid finer than its result's, its body lowered by
  the same rules.

Inputs are quantised as they enter and outputs dequantised as they leave, so the
integer graph is float in and float out like the quantised one; states hold
integers. Its outputs differ from the quantised graph's by the rounding of the
requantisations (about one step of each grid), not by a drift: the test suite bounds
the difference on the zoo's cells, every one of which has an integer form. Ops with
none (a ``log_softmax``, a product of two signals' matrices) are a
:class:`~rnngraph.errors.GraphError` naming the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph, InitSpec, Node
from rnngraph.ir.records import Records
from rnngraph.ir.registry import REFERENCE, lookup
from rnngraph.ir.types import INT_RANGES, TensorType
from rnngraph.ops.fixed import Body, Z
from rnngraph.ops.integer import div_shift_limit, lut_size, spread
from rnngraph.ops.quant import per_axis
from rnngraph.quant.transform import KEEPS_GRID

__all__ = ["LUT_OPS", "Grid", "to_integer"]

LUT_OPS = frozenset(
    {"sigmoid", "tanh", "relu", "abs", "exp", "softsign", "softplus", "hard_sigmoid",
     "leaky_relu", "clip", "heaviside", "erf", "sin", "cos", "sqrt", "log", "atan", "floor",
     "ceil"}
)  # fmt: skip
"""One-operand functions that become tables (``int_lut``)."""

MOVES = frozenset(
    {"slice", "reshape", "transpose", "unsqueeze", "gather", "reduce_max", "reduce_min",
     "pad", "take_along"}
)  # fmt: skip
"""Grid-keeping ops the integer graph computes on the integers as they are (a grid's
scale is positive, so the largest integer is the largest value)."""

POSITIONS = frozenset({"top_k"})
"""Ops giving int64 positions: computed on the integers as they are (a grid's scale is
positive, so the order is the same; equal integers are equal values, so ties too)."""

COMPARES = frozenset({"greater", "less", "equal"})
"""Comparisons of values on grids: the sign of their difference on a fine int32 grid."""

_M_BITS = 31  # multipliers fit an int32: (int64)(int32)*(int32) on a 32-bit core
_ACC_BITS = 62  # the int64 sums before the shift stay below 2**62
_LUT_BITS = 7  # an int16 table samples every 128th value (513 entries)


@dataclass(frozen=True)
class Grid:
    """An integer grid: ``real = (q - zero_point) * scale`` for ``q`` of ``kind``."""

    kind: str
    scale: float
    zero_point: int

    @property
    def bound(self) -> int:
        """The largest ``|q - zero_point|`` the kind holds."""
        return spread(self.kind, self.zero_point)

    def attrs(self) -> dict[str, Any]:
        return {"scale": [self.scale], "zero_point": [self.zero_point], "axis": None}

    def quantize(self, real: Any) -> np.ndarray:
        """``real`` values on this grid (rounded, saturated; as floats)."""
        lo, hi = INT_RANGES[self.kind]
        return np.clip(np.rint(np.asarray(real, np.float64) / self.scale) + self.zero_point, lo, hi)


@dataclass
class _Term:
    """One operand of a weighted integer sum: ``(x - zero_point) * scale``, ``scale``
    one number or one per output channel, ``|x - zero_point| <= bound``."""

    node: int
    zero_point: int
    scale: np.ndarray
    bound: int

    @classmethod
    def on(cls, node: int, grid: Grid) -> _Term:
        """Integer node ``node``, whose values are on ``grid``."""
        return cls(node, grid.zero_point, np.array(grid.scale), grid.bound)


def to_integer(qg: Graph, qp: Mapping[str, Any]) -> tuple[Graph, dict[str, np.ndarray]]:
    """The integer-only form of a quantised graph, and its params.

    Parameters
    ----------
    qg, qp
        A graph and params made by :func:`rnngraph.quantize` (or
        :func:`rnngraph.quant.convert`).

    Returns
    -------
    ig, ip : Graph and dict
        The graph of integer ops (see the module docstring) and its int8 weights:
        ``rg.run(ig, inputs, ip)`` is the integer semantics that the C export for
        microcontrollers reproduces bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("kws")
    >>> g.output("y", rg.linear(rg.cells.gru(g.input("x", 4), 8, name="gru"), 2, name="out"))
    >>> p = g.init_params(seed=0)
    >>> xs = np.random.default_rng(0).normal(size=(20, 8, 4)).astype("float32")
    >>> qg, qp = rg.quantize(g, p, calibration=[{"x": xs}])
    >>> ig, ip = rg.quant.to_integer(qg, qp)
    >>> sorted({n.op for n in ig.nodes()} - {"input", "param", "state", "slice", "constant"})
    ['dequantize', 'int_affine', 'int_lut', 'int_matmul', 'int_mul', 'quantize']
    >>> err = np.abs(rg.run(ig, {"x": xs}, ip)["y"] - rg.run(qg, {"x": xs}, qp)["y"]).max()
    >>> bool(err < 0.05)
    True
    """
    if not any(n.op in ("fake_quant", "dequantize") for n in qg.nodes()):
        raise GraphError(f"graph {qg.name!r} is not quantised: run rg.quantize first")
    return _Lower(qg, qp).build()


def _shift_for(peaks: float, bound: float) -> int:
    """The largest shift ``s <= 62`` whose multipliers (``peaks * 2**s``) fit 31 bits and
    whose sums (``bound * 2**s``) stay below ``2**62``."""
    s = _ACC_BITS
    if peaks > 0:
        s = min(s, int(np.floor(np.log2((2.0**_M_BITS - 1) / peaks))))
    if bound > 0:
        s = min(s, int(np.floor(np.log2(2.0**_ACC_BITS / bound))) - 1)
    return max(s, 0)


class _Lower:
    def __init__(self, qg: Graph, qp: Mapping[str, Any]) -> None:
        self.g, self.qp = qg, dict(qp)
        self.rec = Records(qg, copy=False)
        self.rec.interface = {"inputs": {}, "params": {}, "states": {}, "outputs": {}}
        self.rec.taken = set(qg.outputs)  # (a new graph: the old names are free again)
        self.vals: dict[int, tuple[int, Grid]] = {}  # qg value -> (ig node, its grid)
        self.consts: dict[int, np.ndarray] = {}  # qg values of params/constants only
        self.ints: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # (q, per-entry scale)
        self.named: dict[int, str] = {}  # a folded weight that is one param's: its name
        self.accs: dict[int, _Term] = {}  # fused products x @ W: their accumulators
        self.ip: dict[str, np.ndarray] = {}
        self.pending: list[tuple[int, int]] = []  # (qg state, ig state)
        self.specs: dict[int, tuple[int, InitSpec]] = {}  # ig state: its delay and start
        self.bools: dict[int, int] = {}  # qg comparisons -> their ig bool nodes
        self.positions: dict[int, int] = {}  # qg int64 positions -> their ig nodes
        self.computed: set[int] = set()  # qg values a rule computed (onto their first grid)

    # ---------------------------------------------------------------- helpers
    def node(self, nid: int) -> Node:
        return self.g.node(nid)

    def operands(self, nid: int) -> list[int]:
        return self.g.operand_ids(nid)

    def source(self, name: str, op: str, type_: TensorType, attrs: Mapping[str, Any]) -> int:
        """A new input, state or param node named ``name`` (the interface keeps names)."""
        nid = self.rec.next_id
        self.rec.next_id += 1
        self.rec.nodes[nid] = Node(nid, name, op, type_, dict(attrs), None)
        self.rec.taken.add(name)
        return nid

    def fail(self, nid: int, why: str) -> GraphError:
        n = self.node(nid)
        return GraphError(f"to_integer: node {n.name!r} ({n.op}, {n.type}): {why}")

    @staticmethod
    def grid_of_fq(n: Node) -> Grid:
        if n.attrs["axis"] is not None:
            raise GraphError(f"to_integer: {n.name!r} quantises a signal per channel")
        return Grid(n.attrs["to"], float(n.attrs["scale"][0]), int(n.attrs["zero_point"][0]))

    def static_grid(self, nid: int, seen: frozenset[int] = frozenset()) -> Grid | None:
        """The grid ``nid``'s value is on, from the quantised graph's structure alone."""
        if nid in seen:
            return None
        n = self.node(nid)
        if n.op == "fake_quant":
            return self.grid_of_fq(n)
        if n.op == "state":
            for _, r, _ in self.g.nx_graph.out_edges(nid, keys=True):
                if self.node(r).op == "fake_quant":
                    return self.grid_of_fq(self.node(r))
        if n.op in ("state", "delay") or n.op in KEEPS_GRID:
            return self.static_grid(self.operands(nid)[0], seen | {nid})
        return None

    # ---------------------------------------------------------------- the walk
    def build(self) -> tuple[Graph, dict[str, np.ndarray]]:
        g = self.g
        for nid in nx.topological_sort(g.zero_delay_view()):
            n = self.node(nid)
            if not n.type.batched and n.op != "input":
                self.fold(nid)
            elif n.op == "input":
                self.rec.interface["inputs"][n.name] = self.source(n.name, "input", n.type, n.attrs)
            elif n.op in ("state", "delay"):
                self.delayed(nid)
            elif n.op == "fake_quant":
                self.quantised(nid)
            elif n.op in MOVES and self.operands(nid)[0] in self.vals:
                self.move(nid)
            elif n.op == "stop_gradient" and self.operands(nid)[0] in self.vals:
                self.vals[nid] = self.vals[self.operands(nid)[0]]  # (integers: no gradient)
            elif n.op in COMPARES:
                self.compare(nid)
            elif n.op in POSITIONS and self.operands(nid)[0] in self.vals:
                v = self.vals[self.operands(nid)[0]][0]
                self.positions[nid] = self.rec.add(n.op, n.attrs, [v], n.name)
        for qs, s in self.pending:
            self.store(qs, s)
        for name, nid in g.output_nodes().items():
            if nid not in self.vals:
                raise self.fail(nid, f"output {name!r} is not on an integer grid")
            v, grid = self.vals[nid]
            d = self.rec.add("dequantize", grid.attrs(), [v], name, "dequantized")
            self.rec.interface["outputs"][name] = d
        ig = self.rec.build(f"{g.name}_int")
        ig.meta["integer"] = {"from": g.name}
        return ig, self.ip

    def fold(self, nid: int) -> None:
        """A value of params and constants: computed now; int8 weights tracked exactly."""
        n = self.node(nid)
        args = [self.consts[u] for u in self.operands(nid)]
        if n.op == "param":
            self.consts[nid] = np.asarray(self.qp[n.name])
            self.named[nid] = n.name
            return
        if n.op == "constant":
            self.consts[nid] = np.asarray(self.g.arrays[n.attrs["array"]], np.float64)
            return
        attrs = {**n.attrs, "float_dtype": np.float64}
        self.consts[nid] = np.asarray(REFERENCE[n.op](attrs, *args), np.float64)
        ops = self.operands(nid)
        if n.op == "dequantize" and self.node(ops[0]).op == "param":
            q = np.asarray(self.qp[self.node(ops[0]).name])
            scale = per_axis(n.attrs["scale"], n.attrs["axis"], np.float64)
            self.ints[nid] = (q.astype(np.int64), np.broadcast_to(scale, q.shape))
        elif n.op in ("transpose", "slice", "reshape", "concat") and all(
            u in self.ints for u in ops
        ):
            qs = [self.ints[u][0] for u in ops]
            ss = [self.ints[u][1] for u in ops]
            self.ints[nid] = (REFERENCE[n.op](n.attrs, *qs), REFERENCE[n.op](n.attrs, *ss))
        if len(ops) == 1 and ops[0] in self.named and n.op in ("dequantize", "transpose"):
            self.named[nid] = self.named[ops[0]] + (".T" if n.op == "transpose" else "")

    def delayed(self, nid: int) -> None:
        """A state, or a delayed read (``rg.delay``): integers on its value's grid; the
        edge from the value it reads is added once that value is lowered."""
        n = self.node(nid)
        grid = self.static_grid(nid)
        if grid is None:
            raise self.fail(nid, "it holds a float (no grid): quantise the graph first")
        ((_, delay, init),) = self.g.operands(nid)
        if init.kind == "input":
            raise self.fail(nid, "a caller-given initial state has no integer form yet")
        spec = init
        if init.kind != "zeros" or grid.zero_point:  # the start on the state's grid
            row = tuple(int(d) for d in n.type.row_shape)
            src = {"zeros": None, "param": self.qp, "array": self.g.arrays}[init.kind]
            q = grid.quantize(np.zeros(row) if src is None else src[str(init.ref)])
            name = self.rec.fresh(n.name, "init")
            self.rec.arrays[name] = np.broadcast_to(q, np.broadcast_shapes(q.shape, row)).astype(
                np.dtype(grid.kind)
            )
            spec = InitSpec("array", name)
        attrs = {**n.attrs, "init": spec.to_json()} if n.op == "state" else dict(n.attrs)
        s = self.source(n.name, n.op, TensorType(n.type.shape, grid.kind), attrs)
        if n.op == "state":
            self.rec.interface["states"][n.name] = s
        self.vals[nid] = (s, grid)
        self.pending.append((nid, s))
        self.specs[s] = (delay, spec)

    def store(self, qs: int, s: int) -> None:
        ((src, _, _),) = self.g.operands(qs)
        if src not in self.vals:
            raise self.fail(qs, f"the value it stores, {self.node(src).name!r}, has no grid")
        v = self.requantize(*self.vals[src], self.vals[qs][1], self.node(qs).name)
        delay, spec = self.specs[s]
        self.rec.edges.append((v, s, 0, delay, spec))

    def move(self, nid: int) -> None:
        n = self.node(nid)
        u = self.operands(nid)
        if any(x not in self.vals for x in u[:1]) or any(
            x not in self.vals and x not in self.positions for x in u[1:]
        ):
            return
        v, grid = self.vals[u[0]]
        if n.op == "pad" and grid.zero_point:  # zeros are the integer 0 on a grid centred
            wide = Grid("int16" if grid.kind == "int8" else "int32", grid.scale, 0)
            centred = self.requantize(v, grid, wide, n.name)  # (exact: q - zero point)
            self.vals[nid] = (self.rec.add("pad", n.attrs, [centred], n.name), wide)
            return
        args = [self.positions[x] if x in self.positions else self.vals[x][0] for x in u]
        self.vals[nid] = (self.rec.add(n.op, n.attrs, args, n.name), grid)

    def quantised(self, fq: int) -> None:
        (src,) = self.operands(fq)
        grid = self.grid_of_fq(self.node(fq))
        s = self.node(src)
        if s.op == "input":
            attrs = {**grid.attrs(), "to": grid.kind}
            v = self.rec.add("quantize", attrs, [self.rec.interface["inputs"][s.name]], s.name, "q")
            self.vals[src] = self.vals[fq] = (v, grid)
            return
        if src in self.vals and src not in self.computed:  # a state's, a moved value's
            self.vals[fq] = (self.requantize(*self.vals[src], grid, s.name), grid)
            return
        rule = RULES.get(s.op)
        if rule is None and s.op in LUT_OPS:
            rule = _lut
        if rule is None:
            raise self.fail(
                src,
                f"no integer-only form; ops that have one: {sorted({*RULES, *LUT_OPS, *MOVES})}",
            )
        # (a value on two grids, as after common subexpressions are merged, is computed
        # onto each, as the Q/DQ graph rounds the float onto each)
        self.vals[fq] = (rule(self, src, grid), grid)
        if src not in self.computed:
            self.vals[src] = self.vals[fq]
            self.computed.add(src)

    # ---------------------------------------------------------------- terms
    def term(self, u: int, reader: int) -> _Term | np.ndarray:
        """Operand ``u`` of a sum: an integer term, or a float constant."""
        if u in self.vals:
            return _Term.on(*self.vals[u])
        if u in self.consts:
            return self.consts[u]
        if u in self.accs:
            return self.accs[u]
        n = self.node(u)
        if n.op == "matmul":
            acc = self.product(u)
            self.accs[u] = acc
            return acc
        raise self.fail(
            reader, f"operand {n.name!r} ({n.op}) is a float value, not on an integer grid"
        )

    def signal(self, u: int, reader: int) -> tuple[int, Grid]:
        if u not in self.vals:
            raise self.fail(reader, f"operand {self.node(u).name!r} is not on an integer grid")
        return self.vals[u]

    def weights(self, w: int, reader: int) -> tuple[np.ndarray, np.ndarray]:
        """A (K, N) weight as int8 and its per-column scales: the quantised param's own
        integers where the column has one scale, else requantised from its floats."""
        if w not in self.consts:
            raise self.fail(reader, "multiplies two signals; int_matmul takes a weight matrix")
        wf = self.consts[w]
        if wf.ndim != 2:
            raise self.fail(reader, f"its weight has shape {wf.shape}; int_matmul takes (K, N)")
        if w in self.ints:
            q, s = self.ints[w]
            if np.all(s == s[:1]) and np.abs(q).max(initial=0) <= 127:
                return q.astype(np.int8), np.asarray(s[0], np.float64)
        peak = np.abs(wf).max(axis=0)
        scales = np.where(peak > 0, peak / 127, 1.0)
        return np.clip(np.rint(wf / scales), -127, 127).astype(np.int8), scales

    def product(self, mm: int) -> _Term:
        """``x @ W`` as an int32 accumulator: its term (scale ``s_x * s_W`` per column)."""
        x, w = self.operands(mm)
        q, scales = self.weights(w, mm)
        name = self.named.get(w, f"{self.node(mm).name}.W")
        return self.int_product(*self.signal(x, mm), q, scales, name, mm)

    def int_product(
        self, v: int, grid: Grid, q: np.ndarray, scales: Any, name: str, reader: int
    ) -> _Term:
        """Integer node ``v`` (on ``grid``) times the int8 matrix ``q`` (a new param
        ``name``, columns scaled by ``scales``): one ``int_matmul``, its accumulator."""
        bound = int(grid.bound * np.abs(q.astype(np.int64)).sum(axis=0).max(initial=0))
        if bound >= 2**31:
            raise self.fail(reader, f"its int32 accumulator could reach {bound}: split the product")
        name = name if name not in self.rec.taken else self.rec.fresh(name, "int")
        attrs = {"init": "zeros", "scale": None}
        pid = self.source(name, "param", TensorType(q.shape, "int8"), attrs)
        self.rec.interface["params"][name] = pid
        self.ip[name] = q
        zps = {"zero_points": [grid.zero_point, 0]}
        acc = self.rec.add("int_matmul", zps, [v, pid], self.node(reader).name, "acc")
        return _Term(acc, 0, grid.scale * np.asarray(scales, np.float64), bound)

    # ---------------------------------------------------------------- emitters
    def affine(
        self,
        terms: list[tuple[_Term, Any]],
        const: np.ndarray | float,
        grid: Grid,
        base: str,
        row: tuple[Any, ...],
    ) -> int:
        """``sum_i c_i * term_i + const`` on ``grid``: one ``int_affine``."""
        width = int(row[-1]) if row and isinstance(row[-1], int) else 1
        reals = [np.asarray(c * t.scale / grid.scale, np.float64) for t, c in terms]
        offset = np.asarray(const, np.float64) / grid.scale
        for a in (*reals, offset):
            if a.ndim > 1 or (a.ndim == 1 and a.size not in (1, width)):
                raise GraphError(
                    f"to_integer: {base!r}: a constant of shape {a.shape} is not one number "
                    f"or one per entry of the last axis ({width})"
                )
        peaks = max((float(np.abs(m).max(initial=0)) for m in reals), default=0.0)
        bound = sum(
            t.bound * float(np.abs(m).max(initial=0))
            for (t, _), m in zip(terms, reals, strict=True)
        )
        bound += float(np.abs(offset).max(initial=0)) + 1
        shift = _shift_for(peaks, bound)

        attrs = {
            "zero_points": [t.zero_point for t, _ in terms],
            "shift": shift,
            "zero_point": grid.zero_point,
            "to": grid.kind,
        }
        mults = [self.vector(m * 2.0**shift, f"{base}.m{i}") for i, m in enumerate(reals)]
        operands = [t.node for t, _ in terms] + mults + [self.vector(offset * 2.0**shift, base)]
        return self.rec.add("int_affine", attrs, operands, base)

    def vector(self, values: Any, base: str) -> int:
        """An int64 constant of ``values`` rounded: one entry, or one per channel."""
        arr = np.atleast_1d(np.rint(np.asarray(values, np.float64))).astype(np.int64)
        return self.rec.constant(arr, base)

    def compare(self, nid: int) -> None:
        """``a > b`` (``<``, ``==``) as the sign of ``a - b`` on an int32 grid finer than
        either operand's (exact where the grids' ratio is a power of two, as a clock's)."""
        n = self.node(nid)
        a, b = (self.term(u, nid) for u in self.operands(nid))
        terms = [(t, c) for t, c in ((a, 1.0), (b, -1.0)) if isinstance(t, _Term)]
        if not terms:
            raise self.fail(nid, "compares two constants in a signal's place")
        const = sum(c * t for t, c in ((a, 1.0), (b, -1.0)) if not isinstance(t, _Term))
        fine = min(float(np.min(t.scale)) for t, _ in terms) / 16
        row = n.type.row_shape
        d = self.affine(terms, const, Grid("int32", fine, 0), f"{n.name}.difference", row)
        zero = self.rec.add("cast", {"to": "int32"}, [self.vector(0, n.name)], n.name, "zero")
        self.bools[nid] = self.rec.add(n.op, {}, [d, zero], n.name)

    def on_grid(self, value: Any, grid: Grid, base: str) -> int:
        """A constant (one number, or one per entry of the last axis) on ``grid``."""
        q = grid.quantize(value)
        return self.rec.add("cast", {"to": grid.kind}, [self.vector(q, base)], base, "grid")

    def branch(self, u: int, grid: Grid, reader: int) -> int:
        """Operand ``u`` of a selection, on the output's grid."""
        if u in self.vals:
            return self.requantize(*self.vals[u], grid, self.node(reader).name)
        t = self.term(u, reader)
        if not isinstance(t, _Term):
            return self.on_grid(t, grid, self.node(reader).name)
        return self.affine([(t, 1.0)], 0.0, grid, self.node(reader).name, ())

    def table(
        self, v: int, have: Grid, fn: Any, grid: Grid, n: Node, tag: str | None = None
    ) -> int:
        """``fn`` of integer node ``v`` (on ``have``) onto ``grid``: an ``int_lut`` over
        ``have``'s integer range (undefined entries: the nearest defined one's value)."""
        if have.kind not in ("int8", "int16"):
            raise self.fail(n.id, f"a table needs an int8 or int16 operand, got {have.kind}")
        lo = INT_RANGES[have.kind][0]
        bits = 0 if have.kind == "int8" else _LUT_BITS
        size = lut_size(have.kind, bits)
        xs = lo + (np.arange(size, dtype=np.int64) << bits)
        real = (xs - have.zero_point).astype(np.float64) * have.scale
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            ys = _nearest_defined(np.asarray(fn(real), np.float64))
            q = np.clip(np.rint(ys / grid.scale) + grid.zero_point, -(2**31), 2**31 - 1)
        attrs = {"lo": int(lo), "bits": bits, "to": grid.kind}
        base = f"{n.name}.{tag}" if tag else n.name
        return self.rec.add("int_lut", attrs, [v, self.vector(q, f"{base}.table")], n.name, tag)

    def signal_product(self, a: _Term, b: _Term, grid: Grid, base: str) -> int:
        """The product of two integer terms on ``grid``: one ``int_mul``."""
        m = float(a.scale * b.scale / grid.scale)
        bound = float(a.bound) * b.bound * abs(m) + 1
        shift = _shift_for(abs(m), bound)
        attrs = {
            "zero_points": [a.zero_point, b.zero_point],
            "shift": shift,
            "zero_point": grid.zero_point,
            "to": grid.kind,
        }
        operands = [a.node, b.node, self.vector(m * 2.0**shift, base), self.vector(0, base)]
        return self.rec.add("int_mul", attrs, operands, base)

    def quotient(self, a: _Term, b: _Term, grid: Grid, nid: int, tag: str | None = None) -> int:
        """``a / b`` on ``grid``: one ``int_div``, its multiplier the grids' ratio ``s_a /
        (s_b * s_y)`` in fixed point (one, or one per entry of the last axis)."""
        n = self.node(nid)
        ratio = np.asarray(a.scale / (b.scale * grid.scale), np.float64)
        width = n.type.row_shape[-1] if n.type.row_shape else 1
        if ratio.ndim > 1 or (ratio.ndim == 1 and ratio.size not in (1, width)):
            raise self.fail(nid, f"its numerator's constant of shape {ratio.shape} is not one "
                                 f"number or one per entry of the last axis")  # fmt: skip
        peak = float(np.abs(ratio).max(initial=0))
        m_bits = min(_M_BITS, _ACC_BITS - 1 - a.bound.bit_length())
        shift = div_shift_limit(self.rec.type(b.node).dtype, b.zero_point)
        if peak > 0:
            shift = min(shift, int(np.floor(np.log2((2.0**m_bits - 1) / peak))))
        if shift < 0:
            raise self.fail(
                nid, f"its grids' ratio {peak:.3g} does not fit a {m_bits}-bit multiplier"
            )
        attrs = {
            "zero_points": [a.zero_point, b.zero_point],
            "shift": shift,
            "zero_point": grid.zero_point,
            "to": grid.kind,
        }
        m = self.vector(ratio * 2.0**shift, n.name)
        return self.rec.add("int_div", attrs, [a.node, b.node, m], n.name, tag)

    def axes_last(self, v: int, rank: int, axes: Any, base: str) -> tuple[int, list[int]]:
        """Integer node ``v`` (rows of ``rank`` axes) with ``axes`` (counted from the end)
        moved last, and the permutation (the other axes first, in order)."""
        moved = [rank + int(a) for a in axes]
        perm = [i for i in range(rank) if i not in moved] + moved
        if perm != list(range(rank)):
            v = self.rec.add("transpose", {"perm": perm}, [v], base, "moved")
        return v, perm

    def axes_back(self, y: int, perm: list[int], base: str) -> int:
        """The inverse of :meth:`axes_last`'s move on ``y`` (itself if nothing moved)."""
        if perm == list(range(len(perm))):
            return y
        return self.rec.add("transpose", {"perm": [perm.index(i) for i in range(len(perm))]},
                            [y], base)  # fmt: skip

    def requantize(self, v: int, have: Grid, want: Grid, base: str) -> int:
        """Integer node ``v`` from grid ``have`` onto grid ``want`` (itself if they agree)."""
        if have == want:
            return v
        return self.affine([(_Term.on(v, have), 1.0)], 0.0, want, f"{base}.requantized", ())


# ------------------------------------------------------------------ rules
def _linear(signs: tuple[float, ...]) -> Any:
    def rule(self: _Lower, nid: int, grid: Grid) -> int:
        n = self.node(nid)
        terms: list[tuple[_Term, Any]] = []
        const: Any = 0.0
        for u, sign in zip(self.operands(nid), signs, strict=True):
            t = self.term(u, nid)
            if isinstance(t, _Term):
                terms.append((t, sign))
            else:
                const = const + sign * t
        if not terms:
            raise self.fail(nid, "computes a constant in a signal's place")
        return self.affine(terms, const, grid, n.name, n.type.row_shape)

    return rule


def _mul(self: _Lower, nid: int, grid: Grid) -> int:
    n = self.node(nid)
    a, b = (self.term(u, nid) for u in self.operands(nid))
    if isinstance(a, _Term) and isinstance(b, _Term):
        return self.signal_product(a, b, grid, n.name)
    if isinstance(a, _Term) or isinstance(b, _Term):
        t, c = (a, b) if isinstance(a, _Term) else (b, a)
        assert isinstance(t, _Term)
        c = np.asarray(c, np.float64)
        row = n.type.row_shape
        width = int(row[-1]) if row and isinstance(row[-1], int) else 1
        if c.ndim <= 1 and c.size in (1, width):
            return self.affine([(t, c)], 0.0, grid, n.name, row)
        return _by_entries(self, nid, t, c, grid)
    raise self.fail(nid, "multiplies two constants in a signal's place")


_MASK_VALUES = 4


def _by_entries(self: _Lower, nid: int, t: _Term, c: np.ndarray, grid: Grid) -> int:
    """A product by a constant that differs along more than the last axis (a mask, as
    the DNC's zero diagonal): the product by each of its few distinct values, chosen
    entry by entry (``where`` on constant conditions)."""
    n = self.node(nid)
    values = np.unique(c)
    if values.size > _MASK_VALUES:
        raise self.fail(
            nid,
            f"multiplies by a constant of shape {c.shape} with {values.size} distinct entries; "
            f"the integer form takes one number, one per entry of the last axis, or at most "
            f"{_MASK_VALUES} distinct entries",
        )
    y = self.affine([(t, values[0])], 0.0, grid, n.name, ())
    for j, value in enumerate(values[1:], 1):
        at = self.vector((c == value).astype(np.int64), f"{n.name}.at{j}")
        cond = self.rec.add("cast", {"to": "bool"}, [at], n.name, f"at{j}")
        yj = self.affine([(t, value)], 0.0, grid, f"{n.name}.by{j}", ())
        y = self.rec.add("where", {}, [cond, yj, y], n.name)
    return y


def _pow(self: _Lower, nid: int, grid: Grid) -> int:
    """``a ** c`` for a constant ``c``: a table over ``a``'s grid. ``a ** b`` of two
    signals: ``exp(b * log a)``, ``log a`` as a table onto an int16 grid spanning the logs
    of ``a``'s grid (from its smallest positive step; ``log 0`` saturates there), the
    product an ``int_mul`` onto an int16 grid spanning what ``b``'s grid can make of it,
    then ``exp`` as a table onto the output's grid."""
    n = self.node(nid)
    ua, ub = self.operands(nid)
    ta, tb = self.term(ua, nid), self.term(ub, nid)
    if not isinstance(tb, _Term):
        c = np.asarray(tb, np.float64)
        if c.size != 1:
            raise self.fail(nid, f"its exponent has shape {c.shape}; a table takes one number")
        v, have = self.signal(ua, nid)
        return self.table(v, have, lambda x: np.power(x, float(c.ravel()[0])), grid, n)
    if not isinstance(ta, _Term):
        base_ = np.asarray(ta, np.float64)
        if base_.size != 1 or float(base_.ravel()[0]) <= 0:
            raise self.fail(nid, "raises a constant that is not one positive number to a power")
        v, have = self.signal(ub, nid)
        return self.table(v, have, lambda x: np.power(float(base_.ravel()[0]), x), grid, n)
    (va, ga), (vb, gb) = self.signal(ua, nid), self.signal(ub, nid)
    top = INT_RANGES["int16"][1]
    largest = max((INT_RANGES[ga.kind][1] - ga.zero_point) * ga.scale, ga.scale)
    span = max(abs(np.log(ga.scale)), abs(np.log(largest)))
    logs = Grid("int16", span / top, 0)
    la = self.table(va, ga, np.log, logs, n, "log")
    reach = span * gb.bound * gb.scale
    prod = Grid("int16", reach / top, 0)
    p = self.signal_product(_Term.on(la, logs), _Term.on(vb, gb), prod, f"{n.name}.exponent")
    return self.table(p, prod, np.exp, grid, n, "exp")


def _matmul(self: _Lower, nid: int, grid: Grid) -> int:
    t = self.product(nid)
    return self.affine([(t, 1.0)], 0.0, grid, self.node(nid).name, self.node(nid).type.row_shape)


def _concat(self: _Lower, nid: int, grid: Grid) -> int:
    n = self.node(nid)
    parts = [self.requantize(*self.signal(u, nid), grid, n.name) for u in self.operands(nid)]
    return self.rec.add("concat", n.attrs, parts, n.name)


def _lut(self: _Lower, nid: int, grid: Grid) -> int:
    n = self.node(nid)
    (u,) = self.operands(nid)
    v, have = self.signal(u, nid)
    fn = REFERENCE[n.op]
    return self.table(v, have, lambda x: fn({**n.attrs, "float_dtype": np.float64}, x), grid, n)


def _softmax(self: _Lower, nid: int, grid: Grid) -> int:
    """``softmax`` on integers: the row's largest value taken off (``reduce_max`` on the
    integers, then an ``int_affine`` onto an int16 grid whose range is just every possible
    difference, so that the table's samples are dense), ``exp`` as a table onto an int16
    grid of (0, 1], the row's sum as a product by ones, and each share an ``int_div``."""
    n = self.node(nid)
    (u,) = self.operands(nid)
    v, have = self.signal(u, nid)
    v, perm = self.axes_last(v, len(n.type.row_shape), [int(n.attrs["axis"])], n.name)
    top = self.rec.add("reduce_max", {"axes": [-1], "keepdims": True}, [v], n.name, "top")
    diff = Grid("int16", have.scale * 2 * have.bound / INT_RANGES["int16"][1], 0)
    terms = [(_Term.on(v, have), 1.0), (_Term.on(top, have), -1.0)]
    d = self.affine(terms, 0.0, diff, f"{n.name}.less_top", ())
    unit = Grid("int16", 1.0 / INT_RANGES["int16"][1], 0)
    e = self.table(d, diff, np.exp, unit, n, "exp")
    width = int(self.rec.type(e).row_shape[-1])
    total = self.int_product(e, unit, np.ones((width, 1), np.int8), 1.0, f"{n.name}.ones", nid)
    y = self.quotient(_Term.on(e, unit), total, grid, nid, "share")
    return self.axes_back(y, perm, n.name)


def _nearest_defined(ys: np.ndarray) -> np.ndarray:
    """A table's undefined entries (``sqrt`` or ``log`` below 0) take the nearest defined
    entry's value (the function at the edge of its domain, ``log(0) = -inf`` saturating)."""
    bad = np.isnan(ys)
    if not bad.any() or bad.all():
        return np.where(bad, 0.0, ys)
    good = np.flatnonzero(~bad)
    idx = np.arange(ys.size)
    pos = np.searchsorted(good, idx)
    left, right = good[np.clip(pos - 1, 0, good.size - 1)], good[np.clip(pos, 0, good.size - 1)]
    return ys[np.where(np.abs(idx - left) <= np.abs(right - idx), left, right)]


def _sums(self: _Lower, nid: int, grid: Grid) -> int:
    """``reduce_sum``, ``reduce_mean``, ``cumsum``: the summed axes moved last, then a
    product by int8 ones (a triangle of ones for ``cumsum``): ``int_matmul``'s exact int32
    sums, which every integer target computes already; then onto the output's grid."""
    n = self.node(nid)
    (u,) = self.operands(nid)
    v, have = self.signal(u, nid)
    row = self.node(u).type.row_shape
    if not all(isinstance(d, int) for d in row):
        raise self.fail(nid, f"sums over a row of symbolic shape {row}")
    r = len(row)
    axes = [n.attrs["axis"]] if n.op == "cumsum" else list(n.attrs["axes"])
    v, perm = self.axes_last(v, r, axes, n.name)
    kept, summed = perm[: r - len(axes)], perm[r - len(axes) :]
    k = int(np.prod([row[i] for i in summed], dtype=np.int64))
    if len(summed) > 1:
        v = self.rec.add("reshape", {"shape": [*(row[i] for i in kept), k], "in_rank": r}, [v],
                         n.name, "rows")  # fmt: skip
    if n.op == "cumsum":
        i, j = np.ogrid[:k, :k]
        ones = (i >= j) if n.attrs["reverse"] else (i <= j)
        ones = ones & (i != j) if n.attrs["exclusive"] else ones
    else:
        ones = np.ones((k, 1), bool)
    acc = self.int_product(v, have, ones.astype(np.int8), 1.0, f"{n.name}.ones", nid)
    coef = 1.0 / k if n.op == "reduce_mean" else 1.0
    y = self.affine([(acc, coef)], 0.0, grid, n.name, ())
    if n.op == "cumsum":
        return self.axes_back(y, perm, n.name)
    out = list(n.type.row_shape)
    if list(self.rec.type(y).row_shape) == out:
        return y
    return self.rec.add("reshape", {"shape": out, "in_rank": len(kept) + 1}, [y], n.name)


def _extreme(self: _Lower, nid: int, grid: Grid) -> int:
    """``minimum`` / ``maximum``: both operands on the output's grid (a monotone map),
    then the integers compared."""
    n = self.node(nid)
    parts = [self.branch(u, grid, nid) for u in self.operands(nid)]
    return self.rec.add(n.op, {}, parts, n.name)


def _div(self: _Lower, nid: int, grid: Grid) -> int:
    """``a / b``: by a constant, an ``int_affine``; by a signal, an ``int_div`` whose
    multiplier is the grids' ratio ``s_a / (s_b * s_y)`` in fixed point (a constant
    numerator: the integer 1 scaled by it)."""
    n = self.node(nid)
    a, b = (self.term(u, nid) for u in self.operands(nid))
    if not isinstance(b, _Term):
        if not isinstance(a, _Term):
            raise self.fail(nid, "divides two constants in a signal's place")
        recip = 1.0 / np.asarray(b, np.float64)
        return self.affine([(a, recip)], 0.0, grid, n.name, n.type.row_shape)
    if not isinstance(a, _Term):  # the integer 1, scaled by the constant
        one = self.rec.add("cast", {"to": "int8"}, [self.vector(1, n.name)], n.name, "one")
        a = _Term(one, 0, np.asarray(a, np.float64), 1)
    return self.quotient(a, b, grid, nid)


def _where(self: _Lower, nid: int, grid: Grid) -> int:
    c, a, b = self.operands(nid)
    if c not in self.bools:
        raise self.fail(nid, f"its condition {self.node(c).name!r} is not a comparison of grids")
    n = self.node(nid)
    branches = [self.branch(u, grid, nid) for u in (a, b)]
    return self.rec.add("where", {}, [self.bools[c], *branches], n.name)


def _cast(self: _Lower, nid: int, grid: Grid) -> int:
    """A comparison as 0.0 / 1.0 (spikes): one of two constants on the grid. Positions
    (``top_k``'s): onto the grid. A value on a grid cast to an integer kind and back
    (truncation toward zero, saturated): a table."""
    (c,) = self.operands(nid)
    n = self.node(nid)
    if c in self.bools:
        ones, zeros = self.on_grid(1.0, grid, n.name), self.on_grid(0.0, grid, n.name)
        return self.rec.add("where", {}, [self.bools[c], ones, zeros], n.name)
    if c in self.positions:  # (positions 0 .. n - 1 along the axis sorted: a term of scale 1)
        src = self.node(c)
        length = self.node(self.operands(c)[0]).type.row_shape[int(src.attrs["axis"])]
        if not isinstance(length, int):
            raise self.fail(nid, f"casts positions along an axis of symbolic length {length}")
        narrow = self.rec.add("cast", {"to": "int32"}, [self.positions[c]], n.name, "int32")
        t = _Term(narrow, 0, np.array(1.0), length)
        return self.affine([(t, 1.0)], 0.0, grid, n.name, ())
    inner = self.node(c)
    kinds = {**INT_RANGES, "int64": (-(2**63), 2**63 - 1)}
    if inner.op == "cast" and inner.attrs["to"] in kinds and self.operands(c)[0] in self.vals:
        lo, hi = kinds[inner.attrs["to"]]
        v, have = self.vals[self.operands(c)[0]]
        return self.table(v, have, lambda x: np.clip(np.trunc(x), lo, hi), grid, n)
    raise self.fail(nid, "casts a value that is not a comparison, positions or a grid's integers")


def _zeros_like(self: _Lower, nid: int, grid: Grid) -> int:
    """Zeros on the grid: the integer 0 moved to the grid's zero point."""
    n = self.node(nid)
    v, have = self.signal(self.operands(nid)[0], nid)
    z = self.rec.add("zeros_like", {}, [v], n.name)
    return self.requantize(z, Grid(have.kind, grid.scale, 0), grid, n.name)


def _scatter_add_along(self: _Lower, nid: int, grid: Grid) -> int:
    """``base`` plus ``values`` at computed positions: both on an int32 grid finer than
    the output's (``2**k`` steps to its one, as fine as every position adding at one
    place leaves room for), summed there, then onto the output's grid (one rounding,
    as the float sum's)."""
    n = self.node(nid)
    base, idx, vals = self.operands(nid)
    if idx not in self.positions:
        raise self.fail(nid, f"its positions {self.node(idx).name!r} are not computed on grids")
    b, v = self.signal(base, nid), self.signal(vals, nid)
    count = self.node(idx).type.row_shape[int(n.attrs["axis"])]
    if not isinstance(count, int):
        raise self.fail(nid, f"adds along an axis of symbolic length {count}")
    peak = (b[1].bound * b[1].scale + count * v[1].bound * v[1].scale) / grid.scale
    k = min(int(np.floor(np.log2(2.0**30 / max(peak, 1.0)))), 16)
    if k < 0:
        raise self.fail(nid, f"its sums reach {peak:.3g} steps of the output's grid")
    fine = Grid("int32", grid.scale / 2**k, 0)
    parts = [self.requantize(*x, fine, n.name) for x in (b, v)]
    s = self.rec.add(n.op, n.attrs, [parts[0], self.positions[idx], parts[1]], n.name)
    return self.requantize(s, fine, grid, n.name)


# ------------------------------------------------------------ fixed points
def _body_table(
    self: _Lower, nid: int, bn: Any, fn: Any, v: int, have: Grid, m: float, k: Any
) -> tuple[str, int, Grid]:
    """``fn(m * x + k)`` of integer node ``v`` (on ``have``) as a table onto an int16
    grid spanning its values over ``have``'s range."""
    f = lambda x: fn({**bn.attrs, "float_dtype": np.float64}, m * x + k)  # noqa: E731
    lo, hi = INT_RANGES[have.kind]
    xs = (np.arange(lo, hi + 1, dtype=np.float64) - have.zero_point) * have.scale
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        span = float(np.nanmax(np.abs(f(xs)), initial=0.0))
    out = Grid("int16", max(span, 1e-12) / INT_RANGES["int16"][1], 0)
    node = Node(nid, bn.name, bn.op, self.node(nid).type, dict(bn.attrs), None)
    return ("int", self.table(v, have, f, out, node), out)


_FINE_STEPS = 64
"""A fixed point iterates on an int16 grid this many times finer than its result's (and
centred): its roundings stay far below the result's step, with room for transients."""


class _BodyRecords:
    """Records for a fixed point's body: a node reading the iterated value (``self.z``)
    or another body node becomes a body node (ids from :attr:`BASE`); anything else (a
    table, a multiplier, a weight) is an ordinary node of the integer graph, which the
    body reads as a capture."""

    BASE = 1 << 40

    _OWN = frozenset({"rec", "z", "z_type", "body", "types", "captures"})

    def __init__(self, rec: Records, z_type: TensorType) -> None:
        self.rec, self.z, self.z_type = rec, self.BASE - 1, z_type
        self.body: list[dict[str, Any]] = []
        self.types: list[TensorType] = []
        self.captures: list[int] = []

    def __getattr__(self, name: str) -> Any:  # (constant, fresh, nodes...: the graph's)
        return getattr(self.rec, name)

    def __setattr__(self, name: str, value: Any) -> None:  # (next_id...: the graph's)
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.rec, name, value)

    def inside(self, u: int) -> bool:
        return u >= self.z

    def type(self, u: int) -> TensorType:
        if u == self.z:
            return self.z_type
        return self.types[u - self.BASE] if u >= self.BASE else self.rec.type(u)

    def ref(self, u: int) -> int:
        if u == self.z:
            return Z
        if u >= self.BASE:
            return u - self.BASE
        if u not in self.captures:
            self.captures.append(u)
        return -2 - self.captures.index(u)

    def add(
        self,
        op: str,
        attrs: Mapping[str, Any],
        operands: Any,
        base: str,
        tag: str | None = None,
        *,
        type_: TensorType | None = None,
    ) -> int:
        if not any(self.inside(u) for u in operands):
            return self.rec.add(op, attrs, operands, base, tag, type_=type_)
        t = type_ or lookup(op).infer([self.type(u) for u in operands], attrs)
        name = f"{base}.{tag}" if tag else base
        self.body.append(
            {"name": f"{name}#{len(self.body)}", "op": op, "attrs": dict(attrs),
             "shape": list(t.shape), "dtype": t.dtype, "args": [self.ref(u) for u in operands]}
        )  # fmt: skip
        self.types.append(t)
        return self.BASE + len(self.body) - 1


def _fixed_point(self: _Lower, nid: int, grid: Grid) -> int:
    """A fixed point iterated on integers: the iterate on an int16 grid
    :data:`_FINE_STEPS` times finer than the result's; the body's sums and products by
    constants as terms, a product by a weight an ``int_matmul``, a one-operand function of
    one term a table (onto an int16 grid spanning its values), the new iterate one
    ``int_affine``; a row stops when no entry moves by more than a step of the fine grid
    (or after ``max_iter``), then the result is requantised onto its grid."""
    n = self.node(nid)
    if n.attrs.get("report", "value") != "value":
        raise self.fail(nid, "counts iterations; the integer form gives the value only")
    body = Body.of(n.attrs)
    z0, *caps = self.operands(nid)
    fine = Grid("int16", grid.scale / _FINE_STEPS, 0)
    start = self.requantize(*self.signal(z0, nid), fine, f"{n.name}.start")
    outer = self.rec
    inner = _BodyRecords(outer, TensorType(n.type.shape, "int16"))
    self.rec = inner  # type: ignore[assignment]  # (the helpers add through it)
    try:
        values: list[Any] = []
        for bn in body.nodes:
            args = [body.pick(a, ("int", inner.z, fine), [_capture(self, u, nid) for u in caps],
                              values) for a in bn.args]  # fmt: skip
            values.append(_body_value(self, nid, bn, args))
        terms, const = _linear_form(values[-1])
        if not terms:
            raise self.fail(nid, "its body's value does not depend on the iterate")
        new = self.affine(terms, const, fine, f"{n.name}.next", n.type.row_shape)
        if not inner.inside(new):
            raise self.fail(nid, "its body's value does not depend on the iterate")
    finally:
        self.rec = outer
    attrs = {"body": inner.body, "tol": 1.5, "max_iter": body.max_iter, "report": "value"}
    z = outer.add("fixed_point", attrs, [start, *inner.captures], n.name)
    return self.requantize(z, fine, grid, n.name)


def _capture(self: _Lower, u: int, reader: int) -> Any:
    """A fixed point's capture, as its body reads it: an integer node on its grid, or a
    constant (with the qg node, for a weight's integers)."""
    if u in self.vals:
        v, g = self.vals[u]
        return ("int", v, g)
    if u in self.consts:
        return ("const", self.consts[u], u)
    raise self.fail(reader, f"its capture {self.node(u).name!r} is not on an integer grid")


def _linear_form(v: Any) -> tuple[list[tuple[_Term, Any]], Any]:
    """A body value as a weighted sum of integer terms and a constant."""
    if v[0] == "int":
        return [(_Term.on(v[1], v[2]), 1.0)], 0.0
    if v[0] == "lin":
        return list(v[1]), v[2]
    return [], v[1]


def _body_value(self: _Lower, nid: int, bn: Any, args: list[Any]) -> Any:
    """One body op (:class:`~rnngraph.ops.fixed.BodyNode`) on symbolic values:
    ``("int", node, grid)``, ``("lin", terms, const)`` or ``("const", value, qg node)``."""
    name, op, attrs = bn.name, bn.op, bn.attrs
    if all(a[0] == "const" for a in args):
        vals = [a[1] for a in args]
        value = REFERENCE[op]({**attrs, "float_dtype": np.float64}, *vals)
        return ("const", np.asarray(value), None)
    if op in ("add", "sub", "neg"):
        signs = {"add": (1.0, 1.0), "sub": (1.0, -1.0), "neg": (-1.0,)}[op]
        terms: list[tuple[_Term, Any]] = []
        const: Any = 0.0
        for a, sign in zip(args, signs, strict=True):
            ts, c = _linear_form(a)
            terms += [(t, sign * np.asarray(k)) for t, k in ts]
            const = const + sign * np.asarray(c)
        return ("lin", terms, const)
    if op == "mul" and sum(a[0] == "const" for a in args) == 1:
        c = next(a[1] for a in args if a[0] == "const")
        ts, k = _linear_form(next(a for a in args if a[0] != "const"))
        return ("lin", [(t, np.asarray(m) * c) for t, m in ts], np.asarray(k) * c)
    if op == "matmul" and args[1][0] == "const" and args[1][2] is not None:
        x = args[0]
        if x[0] != "int":
            raise self.fail(nid, f"body node {name!r} multiplies a sum by a weight")
        q, scales = self.weights(args[1][2], nid)
        wname = self.named.get(args[1][2], f"{name}.W")
        return ("lin", [(self.int_product(x[1], x[2], q, scales, wname, nid), 1.0)], 0.0)
    if op in LUT_OPS:
        ts, k = _linear_form(args[0])
        fn = REFERENCE[op]
        if len(ts) == 1 and all(np.asarray(a).size == 1 for a in (ts[0][1], k, ts[0][0].scale)):
            t, m = ts[0]  # (one term: the table reads its integers, the affine map inside)
            have = Grid(self.rec.type(t.node).dtype, float(t.scale), t.zero_point)
            if have.kind in ("int8", "int16"):
                return _body_table(self, nid, bn, fn, t.node, have, float(m), k)
        # (else the sum onto an int16 grid spanning its largest possible value, then a table)
        peak = float(np.max(np.abs(k), initial=0.0)) + sum(
            float(np.max(np.abs(np.asarray(c) * np.asarray(t.scale)))) * t.bound for t, c in ts
        )
        have = Grid("int16", max(peak, 1e-12) / INT_RANGES["int16"][1], 0)
        v = self.affine(ts, k, have, f"{name}.operand", bn.type.row_shape)
        return _body_table(self, nid, bn, fn, v, have, 1.0, 0.0)
    raise self.fail(nid, f"body node {name!r} ({op}) has no integer form inside a fixed point")


RULES = {
    "add": _linear((1.0, 1.0)),
    "sub": _linear((1.0, -1.0)),
    "neg": _linear((-1.0,)),
    "mul": _mul,
    "matmul": _matmul,
    "concat": _concat,
    "where": _where,
    "cast": _cast,
    "zeros_like": _zeros_like,
    "scatter_add_along": _scatter_add_along,
    "reduce_sum": _sums,
    "reduce_mean": _sums,
    "cumsum": _sums,
    "minimum": _extreme,
    "maximum": _extreme,
    "div": _div,
    "softmax": _softmax,
    "pow": _pow,
    "fixed_point": _fixed_point,
}
"""Ops computed onto the grid of the ``fake_quant`` that follows them."""
