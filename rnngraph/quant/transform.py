"""``rg.quantize``: a float graph and its params to a quantised graph and integer params.

The quantised graph is the float graph with explicit quantisation (ONNX's QDQ form):

- every weight matrix becomes an ``int8`` param, per output channel (its last axis),
  symmetric, read through a ``dequantize``; the bias ``b`` of ``x @ W + b`` becomes an
  ``int32`` param of scale ``s_x * s_W`` (so an integer kernel adds it to the int32
  accumulator as it is); other float params become ``int16``, per tensor, except
  learned initial states, which stay floats (the state's grid quantises them);
- every float signal an op computes is put on an integer grid (``fake_quant``, a
  Q/DQ pair): ``int8`` by default (asymmetric, from the calibrated range), ``int16``
  (symmetric) for what a state stores and for the states themselves, as TFLite's
  8x8_16 LSTM keeps its cell state; sigmoid's and tanh's outputs take their known
  ranges, ``[0, 1]`` and ``[-1, 1]``; a value that only ever held whole numbers (a
  clock's phase) gets a grid that holds them exactly; what divisions, logs, roots
  and powers compute and read stays float (``meta["quantization"]["float_values"]``:
  an integer-only backend must take those ops to the CPU). Inputs are quantised as
  they enter, outputs are floats on their grids ("float in, float out at the edges").
  Ops that only move values (slices, reshapes, gathers) keep their operand's grid.

Its reference run (:func:`rnngraph.run`) defines the quantised semantics; ONNX runs
the same graph as Q/DQ pairs, which onnxruntime fuses into its integer kernels.
``qg.meta["quantization"]`` keeps, per quantised value, its range, kind, scale, zero
point and the RMS error its grid adds on the calibration data (see :func:`report`),
and per output the error against the float graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngraph.errors import GraphError
from rnngraph.ir.graph import Graph
from rnngraph.ir.params import check_params
from rnngraph.ir.records import Records
from rnngraph.ir.types import INT_RANGES, TensorType
from rnngraph.ir.verify import verify
from rnngraph.ops.quant import per_axis
from rnngraph.quant.calibration import Range, calibrate
from rnngraph.runtime.interpreter import run

__all__ = ["QuantReport", "convert", "prepare_qat", "quantize", "report"]

KEEPS_GRID = frozenset(
    {"slice", "reshape", "transpose", "unsqueeze", "gather", "gather_rows", "pad", "delay",
     "stop_gradient", "take_along", "top_k", "max_pool"}
)  # fmt: skip
"""Ops whose output values are some of their operand's values: they keep its grid."""

KNOWN_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "hard_sigmoid": (0.0, 1.0),
                "softsign": (-1.0, 1.0), "softmax": (0.0, 1.0)}  # fmt: skip

FLOAT_ONLY = frozenset({"div", "log", "sqrt", "pow", "solve"})
"""Ops whose operands and results keep float precision in a quantised graph."""

FIXED_GRIDS = {
    ("sigmoid", "int8"): (1 / 256, -128), ("tanh", "int8"): (1 / 128, 0),
    ("sigmoid", "int16"): (1 / 32768, 0), ("tanh", "int16"): (1 / 32768, 0),
}  # fmt: skip
"""The output grids TFLite's integer kernels require of sigmoid and tanh."""

_ALREADY = frozenset({"fake_quant", "quantize", "dequantize"})


def _qparams(lo: float, hi: float, kind: str, symmetric: bool) -> tuple[float, int]:
    """Scale and zero point of a grid of ``kind`` covering ``[lo, hi]`` (and 0)."""
    qlo, qhi = INT_RANGES[kind]
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if symmetric:
        m = max(-lo, hi)
        return (m / qhi if m > 0 else 1.0 / qhi), 0
    if hi - lo <= 0:
        return 1.0 / qhi, 0
    scale = (hi - lo) / (qhi - qlo)
    zp = int(np.clip(np.rint(qlo - lo / scale), qlo, qhi))
    return scale, zp


