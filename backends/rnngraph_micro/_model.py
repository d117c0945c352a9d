"""A compiled microcontroller model: C sources, built for a board and run there.

:class:`MicroModel` holds the C of one step (``_emit``). ``save(folder)`` writes it
with the harness (start-up code, semihosting I/O, a linker script) for a firmware
project; ``run(inputs)`` builds a program that steps through the given sequence and
runs it: under ``qemu-system-arm`` on an Arm MPS2/MPS3 board model for a Cortex-M
device (with Debian's ``gcc-arm-none-eabi``), or natively for ``device="host"``.
``memory()`` reads flash and RAM from the compiled object's sections, and a run on a
board counts the instructions per step (qemu's ``-icount``: one instruction per
nanosecond of the virtual clock that SysTick counts).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import BackendUnavailableError, CompileError, InputError
from rnngraph.files import atomic_write
from rnngraph.ir.registry import REFERENCE
from rnngraph_micro._emit import CStep

__all__ = ["DEVICES", "Device", "MicroModel"]

HARNESS = Path(__file__).parent / "c"


@dataclass(frozen=True)
class Device:
    """A target: its compiler flags, and the qemu board model that runs it."""

    name: str
    cflags: tuple[str, ...]
    machine: str | None = None  # qemu-system-arm -M
    cpu: str | None = None
    clock_hz: float = 0.0  # the board model's processor clock (SysTick counts it)

    @property
    def board(self) -> bool:
        return self.machine is not None


_SOFT = ("-mthumb", "-mfloat-abi=soft")
DEVICES = {
    "host": Device("host", ()),
    "cortex-m3": Device("cortex-m3", ("-mcpu=cortex-m3", *_SOFT), "mps2-an385", "cortex-m3", 25e6),
    "cortex-m4": Device("cortex-m4", ("-mcpu=cortex-m4", *_SOFT), "mps2-an386", "cortex-m4", 25e6),
    "cortex-m7": Device("cortex-m7", ("-mcpu=cortex-m7", *_SOFT), "mps2-an500", "cortex-m7", 25e6),
    "cortex-m55": Device(
        "cortex-m55", ("-mcpu=cortex-m55", *_SOFT), "mps3-an547", "cortex-m55", 32e6
    ),
}
"""Devices ``rg.compile(..., target="micro", device=...)`` builds for."""

_ARM_CC = "arm-none-eabi-gcc"
_QEMU = "qemu-system-arm"


_APT = "Debian: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"


def _tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackendUnavailableError(f"{why} needs {name} ({_APT})")
    if name == _ARM_CC and not _has_c_library(path):
        raise BackendUnavailableError(
            f"{why} needs {name}'s C library headers (string.h, from newlib), which this "
            f"toolchain lacks ({_APT}; gcc-arm-none-eabi alone only recommends it)"
        )
    return path


@functools.cache
def _has_c_library(cc: str) -> bool:
    """Whether the Arm compiler finds ``string.h`` (Debian's ``libnewlib-arm-none-eabi``)."""
    res = subprocess.run(
        [cc, "-x", "c", "-E", "-", "-o", os.devnull], input="#include <string.h>\n",
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return res.returncode == 0


def missing_board_tools() -> str | None:
    """Why the Cortex-M board models cannot be built for and run here, or None when they
    can: the Arm compiler, its C library headers and ``qemu-system-arm`` are all found.

    >>> from rnngraph_micro import missing_board_tools
    >>> missing_board_tools() is None or "apt-get install" in missing_board_tools()
    True
    """
    try:
        _tool(_ARM_CC, "building for a board")
        _tool(_QEMU, "running on a board model")
    except BackendUnavailableError as e:
        return str(e)
    return None


class MicroModel:
    """One step of an integer graph as C for a microcontroller (see the module docstring).

    ``run(inputs)`` takes whole sequences ``(T, B, *features)`` (``mode="sequence"``) or
    one step ``(B, *features)`` and the states (``mode="step"``), returns the outputs as
    floats and the states' final integers (``"<state>_final"``), exactly what
    ``rg.run`` of the integer graph returns. A step model's states are those of the
    graph's unit-delay form (a delay of ``d`` steps is ``d`` registers): pass every
    ``"<state>_final"`` of one step as the next step's ``initial_states``.
    ``integer_graph`` and ``integer_params`` are the integer graph the C computes
    (:func:`rnngraph.quant.to_integer`'s): ``rg.run`` of them is what ``run`` returns.
    """

    def __init__(
        self,
        program: Any,
        integer: Any,
        params: Mapping[str, np.ndarray],
        step: CStep,
        finals: Mapping[str, str],
        device: Device,
        mode: str,
    ) -> None:
        self.program, self.graph = program, program.graph
        self.integer_graph, self.integer_params = integer, dict(params)
        self.step, self.device, self.mode = step, device, mode
        self.finals = dict(finals)  # original state -> its register in the C
        self.stats: dict[str, Any] = {}
        self._dir = tempfile.TemporaryDirectory(prefix="rnngraph-micro-")
        self._cleanup = weakref.finalize(self, self._dir.cleanup)
        self._object: Path | None = None

    # ------------------------------------------------------------------ files
    @property
    def sources(self) -> dict[str, str]:
        """The model's C: ``{"<prefix>.c": ..., "<prefix>.h": ...}``."""
        p = self.step.prefix
        return {f"{p}.c": self.step.source, f"{p}.h": self.step.header}

    def save(self, folder: str | Path) -> Path:
        """Write the model's C and the board harness (start-up, I/O, linker script)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        for name, text in self.sources.items():
            atomic_write(out / name, text.encode())
        for f in sorted(HARNESS.iterdir()):
            atomic_write(out / f.name, f.read_bytes())
        return out

    # ------------------------------------------------------------------ builds
    def _cc(self) -> list[str]:
        if self.device.board:
            # (the model is hosted C: memcpy and memset may be inlined; the harness that
            # links it brings its own, with no C library)
            return [_tool(_ARM_CC, f"building for {self.device.name}"), *self.device.cflags,
                    "-DRG_SEMIHOSTING"]  # fmt: skip
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise BackendUnavailableError("device='host' needs a C compiler (cc)")
        return [cc]

    def _run_tool(self, cmd: list[str], what: str, timeout: float = 300) -> str:
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if res.returncode:
            raise CompileError(
                f"micro: {what} failed ({res.returncode}): "
                f"{(res.stderr or res.stdout).strip()[-2000:]}"
            )
        return res.stdout

    def _model_object(self) -> Path:
        if self._object is None:
            d = Path(self._dir.name)
            for name, text in self.sources.items():
                (d / name).write_text(text)
            obj = d / f"{self.step.prefix}.o"
            flags = ["-O2", "-std=c11", "-Wall", "-Werror", "-fstack-usage",
                     "-ffunction-sections", "-fdata-sections"]  # fmt: skip
            self._run_tool(
                [*self._cc(), *flags, "-c", str(d / f"{self.step.prefix}.c"), "-o", str(obj)],
                "compiling the model",
            )
            self._object = obj
        return self._object

    def memory(self) -> dict[str, int]:
        """Flash (code and constants) and RAM (buffers, states) of the compiled model,
        from its object's sections, and the step function's stack frame."""
        obj = self._model_object()
        size = shutil.which("arm-none-eabi-size" if self.device.board else "size")
        if size is None:
            return {"flash_bytes": self.step.flash_bytes, "ram_bytes": self.step.ram_bytes}
        text = data = bss = 0
        for line in self._run_tool([size, "-A", str(obj)], "size").splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[1].isdigit():
                continue
            sec, n = parts[0], int(parts[1])
            if sec.startswith((".text", ".rodata")):
                text += n
            elif sec.startswith(".data"):
                data += n
            elif sec.startswith(".bss"):
                bss += n
        stack = 0
        su = obj.with_suffix(".su")
        for line in su.read_text().splitlines() if su.exists() else ():
            if f"{self.step.prefix}_step" in line:
                stack = int(line.split()[-2])
        return {"flash_bytes": text + data, "ram_bytes": data + bss, "stack_bytes": stack}

    def float_symbols(self) -> list[str]:
        """Float helper routines the compiled step calls (software floating point on a
        core without an FPU): none, for an integer-only model."""
        nm = shutil.which("arm-none-eabi-nm" if self.device.board else "nm")
        if nm is None:
            raise BackendUnavailableError("listing the model's symbols needs nm")
        out = self._run_tool([nm, "-u", str(self._model_object())], "nm")
        return [
            s
            for s in (ln.split()[-1] for ln in out.splitlines() if ln.strip())
            if s.startswith(("__aeabi_f", "__aeabi_d", "__aeabi_i2f", "__aeabi_l2f"))
            or s in ("__addsf3", "__mulsf3", "__adddf3", "__muldf3", "__floatsisf")
        ]

    # ------------------------------------------------------------------ runs
    def run(
        self,
        inputs: Mapping[str, Any],
        initial_states: Mapping[str, Any] | None = None,
        **states: Any,
    ) -> dict[str, np.ndarray]:
        """Run on the device (see the class docstring)."""
        given = {**(initial_states or {}), **states}
        step = self.mode == "step"
        feeds: dict[str, np.ndarray] = {}
        for name, buf in self.step.inputs.items():
            if name not in inputs:
                raise InputError(f"micro: missing input {name!r}")
            x = np.asarray(inputs[name], np.float32)
            x = x[None] if step else x
            if x.ndim != len(buf.shape) + 1 or tuple(x.shape[1:]) != buf.shape:
                raise InputError(
                    f"micro: input {name!r} has shape {tuple(np.shape(inputs[name]))}; the "
                    f"model takes {'' if step else '(T, '}{buf.shape}{'' if step else ')'} "
                    f"(batch {self.step.batch} is fixed when compiling: batch=)"
                )
            q = REFERENCE["quantize"](self.step.grids[name], x)
            feeds[name] = np.asarray(q).reshape(x.shape[0], -1)
        steps = {v.shape[0] for v in feeds.values()}
        if len(steps) > 1:
            raise InputError(f"micro: inputs of different lengths {sorted(steps)}")
        T = steps.pop() if steps else 1
        starts = self._states(given)
        text = self._execute(self._harness(feeds, starts, T))
        return self._parse(text, T, step)

    def _states(self, given: Mapping[str, Any]) -> dict[str, np.ndarray]:
        out = {}
        by_name = self.step.states
        for name, value in given.items():
            reg = self.finals.get(name, name)
            if reg not in by_name:
                raise InputError(f"micro: no state {name!r}; states: {sorted(self.finals)}")
            buf = by_name[reg]
            arr = np.asarray(value)
            if arr.dtype.kind not in "iu" or arr.size != buf.size:
                raise InputError(
                    f"micro: state {name!r} takes {buf.size} integers ({buf.kind}, shape "
                    f"{buf.shape}: a '{name}_final' of an earlier run), got {arr.dtype} "
                    f"{arr.shape}"
                )
            out[reg] = arr.reshape(-1)
        return out

    def _harness(self, feeds: Mapping[str, np.ndarray], starts: Mapping[str, np.ndarray],
                 T: int) -> str:  # fmt: skip
        p = self.step.prefix
        lines = ["#include <stdint.h>", "#include <string.h>", f'#include "{p}.h"',
                 '#include "rg_micro_io.h"']  # fmt: skip
        for i, (name, buf) in enumerate(self.step.inputs.items()):
            vals = ", ".join(str(int(v)) for v in feeds[name].ravel()) or "0"
            lines.append(f"static const {buf.ctype} x{i}[{max(feeds[name].size, 1)}] = {{{vals}}};")
        for i, buf in enumerate(self.step.outputs.values()):
            lines.append(f"static {buf.ctype} y{i}[{T * buf.size}];")
        state_ids = {name: i for i, name in enumerate(self.step.states)}
        for name, arr in starts.items():
            buf = self.step.states[name]
            vals = ", ".join(str(int(v)) for v in arr)
            lines.append(f"static const {buf.ctype} s{state_ids[name]}[{buf.size}] = {{{vals}}};")
        lines += ["int main(void) {", f"  {p}_reset();"]
        for name in starts:
            i = state_ids[name]
            lines.append(f"  memcpy({p}_state_{i}(), s{i}, sizeof s{i});")
        args = [f"x{i} + t * {b.size}" for i, b in enumerate(self.step.inputs.values())]
        args += [f"y{i} + t * {b.size}" for i, b in enumerate(self.step.outputs.values())]
        lines += [
            "  rg_clock_start();",
            f"  for (int t = 0; t < {T}; t++) {p}_step({', '.join(args)});",
            "  uint32_t ticks = rg_clock_ticks();",
        ]
        for i, name in enumerate(self.step.outputs):
            b = self.step.outputs[name]
            lines += [f'  rg_io_begin("y {name}");',
                      f"  for (int i = 0; i < {T * b.size}; i++) rg_io_int(y{i}[i]);",
                      "  rg_io_end();"]  # fmt: skip
        for name, i in state_ids.items():
            b = self.step.states[name]
            lines += [f'  rg_io_begin("s {name}");',
                      f"  for (int i = 0; i < {b.size}; i++) rg_io_int({p}_state_{i}()[i]);",
                      "  rg_io_end();"]  # fmt: skip
        lines += ['  rg_io_begin("ticks");', "  rg_io_int(ticks);", "  rg_io_end();",
                  "  return 0;", "}", ""]  # fmt: skip
        return "\n".join(lines)

    def _execute(self, main: str) -> str:
        d = Path(self._dir.name)
        obj = self._model_object()
        (d / "main.c").write_text(main)
        exe = d / ("main.elf" if self.device.board else "main")
        log = d / "semihosting.txt"  # (what a board writes through semihosting)
        srcs = [str(d / "main.c"), str(HARNESS / "rg_micro_io.c")]
        flags = ["-O2", "-std=c11", f"-I{d}", f"-I{HARNESS}"]
        if self.device.board:
            srcs.append(str(HARNESS / "rg_micro_crt.c"))
            flags += ["-ffreestanding", "-nostdlib", "-T", str(HARNESS / "rg_micro.ld")]
            flags += ["-Wl,--gc-sections"]
            self._run_tool([*self._cc(), *flags, *srcs, str(obj), "-lgcc", "-o", str(exe)],
                           "linking the program")  # fmt: skip
            qemu = _tool(_QEMU, f"running on {self.device.name}")
            log.unlink(missing_ok=True)
            cmd = [qemu, "-M", str(self.device.machine), "-cpu", str(self.device.cpu),
                   "-display", "none", "-serial", "none", "-monitor", "none",
                   "-chardev", f"file,id=out,path={log}",
                   "-semihosting-config", "enable=on,target=native,chardev=out",
                   "-icount", "shift=0", "-kernel", str(exe)]  # fmt: skip
        else:
            self._run_tool([*self._cc(), *flags, *srcs, str(obj), "-o", str(exe)], "linking")
            cmd = [str(exe)]
        try:
            out = self._run_tool(cmd, f"running on {self.device.name}", timeout=600)
        except subprocess.TimeoutExpired as e:
            raise CompileError(f"micro: the run on {self.device.name} took over 600 s") from e
        return log.read_text() if self.device.board else out

    def _parse(self, text: str, T: int, step: bool) -> dict[str, np.ndarray]:
        rows: dict[str, list[int]] = {}
        for line in text.splitlines():
            parts = line.split()
            if parts and parts[0] in ("y", "s"):
                rows[f"{parts[0]} {parts[1]}"] = [int(v) for v in parts[2:]]
            elif parts and parts[0] == "ticks":
                ticks = int(parts[1])
                if self.device.board:
                    insns = ticks * 1e9 / self.device.clock_hz  # -icount: 1 ns a step
                    self.stats = {"steps": T, "instructions": insns,
                                  "instructions_per_step": insns / max(T, 1)}  # fmt: skip
        out: dict[str, np.ndarray] = {}
        for name, buf in self.step.outputs.items():
            q = np.asarray(rows[f"y {name}"], np.dtype(buf.kind)).reshape(T, *buf.shape)
            attrs = {**self.step.grids[name], "float_dtype": np.float32}
            y = np.asarray(REFERENCE["dequantize"](attrs, q))
            out[name] = y[0] if step else y
        for orig, reg in self.finals.items():
            buf = self.step.states[reg]
            out[f"{orig}_final"] = np.asarray(rows[f"s {reg}"], np.dtype(buf.kind)).reshape(
                buf.shape
            )
        return out
