"""Quality control of registered landmarks: does their polygon still cover the bone, in order?

Landmarks that slid, folded or jumped to a neighbouring structure give a polygon
that no longer matches the mask, so the Dice between the rasterised landmark
polygon and the mask is a cheap, label-free check (the published annotations were
accepted at Dice 0.8). Two more label-free figures catch what a polygon's Dice
forgives: order reversals (landmarks that step backwards along the outline: a
local fold) and the inverse-consistency gap (the largest disagreement, along the
outline, between the forward and the reverse fit). The registration residual is
reported beside them. Each bound is optional (``register.qc``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from skimage.draw import polygon as draw_polygon

from denseseg.shape.polyline import order_reversals


class QCParams(BaseModel):
    """When registered landmarks pass (``register.qc`` in ``params.yaml``).

    Args:
        dice_threshold: a bone passes when its landmark polygon and its mask agree at least this well.
        max_residual_px: a bone also fails above this registration residual (None: no bound).
        max_order_reversals: a bone fails with more order reversals than this (None: no bound).
        max_inverse_gap_px: a bone fails when its forward and reverse fits disagree by more (None: no bound).
        require_all_bones: an image without every bone fails (the bones it lacks are its reasons).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dice_threshold: float = Field(ge=0, le=1)
    max_residual_px: float | None = Field(gt=0)
    max_order_reversals: int | None = Field(ge=0)
    max_inverse_gap_px: float | None = Field(gt=0)
    require_all_bones: bool


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
    order_reversals: int
    inverse_gap_px: float
    passed: bool
    reason: str  # empty when passed

    def row(self, structure: str) -> tuple:
        """The QC table's row of this bone, less the image's columns (``QC_COLUMNS[1:-1]``)."""
        return (
            structure,
            self.dice,
            self.residual_px,
            self.order_reversals,
            self.inverse_gap_px,
            self.passed,
            self.reason,
        )


def bone_qc(bone, mask: np.ndarray, outline: np.ndarray, params: QCParams) -> BoneQC:
    """QC of one registered bone (``BoneResult``) against its ``mask`` and its image ``outline``."""
    landmarks, residual, gap = bone.landmarks, float(bone.residual_px), float(bone.inverse_gap_px)
    if not np.isfinite(landmarks).all():
        return BoneQC(float("nan"), residual, 0, gap, False, "landmarks contain NaN")
    value = dice(rasterise_polygon(landmarks, mask.shape), mask.astype(bool))
    reversals = order_reversals(landmarks, outline)
    reasons = []
    if value < params.dice_threshold:
        reasons.append(f"dice {value:.3f} < {params.dice_threshold}")
    if params.max_residual_px is not None and not residual <= params.max_residual_px:
        reasons.append(f"residual {residual:.2f} px > {params.max_residual_px}")
    if params.max_order_reversals is not None and reversals > params.max_order_reversals:
        reasons.append(f"{reversals} landmark order reversal(s) > {params.max_order_reversals}")
    if params.max_inverse_gap_px is not None and not gap <= params.max_inverse_gap_px:
        reasons.append(f"inverse-consistency gap {gap:.2f} px > {params.max_inverse_gap_px}")
    return BoneQC(float(value), residual, reversals, gap, not reasons, "; ".join(reasons))


@dataclass(frozen=True)
class ImageQC:
    """QC of one image: a row per structure and the reasons it fails (none: it passes)."""

    rows: list[tuple]  # QC_COLUMNS[1:-1] per structure
    reasons: list[str] = field(default_factory=list)  # "<structure>: <why>"

    @property
    def passed(self) -> bool:
        return not self.reasons


def image_qc(
    structures: Sequence[str],
    results: Mapping[str, object],
    masks: np.ndarray,
    outlines: Mapping[str, np.ndarray],
    problems: Mapping[str, str],
    upstream: Sequence[str],
    params: QCParams,
) -> ImageQC:
    """QC of every structure of one registered image.

    A registered bone is checked by ``bone_qc``; a bone that was not registered
    fails with the earlier stage's reason (``upstream``: "<structure>: <why>", the
    contours stage's rejects), else the registration's (``problems``), else "no
    outline". It fails the image when ``require_all_bones`` or when the image has
    its outline (it failed in registration).

    Args:
        structures: the anatomy's structures, in order (the rows' order).
        results: {structure: registered bone} (``BoneResult``).
        masks: (S, H, W) the image's masks, in ``structures`` order.
        outlines: {structure: outline} of the image (which bones it has).
        problems: {structure: why} of the bones registration could not carry.
        upstream: the earlier stage's reasons for this image.
        params: the thresholds.
    """
    earlier = {r.split(":", 1)[0]: r.split(":", 1)[1].strip() for r in upstream}
    rows, reasons = [], []
    for i, s in enumerate(structures):
        if s in results:
            q = bone_qc(results[s], masks[i], np.asarray(outlines[s], dtype=np.float64), params)
            rows.append(q.row(s))
            if not q.passed:
                reasons.append(f"{s}: {q.reason}")
        else:
            why = earlier.get(s) or problems.get(s, "no outline")
            rows.append(BoneQC(np.nan, np.nan, 0, np.nan, False, why).row(s))
            if params.require_all_bones or s in outlines:
                reasons.append(f"{s}: {why}")
    return ImageQC(rows, reasons)


QC_COLUMNS = [
    "filestem",
    "structure",
    "dice",
    "residual_px",
    "order_reversals",
    "inverse_gap_px",
    "passed",
    "reason",
    "image_passed",
]


def qc_rows(filestem: str, qc: ImageQC) -> pd.DataFrame:
    """The QC table's rows of one image."""
    return pd.DataFrame([[filestem, *row, qc.passed] for row in qc.rows], columns=QC_COLUMNS)


def qc_table(parts: Sequence[pd.DataFrame], structures: Sequence[str]) -> pd.DataFrame:
    """The QC rows of many images, sorted by image and structure (in ``structures`` order)."""
    order = {s: i for i, s in enumerate(structures)}
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=QC_COLUMNS)
    table = table.sort_values(
        ["filestem", "structure"], key=lambda c: c.map(order) if c.name == "structure" else c, kind="stable"
    )
    return table.reset_index(drop=True)


def qc_figures(table: pd.DataFrame) -> dict:
    """Bones failed, and the median Dice and residual of the registered bones (NaN for none)."""
    return {
        "bones_failed_qc": int((~table["passed"].astype(bool)).sum()),
        "dice_median": float(np.nanmedian(table["dice"])) if table["dice"].notna().any() else float("nan"),
        "residual_median_px": (
            float(np.nanmedian(table["residual_px"])) if table["residual_px"].notna().any() else float("nan")
        ),
    }
