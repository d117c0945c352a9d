"""The TVM backend's GPU kernel: one thread block per batch row, its threads sharing
out each node's elements, a barrier after each node.

Two ways in. On every machine, the same kernel *emulated* on the CPU (each
node's threads one after another, blocks of 32 threads so that wide rows
take several rounds): this checks its indexing against the reference. Where
a CUDA GPU is present (``tvm.cuda(0).exist``), the real thing: every cell,
lengths, initial states, step models, exported libraries and recursive nets
on the GPU against the reference. Without a GPU those tests skip, saying so;
the CUDA build itself is checked without one in ``test_tvm_backend``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import rnngraph as rg
from tests import zoo
from tests.strategies import random_graphs
from tests.tree_zoo import CELLS as TREE_CELLS
from tests.tree_zoo import per_node, tree_batch, tree_graph, tree_params

tvm = pytest.importorskip("tvm")
pytestmark = pytest.mark.slow

from rnngraph_tvm import TvmModel  # noqa: E402  (after the skip: TVM may be missing)

HAS_GPU = bool(tvm.cuda(0).exist)
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU on this machine")


_close = zoo.assert_close


def _emulated(g: rg.Graph, p: dict[str, np.ndarray], block: int = 32) -> TvmModel:
    host = rg.compile(g, target="tvm", params=p)
    return TvmModel(host.program, host.params, host.device, rows="emulated", block=block)


@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_gpu_kernel_emulated_on_the_cpu(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    zoo.check_model(g, p, _emulated(g, p))


def _random(rgraph, device: str | None) -> None:
    g = rgraph.graph
    p = zoo.params_for(g)
    m = _emulated(g, p) if device is None else rg.compile(g, target="tvm", params=p, device=device)
    zoo.check_random_graph(rgraph, m, p)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(min_delay=1, max_delay=3))
def test_random_graphs_emulated(rgraph) -> None:
    _random(rgraph, None)


def test_emulated_blocks_narrower_than_a_row() -> None:
    """Rows of 16 gates shared out over 8 threads, two rounds each, and 3 threads, six:
    every element is computed once (a round's bound check), whatever the width."""
    g = rg.Graph("lstm8")
    g.output("y", rg.cells.lstm(g.input("x", 16), 4, name="c"))
    p = g.init_params(seed=3)
    for block in (8, 3):
        zoo.check_model(g, p, _emulated(g, p, block=block), seed=block)


def test_gpu_kernel_has_one_barrier_per_node() -> None:
    g = zoo.CELLS["gru"]()
    m = rg.compile(g, target="tvm", params=zoo.params_for(g), device="cuda")
    text = m.generated(False).func.script()
    assert "threadIdx.x" in text and "blockIdx.x" in text
    phases, barriers = _phases_and_barriers(text)
    assert phases >= 8  # (the GRU's gates, candidate and state, inside the step loop)
    assert barriers == phases


def _phases_and_barriers(script: str) -> tuple[int, int]:
    """(node phases, barriers) of a GPU kernel's TIR script, checking that each barrier
    directly follows a node phase (a loop over the node's elements, ``for io``) at the
    same depth, and each phase is directly followed by one."""
    lines = [ln for ln in script.splitlines() if ln.strip()]
    depth = [len(ln) - len(ln.lstrip()) for ln in lines]
    phases = barriers = 0
    for i, ln in enumerate(lines):
        if ln.strip().startswith("for io in"):
            phases += 1
            nxt = next(j for j in range(i + 1, len(lines)) if depth[j] <= depth[i])
            assert depth[nxt] == depth[i] and "tvm_storage_sync" in lines[nxt], ln
        elif "tvm_storage_sync" in ln:
            barriers += 1
            prev = next(j for j in range(i - 1, -1, -1) if depth[j] <= depth[i])
            assert lines[prev].strip().startswith("for io in"), f"a barrier after {lines[prev]}"
    return phases, barriers


def test_the_barrier_count_sees_a_missing_barrier() -> None:
    script = "for io in range(1):\n  x\nT.tvm_storage_sync()\nfor io in range(1):\n  y\nz\n"
    with pytest.raises(AssertionError):
        _phases_and_barriers(script)


def test_cuda_kernels_share_their_buffers_between_threads() -> None:
    """No ``__restrict__`` on the kernel's buffers (threads read each other's stores after
    a barrier; with it the CUDA compiler hoisted loads above the barrier), and TVM's
    source hook is left as it was found."""
    import tvm_ffi
    from rnngraph_tvm._targets import shared_buffers

    g = zoo.CELLS["lstm"]()
    hook = "tvm_callback_cuda_postproc"
    assert tvm_ffi.get_global_func(hook, allow_missing=True) is None
    m = rg.compile(g, target="tvm", params=zoo.params_for(g), device="cuda")
    source = m.kernel(False)[1].mod.imports[0].inspect_source()
    assert "__global__" in source and "__restrict__" not in source
    assert tvm_ffi.get_global_func(hook, allow_missing=True) is None
    seen: list[str] = []

    def users_hook(code: str, *_: object) -> str:
        seen.append(code)
        return code

    tvm_ffi.register_global_func(hook, users_hook)
    try:
        with shared_buffers():  # a user's hook runs first, and stays
            assert tvm_ffi.get_global_func(hook)("int* __restrict__ p;", None) == "int*  p;"
        assert seen == ["int* __restrict__ p;"]
        assert tvm_ffi.get_global_func(hook)("x", None) == "x"
    finally:
        tvm_ffi.remove_global_func(hook)


@pytest.mark.parametrize("name", sorted(TREE_CELLS))
def test_recursive_nets_emulated(name: str) -> None:
    make, step, _ = TREE_CELLS[name]
    g, _ = tree_graph(make())
    params = tree_params(g, 1)
    m = _emulated(g, {k: v.astype(np.float32) for k, v in params.items()})
    items, batch = tree_batch(name, [9, 1, 4], 0)
    want_root, want_nodes = per_node(step, params, items)
    got = m.run(batch)
    np.testing.assert_allclose(got["root"], want_root, atol=1e-5)
    np.testing.assert_allclose(got["states"], want_nodes, atol=1e-5)


GRADIENT_CELLS = ["lstm", "gru", "narx", "bidirectional_lstm", "layer_norm_lstm"]


def _check_gradients(g: rg.Graph, p: dict[str, np.ndarray], m: object) -> None:
    """The adjoint graph's sums over steps (one thread per element, after the rows' work)
    against ``rg.vjp``, with and without lengths per row."""
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((6, 3, 3)).astype("float32")
    cot = {
        k: rng.standard_normal((6, 3, *t.row_shape)).astype("float32") for k, t in g.outputs.items()
    }
    feeds = {"x": xs, **{f"cot:{k}": v for k, v in cot.items()}}
    for lens in (None, np.array([6, 0, 3])):
        got = m.run(feeds, sequence_lens=lens)  # type: ignore[attr-defined]
        _, want = rg.vjp(g, {"x": xs}, p, cotangents=cot, sequence_lens=lens)
        for k in p:
            np.testing.assert_allclose(got[f"grad:{k}"], want[k], atol=1e-4, rtol=1e-4, err_msg=k)
        np.testing.assert_allclose(got["grad:x"], want["x"], atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "narx", "layer_norm_lstm"])  # (a few: slow builds)
