"""ONNX's own node conformance cases through rnngraph: the table in docs/onnx-conformance.md.

Every node case shipped with the ``onnx`` package (``onnx.backend.test.case.node``: a
model, its inputs and the expected outputs) is imported with :func:`rnngraph.import_onnx`
and, when it imports, compiled and run on each engine (the reference interpreter,
onnxruntime through our ONNX backend, TVM) with the original model's interface, then
compared with ONNX's expected outputs. A case is *passed*, *refused* (a typed error that
names the reason: the op or the form rnngraph does not take) or *wrong* (a failure of
ours: the test suite keeps this at zero for the reference engine).

Cases whose inputs are not all tensors of numbers (ONNX sequences and optionals,
strings) are counted as such and not run. A model with no op that runs over time is read
as rows, or whole, when its inputs cannot be sequences (``rg.import_onnx``'s ``layout``).

Usage::

    python tools/onnx_conformance.py            # every engine; writes the table and JSON
    python tools/onnx_conformance.py --engines reference,onnx --quick
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import rnngraph as rg

ROOT = Path(__file__).resolve().parents[1]
RECURRENT = ("LSTM", "GRU", "RNN")
ALIASES = {
    "simplernn": "RNN",
    "sce": "SoftmaxCrossEntropyLoss",
    "nllloss": "NegativeLogLikelihoodLoss",
    "batchnorm": "BatchNormalization",
    "instancenorm": "InstanceNormalization",
    "tril": "Trilu",
    "triu": "Trilu",
    "strnormalizer": "StringNormalizer",
    "trainingdropout": "Dropout",
    "l1normalization": "LpNormalization",
    "edgepad": "Pad",
    "reflectpad": "Pad",
    "wrappad": "Pad",
    "aionnxml": "ai.onnx.ml ops",
}
"""Case names that do not start with their op's name."""


def op_of(case: Any) -> str:
    """The ONNX operator a case tests: the longest op name its case name starts with."""
    stem = case.name.removeprefix("test_").replace("_", "").lower()
    ops = {s.name.lower(): s.name for s in onnx.defs.get_all_schemas()} | ALIASES
    best = max((k for k in ops if stem.startswith(k)), key=len, default=None)
    return ops[best] if best else case.name


