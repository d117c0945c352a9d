"""Parity: every backend against the reference interpreter, per output.

:func:`check` compiles a graph for each available target and runs it on the
same random inputs as the reference at two sequence lengths from one build,
with and without ``sequence_lens``, and — for a causal graph — streams the
step model one step at a time. A recursive net (:func:`rnngraph.recursive`)
runs on two batches of random trees of different shapes instead. Each row
of the report holds the largest absolute error of one output, measured
against ``tol * max(1, max|ref|)``.

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("m")
>>> g.output("y", rg.cells.gru(g.input("x", 3), 4, name="gru"))
>>> rows = check(g, targets=["onnx"])
>>> sorted({r.target for r in rows})
['onnx', 'onnx lens', 'onnx step']
>>> all(r.ok for r in rows)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngraph.errors import BackendUnavailableError, CompileError
from rnngraph.ir.graph import Graph
from rnngraph.program.axes import is_staged, split
from rnngraph.program.schedule import schedule
from rnngraph.runtime.arguments import caller_states
from rnngraph.runtime.backends import available_targets, compile, load_backend, scope_of
from rnngraph.runtime.interpreter import run
from rnngraph.trees.recursion import random_inputs, tree_spec

__all__ = ["ParityRow", "check", "format_report"]


@dataclass(frozen=True)
class ParityRow:
    """One output of one compiled model against the reference."""

    target: str
    output: str
    max_abs: float
    ref_scale: float
    ok: bool
    note: str = ""


def random_inputs_for(
    graph: Graph, T: int, B: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Random inputs: ``(T, B, *row)`` sequences, ``(B, *row)`` per-sequence ones (symbolic
    dimensions of size 3); float inputs standard normal."""
    out: dict[str, np.ndarray] = {}
    per_seq = graph.per_sequence_inputs
    for name, t in graph.inputs.items():
        row = tuple(3 if isinstance(d, str) else d for d in t.row_shape)  # symbolic: 3
        shape = (B, *row) if name in per_seq else (T, B, *row)
        if t.dtype == "int64":
            out[name] = rng.integers(0, 4, shape)
        elif t.dtype == "bool":
            out[name] = rng.random(shape) < 0.5
        else:
            out[name] = rng.standard_normal(shape).astype(np.float32)
    return out


def _rows(
    target: str,
    got: Sequence[Mapping[str, np.ndarray]],
    want: Sequence[Mapping[str, np.ndarray]],
    tol: float,
) -> list[ParityRow]:
    rows = []
    for name in want[0]:
        err = scale = 0.0
        for g, w in zip(got, want, strict=True):
            ref = np.asarray(w[name], np.float64)
            if name not in g or np.shape(g[name]) != ref.shape:
                shape = np.shape(g[name]) if name in g else "missing"
                return [ParityRow(target, name, np.inf, 0.0, False, f"got {shape}")]
            err = max(err, float(np.max(np.abs(np.asarray(g[name]) - ref), initial=0.0)))
            scale = max(scale, float(np.max(np.abs(ref), initial=0.0)))
        rows.append(ParityRow(target, name, err, scale, err <= tol * max(1.0, scale)))
    return rows