def _weight_qparams(w: np.ndarray, kind: str, axis: int | None) -> tuple[list[float], int | None]:
    qhi = INT_RANGES[kind][1]
    if axis is None:
        m = float(np.max(np.abs(w))) if w.size else 0.0
        return [m / qhi if m > 0 else 1.0], None
    moved = np.moveaxis(np.abs(w), axis, 0).reshape(w.shape[axis], -1)
    peaks = moved.max(axis=1) if moved.size else np.zeros(w.shape[axis])
    return [float(v / qhi) if v > 0 else 1.0 for v in peaks], axis


def _to_int(w: np.ndarray, scales: Sequence[float], axis: int | None, kind: str) -> np.ndarray:
    lo, hi = INT_RANGES[kind]
    return np.clip(np.rint(w / per_axis(scales, axis, np.float64)), lo, hi).astype(np.dtype(kind))


@dataclass
class _Plan:
    kind: str
    scale: list[float]
    zero_point: list[int]
    axis: int | None
    lo: float
    hi: float


def quantize(
    graph: Graph,
    params: Mapping[str, Any],
    calibration: Iterable[Mapping[str, Any]],
    *,
    activations: str = "int8",
    states: str = "int16",
    weights: str = "int8",
    vectors: str = "int16",
    percentile: float | None = None,
    integer_only: bool = False,
) -> tuple[Graph, dict[str, np.ndarray]]:
    """Post-training quantisation: the quantised graph and its integer params.

    Parameters
    ----------
    graph, params
        The trained float graph and its params.
    calibration
        Batches of inputs (dicts as :func:`rnngraph.run` takes, with optional
        ``"sequence_lens"`` and ``"initial_states"``): the float reference runs on
        them and every value's range is taken over all its steps.
    activations, states, weights, vectors
        Integer kinds of the signals, of what states hold, of weight matrices (per
        output channel), and of other params (per tensor: a cell's summed biases,
        peepholes). ``states="int8", vectors="int8"`` is TFLite's all-int8 scheme.
    percentile
        Ranges from this percentile of the magnitudes (e.g. ``99.99``) instead of
        min/max, clipping rare outliers for a finer grid.
    integer_only
        Put what divisions, roots, logs and powers compute and read on grids too
        (``int16``, symmetric: a divisor's relative precision matters), so that
        :func:`rnngraph.quant.to_integer` has an integer form for them (a layer norm
        written out, a normalisation). A divisor calibration saw strictly positive is
        held at least one step of its grid above zero (``maximum``), so that an epsilon
        below the step cannot make 0 / 0. By default they stay floats, for a CPU beside
        an integer accelerator to compute.

    Returns
    -------
    qg, qp : Graph and dict
        The quantised graph and its integer params: ``rg.run(qg, inputs, qp)`` is the
        quantised model, float in and float out; ``report(qg)`` says what each value's
        grid costs.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("tagger")
    >>> g.output("y", rg.linear(rg.cells.gru(g.input("x", 4), 8, name="gru"), 2, name="out"))
    >>> p = g.init_params(seed=0)
    >>> xs = np.random.default_rng(0).normal(size=(20, 8, 4)).astype("float32")
    >>> qg, qp = rg.quantize(g, p, calibration=[{"x": xs}])
    >>> qp["out.W"].dtype, qp["out.b"].dtype
    (dtype('int8'), dtype('int32'))
    >>> err = np.abs(rg.run(qg, {"x": xs}, qp)["y"] - rg.run(g, {"x": xs}, p)["y"]).max()
    >>> bool(err < 0.05)
    True
    """
    kinds = (("activations", activations), ("states", states), ("weights", weights),
             ("vectors", vectors))  # fmt: skip
    for what, kind in kinds:
        if kind not in ("int8", "int16"):
            raise GraphError(f"{what} must be 'int8' or 'int16', got {kind!r}")
    if percentile is not None and not 50 < percentile <= 100:
        raise GraphError(f"percentile must be in (50, 100], got {percentile!r}")
    return _quantize(graph, params, calibration, activations, states, weights, vectors, percentile,
                     integer_only=integer_only)  # fmt: skip


