"""The example scripts run and do what they say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_echo_state_network_beats_the_naive_predictor() -> None:
    result = _load("echo_state_mackey_glass").main(["--units", "150", "--steps", "1500"])
    assert result["nrmse"] < 0.1 * result["baseline_nrmse"]


def test_char_lstm_learns_and_samples_in_onnxruntime(tmp_path) -> None:
    result = _load("char_lstm").main(
        ["--steps", "100", "--onnx", str(tmp_path / "step.onnx"), "--plot", str(tmp_path / "l.png")]
    )
    assert result["last_loss"] < 0.8 * result["uniform_loss"]  # type: ignore[operator]
    assert result["onnx_err"] < 1e-4  # type: ignore[operator]
    assert len(result["sample"]) == 160  # type: ignore[arg-type]
    assert (tmp_path / "step.onnx").exists() and (tmp_path / "l.png").exists()


def test_expression_tree_lstm_learns_and_runs_in_onnxruntime(tmp_path) -> None:
    result = _load("expression_trees").main(
        ["--steps", "80", "--onnx", str(tmp_path / "expr.onnx"), "--plot", str(tmp_path / "l.svg")]
    )
    assert result["last_loss"] < 0.2 * result["first_loss"]
    assert result["mse"] < 0.2 * result["baseline_mse"]
    assert result["onnx_err"] < 1e-4
    assert (tmp_path / "expr.onnx").exists() and (tmp_path / "l.svg").exists()


def test_seq2seq_with_attention_learns_to_reverse_and_decodes_in_onnxruntime(tmp_path) -> None:
    result = _load("seq2seq_attention").main(
        [
            "--steps",
            "400",
            "--min-len",
            "3",
            "--max-len",
            "6",
            "--hidden",
            "32",
            "--test",
            "100",
            "--plot",
            str(tmp_path / "att.svg"),
            "--onnx",
            str(tmp_path / "dec.onnx"),
        ]
    )
    assert result["exact_match"] >= 0.9
    assert result["onnx_exact_match"] == result["exact_match"]  # the same greedy decoding
    assert result["anti_diagonal"] > 0.5  # a reversal attends to the mirrored position
    assert (tmp_path / "att.svg").exists() and (tmp_path / "dec.onnx").exists()


def test_hopfield_recalls_and_its_capacity_is_near_the_known_one(tmp_path) -> None:
    result = _load("hopfield").main(
        ["--units", "40", "--patterns", "4", "--trials", "2", "--plot", str(tmp_path / "c.svg")]
    )
    assert result["sync_overlap"] > 0.95 and result["async_overlap"] > 0.95
    assert result["glauber_overlap"] > 0.9 and result["glauber_onnx_identical"]
    assert 0.08 < result["capacity"] < 0.3  # a small net's capacity sits above 0.138 N
    assert (tmp_path / "c.svg").exists()


def test_ntm_learns_the_copy_task_and_runs_in_onnxruntime(tmp_path) -> None:
    args = ["--steps", "150", "--max-len", "2", "--bits", "3", "--hidden", "24"]
    args += ["--rows", "6", "--width", "4", "--lr", "1e-2", "--plot", str(tmp_path / "c.svg")]
    result = _load("ntm_copy").main(args)
    assert result["final_errors"] < 0.5 * result["first_errors"]
    assert (tmp_path / "c.svg").exists()


def test_tomita_nets_yield_the_grammars_automata(tmp_path) -> None:
    rows = _load("tomita").main(["--grammars", "1", "4", "--epochs", "40", "--check-len", "10"])
    for row in rows:
        assert row["prefix_accuracy"] == 1.0
        assert row["language_agreement"] == 1.0
    assert [r["dfa_states"] for r in rows] == [2, 4]  # the grammars' minimal automata


def test_captioning_cnn_and_decoder_caption_in_onnxruntime(tmp_path) -> None:
    result = _load("captioning").main(["--steps", "250", "--plot", str(tmp_path / "l.svg")])
    assert result["last_loss"] < 0.1 * result["first_loss"]
    assert result["exact"] > 0.8  # whole captions right, decoded greedily in onnxruntime
    assert (tmp_path / "l.svg").exists()


def test_dnc_learns_associative_recall() -> None:
    result = _load("dnc_recall").main(
        ["--steps", "250", "--items", "3", "--bits", "4", "--hidden", "32", "--lr", "5e-3"]
    )
    assert result["final_errors"] < 0.6 * result["chance"]


def test_evolved_controllers_balance_the_pole(tmp_path) -> None:
    result = _load("evolve_controller").main(
        ["--task", "single", "--optimizers", "ga", "cma", "--generations", "40",
         "--steps", "300", "--plot", str(tmp_path / "e.svg")]
    )  # fmt: skip
    for row in result["rows"]:
        assert row["solved"], row
        assert row["evaluations_to_solve"] == row["evaluations"]  # (it stopped there)
    assert (tmp_path / "e.svg").exists()


def test_bilstm_ctc_learns_to_transcribe_digits() -> None:
    result = _load("ctc_spoken_digits").main(["--steps", "80", "--batch", "8"])
    assert result["last_loss"] < 0.5 * result["first_loss"]
    assert result["onnx_err"] < 1e-4


def test_keyword_spotter_runs_on_a_microcontroller_bit_for_bit(tmp_path) -> None:
    """Trained, quantised, written as integer C and streamed on a Cortex-M4 board model
    (natively when the Arm toolchain and qemu are missing): the C's outputs are the
    integer graph's, and quantisation costs little accuracy."""
    result = _load("keyword_spotting_mcu").main(
        ["--steps", "80", "--out", str(tmp_path / "fw"), "--plot", str(tmp_path / "k.svg")]
    )
    assert result["c_bit_exact"]
    assert result["float_accuracy"] > 0.5  # (6 keywords: chance is 1/6)
    assert result["integer_accuracy"] >= result["float_accuracy"] - 0.1
    assert (tmp_path / "fw" / "rg_model.c").exists() and (tmp_path / "k.svg").exists()
