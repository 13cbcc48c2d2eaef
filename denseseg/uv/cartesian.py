"""Exact cartesian uv maps (paper eq. 2).

For one structure, the image landmarks L are aligned to the template T by a
similarity (Umeyama), the sparse displacement T - sim(L) is interpolated
piecewise-linearly over the Delaunay triangulation of the aligned landmarks,
and each mask pixel gets the uv value (``Template.to_uv``) of the template
position it maps to. Because the interpolation is linear in barycentric
coordinates, the map returns exactly the template uv at every landmark (the
published reference rescales along the shorter bbox axis and loses this).

Mask pixels outside the landmarks' convex hull have no interpolated value: NaN
by default (the paper leaves them unsupervised), or, with ``extrapolate``, the
affine map of the nearest hull triangle continued outwards.

Everything is vectorised: one Qhull triangulation per structure, then
``find_simplex`` and barycentric weights over the mask pixels only.
Pixel centres sit at integer (x, y) = (column, row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay, QhullError

from denseseg.shape.template import Template
from denseseg.shape.umeyama import DegenerateShapeError, umeyama


@dataclass(frozen=True)
class UVCrop:
    """A structure's uv map restricted to its mask's bounding box."""

    top: int
    left: int
    uv: np.ndarray  # (2, h, w) float32: u, v; NaN where not defined
    mask: np.ndarray  # (h, w) bool: the structure's mask in the crop


class CartesianWarp:
    """Piecewise-linear image -> template map of one structure, evaluable anywhere."""

    def __init__(self, landmarks: np.ndarray, template_points: np.ndarray):
        landmarks = np.asarray(landmarks, np.float64)
        template_points = np.asarray(template_points, np.float64)
        if landmarks.shape != template_points.shape:
            raise DegenerateShapeError(f"landmarks {landmarks.shape} and template {template_points.shape} differ")
        self.sim = umeyama(landmarks, template_points)
        aligned = self.sim.apply(landmarks)
        self.displacement = template_points - aligned  # Theta of eq. 2, at the aligned landmarks
        try:
            self.tri = Delaunay(aligned)
        except QhullError as err:
            raise DegenerateShapeError(f"Delaunay triangulation failed: {str(err).splitlines()[0]}") from None
        # hull edges and the triangle each belongs to (for extrapolation)
        simplices, neighbours = self.tri.simplices, self.tri.neighbors
        tri_idx, opposite = np.nonzero(neighbours == -1)
        keep = np.ones((len(tri_idx), 3), bool)
        keep[np.arange(len(tri_idx)), opposite] = False
        edges = simplices[tri_idx][keep].reshape(-1, 2)
        self._hull_a = aligned[edges[:, 0]]
        self._hull_b = aligned[edges[:, 1]]
        self._hull_tri = tri_idx

    def _nearest_hull_triangle(self, q: np.ndarray) -> np.ndarray:
        a, b = self._hull_a[None], self._hull_b[None]
        ab = b - a
        t = np.clip((((q[:, None] - a) * ab).sum(-1)) / np.maximum((ab**2).sum(-1), 1e-300), 0.0, 1.0)
        closest = a + t[..., None] * ab
        d2 = ((q[:, None] - closest) ** 2).sum(-1)
        return self._hull_tri[np.argmin(d2, axis=1)]

    def template_position(self, xy: np.ndarray, extrapolate: bool = False) -> np.ndarray:
        """Template positions of image points (M, 2); NaN outside the hull unless ``extrapolate``."""
        q = self.sim.apply(np.asarray(xy, np.float64).reshape(-1, 2))
        simplex = self.tri.find_simplex(q)
        outside = simplex < 0
        out = np.full_like(q, np.nan)
        if extrapolate and outside.any():
            simplex = simplex.copy()
            simplex[outside] = self._nearest_hull_triangle(q[outside])
            outside = np.zeros_like(outside)
        sel = ~outside
        s = simplex[sel]
        transform = self.tri.transform[s]
        b = np.einsum("nij,nj->ni", transform[:, :2], q[sel] - transform[:, 2])
        bary = np.concatenate([b, 1.0 - b.sum(1, keepdims=True)], axis=1)
        disp = np.einsum("nk,nkd->nd", bary, self.displacement[self.tri.simplices[s]])
        out[sel] = q[sel] + disp
        return out


def bbox_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) inclusive of a 2-D boolean mask; None when empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def warp_crop(warp_uv, mask: np.ndarray, crop: tuple[int, int, int, int] | None = None) -> UVCrop | None:
    """Evaluate ``warp_uv(xy) -> uv`` at the mask pixels inside the mask's bbox; None for an empty mask."""
    box = bbox_of(mask) if crop is None else crop
    if box is None:
        return None
    top, left, bottom, right = box
    sub = mask[top : bottom + 1, left : right + 1]
    rows, cols = np.nonzero(sub)
    uv = np.full((2, *sub.shape), np.nan, np.float32)
    if len(rows):
        xy = np.stack([cols + left, rows + top], axis=1).astype(np.float64)
        values = warp_uv(xy)
        uv[0, rows, cols] = values[:, 0]
        uv[1, rows, cols] = values[:, 1]
    return UVCrop(top, left, uv, sub.copy())


def cartesian_crop(mask: np.ndarray, landmarks: np.ndarray, template: Template, structure: str,
                   extrapolate: bool = False) -> UVCrop | None:
    """The cartesian uv map of one structure's (H, W) mask as a bbox crop (None for an empty mask)."""
    warp = CartesianWarp(landmarks, template.points[structure])
    return warp_crop(lambda xy: template.to_uv(structure, warp.template_position(xy, extrapolate)), mask)


def cartesian_uv_at(xy: np.ndarray, landmarks: np.ndarray, template: Template, structure: str,
                    extrapolate: bool = False) -> np.ndarray:
    """The continuous map at arbitrary points: exactly the template uv at the landmarks."""
    warp = CartesianWarp(landmarks, template.points[structure])
    return template.to_uv(structure, warp.template_position(xy, extrapolate))