def _quantize(
    graph: Graph,
    params: Mapping[str, Any],
    calibration: Iterable[Mapping[str, Any]],
    activations: str,
    states: str,
    weights: str,
    vectors: str,
    percentile: float | None,
    *,
    fake: bool = False,
    integer_only: bool = False,
) -> tuple[Graph, dict[str, np.ndarray]]:
    verify(graph)
    if integer_only:
        graph = _layer_norms_written_out(graph)
    p64 = check_params(graph, params, np.dtype(np.float64))
    if any(t.dtype != "float" for t in graph.params.values()) or "qat" in graph.meta:
        raise GraphError(f"graph {graph.name!r} is already quantised")
    batches = list(calibration)
    original = graph
    near_float = _float_only(graph)
    targets = _signals(graph, set() if integer_only else near_float)
    ranges = calibrate(graph, p64, batches, targets)
    if integer_only and (floored := _floored_divisors(graph, ranges)) is not graph:
        graph = floored
        near_float = _float_only(graph)
        targets = _signals(graph, set())
        ranges = calibrate(graph, p64, batches, targets)
    wide = near_float if integer_only else set()
    plans = _plan(graph, targets, ranges, activations, states, percentile, wide)
    qg, qp, weight_rows = _rewrite(graph, p64, plans, weights, vectors, fake=fake)
    qg.meta["quantization"] = {
        "values": [
            {
                "node": graph.node(nid).name,
                "op": graph.node(nid).op,
                "kind": pl.kind,
                "range": [pl.lo, pl.hi],
                "scale": pl.scale[0],
                "zero_point": pl.zero_point[0],
                "rms": ranges[nid].rms,
                "rms_error": _grid_error(ranges[nid], pl),
            }
            for nid, pl in plans.items()
        ],
        "weights": weight_rows,
        "float_values": sorted(graph.node(n).name for n in near_float - wide),
        "outputs": _output_errors(original, p64, qg, qp, batches, integer_only),
        "settings": {
            "activations": activations,
            "states": states,
            "weights": weights,
            "percentile": percentile,
            "integer_only": integer_only,
        },
    }
    return qg, qp


def prepare_qat(
    graph: Graph,
    params: Mapping[str, Any],
    calibration: Iterable[Mapping[str, Any]],
    *,
    activations: str = "int8",
    states: str = "int16",
    weights: str = "int8",
    vectors: str = "int16",
    percentile: float | None = None,
    integer_only: bool = False,
) -> tuple[Graph, dict[str, np.ndarray]]:
    """Quantisation-aware training: the quantised graph with float weights to train.

    As :func:`quantize` (the same options), but every weight stays a float param read
    through a ``fake_quant`` of the grid post-training quantisation gives it, so ``rg.train``
    fine-tunes the weights through the rounding (straight-through gradients inside
    each grid's range). :func:`convert` then makes the integer model, which computes
    exactly what the trained graph computes.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("fit")
    >>> g.output("y", rg.linear(rg.cells.elman(g.input("x", 2), 4, name="e"), 1, name="o"))
    >>> xs = np.random.default_rng(0).normal(size=(8, 4, 2)).astype("float32")
    >>> qat, p = rg.quant.prepare_qat(g, g.init_params(seed=0), calibration=[{"x": xs}])
    >>> res = rg.train(qat, p, [{"x": xs, "t": 0.5 * xs[..., :1]}] * 20,
    ...                loss=rg.losses.mse("t"), optimizer=rg.optim.Adam(1e-2), progress=False)
    >>> qg, qp = rg.quant.convert(qat, res.params)
    >>> same = rg.run(qg, {"x": xs}, qp)["y"] == rg.run(qat, {"x": xs}, res.params)["y"]
    >>> bool(same.all())
    True
    """
    return _quantize(
        graph,
        params,
        calibration,
        activations,
        states,
        weights,
        vectors,
        percentile,
        fake=True,
        integer_only=integer_only,
    )


