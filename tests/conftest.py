from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import settings

import rnngraph as rg
from tests.zoo import elman_graph

# The same examples on every run: CI must not pass or fail by the draw.
settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.load_profile("deterministic")

# Kernels split over the cores run on two threads of TVM's pool whatever the machine (the
# pool reads this once; unset, it takes half the logical CPUs: one on a 2-vCPU machine),
# so that their barriers are exercised.
os.environ.setdefault("TVM_NUM_THREADS", "2")
# A TVM model uses every core by default, each call's work split by its batch (two kernels
# built for a model called with small and large batches): the suite's models run on one
# thread unless a test asks for more (threads=, parallel=), as the suite's processes
# already share the cores (pytest -n).
os.environ.setdefault("RNNGRAPH_THREADS", "1")
# Built TVM kernels are cached in the user's cache folder by default; the suite keeps its
# own (.ci/run gives each run a fresh folder; a run from a checkout uses one under the
# system's temporary folder, shared by the workers, never the user's cache).
os.environ.setdefault(
    "RNNGRAPH_TVM_KERNEL_CACHE", os.path.join(tempfile.gettempdir(), "rnngraph-test-kernels")
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def elman() -> rg.Graph:
    return elman_graph()
