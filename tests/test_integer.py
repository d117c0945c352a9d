"""Integer-only graphs (``rg.quant.to_integer``): the integer ops against exact rational
arithmetic and numpy's functions, and the integer form of every zoo cell that has one
against the quantised (Q/DQ) graph — itself checked against onnx.reference and
onnxruntime in test_quant.py — and against the float graph."""

from __future__ import annotations

import importlib.util
import shutil
from fractions import Fraction

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.errors import GraphError
from rnngraph.ir.registry import REFERENCE
from tests import zoo

RNG = np.random.default_rng(0)

INTEGER_ZOO = ["elman", "jordan", "rnn", "lstm", "lstm_peephole_clip", "gru", "gru_lbr",
               "indrnn", "fir", "narx", "stacked_gru", "state_delay_2", "esn", "ctrnn",
               "rmlp", "mgu", "gru_variant", "jordan_decay", "indrnn_bound", "second_order",
               "param_initial_state", "rnn_reverse", "bidirectional_lstm", "clockwork",
               "hrnn", "lif", "lsm", "history_compressor", "mtrnn", "layer_norm_lstm",
               "neural_stack", "neural_queue", "layer_norm_op_lstm", "ntm", "dnc",
               "hopfield_continuous"]  # fmt: skip
"""The zoo's cells whose quantised graphs have an integer-only form: all of them."""

DECISIONS = {"neural_stack", "neural_queue"}
"""Cells whose outputs hinge on thresholds (the relu of a strength less a running sum):
where the integer graph's rounding and the Q/DQ graph's float differ by a step at a
threshold, their outputs differ by more than a step there, so these are held to the
Q/DQ graph's worst error against float instead of to the Q/DQ graph itself."""


def test_every_zoo_cell_is_listed() -> None:
    assert set(zoo.CELLS) - set(INTEGER_ZOO) == set()


def quantised(cell: str, seed: int = 7, integer_only: bool = True):
    g = zoo.CELLS[cell]()
    p = zoo.params_for(g, 0)
    rng = np.random.default_rng(seed)
    cal = [zoo.feeds(g, 12, 6, rng) for _ in range(3)]
    qg, qp = rg.quantize(g, p, calibration=cal, integer_only=integer_only)
    return g, p, qg, qp


def _exact_affine(attrs, xs, ms, offset) -> np.ndarray:
    """int_affine in Python's unbounded integers and exact fractions (rounding halves up)."""
    out = np.empty(np.broadcast_shapes(*(x.shape for x in xs)), dtype=object)
    lo, hi = {"int8": (-128, 127), "int16": (-32768, 32767)}[attrs["to"]]

    def at(v: np.ndarray, c: int) -> int:
        return int(v[c if len(v) > 1 else 0])

    for idx in np.ndindex(out.shape):
        total = Fraction(at(offset, idx[-1]))
        for x, z, m in zip(xs, attrs["zero_points"], ms, strict=True):
            total += (int(np.broadcast_to(x, out.shape)[idx]) - z) * at(m, idx[-1])
        scaled = total / 2 ** attrs["shift"] + Fraction(1, 2)
        v = (scaled.numerator // scaled.denominator) + attrs["zero_point"]
        out[idx] = min(max(v, lo), hi)
    return out.astype(np.int64)


def test_int_affine_is_exact_rational_arithmetic_rounded_half_up() -> None:
    a = RNG.integers(-128, 128, size=(5, 3)).astype(np.int8)
    b = RNG.integers(-(2**15), 2**15, size=(5, 3)).astype(np.int16)
    attrs = {"zero_points": [-3, 0], "shift": 31, "zero_point": 4, "to": "int8"}
    ms = [np.array([2**30 - 7, 12345, -99]), np.array([-(2**20) + 1])]
    offset = np.array([5, -(2**33), 2**35])
    got = REFERENCE["int_affine"](attrs, a, b, *ms, offset)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got.astype(np.int64), _exact_affine(attrs, [a, b], ms, offset))
    # ties round up: 3/2 -> 2, -3/2 -> -1
    tie = {**attrs, "zero_points": [0], "shift": 1, "zero_point": 0}
    one, zero = np.array([1]), np.array([0])
    out = REFERENCE["int_affine"](tie, np.array([[3, -3, 1, -1]], np.int8), one, zero)
    assert out.tolist() == [[2, -1, 1, 0]]
    # a multiplier fits an int32 (every target multiplies 32 x 32 -> 64)
    with pytest.raises(ValueError, match="a multiplier of 2\\*\\*31 or more"):
        REFERENCE["int_affine"](attrs, a, b, np.array([2**31]), ms[1], offset)


