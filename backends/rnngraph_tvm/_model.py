"""A compiled TVM kernel with ``rg.run``'s calling convention, and its export."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tvm

from rnngraph.errors import CompileError, InputError
from rnngraph.files import atomic_path, atomic_write, cache_folder, folder_lock
from rnngraph.ir.registry import REFERENCE
from rnngraph.ops.random import seeded
from rnngraph.program.schedule import Program, Read, RecurrentRegion
from rnngraph.runtime.arguments import (
    bind_dims,
    check_initial_states,
    check_inputs,
    check_lens,
    initial_value,
    np_dtype,
)
from rnngraph.trees.recursion import run_trees, split_inputs
from rnngraph_tvm._codegen import Arg, Kernel, generate, initial_name
from rnngraph_tvm._deploy import RESULTS, result_buffer, result_name, sidecars
from rnngraph_tvm._gemm import pack, vnni_layout
from rnngraph_tvm._plan import Cpu, Plan, derive
from rnngraph_tvm._targets import COMPILERS, Device, shared_buffers

__all__ = ["TvmModel"]


KERNEL_CACHE_BYTES = 512 << 20
"""The kernel cache's size: past it, the entries used longest ago go first."""


def kernel_cache() -> Path | None:
    """The folder of built host kernels: ``$RNNGRAPH_TVM_KERNEL_CACHE`` when set (empty or
    ``off``: no cache), else ``tvm-kernels`` in the user's cache folder
    (:func:`rnngraph.files.cache_folder`). A model compiled again, in this process or
    another, loads its kernels from there in a fraction of a second instead of building
    them (seconds to tens of seconds); an entry is keyed by the kernel's whole TIR, the
    target and TVM's version, so any change builds afresh."""
    env = os.environ.get("RNNGRAPH_TVM_KERNEL_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0") else Path(env)
    folder = cache_folder()  # (None: no home folder to find; no cache, not an error)
    return None if folder is None else folder / "tvm-kernels"


def _prune(folder: Path, limit: int) -> None:
    """Delete the cache's least recently used libraries until they take ``limit`` bytes."""
    entries = []
    for f in folder.glob("*.so"):
        with contextlib.suppress(OSError):
            st = f.stat()
            entries.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in entries)
    for _, size, f in sorted(entries):
        if total <= limit:
            break
        with contextlib.suppress(OSError):
            f.unlink()
            total -= size


