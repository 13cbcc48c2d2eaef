"""The part of a working image that shows the radiograph, as a box in pixel-edge coordinates.

Why: ingest letterboxes every image into the working size. A bone cut by the
radiograph's edge ends at the edge of the letterboxed picture, not at the working
frame's edge, and the padding shows nothing. Cut detection
(``contours.border_flags``), the common part of two cut outlines
(``registration``) and the landmarks that can be scored
(``evaluation.correspondence``) all ask "is this point on the picture?".

A view is either a (height, width) shape (the whole frame, edges at -0.5 and
size - 0.5) or a (top, left, bottom, right) box from ``WorkingFrame.view_box``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]


def as_box(view: Sequence[float]) -> Box:
    """(top, left, bottom, right) of a (height, width) shape or of a box."""
    if len(view) == 2:
        height, width = view
        return (-0.5, -0.5, float(height) - 0.5, float(width) - 0.5)
    if len(view) == 4:
        top, left, bottom, right = (float(v) for v in view)
        return (top, left, bottom, right)
    raise ValueError(f"a view is (height, width) or (top, left, bottom, right), got {tuple(view)!r}")


def inside_box(points: np.ndarray, view: Sequence[float], margin: float = 0.0) -> np.ndarray:
    """True for points at least ``margin`` px inside the view's edges."""
    top, left, bottom, right = as_box(view)
    points = np.asarray(points, dtype=np.float64)
    x, y = points[:, 0], points[:, 1]
    return (x >= left + margin) & (y >= top + margin) & (x <= right - margin) & (y <= bottom - margin)


def on_box_edge(points: np.ndarray, view: Sequence[float], tol: float = 0.25) -> np.ndarray:
    """True for points within ``tol`` px of (or beyond) the view's edges."""
    return ~inside_box(points, view, tol)