def convert(qat: Graph, params: Mapping[str, Any]) -> tuple[Graph, dict[str, np.ndarray]]:
    """The integer model of a :func:`prepare_qat` graph and its (trained) params: each
    weight on the grid it trained on, as an integer param and a ``dequantize``."""
    from rnngraph.ir.registry import REFERENCE

    doc = qat.meta.get("qat")
    if doc is None:
        raise GraphError(f"graph {qat.name!r} was not made by rnngraph.quant.prepare_qat")
    p32 = check_params(qat, params, np.dtype(np.float32))
    rec = Records(qat)
    qp = dict(p32)
    ids = qat.param_nodes()
    for name, fq_name in doc["weights"].items():
        f = qat.node(fq_name)
        attrs = {k: f.attrs[k] for k in ("scale", "zero_point", "axis")}
        q = REFERENCE["quantize"]({**attrs, "to": f.attrs["to"]}, p32[name])  # its very grid
        qp[name] = q
        pid = ids[name]
        rec.retype(pid, TensorType(q.shape, f.attrs["to"]), attrs={"init": "zeros", "scale": None})
        rec.retype(f.id, f.type, op="dequantize", attrs=attrs)
    qg = rec.build()
    qg.meta.pop("qat", None)
    return qg, qp


# ------------------------------------------------------------------ planning


def _signals(graph: Graph, near_float: set[int]) -> list[int]:
    """The float signals that get a grid: what ops compute, inputs, states — but not a
    product ``x @ W`` whose readers all add a bias to it (an integer kernel keeps it in
    its int32 accumulator, and the sum gets the grid), nor ``near_float``."""
    fused = {m for m, _ in _bias_of(graph).values()}
    out = []
    for n in graph.nodes():
        if n.type.dtype != "float" or not n.type.batched:
            continue
        if n.op in KEEPS_GRID or n.op in _ALREADY or n.op in ("constant", "param"):
            continue
        if n.id in fused or n.id in near_float:
            continue
        out.append(n.id)
    return out


def _layer_norms_written_out(graph: Graph) -> Graph:
    """``graph`` with each ``layer_norm`` written out as the ops it computes (a mean, the
    centred row, its variance plus epsilon, a root, a division, the scale and shift), so
    that each gets a calibrated grid and an integer form; ``graph`` itself if it has
    none."""
    from rnngraph.ir.graph import Value
    from rnngraph.ops.elementwise import add, div, mul, sqrt, sub
    from rnngraph.ops.reduce import reduce_mean

    norms = [n for n in graph.nodes() if n.op == "layer_norm"]
    if not norms:
        return graph
    g = graph.copy()
    for n in norms:
        x, scale, bias = (Value(g, u) for u in g.operand_ids(n.id))
        centred = sub(x, reduce_mean(x, -1, keepdims=True, name=f"{n.name}.mean"),
                      name=f"{n.name}.centred")  # fmt: skip
        var = reduce_mean(mul(centred, centred, name=f"{n.name}.square"), -1, keepdims=True,
                          name=f"{n.name}.variance")  # fmt: skip
        root = sqrt(add(var, float(n.attrs["epsilon"]), name=f"{n.name}.var_eps"),
                    name=f"{n.name}.root")  # fmt: skip
        normed = div(centred, root, name=f"{n.name}.normalised")
        y = add(mul(normed, scale, name=f"{n.name}.scaled"), bias, name=f"{n.name}.shifted")
        g.replace_uses(n.id, y.node)
        g.remove_nodes([n.id])
    return g


def _floored_divisors(graph: Graph, ranges: Mapping[int, Range]) -> Graph:
    """``graph`` with each divisor that calibration saw strictly positive (a norm plus an
    epsilon, a sum of positive weights) held at least one step of its int16 grid above
    zero (``maximum(b, step)``), so that an epsilon below the step cannot round it to 0
    and make 0 / 0; ``graph`` itself if there is none."""
    from rnngraph.ir.graph import Value
    from rnngraph.ops.elementwise import maximum

    floors = {}
    for n in graph.nodes():
        if n.op != "div":
            continue
        (_, _, _), (b, delay, init) = graph.operands(n.id)
        r = ranges.get(b)
        if r is not None and r.lo > 0 and np.isfinite(r.hi):
            floors[n.id] = (b, delay, init, r.hi / INT_RANGES["int16"][1])
    if not floors:
        return graph
    g = graph.copy()
    for d, (b, delay, init, step) in floors.items():
        held = maximum(Value(g, b), float(step), name=f"{g.node(d).name}.divisor_floor")
        g.set_operand(d, 1, held.node, delay=delay, init=init)
    return g


