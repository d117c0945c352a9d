"""The command line: every verb has --help; inspect, draw, run and demo work on real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.tools.cli import build_parser, main
from tests import zoo
from tests.zoo import elman_graph

VERBS = ["inspect", "draw", "run", "compile", "check", "bench", "demo", "quantize"]


def test_every_verb_has_help(capsys) -> None:
    for verb in [None, *VERBS]:
        with pytest.raises(SystemExit) as e:
            main([verb, "--help"] if verb else ["--help"])
        assert e.value.code == 0
        assert "usage: rnngraph" in capsys.readouterr().out
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(VERBS)  # type: ignore[union-attr]


def test_console_script_is_installed() -> None:
    exe = shutil.which("rnngraph")
    assert exe, "pip install should put the rnngraph script on PATH"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("rnngraph ")


def test_inspect_saved_graph(tmp_path, capsys) -> None:
    g = elman_graph()
    path = g.save(tmp_path / "elman", params=g.init_params())
    assert main(["inspect", path]) == 0
    text = capsys.readouterr().out
    assert "states (1):" in text and "h (B, 5)  delay 1" in text
    assert "params (5): 57 values, 228 B" in text
    assert "{add_0, h, rec, tanh_0}" in text
    assert main(["inspect", path, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["strongly_connected_components"] == [["add_0", "h", "rec", "tanh_0"]]


def test_inspect_python_file_and_draw(tmp_path, capsys) -> None:
    src = tmp_path / "models.py"
    src.write_text(
        "import rnngraph as rg\n"
        "def make():\n"
        "    g = rg.Graph('m')\n"
        "    g.output('y', rg.cells.gru(g.input('x', 3), 4, name='g'))\n"
        "    return g\n"
    )
    dot = tmp_path / "m.dot"
    assert main(["inspect", f"{src}:make", "--brief", "--draw", str(dot)]) == 0
    text = dot.read_text()
    assert "cluster_0" in text and 'label="z^-1"' in text
    if shutil.which("dot"):
        svg = tmp_path / "m.svg"
        assert main(["draw", f"{src}:make", "-o", str(svg)]) == 0
        assert svg.read_text().lstrip().startswith("<?xml")


def test_run_writes_outputs(tmp_path, capsys) -> None:
    g = elman_graph()
    path = g.save(tmp_path / "elman", params=g.init_params())
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.ones((4, 2, 3), np.float32))
    out = tmp_path / "out.npz"
    assert main(["run", path, "--inputs", str(inputs), "-o", str(out)]) == 0
    with np.load(out) as z:
        assert z["y"].shape == (4, 2, 2) and z["h_final"].shape == (2, 5)


def test_bad_file_gives_clear_error_and_exit_2(tmp_path, capsys) -> None:
    assert main(["inspect", str(tmp_path / "missing.json")]) == 2
    assert "SerializationError: no saved graph" in capsys.readouterr().err


def test_demo_quick(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rnngraph.tools.cli", "demo", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[6/6]" in proc.stdout and "all checks passed" in proc.stdout
    report = json.loads((tmp_path / "demo.json").read_text())
    assert report["ok"] and all(v <= 1e-4 for v in report["parity"].values())
    assert report["training"]["last"] < report["training"]["first"]
    for name in ("char_lstm.json", "model.dot", "training.png", "char_lstm.onnx"):
        assert (tmp_path / name).exists(), name


def test_inspect_shows_the_compiled_schedule(tmp_path, capsys) -> None:
    import rnngraph as rg

    g = rg.Graph("bi")
    g.output("y", rg.cells.lstm(g.input("x", 3), 4, name="bi", direction="bidirectional"))
    path = g.save(tmp_path / "bi", g.init_params())
    assert main(["inspect", path, "--brief", "--schedule"]) == 0
    text = capsys.readouterr().out
    assert "native LSTM (forward" in text and "native LSTM (reverse" in text
    assert main(["inspect", path, "--json", "--schedule"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in info["schedule"]["regions"]].count("native LSTM") == 2


def test_draw_a_10000_node_graph_collapsed(tmp_path, capsys) -> None:
    """Graphviz grew to ~24 GB drawing a 10,000-node graph until it was killed: big graphs
    are drawn collapsed (a box per recurrent region and name scope, at most --max-nodes),
    with a note saying how to see more."""
    from rnngraph.tools.drawing import to_dot

    g = rg.Graph("chain")
    v = g.input("x", 3)
    for _ in range(10_000):
        v = v + 1.0
    g.output("y", v)
    text = to_dot(g, max_nodes=300)
    assert text.count(" [label=") <= 302  # 300 boxes, the note and no more
    assert "20001 nodes drawn as" in text  # (with the 10,000 constants)
    assert "rnngraph draw --max-nodes N" in text
    small = to_dot(zoo.CELLS["bidirectional_lstm"](), max_nodes=20)
    assert "recurrent region 0 (forward)" in small and "recurrent region 1 (backward)" in small
    if shutil.which("dot"):
        src = g.save(tmp_path / "chain")
        svg = tmp_path / "chain.svg"
        draw = ["draw", src, "-o", str(svg)]
        proc = subprocess.run(  # with 4 GB of address space at most, Graphviz included
            ["prlimit", "--as=4000000000", sys.executable, "-m", "rnngraph.tools.cli", *draw],
            capture_output=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert svg.stat().st_size > 0


def test_inspect_lists_the_cell_library(capsys) -> None:
    from rnngraph.cells.catalog import CATALOG

    assert main(["inspect", "--cells"]) == 0
    text = capsys.readouterr().out
    for e in CATALOG:
        assert ", ".join(e.names) in text and e.oracle in text
    assert main(["inspect", "--cells", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(CATALOG)
    assert main(["inspect"]) != 0  # neither a file nor --cells: a clear error
    assert "needs a file" in capsys.readouterr().err


def test_quantize_then_compile_to_a_qdq_model(tmp_path, capsys) -> None:
    g = zoo.CELLS["gru"]()
    path = g.save(tmp_path / "m", params=zoo.params_for(g, 0))
    xs = np.random.default_rng(0).normal(size=(10, 4, zoo.I)).astype("float32")
    np.savez(tmp_path / "cal.npz", x=xs, sequence_lens=np.array([10, 9, 5, 1]))
    out = tmp_path / "mq.json"
    assert main(["quantize", path, "--calibration", str(tmp_path / "cal.npz"), "-o", str(out)]) == 0
    assert "int16" in capsys.readouterr().err  # the report
    _, qp = rg.ir.deserialize.load_with_params(out)
    assert qp["g.W"].dtype == np.int8
    assert main(["compile", str(out), "-o", str(tmp_path / "mq.onnx")]) == 0
    assert (tmp_path / "mq.onnx").exists()
    with pytest.raises(SystemExit):
        main(["quantize", path, "-o", str(out)])  # --calibration is required


def test_quantize_integer_only_gives_a_layer_norm_an_integer_form(tmp_path, capsys) -> None:
    g = zoo.CELLS["layer_norm_op_lstm"]()
    path = g.save(tmp_path / "ln", params=zoo.params_for(g, 0))
    np.savez(tmp_path / "cal.npz", x=np.random.default_rng(0).normal(size=(10, 4, zoo.I)))
    out = tmp_path / "lnq.json"
    args = ["quantize", path, "--calibration", str(tmp_path / "cal.npz"), "-o", str(out)]
    assert main([*args, "--integer-only"]) == 0
    assert "layer_norm_0.root" in capsys.readouterr().err  # the report: the root's grid
    qg, qp = rg.ir.deserialize.load_with_params(out)
    ig, _ = rg.quant.to_integer(qg, qp)
    assert "int_div" in {n.op for n in ig.nodes()}


@pytest.mark.slow
def test_compile_for_an_ethos_u_npu_writes_tflite_and_vela_output(tmp_path, capsys) -> None:
    pytest.importorskip("tflite")
    if shutil.which("vela") is None:
        pytest.skip("Arm's Vela is not installed (pip install 'rnngraph[edge]')")
    g = zoo.CELLS["gru"]()
    cal = [{"x": np.random.default_rng(0).normal(size=(10, 4, zoo.I)).astype("float32")}]
    qg, qp = rg.quantize(g, zoo.params_for(g, 0), calibration=cal, states="int8", vectors="int8")
    src = qg.save(tmp_path / "q", qp)
    assert main(["compile", str(src), "--device", "ethos-u55", "-o", str(tmp_path / "k")]) == 0
    assert (tmp_path / "k.tflite").exists() and (tmp_path / "k_vela" / "k_vela.tflite").exists()
    assert "NPU operators" in capsys.readouterr().err


def test_the_guide_cli_page_is_the_parsers_help() -> None:
    from pathlib import Path

    from rnngraph.tools.cli import reference

    page = Path(__file__).resolve().parents[1] / "docs" / "guide" / "cli.md"
    assert page.read_text() == reference(), "regenerate: rnngraph.tools.cli.reference()"