def test_int_lut_follows_the_function_within_a_step_of_its_output_grid() -> None:
    from scipy.special import expit

    for kind, bits in (("int8", 0), ("int16", 7)):
        lo, hi = (-128, 127) if kind == "int8" else (-32768, 32767)
        s_in, s_out = 8.0 / (hi + 1), 1 / 32768
        xs = lo + (np.arange(((hi - lo) >> bits) + 1 + (bits > 0)) << bits)
        table = np.rint(expit(xs * s_in) / s_out).astype(np.int64)
        attrs = {"lo": lo, "bits": bits, "to": "int16"}
        q = np.arange(lo, hi + 1).astype(kind)
        got = REFERENCE["int_lut"](attrs, q, table).astype(np.float64) * s_out
        err = np.abs(got - expit(q.astype(np.float64) * s_in)) / s_out
        assert err.max() <= (0.5 + 1e-9 if bits == 0 else 2.0), (kind, err.max())


def _exact_div(attrs, a, b, m) -> np.ndarray:
    """int_div in exact fractions: round((a - za) m / ((b - zb) 2**shift)), halves up; a
    zero divisor saturates with the numerator's sign."""
    za, zb = attrs["zero_points"]
    lo, hi = {"int8": (-128, 127), "int16": (-32768, 32767)}[attrs["to"]]
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        n = (int(a[idx]) - za) * int(m[idx[-1] if len(m) > 1 else 0])
        d = (int(b[idx]) - zb) * 2 ** attrs["shift"]
        if d == 0:
            v = hi if n > 0 else lo if n < 0 else attrs["zero_point"]
        else:
            q = Fraction(n, d) + Fraction(1, 2)
            v = q.numerator // q.denominator + attrs["zero_point"]
        out[idx] = min(max(v, lo), hi)
    return out.astype(np.int64)


def test_int_div_is_exact_rational_arithmetic_on_every_engine() -> None:
    """Signs of both operands, ties, a zero divisor with each sign of numerator, per-channel
    multipliers: the reference against exact fractions, then onnxruntime's int64 kernels,
    TVM and the host C compiler bit for bit."""
    attrs = {"zero_points": [-3, 5], "shift": 3, "zero_point": 2, "to": "int8"}
    m = np.array([1, 8, 3, 40, 7, 1 << 20], np.int64)
    g = rg.Graph("divide")  # (float in and out at the edges, on grids of step 1)
    one = {"scale": [1.0], "zero_point": [0], "axis": None}
    a = g.apply("quantize", [g.input("a", 6)], {**one, "to": "int16"})
    b = g.apply("quantize", [g.input("b", 6)], {**one, "to": "int8"})
    g.output("y", g.apply("dequantize", [g.apply("int_div", [a, b, g.constant(m)], attrs)], one))
    g.meta["integer"] = {"from": "divide"}
    rng = np.random.default_rng(3)
    xs = {"a": rng.integers(-40, 40, (4, 3, 6)).astype(np.float32),
          "b": rng.integers(2, 9, (4, 3, 6)).astype(np.float32)}  # fmt: skip
    xs["b"][0, 0] = 5  # zero divisors: numerators of each sign and zero
    xs["a"][0, 0, :3] = [-3, 10, -20]
    xs["a"][1, 0] = -3 + 4 * np.array([1, 1, 3, 1, 5, 1])  # ties (b - zb = -1..-3 below)
    want = rg.run(g, xs, {})["y"]
    np.testing.assert_array_equal(want, _exact_div(attrs, xs["a"], xs["b"], m))
    assert {127, -128, 2} <= set(want[0, 0].tolist())
    for target, kw in _engines(batch=3).items():
        got = rg.compile(g, target, params={}, **kw).run(xs)["y"]
        np.testing.assert_array_equal(got, want, err_msg=target)