def _float_only(graph: Graph) -> set[int]:
    """Values that stay floats: what ``FLOAT_ONLY`` ops compute and read (a grid's
    rounding to zero would divide by zero or take the log of zero)."""
    out = set()
    for n in graph.nodes():
        if n.op in FLOAT_ONLY:
            out.add(n.id)
            out.update(u for u, _, _ in graph.operands(n.id))
    return out


def _plan(
    graph: Graph,
    targets: list[int],
    ranges: Mapping[int, Range],
    activations: str,
    states: str,
    percentile: float | None,
    wide: set[int],
) -> dict[int, _Plan]:
    """Each target's grid: of kind ``states`` for what states hold and store,
    ``activations`` for the rest, and ``int16`` for ``wide`` (the values divisions and
    roots compute and read, in an integer-only graph)."""
    held = {s: graph.operands(s)[0][0] for s in graph.state_nodes().values()}
    stored = set(held.values())  # (a state and the value it stores share a grid)
    plans: dict[int, _Plan] = {}
    for nid in targets:
        n = graph.node(nid)
        kind = states if nid in stored or n.op == "state" else activations
        kind = "int16" if nid in wide else kind
        r = ranges[nid]
        if n.op == "state" and held.get(nid) in ranges:  # one grid with what it stores
            r = ranges[held[nid]]
        lo, hi = KNOWN_RANGES.get(n.op, r.bounds(percentile))
        symmetric = kind == "int16"
        scale, zp = FIXED_GRIDS.get((n.op, kind)) or _qparams(lo, hi, kind, symmetric)
        if _whole_numbers(r):  # a counter (a clock's phase): a grid that holds it exactly
            m = max(abs(r.lo), abs(r.hi), 1.0)
            scale, zp = float(2.0 ** np.ceil(np.log2(m / INT_RANGES[kind][1]))), 0
            scale = max(scale, 2.0**-20)
        plans[nid] = _Plan(kind, [scale], [zp], None, lo, hi)
    for s, v in held.items():  # a state and its stored value: the same grid
        if s in plans and v in plans:
            plans[s] = plans[v]
    return plans


def _whole_numbers(r: Range) -> bool:
    """Whether every value calibration saw is a whole number (and there were some)."""
    return (
        r.sample is not None and r.sample.size > 0 and bool(np.all(r.sample == np.rint(r.sample)))
    )


def _grid_error(r: Range, pl: _Plan) -> float:
    if r.sample is None or not r.sample.size:
        return 0.0
    lo, hi = INT_RANGES[pl.kind]
    s, z = pl.scale[0], pl.zero_point[0]
    q = (np.clip(np.rint(r.sample / s) + z, lo, hi) - z) * s
    return float(np.sqrt(np.mean((q - r.sample) ** 2)))


# ------------------------------------------------------------------ rewriting


def _bias_of(graph: Graph) -> dict[int, tuple[int, int]]:
    """``b`` of ``add(matmul(x, W), b)`` (params ``W`` and ``b``, the product read by
    nothing else): ``b -> (the matmul, W)``. Computed once per graph."""
    found: dict[int, tuple[int, int]] = graph.memo("quant_biases", lambda: _find_biases(graph))
    return found


def _find_biases(graph: Graph) -> dict[int, tuple[int, int]]:
    out = {}
    outputs = set(graph.output_nodes().values())

    def readers(u: int) -> int:
        return int(graph.nx_graph.out_degree(u)) + (u in outputs)

    for n in graph.nodes():
        if n.op != "add":
            continue
        ops = graph.operands(n.id)
        for (a, _, _), (b, _, _) in ((ops[0], ops[1]), (ops[1], ops[0])):
            if graph.node(b).op != "param" or graph.node(a).op != "matmul" or readers(a) != 1:
                continue
            (_, _, _), (w, _, _) = graph.operands(a)
            if (
                graph.node(w).op == "param"
                and graph.node(b).type.shape == (graph.node(w).type.shape[-1:])
            ):
                out[b] = (a, w)
    return out


_MOVES = frozenset({"transpose", "slice", "concat"})


