"""A structural summary of a graph: interface, params, states, delays, components.

Examples
--------
>>> import rnngraph as rg
>>> g = rg.Graph("acc")
>>> x = g.input("x", 2)
>>> s = g.state("s", 2)
>>> g.assign(s, s + x)
>>> g.output("y", s)
>>> info = summarize(g)
>>> info["states"][0]["delay"], [r["kind"] for r in info["regions"]]
(1, ['time-parallel', 'recurrent'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.ir.graph import Graph
from rnngraph.ir.structure import cyclic_components, fir_taps, regions
from rnngraph.ir.types import format_shape
from rnngraph.ir.verify import verify
from rnngraph.program.axes import is_staged, split
from rnngraph.program.schedule import CellRegion, Program, RecurrentRegion

__all__ = ["describe_program", "format_program", "format_summary", "summarize"]


def summarize(graph: Graph, params: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """A JSON-ready description of ``graph`` (and of ``params`` when given)."""
    verify(graph)
    g = graph.nx_graph
    name = {n: d["name"] for n, d in g.nodes(data=True)}
    param_rows = []
    for p, t in graph.params.items():
        count = int(np.prod(t.row_shape, dtype=np.int64))
        nbytes = int(params[p].nbytes) if params and p in params else count * 4
        param_rows.append({"name": p, "shape": list(t.row_shape), "count": count, "bytes": nbytes})
    states = []
    for s, nid in graph.state_nodes().items():
        ((u, delay, init),) = graph.operands(nid)
        states.append(
            {
                "name": s,
                "shape": format_shape(g.nodes[nid]["type"].shape),
                "delay": delay,
                "init": init.kind,
                "assigned_from": name[u],
            }
        )
    region_rows = []
    for r in regions(graph):
        kind = "recurrent" if r.recurrent else "time-parallel"
        row: dict[str, Any] = {"kind": kind, "nodes": [name[n] for n in r.nodes]}
        if r.recurrent:
            row["direction"] = "forward" if r.direction > 0 else "backward"
            row["feedback"] = [
                {"from": name[u], "to": name[v], "delay": d}
                for u, v, d in g.subgraph(r.nodes).edges(data="delay")
                if d
            ]
        region_rows.append(row)
    sccs = [sorted(name[n] for n in c) for c in cyclic_components(g)]
    per_seq = graph.per_sequence_inputs
    axes = []
    if is_staged(graph):  # one stage per sequence axis, in the order they run
        staging = split(graph)
        for st in staging.stages:
            axes.append(
                {
                    "axis": st.axis,
                    "inputs": sorted(set(st.graph.inputs) - set(st.reads)),
                    "reads": {r: staging.crossings[r].kind for r in st.reads},
                    "gives": {r: staging.crossings[r].kind for r in st.gives},
                    "nodes": st.graph.nx_graph.number_of_nodes(),
                    "per_sequence": st.per_sequence,
                }
            )
    return {
        "name": graph.name,
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "inputs": {
            k: format_shape(t.shape) + (" per sequence" if k in per_seq else "")
            for k, t in graph.inputs.items()
        },
        "axes": axes,
        "outputs": {k: format_shape(t.shape) for k, t in graph.outputs.items()},
        "states": states,
        "params": param_rows,
        "param_count": sum(r["count"] for r in param_rows),
        "param_bytes": sum(r["bytes"] for r in param_rows),
        "strongly_connected_components": sorted(sccs),
        "regions": region_rows,
        "fir_taps": [{"from": name[u], "to": name[v], "delay": d} for u, v, d in fir_taps(graph)],
        "node_list": [
            {
                "name": d["name"],
                "op": d["op"],
                "type": str(d["type"]),
                "operands": [
                    f"{name[u]}" + (f"@z^{-dl}" if dl else "") for u, dl, _ in graph.operands(n)
                ],
            }
            for n, d in sorted(g.nodes(data=True))
        ],
    }


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def format_summary(info: Mapping[str, Any], *, nodes: bool = True) -> str:
    """The summary as text for a terminal."""
    out = [f"graph {info['name']!r}: {info['nodes']} nodes, {info['edges']} edges"]
    out.append("inputs:  " + ", ".join(f"{k} {v}" for k, v in info["inputs"].items()))
    out.append("outputs: " + ", ".join(f"{k} {v}" for k, v in info["outputs"].items()))
    if info.get("axes"):
        count = sum(not a.get("per_sequence") for a in info["axes"])
        out.append(f"sequence axes ({count}), in the order they run:")
        for a in info["axes"]:
            reads = ", ".join(f"{k} ({v})" for k, v in a["reads"].items()) or "-"
            gives = ", ".join(f"{k} ({v})" for k, v in a["gives"].items()) or "-"
            once = " (once per sequence: the states' start values)" if a.get("per_sequence") else ""
            out.append(
                f"  {a['axis']}{once}: inputs {', '.join(a['inputs']) or '-'}; reads {reads}; "
                f"gives {gives}; {a['nodes']} nodes"
            )
    out.append(f"states ({len(info['states'])}):")
    for s in info["states"]:
        out.append(
            f"  {s['name']} {s['shape']}  delay {s['delay']}, init {s['init']}, "
            f"assigned from {s['assigned_from']}"
        )
    out.append(
        f"params ({len(info['params'])}): {info['param_count']:,} values, "
        f"{_bytes(info['param_bytes'])}"
    )
    for p in info["params"]:
        out.append(f"  {p['name']} {tuple(p['shape'])}  {p['count']:,} values")
    out.append(
        f"strongly connected components with cycles ({len(info['strongly_connected_components'])}):"
    )
    for c in info["strongly_connected_components"]:
        out.append("  {" + ", ".join(c) + "}")
    out.append("regions, in execution order:")
    for r in info["regions"]:
        if r["kind"] == "recurrent":
            fb = ", ".join(f"{f['from']}->{f['to']} (delay {f['delay']})" for f in r["feedback"])
            out.append(f"  recurrent, {r['direction']}: {len(r['nodes'])} nodes; feedback {fb}")
        else:
            out.append(f"  time-parallel: {r['nodes'][0]}")
    out.append(f"finite-impulse taps ({len(info['fir_taps'])}):")
    for t in info["fir_taps"]:
        out.append(f"  {t['from']} -> {t['to']}  delay {t['delay']}")
    if nodes:
        out.append("nodes:")
        for n in info["node_list"]:
            ops = ", ".join(n["operands"])
            out.append(f"  {n['name']:<24} {n['op']:<12} {n['type']:<20} <- {ops}")
    return "\n".join(out)


def describe_program(program: Program) -> dict[str, Any]:
    """A JSON-ready description of a schedule: what each region will run as."""
    g = program.graph.nx_graph
    name = {n: d["name"] for n, d in g.nodes(data=True)}
    rows: list[dict[str, Any]] = []
    for r in program.regions:
        if isinstance(r, CellRegion):
            m = r.match
            rows.append(
                {
                    "kind": f"native {m.kind}",
                    "nodes": len(m.nodes),
                    "direction": "forward" if m.direction > 0 else "reverse",
                    "hidden": m.hidden,
                    "activations": list(m.activations),
                    "input": name[m.x],
                    "weights": {k: name[v] for k, v in m.weights.items()},
                }
            )
        elif isinstance(r, RecurrentRegion):
            rows.append(
                {
                    "kind": "loop",
                    "nodes": len(r.nodes),
                    "direction": "forward" if r.direction > 0 else "backward",
                    "carries": [f"{name[c.source]} (delay {c.delay})" for c in r.carries],
                    "reads": [name[n] for n in r.inputs],
                    "taps": [f"{name[t.source]} (delay {t.delay})" for t in r.taps],
                    "exports": [name[n] for n in r.exports],
                }
            )
        elif g.nodes[r.node]["op"] != "input":
            rows.append({"kind": "parallel", "node": name[r.node], "op": g.nodes[r.node]["op"]})
    return {
        "graph": program.graph.name,
        "static_nodes": len(program.static),
        "after_loops": [name[n] for n in program.post],
        "taps": [f"{name[t.source]} -> {name[t.consumer]} (delay {t.delay})" for t in program.taps],
        "regions": rows,
    }


def format_program(info: Mapping[str, Any]) -> str:
    """The schedule as text: one line per region, loops and native cells spelled out."""
    out = [f"schedule of {info['graph']!r}: {info['static_nodes']} time-invariant nodes first"]
    parallel = 0
    for r in info["regions"]:
        if r["kind"] == "parallel":
            parallel += 1
            continue
        if parallel:
            out.append(f"  {parallel} op(s) over whole sequences")
            parallel = 0
        if r["kind"] == "loop":
            out.append(
                f"  loop, {r['direction']}: {r['nodes']} nodes; carries {', '.join(r['carries'])}"
                + (f"; taps {', '.join(r['taps'])}" if r["taps"] else "")
            )
        else:
            out.append(
                f"  {r['kind']} ({r['direction']}, hidden {r['hidden']}, "
                f"{'/'.join(r['activations'])}) on {r['input']}: replaces {r['nodes']} nodes"
            )
    if parallel:
        out.append(f"  {parallel} op(s) over whole sequences")
    if info["after_loops"]:
        out.append(f"  after the loops: {len(info['after_loops'])} node(s) (sums over steps)")
    if info["taps"]:
        out.append("finite-impulse taps (shifted copies): " + "; ".join(info["taps"]))
    return "\n".join(out)