def test_gradient_graphs_emulated(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    _check_gradients(g, p, _emulated(rg.adjoint(g), p))


def _tree_gradients(device: str) -> None:
    g, _ = tree_graph(TREE_CELLS["child_sum"][0]())
    params = tree_params(g, 5)
    items, batch = tree_batch("child_sum", [12, 30, 1], 6)
    cot = np.random.default_rng(7).standard_normal((len(items), 4))
    _, want = rg.vjp(g, batch, params, cotangents={"root": cot})
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    m = rg.compile(rg.adjoint(g), target="tvm", params=p32, device=device)
    got = m.run({"tree": batch, "cot:root": cot})
    for k in params:
        np.testing.assert_allclose(got[f"grad:{k}"], want[k], atol=1e-4, rtol=1e-4, err_msg=k)
    np.testing.assert_allclose(got["grad:x"], want["x"], atol=1e-5)


# ------------------------------------------------------------------ on a GPU


@needs_gpu
@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_every_cell_on_the_gpu(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    zoo.check_model(g, p, rg.compile(g, target="tvm", params=p, device="cuda"))


@needs_gpu
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(min_delay=1, max_delay=3))
def test_random_graphs_on_the_gpu(rgraph) -> None:
    _random(rgraph, "cuda")


@needs_gpu
def test_wide_lstm_on_the_gpu() -> None:
    """The benchmark's shape (1024 gate columns: a full block) at batch 33."""
    g = rg.Graph("lstm")
    g.output("y", rg.cells.lstm(g.input("x", 64), 256, name="c"))
    p = g.init_params(seed=0)
    m = rg.compile(g, target="tvm", params=p, device="cuda")
    xs = np.random.default_rng(1).standard_normal((20, 33, 64)).astype("float32")
    _close(m.run({"x": xs}), rg.run(g, {"x": xs}, p), tol=2e-5)


@needs_gpu
@pytest.mark.parametrize("name", ["lstm", "narx", "state_delay_2"])
def test_step_models_on_the_gpu(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    step = rg.compile(g, target="tvm", params=p, mode="step", device="cuda")
    xs = np.random.default_rng(6).standard_normal((5, 2, 3)).astype("float32")
    got, want = step.stream({"x": xs}, step.initial_states(2)), rg.run(g, {"x": xs}, p)
    _close({k: got[k] for k in want}, want)


@needs_gpu
def test_relax_module_runs_on_the_gpu() -> None:
    """m.relax() built for cuda (m.relax_build) and run by the Relax VM on the GPU."""
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p, device="cuda")
    vm = tvm.relax.VirtualMachine(m.relax_build(), tvm.cuda(0))
    xs = np.random.default_rng(5).standard_normal((6, 3, 3)).astype("float32")
    got = vm["main"](tvm.runtime.tensor(xs, tvm.cuda(0)))
    names = [str(r) for r in m.relax()["main"].attrs["results"]]
    _close({n: o.numpy() for n, o in zip(names, got, strict=True)}, rg.run(g, {"x": xs}, p))


@needs_gpu
def test_exported_cuda_library_runs_on_the_gpu(tmp_path) -> None:
    import rnngraph_tvm

    g = zoo.CELLS["bidirectional_lstm"]()
    p = zoo.params_for(g)
    path = rg.compile(g, target="tvm", params=p, device="cuda").export(tmp_path / "m.so")
    deployed = rnngraph_tvm.load(path)
    xs = np.random.default_rng(3).standard_normal((6, 3, 3)).astype("float32")
    _close(deployed.run({"x": xs}), rg.run(g, {"x": xs}, p))
    lens = np.array([6, 0, 2])
    _close(deployed.run({"x": xs}, sequence_lens=lens), rg.run(g, {"x": xs}, p, sequence_lens=lens))


@needs_gpu
@pytest.mark.parametrize("name", sorted(TREE_CELLS))
def test_recursive_nets_on_the_gpu(name: str) -> None:
    make, step, _ = TREE_CELLS[name]
    g, _ = tree_graph(make())
    params = tree_params(g, 1)
    m = rg.compile(g, target="tvm", params=params, device="cuda")
    items, batch = tree_batch(name, [300, 3, 1, 40], 1)
    want_root, want_nodes = per_node(step, params, items)
    got = m.run(batch)
    np.testing.assert_allclose(got["root"], want_root, atol=1e-5)
    np.testing.assert_allclose(got["states"], want_nodes, atol=1e-5)


@needs_gpu
@pytest.mark.parametrize("name", GRADIENT_CELLS)
def test_gradient_graphs_on_the_gpu(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    _check_gradients(g, p, rg.compile(rg.adjoint(g), target="tvm", params=p, device="cuda"))


@needs_gpu
def test_tree_gradients_on_the_gpu() -> None:
    _tree_gradients("cuda")
