"""The TVM backend against the reference: every cell, random graphs, lengths, devices.

Each build compiles LLVM code (about a second), so these tests are marked
slow; CI runs them. They need apache-tvm (in the ``dev`` extra).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import rnngraph as rg
from tests import zoo
from tests.strategies import random_graphs

pytest.importorskip("tvm")
pytestmark = pytest.mark.slow

import rnngraph_tvm  # noqa: E402  (after the skip: TVM may be missing)
from rnngraph_tvm._plan import host_plan  # noqa: E402

_close = zoo.assert_close


@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_every_cell_matches_the_reference(name: str) -> None:
    """Every zoo cell's one-core kernels (with and without lengths) against the reference
    on every kind of call. The kernels that share a call over cores are checked by
    test_tvm_plan's test_another_plan_computes_the_same_results (every product shared:
    every cell; a group of rows per core: a cell of each family), and with lengths,
    initial states and the default plan by the tests of splits below
    (test_rows_in_parallel_on_the_cpu, test_products_split_over_the_cores) and
    test_concurrency: a cell's kernel variants are not all built by every test (TVM's
    builds are this suite's time)."""
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    zoo.check_model(g, p, rg.compile(g, target="tvm", params=p, threads=1))


def _check_random(rgraph) -> None:
    p = zoo.params_for(rgraph.graph)
    zoo.check_random_graph(rgraph, rg.compile(rgraph.graph, target="tvm", params=p), p)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(min_delay=1, max_delay=3))
def test_random_forward_graphs(rgraph) -> None:
    _check_random(rgraph)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(min_delay=-2, max_delay=-1))
def test_random_backward_graphs(rgraph) -> None:
    _check_random(rgraph)


def test_gradient_graphs_compile_through_the_same_path() -> None:
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g)
    m = rg.compile(rg.adjoint(g), target="tvm", params=p)
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((6, 2, 3)).astype("float32")
    cot = rng.standard_normal((6, 2, int(g.outputs["y"].shape[-1]))).astype("float32")
    got = m.run({"x": xs, "cot:y": cot})
    _, want = rg.vjp(g, {"x": xs}, p, cotangents={"y": cot})
    for k in p:
        np.testing.assert_allclose(got[f"grad:{k}"], want[k], atol=1e-4, rtol=1e-4, err_msg=k)
    np.testing.assert_allclose(got["grad:x"], want["x"], atol=1e-5)


def test_weight_gradients_as_blocked_products() -> None:
    """The weights' gradients (``Σ a ⊗ c`` over steps and rows) as blocked products over
    chunks of terms: sizes off every block (148 columns: panels of 16 or 32 with padding;
    91 terms: five chunks of 16 and a part), rows of different lengths (their steps past
    the end add nothing), spread over two threads; the input sensitivities left out."""
    threads = 2
    g = rg.Graph("lstm")
    g.output("y", rg.cells.lstm(g.input("x", 5), 37, name="c"))
    p = {k: v.astype("float32") for k, v in g.init_params(seed=3).items()}
    adj = rg.adjoint(g, input_gradients=False)
    assert "grad:x" not in adj.outputs
    plan = host_plan().replace(chunk_bytes=1024, threads=threads)  # (chunks of 16 terms)
    m = rg.compile(adj, target="tvm", params=p, plan=plan, threads=threads)
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((13, 7, 5)).astype("float32")
    cot = rng.standard_normal((13, 7, 37)).astype("float32")
    lens = np.array([13, 1, 7, 0, 12, 13, 5])
    got = m.run({"x": xs, "cot:y": cot}, sequence_lens=lens)
    _, want = rg.vjp(g, {"x": xs}, p, cotangents={"y": cot}, sequence_lens=lens)
    for k in p:
        np.testing.assert_allclose(got[f"grad:{k}"], want[k], atol=2e-4, rtol=1e-4, err_msg=k)


def test_float64_and_errors() -> None:
    g = zoo.CELLS["gru"]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p, dtype="float64")
    xs = np.random.default_rng(2).standard_normal((5, 2, 3))
    _close(m.run({"x": xs}), rg.run(g, {"x": xs}, p), tol=1e-12)
    with pytest.raises(rg.CompileError, match="unknown device 'pdp11'"):
        rg.compile(g, target="tvm", params=p, device="pdp11")
    with pytest.raises(rg.CompileError, match="options"):
        rg.compile(g, target="tvm", params=p, frobnicate=2)


@pytest.mark.parametrize("device", ["aarch64", "armv7", "riscv64", "c"])
def test_edge_devices_build(device: str) -> None:
    g = zoo.CELLS["lstm"]()
    m = rg.compile(g, target="tvm", params=zoo.params_for(g), device=device)
    assert m.device.cross
    with pytest.raises(rg.CompileError, match="export"):
        m.run({"x": np.zeros((2, 1, 3), "float32")})


