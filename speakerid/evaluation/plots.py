"""ROC, DET and score-histogram figures of verification trials (matplotlib, Agg, no pyplot).

Every function builds a :class:`matplotlib.figure.Figure` directly (nothing is registered with pyplot, so no
global figure state leaks between calls or threads) and returns it; :func:`save_figure` writes one atomically.

``systems`` is a mapping ``{name: (scores, labels)}`` or a sequence of ``(name, scores, labels)``; scores and
labels follow :mod:`speakerid.evaluation.metrics` (1 = target trial, accept when ``score >= threshold``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from speakerid._utils.files import atomic_write_bytes
from speakerid._utils.lazy import lazy_import
from speakerid.evaluation import metrics
from speakerid.exceptions import ParameterError

stats = lazy_import("scipy.stats")

__all__ = ["plot_roc", "plot_det", "plot_score_histograms", "save_figure", "figure_bytes", "probit",
           "DET_TICKS"]

#: Error rates labelled on DET axes (as percentages: 0.1, 0.5, 1, 2, 5, 10, 20, 40 %).
DET_TICKS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
# Rates of exactly 0 or 1 have infinite normal deviates; clipping to this keeps them drawable (off the axes).
_RATE_FLOOR = 1e-6


def probit(rate):
    """Normal deviate (inverse standard-normal CDF) of a rate: the coordinate of a DET axis.

    Rates are clipped to ``[1e-6, 1 - 1e-6]`` so that 0 and 1 map to finite points outside any sensible axes.

    Examples
    --------
    >>> float(probit(0.5))
    0.0
    >>> round(float(probit(0.01)), 4)
    -2.3263
    """
    return stats.norm.ppf(np.clip(np.asarray(rate, dtype=np.float64), _RATE_FLOOR, 1.0 - _RATE_FLOOR))


def _as_systems(systems) -> list:
    """``[(name, scores, labels), ...]`` from a mapping or a sequence of triples."""
    if isinstance(systems, Mapping):
        items = [(name, *pair) for name, pair in systems.items()]
    else:
        items = [tuple(item) for item in systems]
    if not items:
        raise ParameterError("no systems to plot")
    for item in items:
        if len(item) != 3:
            raise ParameterError("systems must be {name: (scores, labels)} or a sequence of (name, scores, labels)")
    return [(str(name), scores, labels) for name, scores, labels in items]


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _pct(rate: float) -> str:
    return f"{100 * rate:.2f} %"


def _thin(x, y, resolution: float):
    """Drop points closer than ``resolution`` (axis units) to their predecessor; keep both ends."""
    if len(x) <= 2:
        return x, y
    grid = np.stack([np.round(x / resolution), np.round(y / resolution)], axis=1)
    keep = np.r_[True, np.any(grid[1:] != grid[:-1], axis=1)]
    keep[-1] = True
    return x[keep], y[keep]


def _frame(ax, title: str, labels, limits, legend_loc: str) -> None:
    """What every curve plot sets around its curves: limits, axis labels, title, grid and legend."""
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc=legend_loc, fontsize="small")


def plot_roc(systems, ax=None, *, figsize=(5.5, 5.0)):
    """ROC curves (true-positive rate against false-positive rate), one per system, EER points marked.

    Parameters
    ----------
    systems : mapping or sequence
        ``{name: (scores, labels)}`` or ``[(name, scores, labels), ...]``.
    ax : matplotlib.axes.Axes, optional
        Draw on these axes instead of a new figure.
    figsize : tuple of float
        Size in inches of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Each curve is a ``Line2D`` whose ``gid`` is ``"roc:<name>"``.

    Examples
    --------
    >>> fig = plot_roc({"A": ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])})
    >>> [line.get_gid() for line in fig.axes[0].lines if line.get_gid()]
    ['roc:A']
    """
    fig, ax = _new_axes(ax, figsize)
    ax.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    for name, scores, labels in _as_systems(systems):
        fpr, tpr, _ = metrics.roc(scores, labels)
        eer = metrics.eer(scores, labels)
        (line,) = ax.plot(fpr, tpr, linewidth=1.5, label=f"{name} (EER {_pct(eer)})", gid=f"roc:{name}")
        ax.scatter([eer], [1.0 - eer], color=line.get_color(), marker="o", s=25, zorder=3)
    _frame(ax, "ROC", ("false acceptance rate (non-target trials accepted)",
                       "true acceptance rate (target trials accepted)"), ((0, 1), (0, 1.01)), "lower right")
    return fig


def plot_det(systems, ax=None, *, limits=(0.0005, 0.5), figsize=(5.5, 5.0)):
    """DET curves: miss rate against false-alarm rate on normal-deviate (probit) axes, EER points marked.

    On probit axes Gaussian score distributions give straight lines. Ticks are placed at the normal deviates of
    :data:`DET_TICKS` and labelled in percent (0.1, 0.5, 1, 2, 5, 10, 20, 40). Operating points with a rate of
    exactly 0 lie off the axes.

    Parameters
    ----------
    systems, ax
        See :func:`plot_roc`.
    limits : (float, float)
        Smallest and largest rate shown on both axes, in (0, 1).
    figsize : tuple of float
        Size in inches of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Each curve is a ``Line2D`` whose ``gid`` is ``"det:<name>"``; the EER points are scatter collections.

    Examples
    --------
    >>> fig = plot_det([("A", [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), ("B", [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])])
    >>> ax = fig.axes[0]
    >>> [line.get_gid() for line in ax.lines if line.get_gid()]
    ['det:A', 'det:B']
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['0.1', '0.5', '1', '2', '5', '10', '20', '40']
    >>> bool(np.allclose(ax.get_xticks(), probit(DET_TICKS)))
    True
    """
    low, high = (float(v) for v in limits)
    if not 0.0 < low < high < 1.0:
        raise ParameterError(f"DET limits must satisfy 0 < low < high < 1, got {limits}")
    fig, ax = _new_axes(ax, figsize)
    lo_dev, hi_dev = float(probit(low)), float(probit(high))
    ax.plot([lo_dev, hi_dev], [lo_dev, hi_dev], color="0.7", linestyle=":", linewidth=1)  # P_miss = P_fa
    for name, scores, labels in _as_systems(systems):
        _, p_miss, p_fa = metrics.det_curve(scores, labels)
        x, y = _thin(probit(p_fa), probit(p_miss), resolution=(hi_dev - lo_dev) / 1000)
        eer = metrics.eer(scores, labels)
        inside = (np.isfinite(x) & np.isfinite(y) & (x >= lo_dev) & (x <= hi_dev) & (y >= lo_dev) & (y <= hi_dev))
        # a curve needs both rates > 0: a system without errors (or with rates under the axes' limit) has nothing
        # to draw on probit axes, and the legend says so rather than listing an invisible curve
        note = ("no errors: nothing to draw on probit axes" if eer == 0.0 else
                f"every point outside the axes ({_pct(low)} - {_pct(high)})") if not inside.any() else ""
        label = f"{name} (EER {_pct(eer)}{'; ' + note if note else ''})"
        (line,) = ax.plot(x, y, linewidth=1.5, label=label, gid=f"det:{name}")
        if 0.0 < eer and low <= eer <= high:
            ax.scatter([probit(eer)], [probit(eer)], color=line.get_color(), marker="o", s=25, zorder=3)
    ticks = [t for t in DET_TICKS if low <= t <= high]
    labels_pct = [f"{100 * t:g}" for t in ticks]
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(probit(ticks), labels_pct)
    _frame(ax, "DET", ("false alarm rate (%)", "miss rate (%)"), ((lo_dev, hi_dev), (lo_dev, hi_dev)), "upper right")
    ax.set_aspect("equal")
    return fig


_DRAWABLE = 1e100


def _bin_edges(scores: np.ndarray, bins: int) -> np.ndarray:
    """``bins`` equal bins over the scores' range, computed without overflow even for scores near ±1e308."""
    low, high = float(scores.min()), float(scores.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    t = np.linspace(0.0, 1.0, bins + 1)
    edges = low * (1.0 - t) + high * t
    edges[0], edges[-1] = low, high
    return np.unique(edges)


def plot_score_histograms(scores, labels, ax=None, *, name=None, bins=50, figsize=(6.0, 4.0)):
    """Target and non-target score histograms of one system (as densities), the EER threshold marked.

    Parameters
    ----------
    scores, labels : array_like
        See :mod:`speakerid.evaluation.metrics`.
    ax : matplotlib.axes.Axes, optional
        Draw on these axes instead of a new figure.
    name : str, optional
        The system's name, for the title.
    bins : int
        Bins shared by both classes.
    figsize : tuple of float
        Size in inches of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_score_histograms([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], name="A")
    >>> fig.axes[0].get_title()
    'A: score distributions'
    """
    _, threshold = metrics.eer(scores, labels, return_threshold=True)  # also validates the trials
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if not (isinstance(bins, (int, np.integer)) and bins >= 1):
        raise ParameterError(f"bins must be a positive integer, got {bins!r}")
    fig, ax = _new_axes(ax, figsize)
    # matplotlib cannot draw axes spanning ~1e308: such (degenerate) scores are drawn at the edges of ±1e100
    scores = np.clip(scores, -_DRAWABLE, _DRAWABLE)
    edges = _bin_edges(scores, int(bins))
    ax.hist(scores[~labels], bins=edges, density=True, alpha=0.55, color="tab:red",
            label=f"non-target ({int((~labels).sum())})")
    ax.hist(scores[labels], bins=edges, density=True, alpha=0.55, color="tab:blue",
            label=f"target ({int(labels.sum())})")
    if np.isfinite(threshold):
        ax.axvline(float(np.clip(threshold, -_DRAWABLE, _DRAWABLE)), color="0.2", linestyle="--", linewidth=1,
                   label=f"EER threshold {threshold:.3g}")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.set_title(f"{name}: score distributions" if name else "score distributions")
    ax.legend(fontsize="small")
    return fig


def figure_bytes(fig, fmt: str = "png", dpi: int = 100) -> bytes:
    """Render a figure to bytes (``png``, ``svg`` or ``pdf``).

    Examples
    --------
    >>> figure_bytes(plot_roc({"A": ([0, 1], [0, 1])}))[:4]
    b'\\x89PNG'
    """
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise ParameterError(f"figure format must be png, svg or pdf, got {fmt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()


def save_figure(fig, path, dpi: int = 100) -> Path:
    """Write a figure atomically; the format follows the suffix (``.png``, ``.svg``, ``.pdf``).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    atomic_write_bytes(path, figure_bytes(fig, path.suffix or "png", dpi=dpi))
    return path
