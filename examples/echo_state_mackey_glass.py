"""An echo-state network predicts the Mackey-Glass series one step ahead.

The reservoir is ``rg.cells.esn``, a recurrent graph with fixed random weights
(spectral radius below 1, so it has the echo-state property); only the linear
readout is fitted, in closed form by ``rg.fit_readout`` (ridge regression on the
reservoir states). ``benchmarks/esn_mackey_glass.py`` compares it with
reservoirpy. The series comes from integrating the Mackey-Glass delay
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


def reservoir(units: int, leak: float = 0.3, seed: int = 1) -> rg.Graph:
    """``rg.cells.esn``: ``h = (1-a) h(t-1) + a tanh(u W_in + h(t-1) W + b)`` with fixed
    random weights (spectral radius 0.9), and a linear readout fitted afterwards."""
    g = rg.Graph("esn")
    h = rg.cells.esn(
        g.input("u", 1),
        units,
        leak=leak,
        spectral_radius=0.9,
        input_scaling=0.5,
        input_connectivity=1.0,
        bias_scaling=0.2,
        seed=seed,
    )
    g.output("y", rg.linear(h, 1, name="readout"))
    return g


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=300)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--plot", help="draw prediction vs truth to this PNG (needs matplotlib)")
    args = ap.parse_args(argv)

    series = mackey_glass(args.steps + 1)
    series = (series - series.mean()) / series.std()
    inputs, targets = series[:-1].reshape(-1, 1, 1), series[1:].reshape(-1, 1, 1)
    g = reservoir(args.units)
    washout, split = 200, int(0.7 * len(inputs))
    params = rg.fit_readout(g, {"u": inputs[:split]}, targets[:split], warmup=washout)
    pred = rg.run(g, {"u": inputs}, params)["y"][split:, 0, 0]
    truth = targets[split:, 0, 0]
    nrmse = float(np.sqrt(np.mean((pred - truth) ** 2)) / np.std(truth))
    naive = float(np.sqrt(np.mean((inputs[split:, 0, 0] - truth) ** 2)) / np.std(truth))
    print(f"reservoir of {args.units} units, {split - washout} training steps")
    print(
        f"one-step NRMSE on held-out steps: {nrmse:.4f}  (repeat-last-value baseline: {naive:.4f})"
    )
    if args.plot:
        n = min(400, len(truth))
        rg.plot.line_chart(
            {"Mackey-Glass": truth[:n], "echo-state prediction": pred[:n]},
            args.plot,
            title="one step ahead",
        )
        print(f"wrote {args.plot}")
    return {"nrmse": nrmse, "baseline_nrmse": naive}


if __name__ == "__main__":
    main()