def _engines(batch: int) -> dict[str, dict]:
    """The compiled engines of an integer graph this machine has: onnxruntime, TVM, and
    the C of the micro backend built by the host compiler (its batch fixed)."""
    engines: dict[str, dict] = {"onnx": {}}
    if importlib.util.find_spec("tvm") is not None:
        engines["tvm"] = {}
    if shutil.which("cc"):
        engines["micro"] = {"device": "host", "batch": batch}
    return engines


def test_softmax_on_integers_equals_the_quantised_graph_on_every_engine() -> None:
    """A softmax over the last axis and over another one: the largest value taken off,
    ``exp`` as a dense int16 table, the sum by ones, the shares by ``int_div``; within a
    step of the Q/DQ graph (here equal), and bit for bit on onnxruntime, TVM and C."""
    g = rg.Graph("shares")
    h = rg.cells.elman(g.input("x", 3), 6, name="e")
    g.output("last", rg.softmax(rg.linear(h, 5, name="o")))
    g.output("middle", rg.softmax(rg.reshape(rg.linear(h, 12, name="p"), (3, 4)), axis=-2))
    p = g.init_params(seed=1)
    rng = np.random.default_rng(0)
    cal = [{"x": rng.normal(size=(10, 6, 3)).astype("float32")} for _ in range(2)]
    qg, qp = rg.quantize(g, p, calibration=cal)
    ig, ip = rg.quant.to_integer(qg, qp)
    assert "softmax" not in {n.op for n in ig.nodes()}
    xs = {"x": rng.normal(size=(9, 4, 3)).astype("float32")}
    qdq, got = rg.run(qg, xs, qp), rg.run(ig, xs, ip)
    for k in g.outputs:
        assert np.abs(got[k] - qdq[k]).max() <= 1 / 255 + 1e-6, k
        np.testing.assert_allclose(got[k].sum(axis=-1 if k == "last" else -2), 1, atol=0.03)
    for target, kw in _engines(batch=4).items():
        out = rg.compile(ig, target, params=ip, **kw).run(xs)
        for k in g.outputs:
            np.testing.assert_array_equal(out[k], got[k], err_msg=f"{target} {k}")


def test_sums_along_other_axes_keep_the_rows_layout() -> None:
    """Sums over a middle axis (kept or dropped), over two axes, and running sums along a
    middle axis in either direction: the summed axes move last for the product by ones
    and come back after (a swap of two axes is its own inverse, and still moves back)."""
    g = rg.Graph("sums")
    h = rg.cells.elman(g.input("x", 3), 6, name="e")
    z = rg.reshape(rg.linear(h, 24, name="p"), (2, 3, 4))
    zz = rg.reshape(rg.linear(h, 12, name="q"), (3, 4))
    g.output("middle", rg.reduce_sum(z, -2))
    g.output("kept", rg.reduce_mean(z, -2, keepdims=True))
    g.output("two", rg.reduce_sum(z, [-3, -1]))
    g.output("running", rg.cumsum(zz, -2))
    g.output("back", rg.cumsum(zz, -2, reverse=True, exclusive=True))
    p = g.init_params(seed=2)
    rng = np.random.default_rng(0)
    qg, qp = rg.quantize(g, p, calibration=[{"x": rng.normal(size=(10, 6, 3))}])
    ig, ip = rg.quant.to_integer(qg, qp)
    xs = {"x": rng.normal(size=(7, 3, 3)).astype("float32")}
    qdq, got = rg.run(qg, xs, qp), rg.run(ig, xs, ip)
    for k in g.outputs:
        assert got[k].shape == qdq[k].shape, k
        step = qg.node(qg.output_nodes()[k]).attrs["scale"][0]  # (the output's fake_quant)
        assert np.abs(got[k] - qdq[k]).max() <= 1.01 * step, k
    for target, kw in _engines(batch=3).items():
        out = rg.compile(ig, target, params=ip, **kw).run(xs)
        for k in g.outputs:
            np.testing.assert_array_equal(out[k], got[k], err_msg=f"{target} {k}")


