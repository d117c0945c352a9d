"""How the CPU kernels are shaped, derived from the target: a :class:`Plan` per :class:`Cpu`.

A recurrent step's work is register-blocked matrix products (``_gemm``) and
row-wise element work. How big a block of rows, how wide a weight panel,
how many rows of a long product stay in L2, when a weight streams from
beyond L1, how many cores share the work and how: all of it follows from the
CPU's vector width, its vector registers, its caches and its cores, which
:class:`Cpu` reads from the TVM target (LLVM's feature list for the ``mcpu``)
and, for this machine, from the kernel's cache descriptions in ``/sys``.
:func:`derive` turns a CPU into its default plan; ``rg.compile(..., tune=True)``
times a few others on this machine (``_tune``). ``print(model.plan)`` shows
the choice and where it came from.

Examples
--------
>>> cpu = Cpu("skylake-avx512", vector_bytes=64, registers=32, l1_bytes=32768,
...           l2_bytes=1 << 20, cores=2)
>>> p = derive(cpu)
>>> p.rows, p.panel_width("float32"), p.chunk_bytes
(8, 32, 262144)
>>> derive(Cpu("haswell", 32, 16, 32768, 1 << 18, 1)).rows  # 12 sums in 16 registers
6
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["AHEAD_ROWS", "SHARE_MACS", "STACK_ROWS", "Cpu", "Plan", "cores", "derive", "host_plan"]

AHEAD_ROWS = 64
"""Rows of a loop's time-parallel product computed at a time, inside the loop."""

STACK_ROWS = 4
"""Batch rows from which a loop's input product and its recurrent one are one product
over ``[x_t | h]`` (see ``_codegen._Gen.stackable``); fewer rows keep the input product
ahead."""

SHARE_MACS = 1 << 17
"""The least multiply-adds a loop step's products must do for products to be shared
over the cores: below it (an LSTM of 128 units at batch 1, 98k), a barrier per
product costs more than the second core saves; above (192 units, 147k), sharing
wins (measured on Zen 4, 2 cores: 4.5 µs a step either way at 128 units, 6.2 µs
shared against 8.6 alone at 192)."""


@dataclass(frozen=True)
class Cpu:
    """What shapes the kernels: the vector width (bytes), the vector registers, the
    data caches a core has (bytes) and the cores a model may use."""

    name: str
    vector_bytes: int
    registers: int
    l1_bytes: int
    l2_bytes: int
    cores: int
    int8_dot: str = ""
    """The integer dot-product instruction integer products use (``_gemm.DOTS``):
    ``"vnni512"`` (AVX-512 VNNI's ``vpdpbusd``: four uint8 x int8 products summed into
    each int32 lane), ``"pmaddwd512"``/``"pmaddwd256"`` (AVX-512BW's and AVX2's
    ``vpmaddwd``: two int16 x int16), ``"sdot128"`` (aarch64's ``sdot``: four int8 x
    int8), or ``""`` (plain int32 multiply-adds)."""

    @classmethod
    def of(cls, spec: Mapping[str, Any], here: bool) -> Cpu:
        """The CPU of a TVM target dict (``here``: the machine this runs on, whose caches
        and cores are read from the system)."""
        kind = spec.get("kind")
        triple = str(spec.get("mtriple", ""))
        mattr = {str(a) for a in spec.get("mattr", ())}
        name = str(spec.get("mcpu", "") or triple or kind)
        if kind != "llvm":  # C source: plain loops a C compiler vectorises, 16-byte vectors
            return cls(name, 16, 16, *_caches(here), cores() if here else 1)
        features = _features(spec) | {a[1:] for a in mattr if a.startswith("+")}
        features -= {a[1:] for a in mattr if a.startswith("-")}
        dot = ""
        if triple.startswith(("aarch64", "arm64")):
            vector, regs = 16, 32  # NEON: 32 registers of 128 bits
            dot = "sdot128" if "dotprod" in features else ""
        elif triple.startswith(("armv7", "arm")):
            vector, regs = 16, 16  # NEON on 32-bit ARM: 16 quad registers
        elif triple.startswith("riscv"):
            # without the vector extension the F registers hold one value each
            vector, regs = (16, 32) if "+v" in mattr else (8, 32)
        elif "avx512f" in features:
            # LLVM splits 512-bit vectors on CPUs it tunes for 256 (Intel's first
            # AVX-512 cores), but the 32 registers are there either way
            vector = 32 if "prefer-256-bit" in features else 64
            regs = 32
            if "avx512bw" in features:
                dot = "vnni512" if "avx512vnni" in features else "pmaddwd512"
        elif "avx" in features or "avx2" in features:
            vector, regs = 32, 16
            dot = "pmaddwd256" if "avx2" in features else ""
        else:
            vector, regs = 16, 16
        return cls(name, vector, regs, *_caches(here), cores() if here else 1, int8_dot=dot)

    def describe(self) -> str:
        return (
            f"{self.name}: {self.vector_bytes * 8}-bit vectors, {self.registers} registers, "
            f"L1 {self.l1_bytes // 1024} KB, L2 {self.l2_bytes // 1024} KB, "
            f"{self.cores} core{'s' if self.cores != 1 else ''}"
            + (f", integer products on {self.int8_dot}" if self.int8_dot else "")
        )


