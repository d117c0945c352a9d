"""A compiled ONNX model: runs in onnxruntime with :func:`rnngraph.run`'s arguments."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto

from rnngraph.errors import CompileError, InputError
from rnngraph.files import atomic_write, folder_lock
from rnngraph.ops.random import seeded
from rnngraph.program.schedule import Program, StateSlot
from rnngraph.runtime.arguments import (
    caller_states,
    carried_initial,
    check_initial_states,
    check_inputs,
    check_lens,
    step_feeds,
    stream,
)
from rnngraph.runtime.interface import Interface
from rnngraph.runtime.interpreter import run as reference_run
from rnngraph.runtime.interpreter import run_empty
from rnngraph.trees.recursion import run_trees, split_inputs
from rnngraph_onnx._emit import STEPS, build_sequence_model, build_step_model
from rnngraph_onnx._interface import with_interface

__all__ = ["OnnxModel"]

_FLOAT_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}


DISABLED_OPTIMIZERS = ["QDQPropagationTransformer"]
"""onnxruntime's graph rewrites we turn off: QDQ propagation re-quantises what passes
through a Slice or Reshape with a zero point of the wrong kind in opset-21 models
(microsoft/onnxruntime#27845, #25526); its fusions of Q/DQ pairs into integer kernels
stay on."""


class OnnxModel:
    """A graph lowered to ONNX, run by onnxruntime.

    ``mode="sequence"`` (default) runs whole sequences like
    :func:`rnngraph.run`; ``mode="step"`` runs one step, its carried values
    passed in and returned (see :attr:`state_names`).

    Attributes
    ----------
    model : onnx.ModelProto
        The model :meth:`save` writes: for a sequence model, without a
        ``sequence_lens`` input unless compiled with ``sequence_lens=True``.
    """

    def __init__(
        self,
        program: Program,
        params: Mapping[str, np.ndarray],
        *,
        mode: str = "sequence",
        dtype: str = "float32",
        sequence_lens: bool = False,
        initial_states: Sequence[str] = (),
        threads: int | None = None,
        session_config: Mapping[str, str] | None = None,
    ) -> None:
        if mode not in ("sequence", "step"):
            raise CompileError(f"mode must be 'sequence' or 'step', got {mode!r}")
        if str(dtype) not in _FLOAT_TYPES:
            raise CompileError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.program, self.mode = program, mode
        self.graph = program.graph
        self.dtype = np.dtype(str(dtype))
        self._float_type = _FLOAT_TYPES[str(dtype)]
        self._params = {k: np.asarray(v) for k, v in params.items()}
        self._threads = threads
        self._session_config = dict(session_config or {})
        self._variants: dict[tuple[bool, tuple[str, ...]], tuple[onnx.ModelProto, Any]] = {}
        self.slots: list[StateSlot] = []
        self._step_session: ort.InferenceSession | None = None
        if mode == "step":
            self.model, self.slots = build_step_model(
                program, self._params, float_type=self._float_type
            )
        else:
            self._key = (bool(sequence_lens), tuple(sorted(initial_states)))
            self.model = self._variant(*self._key)[0]
        if mode == "step":
            onnx.checker.check_model(self.model, full_check=True)
        self._input_rows = {
            name: (t.row_shape, np.dtype(self.dtype if t.dtype == "float" else np.int64))
            for name, t in self.graph.inputs.items()
            if t.dtype in ("float", "int64")
        }
        self._free_running = len(self.graph.per_sequence_inputs) == len(self.graph.inputs)
        if len(self._input_rows) != len(self.graph.inputs) or self._free_running:
            self._input_rows = {"<no fast path>": ((), np.dtype(bool))}
        self._needs_states = bool(caller_states(self.graph))
        self._out_names = [o.name for o in self.model.graph.output]

    def __repr__(self) -> str:
        return f"<OnnxModel {self.graph.name!r} mode={self.mode} dtype={self.dtype}>"

    # ------------------------------------------------------------ sessions
    def _session(self, model: onnx.ModelProto) -> ort.InferenceSession:
        so = ort.SessionOptions()
        for key, value in self._session_config.items():
            so.add_session_config_entry(key, value)
        if self._threads:
            so.intra_op_num_threads = self._threads
            so.inter_op_num_threads = 1
        return ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"],
            disabled_optimizers=DISABLED_OPTIMIZERS,
        )  # fmt: skip

    def _variant(self, lens: bool, exposed: tuple[str, ...]) -> tuple[onnx.ModelProto, Any]:
        key = (lens, exposed)
        if key not in self._variants:
            model = build_sequence_model(
                self.program,
                self._params,
                float_type=self._float_type,
                sequence_lens=lens,
                initial_states=exposed,
            )
            onnx.checker.check_model(model, full_check=True)
            self._variants[key] = (model, None)
        model, sess = self._variants[key]
        return model, sess

    def _variant_session(self, lens: bool, exposed: tuple[str, ...]) -> ort.InferenceSession:
        model, sess = self._variant(lens, exposed)
        if sess is None:
            sess = self._session(model)
            self._variants[(lens, exposed)] = (model, sess)
        return sess

    # ----------------------------------------------------------------- run
    @property
    def state_names(self) -> list[str]:
        """Step mode: the carried-value inputs; each returns as ``"<name>_final"``."""
        return [s.name for s in self.slots]

    def advance(
        self, inputs: Mapping[str, Any], carried: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Step mode: one step from ``carried``; returns ``(outputs, carried for the next)``."""
        if self.mode != "step":
            raise CompileError("advance() runs one step of a step model; compile with mode='step'")
        out = self._run_step(inputs, carried or {})
        return out, {k: out[f"{k}_final"] for k in self.state_names}

    def stream(
        self,
        inputs: Mapping[str, Any],
        initial_states: Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Step mode: feed time-major ``(T, B, ...)`` inputs one step at a time.

        Returns each output stacked over the steps and the carried values
        after the last step (``"<name>_final"``), as a sequence model would.
        """
        initial_states = seeded(self.graph, initial_states, seed)
        return stream(self.advance, self.graph, inputs, initial_states, self.dtype)

    def initial_states(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Step mode: the carried values before the first step, for ``batch`` rows.

        States declared with ``init="input"`` are left out: the caller supplies them.
        """
        initial = (
            carried_initial(self.graph, s.read, self._params, batch, self.dtype) for s in self.slots
        )
        return {s.name: v for s, v in zip(self.slots, initial, strict=True) if v is not None}

    def run(
        self,
        inputs: Mapping[str, Any],
        *,
        sequence_lens: Any = None,
        initial_states: Mapping[str, Any] | None = None,
        seed: int | None = None,
        steps: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the model; arguments and results as :func:`rnngraph.run` (``steps``: the
        number of steps of a graph with no sequence input).

        In step mode, ``inputs`` holds one step ``(B, *features)`` of each
        input, and carried values may be given in ``inputs`` or
        ``initial_states`` (missing ones start from their initial values).
        """
        initial_states = seeded(self.graph, initial_states, seed)
        if self.mode == "step":
            return self._run_step(inputs, initial_states or {})
        tree = split_inputs(inputs)
        if tree is not None:  # a recursive net on a TreeBatch: laid out by levels
            return run_trees(
                self.graph,
                tree,
                initial_states,
                self.dtype,
                lambda f, init: self.run(f, initial_states=init),
            )
        if sequence_lens is None and not initial_states and not self._needs_states:
            fast = self._fast_feeds(inputs)
            if fast is not None:  # the common call: well-formed arrays, nothing else
                sess = self._variant_session(False, ())
                return dict(zip(self._out_names, sess.run(self._out_names, fast), strict=True))
        empty = run_empty(
            self.graph, inputs, self._params, sequence_lens, initial_states, self.dtype
        )
        if empty is not None:  # onnxruntime's Scan fails and its LSTM aborts on empty axes
            return empty
        if steps is not None and not self._free_running:
            raise InputError("steps= is for a graph with no sequence input; this one has inputs")
        bound, T, B = check_inputs(self.graph, inputs, self.dtype, steps)
        if T is None:
            raise InputError(
                f"graph {self.graph.name!r} has no sequence input: pass steps= to say how many"
            )
        if B is None:
            sizes = {np.shape(v)[0] for v in (initial_states or {}).values() if np.ndim(v) > 0}
            B = sizes.pop() if len(sizes) == 1 else 1
        if T == 0 or B == 0:  # (onnxruntime's Scan refuses empty axes: nothing to compute)
            return reference_run(
                self.graph, inputs, self._params, sequence_lens=sequence_lens,
                initial_states=initial_states, dtype=self.dtype, steps=steps,
            )  # fmt: skip
        feeds = {self.graph.nx_graph.nodes[nid]["name"]: a for nid, a in bound.items()}
        lens = check_lens(sequence_lens, T, B)
        states = check_initial_states(self.graph, initial_states or {}, B, self.dtype)
        for name, arr in states.items():
            feeds[name] = np.ascontiguousarray(arr)
        needs = [n for n in caller_states(self.graph) if n not in states]
        if needs:
            raise InputError(
                f"states {needs} take their initial value from the caller: pass initial_states="
            )
        if lens is not None:
            feeds["sequence_lens"] = lens
        if self._free_running:
            feeds[STEPS] = np.array([T], np.int64)
        sess = self._variant_session(lens is not None, tuple(sorted(states)))
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds), strict=True))

    def _run_step(
        self, inputs: Mapping[str, Any], initial_states: Mapping[str, Any]
    ) -> dict[str, np.ndarray]:
        seq, carried = step_feeds(
            self.graph, self.slots, inputs, initial_states, self._params, self.dtype
        )
        feeds = {name: a[0] for name, a in seq.items()}
        feeds.update(carried)
        if self._step_session is None:
            self._step_session = self._session(self.model)
        sess = self._step_session
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds), strict=True))

    def _fast_feeds(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
        """``inputs`` as they are if they need no conversion or checking beyond a glance."""
        if len(inputs) != len(self._input_rows):
            return None
        tb = None
        for name, (row, dt) in self._input_rows.items():
            a = inputs.get(name)
            if not isinstance(a, np.ndarray) or a.dtype != dt or a.shape[2:] != row:
                return None
            if tb is None:
                tb = a.shape[:2]
                if 0 in tb:
                    return None
            elif a.shape[:2] != tb:
                return None
        return dict(inputs)

    # ---------------------------------------------------------------- save
    def save(self, path: str | os.PathLike[str], *, external_data: bool | None = None) -> Path:
        """Write the model to ``path`` atomically; returns the path.

        ``external_data`` puts weights of 1 KiB and more in a file next to the
        model (by default only when the model would exceed ONNX's 2 GiB protobuf
        limit), named ``<file>.<hash>.data`` after its content, so that a reader
        never pairs one save's model with another's weights: the weights are
        written first, then the model is published by one rename, and weights
        files no model refers to any more are removed.
        """
        return _write(path, self.model, external_data)

    def save_with_interface(
        self,
        path: str | os.PathLike[str],
        interface: Interface,
        *,
        lifted: Sequence[str] = (),
        external_data: bool | None = None,
    ) -> Path:
        """:meth:`save` an imported model's replacement with the original model's
        interface (its inputs and outputs, by name, dtype and layout; see
        :mod:`rnngraph_onnx._interface`): a file to swap in where the original was."""
        if self.mode != "sequence":
            raise CompileError("only a sequence model can take the imported model's interface")
        inner = self._variant(interface.sequence_lens is not None, tuple(interface.states_fed))[0]
        model = with_interface(inner, interface, lifted)
        onnx.checker.check_model(model, full_check=True)
        return _write(path, model, external_data)


def _write(
    path: str | os.PathLike[str], model: onnx.ModelProto, external_data: bool | None
) -> Path:
    """Write ``model`` atomically (see :meth:`OnnxModel.save`)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if external_data is None:
        external_data = model.ByteSize() > 2**31 - 2**24
    base = os.path.basename(path)
    with folder_lock(folder):
        if not external_data:
            atomic_write(path, model.SerializeToString())
            _remove_stale_data(folder, base, keep=None)
            return Path(path)
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy
        # (deterministic: the same model gives the same name, a new one a new name)
        digest = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
        location = f"{base}.{digest[:16]}.data"
        with tempfile.TemporaryDirectory(dir=folder, prefix=".rnngraph-") as tmp:
            onnx.save_model(
                model,
                os.path.join(tmp, base),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=location,
                size_threshold=1024,
            )
            data = os.path.join(tmp, location)
            if os.path.exists(data):  # absent when every tensor is under the threshold
                os.replace(data, os.path.join(folder, location))
            os.replace(os.path.join(tmp, base), path)  # (made with the umask's mode)
        _remove_stale_data(folder, base, keep=location)
    return Path(path)


def _remove_stale_data(folder: str, base: str, keep: str | None) -> None:
    """Remove the weights files of earlier saves of ``base`` other than ``keep``."""
    for name in os.listdir(folder):
        if name != keep and name.startswith(base + ".") and name.endswith(".data"):
            middle = name[len(base) + 1 : -len(".data")]
            if middle == "" or (len(middle) == 16 and all(c in "0123456789abcdef" for c in middle)):
                os.unlink(os.path.join(folder, name))
