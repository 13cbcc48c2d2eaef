"""Segmentation scores: Dice and average symmetric surface distance, per bone and group.

Dice says how much area agrees; the surface distance says how far the borders
are apart in pixels, which is what the contours (and hence the landmarks) drawn
from the masks inherit. Both are reported per bone group of the anatomy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from denseseg.anatomy import Anatomy
from denseseg.evaluation.surface import boundary, symmetric_surface_distance

__all__ = ["average_surface_distance", "boundary", "dice", "group_summary", "score_masks"]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A and B| / (|A| + |B|); 1.0 when both are empty (agreement that nothing is there)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes: {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def average_surface_distance(a: np.ndarray, b: np.ndarray, spacing: float = 1.0) -> float:
    """Mean over the boundary pixels of both masks of the distance to the other's boundary.

    NaN when either mask is empty (no surface to compare); multiply by
    ``spacing`` (mm per px) to get mm. The same number as
    ``denseseg.evaluation.surface.symmetric_surface_distance`` (kept under this
    name for its callers).
    """
    return symmetric_surface_distance(a, b, spacing)


def score_masks(
    item: str, pred: np.ndarray, truth: np.ndarray, structures: Sequence[str], spacing: float = 1.0
) -> list[dict]:
    """One row per structure present in prediction or truth: item, structure, dice, asd."""
    if pred.shape != truth.shape or pred.shape[0] != len(structures):
        raise ValueError(f"{item}: prediction {pred.shape} and truth {truth.shape} must be (S={len(structures)}, H, W)")
    rows = []
    for s, name in enumerate(structures):
        if not pred[s].any() and not truth[s].any():
            continue
        rows.append(
            {
                "item": item,
                "structure": name,
                "dice": dice(pred[s], truth[s]),
                "asd": average_surface_distance(pred[s], truth[s], spacing),
            }
        )
    return rows


def group_summary(scores: pd.DataFrame, anatomy: Anatomy) -> dict[str, dict[str, float]]:
    """Mean Dice and ASD per reporting group and over all (NaN-safe; ``n`` is the row count)."""
    out: dict[str, dict[str, float]] = {}
    if scores.empty:
        return out
    group = scores["structure"].map(anatomy.group_of)
    for name, part in [*scores.groupby(group, sort=True), ("all", scores)]:
        out[str(name)] = {
            "dice_mean": float(part["dice"].mean()),
            "asd_mean": float(part["asd"].mean()) if part["asd"].notna().any() else float("nan"),
            "n": int(len(part)),
        }
    return out
