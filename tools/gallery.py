"""The documentation site's pictures: the examples gallery and the performance plots.

``python tools/gallery.py examples`` runs every script in ``examples/`` at a gallery size
(small enough for minutes, large enough for the pictures to show something), keeps the
pictures each draws under ``docs/gallery/`` and writes ``docs/gallery.md``: each
example's purpose, the command that reproduces it at full size, its pictures and the
figures it printed. ``python tools/gallery.py performance`` draws
``docs/performance/*.svg`` from the committed benchmark JSON (``benchmarks/results/``).
``tests/test_docs_site.py`` checks that every example has its gallery entry and that
every picture the pages show exists.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GALLERY = ROOT / "docs" / "gallery"
PERFORMANCE = ROOT / "docs" / "performance"

SIZES: dict[str, list[str]] = {
    "char_lstm": ["--steps", "200"],
    "expression_trees": ["--steps", "200"],
    "echo_state_mackey_glass": ["--units", "300"],
    "seq2seq_attention": ["--steps", "600", "--min-len", "3", "--max-len", "8",
                          "--hidden", "32", "--test", "100"],
    "hopfield": ["--units", "60", "--trials", "3"],
    "ntm_copy": ["--steps", "600", "--max-len", "3", "--bits", "4", "--hidden", "32",
                 "--rows", "8", "--width", "6", "--lr", "1e-2"],
    "captioning": ["--steps", "300"],
    "evolve_controller": ["--task", "single", "--optimizers", "ga", "cma", "--generations",
                          "40", "--steps", "300"],
    "ctc_spoken_digits": ["--steps", "150", "--batch", "8"],
    "keyword_spotting_mcu": ["--steps", "150"],
    "tomita": ["--grammars", "1", "2", "4", "--epochs", "60", "--check-len", "10"],
    "dnc_recall": ["--steps", "300", "--items", "3", "--bits", "4", "--hidden", "32",
                   "--lr", "5e-3"],
}  # fmt: skip
"""Gallery sizes: every example's arguments (the tests run smaller ones)."""

PICTURE = {"tomita": "--draw"}
"""The flag that draws, where it is not ``--plot FILE`` (tomita draws automata to a folder)."""

NO_PICTURE = {"dnc_recall"}
"""Examples that print figures only."""


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def examples() -> list[str]:
    """The example scripts, by name (helpers start with ``_``)."""
    return sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_"))


def _figures(result: Any) -> list[tuple[str, str]]:
    """The scalar figures an example returned, for its gallery entry."""
    rows = result.get("rows") if isinstance(result, dict) else result
    if isinstance(result, dict) and not isinstance(rows, list):
        rows = [result]
    out = []
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        for k, v in row.items():
            if isinstance(v, bool | int | float | str) and len(str(v)) < 60:
                value = f"{v:.4g}" if isinstance(v, float) else str(v)
                out.append((k if len(rows) == 1 else f"{i}: {k}", value))
    return out[:24]


def run_examples(names: list[str]) -> None:
    GALLERY.mkdir(parents=True, exist_ok=True)
    entries = json.loads((GALLERY / "entries.json").read_text()) if (
        GALLERY / "entries.json"
    ).exists() else {}  # fmt: skip
    for name in names:
        args = list(SIZES[name])
        if name in PICTURE:
            folder = GALLERY / name
            folder.mkdir(exist_ok=True)
            args += [PICTURE[name], str(folder)]
        elif name not in NO_PICTURE:
            args += ["--plot", str(GALLERY / f"{name}.svg")]
        print(f"{name} {' '.join(args)}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with (
            tempfile.TemporaryDirectory() as tmp,
            contextlib.chdir(tmp),  # (files it writes besides the pictures: thrown away)
            contextlib.redirect_stdout(io.StringIO()),
        ):
            result = _load(name).main(args)
        seconds = time.perf_counter() - started
        pictures = sorted(str(p.relative_to(GALLERY)) for p in GALLERY.glob(f"{name}.*"))
        if (GALLERY / name).is_dir():
            pictures += sorted(f"{name}/{p.name}" for p in (GALLERY / name).glob("*.svg"))
        module = _load(name)
        entries[name] = {
            "title": (module.__doc__ or name).strip().splitlines()[0],
            "about": (module.__doc__ or "").strip(),
            "args": SIZES[name],
            "seconds": round(seconds, 1),
            "pictures": pictures,
            "figures": _figures(result),
        }
    (GALLERY / "entries.json").write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    write_page(entries)


