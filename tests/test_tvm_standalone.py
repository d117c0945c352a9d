"""Standalone C models (``m.export(folder, standalone=True)``): built with a C compiler
into a program that has neither TVM's runtime nor Python, run, and compared with
the reference — on this machine, and for aarch64, armv7 and riscv64 linked
statically with Debian's cross compilers and run under qemu user emulation
(which ``.ci/run`` installs; without them those tests skip, saying why).

The test's own C driver knows the model only through ``<name>.json``: it reads
each array from a file, calls ``<name>_run`` and writes the results back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

pytest.importorskip("tvm")
pytestmark = pytest.mark.slow

_C = {"float32": "float", "float64": "double", "int64": "int64_t", "bool": "uint8_t"}

# device -> (C compiler, flags, emulator or None for this machine)
TOOLS: dict[str, tuple[str, list[str], str | None]] = {
    "host": ("gcc", [], None),
    "c": ("gcc", [], None),
    "aarch64": ("aarch64-linux-gnu-gcc", ["-static"], "qemu-aarch64-static"),
    "armv7": ("arm-linux-gnueabihf-gcc", ["-static"], "qemu-arm-static"),
    "riscv64": ("riscv64-linux-gnu-gcc", ["-static"], "qemu-riscv64-static"),
}


def _size(shape: list[Any]) -> str:
    return " * ".join(f"(size_t){d}" for d in shape) or "1"


def driver(desc: dict[str, Any]) -> str:
    """A C program: ``driver T B DIR [ws]``; reads ``DIR/<field>.bin`` for every input and
    initial state present (and ``sequence_lens.bin``), writes ``DIR/<field>.out``; with
    ``ws``, gives the model a workspace of its own (one byte off an alignment)."""
    p = desc["name"]
    lines = []
    for f in desc["fields"]:
        ctype, size = _C[f["dtype"]], f"{_size(f['shape'])} * sizeof({_C[f['dtype']]})"
        if f["role"] == "result":
            lines.append(f"  io.{f['name']} = ({ctype} *)room({size});")
        else:
            lines.append(f'  io.{f["name"]} = ({ctype} *)load(dir, "{f["name"]}", {size});')
    # (the lengths 8 bytes off an alignment: they need none)
    lines.append('  int64_t *lens = (int64_t *)load(dir, "sequence_lens", (size_t)B * 8);')
    lines.append("  int64_t *off = (int64_t *)room((size_t)B * 8 + 8) + 1;")
    lines.append("  if (lens != NULL) io.sequence_lens = memcpy(off, lens, (size_t)B * 8);")
    outs = [
        f'  save(dir, "{f["name"]}", io.{f["name"]}, {_size(f["shape"])} * '
        f"sizeof({_C[f['dtype']]}));"
        for f in desc["fields"]
        if f["role"] == "result"
    ]
    return f"""#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "{p}.h"

static void *room(size_t bytes) {{
  return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
}}

static void *load(const char *dir, const char *name, size_t bytes) {{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  void *data = room(bytes);
  if (fread(data, 1, bytes, f) != bytes) {{ fprintf(stderr, "short %s\\n", path); exit(3); }}
  fclose(f);
  return data;
}}

static void save(const char *dir, const char *name, const void *data, size_t bytes) {{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.out", dir, name);
  FILE *f = fopen(path, "wb");
  fwrite(data, 1, bytes, f);
  fclose(f);
}}

