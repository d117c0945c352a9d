"""Line charts written to ``.svg`` or ``.png`` without a plotting library.

SVG charts carry axes, tick labels and a title; PNG charts are the same
curves rasterised (no text), for viewers that do not read SVG. Files are
written atomically.

Examples
--------
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "loss.svg")
>>> line_chart({"train": [3.0, 2.0, 1.5, 1.2]}, path, title="loss") == path
True
"""

from __future__ import annotations

import itertools
import os
import struct
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["line_chart"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
_W, _H, _PAD = 640, 360, 48


def _atomic(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".rnngraph-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _scale(series: Mapping[str, Sequence[float]]) -> tuple[float, float, int]:
    vals = np.concatenate([np.asarray(v, float) for v in series.values() if len(v)])
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    if hi == lo:
        hi = lo + 1.0
    n = max(len(v) for v in series.values())
    return lo, hi, max(n - 1, 1)


def _points(v: Sequence[float], lo: float, hi: float, n: int) -> list[tuple[float, float]]:
    sx = (_W - 2 * _PAD) / n
    sy = (_H - 2 * _PAD) / (hi - lo)
    return [(_PAD + i * sx, _H - _PAD - (float(y) - lo) * sy) for i, y in enumerate(v)]


def _svg(series: Mapping[str, Sequence[float]], title: str, xlabel: str) -> bytes:
    lo, hi, n = _scale(series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="black"/>',
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="black"/>',
        f'<text x="{_W / 2}" y="{_H - 10}" text-anchor="middle">{xlabel}</text>',
    ]
    for k in range(5):
        y = lo + (hi - lo) * k / 4
        py = _H - _PAD - (_H - 2 * _PAD) * k / 4
        parts.append(f'<text x="{_PAD - 4}" y="{py + 4}" text-anchor="end">{y:.3g}</text>')
        px = _PAD + (_W - 2 * _PAD) * k / 4
        parts.append(
            f'<text x="{px}" y="{_H - _PAD + 16}" text-anchor="middle">{n * k / 4:.0f}</text>'
        )
    for i, (name, v) in enumerate(series.items()):
        color = _COLORS[i % len(_COLORS)]
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in _points(v, lo, hi, n))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>')
        parts.append(
            f'<text x="{_W - _PAD}" y="{_PAD + 14 * i}" text-anchor="end" '
            f'fill="{color}">{name}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts).encode()


def _png(series: Mapping[str, Sequence[float]]) -> bytes:
    lo, hi, n = _scale(series)
    img = np.full((_H, _W, 3), 255, np.uint8)
    img[_H - _PAD, _PAD : _W - _PAD] = 0
    img[_PAD : _H - _PAD, _PAD] = 0
    for i, v in enumerate(series.values()):
        rgb = [int(_COLORS[i % len(_COLORS)][j : j + 2], 16) for j in (1, 3, 5)]
        pts = _points(v, lo, hi, n)
        for (x0, y0), (x1, y1) in itertools.pairwise(pts):
            steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
            xs = np.linspace(x0, x1, steps).round().astype(int)
            ys = np.linspace(y0, y1, steps).round().astype(int)
            for dy in (0, 1):
                img[np.clip(ys + dy, 0, _H - 1), np.clip(xs, 0, _W - 1)] = rgb
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(_H))

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", _W, _H, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def line_chart(
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    xlabel: str = "step",
) -> str:
    """Draw each named series against its index to ``path`` (``.svg`` or ``.png``)."""
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    if not series or not any(len(v) for v in series.values()):
        raise ValueError("line_chart needs at least one non-empty series")
    if suffix == ".svg":
        _atomic(path, _svg(series, title, xlabel))
    elif suffix == ".png":
        _atomic(path, _png(series))
    else:
        raise ValueError(f"line_chart writes .svg or .png, not {suffix!r}")
    return path