def write_page(entries: dict[str, Any]) -> None:
    lines = [
        "# Gallery",
        "",
        "Every script in `examples/`, run at the gallery's size by `python tools/gallery.py "
        "examples` on the development machine (AMD EPYC, 2 cores): what it shows, the "
        "command (at gallery size; drop the options for the full size), its pictures and the "
        "figures it printed. The test suite runs each one smaller and checks what it claims "
        "(`tests/test_examples.py`).",
        "",
    ]
    for name in sorted(entries):
        e = entries[name]
        body = [ln.strip() for ln in e["about"].splitlines()[1:]]
        about = " ".join(ln for ln in body if ln and not ln.startswith("Run:"))
        lines += [f"## {e['title']}", "", about, ""]
        lines += [
            "```bash",
            f"python examples/{name}.py {' '.join(e['args'])}  # {e['seconds']} s here",
            "```",
            "",
        ]
        for pic in e["pictures"]:
            if pic.endswith((".svg", ".png")):
                lines += [f"![{name}](gallery/{pic})", ""]
        if e["figures"]:
            lines += ["| figure | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in e["figures"]]
            lines += [""]
    (ROOT / "docs" / "gallery.md").write_text("\n".join(lines))


# ------------------------------------------------------------------ performance
def performance() -> list[Path]:
    """Bar charts of the committed benchmarks: our time over the contenders'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PERFORMANCE.mkdir(parents=True, exist_ok=True)
    results = ROOT / "benchmarks" / "results"
    written = []

    def bars(path: str, title: str, labels: list[str], series: dict[str, list[float]],
             ylabel: str, line: float | None = 1.0) -> None:  # fmt: skip
        fig, ax = plt.subplots(figsize=(8.5, 3.2))
        width = 0.8 / max(1, len(series))
        for i, (name, values) in enumerate(series.items()):
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
            ax.bar(xs, values, width, label=name)
        if line is not None:
            ax.axhline(line, color="black", linewidth=0.8)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.tight_layout()
        out = PERFORMANCE / path
        fig.savefig(out)
        plt.close(fig)
        written.append(out)

    for name in ("tvm_lstm", "tvm_lstm_xeon_icelake", "tvm_lstm_epyc_zen5"):
        lstm = json.loads((results / f"{name}.json").read_text())
        labels = [f"batch {r['batch']}\n{r['threads']} thread(s)" for r in lstm["rows"]]
        bars(
            f"{name}.svg",
            f"LSTM I=64 H=256 T=100, {lstm['machine'].get('cpu', '')[:40]}",
            labels,
            {
                "TVM / onnxruntime LSTM op": [
                    r["tvm_vs_onnxruntime_lstm_op"] for r in lstm["rows"]
                ],
                "TVM / PyTorch nn.LSTM": [r["tvm_vs_torch"] for r in lstm["rows"]],
                "LN-LSTM (TVM) / ORT LSTM op": [
                    r.get("tvm_ln_lstm_vs_onnxruntime_lstm_op", float("nan")) for r in lstm["rows"]
                ],
            },
            "time ratio (lower: ours faster)",
        )
    step = json.loads((results / "training_step.json").read_text())
    bars(
        "training_step.svg",
        "LSTM forward + every gradient, batch 32",
        [f"{r['threads']} thread(s)" for r in step["rows"]],
        {
            "TVM adjoint / PyTorch autograd": [
                r["ratio_ours_tvm_over_torch"] for r in step["rows"]
            ],
            "ONNX adjoint / PyTorch autograd": [
                r["ratio_ours_onnx_over_torch"] for r in step["rows"]
            ],
        },
        "time ratio (lower: ours faster)",
    )
    tree = json.loads((results / "tree_lstm.json").read_text())
    bars(
        "tree_lstm.svg",
        "tree-LSTM: speed-up over per-node PyTorch",
        [f"{r['trees']} trees\n{r['threads']} thread(s)" for r in tree["rows"]],
        {
            "TVM": [r["tvm_speedup_vs_torch_per_node"] for r in tree["rows"]],
            "ONNX": [r["speedup_vs_torch_per_node"] for r in tree["rows"]],
        },
        "speed-up (higher: ours faster)",
    )
    mcu = json.loads((results / "cortex_m.json").read_text())
    models = mcu["models"]
    names = list(models)
    cores = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m55"]
    bars(
        "cortex_m.svg",
        "keyword spotting step on Cortex-M board models (qemu)",
        names,
        {
            c: [
                models[n]["devices"].get(c, {}).get("instructions_per_step", float("nan")) / 1000
                for n in names
            ]
            for c in cores
        },
        "thousand instructions a step",
        line=None,
    )
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["examples", "performance"])
    ap.add_argument("--only", nargs="*", help="examples to run (default: all)")
    args = ap.parse_args(argv)
    if args.what == "examples":
        run_examples(args.only or examples())
    else:
        for p in performance():
            print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
