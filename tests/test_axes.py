"""Several sequence axes: an encoder–decoder with attention against a PyTorch one with
copied weights; its stages on every backend, as one model and as encoder + decoder
step model; gradients against finite differences; training; errors that name both
axes."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.program.axes import split
from tests import zoo
from tests.gradcheck import check_gradients

E, H, V, SPK = 3, 5, 4, 2


def nmt(kind: str = "additive", bridge: bool = False) -> rg.Graph:
    """Bahdanau-style: a GRU encoder on axis "src"; a GRU decoder on "tgt" that starts from
    the encoder's final state and attends over its whole output with its previous state;
    a per-sequence speaker vector read at every decoder step. ``bridge``: the decoder
    starts from ``tanh(linear([final state, speaker]))`` instead (a value computed per
    sequence)."""
    g = rg.Graph("nmt")
    src = g.input("src", E, axis="src")
    tgt = g.input("tgt", E, axis="tgt")
    spk = g.input("speaker", SPK, axis=None)
    enc = rg.cells.gru(src, H, name="enc", linear_before_reset=True)
    memory = rg.whole(enc, name="memory")
    start = rg.final(enc, name="h0")
    if bridge:
        start = rg.tanh(rg.linear(rg.concat([start, spk]), H, name="bridge"), name="start")
    h = g.state("dec.h", H, init=start)
    ctx, weights = rg.cells.attention(h, memory, kind=kind, name="att")
    x = rg.concat([tgt, ctx, spk])
    W = g.param("dec.W", (3 * H, E + H + SPK))
    R = g.param("dec.R", (3 * H, H))
    B = g.param("dec.B", 6 * H)
    new = rg.cells.gru_step(x, h, W, R, B, linear_before_reset=True)
    g.assign(h, new)
    g.output("logits", rg.linear(rg.concat([new, ctx]), V, name="out"))
    g.output("weights", weights)
    return g


def _with_bridge_bias(p: dict) -> dict:
    """A nonzero bridge bias (init_params zeroes biases), so a zero-length row's start,
    tanh(b), is visibly not zero."""
    if "bridge.b" in p:
        p["bridge.b"] = np.linspace(-0.8, 0.8, p["bridge.b"].size).astype(p["bridge.b"].dtype)
    return p


def _data(S=7, T=5, B=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "src": rng.standard_normal((S, B, E)),
        "tgt": rng.standard_normal((T, B, E)),
        "speaker": rng.standard_normal((B, SPK)),
    }


def _torch_gates(a, torch):
    z, r, h = a.chunk(3, 0)
    return torch.cat([r, z, h], 0)


def torch_nmt(p, xs, src_lens, tgt_lens, bridge=False):
    """The same network in PyTorch (nn.GRU encoder, nn.GRUCell decoder, the additive
    attention written out), one row at a time with its own lengths."""
    torch = pytest.importorskip("torch", reason="PyTorch is a test extra (pip install .[bench])")
    t = {k: torch.tensor(v) for k, v in p.items()}
    enc = torch.nn.GRU(E, H).double()
    dec = torch.nn.GRUCell(E + H + SPK, H).double()
    with torch.no_grad():
        enc.weight_ih_l0.copy_(_torch_gates(t["enc.W"], torch))
        enc.weight_hh_l0.copy_(_torch_gates(t["enc.R"], torch))
        enc.bias_ih_l0.copy_(_torch_gates(t["enc.B"][: 3 * H], torch))
        enc.bias_hh_l0.copy_(_torch_gates(t["enc.B"][3 * H :], torch))
        dec.weight_ih.copy_(_torch_gates(t["dec.W"], torch))
        dec.weight_hh.copy_(_torch_gates(t["dec.R"], torch))
        dec.bias_ih.copy_(_torch_gates(t["dec.B"][: 3 * H], torch))
        dec.bias_hh.copy_(_torch_gates(t["dec.B"][3 * H :], torch))
    T, B = xs["tgt"].shape[:2]
    logits = np.zeros((T, B, V))
    weights = np.zeros((T, B, xs["src"].shape[0]))
    with torch.no_grad():
        for b in range(B):
            n = int(src_lens[b])
            src = torch.tensor(xs["src"][:n, b : b + 1])
            out, hn = enc(src)
            memory = out[:, 0]  # (n, H)
            h = hn[0]
            if bridge:
                spk = torch.tensor(xs["speaker"][b : b + 1])
                h = torch.tanh(torch.cat([h, spk], 1) @ t["bridge.W"] + t["bridge.b"])
            for step in range(int(tgt_lens[b])):
                keys = memory @ t["att.Wk"]
                query = h[0] @ t["att.q.W"] + t["att.q.b"]
                scores = torch.tanh(keys + query) @ t["att.v"]
                a = torch.softmax(scores, 0)
                ctx = a @ memory
                x = torch.cat(
                    [torch.tensor(xs["tgt"][step, b]), ctx, torch.tensor(xs["speaker"][b])]
                )
                h = dec(x[None], h)
                logits[step, b] = (torch.cat([h[0], ctx]) @ t["out.W"] + t["out.b"]).numpy()
                weights[step, b, :n] = a.numpy()
    return logits, weights


@pytest.mark.parametrize("bridge", [False, True])
def test_an_encoder_decoder_against_pytorch(bridge):
    g = nmt(bridge=bridge)
    p = _with_bridge_bias({k: v.astype(np.float64) for k, v in zoo.params_for(g, 1).items()})
    xs = _data()
    src_lens, tgt_lens = np.array([7, 3, 5]), np.array([5, 4, 2])
    out = rg.run(g, xs, p, sequence_lens={"src": src_lens, "tgt": tgt_lens})
    logits, weights = torch_nmt(p, xs, src_lens, tgt_lens, bridge)
    np.testing.assert_allclose(out["logits"], logits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["weights"], weights, rtol=0, atol=1e-12)
    assert out["enc.h_final"].shape == (3, H) and out["dec.h_final"].shape == (3, H)


def test_the_stages_and_their_crossings():
    s = split(nmt())
    assert s.axes == ("src", "tgt")
    enc, dec = s.stages
    assert set(enc.gives) == {"h0", "memory", "memory.mask"}
    assert set(dec.reads) == {"h0", "memory", "memory.mask"}
    assert {s.crossings[k].kind for k in enc.gives} == {"final", "whole", "whole_mask"}
    assert dec.graph.per_sequence_inputs.keys() == {"h0", "memory", "memory.mask", "speaker"}
    # the attention's key projection depends on the memory only: computed once per sequence
    keys = [n for n in dec.graph.nodes() if n.op == "matmul" and "att" not in n.name]
    per_seq = {dec.graph.node(n).name for n in rg.schedule(dec.graph).per_sequence}
    assert any(k.name in per_seq for k in keys)


@pytest.mark.parametrize("target", ["onnx"])  # (TVM: the bridged test below covers it)
def test_an_encoder_decoder_on_every_backend(target, tmp_path):
    g = nmt()
    p = zoo.params_for(g, 2)
    xs = {k: v.astype("float32") for k, v in _data(seed=3).items()}
    lens = {"src": np.array([7, 0, 4]), "tgt": np.array([5, 3, 0])}
    m = rg.compile(g, target=target, params=p, threads=1)
    assert isinstance(m, rg.StagedModel)
    zoo.assert_close(m.run(xs), rg.run(g, xs, p))
    zoo.assert_close(m.run(xs, sequence_lens=lens), rg.run(g, xs, p, sequence_lens=lens))
    if target == "onnx":  # one model of both axes: one file, one onnxruntime session
        import onnxruntime as ort

        assert m.joined is not None
        path = m.save(tmp_path / "nmt.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {**xs, "sequence_lens.src": lens["src"], "sequence_lens.tgt": lens["tgt"]}
        names = [o.name for o in session.get_outputs()]
        got = dict(zip(names, session.run(names, feeds), strict=True))
        zoo.assert_close(got, rg.run(g, xs, p, sequence_lens=lens))
        assert m.joined.run(xs, {}) is not None  # what m.run used
    # inference: the encoder once, then the decoder's step model one step at a time
    pair = rg.compile(g, target=target, params=p, mode="step", threads=1)
    assert pair.modes == {"src": "sequence", "tgt": "step"}
    given = pair.encode({"src": xs["src"]}, sequence_lens={"src": lens["src"]})
    assert sorted(given) == ["h0", "memory", "memory.mask"]
    decoder = pair.models["tgt"]
    want = rg.run(g, xs, p, sequence_lens={"src": lens["src"]})
    carried: dict = {}
    for step in range(xs["tgt"].shape[0]):
        feeds = {"tgt": xs["tgt"][step], "speaker": xs["speaker"], **given}
        out, carried = decoder.advance(feeds, carried)
        zoo.assert_close({"logits": out["logits"]}, {"logits": want["logits"][step]})


def test_gradients_through_both_axes_against_finite_differences():
    """Through the decoder, the attention over the whole encoder output (a per-step
    cotangent fed back into the encoder's reversed loop) and the final state."""
    check_gradients(nmt(), seed=4)
    check_gradients(nmt("dot"), seed=5, sequence_lens={"src": np.array([6, 2]), "tgt": None})


def test_training_an_encoder_decoder():
    g = nmt("dot")
    rng = np.random.default_rng(7)
    xs = {k: v.astype("float32") for k, v in _data(S=4, T=4, B=8, seed=7).items()}
    target = np.tanh(xs["src"][::-1, :, :1]).repeat(V, axis=-1)  # the source reversed
    batch = {**xs, "t": target.astype("float32")}
    result = rg.train(
        g,
        zoo.params_for(g, 7),
        [batch],
        loss=rg.losses.mse("t", output="logits"),
        optimizer=rg.optim.Adam(0.05),
        epochs=30,
        progress=False,
    )
    assert result.history.losses[-1] < 0.5 * result.history.losses[0]
    assert rng is not None


def test_crossing_axes_without_final_or_whole_is_an_error():
    g = rg.Graph("mixed")
    a = g.input("a", 2, axis="a")
    b = g.input("b", 2, axis="b")
    g.output("y", a + b)
    with pytest.raises(rg.GraphError, match=r"joins axis 'a' \(input 'a'\) with axis 'b'"):
        rg.run(g, {"a": np.ones((2, 1, 2)), "b": np.ones((3, 1, 2))})
    g2 = rg.Graph("self")
    x = g2.input("x", 2, axis="x")
    g2.output("y", x * rg.final(x))
    with pytest.raises(rg.GraphError, match="read on axis 'x' itself"):
        rg.verify(g2) or split(g2)


def test_lengths_by_axis_are_checked():
    g = nmt()
    p = zoo.params_for(g)
    xs = _data()
    with pytest.raises(rg.InputError, match="dict by axis"):
        rg.run(g, xs, p, sequence_lens=np.array([1, 2, 3]))
    with pytest.raises(rg.InputError, match="names axes"):
        rg.run(g, xs, p, sequence_lens={"source": np.array([1, 2, 3])})
    with pytest.raises(rg.InputError, match="needs inputs"):
        rg.run(g, {"src": xs["src"], "tgt": xs["tgt"]}, p)


def test_a_staged_graph_survives_save_and_load(tmp_path):
    g = nmt()
    p = zoo.params_for(g)
    path = g.save(tmp_path / "nmt", p)
    back = rg.load(path)
    xs = {k: v.astype("float32") for k, v in _data(seed=9).items()}
    lens = {"src": np.array([7, 2, 5]), "tgt": np.array([5, 5, 1])}
    zoo.assert_close(
        rg.run(back, xs, rg.load_params(path), sequence_lens=lens),
        rg.run(g, xs, p, sequence_lens=lens),
        tol=0,
    )


def test_drawings_colour_each_axis() -> None:
    from rnngraph.tools.drawing import to_dot

    dot = to_dot(nmt())
    assert "sequence axes: src (lightblue), tgt (palegreen), per sequence (lightgray)" in dot
    fills = {
        line.split("fillcolor=")[1].split("]")[0]
        for line in dot.splitlines()
        if "fillcolor" in line
    }
    assert fills == {'"lightblue"', '"palegreen"', '"lightgray"'}
    single = rg.Graph("one")
    single.output("y", rg.cells.gru(single.input("x", 2), 3, name="g"))
    assert "fillcolor" not in to_dot(single)


def test_a_state_starts_from_a_value_computed_per_sequence():
    """The bridge's value is computed once per row in a one-step stage of its own, before
    the decoder's axis; a row with no source steps starts from tanh(b @ ...), a row with
    no target steps keeps it as its final state."""
    g = nmt(bridge=True)
    s = split(g)
    assert s.axes == ("src", "tgt")  # (the per-sequence stage is not an axis)
    assert [x.axis for x in s.stages] == ["src", "tgt.init", "tgt"]
    assert s.crossings["start"].kind == "start" and s.stages[1].per_sequence
    assert "start" in s.stages[2].graph.per_sequence_inputs
    p = _with_bridge_bias(zoo.params_for(g, 3))
    xs = _data(B=3, seed=6)
    lens = {"src": np.array([7, 0, 4]), "tgt": np.array([5, 3, 0])}
    out = rg.run(g, xs, p, sequence_lens=lens, dtype="float64")
    final = rg.run(g, xs, p, sequence_lens=lens, dtype="float64")["enc.h_final"]
    start = np.tanh(np.concatenate([final, xs["speaker"]], 1) @ p["bridge.W"] + p["bridge.b"])
    np.testing.assert_allclose(out["dec.h_final"][2], start[2], atol=1e-12)


@pytest.mark.parametrize("target", ["onnx", pytest.param("tvm", marks=pytest.mark.slow)])
def test_a_computed_start_on_every_backend(target, tmp_path):
    """The bridged encoder-decoder (every crossing kind: final, whole, whole_mask and
    start) as one model and as encoder + decoder step model; on TVM this is the
    encoder-decoder's test (its kernels are the plain one's plus a one-step stage)."""
    g = nmt(bridge=True)
    p = _with_bridge_bias(zoo.params_for(g, 2))
    xs = {k: v.astype("float32") for k, v in _data(seed=3).items()}
    lens = {"src": np.array([7, 0, 4]), "tgt": np.array([5, 3, 0])}
    want = rg.run(g, xs, p, sequence_lens=lens)
    m = rg.compile(g, target=target, params=p, threads=1)
    zoo.assert_close(m.run(xs, sequence_lens=lens), want)
    if target == "onnx":  # one file: the bridge between the encoder's and decoder's Scans
        import onnxruntime as ort

        session = ort.InferenceSession(str(m.save(tmp_path / "nmt.onnx")))
        feeds = {**xs, "sequence_lens.src": lens["src"], "sequence_lens.tgt": lens["tgt"]}
        names = [o.name for o in session.get_outputs()]
        zoo.assert_close(dict(zip(names, session.run(names, feeds), strict=True)), want)
    # the encoder (and the bridge) once, then the decoder's step model
    pair = rg.compile(g, target=target, params=p, mode="step", threads=1)
    given = pair.encode(
        {"src": xs["src"], "speaker": xs["speaker"]}, sequence_lens={"src": lens["src"]}
    )
    assert sorted(given) == ["memory", "memory.mask", "start"]  # (h0: the bridge's only)
    want = rg.run(g, xs, p, sequence_lens={"src": lens["src"]})
    carried: dict = {}
    for step in range(xs["tgt"].shape[0]):
        feeds = {"tgt": xs["tgt"][step], "speaker": xs["speaker"], **given}
        out, carried = pair.models["tgt"].advance(feeds, carried)
        zoo.assert_close({"logits": out["logits"]}, {"logits": want["logits"][step]})


def test_gradients_through_a_computed_start_against_finite_differences():
    check_gradients(nmt(bridge=True), seed=7, sequence_lens={"src": np.array([6, 0]), "tgt": None})


def test_one_axis_graph_whose_state_starts_from_a_per_sequence_input_transformed():
    """No second axis: a state starts from a projection of a per-sequence input."""
    g = rg.Graph("styled")
    x = g.input("x", 2)
    style = g.input("style", 3, axis=None)
    h = g.state("h", 4, init=rg.tanh(rg.linear(style, 4, name="proj")))
    g.assign(h, rg.tanh(rg.linear(rg.concat([x, h]), 4, name="cell")))
    g.output("y", h)
    p = g.init_params(seed=0)
    p["proj.b"] = np.full(4, 0.3)
    rng = np.random.default_rng(0)
    xs = {"x": rng.standard_normal((4, 2, 2)), "style": rng.standard_normal((2, 3))}
    out = rg.run(g, xs, p, sequence_lens=np.array([4, 0]), dtype="float64")
    h0 = np.tanh(xs["style"] @ p["proj.W"] + p["proj.b"])
    hs, want = h0, []
    for t in range(4):  # (the output reads the state: its value before this step's update)
        want.append(hs)
        hs = np.tanh(np.concatenate([xs["x"][t], hs], 1) @ p["cell.W"] + p["cell.b"])
    np.testing.assert_allclose(out["y"][:, 0], np.array(want)[:, 0], atol=1e-12)
    np.testing.assert_allclose(out["h_final"][1], h0[1], atol=1e-12)
    zoo.assert_close(rg.compile(g, target="onnx", params=p).run(xs), rg.run(g, xs, p))
    check_gradients(g, seed=2)


def test_a_state_cannot_start_from_a_value_that_changes_each_step():
    g = rg.Graph("bad")
    x = g.input("x", 2)
    h = g.state("h", 2, init=rg.tanh(x, name="per_step"))
    g.assign(h, h + x)
    g.output("y", h)
    with pytest.raises(rg.GraphError, match=r"state 'h' starts from 'per_step'.*step to step"):
        rg.run(g, {"x": np.ones((3, 1, 2))}, {})


@pytest.mark.parametrize("bridge", [False, True])
def test_forward_mode_through_the_axes(bridge):
    """rg.jvp stage by stage: against rg.vjp (<c, J u> = <J^T c, u> for random c and u
    over outputs, final states, inputs, the per-sequence input and params) and against
    central differences of the outputs along u."""
    g = nmt(bridge=bridge)
    rng = np.random.default_rng(8)
    p = _with_bridge_bias({k: v.astype(np.float64) for k, v in zoo.params_for(g, 4).items()})
    xs = _data(seed=9)
    lens = {"src": np.array([7, 0, 3]), "tgt": np.array([5, 2, 0])}
    u = {k: rng.standard_normal(np.shape(v)) for k, v in {**p, **xs}.items()}
    _, tans = rg.jvp(g, xs, p, tangents=u, sequence_lens=lens, dtype="float64")
    assert set(tans) == {"logits", "weights", "enc.h_final", "dec.h_final"}
    c = {k: rng.standard_normal(v.shape) for k, v in tans.items()}
    _, grads = rg.vjp(g, xs, p, cotangents=c, sequence_lens=lens, dtype="float64")
    lhs = sum(float(np.sum(tans[k] * c[k])) for k in c)
    rhs = sum(float(np.sum(u[k] * grads[k])) for k in u)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs, rhs)
    eps = 1e-6

    def moved(sign):
        xm = {k: v + sign * eps * u[k] for k, v in xs.items()}
        pm = {k: v + sign * eps * u[k] for k, v in p.items()}
        return rg.run(g, xm, pm, sequence_lens=lens, dtype="float64")

    up, down = moved(1), moved(-1)
    for k in tans:
        np.testing.assert_allclose(tans[k], (up[k] - down[k]) / (2 * eps), atol=1e-6, err_msg=k)


