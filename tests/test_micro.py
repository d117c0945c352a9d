"""The microcontroller backend: integer-only C for a quantised graph's step, bit-exact
against the integer graph's reference run (``rg.run`` of ``rg.quant.to_integer``'s
graph) — natively, and under qemu-system-arm on Cortex-M3/M4/M7/M55 board models
(an independent instruction-set implementation) — with no float in the step, and the
memory a keyword-spotting LSTM needs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from rnngraph_micro import missing_board_tools

import rnngraph as rg
from rnngraph.errors import CompileError, GraphError, InputError
from tests import zoo
from tests.test_integer import INTEGER_ZOO, quantised

CAUSAL = [c for c in INTEGER_ZOO if c not in ("rnn_reverse", "bidirectional_lstm")]

HAS_CC = shutil.which("cc") is not None
NO_BOARDS = missing_board_tools()
HAS_ARM = NO_BOARDS is None
needs_cc = pytest.mark.skipif(not HAS_CC, reason="no host C compiler (cc)")
needs_arm = pytest.mark.skipif(not HAS_ARM, reason=str(NO_BOARDS))


def _same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


@needs_cc
@pytest.mark.parametrize("cell", CAUSAL)
def test_host_c_equals_the_integer_reference_bit_for_bit(cell: str) -> None:
    g, _, qg, qp = quantised(cell)
    ig, ip = rg.quant.to_integer(qg, qp)
    m = rg.compile(qg, target="micro", params=qp, device="host", batch=3)
    xs = zoo.feeds(g, 10, 3, np.random.default_rng(5))
    _same(m.run(xs), rg.run(ig, xs, ip))


@needs_arm
@pytest.mark.parametrize(
    ("cell", "device"),
    [("lstm", "cortex-m4"), ("gru", "cortex-m4"), ("narx", "cortex-m4"),
     ("lstm_peephole_clip", "cortex-m55"), ("stacked_gru", "cortex-m3"),
     ("ctrnn", "cortex-m7"), ("layer_norm_lstm", "cortex-m4")],
)  # fmt: skip
def test_cortex_m_under_qemu_equals_the_integer_reference(cell: str, device: str) -> None:
    g, _, qg, qp = quantised(cell)
    ig, ip = rg.quant.to_integer(qg, qp)
    m = rg.compile(qg, target="micro", params=qp, device=device, batch=2)
    xs = zoo.feeds(g, 9, 2, np.random.default_rng(3))
    _same(m.run(xs), rg.run(ig, xs, ip))
    assert m.stats["steps"] == 9 and m.stats["instructions_per_step"] > 100
    assert m.float_symbols() == []  # soft-float: any float op would call a helper


@needs_arm
def test_a_keyword_spotting_lstm_fits_a_small_microcontroller() -> None:
    g = rg.Graph("kws")
    g.output("y", rg.linear(rg.cells.lstm(g.input("x", 10), 64, name="c"), 12, name="out"))
    p = g.init_params(seed=0)
    rng = np.random.default_rng(0)
    cal = [{"x": rng.normal(size=(30, 8, 10)).astype("float32")} for _ in range(2)]
    qg, qp = rg.quantize(g, p, calibration=cal)
    m = rg.compile(qg, target="micro", params=qp, device="cortex-m4")
    mem = m.memory()
    assert mem["ram_bytes"] + mem["stack_bytes"] < 64 * 1024, mem
    assert mem["flash_bytes"] < 64 * 1024, mem  # int8 weights: 4 * 64 * 74 + 64 * 12 bytes
    xs = cal[0]["x"][:5, :1]
    ig, ip = rg.quant.to_integer(qg, qp)
    _same(m.run({"x": xs}), rg.run(ig, {"x": xs}, ip))
    assert m.float_symbols() == []


@needs_cc
def test_a_step_model_streams_like_the_sequence() -> None:
    g, _, qg, qp = quantised("state_delay_2")
    ig, ip = rg.quant.to_integer(qg, qp)
    m = rg.compile(qg, target="micro", params=qp, device="host", mode="step", batch=2)
    xs = zoo.feeds(g, 6, 2, np.random.default_rng(2))["x"]
    want = rg.run(ig, {"x": xs}, ip)
    states: dict = {}
    for t in range(6):
        out = m.run({"x": xs[t]}, initial_states=states)
        np.testing.assert_array_equal(out["y"], want["y"][t])
        states = {k.removesuffix("_final"): v for k, v in out.items() if k.endswith("_final")}
    assert set(states) > set(g.states)  # the delayed read's register is a state too
    # (the unit-delay form's "s" holds what s was assigned a step earlier: its delay is 2)
    np.testing.assert_array_equal(out["s_final"], rg.run(ig, {"x": xs[:-1]}, ip)["s_final"])


@needs_cc
def test_saved_sources_build_on_their_own(tmp_path) -> None:
    import subprocess

    _, _, qg, qp = quantised("gru")
    m = rg.compile(qg, target="micro", params=qp, device="host")
    folder = m.save(tmp_path / "fw")
    names = sorted(p.name for p in folder.iterdir())
    assert {"rg_model.c", "rg_model.h", "rg_micro_crt.c", "rg_micro.ld"} <= set(names)
    src = (folder / "rg_model.c").read_text()
    assert "float" not in src and "double" not in src and "malloc" not in src
    res = subprocess.run(["cc", "-c", "-std=c11", "-Wall", "-Werror", "-pedantic",
                          str(folder / "rg_model.c"), "-o", str(tmp_path / "m.o")],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr


def test_bad_requests_are_named() -> None:
    g, p, qg, qp = quantised("elman")
    with pytest.raises(CompileError, match="not quantised"):
        rg.compile(g, target="micro", params=p)
    with pytest.raises(CompileError, match="unknown device 'cortex-m0'"):
        rg.compile(qg, target="micro", params=qp, device="cortex-m0")
    _, _, qb, qbp = quantised("bidirectional_lstm")
    with pytest.raises(CompileError, match="causal"):
        rg.compile(qb, target="micro", params=qbp, device="host")
    _, _, qn, qnp = quantised("ntm", integer_only=False)
    with pytest.raises(GraphError, match="is a float value"):
        rg.compile(qn, target="micro", params=qnp, device="host")
    if HAS_CC:
        m = rg.compile(qg, target="micro", params=qp, device="host", batch=2)
        with pytest.raises(InputError, match="batch 2 is fixed"):
            m.run({"x": np.zeros((4, 3, 3), np.float32)})
        with pytest.raises(InputError, match="missing input 'x'"):
            m.run({})
        with pytest.raises(InputError, match="takes 10 integers"):
            m.run({"x": np.zeros((4, 2, 3), np.float32)}, initial_states={"e.h": np.zeros(3)})


def test_a_toolchain_without_its_c_library_is_named_with_the_package_to_install(
    monkeypatch,
) -> None:
    """Debian's gcc-arm-none-eabi installed without its recommends has no string.h: the
    board build says so, naming newlib's package, instead of failing in the compiler (and
    the tests that need boards skip with that reason)."""
    from rnngraph_micro import _model

    monkeypatch.setattr(_model.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(_model, "_has_c_library", lambda cc: False)
    assert "libnewlib-arm-none-eabi" in str(missing_board_tools())
    _, _, qg, qp = quantised("gru")
    m = rg.compile(qg, target="micro", params=qp, device="cortex-m4")
    with pytest.raises(rg.BackendUnavailableError, match=r"string\.h"):
        m.run({"x": np.zeros((2, 1, zoo.I), np.float32)})
    monkeypatch.setattr(_model, "_has_c_library", lambda cc: True)
    assert missing_board_tools() is None
