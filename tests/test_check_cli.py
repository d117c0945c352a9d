"""``rnngraph compile`` and ``rnngraph check`` on real files."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest

import rnngraph as rg
from rnngraph.tools.check import check
from rnngraph.tools.cli import main
from tests import zoo


def test_compile_writes_a_checked_onnx_file(tmp_path, capsys) -> None:
    g = zoo.CELLS["lstm"]()
    src = g.save(tmp_path / "lstm", zoo.params_for(g))
    out = tmp_path / "lstm.onnx"
    assert main(["compile", src, "--target", "onnx", "-o", str(out)]) == 0
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node].count("LSTM") == 1
    step = tmp_path / "step.onnx"
    assert main(["compile", src, "-o", str(step), "--mode", "step"]) == 0
    assert {i.name for i in onnx.load(step).graph.input} == {"x", "l.h", "l.c"}


def test_compile_from_a_python_builder_and_from_onnx(tmp_path) -> None:
    builder = tmp_path / "models.py"
    builder.write_text(
        "import rnngraph as rg\n"
        "def gru():\n"
        "    g = rg.Graph('g')\n"
        "    g.output('y', rg.cells.gru(g.input('x', 3), 4, name='gru'))\n"
        "    return g\n"
    )
    first = tmp_path / "a.onnx"
    assert main(["compile", f"{builder}:gru", "-o", str(first)]) == 0
    second = tmp_path / "b.onnx"
    assert main(["compile", str(first), "-o", str(second)]) == 0
    xs = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    import onnxruntime as ort

    ya, yb = (
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(["y"], {"x": xs})[0]
        for p in (first, second)
    )
    np.testing.assert_allclose(ya, yb, atol=1e-6)


@pytest.mark.parametrize("name", ["narx", "bidirectional_lstm", "state_delay_2"])
def test_check_reports_every_output(name: str, capsys) -> None:
    g = zoo.CELLS[name]()
    rows = check(g, zoo.params_for(g), targets=["onnx"])
    assert rows and all(r.ok for r in rows), rows
    outputs = {r.output for r in rows if r.target == "onnx"}
    assert outputs == {"y", *(f"{s}_final" for s in g.states)}


def test_check_cli_fails_on_a_broken_backend(tmp_path, capsys, monkeypatch) -> None:
    g = zoo.CELLS["rnn"]()
    src = g.save(tmp_path / "rnn", zoo.params_for(g))
    assert main(["check", src]) == 0
    assert "within tolerance" in capsys.readouterr().out
    import rnngraph_onnx._lowering as lowering

    # A lowering with a wrong sign: check must notice and exit 1.
    monkeypatch.setitem(
        lowering.LOWERING,
        "tanh",
        lambda e, n, args: e.add("Neg", [e.add("Tanh", args, n.name)], n.name),
    )
    assert main(["check", src, "--target", "onnx"]) == 1
    assert "NO" in capsys.readouterr().out


def test_compile_reports_unknown_targets(tmp_path, capsys) -> None:
    g = zoo.CELLS["rnn"]()
    src = g.save(tmp_path / "rnn")
    assert main(["compile", src, "--target", "nope", "-o", str(tmp_path / "x")]) == 2
    assert "no backend named 'nope'" in capsys.readouterr().err
    assert "onnx" in rg.available_targets()


def test_check_a_gradient_graph(tmp_path, capsys) -> None:
    g = zoo.CELLS["gru"]()
    src = rg.adjoint(g).save(tmp_path / "adj", g.init_params())
    assert main(["check", src]) == 0
    out = capsys.readouterr().out
    assert "grad:g.W" in out and "onnx step" not in out  # sums over steps: no step model


def test_check_skips_a_backend_whose_dependencies_are_missing(
    tmp_path, capsys, monkeypatch
) -> None:
    """After the plain install apache-tvm is missing: the tvm backend is said to be
    not installed and skipped, not failed (exit 0); asked for by name, it fails."""
    rc = sys.modules["rnngraph.runtime.backends"]

    class _Missing:
        name = "fake"

        def load(self) -> None:
            raise ImportError("No module named 'fakedep'")

    real = rc._entry_points()
    monkeypatch.setattr(rc, "_entry_points", lambda: {**real, "fake": _Missing()})
    g = zoo.CELLS["gru"]()
    src = g.save(tmp_path / "gru", zoo.params_for(g))
    assert main(["check", src]) == 0
    out = capsys.readouterr().out
    assert "not installed (pip install 'rnngraph[fake]')" in out
    assert main(["check", src, "--target", "fake"]) == 1
    with pytest.raises(rg.BackendUnavailableError, match=r"rnngraph\[fake\]"):
        rg.compile(g, target="fake", params=zoo.params_for(g))


@pytest.mark.parametrize("flag", ["--steps", "--batch"])
def test_check_at_zero_steps_or_rows(flag: str, tmp_path, capsys) -> None:
    """``--steps 0`` and ``--batch 0`` aborted the process in onnxruntime's LSTM op."""
    g = zoo.CELLS["lstm"]()
    src = g.save(tmp_path / "lstm", zoo.params_for(g))
    assert main(["check", src, "--target", "onnx", flag, "0"]) == 0
