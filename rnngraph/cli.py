"""The ``rnngraph`` command line: ``inspect``, ``draw``, ``run``, ``demo``.

Every verb has ``--help``. A FILE is a saved graph (``model.json`` with its
``model.npz``) or a Python file with a function that returns a graph
(``models.py:build``; without ``:name``, a function called ``build``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnngraph.errors import GraphError
from rnngraph.graph import Graph

__all__ = ["load_graph_file", "main"]


def load_graph_file(spec: str) -> tuple[Graph, dict[str, np.ndarray] | None]:
    """A graph (and saved params, if any) from a ``.json`` file or ``file.py[:function]``."""
    from rnngraph.serialize import load, load_params

    path, func = spec.rsplit(":", 1) if ".py:" in spec else (spec, "")
    p = Path(path)
    if p.suffix == ".py":
        if not p.exists():
            raise GraphError(f"no such file: {p}")
        module_spec = importlib.util.spec_from_file_location(p.stem, p)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        fn = getattr(module, func or "build", None)
        if fn is None:
            raise GraphError(f"{p} has no function {func or 'build'!r} that returns a graph")
        result = fn()
        graph, params = result if isinstance(result, tuple) else (result, None)
        if not isinstance(graph, Graph):
            raise GraphError(f"{p}:{func or 'build'} returned {type(graph).__name__}, not a Graph")
        return graph, params
    graph = load(p)
    return graph, (load_params(p) or None)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from rnngraph.drawing import draw
    from rnngraph.summary import format_summary, summarize

    graph, params = load_graph_file(args.file)
    info = summarize(graph, params)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print(format_summary(info, nodes=not args.brief))
    for path in args.draw or []:
        print(f"drew {draw(graph, path)}", file=sys.stderr)
    return 0


def _cmd_draw(args: argparse.Namespace) -> int:
    from rnngraph.drawing import draw

    graph, _ = load_graph_file(args.file)
    print(draw(graph, args.output))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from rnngraph.interpreter import run

    graph, params = load_graph_file(args.file)
    if params is None:
        params = graph.init_params(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    feeds: dict[str, Any] = {}
    if args.inputs:
        with np.load(args.inputs, allow_pickle=False) as z:
            feeds = {k: z[k] for k in z.files}
    else:
        for name, t in graph.inputs.items():
            feeds[name] = rng.standard_normal((args.steps, args.batch, *t.row_shape)).astype(
                np.float32
            )
    out = run(graph, feeds, params)
    for k, v in out.items():
        print(
            f"{k:<24} shape {v.shape!s:<16} mean {float(np.mean(v)):+.5f}  "
            f"max|.| {float(np.max(np.abs(v), initial=0)):.5f}"
        )
    if args.output:
        np.savez(args.output, **out)  # type: ignore[arg-type]
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from rnngraph.demo import demo

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
    p.add_argument("file", help="model.json, or models.py[:function]")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--brief", action="store_true", help="leave out the per-node listing")
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
    p.set_defaults(func=_cmd_draw)

    p = sub.add_parser(
        "run",
        help="run a graph with the reference interpreter",
        description="Run a graph on inputs from an .npz file (time-major arrays "
        "named as the graph's inputs) or on random inputs.",
    )
    p.add_argument("file", help="model.json, or models.py[:function]")
    p.add_argument("--inputs", help=".npz file of input sequences")
    p.add_argument("--steps", type=int, default=10, help="steps of random input (default 10)")
    p.add_argument("--batch", type=int, default=2, help="batch of random input (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs and params")
    p.add_argument("-o", "--output", help="write the outputs to this .npz file")
    p.set_defaults(func=_cmd_run)

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnngraph`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GraphError as e:
        print(f"rnngraph {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