def test_exported_library_runs_from_its_sidecars(tmp_path) -> None:
    import rnngraph_tvm

    g = zoo.CELLS["param_initial_state"]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p)
    path = m.export(tmp_path / "model.so")
    assert {f.name for f in tmp_path.iterdir()} == {"model.so", "model.json", "model.npz"}
    deployed = rnngraph_tvm.load(path)
    xs = np.random.default_rng(3).standard_normal((6, 3, 3)).astype("float32")
    _close(deployed.run({"x": xs}), rg.run(g, {"x": xs}, p))
    lens = np.array([6, 0, 2])  # the library's second entry function
    _close(
        deployed.run({"x": xs}, sequence_lens=lens),
        rg.run(g, {"x": xs}, p, sequence_lens=lens),
    )
    with pytest.raises(ValueError, match="sequence_lens"):
        deployed.run({"x": xs}, sequence_lens=[7, 1, 1])
    with pytest.raises(ValueError, match=r"missing inputs \['x'\]"):
        deployed.run({"y": xs})
    with pytest.raises(TypeError, match="a dict of arrays"):
        deployed.run(rg.trees.batch([np.zeros(3)]))


@pytest.mark.parametrize("device", ["aarch64", "armv7", "riscv64"])
def test_edge_libraries_link_with_the_cross_compilers(device: str, tmp_path) -> None:
    import shutil

    from rnngraph_tvm._targets import COMPILERS

    if shutil.which(COMPILERS[device]) is None:
        pytest.skip(f"{COMPILERS[device]} is not installed (.ci/run installs it)")
    g = zoo.CELLS["lstm"]()
    m = rg.compile(g, target="tvm", params=zoo.params_for(g), device=device)
    lib = m.export(tmp_path / f"lstm_{device}.so")
    head = lib.read_bytes()[:20]
    assert head[:4] == b"\x7fELF"
    machine = int.from_bytes(head[18:20], "little")  # e_machine
    assert machine == {"aarch64": 183, "armv7": 40, "riscv64": 243}[device]


def test_cuda_builds_without_a_gpu(tmp_path) -> None:
    """One thread block per batch row; the library embeds the CUDA kernel (NVRTC)."""
    g = zoo.CELLS["gru"]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p, device="cuda")
    lib = m.export(tmp_path / "gru_cuda.so")
    assert b"main_kernel" in lib.read_bytes()
    import tvm

    if not tvm.cuda(0).exist:  # (with a GPU it runs: tests/test_tvm_gpu.py)
        with pytest.raises(rg.CompileError, match=r"no CUDA GPU.*export"):
            m.run({"x": np.zeros((2, 1, 3), "float32")})
    # a gradient graph: the sums over steps are kernels of their own, after the rows'
    grad = rg.compile(rg.adjoint(g), target="tvm", params=p, device="cuda")
    assert grad.kernel(False)[1].mod.imports[0].inspect_source().count("__global__") > 2


def test_cuda_builds_reductions_over_long_rows(tmp_path) -> None:
    """A layer norm and a softmax over 40 features build for CUDA: a GPU thread sums a
    row in one running value (the CPU's 16-lane partial sums are no CUDA type; a layer
    norm over 16 or more features failed to build)."""
    g = rg.Graph("long_rows")
    x = g.input("x", 40)
    h = g.state("h", 40)
    g.assign(h, rg.tanh(rg.layer_norm(x + h, g.param("s", (40,)), g.param("b", (40,)))))
    g.output("y", rg.softmax(h, -1))
    g.output("z", rg.log_softmax(x, -1))
    m = rg.compile(g, target="tvm", params=g.init_params(seed=0), device="cuda")
    assert b"main_kernel" in m.export(tmp_path / "long_rows.so").read_bytes()


def test_rows_in_parallel_on_the_cpu() -> None:
    g = zoo.CELLS["bidirectional_lstm"]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p, parallel=True)
    xs = np.random.default_rng(5).standard_normal((6, 4, 3)).astype("float32")
    lens = np.array([6, 1, 0, 4])
    _close(m.run({"x": xs}, sequence_lens=lens), rg.run(g, {"x": xs}, p, sequence_lens=lens))
    # three groups of rows: batches smaller than, equal to and not divisible by them
    m3 = rg.compile(g, target="tvm", params=p, parallel=3)
    for B in (1, 3, 7):
        xs = np.random.default_rng(B).standard_normal((5, B, 3)).astype("float32")
        _close(m3.run({"x": xs}), rg.run(g, {"x": xs}, p))
    with pytest.raises(rg.CompileError, match="parallel"):
        rg.compile(g, target="tvm", params=p, parallel=0)


@pytest.mark.parametrize("name", ["bidirectional_lstm", "rnn_reverse", "stacked_gru"])
def test_input_products_a_few_steps_ahead_inside_the_loop(name: str) -> None:
    """A loop's time-parallel products run inside it, 64 rows of steps at a time: batches
    that make one chunk per step, chunks of several steps with a short last one, and a
    whole sequence at once; forward and backward loops; with lengths too."""
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p)
    assert "T.int64(64) // " in m.generated(False).func.script()  # the chunked form is used
    rng = np.random.default_rng(8)
    for T, B in ((5, 70), (7, 20), (3, 2)):
        xs = rng.standard_normal((T, B, 3)).astype("float32")
        lens = rng.integers(0, T + 1, B)
        _close(m.run({"x": xs}), rg.run(g, {"x": xs}, p))
        _close(m.run({"x": xs}, sequence_lens=lens), rg.run(g, {"x": xs}, p, sequence_lens=lens))


