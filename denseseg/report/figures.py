"""The report's figures as PNG bytes: the data flow, propagation per round, training curves, a uv map.

Drawn with matplotlib's object API on an Agg canvas (no pyplot state, safe in
a thread) at a fixed size and dpi, saved without the "Software" text chunk,
so that the same data give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, with no metadata that changes between runs."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def flow_figure(steps: Sequence[tuple[str, int]]) -> bytes:
    """Horizontal bars, one per step of the data flow, top to bottom, with the count written beside each."""
    labels = [label for label, _ in steps]
    counts = np.array([count for _, count in steps], float)
    fig = Figure(figsize=(7.5, 0.42 * len(steps) + 0.9))
    ax = fig.add_subplot()
    y = np.arange(len(steps))[::-1]
    ax.barh(y, counts, color="#4a78c2", height=0.62)
    for yi, count in zip(y, counts):
        ax.text(count, yi, f" {int(count)}", va="center", fontsize=9)
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_xlim(0, max(counts.max(), 1) * 1.15)
    ax.set_xlabel("images")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return png_bytes(fig)


def rounds_figure(rounds: pd.DataFrame) -> bytes:
    """Label propagation per round: Dice and ASD of the accepted and of all predicted images, and the counts.

    ``rounds`` has the columns of the propagate stage's ``rounds.csv``: round,
    dice_mean_accepted, dice_mean_all, asd_mean_accepted_px, asd_mean_all_px,
    n_accepted, n_rejected.
    """
    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, 3)
    r = rounds["round"].to_numpy()
    for ax, (acc, all_, label) in zip(
        axes[:2],
        (
            ("dice_mean_accepted", "dice_mean_all", "Dice vs truth"),
            ("asd_mean_accepted_px", "asd_mean_all_px", "ASD vs truth [px]"),
        ),
    ):
        ax.plot(r, rounds[acc], "o-", label="accepted pseudo-labels")
        ax.plot(r, rounds[all_], "s--", label="all predicted images")
        ax.set_xlabel("round")
        ax.set_ylabel(label)
        ax.set_xticks(r)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    width = 0.38
    axes[2].bar(r - width / 2, rounds["n_accepted"], width, label="accepted", color="#3b8f5a")
    axes[2].bar(r + width / 2, rounds["n_rejected"], width, label="rejected", color="#c2573a")
    axes[2].set_xlabel("round")
    axes[2].set_ylabel("predicted images")
    axes[2].set_xticks(r)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig)


def curves_figure(curves: Mapping[str, pd.DataFrame], metrics: Sequence[str]) -> bytes:
    """One panel per metric (a column of the training curves), one line per run, against the epoch."""
    rows = math.ceil(len(curves) / 5)  # legend rows below the panels, five runs a row
    fig = Figure(figsize=(5.2 * len(metrics), 3.6 + 0.25 * rows))
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    colours = matplotlib.colormaps["tab10"].colors
    for ax, metric in zip(axes, metrics):
        for i, (run, curve) in enumerate(curves.items()):
            if metric in curve:
                style = "-" if i < len(colours) else "--"
                ax.plot(curve["epoch"], curve[metric], style, color=colours[i % len(colours)], label=run, lw=1.3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    handles = {h.get_label(): h for ax in axes for h in ax.get_lines()}
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(5, len(handles)), fontsize=8.5)
    fig.tight_layout(rect=(0, 0.07 * rows + 0.03, 1, 1))
    return png_bytes(fig)


def uv_projection(uv: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) images (H, W) from per-structure maps (S, 2, H, W) and masks (S, H, W); NaN outside every mask.

    Where structures overlap the larger value is shown (as docs/figures/uvmap.png).
    """
    inside = masks.any(0)
    u = np.where(masks, uv[:, 0], -np.inf).max(0)
    v = np.where(masks, uv[:, 1], -np.inf).max(0)
    u[~inside | ~np.isfinite(u)] = np.nan
    v[~inside | ~np.isfinite(v)] = np.nan
    return u, v


def uv_figure(image: np.ndarray, uv: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, title: str) -> bytes:
    """The image with its landmarks, then u and v of every structure (a uv cache item, ``UVCache.read``)."""
    u, v = uv_projection(uv, masks)
    height, width = image.shape[-2:]
    fig = Figure(figsize=(3 * 2.6 + 1.2, 2.6 * height / width + 0.7))
    axes = fig.subplots(1, 3)
    axes[0].imshow(np.asarray(image).reshape(height, width), cmap="gray")
    axes[0].plot(landmarks[:, 0], landmarks[:, 1], "r.", ms=1.5)
    axes[0].set_title(title, fontsize=8)
    for ax, data, label in ((axes[1], u, "u (along x)"), (axes[2], v, "v (along y)")):
        shown = ax.imshow(data, cmap="coolwarm", vmin=-1, vmax=1)
        ax.set_title(label + "; white: no bone", fontsize=8)
        fig.colorbar(shown, ax=ax, fraction=0.046)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return png_bytes(fig)
