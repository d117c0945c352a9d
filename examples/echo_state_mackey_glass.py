"""An echo-state network predicts the Mackey-Glass series one step ahead.

The reservoir is a recurrent graph with fixed random weights (spectral
radius below 1, so it has the echo-state property); only the linear readout
is fitted, by ridge regression on the reservoir states that ``rg.run``
returns. The series comes from integrating the Mackey-Glass delay
differential equation here (tau = 17, the classic chaotic setting).

Run: ``python examples/echo_state_mackey_glass.py [--plot esn.png]``
"""

from __future__ import annotations

import argparse

import numpy as np

import rnngraph as rg


def mackey_glass(n: int, tau: int = 17, dt: float = 1.0, seed: int = 0) -> np.ndarray:
    """``dx/dt = 0.2 x(t - tau) / (1 + x(t - tau)^10) - 0.1 x(t)``, Euler with 10 substeps."""
    rng = np.random.default_rng(seed)
    sub = 10
    h = dt / sub
    lag = tau * sub
    x = list(1.2 + 0.01 * rng.standard_normal(lag + 1))
    out = []
    for i in range(n * sub + 1000 * sub):
        xt, xl = x[-1], x[-1 - lag]
        x.append(xt + h * (0.2 * xl / (1 + xl**10) - 0.1 * xt))
        if i >= 1000 * sub and i % sub == 0:
            out.append(x[-1])
    return np.asarray(out[:n])


def reservoir(units: int, leak: float = 0.3) -> rg.Graph:
    """A leaky-integrator reservoir: ``h = (1-a) h(t-1) + a tanh(u W_in + h(t-1) W + b)``."""
    g = rg.Graph("esn")
    u = g.input("u", 1)
    h = g.state("h", units)
    pre = rg.linear(u, units, name="in") + rg.linear(h, units, bias=False, name="res")
    h_new = (1.0 - leak) * h + leak * rg.tanh(pre)
    g.assign(h, h_new)
    g.output("states", h_new)
    return g


def fixed_weights(g: rg.Graph, radius: float = 0.9, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = g.init_params(seed=seed, dtype="float64")
    W = rng.standard_normal(p["res.W"].shape) * (rng.random(p["res.W"].shape) < 0.1)
    p["res.W"] = W * (radius / np.max(np.abs(np.linalg.eigvals(W))))
    p["in.W"] = rng.uniform(-0.5, 0.5, p["in.W"].shape)
    p["in.b"] = rng.uniform(-0.2, 0.2, p["in.b"].shape)
    return p


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=300)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--plot", help="draw prediction vs truth to this PNG (needs matplotlib)")
    args = ap.parse_args(argv)

    series = mackey_glass(args.steps + 1)
    series = (series - series.mean()) / series.std()
    inputs, targets = series[:-1], series[1:]
    g = reservoir(args.units)
    params = fixed_weights(g)
    states = rg.run(g, {"u": inputs.reshape(-1, 1, 1)}, params)["states"][:, 0]

    washout, split = 200, int(0.7 * len(inputs))
    X = np.hstack([states, np.ones((len(states), 1))])
    A, y = X[washout:split], targets[washout:split]
    readout = np.linalg.solve(A.T @ A + 1e-6 * np.eye(A.shape[1]), A.T @ y)
    pred = X[split:] @ readout
    nrmse = float(np.sqrt(np.mean((pred - targets[split:]) ** 2)) / np.std(targets[split:]))
    naive = float(
        np.sqrt(np.mean((inputs[split:] - targets[split:]) ** 2)) / np.std(targets[split:])
    )
    print(f"reservoir of {args.units} units, {split - washout} training steps")
    print(
        f"one-step NRMSE on held-out steps: {nrmse:.4f}  (repeat-last-value baseline: {naive:.4f})"
    )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 3))
        ax.plot(targets[split : split + 400], label="Mackey-Glass")
        ax.plot(pred[:400], "--", label="echo-state prediction")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")
    return {"nrmse": nrmse, "baseline_nrmse": naive}


if __name__ == "__main__":
    main()