def tensor_cases() -> tuple[list[Any], dict[str, int]]:
    """The cases whose inputs are tensors of numbers or booleans, and per op the number
    of the others (ONNX sequences or optionals, strings)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    out, other = [], defaultdict(int)
    for c in cases:
        if not c.data_sets:
            continue
        ins, outs = c.data_sets[0]
        arrays = list(ins) + list(outs)
        ok = ins and all(isinstance(a, np.ndarray) for a in arrays)
        if ok and all(a.dtype.kind in "fiub" for a in ins):
            out.append(c)
        else:
            other[op_of(c)] += 1
    return out, dict(other)


def run_case(case: Any, engines: list[str]) -> dict[str, str]:
    """``{engine: "passed" | "wrong" | "refused: <reason>"}`` for one case."""
    model = case.model
    ins, outs = case.data_sets[0]
    feeds = {i.name: a for i, a in zip(model.graph.input, ins, strict=False)}
    expected = {o.name: e for o, e in zip(model.graph.output, outs, strict=True)}
    try:
        g, p = rg.import_onnx(model)
    except rg.GraphError as e:
        return {k: f"refused: {reason(e)}" for k in engines}
    result = {}
    for engine in engines:
        try:
            got = rg.compile(g, target=engine, params=p).run(feeds)
        except rg.GraphError as e:
            result[engine] = f"refused: {reason(e)}"
            continue
        except Exception as e:  # (a crash is a failure of ours, reported as such)
            result[engine] = f"wrong: {type(e).__name__}: {str(e)[:120]}"
            continue
        right = list(got) == list(expected) and all(
            np.shape(got[k]) == np.shape(v)
            and np.allclose(got[k], v, rtol=1e-3, atol=1e-5, equal_nan=True)
            for k, v in expected.items()
        )
        result[engine] = "passed" if right else "wrong"
    return result


def reason(e: Exception) -> str:
    """An error's reason without the node's name: what to group refusals by."""
    text = str(e).splitlines()[0]
    text = re.sub(r"cannot import \w+ node '[^']*': (\(as ONNX defines it\) )?", "", text)
    text = re.sub(r"^\w+ at \S+:\d+: ", "", text)  # (an op's error names where it was made)
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"\([^()]*\)", "(…)", text)
    return text.strip()[:90]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="reference,onnx,tvm")
    ap.add_argument("--quick", action="store_true", help="the recurrent ops' cases only")
    ap.add_argument("--out", default=str(ROOT / "docs" / "onnx-conformance"))
    args = ap.parse_args(argv)
    engines = args.engines.split(",")
    cases, other = tensor_cases()
    if args.quick:
        cases = [c for c in cases if op_of(c) in (*RECURRENT, "Scan")]
    rows: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for i, case in enumerate(sorted(cases, key=lambda c: c.name)):
        op = op_of(case)
        row = rows.setdefault(op, {"cases": 0, "results": {}, "reasons": defaultdict(int)})
        row["cases"] += 1
        res = run_case(case, engines)
        row["results"][case.name] = res
        for r in set(res.values()):  # (a case refused the same way by every engine: once)
            if r.startswith("refused: "):
                row["reasons"][r.removeprefix("refused: ")] += 1
        print(f"\r{i + 1}/{len(cases)} {case.name[:50]:50s}", end="", file=sys.stderr)
    print(f"\n{time.perf_counter() - started:.0f} s", file=sys.stderr)
    table = {
        "engines": engines,
        "onnx": onnx.__version__,
        "ops": {
            op: {
                "cases": r["cases"],
                "passed": {
                    e: sum(v[e] == "passed" for v in r["results"].values()) for e in engines
                },
                "wrong": {
                    e: sorted(k for k, v in r["results"].items() if v[e].startswith("wrong"))
                    for e in engines
                },
                "refused": dict(sorted(r["reasons"].items(), key=lambda kv: -kv[1])),
                "cases_by_name": r["results"],
            }
            for op, r in sorted(rows.items())
        },
        "not_tensors": other,
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    out.with_suffix(".md").write_text(markdown(table))
    print(out.with_suffix(".md"))
    return 0


def markdown(table: dict[str, Any]) -> str:
    engines = table["engines"]
    ops = table["ops"]
    lines = [
        "# ONNX conformance cases",
        "",
        "ONNX's own node test cases (shipped in the `onnx` package, version "
        f"{table['onnx']}) imported with `rg.import_onnx`, compiled for each engine with the "
        "original model's interface and compared with ONNX's expected outputs "
        "(`python tools/onnx_conformance.py` writes this page and its JSON). A case is passed, "
        "or refused with a typed error naming why; a wrong answer is a bug (none on the "
        "reference engine: `tests/test_onnx_conformance.py`).",
        "",
        "Every case whose inputs are tensors of numbers is run. A model is read as "
        "sequences (`(T, B, ...)`, or as its ops lay them out); one with no op that runs "
        "over time (`LSTM`, `GRU`, `RNN`, `Scan`, `Loop`) whose inputs cannot be sequences "
        "(a rank-0 or rank-1 input, an op along the first two axes) is read as one step of "
        "a batch of rows (its first axis the batch), else whole, each input one row of one "
        'step (`rg.import_onnx(..., layout="rows" | "whole")`). Cases with other inputs '
        "(ONNX sequences and optionals, strings) are counted under *not tensors*.",
        "",
    ]
    total = {e: sum(o["passed"][e] for o in ops.values()) for e in engines}
    n = sum(o["cases"] for o in ops.values())
    wrong = {e: sum(len(o["wrong"][e]) for o in ops.values()) for e in engines}
    lines += [
        f"**{n} cases run**: passed "
        + ", ".join(f"{e} {total[e]}" for e in engines)
        + "; wrong "
        + ", ".join(f"{e} {wrong[e]}" for e in engines)
        + f"; not tensors: {sum(table['not_tensors'].values())}.",
        "",
    ]
    head = "| op | cases | " + " | ".join(engines) + " | why the others are refused |"
    lines += [head, "|" + "---|" * (len(engines) + 3)]
    first = (*RECURRENT, "Scan")
    order = sorted(ops, key=lambda k: (k not in first, -max(ops[k]["passed"].values()), k))
    for op in order:
        o = ops[op]
        why = "; ".join(f"{r} ({c})" for r, c in list(o["refused"].items())[:2])
        cells = [
            f"{o['passed'][e]}" + (f" ({len(o['wrong'][e])} wrong)" if o["wrong"][e] else "")
            for e in engines
        ]
        lines.append(f"| {op} | {o['cases']} | " + " | ".join(cells) + f" | {why} |")
    lines += ["", "Not tensors (cases per op): " + ", ".join(
        f"{k} {v}" for k, v in sorted(table["not_tensors"].items())
    ) + ".", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
