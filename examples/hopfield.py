"""A 100-unit Hopfield network: Hebbian storage, recall to a fixed point, Glauber dynamics,
and its capacity measured against the known ~0.14 N.

Patterns ``xi`` (random +-1 vectors) are stored by Hebb's rule, ``W = xi^T xi / N``
with a zero diagonal. A probe (a stored pattern with 20 % of its bits flipped) is
a per-sequence input; recall runs inside one step with ``rg.fixed_point``:

* synchronous: every unit at once, ``z <- sign(z W)``, until no bit changes (a row
  that falls into a 2-cycle is reported: its iteration count reaches ``max_iter``);
* asynchronous: one unit after another within a sweep (``z_i <- sign(z . W_i)``),
  sweeps repeated until one changes nothing — the energy falls at every flip, so
  it always converges;

and over a sequence axis with Glauber's stochastic dynamics, ``z_i = +1`` with
probability ``sigmoid(2 beta h_i)``, drawn with ``rg.random`` (the same seed draws
the same numbers in every backend). The capacity curve stores ``P = alpha N``
patterns for a range of ``alpha`` and measures how well they are recalled; the
overlap collapses near Amit, Gutfreund and Sompolinsky's ``alpha_c = 0.138``.

Run: ``python examples/hopfield.py [--units 100] [--plot capacity.png]``
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import rnngraph as rg
from rnngraph.plot import line_chart

ALPHA_C = 0.138


def build(n: int, *, asynchronous: bool, max_iter: int = 30) -> rg.Graph:
    """Recall to a fixed point (``rg.cells.hopfield``, param ``W``) on the per-sequence
    probe: it runs once per probe, before any step."""
    g = rg.Graph("hopfield_async" if asynchronous else "hopfield_sync")
    probe = g.input("probe", n, axis=None)
    g.input("step", 0)  # (T, B, 0): the outputs' steps (one is enough)
    mode = "async" if asynchronous else "sync"
    z, count = rg.cells.hopfield(
        probe, n, mode=mode, max_iter=max_iter, iterations=True, name="hop"
    )
    g.output("z", z)
    g.output("iterations", count)
    return g


def glauber(n: int, beta: float) -> rg.Graph:
    """Synchronous Glauber dynamics over a sequence: z(t) = +-1 at random, P(+1) =
    sigmoid(2 beta z(t-1) W), starting from the probe."""
    g = rg.Graph("glauber")
    probe = g.input("probe", n, axis=None)
    g.input("step", 0)
    g.output("z", rg.cells.hopfield(probe, n, mode="glauber", beta=beta, name="hop"))
    return g


def threshold(alphas: np.ndarray, overlaps: list[float], level: float) -> float:
    """Where the overlap first falls below ``level`` (linear between the two alphas around
    it): the measured capacity."""
    for i in range(1, len(alphas)):
        if overlaps[i] < level <= overlaps[i - 1]:
            a0, a1, m0, m1 = alphas[i - 1], alphas[i], overlaps[i - 1], overlaps[i]
            return float(a0 + (a1 - a0) * (m0 - level) / (m0 - m1))
    return float(alphas[-1] if overlaps[-1] >= level else alphas[0])


def flipped(patterns: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    out = patterns.copy()
    k = round(share * patterns.shape[1])
    for row in out:
        row[rng.choice(len(row), k, replace=False)] *= -1
    return out


def recall(g: rg.Graph, W: np.ndarray, probes: np.ndarray, **kw: Any) -> dict[str, np.ndarray]:
    B = len(probes)
    out = rg.run(g, {"probe": probes, "step": np.zeros((1, B, 0), np.float32)}, {"hop.W": W}, **kw)
    return {k: v[-1] for k, v in out.items() if not k.endswith("_final")}


def overlap(z: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    return np.abs((z * patterns).mean(axis=1))


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--patterns", type=int, default=8, help="stored for the recall demo")
    ap.add_argument("--flip", type=float, default=0.2, help="share of flipped bits in a probe")
    ap.add_argument("--trials", type=int, default=4, help="pattern sets per capacity point")
    ap.add_argument("--plot", default="hopfield_capacity.png", help="the capacity curve")
    args = ap.parse_args(argv)
    n, rng = args.units, np.random.default_rng(0)

    patterns = rng.choice([-1.0, 1.0], (args.patterns, n)).astype(np.float32)
    W = rg.hebbian(patterns)
    probes = flipped(patterns, args.flip, rng)
    print(f"{n} units, {args.patterns} patterns, probes with {args.flip:.0%} of bits flipped")
    result: dict[str, object] = {}
    for mode in ("sync", "async"):
        out = recall(build(n, asynchronous=mode == "async"), W, probes)
        m = overlap(out["z"], patterns)
        result[f"{mode}_overlap"] = float(m.mean())
        result[f"{mode}_iterations"] = float(out["iterations"].mean())
        print(
            f"{mode:>5} fixed point: overlap {m.mean():.3f} (min {m.min():.3f}), "
            f"{out['iterations'].mean():.1f} iterations"
        )
    steps = 20
    gl = glauber(n, beta=4.0)
    B = len(probes)
    feeds = {"probe": probes, "step": np.zeros((steps, B, 0), np.float32)}
    z = rg.run(gl, feeds, {"hop.W": W}, seed=1)["z"][-1]
    same = rg.compile(gl, target="onnx", params={"hop.W": W}).run(feeds, seed=1)["z"][-1]
    m = overlap(z, patterns)
    result["glauber_overlap"] = float(m.mean())
    result["glauber_onnx_identical"] = bool(np.array_equal(z, same))
    print(
        f"Glauber (beta 4, {steps} steps): overlap {m.mean():.3f}; onnxruntime draws the same: "
        f"{np.array_equal(z, same)}"
    )

    # Capacity: store P = alpha N patterns, recall each (asynchronously) from itself and
    # from a flipped copy; the mean final overlap against alpha.
    alphas = np.round(np.arange(0.02, 0.301, 0.02), 2)
    g_async = build(n, asynchronous=True)
    stable, from_noise = [], []
    for alpha in alphas:
        P = max(1, round(alpha * n))
        m_stable, m_noise = [], []
        for _ in range(args.trials):
            xi = rng.choice([-1.0, 1.0], (P, n)).astype(np.float32)
            Wa = rg.hebbian(xi)
            m_stable.append(overlap(recall(g_async, Wa, xi)["z"], xi).mean())
            m_noise.append(
                overlap(recall(g_async, Wa, flipped(xi, args.flip, rng))["z"], xi).mean()
            )
        stable.append(float(np.mean(m_stable)))
        from_noise.append(float(np.mean(m_noise)))
        print(
            f"alpha {alpha:.2f} (P={P:3d}): overlap from the pattern {stable[-1]:.3f}, "
            f"from {args.flip:.0%} flipped {from_noise[-1]:.3f}"
        )
    capacity = threshold(alphas, stable, 0.95)
    print(
        f"measured capacity {capacity:.3f} N (overlap from the pattern falls below 0.95; "
        f"theory: {ALPHA_C} N for large N)"
    )
    if args.plot:
        line_chart(
            {"recall from the pattern": stable, f"recall from {args.flip:.0%} flipped": from_noise},
            args.plot,
            title=f"Hopfield capacity, N = {n}: measured {capacity:.3f} N",
            xlabel="alpha = stored patterns / units",
            ylabel="mean overlap after recall",
            x=alphas.tolist(),
            vline=(ALPHA_C, f"alpha_c = {ALPHA_C} (large N)"),
        )
        print(f"wrote {args.plot}")
    result.update(alphas=alphas.tolist(), stable=stable, from_noise=from_noise, capacity=capacity)
    return result


if __name__ == "__main__":
    main()
