"""Losses, optimizers, training loop and plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.training.losses import loss_value
from tests import zoo

T, B = 6, 3


def _fd_check(g, feeds, p, loss, **kw) -> None:
    value, grads = rg.value_and_grad(g, feeds, p, loss=loss, **kw)
    assert np.isclose(value, loss_value(g, feeds, p, loss, **kw))
    rng = np.random.default_rng(1)
    eps = 1e-6
    for name in p:
        v = rng.standard_normal(p[name].shape)
        plus = loss_value(g, feeds, {**p, name: p[name] + eps * v}, loss, **kw)
        minus = loss_value(g, feeds, {**p, name: p[name] - eps * v}, loss, **kw)
        want = (plus - minus) / (2 * eps)
        got = float(np.sum(grads[name] * v))
        assert abs(got - want) <= 1e-6 * max(abs(want), 1e-8), (name, got, want)


@pytest.mark.parametrize("lens", [None, np.array([6, 2, 4])])
def test_mse_and_cross_entropy_gradients(lens) -> None:
    g = zoo.CELLS["gru"]()
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=0).items()}
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((T, B, zoo.I))
    _fd_check(
        g, {"x": xs, "t": rng.standard_normal((T, B, 4))}, p, rg.losses.mse("t"), sequence_lens=lens
    )
    labels = rng.integers(0, 4, (T, B))
    feeds = {"x": xs, "t": rg.losses.one_hot(labels, 4, np.float64)}
    _fd_check(g, feeds, p, rg.losses.softmax_cross_entropy("t"), sequence_lens=lens)


def test_cross_entropy_value_against_numpy() -> None:
    g = zoo.CELLS["rnn"]()
    p = g.init_params(seed=0)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((T, B, zoo.I)).astype(np.float32)
    labels = rng.integers(0, 4, (T, B))
    lens = np.array([6, 1, 3])
    y = rg.run(g, {"x": xs}, p)["y"].astype(np.float64)
    logp = y - np.log(np.exp(y).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    valid = np.arange(T)[:, None] < lens[None, :]
    want = nll[valid].mean()
    feeds = {"x": xs, "t": rg.losses.one_hot(labels, 4)}
    got = loss_value(g, feeds, p, rg.losses.softmax_cross_entropy("t"), sequence_lens=lens)
    assert abs(got - want) < 1e-5


def test_adam_against_its_formula() -> None:
    opt = rg.optim.Adam(0.1, beta1=0.5, beta2=0.75, eps=1e-8)
    p = {"w": np.array([1.0, -2.0])}
    g1, g2 = np.array([0.5, -1.0]), np.array([0.25, 2.0])
    p1 = opt.step(p, {"w": g1})
    p2 = opt.step(p1, {"w": g2})
    m = 0.5 * (0.5 * g1) + 0.5 * g2
    v = 0.75 * (0.25 * g1**2) + 0.25 * g2**2
    want = p1["w"] - 0.1 * (m / (1 - 0.5**2)) / (np.sqrt(v / (1 - 0.75**2)) + 1e-8)
    np.testing.assert_allclose(p2["w"], want, rtol=1e-12)
    clipped = rg.optim.clip_by_norm({"a": np.array([3.0]), "b": np.array([4.0])}, 1.0)
    assert np.isclose(rg.optim.global_norm(clipped), 1.0)


def test_training_lowers_the_loss_and_plots_it(tmp_path) -> None:
    g = rg.Graph("delay_line")
    x = g.input("x", 1)
    g.output("y", rg.linear(rg.cells.gru(x, 8, name="gru"), 1, name="out"))
    rng = np.random.default_rng(0)

    def batches(epoch: int):
        for _ in range(4):
            xs = rng.standard_normal((12, 8, 1)).astype(np.float32)
            target = np.concatenate([np.zeros((2, 8, 1), np.float32), xs[:-2]])
            yield {"x": xs, "t": target}

    result = rg.train(
        g,
        g.init_params(seed=0),
        batches,
        loss=rg.losses.mse("t"),
        optimizer=rg.optim.Adam(0.03),
        epochs=15,
        clip_norm=5.0,
        progress=False,
    )
    h = result.history
    assert len(h.losses) == 60 and len(h.epoch_losses) == 15
    assert h.epoch_losses[-1] < 0.5 * h.epoch_losses[0]
    png, svg = h.plot(str(tmp_path / "loss.png")), h.plot(str(tmp_path / "loss.svg"))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = Path(svg).read_text()  # the chart's words are there: title, axes, legend
    for words in ("training loss", "step", "loss per step", "epoch mean"):
        assert f"<!-- {words} -->" in text, words


def _ctc_brute_force(logits: np.ndarray, label: list[int], blank: int = 0) -> float:
    """-log of the summed probability of every path that collapses to ``label``."""
    import itertools

    T, C = logits.shape
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    total = 0.0
    for path in itertools.product(range(C), repeat=T):
        collapsed = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        if [c for c in collapsed if c != blank] == label:
            total += float(np.exp(sum(logp[t, c] for t, c in enumerate(path))))
    return -np.log(total)


def test_ctc_against_brute_force_and_finite_differences() -> None:
    rng = np.random.default_rng(0)
    T, C = 5, 3
    labels = [[1, 2], [1, 1], [2], []]
    logits = rng.standard_normal((T, len(labels), C))
    lens = np.array([5, 5, 3, 4])
    loss, grad = rg.losses.ctc(logits, labels, sequence_lens=lens)
    for b, lab in enumerate(labels):
        want = _ctc_brute_force(logits[: lens[b], b], lab)
        assert abs(loss[b] - want) < 1e-10, (b, loss[b], want)
    assert np.all(grad[lens[2] :, 2] == 0)
    v = rng.standard_normal(logits.shape)
    eps = 1e-6
    plus = rg.losses.ctc(logits + eps * v, labels, sequence_lens=lens)[0].sum()
    minus = rg.losses.ctc(logits - eps * v, labels, sequence_lens=lens)[0].sum()
    assert abs((plus - minus) / (2 * eps) - np.sum(grad * v)) < 1e-6


def test_ctc_matches_torch() -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is a test extra")
    rng = np.random.default_rng(1)
    T, C = 12, 6
    labels = [[1, 2, 2, 5], [3], [4, 1, 4]]
    logits = rng.standard_normal((T, len(labels), C))
    lens = np.array([12, 7, 10])
    loss, grad = rg.losses.ctc(logits, labels, sequence_lens=lens)
    x = torch.tensor(logits, requires_grad=True)
    flat = torch.tensor([c for lab in labels for c in lab])
    want = torch.nn.functional.ctc_loss(
        torch.log_softmax(x, -1),
        flat,
        torch.tensor(lens),
        torch.tensor([len(lab) for lab in labels]),
        reduction="sum",
    )
    want.backward()
    assert abs(loss.sum() - want.item()) < 1e-8
    np.testing.assert_allclose(grad, x.grad.numpy(), atol=1e-8)


def _decoder():
    g = rg.Graph("dec")
    fb = rg.cells.Feedback(g, "prev", 3)
    x = fb.input(teacher=g.input("teacher", 3), mask=g.input("use_teacher", 1))
    y = rg.softmax(rg.linear(rg.cells.gru(x, 5, name="gru"), 3, name="out"))
    fb.close(y)
    g.output("y", y)
    return g


def test_feedback_teacher_forcing_and_free_running() -> None:
    g = _decoder()
    p = g.init_params(seed=0)
    rng = np.random.default_rng(0)
    T = 6
    teacher = rg.losses.one_hot(rng.integers(0, 3, (T, 2)), 3)
    ones, zeros = np.ones((T, 2, 1), np.float32), np.zeros((T, 2, 1), np.float32)
    forced = rg.run(g, {"teacher": teacher, "use_teacher": ones}, p)["y"]
    free = rg.run(g, {"teacher": teacher, "use_teacher": zeros}, p)["y"]
    # Teacher forcing: the same as feeding the teacher tokens to an open-loop decoder.
    open_loop = rg.Graph("open")
    yo = rg.softmax(rg.linear(rg.cells.gru(open_loop.input("x", 3), 5, name="gru"), 3, name="out"))
    open_loop.output("y", yo)
    np.testing.assert_allclose(forced, rg.run(open_loop, {"x": teacher}, p)["y"], atol=1e-6)
    # Free running: each step reads the previous step's own output.
    h = np.zeros((2, 5), np.float32)
    prev = np.zeros((2, 3), np.float32)
    for t in range(T):
        step = rg.run(open_loop, {"x": prev[None]}, p, initial_states={"gru.h": h})
        prev, h = step["y"][0], step["gru.h_final"]
        np.testing.assert_allclose(free[t], prev, atol=1e-5)
    mixed = rg.cells.teacher_mask(T, 2, rg.cells.inverse_sigmoid_schedule(3), rng)
    assert set(np.unique(mixed)) <= {0.0, 1.0}


def test_scheduled_sampling_gradients() -> None:
    from tests.gradcheck import check_gradients

    check_gradients(_decoder())


def test_results_print_short() -> None:
    """print(result) dumped every parameter array."""
    from rnngraph.training.loop import History, TrainResult

    h = History(losses=[2.0, 1.5, 1.25], epoch_losses=[1.5], seconds=0.25)
    r = TrainResult({"W": np.zeros((300, 300)), "b": np.zeros(300)}, h)
    assert repr(r) == (
        "<TrainResult: 2 params (90,300 values), loss 2 -> 1.25 over 3 steps, 0.2 s>"
    )
    assert repr(h) == "<History: 3 steps, 1 epochs, last 1.25>"


def test_frozen_trainable_and_constrained_params() -> None:
    """Frozen params keep their values exactly; ``trainable`` picks the learners; a
    constraint projects after every update; unknown names are ParamErrors."""
    g = zoo.CELLS["rnn"]()
    p = g.init_params(seed=0)
    rng = np.random.default_rng(0)
    data = [{"x": rng.standard_normal((6, 4, 3)).astype(np.float32),
             "t": rng.standard_normal((6, 4, 4)).astype(np.float32)}]  # fmt: skip
    kw = {"loss": rg.losses.mse("t"), "epochs": 3, "progress": False}
    frozen = rg.train(g, p, data, optimizer=rg.optim.SGD(0.5), frozen=["r.R", "r.B"], **kw)
    assert np.array_equal(frozen.params["r.R"], p["r.R"])
    assert np.array_equal(frozen.params["r.B"], p["r.B"])
    assert not np.array_equal(frozen.params["r.W"], p["r.W"])
    only = rg.train(g, p, data, optimizer=rg.optim.SGD(0.5), trainable=["r.[RB]"], **kw)
    assert np.array_equal(only.params["r.W"], p["r.W"])
    assert not np.array_equal(only.params["r.R"], p["r.R"])
    unit = rg.train(
        g, p, data, optimizer=rg.optim.SGD(5.0), **kw,
        constraints={"r.*": lambda v: v / max(1.0, float(np.abs(v).max()))},
    )  # fmt: skip
    assert max(float(np.abs(v).max()) for v in unit.params.values()) <= 1.0 + 1e-6
    with pytest.raises(rg.ParamError, match="names no param"):
        rg.train(g, p, data, optimizer=rg.optim.SGD(0.1), frozen=["nope"], **kw)
    with pytest.raises(rg.ParamError, match="not both"):
        rg.train(g, p, data, optimizer=rg.optim.SGD(0.1), frozen=["r.W"], trainable=["r.R"], **kw)


def test_learning_rate_schedules() -> None:
    opt = rg.optim.SGD(rg.optim.step_decay(1.0, every=1, factor=0.5))
    p = {"w": np.zeros(1)}
    for _ in range(3):
        p = opt.step(p, {"w": np.ones(1)})
    assert p["w"][0] == pytest.approx(-(1.0 + 0.5 + 0.25))
    adam = rg.optim.Adam(rg.optim.cosine_decay(0.1, updates=2))
    q = {"w": np.zeros(1)}
    for _ in range(3):  # the third update has rate 0
        q = adam.step(q, {"w": np.ones(1)})
    assert q["w"][0] == pytest.approx(-(0.1 + 0.05), rel=1e-6)
