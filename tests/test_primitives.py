"""The primitives the survey's cells need (ordering, running sums, convolution and
pooling), against PyTorch in float64: values, and gradients against autograd; then
every backend against the reference (gradients by finite differences and the
tangent rules are checked op by op in tests/test_adjoint.py and test_tangent.py)."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests import zoo

torch = pytest.importorskip("torch")
F = torch.nn.functional

T, B = 3, 2
RNG = np.random.default_rng(0)


def _run(build, xs: dict[str, np.ndarray], params=None):
    """Outputs of a graph whose inputs are named as ``xs`` (row shapes from them)."""
    g = rg.Graph("prim")
    ins = {k: g.input(k, v.shape[2:]) for k, v in xs.items()}
    for k, v in build(g, **ins).items():
        g.output(k, v)
    p = g.init_params(seed=0) if params is None else params
    return g, p, rg.run(g, xs, p)


def _flat(a: np.ndarray) -> torch.Tensor:
    """Time and batch axes as one batch axis, for PyTorch."""
    return torch.tensor(a.reshape(-1, *a.shape[2:]))


def _same(got: np.ndarray, want: torch.Tensor, tol: float = 1e-12) -> None:
    np.testing.assert_allclose(got.reshape(want.shape), want.detach().numpy(), atol=tol, rtol=tol)


def test_order_ops_against_torch() -> None:
    x = RNG.standard_normal((T, B, 3, 7))
    ties = np.round(RNG.standard_normal((T, B, 3, 7)))  # many equal entries
    _, _, out = _run(
        lambda g, x, ties: {
            "topv": rg.top_k(x, 3)[0],
            "topi": rg.top_k(x, 3)[1],
            "low": rg.top_k(x, 2, axis=-2, largest=False)[0],
            "sort": rg.sort(ties, descending=True),
            "argsort": rg.argsort(ties),
            "argsort_desc": rg.argsort(ties, -2, descending=True),
            "argmax": rg.argmax(ties),
            "argmin": rg.argmin(ties, -2, keepdims=True),
            "cumsum": rg.cumsum(x),
            "cumsum_rev": rg.cumsum(x, -2, reverse=True),
            "cumsum_excl": rg.cumsum(x, exclusive=True),
            "cumsum_rev_excl": rg.cumsum(x, reverse=True, exclusive=True),
        },
        {"x": x, "ties": ties},
    )
    X, D = _flat(x), _flat(ties)
    v, i = torch.topk(X, 3)
    _same(out["topv"], v)
    _same(out["topi"], i)
    _same(out["low"], torch.topk(X, 2, dim=-2, largest=False)[0])
    # with ties, the stable sort is the oracle of the order (lower index first)
    _same(out["sort"], torch.sort(D, descending=True, stable=True)[0])
    _same(out["argsort"], torch.sort(D, stable=True)[1])
    _same(out["argsort_desc"], torch.sort(D, dim=-2, descending=True, stable=True)[1])
    _same(out["argmax"], torch.argmax(D, -1))
    _same(out["argmin"], torch.argmin(D, -2, keepdim=True))
    _same(out["cumsum"], torch.cumsum(X, -1))
    _same(out["cumsum_rev"], torch.flip(torch.cumsum(torch.flip(X, [-2]), -2), [-2]))
    _same(out["cumsum_excl"], torch.cumsum(X, -1) - X)
    rev = torch.flip(torch.cumsum(torch.flip(X, [-1]), -1), [-1])
    _same(out["cumsum_rev_excl"], rev - X)


CONVS = {  # name: (input row shape, rg builder, torch function of (x, weights))
    "conv1d": (
        (4, 11),
        lambda x: rg.conv1d(x, 6, 3, stride=2, padding=(2, 1), dilation=2, groups=2, name="c"),
        lambda x, p: F.conv1d(F.pad(x, (2, 1)), p["c.W"], p["c.b"][:, 0], 2, 0, 2, 2),
    ),
    "conv2d": (
        (3, 9, 8),
        lambda x: rg.conv2d(x, 5, kernel_size=3, stride=(2, 1), padding=1, name="c"),
        lambda x, p: F.conv2d(x, p["c.W"], p["c.b"][:, 0, 0], (2, 1), 1),
    ),
    "conv2d_depthwise": (
        (4, 7, 7),
        lambda x: rg.conv2d(
            x, 8, (2, 3), stride=2, padding=0, dilation=(2, 1), groups=4, bias=False, name="c"
        ),
        lambda x, p: F.conv2d(x, p["c.W"], None, 2, 0, (2, 1), 4),
    ),
    "max_pool1d": (
        (3, 10),
        lambda x: rg.max_pool(x, 3, 2, 1),
        lambda x, p: F.max_pool1d(x, 3, 2, 1),
    ),
    "max_pool2d": (
        (2, 7, 9),
        lambda x: rg.max_pool(x, (3, 2), (2, 2), (1, 0), dilation=(1, 2)),
        lambda x, p: F.max_pool2d(x, (3, 2), (2, 2), (1, 0), (1, 2)),
    ),
    "avg_pool2d": (
        (2, 6, 7),
        lambda x: rg.avg_pool(x, 3, 2, 1),
        lambda x, p: F.avg_pool2d(x, 3, 2, 1),
    ),
    "avg_pool2d_no_pad_count": (
        (2, 6, 7),
        lambda x: rg.avg_pool(x, 3, 2, 1, count_include_pad=False),
        lambda x, p: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    ),
    "avg_pool1d": ((3, 9), lambda x: rg.avg_pool(x, 2), lambda x, p: F.avg_pool1d(x, 2)),
}


@pytest.mark.parametrize("case", sorted(CONVS))
def test_convolution_and_pooling_against_torch(case: str) -> None:
    """Values, and the gradients of a random functional by rg.vjp against autograd
    (input and weights), in float64."""
    row, build, oracle = CONVS[case]
    g = rg.Graph(case)
    g.output("y", build(g.input("x", row)))
    p = {k: v.astype(np.float64) for k, v in g.init_params(seed=1).items()}
    x = RNG.standard_normal((T, B, *row))
    if "max_pool" in case:
        x = np.round(x, 1)  # ties inside windows: the first largest takes the gradient
    y = rg.run(g, {"x": x}, p)["y"]
    X = _flat(x).requires_grad_(True)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    Y = oracle(X, P)
    _same(y, Y)
    cot = RNG.standard_normal(y.shape)
    (Y * torch.tensor(cot.reshape(Y.shape))).sum().backward()
    _, grads = rg.vjp(g, {"x": x}, p, cotangents={"y": cot})
    _same(grads["x"], X.grad)
    for k in p:
        _same(grads[k], P[k].grad)


def test_order_gradients_against_torch() -> None:
    x = RNG.standard_normal((T, B, 6))
    g, p, out = _run(
        lambda g, x: {
            "top": rg.top_k(x, 2)[0],
            "sort": rg.sort(x * x),
            "cs": rg.cumsum(x, reverse=True, exclusive=True),
        },
        {"x": x},
    )
    cots = {k: RNG.standard_normal(v.shape) for k, v in out.items()}
    _, grads = rg.vjp(g, {"x": x}, p, cotangents=cots)
    X = _flat(x).requires_grad_(True)
    ys = {
        "top": torch.topk(X, 2)[0],
        "sort": torch.sort(X * X)[0],
        "cs": torch.flip(torch.cumsum(torch.flip(X, [-1]), -1), [-1]) - X,
    }
    sum((ys[k] * torch.tensor(cots[k].reshape(ys[k].shape))).sum() for k in ys).backward()
    _same(grads["x"], X.grad)


def test_solve_against_torch() -> None:
    """A per-row vector, a batch of matrices with several right-hand sides, and a weight
    matrix shared by the rows: solutions and gradients (A and b) against torch.linalg."""
    n = 4
    A = RNG.standard_normal((T, B, n, n)) + 3 * np.eye(n)
    b = RNG.standard_normal((T, B, n))
    R = RNG.standard_normal((T, B, n, 2))
    W = RNG.standard_normal((n, n)) + 3 * np.eye(n)
    g = rg.Graph("solve")
    a_in, b_in, r_in = g.input("A", (n, n)), g.input("b", n), g.input("R", (n, 2))
    g.output("x", rg.solve(a_in, b_in))
    g.output("X", rg.solve(a_in, r_in))
    g.output("w", rg.solve(g.param("W", (n, n)), b_in))
    xs, p = {"A": A, "b": b, "R": R}, {"W": W}
    out = rg.run(g, xs, p)
    cots = {k: RNG.standard_normal(v.shape) for k, v in out.items()}
    _, grads = rg.vjp(g, xs, p, cotangents=cots)
    tA, tb, tR = (_flat(v).requires_grad_(True) for v in (A, b, R))
    tW = torch.tensor(W, requires_grad=True)
    ys = {
        "x": torch.linalg.solve(tA, tb),
        "X": torch.linalg.solve(tA, tR),
        "w": torch.linalg.solve(tW, tb.T).T,
    }
    for k, y in ys.items():
        _same(out[k], y, 1e-10)
    sum((y * torch.tensor(cots[k].reshape(y.shape))).sum() for k, y in ys.items()).backward()
    for name, t in (("A", tA), ("b", tb), ("R", tR), ("W", tW)):
        _same(grads[name], t.grad, 1e-10)


def test_singular_systems_give_nan_not_an_error() -> None:
    g = rg.Graph("singular")
    g.output("x", rg.solve(g.input("A", (2, 2)), g.input("b", 2)))
    A = np.array([[[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]]])
    x = rg.run(g, {"A": A, "b": np.ones((1, 2, 2))})["x"]
    assert np.isnan(x[0, 0]).all()
    np.testing.assert_allclose(x[0, 1], [1.0, 1.0])


def primitives_graph() -> rg.Graph:
    """Every primitive inside a recurrent loop and outside it (for the backends)."""
    g = rg.Graph("primitives")
    x = g.input("x", (2, 5, 6))
    h = g.state("h", (2, 5, 6))
    z = x + 0.5 * h
    c = rg.conv2d(z, 4, 3, stride=(2, 1), padding=(1, 0), groups=2, name="cv")
    m = rg.max_pool(c, 2, 1, padding=(1, 0))
    a = rg.avg_pool(z, (3, 3), 1, 1, count_include_pad=False)
    flat = rg.reshape(m, [-1])
    values, idx = rg.top_k(flat, 3)
    g.assign(h, rg.tanh(rg.cumsum(z, -2, reverse=True) * 0.1 + a))
    g.output("conv", c)
    g.output("pool", m)
    g.output("top", values)
    g.output("idx", idx)
    g.output("sorted", rg.sort(rg.reshape(x, [-1]), descending=True))
    g.output("rank", rg.argsort(rg.reduce_sum(x, -1)))
    g.output("best", rg.argmax(rg.reshape(a, [-1])))
    g.output("cum", rg.cumsum(x, exclusive=True))
    g.output("c1", rg.conv1d(rg.reshape(z, [10, 6]), 3, 2, stride=2, padding=0, name="c1"))
    g.output("picked", rg.take_along(x, rg.argmin(x, keepdims=True)))
    system = rg.reshape(rg.slice(rg.reshape(z, [-1]), 0, 16), [4, 4])
    system = system + 4.0 * g.constant(np.eye(4))
    g.output("solved", rg.solve(system, rg.reduce_mean(rg.reshape(x, [4, 15]), -1)))
    g.output("shared", rg.solve(g.param("S", (4, 4), 1.0) + g.constant(np.eye(4)), system))
    return g


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_backends_against_the_reference(target: str) -> None:
    g = primitives_graph()
    p = g.init_params(seed=2)
    zoo.check_model(g, p, rg.compile(g, target=target, params=p))


def test_bad_arguments_are_shape_errors() -> None:
    g = rg.Graph("bad")
    x = g.input("x", (4, 6))
    with pytest.raises(rg.ShapeError, match="groups=3 must divide the input channels"):
        rg.conv1d(x, 6, groups=3)
    with pytest.raises(rg.ShapeError, match="does not fit"):
        rg.conv1d(x, 2, 9, padding=0)
    with pytest.raises(rg.ShapeError, match="must be smaller than the kernel"):
        rg.max_pool(x, 2, padding=2)
    with pytest.raises(rg.ShapeError, match=r"k=7 is outside 0\.\.6"):
        rg.top_k(x, 7)
    with pytest.raises(rg.ShapeError, match="batch axis"):
        rg.cumsum(x, axis=0)
    with pytest.raises(rg.ShapeError, match="differ on axis"):
        rg.take_along(x, rg.argmax(g.input("y", (3, 6)), keepdims=True))
    with pytest.raises(rg.ShapeError, match="needs a signal"):
        rg.conv2d(x, 2)