@pytest.mark.parametrize("name", ["gru", "rnn_reverse"])
def test_unrolled_time_loops_run_every_length(name: str) -> None:
    """rg.compile(unroll=k): k steps written out per iteration, the rest in a plain loop;
    lengths below, at, above and between multiples of k, with lengths per row too."""
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    # (one core: the kernels split over cores are checked by test_tvm_plan and below; 2
    # steps, not more: LLVM's time grows faster than the code it is given, 47 s a kernel
    # for 3 steps of this GRU against 25 s for 2 and 4 s for none)
    m = rg.compile(g, target="tvm", params=p, unroll=2, threads=1)
    assert "for ti in T.unroll(T.int64(2))" in m.generated(False).func.script()
    rng = np.random.default_rng(10)
    for T in (0, 1, 2, 5):
        xs = rng.standard_normal((T, 2, 3)).astype("float32")
        lens = np.array([T, T // 2])
        _close(m.run({"x": xs}), rg.run(g, {"x": xs}, p))
        _close(m.run({"x": xs}, sequence_lens=lens), rg.run(g, {"x": xs}, p, sequence_lens=lens))


def test_compile_verb_writes_a_tvm_library(tmp_path) -> None:
    """`rnngraph compile FILE --target tvm -o model.so` (unrolled, products over the cores):
    the library and its sidecars load with rnngraph_tvm.load and match the reference."""
    from rnngraph.tools.cli import main

    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g)
    src = g.save(tmp_path / "lstm", p)
    lib = tmp_path / "lstm.so"
    argv = ["compile", src, "--target", "tvm", "--unroll", "2", "--parallel", "products"]
    assert main([*argv, "-o", str(lib)]) == 0
    assert lib.exists() and lib.with_suffix(".json").exists() and lib.with_suffix(".npz").exists()
    xs = np.random.default_rng(11).standard_normal((5, 3, 3)).astype("float32")
    _close(rnngraph_tvm.load(lib).run({"x": xs}), rg.run(g, {"x": xs}, p))


def test_outputs_written_in_place_or_copied() -> None:
    """An output's buffer is the output itself (no copy) unless lengths mask it; a node
    under two output names and an input passed through still come out right."""
    g = rg.Graph("outputs")
    x = g.input("x", 3)
    h = g.state("h", 4)
    h_new = rg.tanh(rg.linear(x, 4, name="i") + rg.linear(h, 4, bias=False, name="r"))
    g.assign(h, h_new)
    g.output("y", h_new)
    g.output("y_again", h_new)
    g.output("x_too", x)
    p = g.init_params(seed=0)
    m = rg.compile(g, target="tvm", params=p)
    y = g.output_nodes()["y"]
    for lens, kinds in ((False, {"output"}), (True, {"node", "output"})):
        assert {a.kind for a in m.generated(lens).args if a.node == y} == kinds
    xs = np.random.default_rng(9).standard_normal((5, 3, 3)).astype("float32")
    lens = np.array([5, 2, 0])
    _close(m.run({"x": xs}), rg.run(g, {"x": xs}, p))
    _close(m.run({"x": xs}, sequence_lens=lens), rg.run(g, {"x": xs}, p, sequence_lens=lens))


@pytest.mark.parametrize("name", ["stacked_gru", "narx", "bidirectional_lstm"])
def test_products_split_over_the_cores(name: str) -> None:
    """parallel="products": the kernel really has parallel loops (products' panels, nodes'
    rows) in one launch of the thread pool, and one build still matches the reference at
    every batch (fewer rows than a block: products on one thread), with lengths too."""
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p, parallel="products")
    script = m.generated(False).func.script()
    assert "for jb in T.parallel" in script and "for b in T.parallel(B)" in script
    # the pool launched once for the whole kernel, a barrier after every parallel loop
    assert script.count("pragma_parallel_launch_point") == 1
    assert script.count("T.parallel(") == script.count("pragma_parallel_barrier_when_finish")
    for B in (1, 5, 9, 14):
        xs = np.random.default_rng(B).standard_normal((7, B, 3)).astype("float32")
        lens = np.arange(B) % 8
        want = rg.run(g, {"x": xs}, p, sequence_lens=lens)
        _close(m.run({"x": xs}, sequence_lens=lens), want)
        _close(m.run({"x": xs}), rg.run(g, {"x": xs}, p))


