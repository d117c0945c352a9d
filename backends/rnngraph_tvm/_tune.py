"""Tuning on the user's machine: ``rg.compile(g, target="tvm", tune=True)``.

The plan derived from the target (:func:`~rnngraph_tvm._plan.derive`) is a
good guess; the fastest plan for a graph's shapes on one CPU is found by
timing. :func:`tuned` walks a small space, one knob at a time from the
derived plan (coordinate descent): how the cores share a call (from how many
batch rows a core the rows are split, below which every product is), the
rows of a register block, the width of a weight panel, the panels a single
row takes, the batch rows from which the input and recurrent products are
stacked, the rows of input products computed ahead, the rows of a chunk.
Each candidate is built and timed in turns with the best so far on random
inputs of the shapes asked (``tune={"batch": [1, 32], "steps": 100}``; the
default), medians of a few calls, and kept only when it is faster by more
than the noise (3 %) over those shapes together (geometric mean).

The result is cached in the user's cache folder (``$RNNGRAPH_CACHE``, else
``$XDG_CACHE_HOME/rnngraph``, else ``~/.cache/rnngraph``), ``tune.json``,
keyed by the CPU (its model name, features as the plan sees them, cores and
threads), the graph's structure, the dtype, the shapes and the TVM version:
the next compile with the same key is instant, another CPU tunes afresh.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import CompileError
from rnngraph.files import atomic_write, cache_folder, folder_lock, sha256
from rnngraph.program.schedule import Program
from rnngraph_tvm._plan import Plan

__all__ = ["cache_path", "cpu_model", "tuned"]

NOISE = 0.03
"""A candidate replaces the best plan only when faster by more than this fraction."""

CALLS = 7
"""Timed calls per candidate and shape (in turns with the best: the median of each)."""


def cache_path() -> Path | None:
    """The tuning cache file (see the module text); None with no cache folder."""
    folder = cache_folder()
    return None if folder is None else folder / "tune.json"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor elsewhere)."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith(("model name", "Model", "uarch")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _shapes(tune: Any) -> tuple[list[int], int, bool]:
    """The batches, steps and progress flag of a ``tune=`` value."""
    if tune is True:
        tune = {}
    if not isinstance(tune, Mapping):
        raise CompileError(
            f"tune must be True or a dict like {{'batch': [1, 32], 'steps': 100}}, got {tune!r}"
        )
    unknown = sorted(set(tune) - {"batch", "steps", "progress"})
    if unknown:
        raise CompileError(f"tune takes 'batch', 'steps' and 'progress'; got {unknown}")
    batch = tune.get("batch", [1, 32])
    batches = [batch] if isinstance(batch, int) else list(batch)
    steps = tune.get("steps", 100)
    for v in (*batches, steps):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise CompileError(f"tune's batch and steps must be counts >= 1, got {tune!r}")
    if not batches:
        raise CompileError("tune's batch names no batch size")
    return [int(b) for b in batches], int(steps), bool(tune.get("progress", sys.stderr.isatty()))


def _key(program: Program, plan: Plan, dtype: str, batches: list[int], steps: int) -> str:
    import tvm

    from rnngraph.ir.serialize import to_json

    graph = json.dumps(to_json(program.graph), sort_keys=True, default=str)
    what = {
        "cpu": cpu_model(),
        "plan_cpu": [plan.cpu.name, plan.cpu.vector_bytes, plan.cpu.registers],
        "caches": [plan.cpu.l1_bytes, plan.cpu.l2_bytes],
        "cores": plan.cpu.cores,
        "threads": plan.threads,
        "graph": sha256(graph.encode()),
        "dtype": dtype,
        "batches": batches,
        "steps": steps,
        "tvm": tvm.__version__,
    }
    return sha256(json.dumps(what, sort_keys=True).encode())


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: tune afresh (and rewrite it whole)
    return doc if isinstance(doc, dict) else {}


def _candidates(plan: Plan) -> list[tuple[str, list[Any]]]:
    """The knobs and the values tried for each, the most telling first: a dozen plans,
    each built (two kernels: about 3 s for an LSTM) and timed, in under a minute."""
    cpu = plan.cpu
    knobs: list[tuple[str, list[Any]]] = []
    if plan.threads > 1 and plan.split == "auto":
        knobs.append(("rows_per_thread", [2, 8, 1 << 20]))  # 1 << 20: products always
    vectors = max(1, plan.panel_bytes // cpu.vector_bytes)
    fit = max(1, (cpu.registers - vectors - 2) // vectors)  # rows whose sums fit
    knobs.append(("rows", sorted({max(1, plan.rows - 2), min(fit, plan.rows + 4)})))
    knobs.append(("panel_bytes", [plan.panel_bytes // 2, plan.panel_bytes * 2]))
    knobs.append(("panels", [max(1, plan.panels // 2), plan.panels * 2]))
    knobs.append(("stack_rows", [2, 8]))
    knobs.append(("ahead_rows", [32, 128]))
    knobs.append(("chunk_bytes", [cpu.l2_bytes // 2]))
    return [
        (k, [v for v in vs if v != getattr(plan, k) and (k != "panel_bytes" or v >= 32)])
        for k, vs in knobs
    ]


def tuned(
    program: Program,
    params: Mapping[str, np.ndarray],
    device: Any,
    dtype: str,
    plan: Plan,
    tune: Any,
) -> Plan:
    """The fastest plan found for ``program`` on this machine (see the module text), from
    the cache when this CPU tuned it for these shapes before."""
    if device.cross or device.gpu or device.source:
        raise CompileError(
            f"tune=True times plans on this machine's CPU; a model for {device.name!r} cannot "
            "run here (compile without tune, or tune on that machine)"
        )
    batches, steps, progress = _shapes(tune)
    path = cache_path()  # (None: no home folder to find; tuned afresh, not kept)
    key = _key(program, plan, dtype, batches, steps)
    hit = _read_cache(path).get(key) if path is not None else None
    if isinstance(hit, dict) and isinstance(hit.get("plan"), dict):
        try:
            return plan.replace(**hit["plan"], source=f"tuned on this machine, cached in {path}")
        except TypeError:
            pass  # a cache from another version of the plan: tune afresh
    start = time.perf_counter()
    best, timing = _search(program, params, device, dtype, plan, batches, steps, progress)
    seconds = round(time.perf_counter() - start, 1)
    if path is None:
        return best.replace(source=f"tuned on this machine in {seconds} s (no cache folder)")
    doc = _read_cache(path)
    doc[key] = {
        "plan": best.tunables(),
        "cpu": cpu_model(),
        "graph": program.graph.name,
        "batches": batches,
        "steps": steps,
        "median_ms": timing,
        "seconds": seconds,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with folder_lock(path.parent):
            atomic_write(path, json.dumps(doc, indent=1) + "\n")
    except OSError as e:  # a read-only home: the plan still holds for this model
        sys.stderr.write(f"rnngraph: could not cache the tuned plan in {path}: {e}\n")
    return best.replace(source=f"tuned on this machine in {seconds} s, cached in {path}")


def _search(
    program: Program,
    params: Mapping[str, np.ndarray],
    device: Any,
    dtype: str,
    plan: Plan,
    batches: list[int],
    steps: int,
    progress: bool,
) -> tuple[Plan, dict[str, float]]:
    """Coordinate descent from ``plan``: the best plan and its medians by batch (ms)."""
    from rnngraph.runtime.arguments import caller_states
    from rnngraph.tools.check import random_inputs_for
    from rnngraph_tvm._model import TvmModel

    graph = program.graph
    rng = np.random.default_rng(0)
    feeds = {b: random_inputs_for(graph, steps, b, rng) for b in batches}
    rows = {
        s: [3 if isinstance(d, str) else d for d in graph.states[s].row_shape]
        for s in caller_states(graph)
    }  # (symbolic sizes: 3, as the inputs')
    starts = {b: {s: np.zeros((b, *r), dtype) for s, r in rows.items()} for b in batches}

    def runner(p: Plan) -> dict[int, Callable[[], Any]]:
        m = TvmModel(program, params, device, dtype, plan=p, build=False)
        m.build_splits(False, [m.split_for(b) for b in batches])
        return {b: _call(m, feeds[b], starts[b]) for b in batches}

    knobs = _candidates(plan)
    total = sum(len(vs) for _, vs in knobs)
    best, best_run = plan, runner(plan)
    medians: dict[int, float] = {}
    done = 0
    for knob, values in knobs:
        for value in values:
            done += 1
            candidate = best.replace(**{knob: value})
            try:
                run = runner(candidate)
            except CompileError:
                continue  # (a shape TVM cannot build for this graph: not a candidate)
            ratio, times = _race(run, best_run)
            if ratio < 1 - NOISE:
                best, best_run, medians = candidate, run, times[0]
            elif not medians:
                medians = times[1]
            if progress:
                bar = "#" * (20 * done // total)
                sys.stderr.write(
                    f"\rtuning [{bar:<20}] {done}/{total} plans, {knob}={value}: "
                    f"{ratio:.2f}x the best so far   "
                )
                sys.stderr.flush()
    if progress:
        sys.stderr.write("\n")
    if not medians:
        medians = _race(best_run, best_run)[1][0]
    return best, {str(b): round(ms, 4) for b, ms in medians.items()}


def _call(m: Any, feeds: Mapping[str, Any], starts: Mapping[str, Any]) -> Callable[[], Any]:
    if not starts:
        return m.launcher(feeds)  # the kernel alone, bound to its buffers
    return lambda: m.run(feeds, initial_states=starts)


def _race(
    a: Mapping[int, Callable[[], Any]], b: Mapping[int, Callable[[], Any]]
) -> tuple[float, tuple[dict[int, float], dict[int, float]]]:
    """``a``'s time over ``b``'s, geometric mean over the batches (each pair timed in
    turns, :data:`CALLS` calls each), and the medians (ms) of each by batch."""
    from rnngraph.tools.bench import timed_together

    logs: list[float] = []
    ma: dict[int, float] = {}
    mb: dict[int, float] = {}
    for batch in a:
        stats = timed_together({"a": a[batch], "b": b[batch]}, CALLS, per_turn=1)
        ma[batch], mb[batch] = stats["a"]["median_ms"], stats["b"]["median_ms"]
        logs.append(math.log(max(ma[batch], 1e-6) / max(mb[batch], 1e-6)))
    return math.exp(sum(logs) / len(logs)), (ma, mb)
