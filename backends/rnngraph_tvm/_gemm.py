"""Register-blocked ``rows @ W`` for CPUs: the weight packed in column panels.

A matrix product of a signal's rows and a time-invariant weight ``W (K, N)``
is the work of every recurrent step. Written as plain loops, LLVM keeps the
running sums in memory and the loop is store-bound (figures in
``benchmarks/results/``). Here, with the sizes of the model's
:class:`~rnngraph_tvm._plan.Plan` (derived from the target's vector width,
registers and caches, or tuned on the machine):

- ``W`` is packed once, when the model is built, into panels of ``NR``
  columns laid out ``(N / NR, K, NR)`` (a panel row: two vectors), so a
  panel is one contiguous stream that stays in L1 while every row block
  uses it;
- rows are taken in chunks that stay in L2 while every panel passes over
  them (a whole sequence's input projection has far more rows than fit);
- each block of ``rows`` rows times one panel accumulates in small buffers
  (one a row) whose indices are all constants after unrolling, which LLVM
  keeps in vector registers (AVX2: 6 rows x 2 vectors, 12 of its 16
  registers, enough independent sums to keep both FMA units busy; 8 left
  them waiting; AVX-512: 8 rows of 2 in its 32), the ``k`` loop a chain of
  broadcast-and-FMA;
- rows left over (``B mod rows``) are one smaller block per panel after the
  others (the weight streams once more, not once per row left over); with
  fewer rows than a block (a small batch) they are one block of all of
  them times a few panels (one row: the plan's ``panels``), one pass over
  the weight.

Measured (K=256, N=1024, 32 rows, 100 repeats, AVX2): 75-88 GFLOP/s, against
18 for the plain loops; one row (the batch-1 step) runs at the speed the
weight streams from cache. The accumulators are declared in "global" scope on
purpose: TVM puts constant-size global allocations under 1 KB on the stack and
moves every other one (a "local" one included) to the heap, whose stores
LLVM must keep — hence one buffer a row (a block of 8 rows of 32 floats in
one buffer went to the heap and ran 2.5 times slower).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tvm import tirx as tir

from rnngraph_tvm._ops import I64, Acc, bcast, extent, i64, loops, seq
from rnngraph_tvm._plan import Plan

__all__ = [
    "DOTS", "Dot", "pack", "product", "signal_product", "streamed", "table_size", "vnni_layout",
    "vnni_product", "vnni_shape",
]  # fmt: skip

SPLIT_BELOW = 4
"""A step's rows left over after whole blocks, if fewer than this, are merged with the last
whole block and split in two (``ROWS + m`` rows as two blocks of about the same size)."""


def streamed(k_size: int, n_size: int, dtype: str, plan: Plan) -> bool:
    """Whether a weight ``(k_size, n_size)``, packed, is bigger than the plan's
    ``streamed_bytes`` (L1): a few rows then take it in one pass, in one block
    (:meth:`Plan.panels_per_block`). A smaller one stays in L1, where one row at a time is
    as fast and the code is five times smaller (LLVM's time)."""
    nr = plan.panel_width(dtype)
    return -(-n_size // nr) * nr * k_size * np.dtype(dtype).itemsize > plan.streamed_bytes


def _blocks_per_chunk(k_size: int, dtype: str, plan: Plan) -> int:
    """Row blocks of a chunk: as many rows of ``k_size`` elements as ``chunk_bytes`` hold."""
    return max(1, plan.chunk_bytes // (plan.rows * k_size * np.dtype(dtype).itemsize))


def table_size(k_size: int, dtype: str, plan: Plan, n_index: int) -> int:
    """Entries of the ``table`` a chunked :func:`product` with ``n_index`` indices a row
    needs: one chunk's rows' indices."""
    return _blocks_per_chunk(k_size, dtype, plan) * plan.rows * n_index


def pack(w: np.ndarray, nr: int) -> np.ndarray:
    """``w (K, N)`` as panels ``(ceil(N / nr), K, nr)``, the last one padded with zeros."""
    k, n = w.shape
    p = -(-n // nr)
    padded = np.zeros((k, p * nr), w.dtype)
    padded[:, :n] = w
    return np.ascontiguousarray(padded.reshape(k, p, nr).transpose(1, 0, 2))


VNNI_COLUMNS = 64
"""Columns an integer product's inner loop keeps in registers: four 16-lane vectors."""


@dataclass(frozen=True)
class Dot:
    """An integer dot-product instruction: ``per`` signal values a 32-bit word, each offset
    by ``offset`` (to unsigned bytes for ``vpdpbusd``), ``operand`` the vector type of its
    two operands, ``lanes`` int32 sums a vector, and whether it adds into the sums
    (``fused``) or returns products an add then takes."""

    intrinsic: str
    operand: str
    lanes: int
    per: int
    offset: int = 0
    fused: bool = True

    @property
    def layout(self) -> str:
        """The weight's layout it reads (see :func:`vnni_layout`)."""
        return "vnni" if self.per == 4 else "vnni16"


_PMADDWD = {
    "pmaddwd512": Dot("llvm.x86.avx512.pmaddw.d.512", "int16x32", 16, 2, fused=False),
    "pmaddwd256": Dot("llvm.x86.avx2.pmadd.wd", "int16x16", 8, 2, fused=False),
}
DOTS: dict[tuple[str, str], Dot] = {
    ("vnni512", "int8"): Dot("llvm.x86.avx512.vpdpbusd.512", "int8x64", 16, 4, offset=128),
    ("vnni512", "int16"): Dot("llvm.x86.avx512.vpdpwssd.512", "int16x32", 16, 2),
    ("sdot128", "int8"): Dot("llvm.aarch64.neon.sdot.v4i32.v16i8", "int8x16", 4, 4),
    **{(name, kind): dot for name, dot in _PMADDWD.items() for kind in ("int8", "int16")},
}
"""By the CPU's ``int8_dot`` and the signal's kind: the instruction an integer product by
an int8 weight runs on. AVX-512 VNNI: ``vpdpbusd`` (four ``uint8 x int8`` products a
lane: the int8 signal offset by 128) and ``vpdpwssd`` (two ``int16 x int16``);
AVX-512BW and AVX2: ``vpmaddwd`` (two ``int16 x int16`` products a lane, an int8 signal
widened to int16) and an add; aarch64's dot-product extension: ``sdot`` (four
``int8 x int8``; int16 signals have none). None of them saturates."""


def vnni_shape(k_size: int, n_size: int, layout: str) -> tuple[int, ...]:
    """The shape :func:`vnni_layout` gives a weight ``(k_size, n_size)``."""
    np_ = -(-n_size // VNNI_COLUMNS) * VNNI_COLUMNS
    if layout == "colsum":
        return (np_,)
    return (-(-k_size // (2 if layout == "vnni16" else 4)), np_)


def vnni_layout(w: np.ndarray, layout: str) -> np.ndarray:
    """An int8 weight ``w (K, N)`` for :func:`vnni_product`, as int32 words ``(Kw, Np)``:
    ``"vnni"``: word ``[q, n]`` holds ``w[4q : 4q + 4, n]`` as four bytes (``vpdpbusd``
    multiplies them by four activation bytes in one lane); ``"vnni16"``: word ``[q, n]``
    holds ``w[2q : 2q + 2, n]`` as two int16 (``vpdpwssd``, for int16 activations);
    ``"colsum"``: the ``(Np,)`` column sums. ``Np`` is ``N`` rounded up to
    :data:`VNNI_COLUMNS`; rows and columns past the weight's are zeros."""
    k, n = w.shape
    per = 2 if layout == "vnni16" else 4
    kw, np_ = vnni_shape(k, n, "vnni16" if per == 2 else "vnni")
    padded = np.zeros((kw * per, np_), np.int16 if per == 2 else np.int8)
    padded[:k, :n] = w
    if layout == "colsum":
        return padded.astype(np.int32).sum(axis=0).astype(np.int32)
    groups = padded.reshape(kw, per, np_).transpose(0, 2, 1)  # (word, column, part)
    return np.ascontiguousarray(groups).view("<i4").reshape(kw, np_)


def vnni_product(
    dot_name: str,
    k_size: int,
    n_size: int,
    kind: str,
    load: Callable[[Any, Any], Any],
    zero_point: int,
    words: Any,
    colsum: Any,
    store: Callable[[Any, Any, Any], Any],
    rows: int = 1,
) -> Any:
    """``out[r, n] = sum_k (a[r, k] - zero_point) * w[k, n]`` for ``rows`` rows ``a`` of
    ``kind`` (int8 or int16; ``load(r, k)``) and an int8 weight in :func:`vnni_layout`
    (``words``, ``colsum``), exactly, on the CPU's dot product ``dot_name`` (:data:`DOTS`).
    AVX-512 VNNI, int8: each row is offset to uint8 (``a + 128``) and packed four bytes a
    word, each ``vpdpbusd`` adding four ``uint8 x int8`` products into each of 16 int32
    lanes; int16 (or ``vpmaddwd``, either kind): two values a word, each instruction
    adding two ``int16 x int16`` products a lane. :data:`VNNI_COLUMNS` columns at a time,
    in groups of vectors small enough that every row's sums of a group stay in registers
    (:func:`vnni_rows`): each weight vector loaded once serves every row. Then
    ``(zero_point + offset) * colsum`` is taken off. ``store(r, n, value)`` writes
    column ``n`` of row ``r``."""
    dot = DOTS[(dot_name, kind)]
    per, offset, vector, lanes = dot.per, dot.offset, dot.operand, dot.lanes
    kw, np_ = vnni_shape(k_size, n_size, dot.layout)
    i32 = "int32"
    # (a buffer of each row's words and of its sums: small stack buffers, which LLVM
    # keeps in registers through the inner loop; one big one goes to the heap)
    words_of = [tir.decl_buffer((i64(kw),), i32, name=f"row_words{i}") for i in range(rows)]
    sums_of = [tir.decl_buffer((i64(VNNI_COLUMNS),), i32, name=f"acc_i32_{i}") for i in range(rows)]
    q, jb, c = (tir.Var(v, "int64") for v in ("q", "jb", "c"))
    mask = tir.const((1 << (32 // per)) - 1, i32)

    def fill(i: int) -> Any:  # row i's words: a[i, k] + offset in its bits (0 past the end)
        def part(k: Any) -> Any:
            v = tir.bitwise_and(tir.Cast(i32, load(i64(i), k)) + tir.const(offset, i32), mask)
            return tir.if_then_else(k < k_size, v, tir.const(0, i32)) if k_size % per else v

        word = part(q * per)
        for j in range(1, per):
            word = tir.bitwise_or(
                word, tir.shift_left(part(q * per + j), tir.const(j * 32 // per, i32))
            )
        put = tir.BufferStore(words_of[i], word, [q])
        return tir.For(q, i64(0), i64(kw), tir.ForKind.SERIAL, put)

    vectors = VNNI_COLUMNS // lanes
    group = max(1, min(vectors, _SUM_REGISTERS[lanes] // rows))
    result = f"int32x{lanes}"

    def at(v: int) -> Any:  # the sums of vector v
        return tir.Ramp(i64(lanes * v), i64(1), lanes)

    def step(i: int, v: int) -> Any:
        cols = tir.Ramp(jb * i64(VNNI_COLUMNS) + i64(lanes * v), i64(1), lanes)
        w = tir.reinterpret(vector, tir.BufferLoad(words, [q, cols]))
        broadcast = tir.reinterpret(vector, tir.Broadcast(words_of[i][q], lanes))
        old = tir.BufferLoad(sums_of[i], [at(v)])
        if dot.fused:
            new = tir.call_llvm_pure_intrin(result, dot.intrinsic, old, broadcast, w)
        else:
            new = old + tir.call_llvm_pure_intrin(result, dot.intrinsic, broadcast, w)
        return tir.BufferStore(sums_of[i], new, [at(v)])

    zero = tir.Broadcast(tir.const(0, i32), lanes)
    col = jb * i64(VNNI_COLUMNS) + c
    shift = tir.const(zero_point + offset, i32)
    passes = []
    for first in range(0, vectors, group):  # (each pass: its vectors for every row)
        vs = range(first, min(first + group, vectors))
        init = [tir.BufferStore(sums_of[i], zero, [at(v)]) for i in range(rows) for v in vs]
        inner = [step(i, v) for v in vs for i in range(rows)]
        passes += [*init, tir.For(q, i64(0), i64(kw), tir.ForKind.SERIAL, tir.SeqStmt(inner))]

    def finish(i: int) -> Any:
        value = tir.BufferLoad(sums_of[i], [c]) - shift * colsum[col]
        out = tir.IfThenElse(col < i64(n_size), store(i64(i), col, value), None)
        return tir.For(c, i64(0), i64(VNNI_COLUMNS), tir.ForKind.SERIAL, out)

    blocks = tir.For(
        jb, i64(0), i64(np_ // VNNI_COLUMNS), tir.ForKind.SERIAL,
        tir.SeqStmt([*passes, *(finish(i) for i in range(rows))]),
    )  # fmt: skip
    allocs = [tir.AllocBuffer(b) for b in (*words_of, *sums_of)]
    return tir.SeqStmt([*allocs, *(fill(i) for i in range(rows)), blocks])


_SUM_REGISTERS = {16: 16, 8: 8, 4: 16}
"""By a dot product's lanes (AVX-512, AVX2, Neon): the vector registers an integer
product's sums may take (of 32, 16 and 32), the rest left for weights and broadcasts."""

_ROWS = {16: 4, 8: 2, 4: 4}
"""By a dot product's lanes: the rows an integer product takes at once."""


def vnni_rows(dot_name: str, kind: str) -> int:
    """Rows an integer product takes at once (their sums of a group of columns in
    registers, each weight vector loaded once for all of them): four on AVX-512 and
    Neon, two on AVX2."""
    return _ROWS[DOTS[(dot_name, kind)].lanes]


def product(
    n_rows: Any,
    load: Callable[[Any, Any], Any],
    panels: Any,
    k_size: int,
    n_size: int,
    store: Callable[[Any, Any, Any], Any],
    dtype: str,
    plan: Plan,
    chunked: bool = True,
    threads: bool = False,
    index: Callable[[Any], list[Any]] | None = None,
    table: tuple[Any, Any] | None = None,
) -> Any:
    """The statement ``out[r, :] = a[r, :] @ W`` for ``r < n_rows``.

    ``load(r, k)`` reads ``a``; ``store(r, col, value)`` writes the result;
    ``index(r)``, if given, turns row ``r`` into the indices ``load`` then takes
    instead of ``r`` (``load(index(r), k)``), computed once per row of a block
    before its ``k`` loop: a row number unravelled into (step, row, node) costs
    divisions LLVM does not move out of the loop (a divisor it cannot prove nonzero);
    ``table`` (a buffer of int64 and the offset of this call's part, at least
    :func:`table_size` long) then holds a chunk's rows' indices, unravelled once
    per chunk rather than once per panel;
    ``panels`` is the buffer of :func:`pack` (``W`` packed, ``NR`` =
    ``plan.panel_width(dtype)``; the block shapes are the :class:`Plan`'s).
    ``chunked``: take the rows in L2-sized chunks (for products with many rows; a
    batch's few rows at one step are one chunk);
    ``threads``: spread the panels over the CPU's cores (every core keeps its share of ``W``).
    """
    nr = plan.panel_width(dtype)
    block_rows = plan.rows
    n_panels = -(-n_size // nr)
    n_index = len(index(tir.Var("r", I64))) if index is not None else 0  # indices a row

    def block(
        mr: int, r0: Any, p0: Any, pb: int, indices: Callable[[int], list[Any]] | None = None
    ) -> Any:
        """Rows ``r0 .. r0 + mr`` times panels ``p0 .. p0 + pb``, sums in registers: one
        small buffer a row (TVM keeps an allocation on the stack only below 1 KB; a bigger
        one goes to the heap, once per block)."""
        accs = [
            tir.decl_buffer((i64(pb * nr),), dtype, name=f"acc{i}", scope="global")
            for i in range(mr)
        ]
        q, j, k = (tir.Var(v, I64) for v in ("q", "j", "k"))

        def each(body: Callable[[int, Any], Any], kind: Any = tir.ForKind.VECTORIZED) -> Any:
            """``body(i, acc_i)`` for every row ``i``, every panel and column of the block."""

            def row(i: int) -> Any:
                lanes = tir.For(j, i64(0), i64(nr), kind, body(i, accs[i]))  # one vector
                return tir.For(q, i64(0), i64(pb), tir.ForKind.UNROLLED, lanes)

            return seq([row(i) for i in range(mr)])

        at = q * i64(nr) + j
        col = (p0 + q) * i64(nr) + j
        zero = each(lambda i, acc: tir.BufferStore(acc, tir.const(0, dtype), [at]))

        # The rows' indices, computed once before the k loop into a small buffer of their
        # own (which LLVM keeps in registers, like the sums)
        fill_at: list[Any] = []
        rows_at: list[Any] = []
        at_buf = tir.decl_buffer((i64(max(1, mr * n_index)),), "int64", name="at", scope="global")
        for i in range(mr):
            if index is None:
                rows_at.append(r0 + i64(i))
                continue
            es = indices(i) if indices else index(r0 + i64(i))
            fill_at += [
                tir.BufferStore(at_buf, e, [i64(i * n_index + n)]) for n, e in enumerate(es)
            ]
            rows_at.append([at_buf[i64(i * n_index + n)] for n in range(n_index)])

        def fma(i: int, acc: Any) -> Any:
            return tir.BufferStore(acc, acc[at] + load(rows_at[i], k) * panels[p0 + q, k, j], [at])

        steps = tir.For(k, i64(0), i64(k_size), tir.ForKind.SERIAL, each(fma))
        if fill_at:
            steps = seq([tir.AllocBuffer(at_buf), *fill_at, steps])
        out = each(lambda i, acc: store(r0 + i, col, acc[at]))
        if n_size % nr:  # the last panel is partly padding: store its real columns only
            real = each(
                lambda i, acc: tir.IfThenElse(col < i64(n_size), store(r0 + i, col, acc[at]), None),
                tir.ForKind.SERIAL,
            )
            out = tir.IfThenElse(p0 + i64(pb) < i64(n_panels), out, real)
        return tir.SeqStmt([*(tir.AllocBuffer(a) for a in accs), zero, steps, out])

    # Blocks of block_rows rows, one panel at a time: the panel stays in L1 across the rows of
    # a chunk, and the chunk's rows (the plan's chunk_bytes of them) in L2 across the panels.
    jb, ib, ch = (tir.Var(v, I64) for v in ("jb", "ib", "ch"))
    full = tir.floordiv(n_rows, i64(block_rows))

    # Spread over the cores: the panels (each core keeps its share of the weight in its
    # own cache, and the shares are even whatever the number of rows).
    spread = tir.ForKind.PARALLEL if threads else tir.ForKind.SERIAL

    left = n_rows - full * i64(block_rows)

    def leftover(p: Any, merged: bool = False) -> list[Any]:
        """The rows after whole blocks, times panel ``p``. ``merged``: a few rows left
        (fewer than :data:`SPLIT_BELOW`) join the last whole block, and the two are split
        in two blocks of about the same size (a block of one or two rows has too few
        independent sums to keep the FMA units busy)."""
        cases = []
        for m in range(1, block_rows):
            if merged and m < SPLIT_BELOW:
                a = (block_rows + m + 1) // 2
                r0 = (full - i64(1)) * i64(block_rows)
                stmt = seq([block(a, r0, p, 1), block(block_rows + m - a, r0 + i64(a), p, 1)])
            else:
                stmt = block(m, full * i64(block_rows), p, 1)
            cases.append(tir.IfThenElse(left == i64(m), stmt, None))
        return cases

    def blocks(first: Any, count: Any, tail: bool = False, table: Any = None) -> Any:
        """Every panel over row blocks ``first .. first + count`` (and, with ``tail``, the
        rows left over, while the panel is in L1). ``table``: the buffer and offset holding
        the rows' indices, from block ``first`` on (filled once per chunk, below)."""
        if tail and SPLIT_BELOW > 1:  # (the last whole block then goes with the rows left)
            merged = tir.Select(tir.And(left > i64(0), left < i64(SPLIT_BELOW)), i64(1), i64(0))
            count = count - merged

        def looked_up(i: int) -> list[Any]:
            buf, base = table
            at = base + ((ib - first) * i64(block_rows) + i64(i)) * i64(n_index)
            return [buf[at + i64(n)] for n in range(n_index)]

        rows = tir.For(
            ib,
            first,
            count,
            tir.ForKind.SERIAL,
            block(
                block_rows, ib * i64(block_rows), jb, 1, looked_up if table is not None else None
            ),
        )
        return tir.For(
            jb,
            i64(0),
            i64(n_panels),
            spread,
            seq([rows, *leftover(jb, merged=SPLIT_BELOW > 1)] if tail else [rows]),
        )

    if chunked:
        per_chunk = _blocks_per_chunk(k_size, dtype, plan)
        first = ch * i64(per_chunk)
        count = tir.min(full - first, i64(per_chunk))
        if index is None or table is None:
            body = blocks(first, count)
        else:
            # A chunk's rows' indices, unravelled once before its panels pass (in the
            # blocks, once per panel, their divisions would cost as much as a short k loop).
            buf, base = table
            rr = tir.Var("rr", I64)
            fill = tir.For(
                rr,
                i64(0),
                count * i64(block_rows),
                tir.ForKind.SERIAL,
                seq(
                    [
                        tir.BufferStore(buf, e, [base + rr * i64(n_index) + i64(n)])
                        for n, e in enumerate(index(first * i64(block_rows) + rr))
                    ]
                ),
            )
            body = seq([fill, blocks(first, count, table=(buf, base))])
        main = tir.For(
            ch,
            i64(0),
            tir.floordiv(full + i64(per_chunk - 1), i64(per_chunk)),
            tir.ForKind.SERIAL,
            body,
        )
    else:
        main = blocks(i64(0), full, tail=True)

    # Fewer rows than a block (a small batch): all of them in one block per group of
    # panels, in one pass over the weight; with fewer rows, more panels at a time
    # (:func:`panels_per_block`), so that enough independent sums hide the FMA latency;
    # the last panels one by one.
    def few(m: int, r0: Any) -> Any:
        """Rows ``r0 .. r0 + m`` times every panel."""
        pb, jg = plan.panels_per_block(m), tir.Var("jg", I64)
        groups = n_panels // pb
        stmts = [block(m, r0, i64(p), 1) for p in range(groups * pb, n_panels)]
        if groups:
            stmts.insert(
                0, tir.For(jg, i64(0), i64(groups), spread, block(m, r0, jg * i64(pb), pb))
            )
        return seq(stmts)

    if streamed(k_size, n_size, dtype, plan):
        rest = seq(
            [tir.IfThenElse(n_rows == i64(m), few(m, i64(0)), None) for m in range(1, block_rows)]
        )
    else:  # (a weight in L1: the rows one at a time, each a block of one row)
        r = tir.Var("r", I64)
        rest = tir.For(r, i64(0), n_rows, tir.ForKind.SERIAL, few(1, r))
    # After whole blocks, the rows left over are one block of their own per panel: in the
    # same pass over the panels (a step's rows), or one more pass (a chunked sequence's),
    # not one pass per row left over.
    if block_rows == 1:  # (nothing is ever left over)
        return main
    if not chunked:
        return tir.IfThenElse(full > i64(0), main, rest)
    jt = tir.Var("jt", I64)
    after_blocks = tir.For(jt, i64(0), i64(n_panels), spread, seq(leftover(jt)))
    return tir.SeqStmt([main, tir.IfThenElse(full > i64(0), after_blocks, rest)])


def signal_product(a: Acc, b: Acc, out: Acc, plan: Plan) -> Any | None:
    """``out = a @ b`` for one row of two signals (a query's heads times an attention
    memory, a read head's weights times the memory): per matrix of the leading axes,
    blocks of the plan's ``rows`` rows times a panel's width of columns, the sums held in
    registers over ``k`` as in :func:`product` (``b`` read as it lies: it changes every
    step or sequence, so it is not packed). None where the rows or columns are not
    fixed sizes, either operand is a vector, or the kind is not a float."""
    ash, bsh, osh = list(a.shape), list(b.shape), list(out.shape)
    if len(ash) < 2 or len(bsh) < 2 or len(osh) < 2:
        return None
    n_rows, n_cols, depth = osh[-2], osh[-1], extent(ash[-1])
    dtype = out.dtype
    if not (isinstance(n_rows, int) and isinstance(n_cols, int)):
        return None
    if dtype not in ("float32", "float64") or a.dtype != dtype or b.dtype != dtype:
        return None
    nr, mr = plan.panel_width(dtype), plan.rows
    if n_cols < nr // 2:  # (a few columns: no vector to fill; the plain loops do as well)
        return None
    k, j, ib, jb = (tir.Var(v, I64) for v in ("k", "j", "ib", "jb"))

    def matrix(lead: list[Any]) -> Any:
        at_a, at_b = bcast(lead, ash[:-2], osh[:-2]), bcast(lead, bsh[:-2], osh[:-2])

        def block(rows: int, i0: Any, j0: Any, width: int) -> Any:
            """Rows ``i0 ..`` times columns ``j0 .. j0 + width``: one small sum a row."""
            sums = [
                tir.decl_buffer((i64(width),), dtype, name=f"sum{i}", scope="global")
                for i in range(rows)
            ]

            def each(body: Callable[[int, Any], Any]) -> Any:
                vector = tir.ForKind.VECTORIZED
                return seq([tir.For(j, i64(0), i64(width), vector, body(i, s))
                            for i, s in enumerate(sums)])  # fmt: skip

            def fma(i: int, s: Any) -> Any:
                term = a.load([*at_a, i0 + i64(i), k]) * b.load([*at_b, k, j0 + j])
                return tir.BufferStore(s, s[j] + term, [j])

            return tir.SeqStmt([
                *(tir.AllocBuffer(s) for s in sums),
                each(lambda i, s: tir.BufferStore(s, tir.const(0, dtype), [j])),
                tir.For(k, i64(0), depth, tir.ForKind.SERIAL, each(fma)),
                each(lambda i, s: out.store([*lead, i0 + i64(i), j0 + j], s[j])),
            ])  # fmt: skip

        def columns(rows: int, i0: Any) -> list[Any]:
            whole, left = divmod(n_cols, nr)
            parts = [tir.For(jb, i64(0), i64(whole), tir.ForKind.SERIAL,
                             block(rows, i0, jb * i64(nr), nr))] if whole else []  # fmt: skip
            return parts + ([block(rows, i0, i64(n_cols - left), left)] if left else [])

        whole, left = divmod(n_rows, mr)
        parts = [tir.For(ib, i64(0), i64(whole), tir.ForKind.SERIAL,
                         seq(columns(mr, ib * i64(mr))))] if whole else []  # fmt: skip
        return seq(parts + (columns(left, i64(n_rows - left)) if left else []))

    return loops(osh[:-2], matrix, "m")
