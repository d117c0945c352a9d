"""C for one step of an integer graph: no float, no malloc, every buffer static.

The graph is :func:`rnngraph.quant.to_integer`'s, in unit-delay form (every delayed
read a state of delay 1). Each value gets a static buffer of its integer kind; weights
are ``const`` arrays (flash), stored as ``(N, K)`` so a product reads each output's
weights contiguously; tables are ``const`` arrays of the narrowest type that holds
them. The step function takes the quantised inputs and writes the integer outputs;
the states live in the file and ``<prefix>_reset()`` restores their initial values.
Each op is written out with the arithmetic of its reference semantics
(:mod:`rnngraph.ops.integer`): int64 sums of ``(int32) * (int32)`` products, the
rounding shift, saturation — so the results are the reference's bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from rnngraph.errors import CompileError
from rnngraph.ir.graph import Graph, Node
from rnngraph.ir.registry import REFERENCE
from rnngraph.ir.types import INT_RANGES
from rnngraph.ops.fixed import Body, Z
from rnngraph.ops.integer import DIV_ZERO, spread

__all__ = ["CStep", "emit_step"]

CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
         "bool": "uint8_t"}  # fmt: skip

HELPERS = (
    f"#define RG_DIV_ZERO ((int64_t){DIV_ZERO})\n"
    + """\
static inline int64_t rg_round_shift(int64_t v, int s) {
  return s ? (v + ((int64_t)1 << (s - 1))) >> s : v;
}
/* n / d to the nearest integer, halves up; n / 0: DIV_ZERO with n's sign (0 for 0) */
static inline int64_t rg_round_div(int64_t n, int64_t d) {
  if (d == 0) return n > 0 ? RG_DIV_ZERO : n < 0 ? -RG_DIV_ZERO : 0;
  if (d < 0) { n = -n; d = -d; }
  int64_t v = 2 * n + d, w = 2 * d, q = v / w;
  return (v % w != 0 && v < 0) ? q - 1 : q; /* C divides towards zero: floor */
}
static inline int8_t rg_sat_int8(int64_t v) {
  return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}
static inline int16_t rg_sat_int16(int64_t v) {
  return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
}
static inline int32_t rg_sat_int32(int64_t v) {
  return (int32_t)(v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v);
}
/* the same of a value known to fit 32 bits (a shift of 32 or more): SSAT on Arm */
static inline int8_t rg_sat32_int8(int32_t v) {
  return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}
static inline int16_t rg_sat32_int16(int32_t v) {
  return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
}
static inline int32_t rg_sat32_int32(int32_t v) { return v; }
/* Dot products of a row with a weight row. On cores with the DSP extension (Cortex-M4,
   M7, M33, M55) SMLAD multiplies and adds two pairs of 16-bit halves at once; the
   int8 weights of an int16 row are stored in groups of four as (w0, w2, w1, w3), so
   that SXTB16 widens them into the pairs (w0, w1) and (w2, w3) the row's words hold. */
