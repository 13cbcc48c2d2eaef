"""Quality control of registered landmarks: does their polygon still cover the bone?

Landmarks that slid, folded or jumped to a neighbouring structure give a polygon
that no longer matches the mask, so the Dice between the rasterised landmark
polygon and the mask is a cheap, label-free check (the published annotations were
accepted at Dice 0.8). The registration residual is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.draw import polygon as draw_polygon

DEFAULT_DICE_THRESHOLD = 0.8


def rasterise_polygon(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixel centres inside the closed polygon of (x, y) points."""
    mask = np.zeros(shape, dtype=bool)
    rr, cc = draw_polygon(points[:, 1], points[:, 0], shape=shape)
    mask[rr, cc] = True
    return mask


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


@dataclass(frozen=True)
class BoneQC:
    dice: float
    residual_px: float
    passed: bool
    reason: str  # empty when passed


def bone_qc(
    landmarks: np.ndarray,
    mask: np.ndarray,
    residual_px: float,
    dice_threshold: float = DEFAULT_DICE_THRESHOLD,
    max_residual_px: float | None = None,
) -> BoneQC:
    """QC of one bone: Dice of the landmark polygon against ``mask`` and the residual."""
    if not np.isfinite(landmarks).all():
        return BoneQC(float("nan"), float(residual_px), False, "landmarks contain NaN")
    value = dice(rasterise_polygon(landmarks, mask.shape), mask.astype(bool))
    reasons = []
    if value < dice_threshold:
        reasons.append(f"dice {value:.3f} < {dice_threshold}")
    if max_residual_px is not None and not residual_px <= max_residual_px:
        reasons.append(f"residual {residual_px:.2f} px > {max_residual_px}")
    return BoneQC(float(value), float(residual_px), not reasons, "; ".join(reasons))
