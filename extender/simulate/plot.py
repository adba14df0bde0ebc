"""Allocation-vs-arrival curves as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_curves"]


def plot_curves(results: Sequence[dict[str, Any]], path: str | Path, title: str | None = None,
                reference: dict[str, float] | None = None) -> None:
    """One curve per result of `run`: the whole run on the left, the saturated end zoomed on the right.

    `reference` adds dotted horizontal lines (label -> allocation %), for published figures.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (full, zoom) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120, gridspec_kw={"width_ratios": [1, 1.2]})
    top = max((r["curve"]["arrival_pct"][-1] for r in results), default=130)
    finals = [r["allocation_pct"] for r in results] + list((reference or {}).values())
    low = max(0.0, min(finals, default=80.0) - 3.0)
    for r in results:
        curve = r["curve"]
        label = f"{r['scorer']} ({r['allocation_pct']:.2f}%)"
        full.plot(curve["arrival_pct"], curve["allocation_pct"], label=label)
        zoom.plot(curve["arrival_pct"], curve["allocation_pct"], label=label)
    for ax in (full, zoom):
        ax.plot([0, 100], [0, 100], color="lightgrey", linewidth=0.8, zorder=0)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("arrived GPU demand (% of cluster GPU capacity)")
    for label, value in (reference or {}).items():
        zoom.axhline(value, linestyle=":", linewidth=1, color="grey")
        zoom.annotate(label, (top, value), xytext=(-4, 3), textcoords="offset points", fontsize=7, color="grey",
                      ha="right")
    full.set_xlim(0, top)
    full.set_ylim(0, 100)
    full.set_ylabel("GPU allocation (%)")
    zoom.set_xlim(max(0.0, low - 5.0), top)
    zoom.set_ylim(low, min(100.0, max(finals, default=100.0) + 1.5))
    zoom.set_title("end of the run", fontsize=9)
    zoom.legend(loc="lower right", fontsize=8)
    if title is None and results:
        seeds = results[0].get("seeds", [])
        title = f"{Path(str(results[0].get('pods_csv', ''))).name}, {len(seeds)} seed(s)"
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