@dataclass(frozen=True)
class Plan:
    """The shape of a model's CPU kernels (see the module docstring).

    ``rows``: rows of a register block; ``panel_bytes``: bytes of one row of a
    weight panel (its width, ``NR`` columns); ``panels``: panels a block of
    one row takes at a time (a batch-1 step: enough independent sums to hide
    the FMA latency); ``chunk_bytes``: rows of a long product kept in L2 while
    every panel passes; ``streamed_bytes``: a weight bigger than this streams
    from beyond L1 (a few rows then take it in one pass); ``ahead_rows``: rows
    of a loop's input product computed a few steps ahead; ``stack_rows``:
    batch rows from which a loop's input and recurrent products are one
    product; ``threads``: the cores a call uses; ``split``: how they share it
    — ``"products"`` (every product's panels, every node's rows, a barrier
    between phases), ``"rows"`` (a group of batch rows per core, no barrier)
    or ``"auto"`` (rows from ``rows_per_thread`` rows a core, products below,
    and never products when a step's products do fewer than ``share_macs``
    multiply-adds in all: the barriers would cost more than the cores give);
    ``source``: where the plan came from.
    """

    cpu: Cpu
    rows: int
    panel_bytes: int
    panels: int
    chunk_bytes: int
    streamed_bytes: int
    ahead_rows: int = AHEAD_ROWS
    stack_rows: int = STACK_ROWS
    threads: int = 1
    split: str = "auto"
    rows_per_thread: int = 4
    share_macs: int = SHARE_MACS
    source: str = "derived from the target"

    def panel_width(self, dtype: str) -> int:
        """Columns per panel (``NR``) for elements of ``dtype``."""
        return max(1, self.panel_bytes // np.dtype(dtype).itemsize)

    def panels_per_block(self, rows: int) -> int:
        """Panels a block of ``rows`` rows (fewer than :attr:`rows`) takes at a time."""
        return max(1, self.panels // rows)

    def split_for(self, batch: int | None, step_macs: int | None = None) -> str:
        """How a call with ``batch`` rows shares its work: "serial", "rows" or
        "products" (``None``: a batch not known yet — products serve any).
        ``step_macs``: the multiply-adds of a loop step's products for one row."""
        if self.threads <= 1:
            return "serial"
        if self.split != "auto":
            return self.split
        if batch is None:
            return "products"
        if step_macs is not None and batch * step_macs < self.share_macs:
            # groups of rows (no barrier); fewer rows than cores: one core, no launch of
            # the pool at all (waking an idle core costs more than such a call)
            return "rows" if batch >= self.threads else "serial"
        return "rows" if batch >= self.rows_per_thread * self.threads else "products"

    def tunables(self) -> dict[str, Any]:
        """The fields a tuner may change, by name (what the tuning cache stores)."""
        names = ("rows", "panel_bytes", "panels", "chunk_bytes", "ahead_rows", "stack_rows")
        return {k: getattr(self, k) for k in (*names, "split", "rows_per_thread")}

    def replace(self, **changes: Any) -> Plan:
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        vectors = self.panel_bytes // self.cpu.vector_bytes
        split = {
            "auto": f"auto (a group of batch rows per thread from {self.rows_per_thread} rows "
            f"a thread, else every product shared if a step's products do "
            f"{self.share_macs:,} multiply-adds or more)",
            "rows": "a group of batch rows per thread",
            "products": "every product's panels and every node's rows shared, a barrier "
            "between phases",
        }[self.split]
        lines = [
            f"plan ({self.source})",
            f"  cpu           {self.cpu.describe()}",
            f"  block         {self.rows} rows x {max(vectors, 1)} vectors "
            f"({self.rows * max(vectors, 1)} sums in registers)",
            f"  panel         {self.panel_bytes} bytes a row "
            f"({self.panel_width('float32')} float32 columns)",
            f"  one row       {self.panels} panels at a time",
            f"  chunk         {self.chunk_bytes // 1024} KB of rows stay in L2",
            f"  streamed      weights over {self.streamed_bytes // 1024} KB",
            f"  ahead         {self.ahead_rows} rows of input products",
            f"  stacked       from {self.stack_rows} batch rows",
            f"  threads       {self.threads}" + (f", {split}" if self.threads > 1 else ""),
        ]
        return "\n".join(lines)


def derive(cpu: Cpu, threads: int | None = None) -> Plan:
    """The default plan for ``cpu``: a panel row of two vectors (at least 64 bytes: four
    NEON vectors), as many rows as leave the panel's vectors, a broadcast and a spare
    register free (at most 8: more rows only lengthen the code), about 8 independent sums
    for a single row, a quarter of L2 for a chunk's rows, L1 as the streaming bound."""
    panel_bytes = max(2 * cpu.vector_bytes, 64)
    vectors = panel_bytes // cpu.vector_bytes
    rows = max(1, min(8, (cpu.registers - vectors - 2) // vectors))
    return Plan(
        cpu=cpu,
        rows=rows,
        panel_bytes=panel_bytes,
        panels=max(1, 8 // vectors),
        chunk_bytes=max(32 * 1024, cpu.l2_bytes // 4),
        streamed_bytes=cpu.l1_bytes,
        threads=cpu.cores if threads is None else threads,
    )


@functools.cache
def host_plan() -> Plan:
    """The derived plan of this machine's CPU, one thread."""
    from rnngraph_tvm._targets import host_spec

    return derive(Cpu.of(host_spec(), here=True), threads=1)


def cores() -> int:
    """The cores this process may run on."""
    mask = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(mask) if mask else (os.cpu_count() or 1)


L1_BYTES, L2_BYTES = 32 * 1024, 512 * 1024
"""Caches assumed where they cannot be read (another machine's): common to the cores of
the last decade (x86, Cortex-A7x, Neoverse)."""


def _caches(here: bool) -> tuple[int, int]:
    """This machine's L1 data cache and L2 of one core, from ``/sys`` (Linux); the
    assumed sizes elsewhere."""
    l1, l2 = L1_BYTES, L2_BYTES
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if not here or not base.is_dir():
        return l1, l2
    for index in sorted(base.glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = _bytes((index / "size").read_text().strip())
        except (OSError, ValueError):
            continue
        if level == 1 and kind in ("Data", "Unified"):
            l1 = size
        elif level == 2 and kind in ("Data", "Unified"):
            l2 = size
    return l1, l2


def _bytes(text: str) -> int:
    """``"32K"``, ``"1024K"``, ``"2M"`` as bytes."""
    scale = {"K": 1024, "M": 1024 * 1024, "G": 1024**3}.get(text[-1:].upper(), 1)
    return int(text.rstrip("KkMmGg")) * scale


def _features(spec: Mapping[str, Any]) -> set[str]:
    """LLVM's feature list of the target's ``mcpu`` (this machine's when none is named)."""
    import tvm
    from tvm.target import codegen

    try:
        return {str(f) for f in codegen.llvm_get_cpu_features(tvm.target.Target(dict(spec)))}
    except Exception:  # an LLVM without the target: assume the least
        return set()
