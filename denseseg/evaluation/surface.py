"""Boundary distances between masks, and from points to a mask's boundary.

One convention everywhere (written once here, relied on by the tables): a
mask's boundary is the set of its pixels with at least one 4-neighbour outside
the mask (the image border counts as outside), and every distance is the
Euclidean distance between pixel centres (pixel ``(row, col)`` has its centre
at ``x = col, y = row``), computed with ``scipy.ndimage.distance_transform_edt``
of the boundary's complement. Distances are in pixels of the array given;
``spacing`` (mm per px, isotropic) turns them into mm.

- ``surface_distances``: for every boundary pixel of A the distance to B's
  boundary, and the other way round.
- ``symmetric_surface_distance``: the mean over both directions' boundary
  pixels together (one-sided means would reward a prediction that is a small
  part of the truth).
- ``hausdorff95``: the 95th percentile (linear interpolation, numpy's default)
  of the same pooled distances.
- ``landmark_to_boundary``: the paper's "ASD" (Tables 1 and 2): the distance of
  each predicted landmark to the true structure's boundary. Landmarks are
  sub-pixel, so the distance is taken exactly to the nearest boundary pixel
  centre (a k-d tree over them); at a pixel centre it equals the distance
  transform's value.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

_FOUR_CONNECTED = ndi.generate_binary_structure(2, 1)


def boundary(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask (the image border counts as outside)."""
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"2-D mask expected, got shape {mask.shape}")
    inner = ndi.binary_erosion(np.pad(mask, 1), structure=_FOUR_CONNECTED)[1:-1, 1:-1]
    return mask & ~inner


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes: {a.shape} vs {b.shape}")
    return a, b


def surface_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances (px) from each boundary pixel of ``a`` to ``b``'s boundary, and from ``b``'s to ``a``'s.

    Both arrays are in row-major order of the boundary pixels. Raises
    ``ValueError`` when either mask is empty (there is no surface to measure).
    """
    a, b = _check_pair(a, b)
    if not a.any() or not b.any():
        raise ValueError("surface distance of an empty mask is undefined")
    ba, bb = boundary(a), boundary(b)
    a_to_b = ndi.distance_transform_edt(~bb)[ba]
    b_to_a = ndi.distance_transform_edt(~ba)[bb]
    return a_to_b, b_to_a


def symmetric_surface_distance(pred: np.ndarray, true: np.ndarray, spacing: float = 1.0) -> float:
    """Mean over the boundary pixels of both masks of the distance to the other's boundary.

    NaN when either mask is empty; times ``spacing`` (mm per px) for mm.
    """
    pred, true = _check_pair(pred, true)
    if not pred.any() or not true.any():
        return float("nan")
    distances = np.concatenate(surface_distances(pred, true))
    return float(distances.mean() * spacing)


def hausdorff95(pred: np.ndarray, true: np.ndarray, spacing: float = 1.0) -> float:
    """95th percentile of the pooled boundary distances of both directions; NaN when either mask is empty."""
    pred, true = _check_pair(pred, true)
    if not pred.any() or not true.any():
        return float("nan")
    distances = np.concatenate(surface_distances(pred, true))
    return float(np.percentile(distances, 95) * spacing)


def landmark_to_boundary(points: np.ndarray, true_mask: np.ndarray) -> np.ndarray:
    """Distance (px) of each (x, y) point to the nearest boundary pixel centre of ``true_mask``.

    NaN for NaN points, and for every point when the mask is empty (no boundary).
    A point inside the mask and one outside are treated alike: the distance is
    unsigned.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (N, 2) (x, y), got shape {points.shape}")
    mask = np.asarray(true_mask, bool)
    out = np.full(len(points), np.nan)
    rows, cols = np.nonzero(boundary(mask))
    finite = np.isfinite(points).all(axis=1)
    if rows.size == 0 or not finite.any():
        return out
    tree = cKDTree(np.column_stack([cols, rows]).astype(np.float64))
    out[finite] = tree.query(points[finite])[0]
    return out
