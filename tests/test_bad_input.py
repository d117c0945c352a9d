"""A new user's bad input: each gets a typed rnngraph error (on the CLI, one line and
exit 2) that says what is wrong, never a raw traceback from inside the library.

Each case here gave a raw ``ValueError``, ``TypeError``, ``UnicodeDecodeError``,
``RecursionError`` or ``BadZipFile``, or silently a wrong answer (a complex input's
imaginary part dropped, a delay of ``"1"`` or ``1.7`` read as 1, an empty ONNX file
read as an empty graph). The fuzz tests mutate valid saved graphs and ONNX files and
load them: a valid graph or a typed error, never another exception.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto, helper, numpy_helper

import rnngraph as rg
from rnngraph.tools.cli import main
from tests import zoo
from tests.fuzzing import mutate_bytes, mutate_json, mutations
from tests.zoo import elman_graph


def test_shapes_that_are_not_sizes() -> None:
    g = rg.Graph("g")
    x = g.input("x", 3)
    with pytest.raises(rg.ShapeError, match=r"0 or more, got -2"):
        rg.linear(x, -2)
    with pytest.raises(rg.ShapeError, match=r"input 'y'.*integer or a tuple.*4\.5"):
        g.input("y", 4.5)
    with pytest.raises(rg.ShapeError, match=r"state 's'.*integer or a tuple.*2\.5"):
        g.state("s", 2.5)
    with pytest.raises(rg.ShapeError, match=r"param 'w'.*0 or more, got -1"):
        g.param("w", (-1, 2))
    with pytest.raises(rg.ShapeError, match=r"input 'z'.*integer size.*True"):
        g.input("z", (True, 2))


def test_complex_inputs_are_refused() -> None:
    g = elman_graph()
    xs = np.ones((2, 1, 3), complex)
    with pytest.raises(rg.InputError, match="complex"):
        rg.run(g, {"x": xs}, g.init_params())
    m = rg.compile(g, target="onnx", params=g.init_params())
    with pytest.raises(rg.InputError, match="complex"):
        m.run({"x": xs})


def _saved(tmp_path: Path) -> tuple[Path, dict]:
    g = elman_graph()
    path = Path(g.save(tmp_path / "m", g.init_params()))
    return path, json.loads(path.read_text())


def _write(tmp_path: Path, doc: dict, name: str = "bad") -> Path:
    """``doc`` as a graph file with the saved ``.npz`` beside it (hash check dropped)."""
    doc = {k: v for k, v in doc.items() if k != "npz_sha256"}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    (tmp_path / f"{name}.npz").write_bytes((tmp_path / "m.npz").read_bytes())
    return path


def test_unreadable_graph_files(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_bytes(os.urandom(256) + b"\xff")
    with pytest.raises(rg.SerializationError, match="not a text file"):
        rg.load(tmp_path / "r.json")
    with pytest.raises(rg.SerializationError, match="is a folder"):
        rg.load(".")
    (tmp_path / "n.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(rg.SerializationError, match="nested too deeply"):
        rg.load(tmp_path / "n.json")


def test_graph_files_with_wrong_fields(tmp_path: Path) -> None:
    _, doc = _saved(tmp_path)
    ids = {n["name"]: n["id"] for n in doc["nodes"]}
    wrong = json.loads(json.dumps(doc))
    wrong["states"] = {"h": ids["x"]}
    with pytest.raises(rg.SerializationError, match=r"states entry 'h'.*input node"):
        rg.load(_write(tmp_path, wrong))
    for delay in ("1", 1.7, True):
        bad = json.loads(json.dumps(doc))
        for e in bad["edges"]:
            if e["delay"]:
                e["delay"] = delay
        with pytest.raises(rg.SerializationError, match=r"delay .* must be an integer"):
            rg.load(_write(tmp_path, bad))


def test_damaged_npz_files(tmp_path: Path) -> None:
    _, doc = _saved(tmp_path)
    good = (tmp_path / "m.npz").read_bytes()
    target = _write(tmp_path, doc)
    (tmp_path / "bad.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(rg.SerializationError, match="damaged or truncated"):
        rg.load(target)
    (tmp_path / "bad.npz").write_bytes(os.urandom(300))
    with pytest.raises(rg.SerializationError, match=r"not an \.npz archive"):
        rg.load_params(target)


def _onnx_file(tmp_path: Path, model: onnx.ModelProto, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def test_onnx_files_that_are_not_models(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(rg.ModelImportError, match="declares no outputs"):
        rg.import_onnx(empty)
    W = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[10**6, 10**6])
    W.float_data.extend([0.0] * 48)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 10**6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "m", [x], [y], [W])
    with pytest.raises(rg.ModelImportError, match=r"'W' declares shape .* but holds 48"):
        rg.import_onnx(_onnx_file(tmp_path, helper.make_model(graph), "huge.onnx"))


def test_an_lstm_with_a_misshaped_bias(tmp_path: Path) -> None:
    weights = {
        "W": np.zeros((1, 16, 3), np.float32),
        "R": np.zeros((1, 16, 4), np.float32),
        "B": np.zeros((1, 30), np.float32),
    }
    node = helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "Y_h"], hidden_size=4, name="enc")
    graph = helper.make_graph(
        [node],
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    with pytest.raises(rg.ModelImportError, match=r"LSTM node 'enc'.*B .*\(1, 30\).*\(1, 32\)"):
        rg.import_onnx(_onnx_file(tmp_path, helper.make_model(graph), "lstm.onnx"))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's refusals
        code = int(e.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_cli_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _saved(tmp_path)
    src = str(path)
    (tmp_path / "models.py").write_text("X = 3\n")
    out = str(tmp_path / "o.onnx")
    cases = [
        (["run", src, "--inputs", str(tmp_path / "nope.npz")], "--inputs: no such file"),
        (["compile", src, "-o", out, "--params", str(tmp_path / "nope.npz")], "no such file"),
        (["run", src, "--steps", "-3"], "--steps: must be 0 or more"),
        (["compile", src, "-o", out, "--unroll", "0"], "--unroll: must be 1 or more"),
        (["compile", f"{tmp_path / 'models.py'}:X", "-o", out], "no function 'X'"),
        (["check", src, "--tol", "-1"], "--tol: must be a finite number"),
        (["draw", src, "-o", str(tmp_path / "m.dot"), "--max-nodes", "0"], "1 or more"),
        (["demo", "--out", "/proc/rnngraph-demo"], "/proc/rnngraph-demo"),
    ]
    for argv, said in cases:
        code, err = _cli(capsys, *argv)
        assert code == 2 and said in err, (argv, err)
        said_lines = [ln for ln in err.splitlines() if ln.startswith("rnngraph ")]
        assert len(said_lines) == 1, err  # one line (argparse's usage lines before it)


def test_cli_output_into_a_closed_pipe(tmp_path: Path) -> None:
    """``rnngraph inspect model.json | head`` ended with a BrokenPipeError traceback."""
    path, _ = _saved(tmp_path)
    cmd = [sys.executable, "-m", "rnngraph.tools.cli", "inspect", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as head does after its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and "Traceback" not in err, err


# ------------------------------------------------------------------ fuzzing


_FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@_FUZZ
@given(mutations())
def test_fuzzed_graph_files_load_or_raise_typed_errors(tmp_path: Path, changes: list) -> None:
    text, npz = _valid_graph_file()
    doc = json.loads(text)
    for kind, seed in changes:
        rng = np.random.default_rng(seed)
        if kind in ("drop", "set"):
            doc = mutate_json(doc, rng, kind)
        else:  # (the hash would refuse it at once: drop it, so the archive is read)
            npz = mutate_bytes(npz, rng, kind)
            if isinstance(doc, dict):
                doc.pop("npz_sha256", None)
    (tmp_path / "f.json").write_text(json.dumps(doc))
    (tmp_path / "f.npz").write_bytes(npz)
    for read in (rg.load, rg.load_params):
        with contextlib.suppress(rg.GraphError):  # a typed error is a fine answer
            read(tmp_path / "f.json")


@functools.cache
def _valid_graph_file() -> tuple[str, bytes]:
    """A saved graph's ``.json`` text and ``.npz`` bytes."""
    import tempfile

    g = zoo.CELLS["narx"]()
    with tempfile.TemporaryDirectory() as d:
        src = Path(g.save(Path(d) / "src", zoo.params_for(g)))
        return src.read_text(), (Path(d) / "src.npz").read_bytes()


@functools.cache
def _valid_onnx() -> bytes:
    g = zoo.CELLS["layer_norm_lstm"]()
    return rg.compile(g, target="onnx", params=zoo.params_for(g)).model.SerializeToString()


@_FUZZ
@given(mutations())
def test_fuzzed_onnx_files_import_or_raise_typed_errors(tmp_path: Path, changes: list) -> None:
    data = _valid_onnx()
    for kind, seed in changes:
        rng = np.random.default_rng(seed)
        if kind in ("drop", "set"):  # a field of the protobuf cleared or another node's
            m = onnx.ModelProto()
            try:
                m.ParseFromString(data)
            except Exception:  # (bytes flipped before: no model to change any more)
                continue
            nodes = m.graph.node
            if not nodes:
                continue
            i = int(rng.integers(len(nodes)))
            if kind == "drop":
                del nodes[i].input[:1]
            else:
                nodes[i].op_type = str(nodes[int(rng.integers(len(nodes)))].op_type)
            data = m.SerializeToString()
        else:
            data = mutate_bytes(data, rng, kind)
    path = tmp_path / "f.onnx"
    path.write_bytes(data)
    with contextlib.suppress(rg.GraphError):  # a typed error is a fine answer
        rg.import_onnx(path)
