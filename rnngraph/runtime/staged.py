"""Running a graph with several sequence axes: its stages in order, crossings passed on.

:func:`run` and :func:`vjp` drive the stages of :func:`rnngraph.program.axes.split`
with any engine for one-axis graphs (the reference interpreter, a compiled
model): each stage gets its inputs, its params, its states' initial values,
the lengths of its axis (``sequence_lens={"src": ..., "tgt": ...}``) and the
crossing values earlier stages gave. The gradient runs the stages backwards:
a crossing's cotangent, found as the gradient of the reading stage's
per-sequence input, becomes the giving stage's cotangent — of a state's final
value for ``final``, of an output sequence for ``whole`` — which is how the
adjoint of ``whole`` feeds per-step cotangents back into the source axis'
reversed loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rnngraph.errors import CompileError, InputError
from rnngraph.ir.graph import Graph
from rnngraph.program.axes import START, Crossing, Stage, Staging, split

__all__ = ["StagedModel", "jvp", "lens_by_axis", "run", "vjp"]

Runner = Callable[..., dict[str, np.ndarray]]
"""``runner(stage, inputs, params, sequence_lens, initial_states) -> outputs``."""


def lens_by_axis(staging: Staging, sequence_lens: Any) -> dict[str, Any]:
    """``sequence_lens`` per axis: a dict by axis name, or one array for a one-axis graph."""
    axes = staging.axes
    if sequence_lens is None:
        return {}
    if isinstance(sequence_lens, Mapping):
        unknown = sorted(set(sequence_lens) - set(axes))
        if unknown:
            raise InputError(
                f"sequence_lens names axes {unknown}; graph {staging.graph.name!r} has "
                f"axes {list(axes)}"
            )
        return {k: v for k, v in sequence_lens.items() if v is not None}
    if len(axes) != 1:
        raise InputError(
            f"graph {staging.graph.name!r} has axes {list(axes)}: pass sequence_lens as a "
            'dict by axis, e.g. {"' + axes[0] + '": lengths, ...}'
        )
    return {axes[0]: sequence_lens}


def _check_names(staging: Staging, inputs: Mapping[str, Any], initial: Mapping[str, Any]) -> None:
    graph = staging.graph
    unknown = sorted(set(inputs) - set(graph.inputs))
    if unknown:
        raise InputError(
            f"graph {graph.name!r} has no inputs {unknown}; its inputs: "
            + "; ".join(
                f"axis {s.axis!r}: {sorted(set(s.graph.inputs) - set(s.reads))}"
                for s in staging.stages
            )
        )
    missing = sorted(set(graph.inputs) - set(inputs))
    if missing:
        raise InputError(f"graph {graph.name!r} needs inputs {missing}")
    unknown = sorted(set(initial) - set(graph.states))
    if unknown:
        raise InputError(f"graph {graph.name!r} has no states {unknown}")


def _feeds(stage: Stage, values: Mapping[str, Any]) -> dict[str, Any]:
    missing = sorted(set(stage.graph.inputs) - set(values))
    if missing:
        raise InputError(f"axis {stage.axis!r} needs inputs {missing}")
    if stage.per_sequence:  # per-sequence values as one step: (1, B, ...)
        return {k: np.asarray(values[k])[None] for k in stage.graph.inputs}
    return {k: values[k] for k in stage.graph.inputs}


def _steps(stage: Stage, feeds: Mapping[str, Any], out: Mapping[str, np.ndarray]) -> int:
    per_seq = stage.graph.per_sequence_inputs
    for k, v in feeds.items():
        if k not in per_seq:
            return int(np.shape(v)[0])
    for k in stage.graph.outputs:
        return int(np.shape(out[k])[0])
    return 0


def _give(
    staging: Staging,
    stage: Stage,
    out: Mapping[str, np.ndarray],
    steps: int,
    lens: Any,
    values: dict[str, Any],
) -> None:
    """The crossing values ``stage`` gives, into ``values``."""
    for name in stage.gives:
        c = staging.crossings[name]
        if c.kind != "whole_mask":
            values[name] = _crossing(c, out)
        else:  # 1 within each row's length
            whole = values[c.key]
            B = whole.shape[0]
            n = np.full(B, steps) if lens is None else np.asarray(lens)
            values[name] = (np.arange(steps)[None, :] < n[:, None]).astype(whole.dtype)


def _crossing(c: Crossing, out: Mapping[str, np.ndarray]) -> np.ndarray:
    """What crossing ``c`` (not a ``whole_mask``) carries, from its stage's results (or
    their tangents): a state's final value, a one-step stage's value without its step
    axis, or an output sequence as ``(B, S, ...)``."""
    if c.kind == "final":
        return out[f"{c.key}_final"]
    if c.kind == START:  # a state's initial value, computed per sequence
        return out[c.key][0]
    return np.ascontiguousarray(np.moveaxis(out[c.key], 0, 1))  # whole


def run(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None,
    runner: Runner,
    *,
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Run every stage of ``graph`` in order with ``runner``; the results as one run's."""
    staging = split(graph)
    lens = lens_by_axis(staging, sequence_lens)
    return _forward(staging, inputs, params, runner, lens, initial_states)[0]


