"""The CPU kernels' plan: derived from the target, shared over the cores by batch, tuned.

What each CPU's plan is (AVX2, AVX-512 with and without LLVM's 256-bit
preference, NEON on 64 and 32-bit ARM), that every plan's sums fit the
registers, that plans other than the default compute the same results, that
threads are used by default and split each call by its batch, and that the
tuner keeps its result per CPU and shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

pytest.importorskip("tvm")

from rnngraph_tvm import _tune
from rnngraph_tvm._plan import Cpu, Plan, cores, derive, host_plan
from rnngraph_tvm._targets import DEVICES, resolve


def _cpu(spec: dict[str, Any]) -> Cpu:
    return Cpu.of(spec, here=False)


@pytest.mark.parametrize(
    ("spec", "vector", "registers", "rows", "panel_bytes"),
    [
        ({"kind": "llvm", "mcpu": "haswell"}, 32, 16, 6, 64),  # 6 x 2 sums of 16 registers
        ({"kind": "llvm", "mcpu": "znver4"}, 64, 32, 8, 128),  # AVX-512: 32 registers
        # Intel's first AVX-512 cores: LLVM splits 512-bit vectors, 32 registers stay
        ({"kind": "llvm", "mcpu": "skylake-avx512"}, 32, 32, 8, 64),
        ({"kind": "llvm", "mcpu": "skylake-avx512", "mattr": ["-prefer-256-bit"]}, 64, 32, 8, 128),
        (DEVICES["aarch64"], 16, 32, 6, 64),  # NEON: panels of four 128-bit vectors
        (DEVICES["armv7"], 16, 16, 2, 64),  # 16 quad registers
    ],
)
def test_plans_follow_the_target(
    spec: dict[str, Any], vector: int, registers: int, rows: int, panel_bytes: int
) -> None:
    cpu = _cpu(spec)
    assert (cpu.vector_bytes, cpu.registers) == (vector, registers)
    plan = derive(cpu)
    assert (plan.rows, plan.panel_bytes) == (rows, panel_bytes)
    vectors = plan.panel_bytes // cpu.vector_bytes
    # a block's sums, a panel row's vectors and a broadcast fit the registers
    assert plan.rows * vectors + vectors + 1 <= cpu.registers
    assert 8 <= plan.panels * vectors <= 16  # a single row: enough sums to hide FMA latency
    assert plan.chunk_bytes == cpu.l2_bytes // 4 and plan.streamed_bytes == cpu.l1_bytes
    text = str(plan)  # what a user prints
    assert f"{vector * 8}-bit vectors, {registers} registers" in text
    assert f"{rows} rows x {vectors} vectors" in text


def test_this_machine_is_read_from_the_system() -> None:
    """The host's plan: its own CPU (LLVM's name for it), caches from /sys, every core."""
    m = rg.compile(zoo.elman_graph(), target="tvm", params=zoo.params_for(zoo.elman_graph()))
    cpu = m.plan.cpu
    assert cpu.name == resolve("host").spec.get("mcpu", "llvm")
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if base.is_dir():
        sizes = {
            (int((i / "level").read_text()), (i / "type").read_text().strip()): (
                i / "size"
            ).read_text()
            for i in base.glob("index*")
        }
        l2 = sizes.get((2, "Unified")) or sizes.get((2, "Data"))
        if l2 is not None:
            assert cpu.l2_bytes == int(l2.strip().rstrip("K")) * 1024
    assert m.plan.threads == 1  # (the suite sets RNNGRAPH_THREADS=1: see conftest)
    assert "derived from the target" in str(m.plan)
    # a model for another machine: that machine's registers, one thread
    arm = rg.compile(zoo.elman_graph(), target="tvm", params=zoo.params_for(zoo.elman_graph()),
                     device="aarch64")  # fmt: skip
    assert (arm.plan.cpu.registers, arm.plan.threads) == (32, 1)


def test_threads_by_default_split_by_batch(monkeypatch: Any) -> None:
    """Unset, a model takes every core; a call splits its work by its batch (every
    product below a few rows a thread, groups of rows above), both kernels matching the
    reference; threads= and $RNNGRAPH_THREADS set it, bad values are refused by name."""
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g)
    monkeypatch.delenv("RNNGRAPH_THREADS")
    m = rg.compile(g, target="tvm", params=p)
    assert m.plan.threads == cores()
    # a cell this small does too little a step to share its products: rows (no barrier),
    # or one core for fewer rows than cores
    small = rg.compile(g, target="tvm", params=p, threads=2)
    assert small.step_macs < small.plan.share_macs
    assert small.split_for(1) == "serial" and small.split_for(2) == "rows"
    xs = zoo.feeds(g, 5, 1, np.random.default_rng(0))
    zoo.assert_close(small.run(xs), rg.run(g, xs, p))
    m2 = rg.compile(g, target="tvm", params=p, threads=2, plan=host_plan().replace(share_macs=0))
    assert m2.split_for(1) == "products" and m2.split_for(8) == "rows"
    for B in (1, 3, 8, 11):
        xs = zoo.feeds(g, 6, B, np.random.default_rng(B))
        lens = np.arange(B) % 7
        zoo.assert_close(m2.run(xs, sequence_lens=lens), rg.run(g, xs, p, sequence_lens=lens))
    assert {k[1] for k in m2._kernels} == {"products", "rows"}
    assert rg.compile(g, target="tvm", params=p, threads=1).split_for(64) == "serial"
    monkeypatch.setenv("RNNGRAPH_THREADS", "3")
    assert rg.compile(g, target="tvm", params=p).plan.threads == 3
    monkeypatch.setenv("RNNGRAPH_THREADS", "many")
    with pytest.raises(rg.CompileError, match="RNNGRAPH_THREADS"):
        rg.compile(g, target="tvm", params=p)
    with pytest.raises(rg.CompileError, match="threads must be"):
        rg.compile(g, target="tvm", params=p, threads=0)
    with pytest.raises(rg.CompileError, match="plan must be"):
        rg.compile(g, target="tvm", params=p, plan={"rows": 4})


OTHER = {"rows": 4, "panel_bytes": 256, "panels": 2, "stack_rows": 2, "ahead_rows": 32}
"""A plan far from any derived one: the tuner's candidates are between the two."""


