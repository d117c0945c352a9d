"""Register-blocked ``rows @ W`` for CPUs: the weight packed in column panels.

A matrix product of a signal's rows and a time-invariant weight ``W (K, N)``
is the work of every recurrent step. Written as plain loops, LLVM keeps the
running sums in memory and the loop is store-bound (figures in
``benchmarks/results/``). Here:

- ``W`` is packed once, when the model is built, into panels of ``NR``
  columns laid out ``(N / NR, K, NR)``, so a panel is one contiguous stream
  that stays in L1 while every row block uses it;
- rows are taken in chunks that stay in L2 while every panel passes over
  them (a whole sequence's input projection has far more rows than fit);
- each block of ``ROWS`` rows times one panel accumulates in a small
  buffer whose indices are all constants after unrolling, which LLVM keeps
  in vector registers (``ROWS x NR`` floats: 12 AVX2 registers, enough
  independent sums to keep both FMA units busy; 8 left them waiting), the ``k``
  loop a chain of broadcast-and-FMA;
- rows left over (``B mod ROWS``) are one smaller block per panel after the
  others (the weight streams once more, not once per row left over); with
  fewer rows than a block (a batch of 1 to 5) they are one block of all of
  them times a few panels (one row: ``PANELS``), one pass over the weight.

Measured here (K=256, N=1024, 32 rows, 100 repeats): 75-88 GFLOP/s, against
18 for the plain loops; one row (the batch-1 step) runs at the speed the
weight streams from cache. The accumulator is declared in "global" scope on
purpose: TVM puts small constant-size global allocations on the stack and
moves every other one (a "local" one included) to the heap, whose stores
LLVM must keep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import tirx as tir

from rnngraph_tvm._ops import I64, i64, seq

__all__ = ["ROWS", "pack", "panel_width", "product", "streamed"]

ROWS = 6
"""Rows per register block."""

PANELS = 4
"""Panels per block of a single row (rows left over, the batch-1 step)."""

SPLIT_BELOW = 4
"""A step's rows left over after whole blocks, if fewer than this, are merged with the last
whole block and split in two (``ROWS + m`` rows as two blocks of 4 or 5)."""

CHUNK_BYTES = 128 * 1024
"""Rows of the left operand taken at a time: they stay in L2 while every panel passes."""

PANEL_BYTES = 64
"""Bytes of one row of a panel: two AVX2 vectors, four NEON ones."""

STREAMED_BYTES = 32 * 1024
"""A weight bigger than this (L1) streams from L2 or further on every pass: a few rows
take it in one pass, in one block (:func:`panels_per_block`). A smaller one stays in L1,
where one row at a time is as fast and the code is five times smaller (LLVM's time)."""


def panel_width(dtype: str) -> int:
    """Columns per panel (``NR``) for elements of ``dtype``."""
    return PANEL_BYTES // np.dtype(dtype).itemsize


def streamed(k_size: int, n_size: int, dtype: str) -> bool:
    """Whether a weight ``(k_size, n_size)``, packed, is bigger than
    :data:`STREAMED_BYTES`."""
    nr = panel_width(dtype)
    return -(-n_size // nr) * nr * k_size * np.dtype(dtype).itemsize > STREAMED_BYTES


def panels_per_block(rows: int) -> int:
    """Panels a block of ``rows`` rows (fewer than :data:`ROWS`) takes at a time:
    :data:`PANELS` for one row, 2 for two, then 1 — about 8 AVX2 sums, enough to hide
    the FMA latency (12 with a panel's and a row's vectors spilled registers: a batch of
    3 took 6.3 ms with 2 panels, 5.1 with 1, the LSTM of ``benchmarks/tvm_lstm.py``)."""
    return max(1, PANELS // rows)


def pack(w: np.ndarray, nr: int) -> np.ndarray:
    """``w (K, N)`` as panels ``(ceil(N / nr), K, nr)``, the last one padded with zeros."""
    k, n = w.shape
    p = -(-n // nr)
    padded = np.zeros((k, p * nr), w.dtype)
    padded[:, :n] = w
    return np.ascontiguousarray(padded.reshape(k, p, nr).transpose(1, 0, 2))


def product(
    n_rows: Any,
    load: Callable[[Any, Any], Any],
    panels: Any,
    k_size: int,
    n_size: int,
    store: Callable[[Any, Any, Any], Any],
    dtype: str,
    chunked: bool = True,
    threads: bool = False,
) -> Any:
    """The statement ``out[r, :] = a[r, :] @ W`` for ``r < n_rows``.

    ``load(r, k)`` reads ``a``; ``store(r, col, value)`` writes the result;
    ``panels`` is the buffer of :func:`pack` (``W`` packed, ``NR`` =
    :func:`panel_width`). ``chunked``: take the rows in L2-sized chunks (for
    products with many rows; a batch's few rows at one step are one chunk);
    ``threads``: spread the panels over the CPU's cores (every core keeps its share of ``W``).
    """
    nr = panel_width(dtype)
    n_panels = -(-n_size // nr)

    def block(mr: int, r0: Any, p0: Any, pb: int) -> Any:
        """Rows ``r0 .. r0 + mr`` times panels ``p0 .. p0 + pb``, sums in registers."""
        acc = tir.decl_buffer((i64(mr * pb * nr),), dtype, name="acc", scope="global")
        i, q, j, k = (tir.Var(v, I64) for v in ("i", "q", "j", "k"))

        def each(body: Any, kind: Any = tir.ForKind.VECTORIZED) -> Any:
            lanes = tir.For(j, i64(0), i64(nr), kind, body)  # columns: one vector
            per_panel = tir.For(q, i64(0), i64(pb), tir.ForKind.UNROLLED, lanes)
            return tir.For(i, i64(0), i64(mr), tir.ForKind.UNROLLED, per_panel)

        at = (i * i64(pb) + q) * i64(nr) + j
        col = (p0 + q) * i64(nr) + j
        zero = each(tir.BufferStore(acc, tir.const(0, dtype), [at]))
        fma = acc[at] + load(r0 + i, k) * panels[p0 + q, k, j]
        steps = tir.For(
            k, i64(0), i64(k_size), tir.ForKind.SERIAL, each(tir.BufferStore(acc, fma, [at]))
        )
        out = each(store(r0 + i, col, acc[at]))
        if n_size % nr:  # the last panel is partly padding: store its real columns only
            real = tir.IfThenElse(col < i64(n_size), store(r0 + i, col, acc[at]), None)
            out = tir.IfThenElse(p0 + i64(pb) < i64(n_panels), out, each(real, tir.ForKind.SERIAL))
        return tir.SeqStmt([tir.AllocBuffer(acc), zero, steps, out])

    # Blocks of ROWS rows, one panel at a time: the panel stays in L1 across the rows of
    # a chunk, and the chunk's rows (CHUNK_BYTES of them) in L2 across the panels.
    jb, ib, ch = (tir.Var(v, I64) for v in ("jb", "ib", "ch"))
    full = tir.floordiv(n_rows, i64(ROWS))

    # Spread over the cores: the panels (each core keeps its share of the weight in its
    # own cache, and the shares are even whatever the number of rows).
    spread = tir.ForKind.PARALLEL if threads else tir.ForKind.SERIAL

    left = n_rows - full * i64(ROWS)

    def leftover(p: Any, merged: bool = False) -> list[Any]:
        """The rows after whole blocks, times panel ``p``. ``merged``: a few rows left
        (fewer than :data:`SPLIT_BELOW`) join the last whole block, and the two are split
        in two blocks of about the same size (a block of one or two rows has too few
        independent sums to keep the FMA units busy)."""
        cases = []
        for m in range(1, ROWS):
            if merged and m < SPLIT_BELOW:
                a = (ROWS + m + 1) // 2
                r0 = (full - i64(1)) * i64(ROWS)
                stmt = seq([block(a, r0, p, 1), block(ROWS + m - a, r0 + i64(a), p, 1)])
            else:
                stmt = block(m, full * i64(ROWS), p, 1)
            cases.append(tir.IfThenElse(left == i64(m), stmt, None))
        return cases

    def blocks(first: Any, count: Any, tail: bool = False) -> Any:
        """Every panel over row blocks ``first .. first + count`` (and, with ``tail``, the
        rows left over, while the panel is in L1)."""
        if tail and SPLIT_BELOW > 1:  # (the last whole block then goes with the rows left)
            merged = tir.Select(tir.And(left > i64(0), left < i64(SPLIT_BELOW)), i64(1), i64(0))
            count = count - merged
        rows = tir.For(ib, first, count, tir.ForKind.SERIAL, block(ROWS, ib * i64(ROWS), jb, 1))
        return tir.For(
            jb,
            i64(0),
            i64(n_panels),
            spread,
            seq([rows, *leftover(jb, merged=SPLIT_BELOW > 1)] if tail else [rows]),
        )

    if chunked:
        per_chunk = max(1, CHUNK_BYTES // (ROWS * k_size * np.dtype(dtype).itemsize))
        first = ch * i64(per_chunk)
        main = tir.For(
            ch,
            i64(0),
            tir.floordiv(full + i64(per_chunk - 1), i64(per_chunk)),
            tir.ForKind.SERIAL,
            blocks(first, tir.min(full - first, i64(per_chunk))),
        )
    else:
        main = blocks(i64(0), full, tail=True)

    # Fewer rows than a block (a small batch): all of them in one block per group of
    # panels, in one pass over the weight; with fewer rows, more panels at a time
    # (:func:`panels_per_block`), so that enough independent sums hide the FMA latency;
    # the last panels one by one.
    def few(m: int, r0: Any) -> Any:
        """Rows ``r0 .. r0 + m`` times every panel."""
        pb, jg = panels_per_block(m), tir.Var("jg", I64)
        groups = n_panels // pb
        stmts = [block(m, r0, i64(p), 1) for p in range(groups * pb, n_panels)]
        if groups:
            stmts.insert(
                0, tir.For(jg, i64(0), i64(groups), spread, block(m, r0, jg * i64(pb), pb))
            )
        return seq(stmts)

    if streamed(k_size, n_size, dtype):
        rest = seq([tir.IfThenElse(n_rows == i64(m), few(m, i64(0)), None) for m in range(1, ROWS)])
    else:  # (a weight in L1: the rows one at a time, each a block of one row)
        r = tir.Var("r", I64)
        rest = tir.For(r, i64(0), n_rows, tir.ForKind.SERIAL, few(1, r))
    # After whole blocks, the rows left over are one block of their own per panel: in the
    # same pass over the panels (a step's rows), or one more pass (a chunked sequence's),
    # not one pass per row left over.
    if ROWS == 1:  # (nothing is ever left over)
        return main
    if not chunked:
        return tir.IfThenElse(full > i64(0), main, rest)
    jt = tir.Var("jt", I64)
    after_blocks = tir.For(jt, i64(0), i64(n_panels), spread, seq(leftover(jt)))
    return tir.SeqStmt([main, tir.IfThenElse(full > i64(0), after_blocks, rest)])
