"""Named devices: what a user says (``"aarch64"``) and what TVM needs (a target dict).

A full TVM target (a dict, or a JSON string of one) is accepted too, for
experts; it runs here when its ``mtriple`` is this machine's.
"""

from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import tvm

from rnngraph.errors import CompileError

__all__ = ["DEVICES", "Device", "resolve"]

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
    def cross(self) -> bool:
        triple = str(self.spec.get("mtriple", ""))
        if self.spec.get("kind") == "llvm":
            return bool(triple) and not triple.startswith(platform.machine())
        return True  # C source and CUDA: built here, run where they are deployed

    def compiler(self) -> Callable[..., Any]:
        cc = COMPILERS.get(self.name)
        if cc is None or shutil.which(cc) is None:
            raise CompileError(
                f"exporting for {self.name!r} needs a cross compiler ({cc or 'unknown'}); "
                f"install Debian's gcc-{(cc or '').removesuffix('-gcc')} package."
            )
        from tvm.support import cc as tvm_cc

        return tvm_cc.cross_compiler(cc)


def host_spec() -> dict[str, Any]:
    """This machine's CPU as an LLVM target: its own ``mcpu`` (AVX2, FMA...), not generic x86."""
    from tvm.target import codegen

    cpu = str(codegen.llvm_get_system_cpu())
    return {"kind": "llvm", "mcpu": cpu} if cpu and cpu != "generic" else {"kind": "llvm"}


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