ROWS_CELLS = {
    "lstm", "gru", "stacked_gru", "bidirectional_lstm", "layer_norm_lstm", "ntm",
    "clockwork", "mtrnn", "dnc", "esn", "lif", "narx", "second_order", "hopfield_continuous",
}  # fmt: skip
"""The cells whose kernel under another plan is also built split by groups of rows (the
same products as the shared-products kernel every cell builds, each group of rows on a
core): one of each family, so every cell costs one build."""


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(zoo.CELLS))
def test_another_plan_computes_the_same_results(name: str) -> None:
    """Every zoo cell under a plan other than the default (smaller blocks, wider panels,
    products stacked from 2 rows, a small chunk) and split over two threads both ways
    matches the reference (the default plan's model is checked on every cell by
    test_tvm_backend)."""
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    plan = host_plan().replace(
        **OTHER, chunk_bytes=4096, threads=2, rows_per_thread=2, share_macs=0
    )
    other = rg.compile(g, target="tvm", params=p, plan=plan)
    rng = np.random.default_rng(3)
    for B, split in ((1, "products"), (5, "rows")):  # (the zoo's cells are small: share_macs=0)
        assert other.split_for(B) == split
        if split == "rows" and name not in ROWS_CELLS:
            continue  # (one build a cell: see ROWS_CELLS)
        xs = zoo.feeds(g, 5, B, rng)
        init = zoo.caller_initial_states(g, B, rng)
        zoo.assert_close(other.run(xs, initial_states=init), rg.run(g, xs, p, initial_states=init))