#if defined(__ARM_FEATURE_SIMD32)
#include <arm_acle.h>
/* bytes 1 and 3 widened: SXTB16 with its rotation (one instruction; GCC would rotate first) */
static inline uint32_t rg_sxtb16_hi(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
#endif
static inline int32_t rg_dot_s8(const int8_t *a, const int8_t *w, int k) {
  int32_t acc = 0;
  int i = 0;
#if defined(__ARM_FEATURE_SIMD32)
  const int full = k & ~3;
  for (; i < full; i += 4) {
    uint32_t x, y;
    __builtin_memcpy(&x, a + i, 4);
    __builtin_memcpy(&y, w + i, 4);
    acc = __smlad(__sxtb16(x), __sxtb16(y), acc);
    acc = __smlad(rg_sxtb16_hi(x), rg_sxtb16_hi(y), acc);
  }
#endif
  for (; i < k; i++) acc += (int32_t)a[i] * w[i];
  return acc;
}
static inline int32_t rg_dot_s16(const int16_t *a, const int8_t *w, int k) {
  int32_t acc = 0;
  int i = 0;
  const int full = k & ~3;
  for (; i < full; i += 4) {
#if defined(__ARM_FEATURE_SIMD32)
    uint32_t a01, a23, y;
    __builtin_memcpy(&a01, a + i, 4);
    __builtin_memcpy(&a23, a + i + 2, 4);
    __builtin_memcpy(&y, w + i, 4);
    acc = __smlad(a01, __sxtb16(y), acc);
    acc = __smlad(a23, rg_sxtb16_hi(y), acc);
#else
    acc += a[i] * w[i] + a[i + 1] * w[i + 2] + a[i + 2] * w[i + 1] + a[i + 3] * w[i + 3];
#endif
  }
  for (; i < k; i++) acc += (int32_t)a[i] * w[i];
  return acc;
}
/* Two outputs at once: the row's words are loaded (and widened) once for both. */
static inline void rg_dot2_s8(const int8_t *a, const int8_t *w0, const int8_t *w1, int k,
                              int32_t *out) {
  int32_t s0 = 0, s1 = 0;
  int i = 0;
#if defined(__ARM_FEATURE_SIMD32)
  const int full = k & ~3;
  for (; i < full; i += 4) {
    uint32_t x, y0, y1;
    __builtin_memcpy(&x, a + i, 4);
    __builtin_memcpy(&y0, w0 + i, 4);
    __builtin_memcpy(&y1, w1 + i, 4);
    const uint32_t a02 = __sxtb16(x), a13 = rg_sxtb16_hi(x);
    s0 = __smlad(a02, __sxtb16(y0), s0);
    s0 = __smlad(a13, rg_sxtb16_hi(y0), s0);
    s1 = __smlad(a02, __sxtb16(y1), s1);
    s1 = __smlad(a13, rg_sxtb16_hi(y1), s1);
  }
#endif
  for (; i < k; i++) {
    s0 += (int32_t)a[i] * w0[i];
    s1 += (int32_t)a[i] * w1[i];
  }
  out[0] = s0;
  out[1] = s1;
}
static inline void rg_dot2_s16(const int16_t *a, const int8_t *w0, const int8_t *w1, int k,
                               int32_t *out) {
  int32_t s0 = 0, s1 = 0;
  int i = 0;
  const int full = k & ~3;
  for (; i < full; i += 4) {
#if defined(__ARM_FEATURE_SIMD32)
    uint32_t a01, a23, y0, y1;
    __builtin_memcpy(&a01, a + i, 4);
    __builtin_memcpy(&a23, a + i + 2, 4);
    __builtin_memcpy(&y0, w0 + i, 4);
    __builtin_memcpy(&y1, w1 + i, 4);
    s0 = __smlad(a01, __sxtb16(y0), s0);
    s0 = __smlad(a23, rg_sxtb16_hi(y0), s0);
    s1 = __smlad(a01, __sxtb16(y1), s1);
    s1 = __smlad(a23, rg_sxtb16_hi(y1), s1);
#else
    s0 += a[i] * w0[i] + a[i + 1] * w0[i + 2] + a[i + 2] * w0[i + 1] + a[i + 3] * w0[i + 3];
    s1 += a[i] * w1[i] + a[i + 1] * w1[i + 2] + a[i + 2] * w1[i + 1] + a[i + 3] * w1[i + 3];
#endif
  }
  for (; i < k; i++) {
    s0 += (int32_t)a[i] * w0[i];
    s1 += (int32_t)a[i] * w1[i];
  }
  out[0] = s0;
  out[1] = s1;
}
"""
)


@dataclass
class Buf:
    """A value's buffer: its C name, kind and shape (batch rows included)."""

    name: str
    kind: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def ctype(self) -> str:
        return CTYPE[self.kind]


@dataclass
class CStep:
    """The C of one step and its interface."""

    prefix: str
    batch: int  # rows a step (fixed when compiling)
    header: str
    source: str
    inputs: dict[str, Buf]  # by the graph's input name (the quantised input's buffer)
    outputs: dict[str, Buf]  # by output name (the integer value before dequantisation)
    states: dict[str, Buf]  # by state name (unit-delay form)
    grids: dict[str, dict[str, Any]]  # inputs' and outputs' quantize / dequantize attrs
    flash_bytes: int  # const data
    ram_bytes: int  # buffers and states


def _c_array(values: Sequence[int]) -> str:
    items = [str(int(v)) for v in values]
    lines = [", ".join(items[i : i + 16]) for i in range(0, len(items), 16)]
    return "{\n  " + ",\n  ".join(lines) + "\n}"


def _narrowest(values: np.ndarray) -> str:
    lo, hi = int(values.min(initial=0)), int(values.max(initial=0))
    for kind in ("int8", "int16", "int32"):
        if INT_RANGES[kind][0] <= lo and hi <= INT_RANGES[kind][1]:
            return kind
    return "int64"


def _strides(shape: Sequence[int]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= int(d)
    return out[::-1]


def _broadcast_strides(shape: Sequence[int], out: Sequence[int]) -> list[int]:
    """Strides of an operand of ``shape`` read at the indices of ``out`` (0 on the axes
    it broadcasts along)."""
    shape = [1] * (len(out) - len(shape)) + list(shape)
    return [
        0 if d == 1 and o != 1 else s for d, o, s in zip(shape, out, _strides(shape), strict=True)
    ]


def _interface(
    inputs: Mapping[str, Buf], outputs: Mapping[str, Buf], grids: Mapping[str, Any]
) -> list[str]:
    """Comment lines for the header: each argument of the step and its grid."""
    args = [("input", name, b, b.name) for name, b in inputs.items()]
    args += [("output", name, b, f"out_{i}") for i, (name, b) in enumerate(outputs.items())]
    return [
        f"/* {arg}: {what} {name!r}, {b.size} {b.kind} (shape {b.shape}), scale "
        f"{grids[name]['scale'][0]:.9g}, zero point {grids[name]['zero_point'][0]} */"
        for what, name, b, arg in args
    ]


class _Emitter:
    def __init__(self, graph: Graph, params: Mapping[str, np.ndarray], batch: int, prefix: str):
        self.g, self.params, self.B, self.prefix = graph, params, int(batch), prefix
        self.bufs: dict[int, Buf] = {}
        self.folded: dict[int, np.ndarray] = {}  # constants' values
        self.consts: list[str] = []
        self.body: list[str] = []
        self.statics: list[str] = []
        self.flash = 0
        self.ram = 0
        self.inner: dict[int, tuple[Node, list[int]]] = {}  # fixed points' body nodes

    def node(self, nid: int) -> Node:
        return self.inner[nid][0] if nid in self.inner else self.g.node(nid)

    def operands(self, nid: int) -> list[int]:
        return self.inner[nid][1] if nid in self.inner else self.g.operand_ids(nid)

    def shape(self, nid: int) -> tuple[int, ...]:
        t = self.node(nid).type
        if any(isinstance(d, str) for d in t.row_shape):
            raise CompileError(f"micro: {self.node(nid).name!r} has a symbolic size {t}")
        return (self.B, *(int(d) for d in t.row_shape))

    def buffer(self, nid: int, kind: str | None = None) -> Buf:
        n = self.node(nid)
        buf = Buf(f"v{nid}", kind or n.type.dtype, self.shape(nid))
        if buf.kind not in CTYPE:
            raise CompileError(f"micro: {n.name!r} is a {n.type}; the C step holds integers only")
        self.statics.append(f"static {buf.ctype} {buf.name}[{buf.size}]; /* {n.name} */")
        self.ram += buf.size * np.dtype(buf.kind).itemsize
        self.bufs[nid] = buf
        return buf

    def const(self, name: str, values: np.ndarray, kind: str | None = None) -> str:
        kind = kind or _narrowest(values)
        self.consts.append(
            f"static const {CTYPE[kind]} {name}[{max(values.size, 1)}] = "
            f"{_c_array(values.ravel().tolist() or [0])};"
        )
        self.flash += max(values.size, 1) * np.dtype(kind).itemsize
        return name

    def fold(self, nid: int) -> None:
        """A constant, or a value of constants only (cast to a grid's kind): computed
        now, a ``const`` array (one number is written into the code instead)."""
        n = self.node(nid)
        if n.op == "constant":
            arr = np.asarray(self.g.arrays[n.attrs["array"]])
        else:
            args = [self.folded[u] for u in self.operands(nid)]
            arr = np.asarray(REFERENCE[n.op](n.attrs, *args))
        if arr.dtype.kind not in "iub":
            raise CompileError(f"micro: {n.name!r} ({n.op}) is not an integer constant")
        self.folded[nid] = arr
        kind = _narrowest(arr.astype(np.int64))
        readers = {r for _, r in self.g.nx_graph.out_edges(nid)}
        if arr.size > 1 and any(self.node(r).type.batched for r in readers):  # (else unused)
            self.const(f"c{nid}", arr.astype(np.int64), kind)
        self.bufs[nid] = Buf(f"c{nid}", kind, tuple(int(d) for d in arr.shape))

    def emit(self, line: str) -> None:
        self.body.append("  " + line)

    # ------------------------------------------------------------------ walk
    def build(self) -> CStep:
        g = self.g
        inputs: dict[str, Buf] = {}
        outputs: dict[str, Buf] = {}
        grids: dict[str, dict[str, Any]] = {}
        states: dict[str, Buf] = {}
        init_lines: list[str] = []
        for name, sid in g.state_nodes().items():
            n = self.node(sid)
            buf = self.buffer(sid)
            states[name] = buf
            ((_, delay, spec),) = g.operands(sid)
            if delay != 1:
                raise CompileError(f"micro: state {name!r} has delay {delay}; the step needs 1")
            if spec.kind == "zeros":
                init_lines.append(f"  memset({buf.name}, 0, sizeof {buf.name});")
            elif spec.kind == "array":
                arr = np.broadcast_to(np.asarray(g.arrays[str(spec.ref)]), buf.shape)
                init = self.const(f"{buf.name}_init", arr.astype(np.int64), buf.kind)
                init_lines.append(f"  memcpy({buf.name}, {init}, sizeof {buf.name});")
            else:
                raise CompileError(
                    f"micro: state {n.name!r} starts from {spec.kind} {spec.ref!r}; the C "
                    "step starts from zeros or a fixed array"
                )
        for nid in nx.topological_sort(g.zero_delay_view()):
            n = self.node(nid)
            if n.op in ("input", "param", "state"):
                continue
            if not n.type.batched:  # a multiplier, an offset, a table: in flash
                self.fold(nid)
                continue
            if n.op == "quantize":
                (u,) = self.operands(nid)
                if self.node(u).op != "input":
                    raise CompileError(f"micro: {n.name!r} quantises a computed value")
                buf = Buf(f"in_{len(inputs)}", n.type.dtype, self.shape(nid))
                self.bufs[nid] = buf
                inputs[self.node(u).name] = buf
                grids[self.node(u).name] = dict(n.attrs)
                continue
            if n.op == "dequantize":
                continue
            rule = RULES.get(n.op)
            if rule is None:
                raise CompileError(
                    f"micro: node {n.name!r} ({n.op}) has no C rule; the C step takes "
                    f"rnngraph.quant.to_integer's graphs (ops {sorted(RULES)})"
                )
            rule(self, nid)
        for name, nid in g.output_nodes().items():
            d = self.node(nid)
            if d.op != "dequantize":
                raise CompileError(f"micro: output {name!r} is not dequantised from integers")
            (u,) = self.operands(nid)
            outputs[name] = self.bufs[u]
            grids[name] = dict(d.attrs)
        # states take their new values last (all reads of the old ones are done); a
        # state that stores another state's old value copies it first
        staged: list[str] = []
        final: list[str] = []
        state_bufs = {b.name for b in states.values()}
        for name, sid in g.state_nodes().items():
            ((src, _, _),) = g.operands(sid)
            dst, val = states[name], self.bufs[src]
            if val.kind != dst.kind:
                raise CompileError(f"micro: state {name!r} stores a {val.kind} in a {dst.kind}")
            if val.name in state_bufs:
                tmp = f"{dst.name}_next"
                self.statics.append(f"static {dst.ctype} {tmp}[{dst.size}];")
                self.ram += dst.size * np.dtype(dst.kind).itemsize
                staged.append(f"  memcpy({tmp}, {val.name}, sizeof {tmp});")
                final.append(f"  memcpy({dst.name}, {tmp}, sizeof {tmp});")
            else:
                final.append(f"  memcpy({dst.name}, {val.name}, sizeof {dst.name});")
        return self.finish(inputs, outputs, states, grids, init_lines, staged + final)

    def finish(
        self,
        inputs: dict[str, Buf],
        outputs: dict[str, Buf],
        states: dict[str, Buf],
        grids: dict[str, dict[str, Any]],
        init_lines: list[str],
        update: list[str],
    ) -> CStep:
        p = self.prefix
        ins = [f"const {b.ctype} *{b.name}" for b in inputs.values()]
        outs = [f"{b.ctype} *out_{i}" for i, b in enumerate(outputs.values())]
        signature = f"void {p}_step({', '.join(ins + outs) or 'void'})"
        copies = [
            f"  memcpy(out_{i}, {b.name}, sizeof({b.ctype}) * {b.size});"
            for i, b in enumerate(outputs.values())
        ]
        state_api = [
            f"{b.ctype} *{p}_state_{i}(void) {{ return {b.name}; }} /* {name} */"
            for i, (name, b) in enumerate(states.items())
        ]
        header = "\n".join(
            [
                f"/* rnngraph: one step of graph {self.g.name!r}, integer arithmetic only. */",
                f"#ifndef {p.upper()}_H",
                f"#define {p.upper()}_H",
                "#include <stdint.h>",
                f"#define {p.upper()}_BATCH {self.B}",
                "/* Inputs and outputs are integers on grids: real = (q - zero_point) * scale",
                "   (an input: q = saturate(round(real / scale) + zero_point)). */",
                *_interface(inputs, outputs, grids),
                f"void {p}_reset(void);",
                f"{signature};",
                *(
                    f"{b.ctype} *{p}_state_{i}(void); /* {name}: {b.size} */"
                    for i, (name, b) in enumerate(states.items())
                ),
                "#endif",
                "",
            ]
        )
        source = "\n".join(
            [
                f"/* rnngraph: one step of graph {self.g.name!r}: integers, static buffers. */",
                "#include <stdint.h>",
                "#include <string.h>",
                f'#include "{p}.h"',
                "",
                HELPERS,
                *self.consts,
                "",
                *self.statics,
                "",
                f"void {p}_reset(void) {{",
                *init_lines,
                "}",
                "",
                *state_api,
                "",
                f"{signature} {{",
                *self.body,
                *update,
                *copies,
                "}",
                "",
            ]
        )
        return CStep(
            p, self.B, header, source, inputs, outputs, states, grids, self.flash, self.ram
        )

    # ------------------------------------------------------------------ loops
    def loops(self, shape: Sequence[int], inner: list[str]) -> list[str]:
        """Nested loops over ``shape`` (indices ``i0, i1, ...``) around ``inner``."""
        pad = "  " * len(shape)
        lines = [f"{'  ' * k}for (int i{k} = 0; i{k} < {d}; i{k}++) {{" for k, d in
                 enumerate(shape)]  # fmt: skip
        lines += [pad + ln for ln in inner]
        lines += ["  " * k + "}" for k in reversed(range(len(shape)))]
        return lines

    def loop(self, shape: Sequence[int], inner: list[str]) -> None:
        """Append the loops over ``shape`` around ``inner`` to the step's body."""
        self.body += ["  " + ln for ln in self.loops(shape, inner)]

    def gather(self, out: Buf, src: Buf, idx: str) -> None:
        """``out[i...] = src[idx]`` for every element of ``out`` (``idx`` in ``i0, i1...``)."""
        self.loop(out.shape, [f"{self.at(out)} = {src.name}[{idx}];"])

    @staticmethod
    def requantized(out: Buf, shift: int, zero_point: int) -> str:
        """``saturate(zero_point + round_shift(acc, shift))`` in C: with a shift of 32 or
        more the shifted sum fits 32 bits (every sum stays below 2**62), so the rest is
        32-bit arithmetic."""
        if shift >= 32:
            return (f"rg_sat32_{out.kind}((int32_t)rg_round_shift(acc, {shift}) + "
                    f"{zero_point})")  # fmt: skip
        return f"rg_sat_{out.kind}(rg_round_shift(acc, {shift}) + {zero_point})"

    def at(self, buf: Buf) -> str:
        """``buf``'s element at the loops' indices (``i0, i1, ...`` over its shape)."""
        return f"{buf.name}[{self.index(_strides(buf.shape))}]"

    @staticmethod
    def index(strides: Sequence[int]) -> str:
        terms = [f"i{k} * {s}" if s != 1 else f"i{k}" for k, s in enumerate(strides) if s]
        return " + ".join(terms) or "0"

    def read(self, u: int, out: Buf) -> str:
        """Operand ``u`` at the current element of ``out`` (broadcast; a folded constant
        of one number: that number)."""
        if u in self.folded and self.folded[u].size == 1:
            return str(int(self.folded[u].ravel()[0]))
        b = self.bufs[u]
        return f"{b.name}[{self.index(_broadcast_strides(b.shape, out.shape))}]"


# ---------------------------------------------------------------------- rules
def _int_matmul(self: _Emitter, nid: int) -> None:
    a, w = self.operands(nid)
    n = self.node(nid)
    wn = self.node(w)
    if wn.op != "param":
        raise CompileError(f"micro: {n.name!r} multiplies by {wn.op} {wn.name!r}, not a weight")
    q = np.asarray(self.params[wn.name], np.int64)
    k, cols = q.shape
    za, zb = (int(z) for z in n.attrs["zero_points"])
    src = self.bufs[a]
    if zb or src.kind not in ("int8", "int16"):
        raise CompileError(f"micro: {n.name!r}: the C product takes int8/int16 rows, int8 weights")
    rows_w = q.T.copy()  # (N, K): each output's weights in a row
    if src.kind == "int16":  # groups of four as (w0, w2, w1, w3): see rg_dot_s16
        full = k - k % 4
        rows_w[:, :full] = rows_w[:, :full].reshape(cols, -1, 2, 2).swapaxes(2, 3).reshape(cols, -1)
    wt = self.const(f"w{nid}", rows_w, "int8")
    # sum_k (a - za) w = sum_k a w - za sum_k w: the row's zero point once per output
    fix = self.const(f"wz{nid}", za * q.sum(axis=0), "int32") if za else None
    out = self.buffer(nid)
    rows = out.size // cols
    bits = 8 if src.kind == "int8" else 16
    row = f"{src.name} + i0 * {k}"
    self.emit(f"/* {n.name}: int_matmul ({rows} x {k}) @ ({k} x {cols}) */")
    # two outputs a pass (the row read once for both), the odd one alone
    pair = f"rg_dot2_s{bits}({row}, {wt} + 2 * i1 * {k}, {wt} + (2 * i1 + 1) * {k}, {k}, "
    self.loop([rows, cols // 2], [f"{pair}{out.name} + i0 * {cols} + 2 * i1);"])
    if cols % 2:
        last = f"rg_dot_s{bits}({row}, {wt} + {(cols - 1) * k}, {k})"
        self.loop([rows], [f"{out.name}[i0 * {cols} + {cols - 1}] = {last};"])
    if fix:
        self.loop([rows, cols], [f"{out.name}[i0 * {cols} + i1] -= {fix}[i1];"])


def _int_affine(self: _Emitter, nid: int) -> None:
    n = self.node(nid)
    out = self.buffer(nid)
    k = len(n.attrs["zero_points"])
    ops = self.operands(nid)
    terms = [f"(int64_t){self.read(ops[2 * k], out)}"]
    for u, z, m in zip(ops[:k], n.attrs["zero_points"], ops[k : 2 * k], strict=True):
        terms.append(f"(int64_t)((int32_t){self.read(u, out)} - {int(z)}) * {self.read(m, out)}")
    expr = " + ".join(terms)
    self.emit(f"/* {n.name}: int_affine */")
    self.loop(
        out.shape,
        [
            f"int64_t acc = {expr};",
            f"{self.at(out)} = "
            f"{self.requantized(out, int(n.attrs['shift']), int(n.attrs['zero_point']))};",
        ],
    )


def _int_mul(self: _Emitter, nid: int) -> None:
    n = self.node(nid)
    out = self.buffer(nid)
    ua, ub, um, uo = self.operands(nid)
    a, b = self.bufs[ua], self.bufs[ub]
    za, zb = (int(z) for z in n.attrs["zero_points"])
    mult, off = self.read(um, out), self.read(uo, out)
    # the product in 32 bits when it fits (int8 x int16, or symmetric int16s): then one
    # 32 x 32 -> 64 multiply by the multiplier (which fits 31 bits)
    narrow = spread(a.kind, za) * spread(b.kind, zb) < 2**31
    wide = "int32_t" if narrow else "int64_t"
    self.emit(f"/* {n.name}: int_mul */")
    self.loop(
        out.shape,
        [
            f"{wide} prod = ({wide})((int32_t){self.read(ua, out)} - {za}) * "
            f"(({wide}){self.read(ub, out)} - {zb});",
            f"int64_t acc = {off} + (int64_t)prod * {mult};",
            f"{self.at(out)} = "
            f"{self.requantized(out, int(n.attrs['shift']), int(n.attrs['zero_point']))};",
        ],
    )


def _int_div(self: _Emitter, nid: int) -> None:
    n = self.node(nid)
    out = self.buffer(nid)
    ua, ub, um = self.operands(nid)
    za, zb = (int(z) for z in n.attrs["zero_points"])
    scale = 1 << int(n.attrs["shift"])
    self.emit(f"/* {n.name}: int_div */")
    self.loop(
        out.shape,
        [
            f"int64_t num = (int64_t)((int32_t){self.read(ua, out)} - {za}) * "
            f"{self.read(um, out)};",
            f"int64_t den = (int64_t)((int32_t){self.read(ub, out)} - {zb}) * {scale}LL;",
            f"{self.at(out)} = rg_sat_{out.kind}(rg_round_div(num, den) + "
            f"{int(n.attrs['zero_point'])});",
        ],
    )


def _int_lut(self: _Emitter, nid: int) -> None:
    n = self.node(nid)
    u, t = self.operands(nid)
    src = self.bufs[u]
    out = self.buffer(nid)
    table = self.bufs[t].name
    lo, bits = int(n.attrs["lo"]), int(n.attrs["bits"])
    self.emit(f"/* {n.name}: int_lut */")
    if bits == 0:
        inner = [f"{out.name}[i0] = rg_sat_{out.kind}((int64_t){table}[{src.name}[i0] - ({lo})]);"]
    else:
        inner = [
            f"int32_t i = (int32_t){src.name}[i0] - ({lo});",
            f"int32_t k = i >> {bits}, f = i & {(1 << bits) - 1};",
            f"int64_t lo = {table}[k], d = (int64_t){table}[k + 1] - lo;",
            f"{out.name}[i0] = rg_sat_{out.kind}(lo + rg_round_shift(d * f, {bits}));",
        ]
    self.loop([out.size], inner)


def _copy(self: _Emitter, nid: int) -> None:
    """reshape / unsqueeze / delay (a delay-0 read in the unit-delay form): a copy."""
    (u,) = self.operands(nid)
    src = self.bufs[u]
    out = self.buffer(nid, src.kind)
    self.emit(f"memcpy({out.name}, {src.name}, sizeof {out.name}); /* {self.node(nid).name} */")


def _slice(self: _Emitter, nid: int) -> None:
    n = self.node(nid)
    (u,) = self.operands(nid)
    src = self.bufs[u]
    out = self.buffer(nid, src.kind)
    rank = len(src.shape)
    start, step = [0] * rank, [1] * rank
    for ax, s0, e0, st in zip(n.attrs["axes"], n.attrs["starts"], n.attrs["ends"],
                              n.attrs["steps"], strict=True):  # fmt: skip
        i = rank + int(ax)
        start[i], step[i] = range(src.shape[i])[slice(int(s0), int(e0), int(st))].start, int(st)
    strides = _strides(src.shape)
    offset = sum(s * t for s, t in zip(start, strides, strict=True))
    idx = " + ".join([str(offset), *(f"i{k} * {strides[k] * step[k]}" for k in range(rank))])
    self.emit(f"/* {n.name}: slice */")
    self.gather(out, src, idx)


def _transpose(self: _Emitter, nid: int) -> None:
    n = self.node(nid)
    (u,) = self.operands(nid)
    src = self.bufs[u]
    out = self.buffer(nid, src.kind)
    perm = [0, *(1 + int(p) for p in n.attrs["perm"])]
    strides = _strides(src.shape)
    idx = " + ".join(f"i{k} * {strides[p]}" for k, p in enumerate(perm))
    self.emit(f"/* {n.name}: transpose */")
    self.gather(out, src, idx)


def _concat(self: _Emitter, nid: int) -> None:
    n = self.node(nid)
    parts = [self.bufs[u] for u in self.operands(nid)]
    out = self.buffer(nid, parts[0].kind)
    axis = len(out.shape) + int(n.attrs["axis"])
    outer = int(np.prod(out.shape[:axis], dtype=np.int64))
    inner = int(np.prod(out.shape[axis + 1 :], dtype=np.int64))
    self.emit(f"/* {n.name}: concat */")
    at = 0
    for p in parts:
        width = p.shape[axis] * inner
        self.emit(
            f"for (int i = 0; i < {outer}; i++) memcpy({out.name} + i * {out.shape[axis] * inner}"
            f" + {at}, {p.name} + i * {width}, sizeof({p.ctype}) * {width});"
        )
        at += width


def _elementwise(expr: str) -> Any:
    """An element-wise rule: ``expr`` formats the operands' reads (``{0}``, ``{1}``...)."""

    def rule(self: _Emitter, nid: int) -> None:
        n = self.node(nid)
        out = self.buffer(nid)
        reads = [self.read(u, out) for u in self.operands(nid)]
        self.emit(f"/* {n.name}: {n.op} */")
        store = f"{self.at(out)} = {expr.format(*reads)};"
        self.loop(out.shape, [store])

    return rule


def _reduce(better: str) -> Any:
    """reduce_max / reduce_min over the last axis."""

    def rule(self: _Emitter, nid: int) -> None:
        n = self.node(nid)
        (u,) = self.operands(nid)
        src = self.bufs[u]
        if list(n.attrs["axes"]) != [-1]:
            raise CompileError(f"micro: {n.name!r} reduces axes {n.attrs['axes']}; C: the last")
        out = self.buffer(nid, src.kind)
        width = src.shape[-1]
        self.emit(f"/* {n.name}: {n.op} */")
        row = f"{src.name} + i0 * {width}"
        self.loop(
            [out.size],
            [
                f"const {src.ctype} *r = {row};",
                f"{src.ctype} best = r[0];",
                f"for (int k = 1; k < {width}; k++) if (r[k] {better} best) best = r[k];",
                f"{out.name}[i0] = best;",
            ],
        )

    return rule


def _pad(self: _Emitter, nid: int) -> None:
    """Zeros, then the operand copied into its window."""
    n = self.node(nid)
    (u,) = self.operands(nid)
    src = self.bufs[u]
    out = self.buffer(nid, src.kind)
    start = [0] * len(out.shape)
    for ax, (lo, _) in zip(n.attrs["axes"], n.attrs["pads"], strict=True):
        start[len(out.shape) + int(ax)] = int(lo)
    strides = _strides(out.shape)
    at = " + ".join(f"(i{k} + {s}) * {strides[k]}" for k, s in enumerate(start))
    self.emit(f"memset({out.name}, 0, sizeof {out.name}); /* {n.name}: pad */")
    self.loop(src.shape, [f"{out.name}[{at}] = {self.at(src)};"])


def _cast(self: _Emitter, nid: int) -> None:
    """Between integer kinds (positions to int32): the values fit."""
    n = self.node(nid)
    if n.type.dtype not in ("int8", "int16", "int32", "int64"):
        raise CompileError(f"micro: {n.name!r} casts to {n.type.dtype}; C: integer kinds only")
    _elementwise(f"({CTYPE[n.type.dtype]}){{0}}")(self, nid)


_INNER = 1 << 30
"""Ids of a fixed point's body nodes (``_INNER * (k + 1) + node``: apart from the graph's)."""


def _fixed_point(self: _Emitter, nid: int) -> None:
    """An integer fixed point: the iterate in the node's buffer, the body's C in a loop of
    at most ``max_iter`` passes; a row whose largest change is below ``tol`` (an integer
    change: below its ceiling) keeps its value from then on, and the loop ends when every
    row has."""
    n = self.node(nid)
    body = Body.of(n.attrs)
    z0, *caps = self.operands(nid)
    out = self.buffer(nid)
    done = f"{out.name}_done"
    self.statics.append(f"static uint8_t {done}[{self.B}];")
    self.ram += self.B
    self.emit(f"/* {n.name}: fixed point (at most {body.max_iter} passes) */")
    self.emit(f"memcpy({out.name}, {self.bufs[z0].name}, sizeof {out.name});")
    self.emit(f"memset({done}, 0, sizeof {done});")
    self.emit(f"for (int32_t pass = 0; pass < {body.max_iter}; pass++) {{")
    start = len(self.body)
    ids: list[int] = []
    for k, bn in enumerate(body.nodes):
        pid = _INNER * (k + 1) + nid
        args = [nid if a == Z else (caps[-2 - a] if a < Z else ids[a]) for a in bn.args]
        self.inner[pid] = (Node(pid, f"{n.name}/{bn.name}", bn.op, bn.type, dict(bn.attrs), None),
                           args)  # fmt: skip
        rule = RULES.get(bn.op)
        if rule is None or not bn.type.batched:
            raise CompileError(f"micro: fixed point {n.name!r}: body node {bn.name!r} ({bn.op}) "
                               "has no C rule")  # fmt: skip
        rule(self, pid)
        ids.append(pid)
    self.body[start:] = ["  " + ln for ln in self.body[start:]]
    new, width = self.bufs[ids[-1]], out.size // self.B
    limit = math.ceil(body.tol)  # (an integer change is below tol: below its ceiling)
    self.body += [
        "    int left = 0;",
        f"    for (int r = 0; r < {self.B}; r++) {{",
        f"      if ({done}[r]) continue;",
        "      int32_t most = 0;",
        f"      for (int k = 0; k < {width}; k++) {{",
        f"        int32_t d = (int32_t){new.name}[r * {width} + k] - "
        f"(int32_t){out.name}[r * {width} + k];",
        "        if (d < 0) d = -d;",
        "        if (d > most) most = d;",
        f"        {out.name}[r * {width} + k] = {new.name}[r * {width} + k];",
        "      }",
        f"      if (most < {limit}) {done}[r] = 1; else left = 1;",
        "    }",
        "    if (!left) break;",
        "  }",
    ]


def _zeros_like(self: _Emitter, nid: int) -> None:
    out = self.buffer(nid)
    self.emit(f"memset({out.name}, 0, sizeof {out.name}); /* {self.node(nid).name} */")


def _lines(shape: Sequence[int], axis: int) -> tuple[int, int, int]:
    """A buffer seen as lines along ``axis``: (lines before it, its length, stride)."""
    axis = len(shape) + axis
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    return outer, int(shape[axis]), inner


def _top_k(self: _Emitter, nid: int) -> None:
    """Positions in order, ties by the lower index: an insertion sort of each line's
    positions (stable; lines are short, as a memory's rows), its first ``k`` written."""
    n = self.node(nid)
    (u,) = self.operands(nid)
    src = self.bufs[u]
    out = self.buffer(nid, "int64")
    outer, length, inner = _lines(src.shape, int(n.attrs["axis"]))
    k = out.shape[len(out.shape) + int(n.attrs["axis"])]
    after = "<" if n.attrs["largest"] else ">"  # (an entry the new one goes before)
    self.emit(f"/* {n.name}: top_k (insertion sort of each line) */")
    self.loop(
        [outer, inner],
        [
            f"const {src.ctype} *x = {src.name} + i0 * {length * inner} + i1;",
            f"int64_t *y = {out.name} + i0 * {k * inner} + i1;",
            f"int32_t order[{length}];",
            f"for (int32_t i = 0; i < {length}; i++) {{",
            "  int32_t j = i;",
            f"  while (j > 0 && x[order[j - 1] * {inner}] {after} x[i * {inner}]) {{",
            "    order[j] = order[j - 1];",
            "    j--;",
            "  }",
            "  order[j] = i;",
            "}",
            f"for (int32_t i = 0; i < {k}; i++) y[i * {inner}] = order[i];",
        ],
    )


def _at_position(self: _Emitter, idx: Buf, data: Buf, axis: int) -> tuple[str, str]:
    """In the loops over ``idx``'s elements: the position read there (a negative one
    counts from the end) and the index in ``data`` of the element it names along
    ``axis`` (``data`` has ``idx``'s shape on the other axes)."""
    ax = len(idx.shape) + axis
    ds = _strides(data.shape)
    j = f"{idx.name}[{self.index(_strides(idx.shape))}]"
    where = [f"i{k} * {d}" for k, d in enumerate(ds) if k != ax]
    return f"int64_t j = {j}; if (j < 0) j += {data.shape[ax]};", " + ".join(
        [*where, f"j * {ds[ax]}"]
    )


def _take_along(self: _Emitter, nid: int) -> None:
    n = self.node(nid)
    x, i = (self.bufs[u] for u in self.operands(nid))
    out = self.buffer(nid, x.kind)
    pos, at = _at_position(self, i, x, int(n.attrs["axis"]))
    self.emit(f"/* {n.name}: take_along */")
    self.loop(out.shape, [pos, f"{self.at(out)} = {x.name}[{at}];"])


def _scatter_add_along(self: _Emitter, nid: int) -> None:
    n = self.node(nid)
    base, i, values = (self.bufs[u] for u in self.operands(nid))
    out = self.buffer(nid, base.kind)
    pos, at = _at_position(self, i, out, int(n.attrs["axis"]))
    self.emit(f"memcpy({out.name}, {base.name}, sizeof {out.name}); /* {n.name} */")
    self.loop(i.shape, [pos, f"{out.name}[{at}] += {self.at(values)};"])


RULES = {
    "greater": _elementwise("{0} > {1}"),
    "less": _elementwise("{0} < {1}"),
    "equal": _elementwise("{0} == {1}"),
    "where": _elementwise("{0} ? {1} : {2}"),
    "minimum": _elementwise("{0} < {1} ? {0} : {1}"),
    "maximum": _elementwise("{0} > {1} ? {0} : {1}"),
    "reduce_max": _reduce(">"),
    "reduce_min": _reduce("<"),
    "pad": _pad,
    "int_matmul": _int_matmul,
    "int_affine": _int_affine,
    "int_mul": _int_mul,
    "int_div": _int_div,
    "int_lut": _int_lut,
    "reshape": _copy,
    "unsqueeze": _copy,
    "delay": _copy,
    "slice": _slice,
    "transpose": _transpose,
    "concat": _concat,
    "zeros_like": _zeros_like,
    "cast": _cast,
    "fixed_point": _fixed_point,
    "top_k": _top_k,
    "take_along": _take_along,
    "scatter_add_along": _scatter_add_along,
}
"""The C written for each op of an integer graph."""


def emit_step(
    graph: Graph, params: Mapping[str, np.ndarray], batch: int = 1, prefix: str = "rg_model"
) -> CStep:
    """The C of one step of ``graph`` (an integer graph in unit-delay form)."""
    return _Emitter(graph, params, batch, prefix).build()
