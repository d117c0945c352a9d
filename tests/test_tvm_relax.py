"""The TVM backend's Relax module (``m.relax()``), built by TVM and run by its Relax VM.

Cells that pass every kind of argument against the reference (two lengths
and batches from one build, lengths per row), initial values from the caller,
an exported Relax library loaded back, and the CUDA build. Marked slow (each
build compiles LLVM code); CI runs them.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

tvm = pytest.importorskip("tvm")
pytestmark = pytest.mark.slow

from tvm import relax  # noqa: E402  (after the skip: TVM may be missing)


class _OnRelaxVM:
    """A model's two Relax modules (with and without ``sequence_lens``) built for the
    host and run by the Relax VM, called as ``m.run`` is."""

    def __init__(self, m: Any, built: Any = None) -> None:
        self.parts = {}
        for lens in (False, True):
            mod = m.relax(sequence_lens=lens)
            main = mod["main"]
            ex = tvm.compile(mod, target=m.device.target) if built is None else built(mod)
            params = [str(p.name) for p in main.params]
            results = [str(r) for r in main.attrs["results"]]
            self.parts[lens] = (ex, params, results)
        self.local = threading.local()  # a VirtualMachine per thread: one is not shareable

    def _vm(self, lens: bool) -> Any:
        vms = self.local.__dict__.setdefault("vms", {})
        if lens not in vms:
            vms[lens] = relax.VirtualMachine(self.parts[lens][0], tvm.cpu())
        return vms[lens]

    def run(
        self,
        inputs: dict[str, Any],
        initial_states: dict[str, Any] | None = None,
        sequence_lens: Any = None,
    ) -> dict[str, np.ndarray]:
        _, params, results = self.parts[sequence_lens is not None]
        vm = self._vm(sequence_lens is not None)
        unknown = set(initial_states or {}) - set(params)
        assert not unknown, f"main takes no initial values for {sorted(unknown)}"
        feeds = {
            k: np.asarray(v, np.float32) for k, v in {**inputs, **(initial_states or {})}.items()
        }
        if sequence_lens is not None:
            feeds["sequence_lens"] = np.asarray(sequence_lens, np.int64)
        out = vm["main"](*(tvm.runtime.tensor(np.ascontiguousarray(feeds[p])) for p in params))
        return {name: o.numpy() for name, o in zip(results, out, strict=True)}


# Every kind of argument main passes: inputs and lengths, weights (a 0-d one: gru's),
# zero, parameter and two-step-back initial values, taps, a backward loop, two layers.
# (The kernel itself is the one tests/test_tvm_backend.py checks for every cell.)
RELAX_CELLS = [
    "lstm",
    "gru",
    "narx",
    "state_delay_2",
    "param_initial_state",
    "bidirectional_lstm",
    "stacked_gru",
]


@pytest.mark.parametrize("name", RELAX_CELLS)
def test_cells_through_relax(name: str) -> None:
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    zoo.check_model(g, p, _OnRelaxVM(rg.compile(g, target="tvm", params=p)), every_state=False)


def test_relax_main_calls_the_kernel_with_weights_as_constants() -> None:
    """``main`` takes the inputs only (weights are constants, already packed), calls
    ``rnngraph_kernel`` through ``call_tir`` with symbolic T and B, and names its results."""
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g)
    mod = rg.compile(g, target="tvm", params=p).relax()
    main = mod["main"]
    assert [str(v.name) for v in main.params] == ["x"]
    assert [str(r) for r in main.attrs["results"]] == ["y", "l.h_final", "l.c_final"]
    assert isinstance(mod["rnngraph_kernel"], tvm.tirx.PrimFunc)
    script = mod.script()
    assert "R.call_tir(cls.rnngraph_kernel" in script and "x: R.Tensor((T_1, B, 3)" in script


def test_relax_initial_values_from_the_caller() -> None:
    """A state whose initial value comes from the caller is a parameter of ``main``."""
    g = rg.Graph("stream")
    x = g.input("x", 2)
    h = g.state("h", 2, init="input")
    g.assign(h, rg.tanh(h * 0.5 + x))
    g.output("y", h)
    m = _OnRelaxVM(rg.compile(g, target="tvm", params={}))
    assert m.parts[False][1] == ["x", "h"] and m.parts[True][1] == ["x", "sequence_lens", "h"]
    rng = np.random.default_rng(4)
    xs, h0 = rng.standard_normal((5, 3, 2)), rng.standard_normal((3, 2))
    zoo.assert_close(
        m.run({"x": xs}, initial_states={"h": h0}),
        rg.run(g, {"x": xs}, initial_states={"h": h0}),
    )


def test_relax_library_exports_and_loads(tmp_path: Any) -> None:
    """The Relax executable exported as a shared library, loaded back by the TVM runtime
    and run by the Relax VM."""
    g = zoo.CELLS["stacked_gru"]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p)

    def exported(mod: Any) -> Any:
        path = tmp_path / f"relax_{len(list(tmp_path.iterdir()))}.so"
        tvm.compile(mod, target=m.device.target).export_library(str(path))
        return tvm.runtime.load_module(str(path))

    zoo.check_model(g, p, _OnRelaxVM(m, built=exported), every_state=False)


def test_relax_builds_for_cuda_without_a_gpu() -> None:
    """m.relax_build() for device="cuda": the kernel's buffers are not ``__restrict__``
    (a block's threads read each other's stores); it runs on a GPU in test_tvm_gpu."""
    g = zoo.CELLS["gru"]()
    m = rg.compile(g, target="tvm", params=zoo.params_for(g), device="cuda")
    ex = m.relax_build()
    libs, cuda = list(ex.mod.imports), []
    while libs:  # (the VM's library imports the host code, which imports the CUDA module)
        lib = libs.pop()
        libs += list(lib.imports)
        cuda += [lib.inspect_source()] if lib.kind == "cuda" else []
    assert cuda and all("__global__" in src and "__restrict__" not in src for src in cuda)


def test_compile_verb_writes_a_relax_library(tmp_path: Any, capsys: Any) -> None:
    """`rnngraph compile FILE --target tvm --relax -o model.so`: one file, weights inside,
    with ``main`` and ``main_lens``; TVM's runtime loads it and its Relax VM runs it."""
    from rnngraph.tools.cli import main

    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g)
    src = g.save(tmp_path / "lstm", p)
    lib = tmp_path / "lstm_relax.so"
    assert main(["compile", src, "--target", "tvm", "--relax", "-o", str(lib)]) == 0
    assert lib.exists() and not lib.with_suffix(".npz").exists()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib)), tvm.cpu())
    rng = np.random.default_rng(12)
    xs = rng.standard_normal((6, 3, 3)).astype("float32")
    lens = np.array([6, 2, 0])
    want = rg.run(g, {"x": xs}, p)
    got = vm["main"](tvm.runtime.tensor(xs))
    np.testing.assert_allclose(got[0].numpy(), want["y"], atol=1e-5)
    want = rg.run(g, {"x": xs}, p, sequence_lens=lens)
    got = vm["main_lens"](tvm.runtime.tensor(xs), tvm.runtime.tensor(lens))
    np.testing.assert_allclose(got[0].numpy(), want["y"], atol=1e-5)
    assert main(["compile", src, "--target", "onnx", "--relax", "-o", str(tmp_path / "m")]) != 0
    assert "--relax is for --target tvm" in capsys.readouterr().err