def test_tuning_keeps_the_fastest_plan_per_cpu(tmp_path: Path, monkeypatch: Any) -> None:
    """tune= times candidate plans (each matching the reference) and caches the result
    keyed by the CPU and the shapes: the same compile again reads the cache, another CPU
    or other shapes tune afresh; bad tune values are refused."""
    monkeypatch.setenv("RNNGRAPH_CACHE", str(tmp_path))
    g = zoo.elman_graph()
    p = zoo.params_for(g)
    searched: list[Plan] = []
    search = _tune._search

    def counting(*args: Any) -> Any:
        best, timing = search(*args)
        searched.append(best)
        return best, timing

    monkeypatch.setattr(_tune, "_search", counting)
    monkeypatch.setattr(_tune, "_candidates", lambda plan: [("rows", [4]), ("panels", [2])])
    tune = {"batch": [1, 7], "steps": 4, "progress": False}
    m = rg.compile(g, target="tvm", params=p, tune=tune, threads=2)
    assert "tuned on this machine" in m.plan.source and len(searched) == 1
    doc = json.loads((tmp_path / "tune.json").read_text())
    (entry,) = doc.values()
    assert entry["plan"] == m.plan.tunables() and entry["batches"] == [1, 7]
    xs = zoo.feeds(g, 6, 7, np.random.default_rng(0))
    zoo.assert_close(m.run(xs), rg.run(g, xs, p))
    again = rg.compile(g, target="tvm", params=p, tune=tune, threads=2)
    assert len(searched) == 1 and "cached" in again.plan.source
    assert again.plan.tunables() == m.plan.tunables()
    monkeypatch.setattr(_tune, "cpu_model", lambda: "another CPU")
    rg.compile(g, target="tvm", params=p, tune=tune, threads=2)
    assert len(searched) == 2
    rg.compile(g, target="tvm", params=p, tune={**tune, "steps": 5}, threads=2)
    assert len(searched) == 3 and len(json.loads((tmp_path / "tune.json").read_text())) == 3
    for bad in ({"batch": 0}, {"shape": 3}, "fast"):
        with pytest.raises(rg.CompileError, match="tune"):
            rg.compile(g, target="tvm", params=p, tune=bad)
    with pytest.raises(rg.CompileError, match="this machine"):
        rg.compile(g, target="tvm", params=p, tune=True, device="aarch64")


def test_tuning_without_a_home_folder_tunes_and_keeps_nothing(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """No cache folder to find (no $RNNGRAPH_CACHE, no $XDG_CACHE_HOME and Path.home()
    failing, as for a container's user with no passwd entry): the compile tunes and says
    the plan was not kept, instead of failing."""
    for var in ("RNNGRAPH_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)

    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(homeless))
    monkeypatch.setattr(_tune, "_search", lambda *args: (args[4].replace(rows=4), 1.0))
    g = zoo.elman_graph()
    m = rg.compile(g, target="tvm", params=zoo.params_for(g), tune={"batch": [2]}, threads=1)
    assert m.plan.rows == 4 and "no cache folder" in m.plan.source


def test_the_command_line_shows_sets_and_tunes_the_plan(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """``rnngraph compile --show-plan --threads N``; ``--tune`` is for the TVM target."""
    from rnngraph.tools.cli import main

    g = zoo.elman_graph()
    src = g.save(tmp_path / "elman", zoo.params_for(g))
    (tmp_path / "out").mkdir()
    out = str(tmp_path / "out" / "elman.so")  # (its sidecars: out/elman.json, .npz)
    assert (
        main(["compile", src, "--target", "tvm", "--threads", "2", "--show-plan", "-o", out]) == 0
    )
    err = capsys.readouterr().err
    assert "plan (derived from the target)" in err and "threads       2, auto" in err
    assert main(["compile", src, "--tune", "-o", str(tmp_path / "e.onnx")]) == 2
    assert "--tune is for --target tvm" in capsys.readouterr().err
    monkeypatch.setenv("RNNGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_tune, "_candidates", lambda plan: [("rows", [4])])
    args = ["compile", src, "--target", "tvm", "--tune-batch", "2", "--tune-steps", "3"]
    assert main([*args, "--show-plan", "-o", out]) == 0
    assert "tuned on this machine" in capsys.readouterr().err
    assert (tmp_path / "cache" / "tune.json").exists()


@pytest.mark.parametrize(
    ("cpu", "mattr"),
    [("skylake-avx512", ["-prefer-256-bit"]), ("icelake-server", ["-prefer-256-bit"]),
     ("znver4", None), ("znver3", None)],
)  # fmt: skip
def test_the_host_target_uses_all_512_bits_where_llvm_would_prefer_256(
    cpu: str, mattr: Any, monkeypatch: Any
) -> None:
    """An AVX-512 CPU that LLVM tunes for 256-bit vectors builds host kernels for the
    full registers (as onnxruntime's kernels are); other CPUs keep LLVM's choice."""
    from rnngraph_tvm._targets import host_spec
    from tvm.target import codegen

    monkeypatch.setattr(codegen, "llvm_get_system_cpu", lambda: cpu)
    spec = host_spec()
    assert spec.get("mattr") == mattr and spec["mcpu"] == cpu
    assert Cpu.of(spec, here=False).vector_bytes == (64 if cpu != "znver3" else 32)