@pytest.mark.parametrize("parallel", [None, "products"])
@pytest.mark.parametrize(("rows", "panel_bytes"), [(6, 64), (8, 128), (2, 64)])
def test_blocked_products_cover_every_row_and_column(
    parallel: str | None, rows: int, panel_bytes: int
) -> None:
    """Register blocks of an AVX2 plan (6 rows, panels of 16 float32 columns), an AVX-512
    one (8 rows, 32 columns) and a 16-register NEON one (2 rows): every count of rows left
    over after whole blocks (one smaller block per panel, or a few merged with the last
    whole block and split in two), fewer rows than a block (one block of them all times a
    few panels), a partial last panel; over whole sequences and inside a loop (the
    previous step's rows), on one core and split over the cores (one launch of the
    thread pool), against numpy."""

    plan = host_plan().replace(rows=rows, panel_bytes=panel_bytes)
    nr = plan.panel_width("float32")
    K, N = 37, nr * 9 + 3
    g = rg.Graph("products")
    x = g.input("x", K)
    h = g.state("h", N)
    w_in, w_rec = g.param("w_in", (K, N)), g.param("w_rec", (N, N))
    y = rg.tanh(rg.matmul(x, w_in) + rg.matmul(h, w_rec) * 0.05)
    g.assign(h, y)
    g.output("y", y)
    rng = np.random.default_rng(0)
    p = {"w_in": rng.standard_normal((K, N)) * 0.2, "w_rec": rng.standard_normal((N, N))}
    m = rg.compile(g, target="tvm", params=p, parallel=parallel, plan=plan)
    assert m.plan.rows == rows and m.plan.panel_width("float32") == nr
    for B in (*range(1, 2 * rows + 2), 32):
        T = 1 + B % 3
        xs = rng.standard_normal((T, B, K)).astype("float32")
        want, hs = [], np.zeros((B, N))
        for t in range(T):
            hs = np.tanh(xs[t] @ p["w_in"] + hs @ p["w_rec"] * 0.05)
            want.append(hs)
        np.testing.assert_allclose(m.run({"x": xs})["y"], np.stack(want), atol=2e-5)


@pytest.mark.parametrize(("M", "N"), [(1, 8), (3, 16), (4, 37), (11, 8)])
def test_products_of_two_signals_in_register_blocks(M: int, N: int) -> None:
    """Products of two signals (a per-step value times a per-sequence memory over whole
    sequences; a state times one inside the loop; a memory of a named length, whose
    number of keys is the sum's) in blocks of a 3-row plan with 16-column panels: rows and
    columns left over after whole blocks, a memory broadcast over the heads; against
    numpy. Fewer columns than half a panel take the plain loops."""
    plan = host_plan().replace(rows=3, panel_bytes=64)
    K = 19
    g = rg.Graph("memories")
    x = g.input("x", (2, M, K))
    mem = g.input("mem", (1, K, N), axis=None)  # (one for both heads)
    sq = g.input("sq", (2, K, K), axis=None)
    keys = g.input("keys", (2, "S", K), axis=None)
    h = g.state("h", (2, M, K))
    g.assign(h, rg.tanh(x + 0.1 * (h @ sq)))
    weights = rg.softmax(h @ rg.transpose(keys, [0, 1, 3, 2]), -1)  # (2, M, S)
    g.output("y", x @ mem)
    g.output("r", weights @ keys)
    rng = np.random.default_rng(0)
    m = rg.compile(g, target="tvm", params={}, plan=plan)
    for B, T, S in ((3, 4, 5), (1, 2, 12)):
        xs = {
            "x": rng.standard_normal((T, B, 2, M, K)).astype("float32"),
            "mem": rng.standard_normal((B, 1, K, N)).astype("float32"),
            "sq": rng.standard_normal((B, 2, K, K)).astype("float32"),
            "keys": rng.standard_normal((B, 2, S, K)).astype("float32"),
        }
        hs, hseq = np.zeros((B, 2, M, K)), []
        for t in range(T):
            hseq.append(hs)
            hs = np.tanh(xs["x"][t] + 0.1 * (hs @ xs["sq"]))
        e = np.stack(hseq) @ np.swapaxes(xs["keys"], -1, -2)
        w = np.exp(e - e.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        got = m.run(xs)
        np.testing.assert_allclose(got["y"], xs["x"] @ xs["mem"], atol=2e-4)
        np.testing.assert_allclose(got["r"], w @ xs["keys"], atol=2e-4)


STACKED = [
    "elman", "jordan", "rnn", "rnn_reverse", "lstm", "lstm_peephole_clip", "narx",
    "bidirectional_lstm", "state_delay_2", "param_initial_state", "layer_norm_lstm",
    "layer_norm_op_lstm",
]  # fmt: skip


@pytest.mark.parametrize("name", STACKED)
def test_cells_with_stacked_products_match_the_reference(name: str) -> None:
    """From _plan.STACK_ROWS batch rows a loop's input product and recurrent product
    are one product over ``[x_t | h]`` (an LSTM's gates): every zoo cell that has one,
    at batches on both sides of the threshold, caller initial states, lengths per row,
    and one step at a time. (The zoo's weights are small: the threshold for weights
    that stay in L1, which keeps small models' code short, is lowered here.)"""
    from rnngraph_tvm._plan import STACK_ROWS, host_plan

    plan = host_plan().replace(streamed_bytes=0)
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p, plan=plan)
    assert any(a.name.endswith(".stacked") for a in m.generated(False).args)
    if name in zoo.CAUSAL:
        step = rg.compile(g, target="tvm", params=p, mode="step", plan=plan)
        xs = zoo.feeds(g, 4, STACK_ROWS + 1, np.random.default_rng(6))
        got, want = step.stream(xs, step.initial_states(STACK_ROWS + 1)), rg.run(g, xs, p)
        _close({k: got[k] for k in want}, want)
    rng = np.random.default_rng(3)
    for T, B in ((5, STACK_ROWS - 1), (4, STACK_ROWS), (3, STACK_ROWS + 5)):
        xs, init = zoo.feeds(g, T, B, rng), zoo.caller_initial_states(g, B, rng)
        _close(m.run(xs, initial_states=init), rg.run(g, xs, p, initial_states=init))
        lens = rng.integers(0, T + 1, B)
        _close(
            m.run(xs, sequence_lens=lens, initial_states=init),
            rg.run(g, xs, p, sequence_lens=lens, initial_states=init),
        )