def test_orders_positions_and_masks_on_integers_equal_the_quantised_graph() -> None:
    """The DNC's allocation ops: ``top_k`` (a few of many, and a whole sort), reading
    and adding at computed positions, truncation by a cast to int64 (many ties, kept in
    index order), zeros, and a product by a constant that differs along two axes (a
    mask): positions are computed on the integers as they are, so they equal the Q/DQ
    graph's; values within a step of it, and bit for bit on onnxruntime, TVM and C."""
    g = rg.Graph("orders")
    h = rg.cells.elman(g.input("x", 3), 6, name="e")
    wide = rg.linear(h, 10, name="w")
    z = rg.reshape(rg.linear(h, 12, name="p"), (3, 4))
    best, where = rg.top_k(wide, 2)  # (4 k < n: TVM's selection)
    g.output("best", best)
    g.output("least", rg.top_k(-wide, 3, largest=False)[0])
    steps = rg.cast(rg.cast(z * 2.0, "int64"), "float")
    order = rg.argsort(steps, -1)
    g.output("sorted", rg.take_along(z, order, -1))
    g.output("back", rg.scatter_add_along(rg.zeros_like(z), order, rg.sigmoid(z), -1))
    g.output("where", rg.cast(where, "float"))
    mask = np.array([[0.0, 1.0, 1.0, 0.5], [1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.5]])
    g.output("masked", z * mask)
    p = g.init_params(seed=3)
    rng = np.random.default_rng(0)
    cal = [{"x": rng.normal(size=(10, 6, 3)).astype("float32")} for _ in range(2)]
    qg, qp = rg.quantize(g, p, calibration=cal)
    ig, ip = rg.quant.to_integer(qg, qp)
    assert {"top_k", "take_along", "scatter_add_along"} <= {n.op for n in ig.nodes()}
    xs = {"x": rng.normal(size=(9, 4, 3)).astype("float32")}
    qdq, got = rg.run(qg, xs, qp), rg.run(ig, xs, ip)
    for k in g.outputs:
        fq = qg.output_nodes()[k]
        while qg.node(fq).op != "fake_quant":  # (a value read at positions keeps its grid)
            fq = qg.operand_ids(fq)[0]
        step = qg.node(fq).attrs["scale"][0]
        assert np.abs(got[k] - qdq[k]).max() <= 1.01 * step, k
    np.testing.assert_array_equal(got["where"], qdq["where"])  # (positions: equal)
    for target, kw in _engines(batch=4).items():
        out = rg.compile(ig, target, params=ip, **kw).run(xs)
        for k in g.outputs:
            np.testing.assert_array_equal(out[k], got[k], err_msg=f"{target} {k}")


