"""The aarch64 libraries of an LSTM (float, and integer-only), run under qemu user
emulation, against the reference.

The arm64 side is a Debian sysroot with Python 3.11, numpy and the TVM runtime
(``.ci/aarch64-sysroot`` builds it; ``.ci/run`` caches it under
``~/.cache/rnngraph/aarch64-sysroot`` or ``$RNNGRAPH_AARCH64_SYSROOT``). The
library is loaded there by ``rnngraph_tvm/_deploy.py`` alone: no rnngraph, no onnx.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

pytest.importorskip("tvm")
pytestmark = pytest.mark.slow

SYSROOT = Path(
    os.environ.get(
        "RNNGRAPH_AARCH64_SYSROOT", Path.home() / ".cache" / "rnngraph" / "aarch64-sysroot"
    )
)
DEPLOY = Path(__file__).resolve().parents[1] / "backends" / "rnngraph_tvm" / "_deploy.py"

RUNNER = """
import sys, numpy as np, tvm
from tvm.runtime.vm import VirtualMachine
sys.path.insert(0, sys.argv[1])
import deploy
here, kernel, relax, inputs, out = sys.argv[1:]
with np.load(inputs) as z:
    feeds = {k: z[k] for k in z.files if k != "sequence_lens"}
    lens = z["sequence_lens"]
outs = {}
for i, path in enumerate(kernel.split(",")):  # (several libraries: one start-up of TVM)
    tag = "kernel" if i == 0 else f"kernel{i}"
    model = deploy.load(path)
    outs.update({f"{tag}:{k}": v for k, v in model.run(feeds).items()})
    outs.update({f"{tag}_lens:{k}": v for k, v in model.run(feeds, sequence_lens=lens).items()})
if relax == "-":  # (the kernel library alone)
    np.savez(out, **outs)
    sys.exit(0)
vm = VirtualMachine(tvm.runtime.load_module(relax), tvm.cpu())
for entry, args in (("main", (feeds["x"],)), ("main_lens", (feeds["x"], lens))):
    got = vm[entry](*(tvm.runtime.tensor(a) for a in args))
    outs.update({f"{entry}:{i}": got[i].numpy() for i in range(len(got))})
np.savez(out, **outs)
"""


def _ready() -> str | None:
    if shutil.which("qemu-aarch64-static") is None:
        return "qemu-aarch64-static is not installed (Debian's qemu-user-static)"
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        return "aarch64-linux-gnu-gcc is not installed (Debian's gcc-aarch64-linux-gnu)"
    if not (SYSROOT / ".done").exists():
        return f"no arm64 sysroot at {SYSROOT} (.ci/aarch64-sysroot builds one)"
    return None


def _emulate(tmp_path: Path, kernel: Path | str, relax: Path | str, feeds: dict) -> dict:
    """Run the runner under qemu on the arm64 sysroot (``kernel``: one library, or several
    joined by commas); its outputs."""
    np.savez(tmp_path / "inputs.npz", **feeds)
    shutil.copy(DEPLOY, tmp_path / "deploy.py")
    (tmp_path / "runner.py").write_text(RUNNER)
    python = SYSROOT / "root" / "usr" / "bin" / "python3.11"
    env = {**os.environ, "PYTHONPATH": str(SYSROOT / "site")}
    out = tmp_path / "outputs.npz"
    done = subprocess.run(
        [
            "qemu-aarch64-static",
            "-L",
            str(SYSROOT / "root"),
            str(python),
            *map(str, (tmp_path / "runner.py", tmp_path, kernel, relax)),
            *map(str, (tmp_path / "inputs.npz", out)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out) as got:
        return {k: got[k] for k in got.files}


DOTPROD = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon", "+dotprod"]}
"""An Armv8.2 core with the dot-product extension (Cortex-A55/A76 and later)."""


def test_aarch64_integer_lstm_is_bit_exact_under_qemu(tmp_path: Path) -> None:
    """The integer-only LSTM (rg.quant.to_integer) as aarch64 TVM libraries: int8
    weights, int32 products (plain multiply-adds on Armv8.0, ``sdot`` for the int8
    signal's product on a core with the dot-product extension), multiply-and-shift
    requantisation, tables — each bit for bit the integer graph's reference, with and
    without ``sequence_lens`` (both libraries in one emulated process)."""
    why = _ready()
    if why:
        pytest.skip(why)
    from tests.test_integer import quantised

    _, _, qg, qp = quantised("lstm")
    ig, ip = rg.quant.to_integer(qg, qp)
    kernels = []
    for device, name in (("aarch64", "neon"), (DOTPROD, "dotprod")):
        m = rg.compile(ig, target="tvm", params=ip, device=device)
        layouts = {a.layout for a in m.generated(False).args if a.layout}
        assert layouts == ({"vnni", "colsum"} if device is DOTPROD else set())
        kernels.append(str(m.export(tmp_path / f"lstm_int_{name}.so")))
    # (5 rows: sdot's products take 4 rows at a time, then a partial group)
    xs = np.random.default_rng(0).standard_normal((9, 5, 3)).astype("float32")
    lens = np.array([9, 4, 7, 1, 9])
    got = _emulate(tmp_path, ",".join(kernels), "-", {"x": xs, "sequence_lens": lens})
    for lengths, tag in ((None, "kernel"), (lens, "kernel_lens")):
        for k, v in rg.run(ig, {"x": xs}, ip, sequence_lens=lengths).items():
            for which in (tag, tag.replace("kernel", "kernel1")):
                assert got[f"{which}:{k}"].dtype == v.dtype, k
                np.testing.assert_array_equal(got[f"{which}:{k}"], v, err_msg=f"{which}:{k}")


def test_aarch64_lstm_runs_under_qemu_and_matches_the_reference(tmp_path: Path) -> None:
    """Both aarch64 libraries of an LSTM, in one emulated process (TVM's start-up under qemu
    is most of the time): the kernel library through ``_deploy.load`` and the Relax
    executable (``export(path, relax=True)``: one file, weights inside) through the Relax
    VM, each with and without ``sequence_lens``."""
    why = _ready()
    if why:
        pytest.skip(why)
    g = zoo.CELLS["lstm"]()
    p = zoo.params_for(g)
    m = rg.compile(g, target="tvm", params=p, device="aarch64")
    kernel = m.export(tmp_path / "lstm.so")
    relax = m.export(tmp_path / "lstm_relax.so", relax=True)
    assert not relax.with_suffix(".npz").exists()
    xs = np.random.default_rng(0).standard_normal((9, 2, 3)).astype("float32")
    lens = np.array([9, 4])
    got = _emulate(tmp_path, kernel, relax, {"x": xs, "sequence_lens": lens})
    want: dict[str, np.ndarray] = {}
    for lengths, entry in ((None, "main"), (lens, "main_lens")):
        ref = rg.run(g, {"x": xs}, p, sequence_lens=lengths)
        want.update({f"kernel{entry[4:]}:{k}": v for k, v in ref.items()})
        names = [str(n) for n in m.relax(lengths is not None)["main"].attrs["results"]]
        assert sorted(names) == sorted(ref)
        want.update({f"{entry}:{i}": ref[name] for i, name in enumerate(names)})
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=1e-5, rtol=1e-5, err_msg=k)