@pytest.mark.parametrize("parallel", [None, True, "products"])
def test_stacked_product_covers_rows_columns_and_the_bias(parallel: Any) -> None:
    """``tanh(x U + b + h W)`` with a partial last panel: from STACK_ROWS batch rows one
    product over ``[x_t | h]`` and ``[U; W]`` stacked, below it the two products; on one
    core, rows split over the cores (groups under the threshold), and products split
    over them; against numpy."""
    from rnngraph_tvm._plan import STACK_ROWS, host_plan

    plan = host_plan().replace(streamed_bytes=0)  # (a weight in L1 is not stacked)
    K, N = 21, 16 * 3 + 5
    g = rg.Graph("stacked")
    x, h = g.input("x", K), g.state("h", N)
    u, w, b = g.param("u", (K, N)), g.param("w", (N, N)), g.param("b", N)
    y = rg.tanh(rg.matmul(x, u) + b + rg.matmul(h, w))
    g.assign(h, y)
    g.output("y", y)
    rng = np.random.default_rng(1)
    p = {"u": rng.standard_normal((K, N)) * 0.3, "w": rng.standard_normal((N, N)) * 0.2}
    p["b"] = rng.standard_normal(N)
    m = rg.compile(g, target="tvm", params=p, parallel=parallel, plan=plan)
    args = m.generated(False).args
    assert any(a.name.endswith(".stacked") for a in args)
    assert any(a.stack for a in args)  # [U; W], packed once
    for T, B in ((3, STACK_ROWS - 1), (4, STACK_ROWS), (2, 2 * STACK_ROWS + 1), (3, 32)):
        xs = rng.standard_normal((T, B, K)).astype("float32")
        want, hs = [], np.zeros((B, N))
        for t in range(T):
            hs = np.tanh(xs[t] @ p["u"] + p["b"] + hs @ p["w"])
            want.append(hs)
        np.testing.assert_allclose(m.run({"x": xs})["y"], np.stack(want), atol=2e-5)


@pytest.mark.parametrize("n", [5, 16, 37])
def test_softmax_rows_against_scipy(n: int) -> None:
    """Softmax and log-softmax along a last axis of a fixed size (a row at a time, the
    max and the sum in vector lanes, with the entries past whole lanes), inside a loop
    and over whole sequences, and along another axis (the general loops), against
    scipy; large entries do not overflow (the max is taken first)."""
    from scipy.special import log_softmax, softmax

    g = rg.Graph("softmax")
    x = g.input("x", (3, n))
    h = g.state("h", (3, n))
    g.assign(h, rg.softmax(x + h, -1))
    g.output("p", rg.log_softmax(x * 30.0, -1))
    g.output("hs", h)
    g.output("q", rg.softmax(x, -2))
    rng = np.random.default_rng(n)
    xs = rng.standard_normal((4, 2, 3, n)).astype("float32")
    got = rg.compile(g, target="tvm", params={}).run({"x": xs})
    hs, want = np.zeros((2, 3, n)), []
    for t in range(4):
        want.append(hs)
        hs = softmax(xs[t] + hs, -1)
    np.testing.assert_allclose(got["hs"], np.stack(want), atol=1e-6)
    np.testing.assert_allclose(got["p"], log_softmax(xs.astype(np.float64) * 30.0, -1), atol=2e-5)
    np.testing.assert_allclose(got["q"], softmax(xs, -2), atol=1e-6)


def test_fast_exp_tanh_sigmoid_match_numpy() -> None:
    """The float32 formulas of ``_math`` (polynomials, not libm) over their whole range."""
    g = rg.Graph("math")
    x = g.input("x", 1)
    for name, fn in (("exp", rg.exp), ("tanh", rg.tanh), ("sigmoid", rg.sigmoid)):
        g.output(name, fn(x))
    m = rg.compile(g, target="tvm", params={})
    pts = np.concatenate(
        [
            np.linspace(-100, 100, 4001),
            np.geomspace(1e-30, 1, 200),
            -np.geomspace(1e-30, 1, 200),
            [0.0, 0.1249, 0.1251, -0.1251, 87.0, 88.7, 88.8, -86.9, -87.1, -104.0],
        ]
    ).astype("float32")
    got = m.run({"x": pts.reshape(-1, 1, 1)})
    ref = pts.astype(np.float64)
    with np.errstate(over="ignore"):
        e = np.exp(ref)
    inside = (ref > -87) & (ref < 88.72)
    rel = np.abs(got["exp"].ravel()[inside] - e[inside]) / e[inside]
    assert rel.max() < 3e-7
    assert np.all(np.isinf(got["exp"].ravel()[ref > 88.73]))
    assert np.all(got["exp"].ravel()[ref < -87.0] < 2e-38)
    np.testing.assert_allclose(got["tanh"].ravel(), np.tanh(ref), atol=2e-7, rtol=4e-7)
    np.testing.assert_allclose(got["sigmoid"].ravel(), 1 / (1 + np.exp(-ref)), atol=2e-7, rtol=4e-7)