@pytest.mark.parametrize("cell", INTEGER_ZOO)
def test_integer_form_of_zoo_cells_tracks_the_quantised_graph(cell: str) -> None:
    g, p, qg, qp = quantised(cell)
    ig, ip = rg.quant.to_integer(qg, qp)
    ops = {n.op for n in ig.nodes()}
    assert not ops & {"fake_quant", "matmul", "add", "mul", "sigmoid", "tanh"}, ops
    assert all(v.dtype == np.int8 for v in ip.values())
    xs = zoo.feeds(g, 12, 4, np.random.default_rng(11))
    want, qdq, got = rg.run(g, xs, p), rg.run(qg, xs, qp), rg.run(ig, xs, ip)
    for k in g.outputs:
        rms = float(np.sqrt(np.mean(want[k] ** 2))) + 1e-6
        err_int = float(np.sqrt(np.mean((got[k] - want[k]) ** 2)))
        err_qdq = float(np.sqrt(np.mean((qdq[k] - want[k]) ** 2)))
        # the integer kernels round where the Q/DQ graph keeps float: no worse than it,
        # and never far from it
        assert err_int <= 1.25 * err_qdq + 0.005 * rms, (k, err_int, err_qdq)
        if cell in DECISIONS:  # no worse than the Q/DQ graph's worst error either
            worst = np.abs(qdq[k] - want[k]).max()
            assert np.abs(got[k] - want[k]).max() <= 1.25 * worst + 0.005 * rms, k
        else:
            assert np.abs(got[k] - qdq[k]).max() < 0.1 * rms, k
    for s in g.states:  # states hold integers on their grids
        assert got[f"{s}_final"].dtype.kind == "i"


def test_a_fixed_point_whose_function_reads_a_product_has_an_integer_form() -> None:
    """A body ``z <- z/2 + tanh(z W + x)/2``: the function reads a product's columns and a
    sum, which go onto an int16 grid spanning their largest possible value first, then
    the table. Against float no worse than the Q/DQ graph (plus a little), and bit for bit
    on onnxruntime, TVM and C."""
    g = rg.Graph("settle")
    x = g.input("x", 4)
    W = g.param("W", (4, 4), "normal", scale=0.3)
    g.output("y", rg.fixed_point(lambda z: 0.5 * z + 0.5 * rg.tanh(z @ W + x), x, tol=1e-9))
    p = g.init_params(seed=2)
    rng = np.random.default_rng(0)
    cal = [{"x": rng.normal(size=(6, 4, 4)).astype("float32")}]
    qg, qp = rg.quantize(g, p, calibration=cal)
    ig, ip = rg.quant.to_integer(qg, qp)
    xs = {"x": rng.normal(size=(5, 3, 4)).astype("float32")}
    want, qdq, got = rg.run(g, xs, p)["y"], rg.run(qg, xs, qp)["y"], rg.run(ig, xs, ip)["y"]
    err_int, err_qdq = (float(np.sqrt(np.mean((v - want) ** 2))) for v in (got, qdq))
    assert err_int <= 1.25 * err_qdq + 0.005 * float(np.sqrt(np.mean(want**2))), (err_int, err_qdq)
    for target, kw in _engines(batch=3).items():
        out = rg.compile(ig, target, params=ip, **kw).run(xs)["y"]
        np.testing.assert_array_equal(out, got, err_msg=target)


@pytest.mark.parametrize("where", ["graph", "fixed point"])
def test_ops_without_an_integer_form_are_named(where: str) -> None:
    """An op with no integer form, in the graph or in a fixed point's body (a product of
    the iterate by itself): a GraphError naming the node and the op."""
    g = rg.Graph("none")
    x = g.input("x", 3)
    if where == "graph":
        g.output("y", rg.log_softmax(rg.cells.elman(x, 4, name="e")))
    else:
        g.output("y", rg.fixed_point(lambda z: 0.25 * z * z + 0.5 * x, x, tol=1e-9))
    p = g.init_params(seed=0)
    cal = [{"x": np.random.default_rng(0).uniform(-0.5, 0.5, (5, 3, 3))}]
    qg, qp = rg.quantize(g, p, calibration=cal)
    want = "log_softmax" if where == "graph" else r"\(mul\) has no integer form inside a fixed"
    with pytest.raises(GraphError, match=want):
        rg.quant.to_integer(qg, qp)


