"""Multi-timescale and smaller cells against numpy loops written here: clockwork,
hrnn (clocked and by boundaries), the neural history compressor, the recurrent MLP,
the minimal gated unit, Dey & Salem's GRU variants, Jordan's decaying context; the
IndRNN bound kept by training."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

T, B, I = 13, 3, 2
RNG = np.random.default_rng(0)
X = RNG.standard_normal((T, B, I))
sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731


def lin(p, name, v):
    return v @ p[f"{name}.W"] + p.get(f"{name}.b", 0.0)


def _run(build, xs=None, **feeds):
    g = rg.Graph("cell")
    out = build(g, g.input("x", I), **{k: g.input(k, v.shape[2:]) for k, v in feeds.items()})
    for i, v in enumerate(out if isinstance(out, tuple) else (out,)):
        g.output(f"y{i}", v)
    p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, 3).items()}
    return p, rg.run(g, {"x": X, **feeds}, p)


def test_clockwork() -> None:
    periods = (1, 2, 4)
    p, out = _run(lambda g, x: rg.cells.clockwork(x, 6, periods=periods, name="cw"))
    hs = [np.zeros((B, 2)) for _ in periods]
    for t in range(T):
        new = []
        for i, k in enumerate(periods):
            slower = np.concatenate(hs[i:], -1)
            pre = lin(p, f"cw.in{i}", X[t]) + slower @ p[f"cw.rec{i}.W"]
            new.append(np.tanh(pre) if t % k == k - 1 else hs[i])
        hs = new
        np.testing.assert_allclose(out["y0"][t], np.concatenate(hs, -1), atol=1e-12)


@pytest.mark.parametrize("by", ["clock", "boundary"])
def test_hrnn(by: str) -> None:
    ends = (RNG.random((T, B, 1)) < 0.3).astype(float)
    if by == "clock":
        p, out = _run(lambda g, x: rg.cells.hrnn(x, 4, upper_size=3, every=3, name="h"))
        tick = lambda t: np.full((B, 1), t % 3 == 2)  # noqa: E731
    else:
        p, out = _run(
            lambda g, x, ends: rg.cells.hrnn(x, 4, upper_size=3, boundary=ends, name="h"),
            ends=ends,
        )
        tick = lambda t: ends[t] > 0.5  # noqa: E731
    low, up = np.zeros((B, 4)), np.zeros((B, 3))
    for t in range(T):
        low = np.tanh(lin(p, "h.in", X[t]) + low @ p["h.rec.W"] + up @ p["h.down.W"])
        high = np.tanh(lin(p, "h.up", low) + up @ p["h.urec.W"])
        up = np.where(tick(t), high, up)
        np.testing.assert_allclose(out["y0"][t], low, atol=1e-12)
        np.testing.assert_allclose(out["y1"][t], up, atol=1e-12)
    assert 0 < np.mean(np.diff(out["y1"], axis=0) != 0) < 0.7  # held between ticks


def test_history_compressor() -> None:
    p, out = _run(lambda g, x: rg.cells.history_compressor(x, 5, chunker_size=3, threshold=0.8))
    a, c, guess = np.zeros((B, 5)), np.zeros((B, 3)), np.zeros((B, I))
    for t in range(T):
        surprise = np.abs(X[t] - guess).max(-1, keepdims=True) > 0.8
        ticked = np.tanh(lin(p, "compressor.cin", X[t]) + c @ p["compressor.crec.W"])
        c = np.where(surprise, ticked, c)
        pre = lin(p, "compressor.ain", X[t]) + a @ p["compressor.arec.W"]
        a = np.tanh(pre + c @ p["compressor.from_chunker.W"])
        guess = lin(p, "compressor.predict", a)
        np.testing.assert_allclose(out["y0"][t], guess, atol=1e-12)
        np.testing.assert_allclose(out["y1"][t], c, atol=1e-12)
        np.testing.assert_array_equal(out["y2"][t], surprise.astype(float))
    assert 0 < out["y2"].mean() < 1  # some steps surprise, some do not


def test_rmlp() -> None:
    p, out = _run(lambda g, x: rg.cells.rmlp(x, [4, 3], name="r"))
    hs = [np.zeros((B, 4)), np.zeros((B, 3))]
    for t in range(T):
        v = X[t]
        for i in range(2):
            hs[i] = np.tanh(lin(p, f"r.l{i}", v) + hs[i] @ p[f"r.l{i}.rec.W"])
            v = hs[i]
        np.testing.assert_allclose(out["y0"][t], v, atol=1e-12)


def test_mgu() -> None:
    p, out = _run(lambda g, x: rg.cells.mgu(x, 4, name="m"))
    h = np.zeros((B, 4))
    for t in range(T):
        f = sig(lin(p, "m.f", X[t]) + h @ p["m.fr.W"])
        c = np.tanh(lin(p, "m.c", X[t]) + (f * h) @ p["m.cr.W"])
        h = (1 - f) * h + f * c
        np.testing.assert_allclose(out["y0"][t], h, atol=1e-12)


@pytest.mark.parametrize("variant", [1, 2, 3])
def test_gru_variants(variant: int) -> None:
    p, out = _run(lambda g, x: rg.cells.gru_variant(x, 4, variant=variant, name="v"))
    h = np.zeros((B, 4))
    for t in range(T):
        if variant == 3:
            z, r = sig(p["v.z.b"]) + 0 * h, sig(p["v.r.b"]) + 0 * h
        else:
            z, r = sig(lin(p, "v.z", h)), sig(lin(p, "v.r", h))
        c = np.tanh(lin(p, "v.c", X[t]) + (r * h) @ p["v.cr.W"])
        h = (1 - z) * h + z * c
        np.testing.assert_allclose(out["y0"][t], h, atol=1e-12)
    assert ("v.z.b" in p) == (variant != 2)


def test_jordan_with_decaying_context() -> None:
    p, out = _run(lambda g, x: rg.cells.jordan(x, 5, 2, decay=0.6, name="j"))
    ctx = np.zeros((B, 2))
    for t in range(T):
        h = np.tanh(lin(p, "j.in", X[t]) + ctx @ p["j.rec.W"])
        y = lin(p, "j.out", h)
        ctx = 0.6 * ctx + y
        np.testing.assert_allclose(out["y0"][t], y, atol=1e-12)


def test_indrnn_bound_is_kept_by_training(tmp_path) -> None:
    bound = 2 ** (1 / 20)
    g = rg.Graph("ind")
    g.output("y", rg.linear(rg.cells.indrnn(g.input("x", I), 4, bound=bound), 1, name="o"))
    p = g.init_params(seed=0)
    p["indrnn.u"] = np.array([1.5, -1.5, 0.5, 0.2], np.float32)  # outside: pulled back
    data = [{"x": X.astype(np.float32), "t": 5 * np.ones((T, B, 1), np.float32)}]
    result = rg.train(
        g, p, data, loss=rg.losses.mse("t"), optimizer=rg.optim.SGD(0.1), epochs=3, progress=False
    )
    u = result.params["indrnn.u"]
    assert np.abs(u).max() <= bound + 1e-7
    assert np.isclose(np.abs(u).max(), bound)  # (the bound had work to do)
    path = tmp_path / "ind.rgraph"
    rg.save(g, path)
    assert rg.load(path).param_bounds == {"indrnn.u": pytest.approx(bound)}