@pytest.mark.parametrize("name", zoo.CAUSAL)
def test_step_models_stream_the_sequence(name: str) -> None:
    """Every causal cell, taps of several steps (narx, fir) included, one step at a time
    matches the sequence (a batch under and over _plan.STACK_ROWS; the zoo's weights
    stay in L1, so the stacked product's steps are checked in
    test_cells_with_stacked_products_match_the_reference); the carried values are named
    as the ONNX step model's."""
    from rnngraph_tvm._plan import STACK_ROWS

    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    step = rg.compile(g, target="tvm", params=p, mode="step")
    assert step.state_names == rg.compile(g, target="onnx", params=p, mode="step").state_names
    for B in (2, STACK_ROWS + 1):
        xs = np.random.default_rng(6).standard_normal((5, B, 3)).astype("float32")
        got, want = step.stream({"x": xs}, step.initial_states(B)), rg.run(g, {"x": xs}, p)
        assert set(got) == set(want) | {f"{n}_final" for n in step.state_names}
        _close({k: got[k] for k in want}, want)


def test_step_models_refuse_look_ahead_and_sums() -> None:
    g = zoo.CELLS["rnn_reverse"]()
    with pytest.raises(rg.CompileError, match="ahead"):
        rg.compile(g, target="tvm", params=zoo.params_for(g), mode="step")
    lstm = zoo.CELLS["lstm"]()
    with pytest.raises(rg.CompileError, match="sums over every step"):
        rg.compile(rg.adjoint(lstm), target="tvm", params=zoo.params_for(lstm), mode="step")


def test_one_launch_runs_each_phase_once_in_order() -> None:
    """_threads.one_launch: every thread runs the time loop, each parallel loop is split
    over them with a barrier after it, work outside parallel loops (a running count)
    runs once per step, and a parallel loop of one (whose accumulator TVM would move out
    of the launch, shared, were the loop dropped) runs once — on two threads."""
    import tvm
    from rnngraph_tvm._ops import I64, i64
    from rnngraph_tvm._threads import one_launch
    from tvm import tirx as tir

    n, steps = 9, 40
    a = tir.decl_buffer((n,), "float32", name="a")
    b = tir.decl_buffer((n,), "float32", name="b")
    count = tir.decl_buffer((1,), "float32", name="count")
    t, i, j, p, k = (tir.Var(v, I64) for v in "tijpk")
    acc = tir.decl_buffer((1,), "float32", name="acc", scope="global")
    total = tir.SeqStmt(  # a[0] = sum of b, through an accumulator
        [
            tir.AllocBuffer(acc),
            tir.BufferStore(acc, tir.const(0, "float32"), [i64(0)]),
            tir.For(
                k, i64(0), i64(n), tir.ForKind.SERIAL, tir.BufferStore(acc, acc[0] + b[k], [i64(0)])
            ),
            tir.BufferStore(a, acc[0] * tir.const(0.01, "float32"), [i64(0)]),
        ]
    )
    body = tir.For(
        t,
        i64(0),
        i64(steps),
        tir.ForKind.SERIAL,
        tir.SeqStmt(
            [
                tir.BufferStore(count, count[0] + tir.const(1, "float32"), [i64(0)]),
                tir.For(
                    i,
                    i64(0),
                    i64(n),
                    tir.ForKind.PARALLEL,
                    tir.BufferStore(
                        b, a[i64(n - 1) - i] * tir.const(0.5, "float32") + count[0], [i]
                    ),
                ),
                tir.For(p, i64(0), i64(1), tir.ForKind.PARALLEL, total),
                tir.For(j, i64(1), i64(n - 2), tir.ForKind.SERIAL, tir.BufferStore(a, b[j], [j])),
            ]
        ),
    )
    func = tir.PrimFunc([a, b, count], one_launch(body)).with_attr("global_symbol", "main")
    run = tvm.compile(tvm.IRModule({"main": func}), target={"kind": "llvm"})["main"]
    rng = np.random.default_rng(3)
    a0 = rng.standard_normal(n).astype("float32")
    want_a, want_b, c = a0.astype(np.float64), np.zeros(n), 0.0
    for _ in range(steps):
        c += 1
        want_b = want_a[::-1] * 0.5 + c
        want_a = want_a.copy()
        want_a[0] = want_b.sum() * 0.01
        want_a[1 : n - 1] = want_b[1 : n - 1]
    args = [tvm.runtime.tensor(x) for x in (a0, np.zeros(n, "float32"), np.zeros(1, "float32"))]
    run(*args)
    assert tvm.get_global_func("runtime.NumThreads")() >= 2  # (tests/conftest.py)
    assert args[2].numpy()[0] == steps
    np.testing.assert_allclose(args[1].numpy(), want_b, rtol=1e-5)
    np.testing.assert_allclose(args[0].numpy(), want_a, rtol=1e-5)


def test_c_device_library_compiles_and_runs(tmp_path) -> None:
    """Device "c": TVM's C for the kernels (plain loops: its C writer spells vector
    types as no C compiler reads them), compiled here into the library."""
    g = zoo.CELLS["gru_lbr"]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p, device="c")
    lib = m.export(tmp_path / "gru_c.so")
    xs = np.random.default_rng(4).standard_normal((4, 2, 3)).astype("float32")
    _close(rnngraph_tvm.load(lib).run({"x": xs}), rg.run(g, {"x": xs}, p))


