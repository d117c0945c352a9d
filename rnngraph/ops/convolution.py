"""Convolutions and pooling over the spatial axes of a per-step value ``(B, C, *S)``.

``conv`` is PyTorch's ``conv1d``/``conv2d`` (cross-correlation; weights laid out
``(out, in / groups, *kernel)``; stride, zero padding, dilation, groups) and
ONNX's ``Conv``. Its gradients are written with two data-movement ops:
``unfold`` (im2col: every kernel window as its own axes, ``(B, C, *K, *L)``) and
``fold`` (col2im: the sum of the windows back into ``(B, C, *S)``, the adjoint of
``unfold``). ``max_pool`` takes the largest entry of each window; its gradient
goes to the first largest one in the window (PyTorch's choice), found with
``argmax`` over the unfolded windows. Average pooling is a depthwise ``conv``
with constant weights.

One or two spatial axes (``d``); ``pads`` are ``(before, after)`` per axis.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.ir.graph import Value
from rnngraph.ir.registry import register_op
from rnngraph.ir.types import TensorType, format_shape
from rnngraph.ops._rules import float_operands
from rnngraph.ops.elementwise import greater, where
from rnngraph.ops.order import argmax
from rnngraph.ops.structure import reshape
from rnngraph.ops.totals import zeros_like

__all__ = [
    "avg_pool",
    "conv",
    "conv1d",
    "conv2d",
    "fold",
    "max_pool",
    "max_pool_choice",
    "out_sizes",
    "unfold",
]

WINDOW = ("kernel", "strides", "pads", "dilations")
"""The attributes every op here has: the window's sizes and how it moves."""


