"""Row gather/scatter by data indices: numpy loops written here, onnxruntime, gradients."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg

T, B, N, M, H = 4, 3, 5, 3, 2


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((T, B, N, H))
    # unique indices per row, some padding
    idx = np.stack([np.stack([rng.permutation(N)[:M] for _ in range(B)]) for _ in range(T)])
    idx[:, 1, -1] = -1
    values = rng.standard_normal((T, B, M, H))
    return table, idx, values


def _graph() -> rg.Graph:
    g = rg.Graph("rows")
    table, idx = g.input("table", (N, H)), g.input("idx", M, dtype="int64")
    values = g.input("values", (M, H))
    g.output("got", rg.gather_rows(table, idx))
    g.output("put", rg.scatter_rows(table, idx, values))
    g.output("const", rg.gather_rows(table, np.array([4, -1, 0])))
    return g


def _loops(table, idx, values):
    got = np.zeros((T, B, M, H))
    put = table.copy()
    const = np.zeros((T, B, M, H))
    for t in range(T):
        for b in range(B):
            for m in range(M):
                i = idx[t, b, m]
                if i >= 0:
                    got[t, b, m] = table[t, b, i]
                    put[t, b, i] = values[t, b, m]
            const[t, b, 0], const[t, b, 2] = table[t, b, 4], table[t, b, 0]
    return {"got": got, "put": put, "const": const}


def test_reference_against_loops() -> None:
    table, idx, values = _data()
    out = rg.run(_graph(), {"table": table, "idx": idx, "values": values})
    for k, v in _loops(table, idx, values).items():
        np.testing.assert_allclose(out[k], v, atol=1e-12, err_msg=k)


def test_onnx_against_reference() -> None:
    g = _graph()
    m = rg.compile(g, target="onnx")
    for seed in (0, 1):
        table, idx, values = _data(seed)
        feeds = {"table": table.astype(np.float32), "idx": idx, "values": values.astype(np.float32)}
        got = m.run(feeds)
        want = rg.run(g, feeds)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], atol=1e-6, err_msg=k)
    # another batch size from the same file
    table, idx, values = _data(2)
    feeds = {
        "table": table[:2, :2].astype(np.float32),
        "idx": idx[:2, :2],
        "values": values[:2, :2].astype(np.float32),
    }
    np.testing.assert_allclose(m.run(feeds)["put"], rg.run(g, feeds)["put"], atol=1e-6)


@pytest.mark.parametrize("op", ["gather", "scatter", "scatter_add"])
def test_gradients_by_finite_differences(op: str) -> None:
    table, idx, values = _data(3)
    g = rg.Graph("grad")
    t_in, i_in, v_in = (
        g.input("table", (N, H)),
        g.input("idx", M, dtype="int64"),
        g.input("values", (M, H)),
    )
    w = g.param("w", H)
    if op == "gather":
        y = rg.gather_rows(t_in * w, i_in)
    elif op == "scatter":
        y = rg.scatter_rows(t_in, i_in, v_in * w)
    else:
        y = rg.scatter_add_rows(t_in * w, i_in, v_in * w)
    g.output("y", rg.tanh(y))
    p = {"w": np.array([0.7, -1.3])}
    feeds = {"table": table, "idx": idx, "values": values}
    cot = np.random.default_rng(4).standard_normal(rg.run(g, feeds, p)["y"].shape)
    _, grads = rg.vjp(g, feeds, p, cotangents={"y": cot})

    def loss(pp, ff):
        return float(np.sum(rg.run(g, ff, pp)["y"] * cot))

    eps = 1e-6
    rng = np.random.default_rng(5)
    for name, arr, make in (
        ("w", p["w"], lambda a: ({"w": a}, feeds)),
        ("table", table, lambda a: (p, {**feeds, "table": a})),
        ("values", values, lambda a: (p, {**feeds, "values": a})),
    ):
        v = rng.standard_normal(arr.shape)
        fd = (loss(*make(arr + eps * v)) - loss(*make(arr - eps * v))) / (2 * eps)
        got = float(np.sum(grads[name] * v))
        assert abs(got - fd) <= 1e-6 * max(1.0, abs(fd)), (name, got, fd)
    # the tangent agrees with the adjoint (dot-product test)
    u = {
        "w": rng.standard_normal(2),
        "table": rng.standard_normal(table.shape),
        "values": rng.standard_normal(values.shape),
    }
    _, tans = rg.jvp(g, feeds, p, tangents=u)
    lhs = float(np.sum(tans["y"] * cot))
    rhs = sum(float(np.sum(u[k] * grads[k])) for k in u)
    assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))


def test_bad_indices_are_shape_errors() -> None:
    g = rg.Graph("bad")
    table = g.input("table", (N, H))
    with pytest.raises(rg.ShapeError, match="int64"):
        rg.gather_rows(table, g.input("f", M))
    with pytest.raises(rg.ShapeError, match="values must be"):
        rg.scatter_rows(table, np.array([0, 1]), g.input("v", (3, H)))


def test_index_grids_and_scatter_add_against_loops() -> None:
    """Indices of two axes (a level's nodes x their children), repeats accumulating."""
    rng = np.random.default_rng(11)
    K = 3
    table = rng.standard_normal((T, B, N, H))
    idx = rng.integers(-1, N, (T, B, M, K))  # repeats and padding
    values = rng.standard_normal((T, B, M, K, H))
    g = rg.Graph("grid")
    t_in = g.input("table", ("N", H))
    i_in = g.input("idx", ("M", K), dtype="int64")
    v_in = g.input("values", ("M", K, H))
    g.output("got", rg.gather_rows(t_in, i_in))
    g.output("added", rg.scatter_add_rows(t_in, i_in, v_in))
    got = np.zeros((T, B, M, K, H))
    added = table.copy()
    for t in range(T):
        for b in range(B):
            for m in range(M):
                for k in range(K):
                    i = idx[t, b, m, k]
                    if i >= 0:
                        got[t, b, m, k] = table[t, b, i]
                        added[t, b, i] += values[t, b, m, k]
    feeds = {"table": table, "idx": idx, "values": values}
    out = rg.run(g, feeds)
    np.testing.assert_allclose(out["got"], got, atol=1e-12)
    np.testing.assert_allclose(out["added"], added, atol=1e-12)
    m = rg.compile(g, target="onnx")
    f32 = {"table": table.astype(np.float32), "idx": idx, "values": values.astype(np.float32)}
    onnx = m.run(f32)
    np.testing.assert_allclose(onnx["got"], got, atol=1e-5)
    np.testing.assert_allclose(onnx["added"], added, atol=1e-5)
