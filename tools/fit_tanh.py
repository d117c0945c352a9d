"""Fit the rational tanh of ``backends/rnngraph_tvm/_math.py`` and check it in float32.

``tanh x ~ x P(x^2) / Q(x^2)`` on ``|x| <= 9`` (beyond, float32's tanh is
+-1), ``P`` of degree 6 and ``Q`` of degree 3 with ``Q(0) = 1``, fitted for
the least maximum relative error by linearised least squares (each pass
divides by the last pass's ``Q``) with Lawson's weights (each pass
multiplies a point's weight by its error), in double precision on a dense
grid, ``x^2`` scaled to [0, 1] so the system stays well conditioned.
Prints the coefficients and the error of the float32 formula against
numpy's double tanh (about 6e-9 relative for the fit itself; float32
evaluation brings it to a few units in the last place).

Run: ``python tools/fit_tanh.py``
"""

from __future__ import annotations

import numpy as np

CLAMP = 9.0
P_DEGREE, Q_DEGREE = 6, 3


def fit(passes: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``(p, q)``, lowest degree first, ``q[0] = 1``."""
    x = np.unique(np.concatenate([np.linspace(0, CLAMP, 20000), np.geomspace(1e-4, CLAMP, 5000)]))
    y = x * x
    u = y / CLAMP**2
    f = np.ones_like(x)
    f[x > 0] = np.tanh(x[x > 0]) / x[x > 0]  # tanh(x) / x as a function of y
    a = np.concatenate(
        [
            np.vander(u, P_DEGREE + 1, increasing=True),
            -f[:, None] * np.vander(u, Q_DEGREE + 1, increasing=True)[:, 1:],
        ],
        axis=1,
    )
    weight, q_last = np.ones_like(u), np.ones_like(u)
    for _ in range(passes):
        scale = np.sqrt(weight) / (f * q_last)
        coef, *_ = np.linalg.lstsq(a * scale[:, None], f * scale, rcond=None)
        p_u, q_u = coef[: P_DEGREE + 1], np.concatenate([[1.0], coef[P_DEGREE + 1 :]])
        q_last = np.polynomial.polynomial.polyval(u, q_u)
        err = np.abs(np.polynomial.polynomial.polyval(u, p_u) / q_last / f - 1)
        weight = weight * err / err.max() + 1e-300
        weight /= weight.sum()
    p = p_u / CLAMP ** (2 * np.arange(P_DEGREE + 1))
    q = q_u / CLAMP ** (2 * np.arange(Q_DEGREE + 1))
    return p, q


def tanh32(x: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The formula as the kernel evaluates it, in float32 (Horner)."""
    x = np.clip(x.astype(np.float32), np.float32(-CLAMP), np.float32(CLAMP))
    y = x * x
    num = np.float32(p[-1])
    for c in p[-2::-1]:
        num = num * y + np.float32(c)
    den = np.float32(q[-1])
    for c in q[-2::-1]:
        den = den * y + np.float32(c)
    return x * num / den


def main() -> None:
    p, q = fit()
    print("P =", ", ".join(repr(float(np.float32(c))) for c in p))
    print("Q =", ", ".join(repr(float(np.float32(c))) for c in q))
    xs = np.concatenate([np.linspace(-20, 20, 400001), np.geomspace(1e-30, 1, 2000)])
    xs = xs.astype(np.float32)
    ref = np.tanh(xs.astype(np.float64))
    got = tanh32(xs, p, q).astype(np.float64)
    print(f"float32: max abs error {np.abs(got - ref).max():.3g}, ", end="")
    print(f"max relative error {(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)).max():.3g}")


if __name__ == "__main__":
    main()
