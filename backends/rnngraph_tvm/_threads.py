"""One launch of the CPU's thread pool for a whole kernel, a barrier between its phases.

TVM runs each ``parallel`` loop as a launch of its thread pool: the pool's
threads are woken, each takes its share of the loop, and the caller waits
for all of them. A recurrent kernel that splits every step's products over
the cores would launch several times a step — hundreds of launches for one
sequence, each costing microseconds of waking and waiting.

:func:`one_launch` rewrites such a statement so that the pool is launched
once: every thread runs the whole statement (the time loop, its
conditions), takes its share of each parallel loop (the same share every
step: a core keeps its part of a weight in its own cache) and waits at a
barrier after each one, so that a phase's results are complete before the
next phase reads them. Work outside every parallel loop (a copy, a scalar
update) runs on the first thread alone, followed by a barrier; variable
bindings run on every thread (each needs them); an allocation beside parallel
loops (it would be moved out of the launch and shared) is refused. Uses TVM's
``pragma_parallel_launch_point`` and ``pragma_parallel_barrier_when_finish``
(the LLVM CPU code generator's static split of a parallel loop).
"""

from __future__ import annotations

from typing import Any

from tvm import tirx as tir

from rnngraph_tvm._ops import I64, i64

__all__ = ["one_launch"]

LAUNCH = "pragma_parallel_launch_point"
BARRIER = "pragma_parallel_barrier_when_finish"


def _has_parallel(s: Any) -> bool:
    """Whether statement ``s`` holds a parallel loop."""
    if isinstance(s, tir.For):
        return s.kind == tir.ForKind.PARALLEL or _has_parallel(s.body)
    if isinstance(s, tir.SeqStmt):
        return any(_has_parallel(x) for x in s.seq)
    if isinstance(s, tir.IfThenElse):
        return _has_parallel(s.then_case) or (
            s.else_case is not None and _has_parallel(s.else_case)
        )
    if isinstance(s, tir.AttrStmt):
        return _has_parallel(s.body)
    return False


def _then_wait(s: Any) -> Any:
    return tir.AttrStmt(i64(0), BARRIER, i64(1), s)


def _shared(v: Any, extent: Any, body: Any) -> Any:
    """A parallel loop of ``v`` over ``[0, extent)``. A loop of one would be dropped by
    TVM's simplifier — its body then run by every thread, and the accumulators it
    allocates moved out of the launch and shared by them — so it is a loop of two whose
    second half does nothing (the first thread takes the first of every split)."""
    if isinstance(extent, tir.IntImm) and extent.value == 1:
        return tir.For(
            v, i64(0), i64(2), tir.ForKind.PARALLEL, tir.IfThenElse(v < i64(1), body, None)
        )
    return tir.For(v, i64(0), extent, tir.ForKind.PARALLEL, body)


def _alone(s: Any) -> Any:
    """``s`` on the first thread only, then a barrier."""
    return _then_wait(_shared(tir.Var("alone", I64), i64(1), s))


def _phases(s: Any) -> Any:
    if isinstance(s, tir.LetStmt):
        return s  # a binding: every thread's own
    if not _has_parallel(s):
        return _alone(s)
    if isinstance(s, tir.For):
        if s.kind == tir.ForKind.PARALLEL:
            if not (isinstance(s.min, tir.IntImm) and s.min.value == 0):
                raise ValueError(f"a parallel loop in one launch must start at 0: {s.loop_var}")
            return _then_wait(_shared(s.loop_var, s.extent, s.body))
        return tir.For(
            s.loop_var, s.min, s.extent, s.kind, _phases(s.body), s.thread_binding, s.annotations
        )
    if isinstance(s, tir.SeqStmt):
        return tir.SeqStmt([_phases(x) for x in s.seq])
    if isinstance(s, tir.IfThenElse):  # (its condition is the same on every thread)
        other = None if s.else_case is None else _phases(s.else_case)
        return tir.IfThenElse(s.condition, _phases(s.then_case), other)
    if isinstance(s, tir.AttrStmt):
        return tir.AttrStmt(s.node, s.attr_key, s.value, _phases(s.body))
    raise TypeError(
        f"one_launch: a {type(s).__name__} beside parallel loops would be shared by the "
        "threads; put it inside the loop that uses it"
    )


def one_launch(s: Any) -> Any:
    """``s`` run by every thread of one launch of the pool (see the module docstring);
    ``s`` as it is when it has no parallel loop."""
    if not _has_parallel(s):
        return s
    return tir.AttrStmt(i64(0), LAUNCH, i64(0), _phases(s))
