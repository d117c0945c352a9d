"""A compiled model that takes its weights at run time, for one or many weight vectors.

``rg.compile(g, target, population=P)`` compiles :func:`~rnngraph.program.population.
lift_params` of ``g`` once; :class:`PopulationModel` folds the population into the
batch: individual ``p``'s sequence ``b`` is batch row ``p * B + b`` of one call, its
weights that row's per-sequence inputs. So ``P`` weight vectors cost one call of a
batch ``P * B`` — no recompiling, and the backend's loops see one wide batch.

Shapes: each param is passed ``(P, *shape)``. Inputs, initial states, step-mode states
and ``sequence_lens`` are either shared by every individual (their usual shape) or
given per individual with a leading ``P`` axis. Every result gains a leading ``P``
axis: ``(P, T, B, ...)`` for sequences, ``(P, B, ...)`` for per-sequence values and
final states.

Examples
--------
>>> import numpy as np
>>> import rnngraph as rg
>>> g = rg.Graph("elman")
>>> h = rg.cells.elman(g.input("x", 2), 4, name="rnn")
>>> g.output("y", rg.linear(h, 1, name="out"))
>>> m = rg.compile(g, target="reference", population=3)
>>> ps = [g.init_params(seed=s) for s in range(3)]
>>> stacked = {k: np.stack([p[k] for p in ps]) for k in g.params}
>>> xs = np.random.default_rng(0).normal(size=(5, 2, 2))
>>> y = m.run({"x": xs}, params=stacked)["y"]
>>> y.shape
(3, 5, 2, 1)
>>> bool(np.allclose(y[1], rg.run(g, {"x": xs}, ps[1])["y"], atol=1e-6))
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import InputError
from rnngraph.ir.graph import Graph

__all__ = ["PopulationModel"]


class PopulationModel:
    """``P`` weight vectors through one compiled model (see the module docstring).

    ``population`` is the size the model was compiled for (``None``: any); ``inner``
    is the backend's model of the lifted graph; ``graph`` the original graph.
    """

    def __init__(
        self,
        inner: Any,
        graph: Graph,
        names: Sequence[str],
        population: int | None,
        *,
        squeeze: bool = False,
    ) -> None:
        self.inner, self.graph, self.population = inner, graph, population
        self.param_names = list(names)
        self.mode = getattr(inner, "mode", "sequence")
        self.program = getattr(inner, "program", None)
        self._squeeze = squeeze  # params_as_inputs: one weight vector, no P axis
        self.dtype = np.dtype(getattr(inner, "dtype", np.float32))

    def __repr__(self) -> str:
        size = "any" if self.population is None else self.population
        return f"<PopulationModel {self.graph.name!r} population={size} of {self.inner!r}>"

    # ----------------------------------------------------------- shapes
    def _rows(self) -> dict[str, tuple[int, int]]:
        """name -> (leading axes in the usual form, row rank) for what a call takes."""
        g, step = self.graph, self.mode == "step"
        per_seq = g.per_sequence_inputs
        out = {}
        for name, t in g.inputs.items():
            out[name] = (1 if step or name in per_seq else 2, len(t.row_shape))
        for name, t in g.states.items():
            out[name] = (1, len(t.row_shape))
        return out

    def _params(self, params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
        unknown = sorted(set(params) - set(self.param_names))
        missing = sorted(set(self.param_names) - set(params))
        if unknown or missing:
            raise InputError(
                f"population model of {self.graph.name!r}: params= "
                + (f"lacks {missing}" if missing else "")
                + ("; " if unknown and missing else "")
                + (f"has unknown {unknown}" if unknown else "")
                + f"; it takes {self.param_names}"
            )
        types = self.graph.params
        sizes, out = set(), {}
        for k in self.param_names:
            a = np.asarray(params[k])
            shape = tuple(types[k].shape)
            if self._squeeze:
                a = a[None]
            if a.shape[1:] != shape or not np.issubdtype(a.dtype, np.number):
                want = "(" + ", ".join(map(str, shape)) + ")" if self._squeeze else f"(P, {shape})"
                raise InputError(f"param {k!r} must be a numeric array {want}, got {a.shape}")
            sizes.add(a.shape[0])
            out[k] = a.astype(self.dtype, copy=False)
        if not sizes:  # nothing lifted (a graph of fixed weights): copies of one model
            sizes.add(1 if self.population is None else self.population)
        if len(sizes) != 1:
            raise InputError(f"params disagree on the population size: {sorted(sizes)}")
        P = sizes.pop()
        if self.population is not None and self.population != P:
            raise InputError(
                f"this model was compiled for population={self.population}; params hold {P}"
            )
        if P == 0:
            raise InputError("params hold an empty population")
        return out, P

    @staticmethod
    def _fold(a: np.ndarray, lead: int, shared: bool, P: int) -> np.ndarray:
        """(P,)+usual -> usual with the batch axis (axis ``lead - 1``) P times longer."""
        if shared:
            a = np.broadcast_to(a[None], (P, *a.shape))
        a = np.moveaxis(a, 0, lead - 1)  # P just before B
        shape = a.shape
        return np.ascontiguousarray(a).reshape(
            *shape[: lead - 1], shape[lead - 1] * shape[lead], *shape[lead + 1 :]
        )

    def _spread(
        self, name: str, a: Any, lead: int, rank: int, P: int, what: str
    ) -> tuple[np.ndarray, int]:
        a = np.asarray(a)
        if a.ndim == lead + rank:
            shared = True
        elif a.ndim == lead + rank + 1 and a.shape[0] == P:
            shared = False
        else:
            raise InputError(
                f"{what} {name!r} has shape {a.shape}: give it as for one model "
                f"({lead + rank} axes) or with a leading population axis of {P}"
            )
        B = a.shape[lead - 1 + (0 if shared else 1)]
        return self._fold(a, lead, shared, P), B

    # -------------------------------------------------------------- run
    def run(
        self,
        inputs: Mapping[str, Any],
        *,
        params: Mapping[str, Any],
        sequence_lens: Any = None,
        initial_states: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> dict[str, np.ndarray]:
        """Run every individual; ``params`` maps each param to ``(P, *shape)``.

        Other arguments as the backend model's ``run``; each may carry a leading ``P``
        axis (one value per individual) or not (shared). Results are ``(P, ...)``.
        """
        weights, P = self._params(params)
        rows = self._rows()
        feeds: dict[str, np.ndarray] = {}
        batches = set()
        for name, a in inputs.items():
            if name not in rows:  # the backend names what it does not know
                feeds[name] = a
                continue
            lead, rank = rows[name]
            feeds[name], B = self._spread(name, a, lead, rank, P, "input")
            batches.add(B)
        states = {}
        for name, a in (initial_states or {}).items():
            lead, rank = rows.get(name, (1, np.ndim(a) - 1))
            states[name], B = self._spread(name, a, lead, rank, P, "initial state")
            batches.add(B)
        lens = None
        if sequence_lens is not None:
            ln = np.asarray(sequence_lens)
            lens, B = self._spread("sequence_lens", ln, 1, 0, P, "argument")
            batches.add(B)
        if len(batches) > 1:
            raise InputError(f"inputs disagree on the batch size: {sorted(batches)}")
        B = batches.pop() if batches else 1
        for k, w in weights.items():
            feeds[k] = np.repeat(w, B, axis=0)
        if initial_states is not None:
            kw["initial_states"] = states
        if lens is not None:
            kw["sequence_lens"] = lens
        out = self.inner.run(feeds, **kw)
        return {k: self._unfold(k, v, P, B) for k, v in out.items()}

    def _unfold(self, name: str, a: np.ndarray, P: int, B: int) -> np.ndarray:
        """(..., P * B, row) -> (P, ..., B, row) for a batched result; others as they are."""
        a = np.asarray(a)
        g = self.graph
        t = g.outputs.get(name) or g.states.get(name.removesuffix("_final"))
        lead = a.ndim - len(t.row_shape) if t is not None else 0
        if lead not in (1, 2) or a.shape[lead - 1] != P * B:
            return a
        a = a.reshape(*a.shape[: lead - 1], P, B, *a.shape[lead:])
        a = np.moveaxis(a, lead - 1, 0)
        return a[0] if self._squeeze else a

    def save(self, path: str | os.PathLike[str]) -> Path:
        """What the backend deploys; the params are the model's inputs, named as the params."""
        return Path(self.inner.save(path))

    def save_with_interface(self, path: str | os.PathLike[str], interface: Any) -> Path:
        """An imported model's file with its original interface, its weights fed as inputs
        (one weight vector: ``params_as_inputs``), where the backend can write one."""
        save = getattr(self.inner, "save_with_interface", None)
        if save is None or not self._squeeze:
            return self.save(path)
        return Path(save(path, interface, lifted=self.param_names))
