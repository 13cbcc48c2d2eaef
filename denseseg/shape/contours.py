"""Bone outlines as ordered, closed, sub-pixel point clouds, resampled by arc length.

Registration needs each bone's outline as points that are evenly spaced along the
boundary (so that density does not bias the fit) and in a defined order (so that a
landmark's index means the same thing on every image). Conventions:

- points are (x, y) = (column, row) in pixels, pixel centres at integers; the
  outline is the 0.5 iso-line of the mask (``skimage.measure.find_contours``), i.e.
  half a pixel outside the centres of the boundary pixels;
- only the largest 8-connected component is kept and its holes are filled, so a
  bone has exactly one outline;
- orientation: counter-clockwise as displayed (y axis pointing down), which is a
  negative shoelace area in (x, y);
- start: the top-most point of the outline (smallest y, ties by smallest x);
- the closing point is not repeated;
- ``border_flags`` marks the points where the image edge cut the bone (long bones
  usually leave the field of view), which registration must not treat as anatomy.

Masks that cannot give a meaningful outline (empty, a few pixels, a one-pixel line)
raise ``DegenerateContour`` with a one-line reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage
from skimage import measure

from denseseg.shape.view_box import on_box_edge


class DegenerateContour(ValueError):
    """A mask without a usable outline; the message is the reason for a reject row."""


def signed_area(points: np.ndarray) -> float:
    """Shoelace area of a closed polygon in (x, y); negative = counter-clockwise on screen."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def perimeter(points: np.ndarray) -> float:
    """Length of the closed polygon."""
    return float(np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1).sum())


def canonical_order(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise on screen, starting at the top-most (then left-most) point."""
    points = np.asarray(points, dtype=np.float64)
    if signed_area(points) > 0:
        points = points[::-1]
    start = np.lexsort((points[:, 0], points[:, 1]))[0]
    return np.roll(points, -start, axis=0)


def resample_closed(points: np.ndarray, n: int) -> np.ndarray:
    """``n`` points evenly spaced by arc length along a closed polygon, from its first point."""
    if n < 1:
        raise ValueError(f"cannot resample to {n} points")
    closed = np.vstack([points, points[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    total = arc[-1]
    if total <= 0:
        raise DegenerateContour("outline has zero length")
    targets = np.arange(n) * (total / n)
    return np.column_stack([np.interp(targets, arc, closed[:, 0]), np.interp(targets, arc, closed[:, 1])])


def outline(mask: np.ndarray, min_pixels: int = 10, min_thickness: float = 1.5) -> np.ndarray:
    """The canonical sub-pixel outline (x, y) of a boolean mask's largest component.

    ``min_thickness`` is 2 * area / perimeter of the outline (the radius for a disk,
    about the width for a long thin shape), so a line of one-pixel width is rejected.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise DegenerateContour(f"mask must be 2-D, got shape {mask.shape}")
    if not mask.any():
        raise DegenerateContour("empty mask")
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count > 1:
        sizes = np.bincount(labels.ravel())[1:]
        mask = labels == (int(np.argmax(sizes)) + 1)
    mask = ndimage.binary_fill_holes(mask)
    n_pixels = int(mask.sum())
    if n_pixels < min_pixels:
        raise DegenerateContour(f"mask too small ({n_pixels} pixels < {min_pixels})")
    padded = np.pad(mask, 1).astype(np.float32)
    contours = measure.find_contours(padded, 0.5)
    if not contours:
        raise DegenerateContour("no outline found")
    rc = max(contours, key=len)
    if np.linalg.norm(rc[0] - rc[-1]) < 1e-9:
        rc = rc[:-1]
    points = np.column_stack([rc[:, 1] - 1.0, rc[:, 0] - 1.0])
    area = abs(signed_area(points))
    length = perimeter(points)
    thickness = 2.0 * area / length if length > 0 else 0.0
    if thickness < min_thickness:
        raise DegenerateContour(f"degenerate outline (thickness {thickness:.2f} px < {min_thickness}, a line?)")
    return canonical_order(points)


def border_flags(points: np.ndarray, view, tol: float = 0.25) -> np.ndarray:
    """True for outline points on the image's edge (where the field of view cut the bone).

    ``view``: the (height, width) of the frame or the (top, left, bottom, right)
    box that shows the radiograph (``WorkingFrame.view_box``; see
    ``denseseg.shape.view_box``). The outline of a mask cut there runs along the
    box's pixel edges; those points are the frame's, not the bone's.
    """
    return on_box_edge(points, view, tol)


def allocate_points(perimeters: Mapping[str, float], total: int, minimum: int = 8) -> dict[str, int]:
    """Share ``total`` points among structures in proportion to their perimeters.

    Largest-remainder rounding, ties broken by the given order, so the result is
    deterministic and sums to ``total`` exactly (as long as ``total`` allows the minimum).
    """
    names = list(perimeters)
    if not names:
        return {}
    if total < minimum * len(names):
        raise ValueError(f"{total} points cannot give {len(names)} structures at least {minimum} each")
    lengths = np.array([max(float(perimeters[k]), 0.0) for k in names])
    spare = total - minimum * len(names)
    share = lengths / lengths.sum() * spare if lengths.sum() > 0 else np.full(len(names), spare / len(names))
    base = np.floor(share).astype(int)
    left = spare - int(base.sum())
    order = sorted(range(len(names)), key=lambda i: (-(share[i] - base[i]), i))
    for i in order[:left]:
        base[i] += 1
    return {name: int(minimum + base[i]) for i, name in enumerate(names)}


def image_contours(
    masks: np.ndarray,
    structures: Sequence[str],
    total_points: int = 4850,
    min_points: int = 8,
    min_pixels: int = 10,
    min_thickness: float = 1.5,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Outlines of every structure of one image, sharing ``total_points`` by perimeter.

    Returns ``(contours, problems)``: ``contours[structure]`` is an (n, 2) array of
    evenly spaced points; ``problems[structure]`` is the reason a structure has none.
    """
    if masks.ndim != 3 or masks.shape[0] != len(structures):
        raise ValueError(f"masks of shape (S={len(structures)}, H, W) expected, got {masks.shape}")
    outlines: dict[str, np.ndarray] = {}
    problems: dict[str, str] = {}
    for s, name in enumerate(structures):
        try:
            outlines[name] = outline(masks[s], min_pixels=min_pixels, min_thickness=min_thickness)
        except DegenerateContour as err:
            problems[name] = str(err)
    counts = (
        allocate_points({k: perimeter(v) for k, v in outlines.items()}, total_points, min_points) if outlines else {}
    )
    return {k: resample_closed(v, counts[k]) for k, v in outlines.items()}, problems
