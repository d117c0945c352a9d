"""Optimizers over parameter dicts: SGD (with momentum), Adam; gradient clipping by norm.

An optimizer is a small object with ``step(params, grads) -> params``
(a new dict; the old one is untouched) and its own state.

Examples
--------
>>> import numpy as np
>>> opt = SGD(0.1, momentum=0.9)
>>> p = opt.step({"w": np.ones(2)}, {"w": np.ones(2)})
>>> p["w"].tolist()
[0.9, 0.9]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SGD", "Adam", "clip_by_norm", "global_norm"]

Params = Mapping[str, np.ndarray]


def global_norm(grads: Params) -> float:
    """The L2 norm of all gradients together."""
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads.values())))


def clip_by_norm(grads: Params, max_norm: float) -> dict[str, np.ndarray]:
    """Scale ``grads`` so that their global norm is at most ``max_norm``."""
    norm = global_norm(grads)
    scale = 1.0 if norm <= max_norm or norm == 0 else max_norm / norm
    return {k: g * scale for k, g in grads.items()}


@dataclass
class SGD:
    """``v = momentum * v + g``; ``p -= lr * v`` (plain SGD with momentum 0)."""

    lr: float
    momentum: float = 0.0
    velocity: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> dict[str, np.ndarray]:
        out = {}
        for k, p in params.items():
            g = grads.get(k)
            if g is None:
                out[k] = p
                continue
            if self.momentum:
                v = self.momentum * self.velocity.get(k, np.zeros_like(g)) + g
                self.velocity[k] = v
                g = v
            out[k] = (p - self.lr * g).astype(p.dtype)
        return out


@dataclass
class Adam:
    """Adam (Kingma & Ba) with bias correction."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    v: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> dict[str, np.ndarray]:
        self.t += 1
        out = {}
        c1, c2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t
        for k, p in params.items():
            g = grads.get(k)
            if g is None:
                out[k] = p
                continue
            m = self.beta1 * self.m.get(k, np.zeros_like(g)) + (1 - self.beta1) * g
            v = self.beta2 * self.v.get(k, np.zeros_like(g)) + (1 - self.beta2) * g * g
            self.m[k], self.v[k] = m, v
            out[k] = (p - self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)).astype(p.dtype)
        return out