def test_a_divisor_is_held_off_zero_and_a_zero_by_zero_is_refused() -> None:
    """The NTM's cosine similarity divides by norms plus 1e-8: an empty memory's norm
    is below its grid's step, so ``integer_only`` holds a divisor calibration saw positive
    at least one step above zero (no 0 / 0). A divisor that changes sign cannot be held:
    where it and its numerator both round to 0 on their grids, the quantised graph would
    give nan where the float is finite: refused."""
    _, _, qg, _ = quantised("ntm")
    floors = [n for n in qg.nodes() if n.name.endswith(".divisor_floor")]
    assert floors and all(n.op == "maximum" for n in floors)
    g = rg.Graph("ratio")
    b = g.input("x", 2) * g.constant(np.array([1e-7, 1.0]))  # one channel below the step
    g.output("y", b / b)
    cal = [{"x": np.random.default_rng(0).normal(size=(6, 4, 2)).astype("float32")}]
    with pytest.raises(GraphError, match=r"rounds to 0 on its grid.*without integer_only"):
        rg.quantize(g, {}, calibration=cal, integer_only=True)


def test_integer_only_puts_divisions_and_roots_on_grids() -> None:
    """By default a layer norm's division and root stay floats (for a CPU beside an
    accelerator); ``integer_only`` gives them int16 grids and the graph an integer form,
    with its division an ``int_div`` and its root a table."""
    _, _, qg, qp = quantised("layer_norm_lstm", integer_only=False)
    assert {"sqrt_0", "div_0"} <= set(qg.meta["quantization"]["float_values"])
    with pytest.raises(GraphError, match="not on an integer grid"):
        rg.quant.to_integer(qg, qp)
    _, _, qg, qp = quantised("layer_norm_lstm")
    assert qg.meta["quantization"]["float_values"] == []
    kinds = kinds_of(qg)
    assert kinds["sqrt_0"] == kinds["div_0"] == "int16"
    ig, _ = rg.quant.to_integer(qg, qp)
    ops = [n.op for n in ig.nodes()]
    assert ops.count("int_div") == 1 and "sqrt" not in ops and "div" not in ops
    # the layer_norm op: written out, so that its mean, variance and root get grids
    _, _, qg, qp = quantised("layer_norm_op_lstm")
    assert "layer_norm" not in {n.op for n in qg.nodes()}
    assert {"layer_norm_0.variance", "layer_norm_0.root"} <= set(kinds_of(qg))
    assert [n.op for n in rg.quant.to_integer(qg, qp)[0].nodes()].count("int_div") == 1


def kinds_of(qg) -> dict[str, str]:
    return {v["node"]: v["kind"] for v in qg.meta["quantization"]["values"]}


def test_a_float_graph_is_refused() -> None:
    g = zoo.CELLS["elman"]()
    with pytest.raises(GraphError, match="not quantised"):
        rg.quant.to_integer(g, zoo.params_for(g, 0))


def test_integer_graphs_save_and_load(tmp_path) -> None:
    g, _, qg, qp = quantised("gru")
    ig, ip = rg.quant.to_integer(qg, qp)
    path = tmp_path / "gru_int.json"
    rg.save(ig, path, params=ip)
    ig2, ip2 = rg.load(path), rg.load_params(path)
    xs = zoo.feeds(g, 6, 2, np.random.default_rng(1))
    a, b = rg.run(ig, xs, ip), rg.run(ig2, xs, ip2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("cell", INTEGER_ZOO)
def test_onnxruntime_computes_integer_graphs_bit_for_bit(cell: str) -> None:
    """onnxruntime's int64 kernels (an independent implementation of the arithmetic)."""
    g, _, qg, qp = quantised(cell)
    ig, ip = rg.quant.to_integer(qg, qp)
    xs = zoo.feeds(g, 10, 3, np.random.default_rng(5))
    got, want = rg.compile(ig, "onnx", params=ip).run(xs), rg.run(ig, xs, ip)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


TVM_INTEGER = ["lstm", "gru", "narx"]
"""Integer graphs compiled by TVM in the fast suite (the rest of the zoo: slow)."""


@pytest.mark.parametrize(
    "cell",
    [c if c in TVM_INTEGER else pytest.param(c, marks=pytest.mark.slow) for c in INTEGER_ZOO],
)
def test_tvm_integer_kernels_are_bit_exact(cell: str) -> None:
    pytest.importorskip("tvm")
    g, _, qg, qp = quantised(cell)
    ig, ip = rg.quant.to_integer(qg, qp)
    m = rg.compile(ig, "tvm", params=ip)
    for T, B in ((10, 3), (4, 1)):
        xs = zoo.feeds(g, T, B, np.random.default_rng(T))
        got, want = m.run(xs), rg.run(ig, xs, ip)
        for k in want:
            assert got[k].dtype == want[k].dtype, k
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)


