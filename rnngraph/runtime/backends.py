"""``compile``: verify, optimise, schedule, and hand the Program to a backend.

Backends are plugins found under the entry-point group ``rnngraph.backends``
(``onnx`` ships in ``backends/rnngraph_onnx``); a third party adds a target
the same way. An entry point names a callable
``backend(program, params, **options)`` returning an object with
``run(inputs, **kw) -> dict`` and ``save(path)``. The target ``"reference"``
is built in: the numpy interpreter behind the same interface.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("acc")
>>> x = g.input("x", 2)
>>> s = g.state("s", 2)
>>> g.assign(s, s + x)
>>> g.output("y", s + x)
>>> m = rg.compile(g, target="reference")
>>> m.run({"x": np.ones((3, 1, 2), "float32")})["y"][:, 0, 0].tolist()
[1.0, 2.0, 3.0]
>>> "onnx" in available_targets()
True
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnngraph.errors import BackendUnavailableError, CompileError
from rnngraph.ir.graph import Graph
from rnngraph.ir.params import check_params
from rnngraph.ir.verify import verify
from rnngraph.program.axes import is_staged, split
from rnngraph.program.population import lift_params
from rnngraph.program.schedule import Program, schedule
from rnngraph.runtime.interface import Interface, InterfaceModel
from rnngraph.runtime.interpreter import run as reference_run
from rnngraph.runtime.population import PopulationModel
from rnngraph.runtime.staged import StagedModel

__all__ = [
    "CompiledModel",
    "ReferenceModel",
    "StepModel",
    "available_targets",
    "compile",
    "load_backend",
    "lower",
    "scope_of",
]

_GROUP = "rnngraph.backends"


@runtime_checkable
class CompiledModel(Protocol):
    """What every backend's compiled model offers (``rg.compile``'s result).

    ``run(inputs, *, sequence_lens=None, initial_states=None, seed=None)`` takes and returns what
    :func:`rnngraph.run` does (a step model: one step); ``save(path)`` writes what the
    target deploys; ``mode`` is ``"sequence"`` or ``"step"``; ``graph`` and ``program``
    are what was compiled (after the passes).
    """

    graph: Graph
    program: Program
    mode: str

    def run(self, inputs: Mapping[str, Any], **kw: Any) -> dict[str, np.ndarray]: ...

    def save(self, path: str | os.PathLike[str]) -> Path: ...


@runtime_checkable
class StepModel(CompiledModel, Protocol):
    """A compiled model of ``mode="step"``: one step per call, its carried values named
    by ``state_names`` (each returned as ``"<name>_final"``)."""

    state_names: list[str]

    def initial_states(self, batch: int = 1) -> dict[str, np.ndarray]: ...

    def advance(
        self, inputs: Mapping[str, Any], carried: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]: ...

    def stream(
        self,
        inputs: Mapping[str, Any],
        initial_states: Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
    ) -> dict[str, np.ndarray]: ...


class ReferenceModel:
    """The reference interpreter behind the compiled-model interface."""

    def __init__(self, program: Program, params: Mapping[str, np.ndarray], **options: Any):
        if options:
            raise CompileError(f"the reference target takes no options, got {sorted(options)}")
        self.program, self.graph, self.params = program, program.graph, dict(params)
        self.mode = "sequence"

    def run(self, inputs: Mapping[str, Any], **kw: Any) -> dict[str, np.ndarray]:
        """As :func:`rnngraph.run` with the compiled params."""
        return reference_run(self.graph, inputs, self.params, **kw)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """The graph and params as ``.json`` + ``.npz`` (:func:`rnngraph.save`)."""
        return self.graph.save(path, self.params)


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=_GROUP)}


def available_targets() -> list[str]:
    """Every target name: ``"reference"`` and the installed backend plugins.

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> {"reference", "onnx"} <= set(rg.available_targets())
    True
    """
    return sorted({"reference", *_entry_points()})


def scope_of(target: str) -> str | None:
    """What a special-purpose target compiles, as its backend declares it (its callable's
    ``scope`` attribute: ``tflite`` takes quantised steps only), or None for a target
    that takes any graph, float, whole sequences and steps (the parity checks' targets).
    A target whose plugin cannot be imported counts as general."""
    if target == "reference":
        return None
    try:
        return getattr(load_backend(target), "scope", None)
    except BackendUnavailableError:
        return None


def load_backend(target: str) -> Callable[..., Any]:
    """The backend callable registered for ``target``."""
    if target == "reference":
        return ReferenceModel
    eps = _entry_points()
    if target not in eps:
        raise CompileError(
            f"no backend named {target!r}; installed: {available_targets()}. A backend "
            f"registers itself under the entry-point group {_GROUP!r}"
        )
    try:
        return eps[target].load()
    except ImportError as e:
        raise BackendUnavailableError(
            f"the {target!r} backend is installed but cannot be imported ({e}); "
            f"install its dependencies, e.g. pip install 'rnngraph[{target}]'"
        ) from e


def compile(
    graph: Graph,
    target: str = "onnx",
    params: Mapping[str, Any] | None = None,
    *,
    optimize: bool = True,
    unroll: int = 1,
    population: int | None = None,
    params_as_inputs: bool = False,
    population_params: Sequence[str] | None = None,
    interface: str = "original",
    **options: Any,
) -> Any:
    """Verify, optimise and lower ``graph`` for ``target``.

    Parameters
    ----------
    graph : Graph
        The network.
    target : str
        A backend name (see :func:`available_targets`): ``"onnx"``,
        ``"reference"``, or a plugin's.
    params : dict of str to array
        The parameter values to bake in, required when the graph has any (as
        for :func:`rnngraph.run`): trained ones (``rg.load_params(path)``), or
        fresh ones asked for explicitly (``graph.init_params(seed=0)``).
    optimize : bool
        Run the default pass pipeline (:func:`rnngraph.passes.optimize`) and
        recognise standard cells first. Passes never change results; turn them
        off to lower the graph as written.
    population : int, optional
        Compile once for ``population`` weight vectors given at run time: the
        params become inputs, ``m.run(inputs, params={k: (P, *shape)})`` returns
        ``(P, ...)`` results (see :mod:`rnngraph.runtime.population`).
        ``population_params`` names the params that vary (default: all; the others
        are baked in from ``params``); given without ``population``, the model takes
        populations of any size.
    params_as_inputs : bool
        The same with one weight vector and no population axis:
        ``m.run(inputs, params={k: array})``.
    unroll : int
        Steps per loop iteration for the generic recurrent loops (1: none).
        Unrolling by the sequence length you expect unrolls fully; other
        lengths still run (left-over steps take a plain loop).
    interface : {"original", "graph"}
        For a graph imported from a model (:func:`rnngraph.import_onnx`):
        ``"original"`` (default) gives a drop-in replacement for that model, whose
        ``run`` takes and returns exactly its tensors (names, layouts, ``sequence_lens``,
        initial states and weights fed as inputs, ``Y_h``...) and whose ``save`` writes
        them (see :mod:`rnngraph.runtime.interface`); ``"graph"`` speaks the graph's own
        inputs and outputs. No effect on other graphs, nor on step or population models.
    **options
        Passed to the backend (for ONNX: ``mode="step"``, ``dtype``,
        ``sequence_lens``, ``initial_states``, ``threads``).

    Returns
    -------
    A compiled model with ``run(inputs, **kw) -> dict`` (as :func:`rnngraph.run`)
    and ``save(path)``.
    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("tagger")
    >>> g.output("y", rg.linear(rg.cells.gru(g.input("x", 3), 8, name="gru"), 2, name="out"))
    >>> p = g.init_params(seed=0)
    >>> m = rg.compile(g, target="onnx", params=p)
    >>> xs = np.ones((5, 2, 3), "float32")
    >>> bool(np.allclose(m.run({"x": xs})["y"], rg.run(g, {"x": xs}, p)["y"], atol=1e-5))
    True
    >>> step = rg.compile(g, target="onnx", params=p, mode="step")  # one step, states in and out
    >>> sorted(step.run({"x": xs[0]}))
    ['gru.h_final', 'y']
    """
    verify(graph)
    if interface not in ("original", "graph"):
        raise CompileError(f"interface must be 'original' or 'graph', got {interface!r}")
    iface = Interface.of(graph) if interface == "original" else None
    plain = population is None and not params_as_inputs and population_params is None
    if iface is not None and plain and options.get("mode", "sequence") == "sequence":
        lifted = list(iface.param_inputs)
        inner = compile(
            graph, target, params, optimize=optimize, unroll=unroll,
            params_as_inputs=bool(lifted), population_params=lifted or None,
            interface="graph", **options,
        )  # fmt: skip
        return InterfaceModel(inner, iface)
    if population is not None or params_as_inputs or population_params is not None:
        return _compile_population(
            graph, target, params, population, params_as_inputs, population_params,
            optimize=optimize, unroll=unroll, **options,
        )  # fmt: skip
    backend = load_backend(target)
    P = check_params(graph, params, np.dtype(options.get("dtype", "float32")))
    if is_staged(graph):
        return _compile_stages(graph, target, P, optimize, unroll, options)
    program, lowered = lower(graph, P, optimize=optimize, unroll=unroll)
    return backend(program, lowered, **options)


def _compile_population(
    graph: Graph,
    target: str,
    params: Mapping[str, Any] | None,
    population: int | None,
    params_as_inputs: bool,
    names: Sequence[str] | None,
    **options: Any,
) -> PopulationModel:
    if population is not None and (
        isinstance(population, bool)
        or not isinstance(population, int | np.integer)
        or population < 1
    ):
        raise CompileError(f"population must be a positive int, got {population!r}")
    lifted_names = list(graph.params) if names is None else list(names)
    lifted = lift_params(graph, lifted_names)
    rest = {k: v for k, v in (params or {}).items() if k not in lifted_names}
    inner = compile(lifted, target, rest or None, interface="graph", **options)
    squeeze = params_as_inputs and population is None
    return PopulationModel(inner, graph, lifted_names, population, squeeze=squeeze)


def _compile_stages(
    graph: Graph,
    target: str,
    params: Mapping[str, Any],
    optimize: bool,
    unroll: int,
    options: dict[str, Any],
) -> StagedModel:
    """A graph with several axes: each axis' stage compiled on its own (see
    :class:`~rnngraph.runtime.staged.StagedModel`). ``mode`` is ``"sequence"`` for
    every stage, ``"step"`` for the last one (a decoder), or a dict by axis."""
    staging = split(graph)
    mode = options.pop("mode", "sequence")
    last = staging.axes[-1]
    if isinstance(mode, Mapping):
        unknown = sorted(set(mode) - set(staging.axes))
        if unknown:
            raise CompileError(f"mode names axes {unknown}; the graph has {list(staging.axes)}")
        modes = {a: str(mode.get(a, "sequence")) for a in staging.axes}
    elif mode in ("sequence", "step"):
        modes = {a: "step" if mode == "step" and a == last else "sequence" for a in staging.axes}
    else:
        raise CompileError(f"mode must be 'sequence', 'step' or a dict by axis, got {mode!r}")
    modes |= {s.axis: "sequence" for s in staging.stages if s.per_sequence}  # (one step)
    # a backend may ask for options of its own when its models run one after another
    options = {**getattr(load_backend(target), "staged_options", {}), **options}
    models = {}
    for stage in staging.stages:
        p = {k: v for k, v in params.items() if k in stage.graph.params}
        models[stage.axis] = compile(
            stage.graph,
            target,
            params=p,
            optimize=optimize,
            unroll=unroll,
            mode=modes[stage.axis],
            interface="graph",
            **options,
        )
    staged = StagedModel(staging, models, modes)
    join = getattr(load_backend(target), "join_stages", None)  # one model of them all
    staged.joined = join(staged) if join is not None else None
    return staged


def lower(
    graph: Graph,
    params: Mapping[str, Any] | None = None,
    *,
    optimize: bool = True,
    unroll: int = 1,
) -> tuple[Program, Mapping[str, Any] | None]:
    """The :class:`Program` that :func:`compile` hands a backend, and its params: the
    default passes and cell recognition first unless ``optimize=False`` (what
    ``rnngraph inspect --schedule`` shows)."""
    if not optimize:
        return schedule(graph).with_unroll(unroll), params
    from rnngraph import passes
    from rnngraph.program.recognize import recognize_cells

    result = passes.optimize(graph, params)
    return recognize_cells(schedule(result.graph)).with_unroll(unroll), result.params
