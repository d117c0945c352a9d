"""Charts drawn with matplotlib, to ``.svg``, ``.png`` or ``.pdf``: line charts
(training curves) and heat maps (attention weights).

Every chart has a title, axis labels, ticks and a legend (or a colour bar). matplotlib is an extra
(``pip install 'rnngraph[plot]'``, in ``dev`` too); without it :func:`line_chart`
raises ImportError saying so. Files are written atomically with the umask's mode.

Examples
--------
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "loss.svg")
>>> line_chart({"train": [3.0, 2.0, 1.5, 1.2]}, path, title="loss") == path
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from rnngraph.files import atomic_path

__all__ = ["heatmap", "line_chart"]

FORMATS = (".svg", ".png", ".pdf")


def _figure(path: str, what: str) -> tuple[str, object]:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{what} writes {', '.join(FORMATS)}, not {suffix or path!r}")
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("charts are drawn with matplotlib: pip install 'rnngraph[plot]'") from e
    return suffix, Figure


def heatmap(
    values: Sequence[Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    xticks: Sequence[str] | None = None,
    yticks: Sequence[str] | None = None,
) -> str:
    """Draw a matrix (rows down, columns across) as a heat map with a colour bar, such as
    attention weights: one row per output step, one column per memory position.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "att.svg")
    >>> heatmap([[0.9, 0.1], [0.2, 0.8]], path, xticks=["a", "b"]) == path
    True
    """
    path = os.fspath(path)
    suffix, Figure = _figure(path, "heatmap")
    import numpy as np

    m = np.asarray(values, dtype=float)
    if m.ndim != 2 or 0 in m.shape:
        raise ValueError(f"heatmap draws a non-empty matrix, got shape {m.shape}")
    fig = Figure(
        figsize=(1.2 + 0.45 * m.shape[1], 1.0 + 0.4 * m.shape[0]), dpi=120, layout="constrained"
    )  # type: ignore[operator]
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap="viridis", aspect="auto", vmin=0.0)
    fig.colorbar(image, ax=ax)
    for ticks, setter in ((xticks, ax.set_xticks), (yticks, ax.set_yticks)):
        if ticks is not None:
            setter(range(len(ticks)), list(ticks))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    with atomic_path(path, suffix=suffix) as tmp:
        fig.savefig(tmp, format=suffix[1:])
    return path


def line_chart(
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "",
    log_y: bool | None = None,
    x: Sequence[float] | None = None,
    vline: tuple[float, str] | None = None,
) -> str:
    """Draw each named series against its index (or ``x``) to ``path`` (``.svg``,
    ``.png`` or ``.pdf``).

    ``log_y``: a logarithmic y axis; by default when every value is positive and
    they span more than two decades (a loss that falls a lot). ``vline``: a dashed
    vertical line at ``(position, label)`` (a known threshold, say).
    """
    path = os.fspath(path)
    values = [float(v) for s in series.values() for v in s]
    if not values:
        raise ValueError("line_chart needs at least one non-empty series")
    suffix, Figure = _figure(path, "line_chart")
    if log_y is None:
        positive = [v for v in values if v == v]  # (NaN left out)
        log_y = bool(positive) and min(positive) > 0 and max(positive) > 100 * min(positive)
    fig = Figure(figsize=(7, 4), dpi=120, layout="constrained")  # type: ignore[operator]
    ax = fig.add_subplot()
    for name, ys in series.items():
        if len(ys):
            xs = list(range(len(ys))) if x is None else [float(v) for v in x][: len(ys)]
            ax.plot(xs, [float(v) for v in ys], label=name, linewidth=1.2)
    if vline is not None:
        ax.axvline(float(vline[0]), linestyle="--", color="grey", label=vline[1])
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if len(series) > 1 or vline is not None:
        ax.legend()
    with atomic_path(path, suffix=suffix) as tmp:
        fig.savefig(tmp, format=suffix[1:])
    return path