int main(int argc, char **argv) {{
  if (argc != 4 && argc != 5) return 2;
  long long T = atoll(argv[1]), B = atoll(argv[2]);
  const char *dir = argv[3];
  char *ws = argc == 5 ? (char *)room({p}_workspace_bytes(T, B) + 1) + 1 : NULL;
  {p}_io io = {{0}};
{chr(10).join(lines)}
  if ({p}_run(T, B, &io, ws) != 0) {{
    fprintf(stderr, "%s\\n", {p}_last_error());
    return 1;
  }}
{chr(10).join(outs)}
  return 0;
}}
"""


def build(folder: Path, device: str, defines: tuple[str, ...] = ()) -> list[str]:
    """Compile the model and the driver; the command that runs the program."""
    cc, flags, emulator = TOOLS[device]
    flags = [*flags, *(f"-D{d}" for d in defines)]
    for tool in (cc, emulator):
        if tool is not None and shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (.ci/run installs it)")
    desc = json.loads(next(folder.glob("*.json")).read_text())
    (folder / "driver.c").write_text(driver(desc))
    exe, kernel = folder / "driver", folder / desc["kernel"]
    flags = [*flags, "-pthread"] if desc["threads"] else flags
    if kernel.suffix == ".c":  # (TVM's C has unused variables: no -Werror for it)
        object_file = kernel.with_suffix(".o")
        _ok([cc, "-std=c11", "-O2", *flags, "-c", "-o", str(object_file), str(kernel)])
        kernel = object_file
    cmd = [cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *flags, "-o", str(exe)]
    cmd += [str(folder / "driver.c"), str(folder / f"{desc['name']}.c"), str(kernel), "-lm"]
    _ok(cmd)
    return [emulator, str(exe)] if emulator else [str(exe)]


def _ok(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def run(
    program: list[str],
    folder: Path,
    feeds: dict[str, np.ndarray],
    initial: dict[str, np.ndarray] | None = None,
    lens: np.ndarray | None = None,
    extra: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """The program's results (named as ``rg.run`` names them) for these arrays
    (``extra``: more arguments for the program)."""
    desc = json.loads(next(folder.glob("*.json")).read_text())
    data = folder / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    T, B = next(iter(feeds.values())).shape[:2]
    for f in desc["fields"]:
        value = {"input": feeds, "initial": initial or {}}.get(f["role"], {}).get(f["source"])
        if value is not None:
            (data / f"{f['name']}.bin").write_bytes(np.ascontiguousarray(value, f["dtype"]))
    if lens is not None:
        (data / "sequence_lens.bin").write_bytes(np.asarray(lens, np.int64).tobytes())
    done = subprocess.run(
        [*program, str(T), str(B), str(data), *extra], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    out = {}
    for f in desc["fields"]:
        if f["role"] == "result":
            shape = [T if d == "T" else B if d == "B" else d for d in f["shape"]]
            raw = (data / f"{f['name']}.out").read_bytes()
            out[f["source"]] = np.frombuffer(raw, f["dtype"]).reshape(shape)
    return out


def _check(name: str, device: str, tmp_path: Path, **options: Any) -> None:
    """One build runs: two lengths, lengths per row, the caller's initial states."""
    g = zoo.CELLS[name]()
    p = zoo.params_for(g)
    m = rg.compile(
        g, target="tvm", params=p, device=None if device == "host" else device, **options
    )
    folder = m.export(tmp_path / name, standalone=True)
    program = build(folder, device)
    rng = np.random.default_rng(7)
    for T, B in ((5, 3), (2, 1)):
        feeds = zoo.feeds(g, T, B, rng)
        zoo.assert_close(run(program, folder, feeds), rg.run(g, feeds, p))
    lens = np.array([5, 0, 2])
    feeds = zoo.feeds(g, 5, 3, rng)
    init = zoo.every_initial_state(g, 3, rng)
    got = run(program, folder, feeds, initial=init, lens=lens)
    zoo.assert_close(got, rg.run(g, feeds, p, sequence_lens=lens, initial_states=init))


@pytest.mark.parametrize("name", ["lstm", "gru_lbr", "state_delay_2", "param_initial_state"])
def test_standalone_c_runs_on_this_machine(name: str, tmp_path: Path) -> None:
    _check(name, "host", tmp_path)


def test_standalone_c_source_kernels(tmp_path: Path) -> None:
    """Device "c": the kernels themselves as C (plain loops: TVM's C writer has no
    vector types a compiler reads), built by this machine's gcc."""
    _check("layer_norm_lstm", "c", tmp_path)


@pytest.mark.parametrize("device", ["aarch64", "armv7", "riscv64"])
def test_standalone_c_runs_under_qemu(device: str, tmp_path: Path) -> None:
    _check("lstm", device, tmp_path)