def _output_axis(graph: Graph, pid: int) -> int:
    """The axis of weight ``pid`` that becomes the output columns of the products it
    feeds (through transposes, slices and concatenations: an ONNX-layout ``(4H, in)``
    weight read as ``x @ W.T`` has its channels on axis 0), counted from the end; the
    last axis when its uses disagree or go elsewhere."""
    rank = len(graph.node(pid).type.shape)
    found: set[int] = set()
    todo = [(pid, list(range(rank)))]  # a value, and which param axis each of its axes is
    while todo:
        nid, axes = todo.pop()
        for _, r, port in graph.nx_graph.out_edges(nid, keys=True):
            n = graph.node(r)
            if n.op == "matmul" and port == 1 and len(axes) >= 2:
                found.add(axes[-1])
            elif n.op == "transpose":
                todo.append((r, [axes[p] for p in n.attrs["perm"]]))
            elif n.op in ("slice", "concat", "dequantize"):
                todo.append((r, axes))
            else:
                found.add(rank - 1)
    return (found.pop() - rank) if len(found) == 1 else -1


def _grid_of(graph: Graph, nid: int, plans: Mapping[int, _Plan]) -> _Plan | None:
    """The grid a value is on: its own, or its operand's through ops that keep grids."""
    while nid not in plans:
        n = graph.node(nid)
        if n.op not in KEEPS_GRID:
            return None
        nid = graph.operands(nid)[0][0]
    return plans[nid]


def _rewrite(
    graph: Graph,
    params: Mapping[str, np.ndarray],
    plans: Mapping[int, _Plan],
    weights: str,
    vectors: str = "int16",
    *,
    fake: bool = False,
) -> tuple[Graph, dict[str, np.ndarray], list[dict[str, Any]]]:
    """The quantised graph, its params and the weights' report rows. ``fake``: weights
    stay float params, each read through a ``fake_quant`` of its grid (training)."""
    rec = Records(graph)
    trained: dict[str, str] = {}  # fake: each weight's fake_quant node
    qp: dict[str, np.ndarray] = {}
    rows: list[dict[str, Any]] = []
    biases = _bias_of(graph)
    weight_scales: dict[int, list[float]] = {}
    param_ids = graph.param_nodes()
    # weights first: a bias's scale needs its weight's
    order = sorted(param_ids.items(), key=lambda kv: kv[1] in biases)
    starts = {  # params that are states' initial values stay floats (the state's grid
        str(init.ref)  # quantises them as they are read)
        for n in graph.nodes()
        for _, _, init in graph.operands(n.id)
        if init.kind == "param"
    }
    for name, pid in order:
        w = params[name]
        if name in starts:
            qp[name] = np.asarray(w, np.float32)
            continue
        axis: int | None
        if pid in biases:
            mm, wid = biases[pid]
            grid = _grid_of(graph, graph.operands(mm)[0][0], plans)
            if grid is not None and wid in weight_scales:
                scales = [grid.scale[0] * s for s in weight_scales[wid]]
                kind, axis = "int32", -1
            else:
                kind, (scales, axis) = vectors, _weight_qparams(w, vectors, None)
        elif w.ndim >= 2:
            channel = _output_axis(graph, pid)
            kind, (scales, axis) = weights, _weight_qparams(w, weights, channel)
            if channel == -1:  # (a bias's scale follows its weight's output channels)
                weight_scales[pid] = scales
        else:
            kind, (scales, axis) = vectors, _weight_qparams(w, vectors, None)
        q = _to_int(w, scales, axis, kind)
        qp[name] = q
        deq = q.astype(np.float64) * per_axis(scales, axis, np.float64)
        err = float(np.max(np.abs(deq - w))) if w.size else 0.0
        rows.append(
            {"param": name, "kind": kind, "per_channel": axis is not None, "max_abs_error": err}
        )
        attrs = {"scale": scales, "zero_point": [0] * len(scales), "axis": axis}
        if fake:
            qp[name] = np.asarray(w, np.float32)
            f = rec.add("fake_quant", {**attrs, "to": kind}, [pid], name, "q")
            rec.redirect(pid, f)
            trained[name] = rec.nodes[f].name
            continue
        rec.retype(pid, TensorType(w.shape, kind), attrs={"init": "zeros", "scale": None})
        d = rec.add("dequantize", attrs, [pid], name, "dequantized")
        rec.redirect(pid, d)
    for nid, pl in plans.items():
        attrs = {"scale": pl.scale, "zero_point": pl.zero_point, "axis": None, "to": pl.kind}
        f = rec.add("fake_quant", attrs, [nid], graph.node(nid).name, "q")
        rec.redirect(nid, f)
    out = rec.build()
    if fake:
        out.meta["qat"] = {"weights": trained}
    return out, qp, rows