def _forward(
    staging: Staging,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None,
    runner: Runner,
    lens: Mapping[str, Any],
    initial_states: Mapping[str, Any] | None,
) -> tuple[
    dict[str, np.ndarray], list[tuple[Stage, dict[str, Any], dict[str, Any], dict[str, Any]]]
]:
    """The stages in order: the results, and what each stage was given (for the way back)."""
    initial = dict(initial_states or {})
    _check_names(staging, inputs, initial)
    params = dict(params or {})
    values: dict[str, Any] = dict(inputs)
    result: dict[str, np.ndarray] = {}
    fed = []
    for stage in staging.stages:
        feeds = _feeds(stage, values)
        p = {k: params[k] for k in stage.graph.params if k in params}
        init = {k: v for k, v in initial.items() if k in stage.graph.states}
        out = runner(stage, feeds, p, lens.get(stage.axis), init)
        for k in stage.outputs:  # (a per-sequence stage's: one value per row)
            result[k] = out[k][0] if stage.per_sequence else out[k]
        for k in stage.states:
            result[f"{k}_final"] = out[f"{k}_final"]
        _give(staging, stage, out, _steps(stage, feeds, out), lens.get(stage.axis), values)
        fed.append((stage, feeds, p, init))
    return result, fed


def vjp(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None,
    cotangents: Mapping[str, Any],
    runner: Runner,
    stage_vjp: Callable[..., tuple[dict[str, np.ndarray], dict[str, np.ndarray]]],
    *,
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs and gradients of a staged graph: forward through the stages, then back.

    ``stage_vjp(stage, inputs, params, cotangents, sequence_lens, initial_states)`` is
    the one-axis vector–Jacobian product (:func:`rnngraph.vjp` on the stage's graph).
    """
    staging = split(graph)
    lens = lens_by_axis(staging, sequence_lens)
    outs, fed = _forward(staging, inputs, params, runner, lens, initial_states)
    grads: dict[str, np.ndarray] = {}
    crossing_cots: dict[str, np.ndarray] = {}
    for stage, feeds, p, init in reversed(fed):
        cots: dict[str, Any] = {
            k: np.asarray(cotangents[k])[None] if stage.per_sequence else cotangents[k]
            for k in stage.outputs
            if k in cotangents
        }
        cots.update(
            {
                f"{k}_final": cotangents[f"{k}_final"]
                for k in stage.states
                if f"{k}_final" in cotangents
            }
        )
        for name in stage.gives:
            c = staging.crossings[name]
            if name not in crossing_cots or c.kind == "whole_mask":
                continue
            if c.kind == "whole":
                cots[c.key] = np.moveaxis(crossing_cots[name], 1, 0)
            elif c.kind == START:
                cots[c.key] = crossing_cots[name][None]
            else:
                key = f"{c.key}_final"
                cots[key] = cots[key] + crossing_cots[name] if key in cots else crossing_cots[name]
        _, g = stage_vjp(stage, feeds, p, cots, lens.get(stage.axis), init)
        if stage.per_sequence:  # (its inputs were per-sequence values given one step)
            g = {k: v[0] if k in stage.graph.inputs else v for k, v in g.items()}
        for k, v in g.items():
            if k in stage.reads:
                crossing_cots[k] = crossing_cots[k] + v if k in crossing_cots else v
            elif k in grads and k in stage.graph.params:
                grads[k] = grads[k] + v  # a weight two axes share
            elif k in grads and k in graph.per_sequence_inputs:
                grads[k] = grads[k] + v
            elif k in graph.inputs or k in graph.params or k in graph.states:
                grads[k] = v
    given = dict(params or {})
    for k in graph.params:  # a weight no stage reads: zero
        if k not in grads and k in given:
            grads[k] = np.zeros_like(np.asarray(given[k]))
    return outs, grads


def jvp(
    graph: Graph,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None,
    tangents: Mapping[str, Any],
    stage_jvp: Callable[..., tuple[dict[str, np.ndarray], dict[str, np.ndarray]]],
    *,
    sequence_lens: Any = None,
    initial_states: Mapping[str, Any] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs and their tangents (and the final states') for a staged graph: the stages
    in order, each crossing's tangent passed on like its value — ``final`` the state's
    final tangent, ``whole`` the output's tangent as ``(B, S, ...)``, ``start`` the
    one-step stage's output; a ``whole_mask`` does not move.

    ``stage_jvp(stage, inputs, params, tangents, sequence_lens, initial_states)`` is the
    one-axis Jacobian–vector product (:func:`rnngraph.jvp` on the stage's graph).
    """
    staging = split(graph)
    moved: dict[str, Any] = {}  # crossing tangents
    tans: dict[str, np.ndarray] = {}

    def runner(stage: Stage, feeds: Any, p: Any, lens: Any, init: Any) -> dict[str, np.ndarray]:
        sg = stage.graph
        t: dict[str, Any] = {}
        for k in sg.inputs:
            d = moved.get(k) if k in stage.reads else tangents.get(k)
            if d is not None:
                t[k] = np.asarray(d)[None] if stage.per_sequence else d
        t |= {k: tangents[k] for k in [*sg.params, *sg.states] if k in tangents}
        out, tan = stage_jvp(stage, feeds, p, t, lens, init)
        for k in stage.outputs:  # (a per-sequence stage's: one value per row)
            if k in tan:
                tans[k] = tan[k][0] if stage.per_sequence else tan[k]
        tans.update({f"{s}_final": tan[f"{s}_final"] for s in stage.states if f"{s}_final" in tan})
        for name in stage.gives:  # (a whole_mask does not move)
            c = staging.crossings[name]
            key = f"{c.key}_final" if c.kind == "final" else c.key
            if c.kind != "whole_mask" and key in tan:
                moved[name] = _crossing(c, tan)
        return out

    lens = lens_by_axis(staging, sequence_lens)
    outs, _ = _forward(staging, inputs, params, runner, lens, initial_states)
    return outs, tans


class StagedModel:
    """``rg.compile`` of a graph with several axes: one compiled model per axis' stage.

    ``run`` takes and returns what :func:`rnngraph.run` does; ``models`` holds each
    axis' model by name (a sequence model, or a step model for the axes compiled
    with ``mode="step"``), and :meth:`encode` runs every sequence stage and returns
    the per-sequence values the step stages take (an encoder's memory and final
    state for a decoder's step model, say).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("ed")
    >>> src, tgt = g.input("src", 2, axis="src"), g.input("tgt", 2, axis="tgt")
    >>> enc = rg.cells.rnn(src, 3, name="enc")
    >>> h = g.state("dec.h", 3, init=rg.final(enc, name="h0"))
    >>> g.assign(h, rg.tanh(rg.linear(rg.concat([tgt, h]), 3, name="dec")))
    >>> g.output("y", h)
    >>> m = rg.compile(g, target="onnx", params=g.init_params(seed=0))
    >>> m
    <StagedModel 'ed' (src: sequence, tgt: sequence)>
    """

    def __init__(self, staging: Staging, models: Mapping[str, Any], modes: Mapping[str, str]):
        self.staging = staging
        self.graph = staging.graph
        self.models = dict(models)
        self.modes = dict(modes)
        self.joined: Any = None
        """The backend's one model of every stage, when it makes one (ONNX: one model
        file, one session): what :meth:`run` uses and :meth:`save` writes."""

    def __repr__(self) -> str:
        parts = ", ".join(f"{a}: {self.modes[a]}" for a in self.staging.axes)
        return f"<StagedModel {self.graph.name!r} ({parts})>"

    def _runner(self, seed: int | None) -> Runner:
        def runner(stage: Stage, feeds: Any, p: Any, lens: Any, init: Any) -> Any:
            model = self.models[stage.axis]
            if self.modes[stage.axis] == "step":
                return model.stream(feeds, init or None, seed=seed)
            return model.run(feeds, sequence_lens=lens, initial_states=init or None, seed=seed)

        return runner

    def run(
        self,
        inputs: Mapping[str, Any],
        *,
        sequence_lens: Any = None,
        initial_states: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Every stage in order (a step stage streams its inputs); in the backend's one
        model of them all where it has one."""
        if self.joined is not None and not initial_states and seed is None:
            staging = self.staging
            _check_names(staging, inputs, {})
            out = self.joined.run(inputs, lens_by_axis(staging, sequence_lens))
            if out is not None:
                return dict(out)
        return run(
            self.graph,
            inputs,
            None,
            self._runner(seed),
            sequence_lens=sequence_lens,
            initial_states=initial_states,
        )

    def save(self, path: str | os.PathLike[str]) -> Any:
        """Write the backend's one model of every stage (ONNX: one ``.onnx`` file with an
        input ``sequence_lens.<axis>`` per axis). A model with step stages has none:
        save each axis' model, ``models[axis].save(...)``."""
        if self.joined is None:
            raise CompileError(
                f"this model of {self.graph.name!r} is not one file: save each axis' model "
                f"with models[axis].save(path) (axes {list(self.staging.axes)})"
            )
        return self.joined.save(path)

    def encode(
        self,
        inputs: Mapping[str, Any],
        *,
        sequence_lens: Any = None,
        seed: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the stages before the first step stage (before the last stage, if none is
        one; with the stage computing its states' start values, if they are computed); the
        crossing values the later stages read, by their per-sequence input names (a
        decoder's ``memory`` and start state, say)."""
        staging = self.staging
        lens = lens_by_axis(staging, sequence_lens)
        values: dict[str, Any] = dict(inputs)
        runner = self._runner(seed)
        given: dict[str, np.ndarray] = {}
        steps = [a for a in staging.axes if self.modes[a] == "step"]
        stop = steps[0] if steps else staging.axes[-1]
        at = next(i for i, s in enumerate(staging.stages) if s.axis == stop)
        later = {r for s in staging.stages[at:] for r in s.reads}
        for stage in staging.stages[:at]:
            feeds = _feeds(stage, values)
            out = runner(stage, feeds, {}, lens.get(stage.axis), {})
            before = set(values)
            _give(staging, stage, out, _steps(stage, feeds, out), lens.get(stage.axis), values)
            given.update({k: v for k, v in values.items() if k not in before and k in later})
        return given
