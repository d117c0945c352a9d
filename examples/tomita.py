"""Second-order recurrent nets learn the Tomita grammars; their automata are extracted.

For each of Tomita's seven regular languages over {0, 1} a second-order net
(``rg.cells.second_order``, Giles et al. 1992) is trained to say, after every
symbol, whether the string so far is in the language (mean squared error on a
sigmoid output, every prefix labelled). ``rg.extract_fsm`` then quantises its
hidden state space, explores it breadth-first and minimises the automaton found;
its language is compared with the grammar's on every string up to a length.

Run: ``python examples/tomita.py [--grammars 1 2 4] [--save benchmarks/results/tomita.json]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable
from itertools import groupby, pairwise
from pathlib import Path

import numpy as np

import rnngraph as rg


def _tomita3(s: tuple[int, ...]) -> bool:
    """No odd-length run of 1s immediately followed by an odd-length run of 0s."""
    runs = [(k, len(list(g))) for k, g in groupby(s)]
    return not any(a == 1 and n % 2 and b == 0 and m % 2 for (a, n), (b, m) in pairwise(runs))


def _tomita7(s: tuple[int, ...]) -> bool:
    """0*1*0*1*: at most three changes of symbol, starting with 0s."""
    changes = sum(1 for a, b in pairwise(s) if a != b) + (1 if s and s[0] == 1 else 0)
    return changes <= 3


TOMITA: dict[int, Callable[[tuple[int, ...]], bool]] = {
    1: lambda s: all(c == 1 for c in s),
    2: lambda s: len(s) % 2 == 0 and all(c == (1 - i % 2) for i, c in enumerate(s)),
    3: _tomita3,
    4: lambda s: "000" not in "".join(map(str, s)),
    5: lambda s: s.count(0) % 2 == 0 and s.count(1) % 2 == 0,
    6: lambda s: (s.count(0) - s.count(1)) % 3 == 0,
    7: _tomita7,
}
"""Tomita's (1982) languages, as membership tests on strings of 0s and 1s."""


def dataset(member, count: int, max_len: int, rng: np.random.Generator):
    """Strings (half drawn uniformly, half from the language) with every prefix labelled:
    one-hot inputs ``(T, N, 2)``, targets ``(T, N, 1)``, lengths ``(N,)``."""
    strings = []
    while len(strings) < count:
        n = int(rng.integers(1, max_len + 1))
        s = tuple(int(c) for c in rng.integers(0, 2, n))
        if len(strings) % 2 == 0 or member(s):
            strings.append(s)
    x = np.zeros((max_len, count, 2), np.float32)
    t = np.zeros((max_len, count, 1), np.float32)
    for b, s in enumerate(strings):
        x[np.arange(len(s)), b, list(s)] = 1.0
        t[: len(s), b, 0] = [member(s[: i + 1]) for i in range(len(s))]
    return x, t, np.array([len(s) for s in strings])


def tomita_graph(hidden: int) -> rg.Graph:
    g = rg.Graph("tomita")
    h = rg.cells.second_order(g.input("x", 2), hidden, name="so")
    g.output("accept", rg.sigmoid(rg.linear(h, 1, name="readout")))
    return g


def learn(grammar: int, args: argparse.Namespace) -> dict[str, float]:
    member = TOMITA[grammar]
    rng = np.random.default_rng(args.seed + grammar)
    x, t, lens = dataset(member, args.strings, args.max_len, rng)
    g = tomita_graph(args.hidden)
    p = {k: v * 3 for k, v in g.init_params(seed=args.seed + grammar).items()}
    batches = [
        {"x": x[:, i : i + 64], "t": t[:, i : i + 64], "sequence_lens": lens[i : i + 64]}
        for i in range(0, len(lens), 64)
    ]
    result = rg.train(
        g,
        p,
        batches,
        loss=rg.losses.mse("t"),
        optimizer=rg.optim.Adam(args.lr),
        epochs=args.epochs,
        progress=False,
    )
    out = rg.run(g, {"x": x}, result.params, sequence_lens=lens)["accept"]
    valid = np.arange(len(x))[:, None] < lens[None]
    accuracy = float(((out[..., 0] > 0.5) == (t[..., 0] > 0.5))[valid].mean())
    dfa = rg.extract_fsm(g, result.params, 2, bins=args.bins, accept_empty=member(()))
    if args.draw:
        fmt = "svg" if shutil.which("dot") else "dot"
        print(f"wrote {dfa.draw(Path(args.draw) / f'tomita{grammar}.{fmt}')}")
    agree = rg.tools.automata.language_agreement(dfa, member, args.check_len)
    return {
        "grammar": grammar,
        "final_loss": result.history.epoch_losses[-1],
        "prefix_accuracy": accuracy,
        "dfa_states": dfa.n_states,
        "language_agreement": agree,
    }


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grammars", type=int, nargs="+", default=list(TOMITA))
    ap.add_argument("--hidden", type=int, default=6)
    ap.add_argument("--strings", type=int, default=512)
    ap.add_argument("--max-len", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--bins", type=int, default=3)
    ap.add_argument("--check-len", type=int, default=12, help="compare languages up to this length")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", help="write the results to this JSON file")
    ap.add_argument("--draw", metavar="DIR", help="draw each extracted automaton here (.dot/.svg)")
    args = ap.parse_args(argv)
    rows = []
    t0 = time.perf_counter()
    for k in args.grammars:
        row = learn(k, args)
        rows.append(row)
        print(
            f"Tomita {k}: prefix accuracy {row['prefix_accuracy']:.3f}, extracted DFA of "
            f"{row['dfa_states']} states agrees on {100 * row['language_agreement']:.2f}% of "
            f"strings up to length {args.check_len} ({time.perf_counter() - t0:.0f} s)"
        )
    if args.save:
        doc = {"settings": vars(args), "rows": rows}
        rg.files.atomic_write(args.save, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.save}")
    return rows


if __name__ == "__main__":
    main()
