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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SGD", "Adam", "clip_by_norm", "cosine_decay", "global_norm", "step_decay"]

Params = Mapping[str, np.ndarray]
Rate = float | Callable[[int], float]
"""A learning rate: a number, or a schedule ``update index (0, 1, ...) -> rate``."""


def _rate(lr: Rate, t: int) -> float:
    return float(lr(t)) if callable(lr) else float(lr)


def step_decay(lr: float, every: int, factor: float = 0.5) -> Callable[[int], float]:
    """``lr`` times ``factor`` after every ``every`` updates.

    >>> [step_decay(1.0, 2)(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    return lambda t: lr * factor ** (t // every)


def cosine_decay(lr: float, updates: int, floor: float = 0.0) -> Callable[[int], float]:
    """From ``lr`` down to ``floor`` along half a cosine over ``updates`` updates.

    >>> round(cosine_decay(1.0, 10)(5), 3), cosine_decay(1.0, 10)(20)
    (0.5, 0.0)
    """
    return lambda t: float(
        floor + (lr - floor) * 0.5 * (1 + np.cos(np.pi * min(t, updates) / updates))
    )


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
    """``v = momentum * v + g``; ``p -= lr * v`` (plain SGD with momentum 0). ``lr`` may be
    a schedule (:func:`step_decay`, :func:`cosine_decay`, any ``update -> rate``)."""

    lr: Rate
    momentum: float = 0.0
    velocity: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    t: int = 0

    def step(self, params: Params, grads: Params) -> dict[str, np.ndarray]:
        lr = _rate(self.lr, self.t)
        self.t += 1
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
            out[k] = (p - lr * g).astype(p.dtype)
        return out


@dataclass
class Adam:
    """Adam (Kingma & Ba) with bias correction; ``lr`` may be a schedule."""

    lr: Rate = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    v: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> dict[str, np.ndarray]:
        lr = _rate(self.lr, self.t)
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
            out[k] = (p - lr * (m / c1) / (np.sqrt(v / c2) + self.eps)).astype(p.dtype)
        return out
