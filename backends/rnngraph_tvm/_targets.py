"""Named devices: what a user says (``"aarch64"``) and what TVM needs (a target dict).

A full TVM target (a dict, or a JSON string of one) is accepted too, for
experts; it runs here when its ``mtriple`` is this machine's.
"""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import tvm

from rnngraph.errors import CompileError

__all__ = ["DEVICES", "Device", "resolve", "shared_buffers"]

DEVICES: dict[str, dict[str, Any]] = {
    "llvm": {"kind": "llvm"},  # resolved to this machine's CPU (see host_spec)
    "aarch64": {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon"]},
    "armv7": {
        "kind": "llvm",
        "mtriple": "armv7a-linux-gnueabihf",
        "mattr": ["+neon", "+vfp4", "+thumb2"],
        "mfloat-abi": "hard",
    },
    "riscv64": {
        "kind": "llvm",
        "mtriple": "riscv64-linux-gnu",
        "mattr": ["+m", "+a", "+f", "+d", "+c"],
        "mabi": "lp64d",
    },
    "c": {"kind": "c"},
    "cuda": {"kind": "cuda"},
}
"""Device names and their TVM targets; ``host`` is an alias of ``llvm``."""

COMPILERS = {
    "aarch64": "aarch64-linux-gnu-gcc",
    "armv7": "arm-linux-gnueabihf-gcc",
    "riscv64": "riscv64-linux-gnu-gcc",
}
"""The Debian cross compilers that link each edge device's shared library."""


@dataclass(frozen=True)
class Device:
    """A resolved device: its name, TVM target, and whether it is another machine."""

    name: str
    spec: Mapping[str, Any]

    @property
    def target(self) -> Any:
        return tvm.target.Target(dict(self.spec))

    @property
    def gpu(self) -> bool:
        return self.spec.get("kind") == "cuda"

    @property
    def source(self) -> bool:
        """Whether TVM writes C source for it (device ``"c"``): plain loops, no vector types
        (TVM's C writer spells them as no C compiler reads them)."""
        return self.spec.get("kind") == "c"

    @property
    def cross(self) -> bool:
        """Whether the model runs elsewhere (exported): another CPU, C source, or CUDA
        on a machine with no CUDA GPU."""
        triple = str(self.spec.get("mtriple", ""))
        if self.spec.get("kind") == "llvm":
            return bool(triple) and not triple.startswith(platform.machine())
        if self.gpu:
            return not tvm.cuda(0).exist
        return True  # C source: built here, compiled where it is deployed

    def runtime(self) -> Any:
        """The TVM device the model's buffers live on when it runs here."""
        return tvm.cuda(0) if self.gpu else tvm.cpu()

    @property
    def family(self) -> str:
        """The named device whose cross compiler links it: its own name, or for a target
        dict the name whose ``mtriple`` starts like it (``"aarch64"`` for an aarch64 dict
        with its own ``mcpu`` or ``mattr``); ``""`` for none."""
        if self.name in DEVICES:
            return self.name
        triple = str(self.spec.get("mtriple", ""))
        for name in COMPILERS:
            if triple and triple.split("-")[0] == str(DEVICES[name]["mtriple"]).split("-")[0]:
                return name
        return ""

    def compiler(self) -> Callable[..., Any]:
        cc = COMPILERS.get(self.family)
        if cc is None or shutil.which(cc) is None:
            raise CompileError(
                f"exporting for {self.name!r} needs a cross compiler ({cc or 'unknown'}); "
                f"install Debian's gcc-{(cc or '').removesuffix('-gcc')} package."
            )
        from tvm.support import cc as tvm_cc

        return tvm_cc.cross_compiler(cc)


def host_spec() -> dict[str, Any]:
    """This machine's CPU as an LLVM target: its own ``mcpu`` (AVX2, FMA...), not generic x86.

    On the AVX-512 CPUs LLVM tunes for 256-bit vectors (Skylake-SP to Ice Lake server:
    ``prefer-256-bit``, against the clock drop of Intel's first AVX-512 cores), the host
    target turns that off: the kernels' products are written for the full 512-bit
    registers, as onnxruntime's own kernels are (measured on an Ice Lake Xeon, one core,
    LSTM H=256 batch 32: 39 -> 26 ms; batch 1: 2.25 -> 2.04 ms)."""
    from tvm.target import codegen

    cpu = str(codegen.llvm_get_system_cpu())
    if not cpu or cpu == "generic":
        return {"kind": "llvm"}
    spec: dict[str, Any] = {"kind": "llvm", "mcpu": cpu}
    try:
        features = {str(f) for f in codegen.llvm_get_cpu_features(tvm.target.Target(spec))}
    except Exception:  # (an LLVM that cannot say: its own choice)
        return spec
    if {"avx512f", "prefer-256-bit"} <= features:
        spec["mattr"] = ["-prefer-256-bit"]
    return spec


def resolve(device: str | Mapping[str, Any] | None) -> Device:
    """A :class:`Device` from a name in :data:`DEVICES`, ``"host"``, or a TVM target dict/JSON.

    ``"llvm"`` and ``"host"`` build for this machine's own CPU.
    """
    if device is None or device in ("host", "llvm"):
        return Device("llvm", host_spec())
    if isinstance(device, str) and device.lstrip().startswith("{"):
        device = json.loads(device)
    if isinstance(device, Mapping):
        return Device(str(device.get("mtriple", device.get("kind", "custom"))), dict(device))
    if device not in DEVICES:
        raise CompileError(
            f"unknown device {device!r}; choose one of {sorted(DEVICES)} or 'host', "
            "or pass a TVM target dict"
        )
    return Device(device, DEVICES[device])


@contextlib.contextmanager
def shared_buffers() -> Iterator[None]:
    """While building: CUDA kernels whose buffer arguments are not ``__restrict__``.

    TVM declares every argument of a CUDA kernel ``__restrict__``, and the
    CUDA compiler takes that to mean no one else writes the buffer while the
    kernel runs; but the threads of our blocks read each other's stores after
    a barrier. Seen on an H200: the loads of a step's gates were hoisted above
    the barrier and out of the time loop, so every step read the gates as they
    were before the first (an LSTM's outputs all zero). TVM's hook for the
    generated source (``tvm_callback_cuda_postproc``) drops the qualifier for
    the builds inside this block; a hook that was registered before runs first
    and is put back after.
    """
    import tvm_ffi

    name = "tvm_callback_cuda_postproc"
    before = tvm_ffi.get_global_func(name, allow_missing=True)

    def postproc(code: str, *rest: Any) -> str:
        if before is not None:
            code = str(before(code, *rest))
        return code.replace("__restrict__", "")

    tvm_ffi.register_global_func(name, postproc, override=True)
    try:
        yield
    finally:
        if before is not None:
            tvm_ffi.register_global_func(name, before, override=True)
        else:
            tvm_ffi.remove_global_func(name)