def check(
    graph: Graph,
    params: Mapping[str, Any] | None = None,
    *,
    targets: Sequence[str] | None = None,
    steps: int = 12,
    batch: int = 3,
    seed: int = 0,
    tol: float = 1e-5,
) -> list[ParityRow]:
    """Compile ``graph`` for each target and compare every output with the reference."""
    params = dict(params) if params is not None else graph.init_params(seed=seed)
    rng = np.random.default_rng(seed)
    if tree_spec(graph) is not None:
        return _check_trees(graph, params, targets, rng, tol)
    lengths = [steps, max(1, steps // 2 + 1)]
    feeds = [random_inputs_for(graph, T, batch, rng) for T in lengths]
    needs = {
        s: rng.standard_normal((batch, *t.row_shape)).astype(np.float32)
        for s, t in graph.states.items()
    }
    init = {s: v for s, v in needs.items() if s in caller_states(graph)}
    lens: Any = rng.integers(0, steps + 1, batch)
    if is_staged(graph):  # lengths per axis
        lens = {a: rng.integers(0, steps + 1, batch) for a in split(graph).axes}
    want = [run(graph, f, params, initial_states=init) for f in feeds]
    want_lens = run(graph, feeds[0], params, initial_states=init, sequence_lens=lens)
    report, targets = _installed(targets)
    for target in targets:
        try:
            model = compile(graph, target, params, interface="graph")
            got = [model.run(f, initial_states=init) for f in feeds]
        except Exception as e:  # a backend failing is a row of the report, not a crash
            report.append(ParityRow(target, "*", np.inf, 0.0, False, f"{type(e).__name__}: {e}"))
            continue
        report += _rows(target, got, want, tol)
        got_lens = model.run(feeds[0], initial_states=init, sequence_lens=lens)
        report += _rows(f"{target} lens", [got_lens], [want_lens], tol)
        report += _check_step(graph, params, target, feeds[0], init, want[0], tol)
    return report


def _installed(targets: Sequence[str] | None) -> tuple[list[ParityRow], list[str]]:
    """The targets to check: those asked for, or every installed backend; a row saying
    "not installed" for each registered backend whose dependencies are missing."""
    if targets:
        return [], list(targets)
    rows, found = [], []
    for target in available_targets():
        if target == "reference":
            continue
        try:
            load_backend(target)
        except BackendUnavailableError:
            note = f"skipped: not installed (pip install 'rnngraph[{target}]')"
            rows.append(ParityRow(target, "*", 0.0, 0.0, True, note))
            continue
        scope = scope_of(target)
        if scope is not None:  # (a special-purpose target: float parity is not its promise)
            rows.append(ParityRow(target, "*", 0.0, 0.0, True, f"skipped: compiles {scope}"))
            continue
        found.append(target)
    return rows, found


def _check_trees(
    graph: Graph,
    params: Mapping[str, Any],
    targets: Sequence[str] | None,
    rng: np.random.Generator,
    tol: float,
) -> list[ParityRow]:
    """A recursive net: two batches of random trees of different shapes from one build."""
    feeds = [random_inputs(graph, rng, trees=n, max_nodes=m) for n, m in ((3, 30), (5, 60))]
    want = [run(graph, f, params) for f in feeds]
    report, targets = _installed(targets)
    for target in targets:
        try:
            model = compile(graph, target, params, interface="graph")
        except CompileError as e:  # a backend without recursive nets: said, not failed
            report.append(ParityRow(f"{target} trees", "*", 0.0, 0.0, True, f"skipped: {e}"))
            continue
        try:
            got = [model.run(f) for f in feeds]
        except Exception as e:  # a backend failing is a row of the report, not a crash
            report.append(ParityRow(target, "*", np.inf, 0.0, False, f"{type(e).__name__}: {e}"))
            continue
        report += _rows(f"{target} trees", got, want, tol)
    return report


def _check_step(
    graph: Graph,
    params: Mapping[str, Any],
    target: str,
    feeds: Mapping[str, np.ndarray],
    init: Mapping[str, np.ndarray],
    want: Mapping[str, np.ndarray],
    tol: float,
) -> list[ParityRow]:
    if is_staged(graph):  # the last axis as a step model, the others before it
        try:
            pair = compile(graph, target, params, mode="step")
            return _rows(f"{target} step", [pair.run(feeds, initial_states=init)], [want], tol)
        except Exception as e:  # a backend failing is a row of the report, not a crash
            return [ParityRow(f"{target} step", "*", np.inf, 0.0, False, f"{e}")]
    program = schedule(graph)
    reads_ahead = any(r.delay < 0 for rs in program.reads.values() for r in rs)
    if reads_ahead or program.post:
        return []  # no step model: it reads the future, or sums over every step
    try:
        step = compile(graph, target, params, mode="step")
    except CompileError as e:  # a backend without step models: said, not failed
        return [ParityRow(f"{target} step", "*", 0.0, 0.0, True, f"skipped: {e}")]
    B = next(iter(feeds.values())).shape[1]
    got = step.stream(feeds, {**step.initial_states(B), **init})
    return _rows(f"{target} step", [got], [want], tol)


def format_report(rows: Sequence[ParityRow]) -> str:
    """The report as a table: target, output, largest error, scale, verdict."""
    lines = [f"{'target':<16} {'output':<24} {'max |err|':>11} {'max |ref|':>10}  ok"]
    for r in rows:
        verdict = "-" if r.note.startswith("skipped") else "yes" if r.ok else "NO"
        lines.append(
            f"{r.target:<16} {r.output:<24} {r.max_abs:>11.3e} {r.ref_scale:>10.3g}  {verdict}"
            + (f"  ({r.note})" if r.note else "")
        )
    bad = sum(not r.ok for r in rows)
    lines.append(f"{len(rows) - bad}/{len(rows)} within tolerance")
    return "\n".join(lines)
