"""The figure of the experiment: predicted against true age, one panel per landmark source."""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd

from denseseg.io.atomic import write_bytes_atomic


def scatter_png(rows: pd.DataFrame, path: str | os.PathLike, title: str, baseline_months: float | None = None) -> None:
    """One panel per ``source`` of ``rows`` (true_months, predicted_months), the identity line and the baseline.

    Args:
        rows: predictions with columns source, true_months, predicted_months (one target).
        path: the PNG written (atomically, without a software tag: same rows, same bytes).
        title: the figure's title.
        baseline_months: the trivial prediction (mean training age), drawn as a dashed line when given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(dict.fromkeys(rows["source"]))
    fig, axes = plt.subplots(1, max(1, len(sources)), figsize=(3.4 * max(1, len(sources)), 3.6), squeeze=False)
    values = rows[["true_months", "predicted_months"]].to_numpy(np.float64)
    lo, hi = (float(np.nanmin(values)), float(np.nanmax(values))) if len(rows) else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    limits = (lo - pad, hi + pad)
    for ax, source in zip(axes[0], sources):
        part = rows[rows["source"] == source]
        mae = float(np.abs(part["predicted_months"] - part["true_months"]).mean())
        ax.plot(limits, limits, color="0.6", lw=1, label="identity")
        if baseline_months is not None:
            ax.axhline(baseline_months, color="tab:red", ls="--", lw=1, label="mean training age")
        ax.scatter(part["true_months"], part["predicted_months"], s=14, color="tab:blue")
        ax.set(xlim=limits, ylim=limits, xlabel="true age (months)", title=f"{source}: MAE {mae:.1f} months")
        ax.set_aspect("equal")
    axes[0][0].set_ylabel("predicted age (months)")
    axes[0][0].legend(fontsize=7, loc="upper left")
    if not sources:
        axes[0][0].text(0.5, 0.5, "no predictions", ha="center", transform=axes[0][0].transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