def _summarised() -> rg.Graph:
    """The bridged encoder-decoder that also outputs per-sequence values: the encoder's
    end and the decoder's start, (B, ...) each."""
    g = nmt(bridge=True)
    g.output("enc_end", g.value("h0"))
    g.output("dec_start", g.value("start"))
    return g


def test_per_sequence_outputs_of_a_graph_with_several_axes(tmp_path):
    g = _summarised()
    s = split(g)
    assert s.stages[-1].axis == "outputs" and s.stages[-1].per_sequence
    assert s.axes == ("src", "tgt")
    p = _with_bridge_bias(zoo.params_for(g, 5))
    xs = _data(seed=10)
    lens = {"src": np.array([7, 0, 2]), "tgt": np.array([5, 1, 0])}
    out = rg.run(g, xs, p, sequence_lens=lens, dtype="float64")
    assert out["enc_end"].shape == (3, H) and out["dec_start"].shape == (3, H)
    np.testing.assert_array_equal(out["enc_end"], out["enc.h_final"])
    bridge = np.concatenate([out["enc_end"], xs["speaker"]], 1) @ p["bridge.W"] + p["bridge.b"]
    np.testing.assert_allclose(out["dec_start"], np.tanh(bridge), atol=1e-12)
    np.testing.assert_allclose(out["dec.h_final"][2], out["dec_start"][2], atol=1e-12)
    m = rg.compile(g, target="onnx", params=p)
    feeds = {k: v.astype("float32") for k, v in xs.items()}
    zoo.assert_close(m.run(feeds, sequence_lens=lens), out)
    import onnxruntime as ort

    session = ort.InferenceSession(str(m.save(tmp_path / "nmt.onnx")))
    names = [o.name for o in session.get_outputs()]
    given = {**feeds, "sequence_lens.src": lens["src"], "sequence_lens.tgt": lens["tgt"]}
    zoo.assert_close(dict(zip(names, session.run(names, given), strict=True)), out)
    check_gradients(g, seed=11, sequence_lens={"src": np.array([6, 0]), "tgt": None})


