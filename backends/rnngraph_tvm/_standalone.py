"""A model as C for a device without TVM's runtime: ``m.export(folder, standalone=True)``.

TVM's CPU kernels are plain functions that take their buffers as DLPack
tensors; the one thing they call back is how to report a failed check. So a
model needs no runtime at all where it is deployed: the folder holds

- ``<name>_kernel.o`` (LLVM's object for the device: host, aarch64, armv7,
  riscv64, or a custom LLVM target) or ``<name>_kernel.c`` (device ``"c"``: the
  kernels as C, for any C11 compiler);
- ``<name>.c``: the weights as constant arrays, the kernels' argument tables and
  ``<name>_run``, which checks the caller's arrays, lays the work buffers out in
  one workspace, fills the initial values and calls the kernel (with or without
  sequence lengths); it includes
- ``rnngraph_run.h`` and ``rnngraph_abi.h`` (the calling convention, written for
  this: nothing of TVM's is needed to compile);
- ``<name>.h``: the API (one struct of named arrays, a run function, the
  workspace size, the last error), with an example;
- ``<name>.json``: the same arrays described for tools (names, roles, shapes, in
  the struct's order: a ``ctypes.Structure`` of pointers can mirror it).

A model that shares its work over the cores (compiled for this machine, whose
cores it uses by default, or with ``threads=``/``parallel=``) keeps its split
(one that serves any batch: every product's panels, or ``parallel=True``'s
groups of rows): its calls launch POSIX threads (one per online CPU, or
``<name>_set_threads(n)``), with a spinning barrier between phases; a model
compiled with ``threads=1`` or for another machine runs on the caller's thread
(and device ``"c"`` always: TVM's C writer calls its own runtime's thread pool). Only
T (steps) and B (batch) are left open: a model with other symbolic sizes (a
recursive net's nodes) is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnngraph.errors import CompileError
from rnngraph.files import atomic_write, folder_lock
from rnngraph_tvm._codegen import Arg, Kernel, generate, initial_name
from rnngraph_tvm._deploy import RESULTS, result_name

if TYPE_CHECKING:
    from rnngraph_tvm._model import TvmModel

__all__ = ["HEADERS", "export_standalone"]

HEADERS = ("rnngraph_abi.h", "rnngraph_run.h")
"""The fixed C headers every standalone model includes (from ``rnngraph_tvm/c``)."""

_C_TYPES = {"float32": "float", "float64": "double", "int64": "int64_t", "bool": "uint8_t"}
_DLPACK = {"float32": (2, 32), "float64": (2, 64), "int64": (0, 64), "bool": (6, 8)}
ROLES = ("input", "initial", "result")
"""The roles of the ``<name>_io`` struct's arrays, in the struct's order."""
_KIND = {"input": "RG_INPUT", "lens": "RG_LENS", "static": "RG_STATIC", "init": "RG_INIT"}
_TVM_INCLUDES = re.compile(r'#include "tvm/[^"]*"\n')


@dataclasses.dataclass(frozen=True)
class Field:
    """One array of the ``<name>_io`` struct: ``role`` is "input", "initial" (NULL:
    the graph's own initial value) or "result"; ``shape`` has "T" and "B" open."""

    name: str
    role: str
    shape: tuple[int | str, ...]
    dtype: str
    source: str  # the graph's name for it (a result's as ``run`` returns it)


def identifier(name: str) -> str:
    """``name`` as a C identifier (other characters become ``_``)."""
    text = re.sub(r"\W", "_", name, flags=re.ASCII)
    return f"_{text}" if not text or text[0].isdigit() else text


class _Layout:
    """The struct's fields, the values baked in, and each kernel's argument table."""

    def __init__(self, model: TvmModel, kernels: Mapping[bool, Kernel]) -> None:
        self.model = model
        self.fields: list[Field] = []
        self.slots: dict[tuple[str, str], int] = {}  # (role, source) -> field index
        self.values: dict[str, np.ndarray] = {}  # key -> value, in order of first use
        self.tables = {lens: [self.entry(a) for a in k.args] for lens, k in kernels.items()}
        names = [f.name for f in self.fields]
        clash = sorted({n for n in names if names.count(n) > 1} | {"sequence_lens"} & set(names))
        if clash:
            raise CompileError(
                f"{model.graph.name!r}: the C names {clash} are taken twice (or by "
                "sequence_lens) once made identifiers: rename the inputs, outputs or states"
            )

    def in_struct_order(self) -> list[Field]:
        """The fields as ``<name>_io`` declares them: inputs, initial states, results
        (``sequence_lens`` after them)."""
        return sorted(self.fields, key=lambda f: ROLES.index(f.role))

    def slot(self, role: str, source: str, shape: tuple[Any, ...], dtype: str) -> int:
        key = (role, source)
        if key not in self.slots:
            suffix = "_init" if role == "initial" else ""
            self.slots[key] = len(self.fields)
            self.fields.append(Field(identifier(source) + suffix, role, shape, dtype, source))
        return self.slots[key]

    def value(self, key: str, make: Any) -> int:
        if key not in self.values:
            self.values[key] = np.ascontiguousarray(make())
        return list(self.values).index(key)

    def entry(self, a: Arg) -> dict[str, Any]:
        """One argument's row of a kernel's table (the fields of ``rg_arg``)."""
        for d in a.shape:
            if isinstance(d, str) and d not in ("T", "B"):
                raise CompileError(
                    f"{self.model.graph.name!r}: argument {a.name!r} has the symbolic size "
                    f"{d!r}; a standalone C model leaves only T and B open (use export())"
                )
        if a.dtype not in _DLPACK:
            raise CompileError(f"a standalone C model has no {a.dtype} arrays ({a.name!r})")
        row: dict[str, Any] = {"name": a.name, "kind": _KIND.get(a.kind, "RG_WORK")}
        row.update(slot=0, fixed=0)
        if a.kind in ("input", *RESULTS):  # (messages name the caller's field)
            role = "input" if a.kind == "input" else "result"
            slot = self.slot(role, result_name(a.kind, a.name), a.shape, a.dtype)
            row.update(slot=slot, name=self.fields[slot].name)
            row["kind"] = "RG_INPUT" if role == "input" else "RG_RESULT"
        elif a.kind == "static":
            row["slot"] = self.value(a.static_key, lambda: self.model.static_value(a))
        elif a.kind == "init":
            row.update(self.initial(a))
        return {**row, "dtype": a.dtype, "shape": a.shape}

    def initial(self, a: Arg) -> dict[str, Any]:
        """Where an initial value comes from: the caller's ``<state>_init`` (if the state
        has a name the caller can give), else its fixed row, zeros, or nowhere (-2)."""
        read = a.read
        assert read is not None
        source = initial_name(self.model.graph, read)
        out: dict[str, Any] = {"slot": -1, "fixed": -1}
        if source is not None:
            rows = tuple(a.shape[list(a.shape).index("B") :])  # a tap's: without its steps
            out.update(name=f"{identifier(source)}_init")
            out["slot"] = self.slot("initial", source, rows, a.dtype)
        if read.init.kind in ("param", "array"):
            key = f"init_{read.consumer}_{read.port}"
            out["fixed"] = self.value(key, lambda: self.model.initial_row(a))
        elif read.init.kind == "input":
            out["fixed"] = -2
        return out


def _c_values(name: str, value: np.ndarray) -> str:
    """A constant C array of ``value``'s elements, exactly (9 or 17 significant digits
    read back as the same float), aligned as the kernels expect."""
    dtype = str(value.dtype)
    flat = value.ravel()
    if dtype in ("float32", "float64"):
        # (an exponent always: "0f" would be an integer to C)
        text = np.char.mod("%.8e" if dtype == "float32" else "%.16e", flat).astype(object)
        suffix = "f" if dtype == "float32" else ""
        special = {"inf": "INFINITY", "-inf": "(-INFINITY)", "nan": "NAN"}
        items = [special.get(s, s + suffix) for s in text]
    elif dtype == "int64":
        items = [f"{int(v)}LL" for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    items = items or ["0"]  # (C has no empty arrays)
    rows = ",\n".join("  " + ", ".join(items[i : i + 8]) for i in range(0, len(items), 8))
    return (
        f"static const {_C_TYPES[dtype]} {name}[{len(items)}] "
        f"__attribute__((aligned(RG_ALIGN))) = {{\n{rows}\n}};"
    )


def _c_table(name: str, table: list[dict[str, Any]]) -> str:
    rows = []
    for r in table:
        code, bits = _DLPACK[r["dtype"]]
        dims = ", ".join("RG_T" if d == "T" else "RG_B" if d == "B" else str(d) for d in r["shape"])
        rows.append(
            f'  {{"{r["name"]}", {r["kind"]}, {code}, {bits}, {len(r["shape"])}, {{{dims}}}, '
            f"{r['slot']}, {r['fixed']}}},"
        )
    return f"static const rg_arg {name}[] = {{\n" + "\n".join(rows) + "\n};"


def _shape_text(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _header(prefix: str, model: TvmModel, layout: _Layout, kernel_file: str) -> str:
    from rnngraph import __version__

    guard = f"{prefix.upper()}_H"
    lines, role = [], ""
    titles = ["inputs", "initial states (NULL: the graph's own)", "results (written)"]
    for f in layout.in_struct_order():
        if f.role != role:
            role = f.role
            lines.append(f"  /* {titles[ROLES.index(role)]} */")
        qual = "" if role == "result" else "const "
        lines.append(
            f"  {qual}{_C_TYPES[f.dtype]} *{f.name}; /* {_shape_text(f.shape)} {f.dtype} */"
        )
    lines.append("  /* (B,) valid steps of each row; NULL: every row runs all T steps */")
    lines.append("  const int64_t *sequence_lens;")
    example = [f"io.{f.name} = {f.name};" for f in layout.fields if f.role != "initial"]
    threads = "over the CPU's cores" if threaded(model) else "on one thread"
    pthread = " -pthread" if threaded(model) else ""
    api = (
        f"""
/* Threads a call starts (one per online CPU until set; shared by every model linked). */
void {prefix}_set_threads(int n);
"""
        if threaded(model)
        else ""
    )
    return f"""/* {prefix}.h: the {model.graph.name!r} model, as C for {model.device.name!r}.
 * Generated by rnngraph {__version__}; runs without TVM's runtime, {threads}.
 *
 * Every array is C-ordered and its data aligned to {prefix.upper()}_ALIGN bytes (aligned_alloc);
 * T is the number of steps, B the batch. A call runs whole sequences: outputs past a row's
 * sequence length are zero and its final states are those at its last valid step. To go on
 * where a call stopped (streaming), pass the final states back as the initial ones (for
 * states read one step back).
 *
 *   {prefix}_io io = {{0}};
 *   {" ".join(example)}
 *   if ({prefix}_run(T, B, &io, NULL) != 0) fprintf(stderr, "%s\\n", {prefix}_last_error());
 *
 * The workspace (NULL: malloc'd for the call, unless RNNGRAPH_NO_MALLOC is defined) holds
 * the kernel's work buffers: {prefix}_workspace_bytes(T, B) bytes, any alignment.
 * Build (C11, gcc or clang): cc -std=c11 -O2{pthread} -c {prefix}.c
 *              cc{pthread} app.c {prefix}.o {kernel_file} -lm
 */
#ifndef {guard}
#define {guard}

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {prefix.upper()}_ALIGN 64

typedef struct {{
{chr(10).join(lines)}
}} {prefix}_io;

/* Run the model; 0, or -1 with the reason in {prefix}_last_error(). */
int {prefix}_run(int64_t T, int64_t B, const {prefix}_io *io, void *workspace);

/* Bytes of workspace a call with T steps and B rows needs. */
size_t {prefix}_workspace_bytes(int64_t T, int64_t B);

/* Why the last call failed. */
const char *{prefix}_last_error(void);
{api}
#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"""


def _source(prefix: str, model: TvmModel, layout: _Layout, kernel_file: str) -> str:
    from rnngraph import __version__

    values = [_c_values(f"rg_v{i}", v) for i, v in enumerate(layout.values.values())]
    names = ", ".join(f"rg_v{i}" for i in range(len(values))) or "NULL"
    most = max(len(t) for t in layout.tables.values())
    ptrs = ", ".join(f"(void *)io->{f.name}" for f in layout.fields) or "NULL"
    entry = f"__tvm_ffi_{prefix}_main"
    threads = (
        "#define _POSIX_C_SOURCE 200809L\n#define RNNGRAPH_THREADS 1\n" if threaded(model) else ""
    )
    setter = (
        f"\nvoid {prefix}_set_threads(int n) {{ rnngraph_threads = n; }}\n"
        if threaded(model)
        else ""
    )
    return f"""/* {prefix}.c: the {model.graph.name!r} model's weights and entry point, for
 * {model.device.name!r} (its kernels: {kernel_file}). Generated by rnngraph {__version__}. */
{threads}#include "{prefix}.h"
#include "rnngraph_run.h"

int32_t {entry}(void *, const TVMFFIAny *, int32_t, TVMFFIAny *);
int32_t {entry}_lens(void *, const TVMFFIAny *, int32_t, TVMFFIAny *);

{chr(10).join(values)}

static const void *const rg_values[] = {{{names}}};

{_c_table("rg_args", layout.tables[False])}

{_c_table("rg_args_lens", layout.tables[True])}

static const rg_model rg_this = {{
  "{prefix}",
  {{{entry}, {entry}_lens}},
  {{rg_args, rg_args_lens}},
  {{{len(layout.tables[False])}, {len(layout.tables[True])}}},
  rg_values,
}};

size_t {prefix}_workspace_bytes(int64_t T, int64_t B) {{ return rg_workspace(&rg_this, T, B); }}

int {prefix}_run(int64_t T, int64_t B, const {prefix}_io *io, void *workspace) {{
  void *const ptrs[] = {{{ptrs}}};
  DLTensor t[{most}];
  int64_t shapes[{most}][RG_MAX_DIMS];
  TVMFFIAny any[{most}];
  return rg_call(&rg_this, T, B, ptrs, io->sequence_lens, workspace, t, shapes, any);
}}

const char *{prefix}_last_error(void) {{ return rnngraph_error; }}
{setter}"""


def threaded(model: TvmModel) -> bool:
    """Whether the model's standalone kernels split over the cores (see the module text)."""
    return model.split != "serial" and not model.device.source


def _kernels(model: TvmModel) -> dict[bool, Kernel]:
    """The two kernels: the model's own, or regenerated for one thread (the GPU's
    emulated on the CPU)."""
    if not model.rows:
        return {lens: model.generated(lens) for lens in (False, True)}
    blocked = not model.device.source
    return {
        lens: generate(
            model.program, str(model.dtype), with_lens=lens, blocked=blocked, plan=model.plan
        )
        for lens in (False, True)
    }


def _kernel_code(model: TvmModel, kernels: Mapping[bool, Kernel], prefix: str) -> tuple[str, bytes]:
    """The kernels built for the device: an object file, or C source (device "c") that
    includes rnngraph_abi.h instead of TVM's headers."""
    funcs = {}
    for lens, k in kernels.items():
        entry = f"{prefix}_main_lens" if lens else f"{prefix}_main"
        funcs[entry] = k.func.with_attr("global_symbol", entry)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "kernels.tar"
        model._build(funcs).export_library(str(archive))
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.endswith((".o", ".c"))]
            if len(members) != 1:
                names = [m.name for m in tar.getmembers()]
                raise CompileError(f"TVM built {names} for {model.device.name!r}, not one kernel")
            data = tar.extractfile(members[0]).read()  # type: ignore[union-attr]
    if not model.device.source:
        return f"{prefix}_kernel.o", data
    text = data.decode()
    text = _TVM_INCLUDES.sub("", text, count=0)
    # one library context per model (two models' kernels link side by side)
    text = text.replace("__tvm_ffi__library_ctx", f"{prefix}__library_ctx")
    return f"{prefix}_kernel.c", ('#include "rnngraph_abi.h"\n' + text).encode()


def export_standalone(
    model: TvmModel, folder: str | os.PathLike[str], name: str | None = None
) -> Path:
    """Write ``model`` into ``folder`` as C and a kernel object (see the module's text);
    ``name`` (default: the graph's) prefixes its files and C symbols. Each file is
    written atomically; returns the folder."""
    if model.device.gpu:
        raise CompileError(
            "a standalone C model runs on a CPU; a CUDA kernel needs TVM's runtime: use export()"
        )
    prefix = identifier(name or model.graph.name)
    kernels = _kernels(model)
    layout = _Layout(model, kernels)
    kernel_file, kernel = _kernel_code(model, kernels, prefix)
    described = {
        "name": prefix,
        "graph": model.graph.name,
        "device": dict(model.device.spec),
        "kernel": kernel_file,
        "threads": threaded(model),  # (build with -pthread)
        "fields": [dataclasses.asdict(f) for f in layout.in_struct_order()],
    }
    files: dict[str, bytes] = {
        kernel_file: kernel,
        f"{prefix}.h": _header(prefix, model, layout, kernel_file).encode(),
        f"{prefix}.c": _source(prefix, model, layout, kernel_file).encode(),
        f"{prefix}.json": json.dumps(described, indent=1).encode(),
    }
    here = resources.files("rnngraph_tvm") / "c"
    for header in HEADERS:
        files[header] = (here / header).read_bytes()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        for filename, data in files.items():
            atomic_write(out / filename, data)
    return out