class TvmModel:
    """``rg.compile(graph, target="tvm", device=...)``: run on the host, or export for a device.

    ``run`` takes and returns what :func:`rnngraph.run` does (sequence
    inputs, ``sequence_lens``, ``initial_states``; outputs, ``<state>_final``
    and sums over steps). A model for another machine (``device="aarch64"``
    ...) cannot run here; :meth:`export` writes its shared library.
    """

    def __init__(
        self,
        program: Program,
        params: Mapping[str, np.ndarray],
        device: Device,
        dtype: str = "float32",
        plan: Plan | None = None,
        rows: str = "",
        block: int = 1024,
        build: bool = True,
    ) -> None:
        self.program, self.graph, self.device = program, program.graph, device
        self.mode = "sequence"
        self.ticks: str | None = None  # the empty input carrying T for a graph with none
        # plan: the CPU kernels' shapes and how a call's work is shared over the cores
        # (by its batch: plan.split_for); rows: "emulated" runs a GPU kernel on the CPU
        self.plan = plan or derive(Cpu.of(device.spec, here=not device.cross), threads=1)
        self.rows, self.block = rows, block
        self.dtype = np.dtype(dtype)
        self.params = {k: np.ascontiguousarray(v, self.dtype) for k, v in params.items()}
        # kernels by (with sequence lengths, split): "serial", "rows" or "products"
        self._generated: dict[tuple[bool, str], Kernel] = {}
        self._kernels: dict[tuple[bool, str], tuple[Kernel, Any]] = {}
        self._entry: dict[tuple[bool, str], Any] = {}
        # Work buffers are each calling thread's own: a model is called from many threads
        # at once, as an onnxruntime session is; what is built once is built under a lock.
        self._local = threading.local()
        self._lock = threading.RLock()
        self._static: dict[str, Any] = {}  # weights on the device by Arg.static_key
        self._statics = self._time_invariant()
        if not build:
            return
        self.kernel(False)  # build now: errors surface at compile time
        if not device.cross:  # and link it (TVM's JIT, at the first lookup: 0.6-0.9 s for
            self._main(False)  # an LSTM), so that compiling costs it, not the first run

    def _time_invariant(self) -> dict[int, np.ndarray]:
        """Params, constants and what is computed from them alone, by the reference ops."""
        g = self.graph.nx_graph
        values: dict[int, np.ndarray] = {}
        for nid in self.program.static:
            d = g.nodes[nid]
            if d["op"] == "param":
                values[nid] = self.params[d["name"]]
            elif d["op"] == "constant":
                values[nid] = np.asarray(self.graph.arrays[d["attrs"]["array"]])
            else:
                args = [values[r.source] for r in self.program.reads[nid]]
                attrs = {**d["attrs"], "float_dtype": self.dtype}
                values[nid] = np.asarray(REFERENCE[d["op"]](attrs, *args))
        return values

    def static_value(self, arg: Arg) -> np.ndarray:
        """The value of a "static" argument: a time-invariant node (or weights stacked along
        their first axis), packed if the kernel asks."""
        if arg.layout:  # (an int8 weight laid out for integer dot products)
            return vnni_layout(np.asarray(self._statics[arg.node]), arg.layout)  # type: ignore[index]
        if arg.stack:
            value = np.concatenate([np.asarray(self._statics[n], arg.dtype) for n in arg.stack])
        else:
            value = np.asarray(self._statics[arg.node], arg.dtype)  # type: ignore[index]
        return pack(value, arg.pack) if arg.pack else value

    def initial_row(self, arg: Arg) -> np.ndarray:
        """The fixed initial value of an "init" argument for one batch row (``row``, which
        the kernel's buffer repeats for every row and, for a tap, every step back)."""
        assert arg.read is not None
        row = (1, *(int(d) for d in arg.shape[list(arg.shape).index("B") + 1 :]))
        return np.asarray(self._initial(arg.read, row, {}, {}, {}), arg.dtype)[0]

    def relax(self, sequence_lens: bool = False) -> Any:
        """The model as a Relax ``IRModule``: ``main`` (inputs, then ``sequence_lens`` if
        asked, then initial values the caller gives, ``(B, *row)``) calls the kernel
        through ``call_tir`` and returns the tuple of results named by its ``"results"``
        attribute. Build it with TVM (or :meth:`relax_build`) and run it::

            mod = m.relax()
            ex = tvm.compile(mod, target=m.device.target)
            vm = tvm.relax.VirtualMachine(ex, tvm.cpu())
            y, *finals = vm["main"](tvm.runtime.tensor(xs))
        """
        from rnngraph_tvm._relax import relax_module

        return relax_module(self, sequence_lens)

    def relax_build(self, mod: Any = None) -> Any:
        """TVM's Relax executable of ``mod`` (default: :meth:`relax`) for the model's
        device. For ``cuda`` this is the build to use: it keeps the kernel's buffers
        shareable between a block's threads (see ``_targets.shared_buffers``)."""
        return self._build(self.relax() if mod is None else mod, relax=True)

    @property
    def split(self) -> str:
        """How the kernel that does not know its batch (the exported one, the first one
        built) shares its work: "serial", "rows" or "products" (any batch)."""
        if self.device.gpu or self.rows:
            return "serial"  # (a GPU's rows are its thread blocks)
        return self.plan.split_for(None)

    def split_for(self, batch: int) -> str:
        """The split of a call with ``batch`` rows (see :meth:`Plan.split_for`)."""
        if self.device.gpu or self.rows:
            return "serial"
        return self.plan.split_for(batch, self.step_macs)

    @functools.cached_property
    def step_macs(self) -> int:
        """Multiply-adds of one loop step's products for one batch row (a signal times a
        weight in a recurrent region: what sharing a step's products over cores splits;
        a recursive net's level counts 64 nodes)."""
        g, total = self.graph.nx_graph, 0
        for part in self.program.parts:
            if not isinstance(part, RecurrentRegion):
                continue
            for nid in part.nodes:
                if g.nodes[nid]["op"] != "matmul":
                    continue
                a, w = (g.nodes[r.source]["type"] for r in self.program.reads[nid])
                if a.batched and not w.batched and w.rank == 2:
                    # (a size the data decides, a tree level's nodes: taken as 64 rows)
                    rows = int(np.prod([d if isinstance(d, int) else 64 for d in a.row_shape[:-1]]))
                    total += rows * int(w.shape[0]) * int(w.shape[1])
        return total

    def generated(self, with_lens: bool, split: str | None = None) -> Kernel:
        """The TIR kernel (plain, or taking ``sequence_lens``; ``split``: default
        :attr:`split`), generated once."""
        key = (with_lens, split or self.split)
        with self._lock:
            if key not in self._generated:
                gpu = self.device.gpu or self.rows == "emulated"
                self._generated[key] = generate(
                    self.program,
                    str(self.dtype),
                    with_lens=with_lens,
                    rows="blockIdx.x" if self.device.gpu else self.rows or _ROWS[key[1]],
                    blocked=not gpu and not self.device.source,
                    groups=self.plan.threads,
                    threads=key[1] == "products",
                    block=self.block,
                    plan=self.plan,
                )
            return self._generated[key]

    def _build(self, funcs: Any, relax: bool = False) -> Any:
        """TVM's executable of the named PrimFuncs (or of a Relax module), for the model's
        device."""
        mod = funcs if relax else tvm.IRModule(dict(funcs))
        try:
            with shared_buffers() if self.device.gpu else contextlib.nullcontext():
                return tvm.compile(mod, target=self.device.target)
        except Exception as e:  # TVM's errors are long; keep the first lines
            first = "\n".join(str(e).strip().splitlines()[-3:])
            raise CompileError(f"TVM could not build {self.graph.name!r}: {first}") from e

    def _run_build(self, funcs: Mapping[str, Any]) -> Any:
        """:meth:`_build` of kernels this process runs, through the kernel cache: a host
        library built before for exactly these kernels (the TIR module, the target and
        TVM's version, hashed) is loaded instead of built again (see :func:`kernel_cache`).
        A cache that cannot be written costs the next compile its build, nothing else."""
        folder = kernel_cache()
        if folder is None or self.device.cross or self.device.gpu:
            return self._build(funcs)
        mod = tvm.IRModule(dict(funcs))
        text = f"{tvm.__version__}\n{self.device.target}\n{mod.script()}"
        path = folder / f"{hashlib.sha256(text.encode()).hexdigest()}.so"
        if path.exists():
            try:
                ex = tvm.runtime.load_module(str(path))
                os.utime(path)  # (used: the last to go when the cache is pruned)
                return ex
            except Exception:  # (a damaged entry: built again below)
                path.unlink(missing_ok=True)
        ex = self._build(funcs)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, ".so") as tmp:
                ex.export_library(str(tmp))
            _prune(folder, KERNEL_CACHE_BYTES)
        except OSError:
            pass
        return ex

    def build_splits(self, with_lens: bool, splits: Sequence[str]) -> None:
        """Build the kernels of several splits at once (one LLVM module, one link: what
        the tuner does for every plan it times)."""
        with self._lock:
            todo = [s for s in dict.fromkeys(splits) if (with_lens, s) not in self._kernels]
            if not todo:
                return
            kernels = {s: self.generated(with_lens, s) for s in todo}
            ex = self._run_build(
                {
                    f"main_{s}": k.func.with_attr("global_symbol", f"main_{s}")
                    for s, k in kernels.items()
                }
            )
            for s, k in kernels.items():
                self._kernels[(with_lens, s)] = (k, ex)
                self._entry[(with_lens, s)] = ex[f"main_{s}"]

    def kernel(self, with_lens: bool, split: str | None = None) -> tuple[Kernel, Any]:
        """The kernel and its executable (entry ``main``), built once."""
        key = (with_lens, split or self.split)
        with self._lock:
            if key not in self._kernels:
                k = self.generated(*key)
                self._kernels[key] = (k, self._run_build({"main": k.func}))
            return self._kernels[key]

    def export(
        self, path: str | os.PathLike[str], relax: bool = False, standalone: bool = False
    ) -> Path:
        """Write the kernels as a shared library for the model's device, with its sidecars.

        ``standalone=True``: write ``path`` as a folder of C (the weights, an
        entry point, headers) and the kernels' object file (or C source, for
        device ``"c"``), to build into a program that has no TVM runtime and no
        Python: see :mod:`rnngraph_tvm._standalone`.

        ``relax=True``: write the Relax executable instead, one file (weights
        inside, no sidecars) for TVM's runtime on the device:
        ``relax.VirtualMachine(tvm.runtime.load_module(path), dev)["main"](x)``
        (``"main_lens"`` takes ``sequence_lens`` after the inputs; see
        :meth:`relax` for the arguments and results).

        ``model.so`` (cross-linked for an edge device with Debian's cross
        compiler) holds two entry functions: ``main`` (every row runs all
        steps) and ``main_lens`` (with ``sequence_lens``); ``model.json`` lists
        each one's arguments and ``model.npz`` holds the weights (packed as the
        kernels read them) and fixed initial values, once for both.
        :func:`rnngraph_tvm.load` runs the three on the device, initial states
        by name included (each init argument's ``"state"`` in ``model.json``).
        Each file is written atomically.
        """
        if standalone:
            if relax:
                raise CompileError("relax=True and standalone=True: choose one")
            from rnngraph_tvm._standalone import export_standalone

            return export_standalone(self, path)
        target = Path(path)
        kw = {"fcompile": self.device.compiler()} if self.device.family in COMPILERS else {}
        suffix = target.suffix or ".so"  # (TVM picks how to link by the name's suffix)
        if relax:
            from rnngraph_tvm._relax import relax_module

            with atomic_path(target, suffix) as tmp:
                self.relax_build(relax_module(self, both=True)).export_library(str(tmp), **kw)
            return target
        kernels = {"main": self.generated(False), "main_lens": self.generated(True)}
        layout_path, values_path = sidecars(target)
        values: dict[str, np.ndarray] = {}
        entries: dict[str, list[dict[str, Any]]] = {}
        for entry, kernel in kernels.items():
            entries[entry] = []
            for a in kernel.args:
                desc: dict[str, Any] = {
                    "kind": a.kind,
                    "name": a.name,
                    "shape": list(a.shape),
                    "dtype": a.dtype,
                }
                key = None
                if a.kind == "static":
                    key = a.static_key
                    values.setdefault(key, self.static_value(a))
                elif a.kind == "init" and a.read:
                    state = initial_name(self.graph, a.read)
                    if state is not None:
                        desc["state"] = state
                    if a.read.init.kind in ("param", "array"):
                        key = f"init_{a.read.consumer}_{a.read.port}"
                        values.setdefault(key, self.initial_row(a))
                    elif a.read.init.kind == "input":
                        desc["required"] = True
                if key is not None:
                    desc["value"] = key
                entries[entry].append(desc)
        layout = {
            "graph": self.graph.name,
            "device": dict(self.device.spec),
            "inputs": list(self.graph.inputs),
            "entries": entries,
        }
        ex = self._build({e: k.func.with_attr("global_symbol", e) for e, k in kernels.items()})
        with folder_lock(target.parent), atomic_path(target, suffix) as tmp:
            ex.export_library(str(tmp), **kw)
            atomic_write(layout_path, json.dumps(layout, indent=1))
            atomic_write(values_path, lambda f: np.savez(f, **values))  # type: ignore[arg-type]
        return target

    def run(
        self,
        inputs: Mapping[str, Any],
        *,
        sequence_lens: Any = None,
        initial_states: Mapping[str, Any] | None = None,
        seed: int | None = None,
        steps: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Run on this machine; arguments and results as :func:`rnngraph.run` (``steps``: the
        number of steps of a graph with no sequence input)."""
        initial_states = seeded(self.graph, initial_states, seed)
        if self.ticks is not None and self.ticks not in inputs:
            inputs = {**inputs, self.ticks: self._tick_input(inputs, steps, initial_states)}
        elif steps is not None:
            raise InputError("steps= is for a graph with no sequence input; this one has inputs")
        return self.execute(inputs, sequence_lens, initial_states)[0]

    def _tick_input(
        self, inputs: Mapping[str, Any], steps: int | None, initial_states: Any
    ) -> np.ndarray:
        """The empty ``(T, B, 0)`` input that carries the number of steps; rows from a
        per-sequence input, else the initial states given, else one."""
        if steps is None:
            raise InputError(
                f"graph {self.graph.name!r} has no sequence input: pass steps= to say how many"
            )
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
            raise InputError(f"steps must be a count of steps (>= 0), got {steps!r}")
        rows = {np.shape(v)[0] for v in inputs.values() if np.ndim(v) > 0}
        rows |= {np.shape(v)[0] for v in (initial_states or {}).values() if np.ndim(v) > 1}
        B = rows.pop() if len(rows) == 1 else 1
        return np.zeros((int(steps), B, 0), np.dtype(self.dtype))

    def execute(
        self,
        inputs: Mapping[str, Any],
        sequence_lens: Any = None,
        initial_states: Mapping[str, Any] | None = None,
        past: Mapping[Read, np.ndarray] | None = None,
        last: Sequence[int] = (),
    ) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray]]:
        """:meth:`run`, and what step models need besides: ``past`` gives delayed reads'
        values before step 0 (``(B, *row)``, or ``(d, B, *row)`` for ``d`` > 1 steps back,
        oldest first), and the values of the nodes ``last`` at the last step are returned
        (``(B, *row)`` each) after the outputs."""
        past = past or {}
        self._runs_here()
        tree = split_inputs(inputs)
        if tree is not None:  # a recursive net on a TreeBatch: laid out by levels
            out = run_trees(
                self.graph,
                tree,
                initial_states,
                self.dtype,
                lambda f, init: self.run(f, initial_states=init),
            )
            return out, {}
        main, args, outs, kernel = self._bind(inputs, sequence_lens, initial_states, past)
        main(*args)
        values = {}
        for nid in last:  # its buffer: (T, B, *row), or (B, *row) when kept one step
            i = next(i for i, a in enumerate(kernel.args) if a.node == nid and a.kind != "static")
            v = args[i].numpy()
            values[nid] = v[-1] if kernel.args[i].shape[0] == "T" else v
        return {k: v if isinstance(v, np.ndarray) else v.numpy() for k, v in outs.items()}, values

    def launcher(self, inputs: Mapping[str, Any], sequence_lens: Any = None) -> Callable[[], None]:
        """The kernel bound to buffers holding ``inputs`` (on the model's device): each
        call runs it once and waits for it, with no copy in or out — what a benchmark of
        the kernel alone times (the buffers are the model's: a later ``run`` refills them).
        """
        self._runs_here()
        main, args, _, _ = self._bind(inputs, sequence_lens, None, {})
        dev = self.device.runtime()

        def launch() -> None:
            main(*args)
            dev.sync()

        return launch

    def _runs_here(self) -> None:
        """Refuse a model built for another machine (or for a GPU this one lacks)."""
        if self.device.cross:
            where = "this machine has no CUDA GPU; " if self.device.gpu else ""
            raise CompileError(
                f"this model is built for {self.device.name!r}; {where}export() it and run it there"
            )

    def _bind(
        self,
        inputs: Mapping[str, Any],
        sequence_lens: Any,
        initial_states: Mapping[str, Any] | None,
        past: Mapping[Read, np.ndarray],
    ) -> tuple[Any, list[Any], dict[str, Any], Kernel]:
        """The entry function for a call (with or without lengths), its arguments
        (inputs and initial values copied in), its results' buffers by name, and the
        kernel it runs."""
        bound, T, B = check_inputs(self.graph, inputs, self.dtype, None)
        assert T is not None and B is not None
        ids = self.graph.input_nodes()
        per_seq = {k: bound[ids[k]] for k in self.graph.per_sequence_inputs}
        lens = check_lens(sequence_lens, T, B)
        overrides = check_initial_states(self.graph, initial_states or {}, B, self.dtype)
        sizes = {"T": T, "B": B, **bind_dims(self.graph, inputs, initial_states or {})}
        split = self.split_for(B)
        kernel = self.generated(lens is not None, split)
        dev = self.device.runtime()
        state_ids = {v: k for k, v in self.graph.state_nodes().items()}
        # Buffers are kept per (sizes, lens): fresh memory costs page faults on every call;
        # inputs are copied into theirs, initial values that no override changes stay.
        # (a step model's carried values replace every initial value: buffers of their own)
        key = (tuple(sorted(sizes.items())), lens is not None, bool(past))
        if getattr(self._local, "key", None) != key:
            self._local.key, self._local.work, self._local.shapes = key, {}, {}
        work, shapes = self._local.work, self._local.shapes
        args, outs = [], {}
        for i, a in enumerate(kernel.args):
            if a.kind == "static":
                name = a.static_key  # (both kernels' weights: one copy)
                if name not in self._static:  # (the lock only for the first copy)
                    with self._lock:
                        if name not in self._static:
                            # (np.ascontiguousarray would make a 0-d constant 1-d)
                            value = np.array(self.static_value(a), order="C")
                            self._static[name] = tvm.runtime.tensor(value, dev)
                args.append(self._static[name])
                continue
            fresh = i not in work
            if (fresh or a.kind in RESULTS) and (id(kernel), i) not in shapes:
                shape = tuple(sizes[d] if isinstance(d, str) else int(d) for d in a.shape)
                _check_size(a, shape)
                shapes[id(kernel), i] = shape
            shape = shapes.get((id(kernel), i), ())
            if a.kind in RESULTS and not self.device.gpu:
                # written by the kernel straight into the arrays returned (no copy out)
                result, t = result_buffer(shape, a.dtype)
                args.append(t)
                outs[result_name(a.kind, a.name)] = result
                continue
            if fresh:  # on the CPU, numpy's view of the buffer too: copies in are numpy's
                if self.device.gpu:
                    work[i] = (None, tvm.runtime.empty(shape, a.dtype, dev))
                else:
                    work[i] = result_buffer(shape, a.dtype)
            host, t = work[i]
            arr: Any = None
            if a.kind == "input":
                arr = bound[a.node]  # type: ignore[index]
            elif a.kind == "lens":
                arr = lens
            elif a.kind == "init":
                assert a.read is not None
                fixed = state_ids.get(a.read.consumer) not in overrides and (
                    a.read.init.kind != "input"
                )
                if a.read in past:
                    arr = np.broadcast_to(past[a.read], tuple(t.shape))
                elif fresh or not fixed:
                    shape = tuple(t.shape)
                    rows = shape[1:] if a.read.delay > 1 else shape  # a tap's: (d, B, *row)
                    start = self._initial(a.read, rows, overrides, state_ids, per_seq)
                    arr = np.broadcast_to(start, shape)
            if arr is not None and host is not None:
                np.copyto(host, arr, casting="unsafe")
            elif arr is not None:
                t.copyfrom(np.ascontiguousarray(arr, dtype=a.dtype))
            args.append(t)
            if a.kind in RESULTS:
                outs[result_name(a.kind, a.name)] = t
        return self._main(lens is not None, split), args, outs, kernel

    def _main(self, with_lens: bool, split: str | None = None) -> Any:
        """The kernel's entry function (looked up once: the lookup costs 0.2 ms; a split
        other than the first one built is built at its first call)."""
        key = (with_lens, split or self.split)
        entry = self._entry.get(key)
        if entry is None:  # (the lock only for the first lookup, not on every call)
            with self._lock:
                if key not in self._entry:
                    self._entry[key] = self.kernel(*key)[1]["main"]
                entry = self._entry[key]
        return entry

    def _initial(
        self,
        read: Any,
        shape: tuple[int, ...],
        overrides: Mapping[str, np.ndarray],
        state_ids: Mapping[int, str],
        per_seq: Mapping[str, np.ndarray],
    ) -> np.ndarray:
        """The initial value of ``read`` for a batch: ``shape`` is ``(B, *row)`` (``per_seq``:
        the call's per-sequence inputs, which states may start from)."""
        name = state_ids.get(read.consumer)
        if name is not None and name in overrides:
            return np.broadcast_to(overrides[name], shape)
        if read.init.kind == "input" and str(read.init.ref) in overrides:
            return np.broadcast_to(overrides[str(read.init.ref)], shape)
        if read.init.kind == "input" and str(read.init.ref) in per_seq:
            return np.broadcast_to(per_seq[str(read.init.ref)], shape)
        t = self.graph.nx_graph.nodes[read.source]["type"]
        value = initial_value(
            self.graph, read.init, self.params, shape, np_dtype(t.dtype, self.dtype)
        )
        if value is None:
            raise InputError(
                f"state {read.init.ref!r} takes its initial value from the caller: pass "
                f"initial_states={{{read.init.ref!r}: array of shape {shape}}}"
            )
        return value

    def save(
        self, path: str | os.PathLike[str], relax: bool = False, standalone: bool = False
    ) -> Path:
        """The same as :meth:`export`: the deployable library."""
        return self.export(path, relax=relax, standalone=standalone)


_ROWS = {"serial": "", "products": "", "rows": "parallel"}
"""The code generator's ``rows`` for each split over the cores."""

MAX_BUFFER_BYTES = 2**32
"""The largest buffer a call allocates: a tap's initial values are ``(delay, B, *row)``."""


def _check_size(a: Arg, shape: tuple[int, ...]) -> None:
    """Refuse a buffer over :data:`MAX_BUFFER_BYTES`, naming its node and size."""
    size = math.prod(shape) * np.dtype(a.dtype).itemsize
    if size > MAX_BUFFER_BYTES:
        what = f"the initial values of the read {a.read.delay} steps back by" if a.read else "node"
        raise InputError(
            f"{what} {a.name!r} need a buffer of shape {shape}, {size:,} bytes (over "
            f"{MAX_BUFFER_BYTES:,}); the TVM backend keeps every past value of a tap: use the "
            "ONNX backend (min(delay, T) of them) or a shorter delay"
        )
