"""The overlay of a prediction on the original radiograph: readable at a glance, deterministic bytes.

The radiograph is shown in its own orientation, windowed between its 0.5th and
99.5th percentiles and scaled down so its longer side is at most ``max_side``.
Each bone's predicted outline has its own colour (``COLOURS``, in the anatomy's
structure order), landmarks are yellow dots, extra points magenta crosses.
Lines and dots grow with the output size so they stay visible on a large image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from denseseg.evaluation.surface import boundary

# 17 distinguishable colours (one per wrist bone, in anatomy order; reused cyclically for other anatomies)
COLOURS = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 140, 0),
    (0, 130, 200),
    (0, 0, 255),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (220, 190, 255),
    (170, 110, 40),
    (255, 250, 200),
    (128, 0, 0),
    (170, 255, 195),
    (128, 128, 0),
)
LANDMARK_COLOUR = (255, 255, 0)
POINT_COLOUR = (255, 0, 255)


def _window(pixels: np.ndarray) -> np.ndarray:
    """uint16 -> float in [0, 1] between the 0.5th and 99.5th percentile (a display window)."""
    low, high = np.percentile(pixels, [0.5, 99.5])
    if high <= low:
        low, high = float(pixels.min()), float(pixels.max()) or 1.0
    scaled = (pixels.astype(np.float64) - low) / max(high - low, 1e-6)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _disc(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2 + radius


def _stamp(rgb: np.ndarray, points: np.ndarray, footprint: np.ndarray, colour) -> None:
    height, width = rgb.shape[:2]
    r = footprint.shape[0] // 2
    dy, dx = np.nonzero(footprint)
    for x, y in points[np.isfinite(points).all(1)]:
        rows, cols = int(round(y)) + dy - r, int(round(x)) + dx - r
        keep = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        rgb[rows[keep], cols[keep]] = colour


def render_overlay(
    pixels: np.ndarray,
    masks: np.ndarray,
    landmarks: np.ndarray | None,
    points: np.ndarray | None = None,
    max_side: int = 1024,
) -> np.ndarray:
    """(h, w, 3) uint8 overlay; inputs at the original pixels.

    Args:
        pixels: (H0, W0) uint16 radiograph.
        masks: (S, H0, W0) bool predicted masks.
        landmarks: (N, 2) (x, y) original pixels, NaN skipped, or None.
        points: (M, 2) extra points, or None.
        max_side: the overlay's longer side at most (never upscaled).
    """
    height, width = pixels.shape
    factor = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    grey = Image.fromarray(_window(pixels), mode="F").resize(size, Image.Resampling.BOX)
    grey = np.round(np.asarray(grey) * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    line = max(1, round(max(size) / 500))
    for s, mask in enumerate(np.asarray(masks, bool)):
        if not mask.any():
            continue
        small = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)
        edge = boundary(np.asarray(small) >= 128)
        if line > 1:
            edge = ndimage.binary_dilation(edge, iterations=line - 1)
        rgb[edge] = COLOURS[s % len(COLOURS)]

    def scaled(p):
        p = np.asarray(p, np.float64).reshape(-1, 2)
        return (p + 0.5) * np.array([size[0] / width, size[1] / height]) - 0.5

    if landmarks is not None:
        _stamp(rgb, scaled(landmarks), _disc(line), LANDMARK_COLOUR)
    if points is not None:
        arm = 3 * line + 1
        diagonal = np.eye(2 * arm + 1, dtype=bool)
        cross = diagonal | diagonal[:, ::-1]
        if line > 1:
            cross = ndimage.binary_dilation(cross, iterations=line // 2)
        _stamp(rgb, scaled(points), cross, POINT_COLOUR)
    return rgb
