"""Losses as graphs: the built-in ones against PyTorch (values and gradients, with
sequence lengths), losses of one's own (with a mask), sums of losses, bad losses."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg

torch = pytest.importorskip("torch")
F = torch.nn.functional
T, B, I, O = 5, 3, 2, 4
RNG = np.random.default_rng(0)


def graph() -> rg.Graph:
    g = rg.Graph("m")
    g.output("y", rg.linear(rg.cells.rnn(g.input("x", I), 6, name="r"), O, name="out"))
    return g


def _torch_run(g, p, x):
    """The graph's output, differentiable in torch (its params and input as leaves)."""
    P = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in p.items()}
    X = torch.tensor(x)
    W, R, Bb = P["r.W"], P["r.R"], P["r.B"]
    h = torch.zeros(x.shape[1], 6, dtype=torch.float64)
    ys = []
    for t in range(len(x)):
        h = torch.tanh(X[t] @ W.T + h @ R.T + Bb[:6] + Bb[6:])
        ys.append(h @ P["out.W"] + P["out.b"])
    return torch.stack(ys), P


CASES = {
    "mse": (
        rg.losses.mse("t"),
        lambda y, t: ((y - t) ** 2).mean(-1),
        lambda: RNG.normal(size=(T, B, O)),
    ),
    "bce_logits": (
        rg.losses.binary_cross_entropy("t"),
        lambda y, t: F.binary_cross_entropy_with_logits(y, t, reduction="none").mean(-1),
        lambda: RNG.integers(0, 2, (T, B, O)).astype(float),
    ),
    "bce_probabilities": (
        rg.losses.binary_cross_entropy("t", logits=False),
        lambda y, t: F.binary_cross_entropy(y, t, reduction="none").mean(-1),
        lambda: RNG.uniform(0, 1, (T, B, O)),
    ),
    "softmax_xent": (
        rg.losses.softmax_cross_entropy("t"),
        lambda y, t: -(t * F.log_softmax(y, -1)).sum(-1),
        lambda: rg.losses.one_hot(RNG.integers(0, O, (T, B)), O, np.float64),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_builtin_losses_against_torch(case: str) -> None:
    loss, oracle, targets = CASES[case]
    g = graph()
    if case == "bce_probabilities":  # an output in (0, 1)
        g = rg.Graph("p")
        g.output(
            "y", rg.sigmoid(rg.linear(rg.cells.rnn(g.input("x", I), 6, name="r"), O, name="out"))
        )
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=1).items()}
    x, t = RNG.normal(size=(T, B, I)), targets()
    lens = np.array([5, 2, 4])
    value, grads = rg.value_and_grad(g, {"x": x, "t": t}, p, loss=loss, sequence_lens=lens)
    y, P = _torch_run(g, p, x)
    if case == "bce_probabilities":
        y = torch.sigmoid(y)
    per_step = oracle(y, torch.tensor(t))
    valid = torch.tensor(np.arange(T)[:, None] < lens[None])
    want = per_step[valid].sum() / valid.sum()
    want.backward()
    assert value == pytest.approx(float(want.detach()), rel=1e-10)
    for k, v in P.items():
        np.testing.assert_allclose(grads[k], v.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_a_loss_of_ones_own_with_a_mask() -> None:
    """Binary cross-entropy on the steps a mask marks, written as graph ops."""
    g = graph()
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=2).items()}

    def masked_bce(y, t, m):
        return m * rg.reduce_mean(rg.softplus(y) - t * y, keepdims=True)

    loss = rg.losses.loss(masked_bce, "t", extra=["mask"])
    x = RNG.normal(size=(T, B, I))
    t = RNG.integers(0, 2, (T, B, O)).astype(float)
    mask = RNG.integers(0, 2, (T, B, 1)).astype(float)
    value, grads = rg.value_and_grad(g, {"x": x, "t": t, "mask": mask}, p, loss=loss)
    assert "mask" not in grads and "t" not in grads
    y, P = _torch_run(g, p, x)
    per = F.binary_cross_entropy_with_logits(y, torch.tensor(t), reduction="none").mean(-1)
    want = (per * torch.tensor(mask[..., 0])).sum() / (T * B)
    want.backward()
    assert value == pytest.approx(float(want.detach()), rel=1e-10)
    np.testing.assert_allclose(grads["out.W"], P["out.W"].grad.numpy(), rtol=1e-8, atol=1e-12)


