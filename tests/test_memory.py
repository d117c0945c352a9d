"""Memory-augmented cells against numpy written here from the papers' equations:
Grefenstette et al.'s continuous stack and queue (unbounded lists), the neural Turing
machine's addressing, reads and writes with its LSTM controller; every backend."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

T, B, D = 9, 2, 3
RNG = np.random.default_rng(0)
sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731


def numpy_stack(push, pop, values, queue=False):
    """Grefenstette et al. (2015), eqs. 1-3 (and the queue's), one row, lists growing."""
    V, s, reads = [], [], []
    for d, u, v in zip(push, pop, values, strict=True):
        order = range(len(s)) if queue else range(len(s) - 1, -1, -1)  # pop end first
        left, new = u, list(s)
        for i in order:
            take = min(new[i], left)
            new[i] -= take
            left -= take
        V.append(v)
        s = [*new, d]
        read, budget = np.zeros_like(v), 1.0
        for i in range(len(s)) if queue else range(len(s) - 1, -1, -1):
            w = min(s[i], budget)
            read = read + w * V[i]
            budget = max(0.0, budget - s[i])
        reads.append(read)
    return np.array(reads), np.array(s)


@pytest.mark.parametrize("kind", ["stack", "queue"])
def test_stack_and_queue_equations(kind: str) -> None:
    g = rg.Graph(kind)
    d, u, v = g.input("d", 1), g.input("u", 1), g.input("v", D)
    m = T + 2
    values, strengths = g.state("V", (m, D)), g.state("s", m)
    pointer = g.state("p", 1)
    new_v, new_s, read = rg.cells.memory.stack_memory(
        values, strengths, pointer, d, u, v, queue=kind == "queue"
    )
    g.assign(values, new_v)
    g.assign(strengths, new_s)
    g.assign(pointer, pointer + 1.0)
    g.output("r", read)
    feeds = {
        "d": RNG.uniform(0, 1, (T, B, 1)),
        "u": RNG.uniform(0, 1.5, (T, B, 1)),
        "v": RNG.standard_normal((T, B, D)),
    }
    out = rg.run(g, feeds, dtype="float64")
    for b in range(B):
        reads, s = numpy_stack(
            feeds["d"][:, b, 0], feeds["u"][:, b, 0], feeds["v"][:, b], queue=kind == "queue"
        )
        np.testing.assert_allclose(out["r"][:, b], reads, atol=1e-12)
        np.testing.assert_allclose(out["s_final"][b, :T], s, atol=1e-12)


def numpy_lstm(p, name, x, h, c):
    gates = x @ p[f"{name}.W"].T + h @ p[f"{name}.R"].T
    wb, rb = np.split(p[f"{name}.B"], 2)
    i, o, f, cc = np.split(gates + wb + rb, 4, axis=-1)
    c = sig(f) * c + sig(i) * np.tanh(cc)
    return sig(o) * np.tanh(c), c


def numpy_address(M, out, prev, W):
    key, beta = out[:, :W], softplus(out[:, W : W + 1])
    gate, shift = sig(out[:, W + 1 : W + 2]), out[:, W + 2 : W + 5]
    shift = np.exp(shift - shift.max(-1, keepdims=True))
    shift /= shift.sum(-1, keepdims=True)
    gamma = 1 + softplus(out[:, W + 5 : W + 6])
    cos = np.einsum("bnw,bw->bn", M, key) / (
        np.sqrt((M * M).sum(-1) + 1e-8) * np.sqrt((key * key).sum(-1, keepdims=True) + 1e-8)
    )
    z = beta * cos
    content = np.exp(z - z.max(-1, keepdims=True))
    content /= content.sum(-1, keepdims=True)
    w = gate * content + (1 - gate) * prev
    w = sum(np.roll(w, k, axis=-1) * shift[:, j : j + 1] for j, k in enumerate((-1, 0, 1)))
    w = (np.maximum(w, 0) + 1e-8) ** gamma
    return w / w.sum(-1, keepdims=True)


def test_ntm_against_numpy() -> None:
    N, W, H, I = 6, 4, 5, 3
    g = rg.Graph("ntm")
    out, reads = rg.cells.ntm(g.input("x", I), H, rows=N, width=W, read_heads=2, name="n")
    g.output("h", out)
    g.output("r", reads)
    p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, 1).items()}
    x = RNG.standard_normal((T, B, I))
    got = rg.run(g, {"x": x}, p)
    lin = lambda name, v: v @ p[f"{name}.W"] + p[f"{name}.b"]  # noqa: E731
    M = np.full((B, N, W), 1e-6)
    wr = [np.tile(np.eye(N)[0], (B, 1)) for _ in range(2)]
    ww = np.tile(np.eye(N)[0], (B, 1))
    h, c, last = np.zeros((B, H)), np.zeros((B, H)), np.zeros((B, 2 * W))
    for t in range(T):
        h, c = numpy_lstm(p, "n.controller", np.concatenate([x[t], last], -1), h, c)
        rs = []
        for i in range(2):
            wr[i] = numpy_address(M, lin(f"n.read{i}", h), wr[i], W)
            rs.append(np.einsum("bn,bnw->bw", wr[i], M))
        o = lin("n.write", h)
        ww = numpy_address(M, o, ww, W)
        erase, add = sig(o[:, W + 6 : 2 * W + 6]), np.tanh(o[:, 2 * W + 6 :])
        M = M * (1 - ww[:, :, None] * erase[:, None]) + ww[:, :, None] * add[:, None]
        last = np.concatenate(rs, -1)
        np.testing.assert_allclose(got["h"][t], h, atol=1e-12)
        np.testing.assert_allclose(got["r"][t], last, atol=1e-12)
    np.testing.assert_allclose(got["n.memory_final"], M, atol=1e-12)


