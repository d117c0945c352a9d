"""The ``rnngraph`` command line: ``inspect``, ``draw``, ``run``, ``compile``, ``check``, ``demo``.

Every verb has ``--help``. A FILE is a saved graph (``model.json`` with its
``model.npz``), an ONNX model (imported with :func:`rnngraph.import_onnx`),
or a Python file with a function that returns a graph (``models.py:build``;
without ``:name``, a function called ``build``; it may return
``(graph, params)``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import CompileError, GraphError, InputError
from rnngraph.ir.graph import Graph
from rnngraph.tools.drawing import MAX_NODES

__all__ = ["load_graph_file", "main"]


def load_graph_file(spec: str) -> tuple[Graph, dict[str, np.ndarray] | None]:
    """A graph (and saved params, if any) from a ``.json`` file, ``file.py[:function]``
    or ``model.onnx[:layout]`` (how its inputs are read: ``sequence``, ``rows`` or
    ``whole``; see :func:`rnngraph.import_onnx`)."""
    from rnngraph.ir.deserialize import load_with_params

    path, func = spec.rsplit(":", 1) if (".py:" in spec or ".onnx:" in spec) else (spec, "")
    p = Path(path)
    if p.suffix == ".onnx":
        from rnngraph.runtime.importers import import_onnx
        from rnngraph.runtime.interface import LAYOUTS

        if func and func not in LAYOUTS:
            raise GraphError(f"{spec}: the layout after ':' is one of {', '.join(LAYOUTS)}")
        return import_onnx(p, layout=func or "auto")
    if p.suffix == ".py":
        if not p.exists():
            raise GraphError(f"no such file: {p}")
        module_spec = importlib.util.spec_from_file_location(p.stem, p)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        fn = getattr(module, func or "build", None)
        if not callable(fn):
            what = "no" if fn is None else f"a {type(fn).__name__} named {func or 'build'!r}, no"
            raise GraphError(f"{p} has {what} function {func or 'build'!r} that returns a graph")
        result = fn()
        graph, params = result if isinstance(result, tuple) else (result, None)
        if not isinstance(graph, Graph):
            raise GraphError(f"{p}:{func or 'build'} returned {type(graph).__name__}, not a Graph")
        return graph, params
    graph, params = load_with_params(p)
    return graph, (params or None)


def _print_cells(as_json: bool) -> int:
    from rnngraph.cells.catalog import CATALOG

    if as_json:
        print(json.dumps([e._asdict() for e in CATALOG], indent=1))
        return 0
    for e in CATALOG:
        print(", ".join(e.names))
        print(f"    {e.what}")
        print(f"    paper: {e.paper}; checked against {e.oracle}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from rnngraph.tools.drawing import draw
    from rnngraph.tools.summary import format_summary, summarize

    if args.cells:
        return _print_cells(args.json)
    if args.file is None:
        raise GraphError("rnngraph inspect needs a file (or --cells for the cell library)")
    graph, params = load_graph_file(args.file)
    info = summarize(graph, params)
    if args.schedule:
        from rnngraph.runtime.backends import lower
        from rnngraph.tools.summary import describe_program, format_program

        program, _ = lower(graph, params)
        info["schedule"] = describe_program(program)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print(format_summary(info, nodes=not args.brief))
        if args.schedule:
            print(format_program(info["schedule"]))
    for path in args.draw or []:
        print(f"drew {draw(graph, path)}", file=sys.stderr)
    return 0


def _cmd_draw(args: argparse.Namespace) -> int:
    from rnngraph.tools.drawing import draw

    graph, _ = load_graph_file(args.file)
    print(draw(graph, args.output, max_nodes=args.max_nodes))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from rnngraph.runtime.interpreter import run
    from rnngraph.trees.recursion import random_inputs, tree_spec

    graph, params = load_graph_file(args.file)
    if params is None:
        params = graph.init_params(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    feeds: dict[str, Any] = {}
    if args.inputs:
        feeds = _read_npz(args.inputs, "--inputs")
    elif tree_spec(graph) is not None:  # a recursive net: random trees
        feeds = random_inputs(graph, rng, trees=args.batch)
    else:
        from rnngraph.tools.check import random_inputs_for

        feeds = random_inputs_for(graph, args.steps, args.batch, rng)
    out = run(graph, feeds, params)
    for k, v in out.items():
        print(
            f"{k:<24} shape {v.shape!s:<16} mean {float(np.mean(v)):+.5f}  "
            f"max|.| {float(np.max(np.abs(v), initial=0)):.5f}"
        )
    if args.output:
        from rnngraph.files import atomic_write

        path = args.output if args.output.endswith(".npz") else args.output + ".npz"
        atomic_write(path, lambda f: np.savez(f, **out))  # type: ignore[arg-type]
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _read_npz(path: str, flag: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file named on the command line (never unpickled)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(f"{flag}: no such file {path!r}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"{flag}: {path!r} is not a readable .npz file ({e})") from None


def _count(text: str) -> int:
    """An argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _tolerance(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = float(text)
    if not (value >= 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _compile_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if args.mode != "sequence":
        opts["mode"] = args.mode
    if args.dtype != "float32":
        opts["dtype"] = args.dtype
    if args.sequence_lens:
        opts["sequence_lens"] = True
    if args.device:
        opts["device"] = args.device
    if args.parallel:
        opts["parallel"] = True if args.parallel == "batch" else args.parallel
    if args.threads is not None:
        opts["threads"] = args.threads
    if args.tune or args.tune_batch or args.tune_steps:
        if args.target != "tvm":
            raise CompileError("--tune is for --target tvm (it times the TVM kernels' plans)")
        tune: dict[str, Any] = {"progress": True}
        if args.tune_batch:
            tune["batch"] = args.tune_batch
        if args.tune_steps:
            tune["steps"] = args.tune_steps
        opts["tune"] = tune
    return opts


NPUS = ("ethos-u55", "ethos-u65", "ethos-u85")
"""``--device`` names for Arm's NPUs: a TFLite step, then Vela (``ethos-u55`` alone means
its 128-MAC configuration; a full Vela name such as ``ethos-u55-256`` is passed on)."""


def _compile_for_npu(args: argparse.Namespace, graph: Any, params: Any) -> int:
    """``--device ethos-u..``: the quantised step as a .tflite, compiled by Vela beside it."""
    import shutil
    import subprocess

    from rnngraph.runtime.backends import compile

    config = args.device if args.device.count("-") == 2 else {
        "ethos-u55": "ethos-u55-128", "ethos-u65": "ethos-u65-256", "ethos-u85": "ethos-u85-256"
    }[args.device]  # fmt: skip
    model = compile(graph, "tflite", params, mode="step")
    path = model.save(args.output)
    print(path)
    vela = shutil.which("vela")
    if vela is None:
        raise CompileError(
            "--device ethos-u..: Arm's Vela is not installed (pip install 'rnngraph[edge]')"
        )
    out = path.parent / f"{path.stem}_vela"
    res = subprocess.run(
        [vela, str(path), "--accelerator-config", config, "--output-dir", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    if res.returncode:
        raise CompileError(f"Vela failed on {path}: {res.stderr.strip() or res.stdout.strip()}")
    summary = [ln for ln in res.stdout.splitlines() if "operators" in ln or "used" in ln]
    print("\n".join(summary), file=sys.stderr)
    print(out / f"{path.stem}_vela.tflite")
    return 0


MCUS = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m55")
"""``--device`` names for microcontrollers: the quantised graph's step as integer C."""


def _compile_for_mcu(args: argparse.Namespace, graph: Any, params: Any) -> int:
    """``--device cortex-m..``: integer-only C of the quantised step (``-o`` a folder),
    built for the core to report its flash and RAM."""
    from rnngraph.runtime.backends import compile

    mode = "step" if args.mode == "step" else "sequence"
    model = compile(graph, "micro", params, device=args.device, mode=mode)
    folder = model.save(args.output)
    try:
        mem = model.memory()
        print(
            f"{args.device}: flash {mem['flash_bytes']} B, RAM {mem['ram_bytes']} B"
            + (f" + {mem['stack_bytes']} B of stack" if "stack_bytes" in mem else ""),
            file=sys.stderr,
        )
    except CompileError as e:  # (no cross compiler here: the sources are still written)
        print(f"not built for {args.device}: {e}", file=sys.stderr)
    print(folder)
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from rnngraph.runtime.backends import compile

    graph, params = load_graph_file(args.file)
    if args.params:
        params = _read_npz(args.params, "--params")
    if params is None and graph.params:
        print("no saved params: using graph.init_params(seed=0)", file=sys.stderr)
        params = graph.init_params(seed=0)
    if args.device and args.device.startswith(NPUS):
        return _compile_for_npu(args, graph, params)
    if args.device in MCUS:
        return _compile_for_mcu(args, graph, params)
    model = compile(
        graph,
        args.target,
        params,
        optimize=not args.no_optimize,
        unroll=args.unroll,
        **_compile_options(args),
    )
    if (args.relax or args.standalone) and args.target != "tvm":
        flag = "--relax" if args.relax else "--standalone"
        raise CompileError(f"{flag} is for --target tvm")
    extra = {k: True for k in ("relax", "standalone") if getattr(args, k)}
    plan = getattr(getattr(model, "model", model), "plan", None)  # (a step model's own)
    if args.show_plan and plan is not None:
        print(plan, file=sys.stderr)
    print(model.save(args.output, **extra))
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from rnngraph.quant import quantize, report

    graph, params = load_graph_file(args.file)
    if args.params:
        params = _read_npz(args.params, "--params")
    if params is None and graph.params:
        raise InputError(
            f"{args.file}: no saved params to quantise; pass --params (trained values)"
        )
    data = _read_npz(args.calibration, "--calibration")
    lens = data.pop("sequence_lens", None)
    batch: dict[str, Any] = dict(data)
    if lens is not None:
        batch["sequence_lens"] = lens
    qg, qp = quantize(
        graph, params or {}, calibration=[batch], activations=args.activations,
        states=args.states, percentile=args.percentile, integer_only=args.integer_only,
    )  # fmt: skip
    print(report(qg).table(), file=sys.stderr)
    print(qg.save(args.output, qp))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from rnngraph.tools.check import check, format_report

    graph, params = load_graph_file(args.file)
    missing = sorted(set(graph.params) - set(params or {}))
    if missing:  # (an imported model that takes its weights as inputs, or a graph alone)
        print(f"no values for params {missing}: using graph.init_params(seed=0)", file=sys.stderr)
        fresh = graph.init_params(seed=0)
        params = {**(params or {}), **{k: fresh[k] for k in missing}}
    report = check(
        graph,
        params,
        targets=args.target or None,
        steps=args.steps,
        batch=args.batch,
        seed=args.seed,
        tol=args.tol,
    )
    print(format_report(report))
    return 0 if all(r.ok for r in report) else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    from rnngraph.tools.bench import bench, update_readme

    if not args.update_readme:
        bench(quick=args.quick, out=args.output)
    if args.update_readme or args.readme:
        results = args.results or ["benchmarks/results/bench.json"]
        print(f"updated {update_readme(args.readme or 'docs/performance.md', results)}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from rnngraph.tools.demo import demo

    return demo(out_dir=Path(args.out), quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    from rnngraph import __version__

    parser = argparse.ArgumentParser(
        prog="rnngraph",
        description="A compiler for recurrent and recursive networks declared as cyclic "
        "dataflow graphs.",
    )
    parser.add_argument("--version", action="version", version=f"rnngraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "inspect",
        help="print a graph's structure: nodes, params, states, delays, SCCs",
        description="Print the nodes, params (count and bytes), states, delays, "
        "strongly connected components and regions of a graph.",
    )
    p.add_argument("file", nargs="?", help="model.json, or models.py[:function]")
    p.add_argument(
        "--cells",
        action="store_true",
        help="list the cell library instead: each cell, its paper and its test oracle",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--brief", action="store_true", help="leave out the per-node listing")
    p.add_argument(
        "--schedule",
        action="store_true",
        help="also show what the compiler makes of it after its passes: loops, native "
        "cells, ops over whole sequences, taps",
    )
    p.add_argument(
        "--draw",
        action="append",
        metavar="PATH",
        help="also draw the graph to PATH (.dot, .svg, .png, .pdf); repeatable",
    )
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser(
        "draw",
        help="draw a graph to .dot/.svg/.png/.pdf",
        description="Draw a graph with delays on its edges and each recurrent "
        "region as a cluster (.svg/.png/.pdf need Graphviz's dot).",
    )
    p.add_argument("file", help="model.json, or models.py[:function]")
    p.add_argument("-o", "--output", required=True, help="output path; its suffix picks the format")
    p.add_argument(
        "--max-nodes",
        type=_positive,
        default=MAX_NODES,
        metavar="N",
        help="draw bigger graphs collapsed: a box per recurrent region and name scope "
        f"(default {MAX_NODES})",
    )
    p.set_defaults(func=_cmd_draw)

    p = sub.add_parser(
        "quantize",
        help="quantise a trained graph to integers (int8 weights and activations)",
        description="Post-training quantisation: run the float graph on calibration "
        "inputs, put every weight and value on an integer grid, and save the quantised "
        "graph and its integer params (a report of each value's range, scale and "
        "error goes to stderr). Compile the result like any graph, e.g. to an ONNX QDQ "
        "model with: rnngraph compile model_q.json -o model_q.onnx",
    )
    p.add_argument("file", help="model.json (with its trained params), or models.py[:function]")
    p.add_argument(
        "--calibration",
        required=True,
        help=".npz of calibration inputs: time-major arrays named as the graph's inputs "
        "(and optionally sequence_lens)",
    )
    p.add_argument("-o", "--output", required=True, help="where to save the quantised graph")
    p.add_argument("--params", help=".npz of the trained params (default: the saved ones)")
    p.add_argument("--activations", choices=["int8", "int16"], default="int8")
    p.add_argument("--states", choices=["int8", "int16"], default="int16", help="what states hold")
    p.add_argument(
        "--percentile",
        type=float,
        help="ranges from this percentile of magnitudes (e.g. 99.99) instead of min/max",
    )
    p.add_argument(
        "--integer-only",
        action="store_true",
        help="put divisions, roots and logs on grids too and write layer norms out, so "
        "that the integer (micro) target has a form for them",
    )
    p.set_defaults(func=_cmd_quantize)

    p = sub.add_parser(
        "run",
        help="run a graph with the reference interpreter",
        description="Run a graph on inputs from an .npz file (time-major arrays "
        "named as the graph's inputs) or on random inputs.",
    )
    p.add_argument("file", help="model.json, or models.py[:function]")
    p.add_argument("--inputs", help=".npz file of input sequences")
    p.add_argument("--steps", type=_count, default=10, help="steps of random input (default 10)")
    p.add_argument(
        "--batch",
        type=_count,
        default=2,
        help="batch of random input (default 2; trees for a recursive net)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs and params")
    p.add_argument("-o", "--output", help="write the outputs to this .npz file")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "compile",
        help="lower a graph for a target and write the model file",
        description="Verify, optimise and lower a graph (a saved graph, an ONNX file or a "
        "Python builder) for a backend, and write the result.",
    )
    p.add_argument(
        "file", help="model.json, model.onnx[:sequence|rows|whole], or models.py[:function]"
    )
    p.add_argument("--target", default="onnx", help="backend name (default onnx)")
    p.add_argument("-o", "--output", required=True, help="where to write the compiled model")
    p.add_argument(
        "--mode",
        choices=["sequence", "step"],
        default="sequence",
        help="whole sequences or one step",
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument(
        "--sequence-lens", action="store_true", help="give the model a sequence_lens input"
    )
    p.add_argument(
        "--device",
        help="for --target tvm: host (default), cuda, aarch64, armv7, riscv64, c, "
        "or a TVM target as JSON; ethos-u55, ethos-u65, ethos-u85 (or a Vela accelerator "
        "configuration such as ethos-u55-256): a quantised graph's step as -o .tflite, "
        "then Vela's NPU program beside it; cortex-m3, cortex-m4, cortex-m7, cortex-m55: "
        "a quantised graph's step as integer-only C in the folder -o, built with "
        "arm-none-eabi-gcc to report flash and RAM",
    )
    p.add_argument(
        "--unroll",
        type=_positive,
        default=1,
        metavar="K",
        help="steps per iteration of the recurrent loops (default 1; the expected "
        "sequence length unrolls fully, other lengths still run)",
    )
    p.add_argument(
        "--parallel",
        choices=["batch", "products"],
        help="for --target tvm on a CPU: split the batch over the cores, or every "
        "matrix product's weight (default: by each call's batch)",
    )
    p.add_argument(
        "--threads",
        type=_positive,
        metavar="N",
        help="threads a call uses (default: every core of this machine, or "
        "$RNNGRAPH_THREADS; 1 for another machine)",
    )
    p.add_argument(
        "--tune",
        action="store_true",
        help="for --target tvm: time a few kernel plans on this machine and keep the "
        "fastest (under a minute for an LSTM; cached per CPU and shapes)",
    )
    p.add_argument(
        "--tune-batch",
        type=_positive,
        nargs="+",
        metavar="B",
        help="batch sizes to tune for (default 1 and 32; implies --tune)",
    )
    p.add_argument(
        "--tune-steps",
        type=_positive,
        metavar="T",
        help="sequence length to tune for (default 100; implies --tune)",
    )
    p.add_argument(
        "--show-plan",
        action="store_true",
        help="for --target tvm: print the kernels' plan (vector width, register blocks, "
        "threads; derived from the target or tuned) to stderr",
    )
    p.add_argument(
        "--relax",
        action="store_true",
        help="for --target tvm: write the Relax executable (one file, weights inside; "
        "TVM's Relax VM runs it) instead of the kernel library and its sidecars",
    )
    p.add_argument(
        "--standalone",
        action="store_true",
        help="for --target tvm on a CPU: write -o as a folder of C (weights, entry point, "
        "headers) and the kernels' object, for a program without TVM's runtime",
    )
    p.add_argument("--params", help=".npz of parameter values (default: the saved ones)")
    p.add_argument("--no-optimize", action="store_true", help="skip the pass pipeline")
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser(
        "check",
        help="compile for every backend and report each one's error against the reference",
        description="Compile a graph for every available backend (sequence and step "
        "models, with and without sequence_lens), run each on random inputs at two "
        "sequence lengths, and print the largest error against the reference "
        "interpreter per output. Exits 1 when any exceeds the tolerance.",
    )
    p.add_argument(
        "file", help="model.json, model.onnx[:sequence|rows|whole], or models.py[:function]"
    )
    p.add_argument(
        "--target", action="append", help="check only this backend (repeatable; default all)"
    )
    p.add_argument(
        "--steps", type=_count, default=12, help="sequence length (also runs half of it)"
    )
    p.add_argument("--batch", type=_count, default=3, help="batch size")
    p.add_argument("--seed", type=int, default=0, help="seed for inputs and params")
    p.add_argument(
        "--tol", type=_tolerance, default=1e-5, help="largest accepted error (default 1e-5)"
    )
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "bench",
        help="time our engines against PyTorch and onnxruntime side by side",
        description="Time LSTM, GRU and a layer-normalised LSTM in our ONNX and TVM models, the "
        "reference interpreter, onnxruntime's own LSTM/GRU ops and (if installed) PyTorch eager "
        "and onnxruntime on torch.onnx.export's file; then an LSTM's forward pass with every "
        "weight gradient (our adjoint in ONNX and TVM against PyTorch autograd) and a child-sum "
        "tree-LSTM over random trees (ours against per-node PyTorch); outputs and gradients "
        "cross-checked first; results as JSON under benchmarks/results/.",
    )
    p.add_argument("--quick", action="store_true", help="a small sweep (a few minutes at most)")
    p.add_argument(
        "-o", "--output", help="JSON path (default benchmarks/results/bench[_quick].json)"
    )
    p.add_argument(
        "--update-readme",
        action="store_true",
        help="only regenerate the performance page's table (docs/performance.md) from "
        "committed JSON (see --results)",
    )
    p.add_argument("--readme", help="page to update after running (default docs/performance.md)")
    p.add_argument("--results", action="append", help="JSON files for the README table")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "demo",
        help="the main job: build, check and time models end to end",
        description="Build recurrent models, check them against onnxruntime's "
        "own operators, time them, save them and draw them.",
    )
    p.add_argument("--out", default="rnngraph-demo", help="folder for what the demo writes")
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str | os.PathLike[str]] | None = None) -> int:
    """Entry point of the ``rnngraph`` console script (``argv`` may hold paths, as
    ``rg.save`` returns them)."""
    args = build_parser().parse_args(None if argv is None else [os.fspath(a) for a in argv])
    try:
        return int(args.func(args))
    except GraphError as e:
        print(f"rnngraph {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (rnngraph inspect ... | head): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # (so that flushing at exit does not fail)
        return 0
    except OSError as e:  # a file that cannot be read or written: one line, not a traceback
        where = f": {e.filename}" if e.filename else ""
        print(f"rnngraph {args.command}: {e.strerror or e}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def reference() -> str:
    """The command line's reference as Markdown: every verb's ``--help`` (the guide's
    CLI page is this text; a test keeps it current)."""
    import os

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"  # (argparse wraps to the terminal's width: fix one)
    try:
        return _reference(build_parser())
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _reference(parser: argparse.ArgumentParser) -> str:
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = [
        "# The command line",
        "",
        "Every verb of `rnngraph`, as its `--help` prints it (generated from the parser by",
        "`rnngraph.tools.cli.reference()`).",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
    ]
    for name, p in subs.choices.items():
        out += ["", f"## rnngraph {name}", "", "```text", p.format_help().rstrip(), "```"]
    return "\n".join(out) + "\n"