@pytest.mark.parametrize("dot", ["vnni512", "pmaddwd512", "pmaddwd256", ""])
def test_tvm_integer_products_on_each_dot_product(dot: str) -> None:
    """The products of int8 and int16 signals by int8 weights on AVX-512 VNNI
    (``vpdpbusd``, ``vpdpwssd``: the weights laid out in words of 4 bytes or 2 halves),
    on AVX-512BW's and AVX2's ``vpmaddwd`` (2 halves) and in plain int32 multiply-adds,
    bit for bit the reference's: a signal with a zero point, inner sizes not a multiple of
    4 or 2, columns not a multiple of 64, rows one at a time and in groups (a last group
    partial). Each runs where this CPU has its instructions."""
    import dataclasses

    pytest.importorskip("tvm")
    from rnngraph_tvm._gemm import vnni_layout
    from rnngraph_tvm._plan import _features, host_plan
    from rnngraph_tvm._targets import host_spec

    w = np.random.default_rng(0).integers(-128, 128, (7, 70)).astype(np.int8)
    words = vnni_layout(w, "vnni").view(np.int8).reshape(2, 128, 4)  # (quad, column, byte)
    np.testing.assert_array_equal(words[1, :70, :3], w[4:7].T)
    halves = vnni_layout(w, "vnni16").view(np.int16).reshape(4, 128, 2)
    np.testing.assert_array_equal(halves[3, :70, 0], w[6])
    assert (vnni_layout(w, "colsum")[:70] == w.astype(np.int32).sum(axis=0)).all()

    g = rg.Graph("two_products")
    x = g.input("x", 7)
    h = rg.cells.lstm(x, 70, name="l")  # x: int8 with a zero point (K=7); h: int16 (K=70)
    g.output("y", h)
    p = g.init_params(seed=4)
    rng = np.random.default_rng(1)
    cal = {"x": rng.normal(0.5, 1.0, (12, 4, 7)).astype("float32")}
    qg, qp = rg.quantize(g, p, calibration=[cal])
    ig, ip = rg.quant.to_integer(qg, qp)
    base = host_plan()
    needs = {"vnni512": "avx512vnni", "pmaddwd512": "avx512bw", "pmaddwd256": "avx2"}
    if dot and needs[dot] not in _features(host_spec()):
        pytest.skip(f"this CPU ({base.cpu.name}) has no {needs[dot]}")
    plan = base.replace(cpu=dataclasses.replace(base.cpu, int8_dot=dot))
    m = rg.compile(ig, "tvm", params=ip, plan=plan)
    layouts = sorted(a.layout for a in m.generated(False).args if a.layout)
    # (the int16 signal has no zero point or offset: its column sums are not read)
    words = {"vnni512": ["vnni", "vnni16"], "": []}.get(dot, ["vnni16", "vnni16"])
    assert layouts == (["colsum", *words] if dot else [])
    for T, B in ((6, 3), (3, 1), (4, 6)):  # (rows a group at a time, a partial last group)
        xs = {"x": rng.normal(0.5, 1.0, (T, B, 7)).astype("float32")}
        got, want = m.run(xs), rg.run(ig, xs, ip)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
