"""Line charts (training curves) drawn with matplotlib, to ``.svg``, ``.png`` or ``.pdf``.

Every chart has a title, axis labels, ticks and a legend. matplotlib is an extra
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

__all__ = ["line_chart"]

FORMATS = (".svg", ".png", ".pdf")


def line_chart(
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "",
    log_y: bool | None = None,
) -> str:
    """Draw each named series against its index to ``path`` (``.svg``, ``.png`` or ``.pdf``).

    ``log_y``: a logarithmic y axis; by default when every value is positive and
    they span more than two decades (a loss that falls a lot).
    """
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"line_chart writes {', '.join(FORMATS)}, not {suffix or path!r}")
    values = [float(v) for s in series.values() for v in s]
    if not values:
        raise ValueError("line_chart needs at least one non-empty series")
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("charts are drawn with matplotlib: pip install 'rnngraph[plot]'") from e
    if log_y is None:
        positive = [v for v in values if v == v]  # (NaN left out)
        log_y = bool(positive) and min(positive) > 0 and max(positive) > 100 * min(positive)
    fig = Figure(figsize=(7, 4), dpi=120, layout="constrained")  # (no pyplot: thread-safe)
    ax = fig.add_subplot()
    for name, ys in series.items():
        if len(ys):
            ax.plot(range(len(ys)), [float(v) for v in ys], label=name, linewidth=1.2)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend()
    with atomic_path(path, suffix=suffix) as tmp:
        fig.savefig(tmp, format=suffix[1:])
    return path