def _output_errors(
    graph: Graph,
    params: Mapping[str, np.ndarray],
    qg: Graph,
    qp: Mapping[str, np.ndarray],
    batches: list[Mapping[str, Any]],
    integer_only: bool = False,
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    fix = (
        "quantise without integer_only=True, or add an epsilon the grid holds"
        if integer_only
        else "add an epsilon the grid holds, or finer grids (activations='int16')"
    )
    for batch in batches[:4]:
        feeds = {k: v for k, v in batch.items() if k not in ("sequence_lens", "initial_states")}
        kw: dict[str, Any] = {
            "sequence_lens": batch.get("sequence_lens"),
            "initial_states": batch.get("initial_states"),
        }
        want = run(graph, feeds, params, dtype=np.float32, **kw)
        with np.errstate(invalid="ignore", divide="ignore"):
            got = run(qg, feeds, qp, dtype=np.float32, **kw)
        for k in graph.outputs:
            if not np.isfinite(got[k]).all() and np.isfinite(want[k]).all():
                raise GraphError(
                    f"quantised graph {qg.name!r}: output {k!r} is inf or nan on the calibration "
                    f"data where the float graph's is finite: a divisor or a log's operand rounds "
                    f"to 0 on its grid (an epsilon below the grid's step); {fix}"
                )
            d = np.abs(got[k].astype(np.float64) - want[k])
            row = out.setdefault(k, {"max_abs_error": 0.0, "rms_error": 0.0, "rms": 0.0})
            row["max_abs_error"] = max(row["max_abs_error"], float(d.max()) if d.size else 0.0)
            row["rms_error"] = max(
                row["rms_error"], float(np.sqrt(np.mean(d**2))) if d.size else 0.0
            )
            row["rms"] = max(row["rms"], float(np.sqrt(np.mean(want[k].astype(np.float64) ** 2))))
    return out


# -------------------------------------------------------------------- report


@dataclass
class QuantReport:
    """What quantisation did, per value, per weight and per output."""

    values: list[dict[str, Any]]
    weights: list[dict[str, Any]]
    outputs: dict[str, dict[str, float]]

    def table(self) -> str:
        """A plain-text table: the values with the largest added error first."""
        lines = [f"{'value':32s} {'op':12s} {'kind':6s} {'range':>22s} {'scale':>10s} "
                 f"{'rms':>9s} {'grid err':>9s}"]  # fmt: skip
        for v in sorted(self.values, key=lambda v: -v["rms_error"]):
            lo, hi = v["range"]
            lines.append(
                f"{v['node'][:32]:32s} {v['op'][:12]:12s} {v['kind']:6s} "
                f"{f'[{lo:.3g}, {hi:.3g}]':>22s} {v['scale']:10.3g} {v['rms']:9.3g} "
                f"{v['rms_error']:9.3g}"
            )
        lines.append("")
        for w in self.weights:
            lines.append(
                f"param {w['param']:26s} {w['kind']:6s} "
                f"{'per channel' if w['per_channel'] else 'per tensor':12s} "
                f"max error {w['max_abs_error']:.3g}"
            )
        lines.append("")
        for k, o in self.outputs.items():
            lines.append(
                f"output {k}: rms error {o['rms_error']:.3g} (rms {o['rms']:.3g}), "
                f"max {o['max_abs_error']:.3g}"
            )
        return "\n".join(lines)


def report(qg: Graph) -> QuantReport:
    """The report :func:`quantize` kept in ``qg.meta``."""
    doc = qg.meta.get("quantization")
    if doc is None:
        raise GraphError(f"graph {qg.name!r} was not made by rnngraph.quantize")
    return QuantReport(doc["values"], doc["weights"], doc["outputs"])