def test_a_per_sequence_output_of_one_axis_is_read_at_every_step():
    """With one axis (staged only because a state starts from a computed value) a
    per-sequence output keeps a one-axis graph's meaning: (T, B, ...)."""
    g = rg.Graph("styled")
    x = g.input("x", 2)
    style = g.input("style", 3, axis=None)
    start = rg.tanh(rg.linear(style, 4, name="proj"), name="start")
    h = g.state("h", 4, init=start)
    g.assign(h, rg.tanh(rg.linear(rg.concat([x, h]), 4, name="cell")))
    g.output("y", h)
    g.output("start_out", start)
    p = g.init_params(seed=0)
    out = rg.run(g, {"x": np.ones((3, 2, 2)), "style": np.ones((2, 3))}, p)
    assert out["start_out"].shape == (3, 2, 4)
    np.testing.assert_allclose(out["start_out"][0], out["y"][0])


def test_one_computed_start_for_states_of_two_axes():
    """A start value read by states on two axes is computed once, before the first."""
    g = rg.Graph("two")
    src = g.input("src", 2, axis="src")
    enc = rg.cells.rnn(src, 3, name="enc")
    start = rg.tanh(rg.linear(rg.final(enc), 3, name="bridge"), name="start")
    for ax in ("a", "b"):
        h = g.state(f"h{ax}", 3, init=start)
        g.assign(h, rg.tanh(rg.linear(rg.concat([g.input(ax, 2, axis=ax), h]), 3, name=f"d{ax}")))
        g.output(f"y{ax}", h)
    assert [s.axis for s in split(g).stages] == ["src", "a.init", "a", "b"]
    p = g.init_params(seed=0)
    rng = np.random.default_rng(0)
    xs = {k: rng.standard_normal((n, 2, 2)) for k, n in (("src", 4), ("a", 3), ("b", 2))}
    out = rg.run(g, xs, p)
    np.testing.assert_array_equal(out["ya"][0], out["yb"][0])  # (both read the start)
    zoo.assert_close(rg.compile(g, target="onnx", params=p, threads=1).run(xs), out)