@pytest.mark.parametrize("hidden", [4, 256])
def test_kernels_take_packed_weights_only(hidden: int) -> None:
    """The kernels take each weight packed, not the raw weights behind a transposed or
    packed copy (nor their intermediate transposes); where the products are stacked (a
    weight bigger than L1), the stacked ``[U; W]`` as well: measured, reading the
    unstacked loop's weights from it cost 5% at batch 1, and a stacked product over the
    two packed weights instead (two ``k`` loops into the same sums) 6% at batch 32."""
    g = rg.Graph("lstm")
    g.output("y", rg.cells.lstm(g.input("x", 8), hidden, name="c"))
    p = g.init_params(seed=1)
    m = rg.compile(g, target="tvm", params=p)
    gates = 4 * hidden
    nr = m.plan.panel_width("float32")
    padded = -(-gates // nr) * nr  # (columns of the last panel past the gates are zeros)
    for lens in (False, True):
        statics = [a for a in m.generated(lens).args if a.kind == "static"]
        copies = 2 if hidden == 256 else 1
        assert sum(int(np.prod(a.shape)) for a in statics) == copies * (8 + hidden) * padded + gates
        assert any(a.stack for a in statics) == (hidden == 256)
    for B in (1, 5):  # (5: the stacked loop)
        xs = np.random.default_rng(B).standard_normal((4, B, 8)).astype("float32")
        _close(m.run({"x": xs}), rg.run(g, {"x": xs}, p))


def test_deployed_library_takes_initial_states_and_streams(tmp_path) -> None:
    """rnngraph_tvm.load(...).run with initial_states (a tap's too) matches the reference;
    a step model exports its sequence model's library (`rnngraph compile --mode step`),
    which streams one step per call, the finals passed back; a state the caller must
    give is asked for by name, an unknown one refused."""
    from rnngraph.tools.cli import main

    rng = np.random.default_rng(5)
    for name in ("lstm", "state_delay_2"):
        g = zoo.CELLS[name]()
        p = zoo.params_for(g)
        m = rg.compile(g, target="tvm", params=p)
        deployed = rnngraph_tvm.load(m.export(tmp_path / f"{name}.so"))
        xs = zoo.feeds(g, 5, 3, rng)
        init = zoo.every_initial_state(g, 3, rng)
        lens = np.array([5, 1, 0])
        _close(
            deployed.run(xs, initial_states=init, sequence_lens=lens),
            rg.run(g, xs, p, initial_states=init, sequence_lens=lens),
        )
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g)
    src = g.save(tmp_path / "lstm", p)
    lib = tmp_path / "step.so"
    assert main(["compile", src, "--target", "tvm", "--mode", "step", "-o", str(lib)]) == 0
    deployed = rnngraph_tvm.load(lib)
    xs = zoo.feeds(g, 6, 2, rng)
    want = rg.run(g, xs, p)
    carried: dict[str, np.ndarray] = {}
    for t in range(6):
        out = deployed.run({k: v[t : t + 1] for k, v in xs.items()}, initial_states=carried)
        np.testing.assert_allclose(out["y"][0], want["y"][t], atol=1e-5)
        carried = {s: out[f"{s}_final"] for s in g.states}
    with pytest.raises(ValueError, match=r"\['nope'\] are no states"):
        deployed.run(xs, initial_states={"nope": np.zeros(4)})
    s = rg.Graph("stream")
    h = s.state("h", 2, init="input")
    s.assign(h, h + s.input("x", 2))
    s.output("y", h)
    deployed = rnngraph_tvm.load(rg.compile(s, target="tvm").export(tmp_path / "s.so"))
    with pytest.raises(ValueError, match=r"state 'h' takes its initial value from the caller"):
        deployed.run({"x": np.ones((3, 1, 2), "float32")})
    got = deployed.run({"x": np.ones((3, 1, 2), "float32")}, initial_states={"h": [5.0, 5.0]})
    assert got["h_final"].tolist() == [[8.0, 8.0]]


def test_a_cell_with_a_long_chain_of_element_wise_nodes() -> None:
    """A cell with a chain of 1,000 element-wise nodes in its loop raised RecursionError
    in the code generator's inlining (from about 600); a chain is now evaluated as one
    expression at most MAX_INLINE_DEPTH nodes deep (3.5 s and 370 MB to compile here)."""
    g = rg.Graph("long")
    x, h = g.input("x", 4), g.state("h", 4)
    v = rg.linear(x, 4, name="in") + rg.linear(h, 4, bias=False, name="rec")
    shared = h * 0.001
    for _ in range(500):
        v = v * 0.999 + shared
    g.assign(h, rg.tanh(v))
    g.output("y", v)
    p = zoo.params_for(g)
    xs = zoo.feeds(g, 5, 2, np.random.default_rng(0))
    _close(rg.compile(g, target="tvm", params=p).run(xs), rg.run(g, xs, p), 1e-4)


