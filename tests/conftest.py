from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

import rnngraph as rg

# The same examples on every run: CI must not pass or fail by the draw.
settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.load_profile("deterministic")

# Kernels split over the cores run on two threads of TVM's pool whatever the machine (the
# pool reads this once; unset, it takes half the logical CPUs: one on a 2-vCPU machine),
# so that their barriers are exercised.
os.environ.setdefault("TVM_NUM_THREADS", "2")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def elman_graph(inp: int = 3, hidden: int = 5, out: int = 2) -> rg.Graph:
    """The quick-start Elman net: the canonical self-loop with delay 1."""
    g = rg.Graph("elman")
    x = g.input("x", inp)
    h = g.state("h", hidden)
    h_new = rg.tanh(rg.linear(x, hidden, name="in") + rg.linear(h, hidden, bias=False, name="rec"))
    g.assign(h, h_new)
    g.output("y", rg.linear(h_new, out, name="out"))
    return g


@pytest.fixture
def elman() -> rg.Graph:
    return elman_graph()
