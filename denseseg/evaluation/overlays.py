"""Qualitative overlays (the paper's Figs. 3 and 4): image, contours and landmarks, as a deterministic PNG.

Drawn with numpy into an RGB array and encoded by Pillow, with no
anti-aliasing, fonts or timestamps, so the same inputs give the same bytes.
Colours: the reference in red (contours and landmarks; the paper's "small red
dots" are the ground truth), the prediction's contours in cyan and its
landmarks in yellow. Contours are the 4-connected boundary pixels of each
mask (``surface.boundary``), at the output resolution.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from denseseg.evaluation.surface import boundary
from denseseg.io.atomic import write_bytes_atomic

TRUE_COLOUR = (255, 0, 0)
PRED_CONTOUR_COLOUR = (0, 255, 255)
PRED_LANDMARK_COLOUR = (255, 255, 0)


def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise ValueError(f"image must be (H, W) or (1, H, W), got shape {image.shape}")
    grey = np.round(np.clip(np.nan_to_num(image, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _masks(name: str, masks, shape: tuple[int, int]) -> np.ndarray | None:
    if masks is None:
        return None
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or masks.shape[1:] != shape:
        raise ValueError(f"{name} must be (S, {shape[0]}, {shape[1]}), got shape {masks.shape}")
    return masks


def _draw_contours(rgb: np.ndarray, masks: np.ndarray | None, scale: int, colour) -> None:
    if masks is None:
        return
    for mask in masks:
        big = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
        rgb[boundary(big)] = colour


def _draw_points(rgb: np.ndarray, points, scale: int, colour) -> None:
    """A plus sign of arm ``scale`` px centred on each finite point (x, y) in input pixels."""
    if points is None:
        return
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"landmarks must be (N, 2) (x, y), got shape {points.shape}")
    height, width = rgb.shape[:2]
    offset = (scale - 1) / 2.0
    for x, y in points[np.isfinite(points).all(axis=1)]:
        col, row = int(np.round(x * scale + offset)), int(np.round(y * scale + offset))
        for d in range(-scale, scale + 1):
            for r, c in ((row + d, col), (row, col + d)):
                if 0 <= r < height and 0 <= c < width:
                    rgb[r, c] = colour


def render_overlay(
    image: np.ndarray,
    pred_masks: np.ndarray | None,
    true_masks: np.ndarray | None,
    pred_landmarks: np.ndarray | None,
    true_landmarks: np.ndarray | None,
    scale: int = 1,
) -> np.ndarray:
    """The overlay as an (H*scale, W*scale, 3) uint8 array (see the module docstring for the colours).

    Args:
        image: (H, W) or (1, H, W) grey values in [0, 1] (clipped; NaN drawn black).
        pred_masks: (S, H, W) predicted masks, or None.
        true_masks: (S, H, W) reference masks, or None.
        pred_landmarks: (N, 2) predicted (x, y) px, NaN skipped, or None.
        true_landmarks: (N, 2) reference (x, y) px, or None.
        scale: integer upsampling of the output (thin contours on a small working image).
    """
    if not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    scale = int(scale)
    rgb = _grey(image)
    shape = rgb.shape[:2]
    rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    _draw_contours(rgb, _masks("true_masks", true_masks, shape), scale, TRUE_COLOUR)
    _draw_contours(rgb, _masks("pred_masks", pred_masks, shape), scale, PRED_CONTOUR_COLOUR)
    _draw_points(rgb, true_landmarks, scale, TRUE_COLOUR)
    _draw_points(rgb, pred_landmarks, scale, PRED_LANDMARK_COLOUR)
    return rgb


def encode_rgb_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 array; Pillow writes no time or text chunks, so equal arrays give equal bytes."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"(H, W, 3) array expected, got shape {rgb.shape}")
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def overlay_png(
    path: str | os.PathLike,
    image: np.ndarray,
    pred_masks: np.ndarray | None,
    true_masks: np.ndarray | None,
    pred_landmarks: np.ndarray | None,
    true_landmarks: np.ndarray | None,
    scale: int = 1,
) -> None:
    """Write ``render_overlay(...)`` atomically as a PNG at ``path`` (arguments as there)."""
    rgb = render_overlay(image, pred_masks, true_masks, pred_landmarks, true_landmarks, scale)
    write_bytes_atomic(path, encode_rgb_png(rgb))
