"""Polygon rasterisation shared by the renderer, the seed masks and the tests.

Why one function: the rendered bone, the seed-annotation mask and the test's
reference must agree pixel for pixel; a pixel belongs to a bone when its centre
(integer (column, row)) lies inside the closed contour.
"""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon as _polygon


def polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) mask of the closed polygon ``points`` ((x, y) = (column, row)), clipped to the image."""
    mask = np.zeros(shape, dtype=bool)
    rr, cc = _polygon(points[:, 1], points[:, 0], shape=shape)
    mask[rr, cc] = True
    return mask


def polygon_crop(points: np.ndarray, shape: tuple[int, int], pad: int = 2):
    """The polygon's mask inside its bounding box clipped to the image, with the box origin.

    Returns ``(mask, (row0, col0))`` or ``None`` when the polygon lies outside the image.
    """
    h, w = shape
    r0 = max(int(np.floor(points[:, 1].min())) - pad, 0)
    r1 = min(int(np.ceil(points[:, 1].max())) + pad + 1, h)
    c0 = max(int(np.floor(points[:, 0].min())) - pad, 0)
    c1 = min(int(np.ceil(points[:, 0].max())) + pad + 1, w)
    if r1 <= r0 or c1 <= c0:
        return None
    local = points - np.array([c0, r0])
    mask = polygon_mask(local, (r1 - r0, c1 - c0))
    if not mask.any():
        return None
    return mask, (r0, c0)