@pytest.mark.parametrize(
    ("name", "device", "parallel"),
    [
        ("narx", "host", "products"),
        ("lstm_peephole_clip", "host", True),
        ("gru", "aarch64", "products"),
    ],
)
def test_standalone_c_over_the_cores(name: str, device: str, parallel: Any, tmp_path: Path) -> None:
    """A model compiled with parallel= keeps its split: the calls launch POSIX threads
    (one per CPU), a spinning barrier between phases — the kernels' parallel loops are
    there, and the results match the reference."""
    _check(name, device, tmp_path, parallel=parallel)
    (folder,) = (f for f in tmp_path.iterdir() if f.is_dir())
    desc = json.loads(next(folder.glob("*.json")).read_text())
    assert desc["threads"]
    assert "#define RNNGRAPH_THREADS 1" in (folder / f"{desc['name']}.c").read_text()


def test_compile_verb_writes_a_standalone_folder(tmp_path: Path) -> None:
    """`rnngraph compile FILE --target tvm --standalone -o DIR` (its products over the
    cores: threads in the C program too; `--unroll` reaches the kernels as in
    test_compile_verb_writes_a_tvm_library, whose unrolled build this one need not repeat)."""
    from rnngraph.tools.cli import main

    g = zoo.CELLS["narx"]()
    p = zoo.params_for(g)
    src = g.save(tmp_path / "narx", p)
    argv = ["compile", src, "--target", "tvm", "--parallel", "products"]
    assert main([*argv, "--standalone", "-o", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out"
    desc = json.loads((folder / "narx.json").read_text())
    names = {"narx.h", "narx.c", "narx.json", desc["kernel"], "rnngraph_abi.h", "rnngraph_run.h"}
    assert {f.name for f in folder.iterdir()} == names
    program = build(folder, "host")
    feeds = zoo.feeds(g, 7, 2, np.random.default_rng(1))
    zoo.assert_close(run(program, folder, feeds), rg.run(g, feeds, p))


def test_the_c_entry_point_refuses_bad_calls(tmp_path: Path) -> None:
    """A state whose initial value the caller must give, given or not; lengths out of
    range: a return of -1 and the reason, nothing run."""
    g = rg.Graph("stream")
    x = g.input("x", 2)
    h = g.state("h", 2, init="input")
    g.assign(h, h + x)
    g.output("y", h)
    folder = rg.compile(g, target="tvm").export(tmp_path / "c", standalone=True)
    program = build(folder, "host")
    xs = np.ones((3, 2, 2), "float32")
    init = {"h": np.array([[5.0, 5.0], [1.0, 2.0]], "float32")}
    zoo.assert_close(
        run(program, folder, {"x": xs}, init), rg.run(g, {"x": xs}, initial_states=init)
    )
    with pytest.raises(AssertionError, match="'h_init' takes its initial value from the caller"):
        run(program, folder, {"x": xs})
    with pytest.raises(AssertionError, match=r"sequence_lens\[1\] = 4 is not in \[0, 3\]"):
        run(program, folder, {"x": xs}, init, lens=np.array([3, 4]))
    # built without malloc: the caller's workspace, any alignment, or a reason
    program = build(folder, "host", defines=("RNNGRAPH_NO_MALLOC",))
    with pytest.raises(AssertionError, match="no workspace given"):
        run(program, folder, {"x": xs}, init)
    obj = folder / "no_malloc.o"
    _ok(["gcc", "-std=c11", "-DRNNGRAPH_NO_MALLOC", "-c", "-o", str(obj), str(folder / "stream.c")])
    needs = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True).stdout.split()
    assert "malloc" not in needs and "free" not in needs
    got = run(program, folder, {"x": xs}, init, lens=np.array([3, 1]), extra=("ws",))
    want = rg.run(g, {"x": xs}, initial_states=init, sequence_lens=np.array([3, 1]))
    zoo.assert_close(got, want)


def test_what_a_standalone_model_cannot_be(tmp_path: Path) -> None:
    from tests.tree_zoo import CELLS as TREES
    from tests.tree_zoo import tree_graph

    g = zoo.CELLS["gru"]()
    m = rg.compile(g, target="tvm", params=zoo.params_for(g), device="cuda")
    with pytest.raises(rg.CompileError, match="CUDA kernel needs TVM's runtime"):
        m.export(tmp_path / "cuda", standalone=True)
    tree, _ = tree_graph(TREES["child_sum"][0]())
    m = rg.compile(tree, target="tvm", params=tree.init_params(seed=0))
    with pytest.raises(rg.CompileError, match="symbolic size"):
        m.export(tmp_path / "tree", standalone=True)
    assert not (tmp_path / "tree").exists()
