"""The report's loss chart, drawn with matplotlib (imported only when there is something to draw)."""

from __future__ import annotations

import io

from .history import LOSS_TERMS, History


def plot_loss(history: History) -> bytes | None:
    """The loss curves as PNG bytes, or None when there is nothing to plot."""
    if not any(history.points.values()):
        return None
    from matplotlib.figure import Figure  # imported here: heavy, and only needed with data

    # A bare Figure renders through the Agg canvas on savefig: no display, no global backend state.
    figure = Figure(figsize=(9, 4.5), dpi=100)
    axes = figure.add_subplot()
    for term in LOSS_TERMS:
        if history.points[term]:
            xs, ys = zip(*history.points[term])
            axes.plot(xs, ys, label=term, linewidth=1, marker=".", markersize=3)
    for x, level in history.boundaries:
        axes.axvline(x, color="0.55", linestyle=":", linewidth=1)
        axes.text(x, 1.0, f" level {level + 1}", transform=axes.get_xaxis_transform(), fontsize=8, va="top")
    for number, x in enumerate(history.resumes):
        axes.axvline(x, color="tab:red", linestyle="--", linewidth=1, label=None if number else "resumed")
    axes.set_yscale("log")
    axes.set_xlabel("evaluation (whole render)")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