def test_losses_add_and_scale() -> None:
    g = graph()
    p = g.init_params(seed=3)
    feeds = {
        "x": RNG.normal(size=(T, B, I)).astype(np.float32),
        "t": RNG.integers(0, 2, (T, B, O)).astype(np.float32),
    }
    a, ga = rg.value_and_grad(g, feeds, p, loss=rg.losses.mse("t"))
    b, gb = rg.value_and_grad(g, feeds, p, loss=rg.losses.binary_cross_entropy("t"))
    both = rg.losses.mse("t") + 0.5 * rg.losses.binary_cross_entropy("t")
    c, gc = rg.value_and_grad(g, feeds, p, loss=both)
    assert c == pytest.approx(a + 0.5 * b, rel=1e-5)
    np.testing.assert_allclose(gc["out.W"], ga["out.W"] + 0.5 * gb["out.W"], rtol=1e-4, atol=1e-6)
    assert rg.losses.Loss("bce", "t").attach(g).outputs["loss"].row_shape == (1,)


def test_training_with_binary_cross_entropy() -> None:
    g = graph()
    x = RNG.normal(size=(T, 16, I)).astype(np.float32)
    t = (x[..., :1] > 0).astype(np.float32).repeat(O, -1)
    result = rg.train(
        g, g.init_params(seed=0), [{"x": x, "t": t}], loss=rg.losses.binary_cross_entropy("t"),
        optimizer=rg.optim.Adam(0.05), epochs=40, progress=False,
    )  # fmt: skip
    assert result.history.losses[-1] < 0.5 * result.history.losses[0]


def test_a_loss_of_the_wrong_shape_is_a_clear_error() -> None:
    g = graph()
    bad = rg.losses.loss(lambda y, t: y - t, name="diff")
    feeds = {"x": np.zeros((T, B, I)), "t": np.zeros((T, B, O))}
    with pytest.raises(rg.GraphError, match="must give \\(B, 1\\)"):
        rg.value_and_grad(g, feeds, g.init_params(), loss=bad)
    with pytest.raises(rg.GraphError, match="needs a function"):
        rg.losses.loss("mse")  # type: ignore[arg-type]


def test_ctc_loss_in_value_and_grad_against_torch() -> None:
    """CTC of the output's logits, each row to its own length, labels padded with -1:
    the value as torch's ctc_loss(reduction="sum") / B, gradients of every param."""
    g = graph()
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=4).items()}
    x = RNG.normal(size=(T, B, I))
    labels = np.array([[1, 2], [3, -1], [2, 2]])  # (a repeat needs a blank between)
    lens = np.array([5, 3, 5])
    loss = rg.losses.ctc_loss("labels", blank=0)
    value, grads = rg.value_and_grad(
        g, {"x": x, "labels": labels}, p, loss=loss, sequence_lens=lens
    )
    y, P = _torch_run(g, p, x)
    targets = torch.tensor([1, 2, 3, 2, 2])
    want = F.ctc_loss(
        F.log_softmax(y, -1), targets, torch.tensor(lens), torch.tensor([2, 1, 2]),
        blank=0, reduction="sum",
    ) / B  # fmt: skip
    want.backward()
    assert value == pytest.approx(float(want.detach()), rel=1e-9)
    for k, v in P.items():
        np.testing.assert_allclose(grads[k], v.grad.numpy(), rtol=1e-7, atol=1e-10)


def test_training_with_ctc() -> None:
    g = graph()
    x = RNG.normal(size=(T, 8, I)).astype(np.float32)
    labels = [[1 + (i % 3)] for i in range(8)]
    data = [{"x": x, "labels": labels}]
    result = rg.train(
        g, g.init_params(seed=0), data, loss=rg.losses.ctc_loss("labels"),
        optimizer=rg.optim.Adam(0.05), epochs=30, progress=False,
    )  # fmt: skip
    assert result.history.losses[-1] < 0.5 * result.history.losses[0]