def test_kernel_cache_serves_a_second_build_of_the_same_kernels(tmp_path, monkeypatch) -> None:
    """$RNNGRAPH_TVM_KERNEL_CACHE: a host library built once for exactly these kernels is
    loaded by the next model that needs them (what .ci/run uses), with the same results;
    other kernels (another plan) get entries of their own."""
    monkeypatch.setenv("RNNGRAPH_TVM_KERNEL_CACHE", str(tmp_path))
    g = zoo.CELLS["gru"]()
    p = zoo.params_for(g)
    xs = {"x": np.random.default_rng(0).standard_normal((5, 2, 3)).astype("float32")}
    first = rg.compile(g, target="tvm", params=p, threads=1).run(xs)
    entries = sorted(tmp_path.glob("*.so"))
    assert len(entries) == 1
    built = entries[0].stat().st_ino  # (a build publishes a new file: a new inode)
    again = rg.compile(g, target="tvm", params=p, threads=1).run(xs)
    assert sorted(tmp_path.glob("*.so")) == entries and entries[0].stat().st_ino == built
    _close(again, first)
    _close(again, rg.run(g, xs, p))
    rg.compile(g, target="tvm", params=p, threads=1, unroll=2).run(xs)
    assert len(list(tmp_path.glob("*.so"))) == 2


def test_leaky_relu_and_products_along_an_axis() -> None:
    g = rg.Graph("ops")
    x = g.input("x", (3, 4))
    g.output("y", rg.reduce_prod(rg.leaky_relu(x, 0.125), axis=-1))
    xs = np.random.default_rng(0).normal(size=(5, 2, 3, 4)).astype("float32")
    want = rg.run(g, {"x": xs}, {})["y"]
    got = rg.compile(g, target="tvm", params={}).run({"x": xs})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_erf_sin_and_cos_in_a_recurrent_cell() -> None:
    """Exact GELU (erf) inside a recurrence, with a phase driving sin, cos, atan, floor and
    ceil: TVM and
    ONNX against the reference (each op alone is checked against onnx.reference in
    test_ops_vs_onnx, its gradient by finite differences in test_adjoint)."""
    g = rg.Graph("phases")
    x = g.input("x", 3)
    h = g.state("h", 4)
    a = rg.linear(rg.concat([x, h]), 4, name="cell")
    gelu = 0.5 * a * (1.0 + rg.erf(a * float(1 / np.sqrt(2))))
    g.assign(h, rg.tanh(gelu))
    steps = rg.floor(4.0 * h) + rg.ceil(3.0 * h)  # (piecewise constant, in quarter steps)
    g.output("y", rg.concat([rg.sin(3.0 * h), rg.cos(2.0 * h), rg.atan(5.0 * h), steps]))
    p = g.init_params(seed=2)
    xs = np.random.default_rng(1).normal(size=(7, 2, 3)).astype("float32") * 2
    want = rg.run(g, {"x": xs}, p)["y"]
    for target in ("tvm", "onnx"):
        got = rg.compile(g, target=target, params=p).run({"x": xs})["y"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=target)


def test_kernel_cache_is_the_users_by_default_and_can_be_turned_off(tmp_path, monkeypatch) -> None:
    """Without $RNNGRAPH_TVM_KERNEL_CACHE, built kernels go to ``tvm-kernels`` in the user's
    cache folder ($RNNGRAPH_CACHE here), so a model compiled again loads them; "off" (or
    empty) builds every time; past the size limit the entries used longest ago go first;
    a cache folder that cannot be written costs nothing but the cache."""
    from rnngraph_tvm import _model

    monkeypatch.delenv("RNNGRAPH_TVM_KERNEL_CACHE", raising=False)
    monkeypatch.setenv("RNNGRAPH_CACHE", str(tmp_path / "cache"))
    assert _model.kernel_cache() == tmp_path / "cache" / "tvm-kernels"
    g = rg.Graph("cached")
    x = g.input("x", 3)
    g.output("y", rg.tanh(rg.linear(x, 4, name="l")))
    p = g.init_params(seed=0)
    xs = {"x": np.ones((2, 1, 3), np.float32)}
    want = rg.run(g, xs, p)
    _close(rg.compile(g, target="tvm", params=p, threads=1).run(xs), want)
    assert len(list((tmp_path / "cache" / "tvm-kernels").glob("*.so"))) == 1
    for off in ("off", ""):
        monkeypatch.setenv("RNNGRAPH_TVM_KERNEL_CACHE", off)
        assert _model.kernel_cache() is None
    monkeypatch.delenv("RNNGRAPH_TVM_KERNEL_CACHE")
    monkeypatch.delenv("RNNGRAPH_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(homeless))
    assert _model.kernel_cache() is None  # (no home: no cache, and the build goes on)
    monkeypatch.undo()
    monkeypatch.setenv("RNNGRAPH_CACHE", str(tmp_path / "cache"))
    old, new = (tmp_path / "prune" / f"{n}.so" for n in ("old", "new"))
    old.parent.mkdir()
    old.write_bytes(b"x" * 10)
    new.write_bytes(b"x" * 10)
    os.utime(old, (1, 1))
    _model._prune(old.parent, 15)
    assert not old.exists() and new.exists()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("RNNGRAPH_TVM_KERNEL_CACHE", str(blocked / "kernels"))
    _close(rg.compile(g, target="tvm", params=p, threads=1).run(xs), want)
