"""rg.cells.attention against PyTorch (scaled_dot_product_attention for the dot
forms, the additive form written out), with masks; inside a decoder over a
per-sequence memory on every backend and step model; gradients against finite
differences."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo
from tests.gradcheck import check_gradients

B, S, H, Q = 4, 6, 5, 3
LENS = np.array([6, 2, 4, 1])


def one_step(kind: str) -> rg.Graph:
    g = rg.Graph(f"att_{kind}")
    memory = g.input("memory", ("S", H), axis=None)
    mask = g.input("mask", ("S",), axis=None)
    h = g.input("h", H if kind == "dot" else Q)
    ctx, weights = rg.cells.attention(h, memory, kind=kind, mask=mask, units=7, name="att")
    g.output("ctx", ctx)
    g.output("weights", weights)
    return g


def _data(seed=0):
    rng = np.random.default_rng(seed)
    memory = rng.standard_normal((B, S, H))
    mask = (np.arange(S)[None, :] < LENS[:, None]).astype(np.float64)
    memory = memory * mask[..., None]  # (padding past each row's length, as an encoder gives)
    return rng, memory, mask


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_attention_against_pytorch(kind):
    torch = pytest.importorskip("torch", reason="PyTorch is a test extra (pip install .[bench])")
    import torch.nn.functional as F

    g = one_step(kind)
    p = {k: v.astype(np.float64) for k, v in zoo.params_for(g, 1).items()}
    rng, memory, mask = _data()
    h = rng.standard_normal((3, B, H if kind == "dot" else Q))  # three steps of queries
    out = rg.run(g, {"memory": memory, "mask": mask, "h": h}, p)
    mem = torch.tensor(memory)
    keep = torch.tensor(mask > 0)
    for t in range(3):
        q = torch.tensor(h[t])
        if kind == "general":
            q = q @ torch.tensor(p["att.W"])
        if kind in ("dot", "general"):
            want = F.scaled_dot_product_attention(
                q[:, None, None, :],
                mem[:, None],
                mem[:, None],
                attn_mask=keep[:, None, None, :],
                scale=1.0,
            )[:, 0, 0]
            scores = (mem @ q[:, :, None])[..., 0]
        else:
            keys = mem @ torch.tensor(p["att.Wk"])
            query = q @ torch.tensor(p["att.q.W"]) + torch.tensor(p["att.q.b"])
            scores = torch.tanh(keys + query[:, None, :]) @ torch.tensor(p["att.v"])
            w = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
            want = (w[:, :, None] * mem).sum(1)
        weights = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
        np.testing.assert_allclose(out["ctx"][t], want.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out["weights"][t], weights.numpy(), rtol=1e-12, atol=1e-12)
    assert (out["weights"][:, mask == 0] == 0).all()  # masked positions weigh exactly 0


def test_a_row_with_an_empty_memory_gets_a_zero_context():
    g = one_step("additive")
    p = zoo.params_for(g)
    _, memory, mask = _data(1)
    mask[2] = 0
    out = rg.run(g, {"memory": memory, "mask": mask, "h": np.ones((2, B, Q))}, p)
    assert (out["ctx"][:, 2] == 0).all() and (out["weights"][:, 2] == 0).all()
    assert np.isfinite(out["ctx"]).all()


def test_the_memory_length_is_the_data_s():
    g = one_step("dot")
    for s in (1, 3, 9):
        m = np.ones((2, s, H))
        out = rg.run(g, {"memory": m, "mask": np.ones((2, s)), "h": np.zeros((1, 2, H))})
        np.testing.assert_allclose(out["weights"], 1.0 / s)


def decoder(kind: str = "additive") -> rg.Graph:
    """A decoder attending over a per-sequence memory, starting from a per-sequence h0."""
    g = rg.Graph("decoder")
    memory = g.input("memory", ("S", H), axis=None)
    mask = g.input("mask", ("S",), axis=None)
    h0 = g.input("h0", H, axis=None)
    y_prev = g.input("y_prev", 2)
    h = g.state("h", H, init=h0)
    ctx, weights = rg.cells.attention(h, memory, kind=kind, mask=mask, name="att")
    new = rg.tanh(rg.linear(rg.concat([y_prev, ctx, h]), H, name="dec"))
    g.assign(h, new)
    g.output("y", rg.linear(rg.concat([new, ctx]), 2, name="out"))
    g.output("weights", weights)
    return g


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
@pytest.mark.parametrize("kind", ["dot", "additive"])
def test_a_decoder_with_attention_on_every_backend(target, kind):
    g = decoder(kind)
    p = zoo.params_for(g, 2)
    m = rg.compile(g, target=target, params=p, threads=1)
    zoo.check_model(g, p, m)
    step = rg.compile(g, target=target, params=p, mode="step", threads=1)
    rng, memory, mask = _data(3)
    xs = {
        "memory": memory.astype("float32"),
        "mask": mask.astype("float32"),
        "h0": rng.standard_normal((B, H)).astype("float32"),
        "y_prev": rng.standard_normal((5, B, 2)).astype("float32"),
    }
    ref = rg.run(g, xs, p)
    zoo.assert_close(m.run(xs), ref)
    zoo.assert_close(step.stream(xs), ref)
    lens = np.array([5, 0, 3, 1])
    zoo.assert_close(m.run(xs, sequence_lens=lens), rg.run(g, xs, p, sequence_lens=lens))


def test_decoder_gradients_against_finite_differences():
    """Through the attention, the memory (summed over the steps) and the state's start."""
    check_gradients(decoder("additive"), seed=5)
    check_gradients(decoder("dot"), seed=6, sequence_lens=np.array([6, 2]))


def test_bad_attention_arguments():
    g = rg.Graph("bad")
    memory = g.input("memory", ("S", H), axis=None)
    h = g.input("h", Q)
    with pytest.raises(rg.ShapeError, match="dot scores need"):
        rg.cells.attention(h, memory, kind="dot")
    with pytest.raises(ValueError, match="kind must be one of"):
        rg.cells.attention(h, memory, kind="cosine")
    with pytest.raises(rg.ShapeError, match="the mask must be"):
        rg.cells.attention(h, memory, mask=g.input("m", 4, axis=None), name="a2")
    with pytest.raises(rg.ShapeError, match="memory must be"):
        rg.cells.attention(h, h, name="a3")
    assert sorted(g.params) == []  # nothing left behind by the failed calls


@pytest.mark.slow
def test_the_tvm_backend_s_softmax_rules():
    """softmax and log_softmax over either axis, inside a loop and over whole sequences."""
    g = rg.Graph("softmaxes")
    x = g.input("x", (3, 4))
    h = g.state("h", (3, 4))
    g.assign(h, rg.tanh(rg.softmax(x + h, -2) + x))
    g.output("a", rg.softmax(x * 3.0, -1))
    g.output("b", rg.log_softmax(x - h, -1))
    g.output("c", rg.log_softmax(x, -2))
    p = zoo.params_for(g)
    zoo.check_model(g, p, rg.compile(g, target="tvm", params=p))