def test_bad_options() -> None:
    g = rg.Graph("bad")
    with pytest.raises(rg.GraphError, match="kind must be"):
        rg.cells.neural_stack(g.input("x", 2), 4, kind="deque")
    with pytest.raises(rg.ShapeError, match="rows"):
        rg.cells.ntm(g.input("y", 2), 4, rows=0)


def numpy_content(M, key, strength):
    cos = np.einsum("bnw,bw->bn", M, key) / (
        np.sqrt((M * M).sum(-1) + 1e-8) * np.sqrt((key * key).sum(-1, keepdims=True) + 1e-8)
    )
    z = strength * cos
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_allocation(u):
    """Graves et al. (2016): a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i], phi sorting u."""
    a = np.zeros_like(u)
    for b in range(len(u)):
        prod = 1.0
        grid = np.floor(np.clip(u[b], 0, 1) * 4096)  # (ties within 2^-12: by row index)
        for j in np.argsort(grid, kind="stable"):
            a[b, j] = (1 - u[b, j]) * prod
            prod *= min(max(u[b, j], 0.0), 1.0) + 1e-8
    return a


def test_dnc_against_numpy() -> None:
    N, W, H, I, R = 5, 3, 6, 2, 2
    g = rg.Graph("dnc")
    out, reads = rg.cells.dnc(g.input("x", I), H, rows=N, width=W, read_heads=R, name="d")
    g.output("h", out)
    g.output("r", reads)
    p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, 2).items()}
    x = RNG.standard_normal((T, B, I))
    got = rg.run(g, {"x": x}, p)
    oneplus = lambda v: 1 + softplus(v)  # noqa: E731
    M, u, L, prec = np.zeros((B, N, W)), np.zeros((B, N)), np.zeros((B, N, N)), np.zeros((B, N))
    ww, wr = np.zeros((B, N)), [np.zeros((B, N)) for _ in range(R)]
    h, c, last = np.zeros((B, H)), np.zeros((B, H)), np.zeros((B, R * W))
    for t in range(T):
        h, c = numpy_lstm(p, "d.controller", np.concatenate([x[t], last], -1), h, c)
        iface = h @ p["d.interface.W"] + p["d.interface.b"]
        cuts = np.cumsum([0, R * W, R, W, 1, W, W, R, 1, 1, 3 * R])
        rk, rs, wk, wst, e, v, f, ga, gw, modes = (
            iface[:, a:b] for a, b in itertools.pairwise(cuts)
        )
        e, f, ga, gw = sig(e), sig(f), sig(ga), sig(gw)
        psi = np.prod([1 - f[:, i : i + 1] * wr[i] for i in range(R)], axis=0)
        u = (u + ww - u * ww) * psi
        ww = gw * (ga * numpy_allocation(u) + (1 - ga) * numpy_content(M, wk, oneplus(wst)))
        M = M * (1 - ww[:, :, None] * e[:, None]) + ww[:, :, None] * v[:, None]
        L = (1 - ww[:, :, None] - ww[:, None, :]) * L + ww[:, :, None] * prec[:, None, :]
        L = L * (1 - np.eye(N))
        prec = (1 - ww.sum(-1, keepdims=True)) * prec + ww
        rs_out = []
        for i in range(R):
            fwd = np.einsum("bij,bj->bi", L, wr[i])
            bwd = np.einsum("bji,bj->bi", L, wr[i])
            cont = numpy_content(M, rk[:, i * W : (i + 1) * W], oneplus(rs[:, i : i + 1]))
            pi = np.exp(modes[:, 3 * i : 3 * i + 3])
            pi /= pi.sum(-1, keepdims=True)
            wr[i] = pi[:, :1] * bwd + pi[:, 1:2] * cont + pi[:, 2:] * fwd
            rs_out.append(np.einsum("bn,bnw->bw", wr[i], M))
        last = np.concatenate(rs_out, -1)
        np.testing.assert_allclose(got["h"][t], h, atol=1e-12)
        np.testing.assert_allclose(got["r"][t], last, atol=1e-12)
    np.testing.assert_allclose(got["d.links_final"], L, atol=1e-12)
    np.testing.assert_allclose(got["d.usage_final"], u, atol=1e-12)
    assert u.max() > 0.1  # the memory is used
