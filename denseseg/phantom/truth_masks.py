"""The phantom's true bone masks in the working frame, as label propagation is scored against them.

Each bone's dense truth contour (original pixels of the stored image, see
``denseseg.io.truth``) is mapped into the working frame and filled; what lies
outside the original image (the letterbox padding) is not bone in the working
image. ``denseseg.phantom.truth_landmarks.working_truth`` rasterises the same
polygons for the landmark evaluations with its own footprint rule; the
propagation's recorded scores were made with this one, so it stays as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from skimage.draw import polygon2mask

from denseseg.preprocessing.working_frame import WorkingFrame


def truth_masks(contours: pd.DataFrame, frame: WorkingFrame, structures: Sequence[str]) -> np.ndarray:
    """(S, H, W) true masks of one image from its TRUTH_CONTOURS rows; structures not in ``structures`` are skipped."""
    structures = list(structures)
    out = np.zeros((len(structures), frame.height, frame.width), bool)
    footprint = frame.warp_mask(np.ones((frame.orig_height, frame.orig_width), bool))
    for name, part in contours.groupby("structure", sort=False):
        if name not in structures:
            continue
        part = part.sort_values("point")
        xy = frame.to_working(part[["x", "y"]].to_numpy(np.float64))
        out[structures.index(name)] = polygon2mask((frame.height, frame.width), xy[:, ::-1]) & footprint
    return out
