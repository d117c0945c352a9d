"""A long fuzz run of the loaders: mutated saved graphs and ONNX files, each loaded.

Every load must give a valid graph or a typed rnngraph error (``GraphError``), never
another exception, a crash or a hang (each load runs under a 10 s alarm). The test
suite runs a few dozen mutations (tests/test_bad_input.py); this runs thousands and
writes what happened to ``benchmarks/results/fuzz_loaders.json``::

    python tools/fuzz_loaders.py --files 10000
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rnngraph as rg  # noqa: E402
from rnngraph.files import atomic_write  # noqa: E402
from tests import zoo  # noqa: E402
from tests.fuzzing import mutate_bytes, mutate_json  # noqa: E402


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang


def _outcome(load: Callable[[], object]) -> str:
    signal.alarm(10)
    try:
        load()
        return "loaded"
    except rg.GraphError as e:
        return f"typed: {type(e).__name__}"
    except _Hang:
        return "HANG"
    except Exception as e:  # what the run is looking for
        return f"UNTYPED: {type(e).__name__}: {str(e)[:120]}"
    finally:
        signal.alarm(0)


def _graph_case(folder: Path, text: str, npz: bytes, rng: np.random.Generator) -> str:
    doc = json.loads(text)
    for _ in range(int(rng.integers(1, 4))):
        kind = ["flip", "cut", "drop", "set"][int(rng.integers(4))]
        if kind in ("drop", "set"):
            doc = mutate_json(doc, rng, kind)
        else:
            npz = mutate_bytes(npz, rng, kind)
            if isinstance(doc, dict) and rng.random() < 0.9:
                doc.pop("npz_sha256", None)  # (else the hash refuses the archive at once)
    (folder / "f.json").write_text(json.dumps(doc))
    (folder / "f.npz").write_bytes(npz)
    return _outcome(lambda: (rg.load(folder / "f.json"), rg.load_params(folder / "f.json")))


def _onnx_case(folder: Path, data: bytes, rng: np.random.Generator) -> str:
    for _ in range(int(rng.integers(1, 4))):
        kind = ["flip", "cut", "drop", "set", "shape"][int(rng.integers(5))]
        if kind in ("flip", "cut"):
            data = mutate_bytes(data, rng, kind)
            continue
        m = onnx.ModelProto()
        try:
            m.ParseFromString(data)
        except Exception:
            continue
        nodes, inits = m.graph.node, m.graph.initializer
        if kind == "drop" and nodes:
            node = nodes[int(rng.integers(len(nodes)))]
            if node.input:
                del node.input[int(rng.integers(len(node.input)))]
        elif kind == "set" and nodes:
            node = nodes[int(rng.integers(len(nodes)))]
            node.op_type = str(nodes[int(rng.integers(len(nodes)))].op_type)
        elif kind == "shape" and inits:
            t = inits[int(rng.integers(len(inits)))]
            if t.dims:
                t.dims[int(rng.integers(len(t.dims)))] = int(rng.choice([0, 1, 7, 10**6]))
        data = m.SerializeToString()
    (folder / "f.onnx").write_bytes(data)
    return _outcome(lambda: rg.import_onnx(folder / "f.onnx"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="mutated files per loader")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/fuzz_loaders.json"))
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    rng = np.random.default_rng(args.seed)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        sources = {}
        for name in ("narx", "bidirectional_lstm", "state_delay_2"):
            g = zoo.CELLS[name]()
            p = zoo.params_for(g)
            src = Path(g.save(folder / name, p))
            onnx_bytes = rg.compile(g, target="onnx", params=p).model.SerializeToString()
            sources[name] = (src.read_text(), (folder / f"{name}.npz").read_bytes(), onnx_bytes)
        for loader in ("graph files (rg.load, rg.load_params)", "ONNX files (rg.import_onnx)"):
            counts: Counter[str] = Counter()
            t0 = time.perf_counter()
            for i in range(args.files):
                text, npz, data = sources[list(sources)[i % len(sources)]]
                if loader.startswith("graph"):
                    counts[_graph_case(folder, text, npz, rng)] += 1
                else:
                    counts[_onnx_case(folder, data, rng)] += 1
                if (i + 1) % 1000 == 0:
                    print(f"{loader}: {i + 1}/{args.files}", dict(counts), file=sys.stderr)
            results[loader] = {
                "files": args.files,
                "seconds": round(time.perf_counter() - t0, 1),
                "outcomes": dict(counts.most_common()),
                "untyped_or_hangs": sum(
                    n for k, n in counts.items() if k.startswith(("UNTYPED", "HANG"))
                ),
            }
    report = {"seed": args.seed, "rnngraph": rg.__version__, "results": results}
    atomic_write(args.out, json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