def out_sizes(sizes: Sequence[Any], attrs: Mapping[str, Any]) -> list[int]:
    """The window positions along each spatial axis (PyTorch's and ONNX's formula)."""
    out = []
    for n, k, s, (lo, hi), d in zip(
        sizes, attrs["kernel"], attrs["strides"], attrs["pads"], attrs["dilations"], strict=True
    ):
        if not isinstance(n, int):
            raise ValueError(f"spatial axes must have fixed sizes, got {n!r}")
        span = n + lo + hi - d * (k - 1) - 1
        if span < 0:
            raise ValueError(
                f"a kernel of {k} (dilation {d}) does not fit an axis of {n} padded by "
                f"({lo}, {hi}); pad more or use a smaller kernel"
            )
        out.append(span // s + 1)
    return out


def _spatial(x: TensorType, attrs: Mapping[str, Any], what: str) -> tuple[Any, list[Any]]:
    """The channel count and spatial sizes of a signal ``(B, C, *S)``."""
    d = len(attrs["kernel"])
    if x.dtype != "float" or not x.batched or x.rank != d + 2:
        raise ValueError(
            f"{what} over {d} spatial axes needs a float signal (B, C{', S' * d}), got {x}"
        )
    return x.shape[1], list(x.shape[2:])


def _windows(x: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    """``(..., C, *S)`` -> ``(..., C, *K, *L)``: each window's entries (zeros off the edge)."""
    d = len(attrs["kernel"])
    pad = [(0, 0)] * (x.ndim - d) + [tuple(p) for p in attrs["pads"]]
    xp = np.pad(x, pad)
    L = out_sizes(x.shape[-d:], attrs)
    parts = []
    for k in itertools.product(*(range(n) for n in attrs["kernel"])):
        index = [slice(None)] * (x.ndim - d)
        for ki, li, s, dil in zip(k, L, attrs["strides"], attrs["dilations"], strict=True):
            index.append(slice(ki * dil, ki * dil + s * (li - 1) + 1, s))
        parts.append(xp[tuple(index)])
    lead = x.shape[: x.ndim - d]
    out = np.stack(parts, axis=x.ndim - d)  # (..., C, prod(K), *L)
    return out.reshape(*lead, *attrs["kernel"], *L)


# ------------------------------------------------------------------------ conv


def _conv_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    float_operands(types)
    x, w = types
    C, S = _spatial(x, attrs, "conv")
    groups, d = attrs["groups"], len(attrs["kernel"])
    if w.batched or w.rank != d + 2 or tuple(w.shape[2:]) != tuple(attrs["kernel"]):
        raise ValueError(
            f"conv's weights must be time-invariant (out, in/groups, {', '.join('k' * d)}) "
            f"with the kernel {tuple(attrs['kernel'])}, got {w}"
        )
    O, Cg = w.shape[0], w.shape[1]
    if C % groups or O % groups or Cg * groups != C:
        raise ValueError(
            f"{groups} groups need channels divisible by them and weights of "
            f"(out, {C}/{groups}, ...); got input channels {C}, weights {format_shape(w.shape)}"
        )
    return TensorType(("B", O, *out_sizes(S, attrs)))


@register_op("conv", arity=2, infer=_conv_rule, attrs=(*WINDOW, "groups"))
def _conv(attrs: Mapping[str, Any], x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y(t)[b, o, l] = sum over c in o's group and k of w[o, c, k] x(t)[b, c, l*s + k*d - pad]"""
    d, g = len(attrs["kernel"]), attrs["groups"]
    p = _windows(x, attrs)  # (..., C, *K, *L)
    lead, L = p.shape[: p.ndim - 2 * d - 1], p.shape[p.ndim - d :]
    C, O = x.shape[-d - 1], w.shape[0]
    cols = p.reshape(*lead, g, (C // g) * int(np.prod(attrs["kernel"])), int(np.prod(L)))
    ws = w.reshape(g, O // g, -1)
    y = np.einsum("gom,...gml->...gol", ws, cols)
    return np.asarray(y.reshape(*lead, O, *L), dtype=x.dtype)


def _window_attrs(
    d: int, kernel: Any, stride: Any, padding: Any, dilation: Any
) -> dict[str, list[Any]]:
    def per_axis(v: Any, what: str) -> list[int]:
        vals = [v] * d if isinstance(v, (int, np.integer)) else list(v)
        if len(vals) != d or any(not isinstance(i, (int, np.integer)) for i in vals):
            raise ValueError(f"{what} must be an int or {d} ints, got {v!r}")
        return [int(i) for i in vals]

    kern = per_axis(kernel, "kernel_size")
    strides = per_axis(stride, "stride")
    dil = per_axis(dilation, "dilation")
    if isinstance(padding, (int, np.integer)):
        pads = [[int(padding)] * 2] * d
    elif d == 1 and len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
        pads = [[int(p) for p in padding]]  # (before, after) of the one axis
    else:
        pads = [
            [int(p)] * 2 if isinstance(p, (int, np.integer)) else [int(i) for i in p]
            for p in padding
        ]
    if len(pads) != d or any(len(p) != 2 for p in pads):
        raise ValueError(
            f"padding must be an int, one per spatial axis ({d}), or a (before, after) pair "
            f"per axis; got {padding!r}"
        )
    if min(kern) < 1 or min(strides) < 1 or min(dil) < 1 or min(min(p) for p in pads) < 0:
        raise ValueError(
            f"kernel, stride and dilation must be >= 1 and padding >= 0; got kernel {kern}, "
            f"stride {strides}, dilation {dil}, padding {pads}"
        )
    return {"kernel": kern, "strides": strides, "pads": pads, "dilations": dil}


def conv(
    x: Value,
    w: Value,
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[Any] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    name: str | None = None,
) -> Value:
    """Cross-correlation of ``x`` ``(B, C, *S)`` with weights ``w`` ``(out, C/groups, *K)``
    over one or two spatial axes (PyTorch's ``conv1d``/``conv2d`` without the bias).

    ``padding``: zeros on both sides (an int, one per axis, or ``(before, after)`` pairs).

    Examples
    --------
    >>> import numpy as np, rnngraph as rg
    >>> g = rg.Graph("conv")
    >>> x = g.input("x", (1, 5))
    >>> w = g.constant(np.array([[[1.0, -1.0]]]))
    >>> g.output("y", rg.conv(x, w))
    >>> rg.run(g, {"x": np.arange(5.0).reshape(1, 1, 1, 5)})["y"].ravel().tolist()  # x[i] - x[i+1]
    [-1.0, -1.0, -1.0, -1.0]
    """
    g = x.graph
    d = len(w.shape) - 2
    try:
        if d not in (1, 2):
            raise ValueError(f"weights of rank 3 (conv1d) or 4 (conv2d), got {w.type}")
        attrs: dict[str, Any] = _window_attrs(d, list(w.shape[2:]), stride, padding, dilation)
    except ValueError as e:
        raise g.shape_error("conv", name, str(e), [x, w]) from None
    attrs["groups"] = int(groups)
    return g.apply("conv", [x, w], attrs, name=name)


def _conv_layer(
    d: int,
    x: Value,
    out_channels: int,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    bias: bool,
    name: str | None,
) -> Value:
    g = x.graph
    what = f"conv{d}d"
    base = name if name is not None else g.fresh_name(what)
    if x.type.rank != d + 2 or not isinstance(x.shape[1], int):
        raise g.shape_error(what, base, f"needs a signal (B, C{', S' * d}), got {x.type}", [x])
    C = int(x.shape[1])
    if groups < 1 or C % groups or out_channels % groups:
        raise g.shape_error(
            what,
            base,
            f"groups={groups} must divide the input channels ({C}) and out_channels "
            f"({out_channels})",
            [x],
        )
    try:
        kern = _window_attrs(d, kernel_size, 1, 0, 1)["kernel"]
    except ValueError as e:
        raise g.shape_error(what, base, str(e), [x]) from None
    fan_in = C // groups * int(np.prod(kern))
    w = g.param(f"{base}.W", (int(out_channels), C // groups, *kern), scale=1 / np.sqrt(fan_in))
    name_y = f"{base}.conv" if bias else base
    y = conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups, name=name_y)
    if not bias:
        return y
    b = g.param(f"{base}.b", (int(out_channels), *([1] * d)), "zeros")
    return g.apply("add", [y, b], name=base)


def conv1d(
    x: Value,
    out_channels: int,
    kernel_size: int = 3,
    *,
    stride: int = 1,
    padding: Any = 1,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = True,
    name: str | None = None,
) -> Value:
    """A 1-d convolution layer on ``(B, C, L)`` with new params ``<name>.W`` ``(out, C/groups,
    k)`` (PyTorch's layout and initial scale) and ``<name>.b`` ``(out, 1)``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("c1")
    >>> rg.conv1d(g.input("x", (2, 10)), 4, 3, stride=2, name="cv").shape
    ('B', 4, 5)
    """
    return _conv_layer(
        1, x, out_channels, kernel_size, stride, padding, dilation, groups, bias, name
    )


def conv2d(
    x: Value,
    out_channels: int,
    kernel_size: int | Sequence[int] = 3,
    stride: int | Sequence[int] = 1,
    padding: Any = 1,
    *,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    bias: bool = True,
    name: str | None = None,
) -> Value:
    """A 2-d convolution layer on a per-step ``(B, C, H, W)`` value with new params
    ``<name>.W`` ``(out, C/groups, kh, kw)`` (as PyTorch lays them out) and ``<name>.b``.

    Examples
    --------
    >>> import rnngraph as rg
    >>> g = rg.Graph("c2")
    >>> rg.conv2d(g.input("img", (3, 8, 8)), 6, kernel_size=3, stride=1, padding=1, name="cv").shape
    ('B', 6, 8, 8)
    """
    return _conv_layer(
        2, x, out_channels, kernel_size, stride, padding, dilation, groups, bias, name
    )


# --------------------------------------------------------------- unfold / fold


def _unfold_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    (x,) = types
    C, S = _spatial(x, attrs, "unfold")
    return TensorType(("B", C, *attrs["kernel"], *out_sizes(S, attrs)))


@register_op("unfold", arity=1, infer=_unfold_rule, attrs=WINDOW)
def _unfold(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t)[b, c, k, l] = x(t)[b, c, l*s + k*d - pad] (zero off the edge): im2col"""
    return _windows(x, attrs)


def _fold_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    (p,) = types
    d = len(attrs["kernel"])
    S = list(attrs["sizes"])
    want = (p.shape[1], *attrs["kernel"], *out_sizes(S, attrs)) if p.rank == 2 * d + 2 else None
    if p.dtype != "float" or not p.batched or tuple(p.shape[1:]) != want:
        raise ValueError(f"fold's windows must be (B, C, *kernel, *positions) = {want}, got {p}")
    return TensorType(("B", p.shape[1], *S))


@register_op("fold", arity=1, infer=_fold_rule, attrs=(*WINDOW, "sizes"))
def _fold(attrs: Mapping[str, Any], p: np.ndarray) -> np.ndarray:
    """y(t)[b, c, i] = sum of p(t)[b, c, k, l] over the k, l with l*s + k*d - pad = i: col2im"""
    d = len(attrs["kernel"])
    S = list(attrs["sizes"])
    L = p.shape[p.ndim - d :]
    lead = p.shape[: p.ndim - 2 * d]  # (..., C)
    padded = [n + lo + hi for n, (lo, hi) in zip(S, attrs["pads"], strict=True)]
    out = np.zeros((*lead, *padded), p.dtype)
    for k in itertools.product(*(range(n) for n in attrs["kernel"])):
        index = [slice(None)] * len(lead)
        for ki, li, s, dil in zip(k, L, attrs["strides"], attrs["dilations"], strict=True):
            index.append(slice(ki * dil, ki * dil + s * (li - 1) + 1, s))
        window: tuple[Any, ...] = (Ellipsis, *k, *([slice(None)] * d))
        out[tuple(index)] += p[window]
    crop = [slice(None)] * len(lead) + [
        slice(lo, lo + n) for n, (lo, _) in zip(S, attrs["pads"], strict=True)
    ]
    return out[tuple(crop)]


def unfold(x: Value, attrs: Mapping[str, Any], *, name: str | None = None) -> Value:
    """Every window of ``x`` ``(B, C, *S)`` as ``(B, C, *K, *L)`` (``attrs``: the window's
    kernel, strides, pads and dilations, as the conv and pool nodes hold them)."""
    return x.graph.apply("unfold", [x], {k: attrs[k] for k in WINDOW}, name=name)


def fold(
    p: Value, attrs: Mapping[str, Any], sizes: Sequence[int], *, name: str | None = None
) -> Value:
    """The windows ``p`` ``(B, C, *K, *L)`` summed back into ``(B, C, *sizes)``."""
    a = {k: attrs[k] for k in WINDOW}
    a["sizes"] = [int(n) for n in sizes]
    return p.graph.apply("fold", [p], a, name=name)


# --------------------------------------------------------------------- pooling


def _pool_rule(types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    (x,) = types
    C, S = _spatial(x, attrs, "max_pool")
    L = out_sizes(S, attrs)
    pads, kernel = attrs["pads"], attrs["kernel"]
    if any(lo >= k or hi >= k for (lo, hi), k in zip(pads, kernel, strict=True)):
        raise ValueError(f"padding {pads} must be smaller than the kernel {kernel}")
    return TensorType(("B", C, *L))


@register_op("max_pool", arity=1, infer=_pool_rule, attrs=WINDOW)
def _max_pool(attrs: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """y(t)[b, c, l] = max over k of x(t)[b, c, l*s + k*d - pad] (padding never wins)"""
    d = len(attrs["kernel"])
    lowest = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    pad = [(0, 0)] * (x.ndim - d) + [tuple(p) for p in attrs["pads"]]
    shifted = np.pad(x, pad, constant_values=lowest)
    p = _windows(shifted, {**attrs, "pads": [[0, 0]] * d})
    return np.max(p, axis=tuple(range(p.ndim - 2 * d, p.ndim - d)))


def _pool_attrs(
    op: str, x: Value, kernel_size: Any, stride: Any, padding: Any, dilation: Any, name: Any
) -> dict[str, Any]:
    d = x.type.rank - 2
    try:
        if d not in (1, 2):
            raise ValueError(f"needs a signal (B, C, L) or (B, C, H, W), got {x.type}")
        return _window_attrs(
            d, kernel_size, kernel_size if stride is None else stride, padding, dilation
        )
    except ValueError as e:
        raise x.graph.shape_error(op, name, str(e), [x]) from None


def max_pool(
    x: Value,
    kernel_size: int | Sequence[int] = 2,
    stride: int | Sequence[int] | None = None,
    padding: Any = 0,
    *,
    dilation: int | Sequence[int] = 1,
    name: str | None = None,
) -> Value:
    """The largest entry of each window of ``x`` ``(B, C, *S)`` (PyTorch's ``max_pool1d`` /
    ``max_pool2d``; ``stride`` defaults to the kernel size).

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("mp")
    >>> g.output("y", rg.max_pool(g.input("x", (1, 4)), 2))
    >>> rg.run(g, {"x": np.array([[[[1.0, 3.0, -2.0, -1.0]]]])})["y"].tolist()
    [[[[3.0, -1.0]]]]
    """
    attrs = _pool_attrs("max_pool", x, kernel_size, stride, padding, dilation, name)
    return x.graph.apply("max_pool", [x], attrs, name=name)


def max_pool_choice(x: Value, attrs: Mapping[str, Any]) -> tuple[Value, Value]:
    """Which entry of each window ``max_pool`` takes: the index ``(B, C, 1, *L)``, in the
    flattened window, of the first largest (padding never chosen), and the flattened
    windows ``(B, C, prod(K), *L)`` it indexes. Both gradient rules use it."""
    d = len(attrs["kernel"])
    p = unfold(x, attrs)
    inside = unfold(zeros_like(x) + 1.0, attrs)
    L = [int(n) for n in p.shape[2 + d :]]
    flat = [int(x.shape[1]), int(np.prod(attrs["kernel"])), *L]
    low = x.graph.constant(np.array(-np.inf))
    scores = reshape(where(greater(inside, 0.5), p, low), flat)
    return argmax(scores, -d - 1, keepdims=True), scores


def avg_pool(
    x: Value,
    kernel_size: int | Sequence[int] = 2,
    stride: int | Sequence[int] | None = None,
    padding: Any = 0,
    *,
    count_include_pad: bool = True,
    name: str | None = None,
) -> Value:
    """The mean of each window of ``x`` ``(B, C, *S)`` (PyTorch's ``avg_pool1d`` /
    ``avg_pool2d``): a depthwise ``conv`` with constant weights. With
    ``count_include_pad=False`` a window's padding is left out of its count.

    Examples
    --------
    >>> import numpy as np
    >>> import rnngraph as rg
    >>> g = rg.Graph("ap")
    >>> g.output("y", rg.avg_pool(g.input("x", (1, 4)), 2))
    >>> rg.run(g, {"x": np.array([[[[1.0, 3.0, -2.0, -1.0]]]])})["y"].tolist()
    [[[[2.0, -1.5]]]]
    """
    attrs = _pool_attrs("avg_pool", x, kernel_size, stride, padding, 1, name)
    g = x.graph
    C, kern = int(x.shape[1]), attrs["kernel"]
    ones = g.constant(np.ones((C, 1, *kern)))
    opts = {"stride": attrs["strides"], "padding": attrs["pads"], "groups": C}
    total = conv(x, ones, **opts)
    if count_include_pad or not any(lo or hi for lo, hi in attrs["pads"]):
        count: Value = g.constant(np.array(float(np.prod(kern))))
    else:
        count = conv(zeros_like(x) + 1.0, ones, **opts)
    return g.apply("div", [total, count], name=name)
