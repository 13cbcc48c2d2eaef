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
from functools import cached_property

import numpy as np
from scipy.spatial import Delaunay, QhullError

from denseseg.io.mask_store import mask_bbox
from denseseg.shape.template import Template
from denseseg.shape.umeyama import DegenerateShapeError, check_shape, umeyama


@dataclass(frozen=True)
class UVCrop:
    """A structure's uv map restricted to its mask's bounding box."""

    top: int
    left: int
    uv: np.ndarray  # (2, h, w) float32: u, v; NaN where not defined
    mask: np.ndarray  # (h, w) bool: the structure's mask in the crop


class CartesianWarp:
    """Piecewise-linear image -> template map of one structure, evaluable anywhere.

    Eq. 2 maps a pixel p to sim(p) + interp(Theta)(sim(p)). Delaunay is
    invariant under similarities and barycentric interpolation commutes with
    affine maps, so this equals the piecewise-affine map taking each image
    triangle onto its template triangle (vertex targets sim(L_i) + Theta_i =
    T_i). It is stored as one affine map per triangle: a pixel costs one
    ``find_simplex`` lookup and six multiply-adds, and the similarity itself
    (``sim``, ``displacement``) is only computed when asked for.
    """

    def __init__(self, landmarks: np.ndarray, template_points: np.ndarray):
        landmarks = np.asarray(landmarks, np.float64)
        template_points = np.asarray(template_points, np.float64)
        if landmarks.shape != template_points.shape:
            raise DegenerateShapeError(f"landmarks {landmarks.shape} and template {template_points.shape} differ")
        self.landmarks = check_shape(landmarks, "landmarks")
        self.template_points = check_shape(template_points, "template")
        try:
            self.tri = Delaunay(landmarks)
        except QhullError as err:
            raise DegenerateShapeError(f"Delaunay triangulation failed: {str(err).splitlines()[0]}") from None
        if len(self.tri.coplanar):
            # Qhull merged (near-)coincident landmarks: one map cannot give both their uv values.
            i, _, j = self.tri.coplanar[0]
            raise DegenerateShapeError(
                f"{len(self.tri.coplanar)} landmark(s) coincide with another, e.g. index {i} with {j} "
                f"at ({landmarks[i, 0]:.2f}, {landmarks[i, 1]:.2f})"
            )
        # per triangle: target = A @ p + c with targets sim(L) + Theta = T at the vertices
        targets = template_points
        tinv, ref = self.tri.transform[:, :2], self.tri.transform[:, 2]
        verts = targets[self.tri.simplices]  # (n_tri, 3, 2)
        edges = verts[:, :2] - verts[:, 2:3]  # (n_tri, 2 bary, 2 xy)
        lin = np.einsum("nbd,nbk->ndk", edges, tinv)  # (n_tri, 2, 2)
        off = verts[:, 2] - np.einsum("ndk,nk->nd", lin, ref)
        self._lin, self._off = lin, off

    @cached_property
    def _hull_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start points, end points, owning triangle) of the hull edges; only pixels off the hull need them."""
        tri_idx, opposite = np.nonzero(self.tri.neighbors == -1)
        keep = np.ones((len(tri_idx), 3), bool)
        keep[np.arange(len(tri_idx)), opposite] = False
        hull = self.tri.simplices[tri_idx][keep].reshape(-1, 2)
        return self.landmarks[hull[:, 0]], self.landmarks[hull[:, 1]], tri_idx

    @cached_property
    def sim(self):
        """The Umeyama similarity image -> template (eq. 2's alignment)."""
        return umeyama(self.landmarks, self.template_points)

    @property
    def displacement(self) -> np.ndarray:
        """Theta = T - sim(L): eq. 2's sparse displacement at the aligned landmarks."""
        return self.template_points - self.sim.apply(self.landmarks)

    def coefficients(self, structure_to_uv=None) -> np.ndarray:
        """(n_tri, 6) rows [a00, a01, c0, a10, a11, c1]; composed with an affine ``(scale, shift)`` if given."""
        lin, off = self._lin, self._off
        if structure_to_uv is not None:
            scale, shift = structure_to_uv
            lin = lin * scale[None, :, None]
            off = off * scale + shift
        return np.concatenate([lin[:, 0], off[:, :1], lin[:, 1], off[:, 1:]], axis=1)

    def _nearest_hull_triangle(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(triangle owning the nearest hull edge, squared distance to it) per point."""
        start, end, owner = self._hull_edges
        a, b = start[None], end[None]
        ab = b - a
        t = np.clip((((q[:, None] - a) * ab).sum(-1)) / np.maximum((ab**2).sum(-1), 1e-300), 0.0, 1.0)
        closest = a + t[..., None] * ab
        d2 = ((q[:, None] - closest) ** 2).sum(-1)
        nearest = np.argmin(d2, axis=1)
        return owner[nearest], d2[np.arange(len(q)), nearest]

    def evaluate(self, xy: np.ndarray, coef: np.ndarray, extrapolate: bool = False) -> np.ndarray:
        """Apply per-triangle coefficients (from ``coefficients``) at image points (M, 2)."""
        p = np.asarray(xy, np.float64).reshape(-1, 2)
        simplex = self.tri.find_simplex(p)
        outside = simplex < 0
        if outside.any():
            # points on the hull (e.g. a duplicate landmark Qhull left out) count as inside
            tri, d2 = self._nearest_hull_triangle(p[outside])
            simplex[outside] = tri
            if extrapolate:
                outside[:] = False
            else:
                outside[outside] = d2 > 1e-12
        c = coef[simplex]
        x, y = p[:, 0], p[:, 1]
        out = np.stack([c[:, 0] * x + c[:, 1] * y + c[:, 2], c[:, 3] * x + c[:, 4] * y + c[:, 5]], axis=1)
        out[outside] = np.nan
        return out

    def template_position(self, xy: np.ndarray, extrapolate: bool = False) -> np.ndarray:
        """Template positions of image points (M, 2); NaN outside the hull unless ``extrapolate``."""
        return self.evaluate(xy, self.coefficients(), extrapolate)

    def uv(self, xy: np.ndarray, template: Template, structure: str, extrapolate: bool = False) -> np.ndarray:
        """uv values of image points: the template position normalised by ``Template.to_uv``."""
        x0, y0, x1, y1 = template.bbox(structure)
        scale = 2.0 / np.array([x1 - x0, y1 - y0])
        shift = -np.array([x0, y0]) * scale - 1.0
        return self.evaluate(xy, self.coefficients((scale, shift)), extrapolate)


def warp_crop(warp_uv, mask: np.ndarray, crop: tuple[int, int, int, int] | None = None) -> UVCrop | None:
    """Evaluate ``warp_uv(xy) -> uv`` at the mask pixels inside the mask's bbox; None for an empty mask."""
    box = mask_bbox(mask) if crop is None else crop
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


def cartesian_crop(
    mask: np.ndarray,
    landmarks: np.ndarray,
    template: Template,
    structure: str,
    extrapolate: bool = False,
    keep: np.ndarray | None = None,
) -> UVCrop | None:
    """The cartesian uv map of one structure's (H, W) mask as a bbox crop (None for an empty mask).

    With ``keep`` (bool over the structure's template points) the map is built from those
    landmarks only (``landmarks`` holds just them), still in the full template's uv frame.
    """
    points = template.points[structure] if keep is None else template.points[structure][keep]
    warp = CartesianWarp(landmarks, points)
    return warp_crop(lambda xy: warp.uv(xy, template, structure, extrapolate), mask)


def cartesian_uv_at(
    xy: np.ndarray, landmarks: np.ndarray, template: Template, structure: str, extrapolate: bool = False
) -> np.ndarray:
    """The continuous map at arbitrary points: exactly the template uv at the landmarks."""
    return CartesianWarp(landmarks, template.points[structure]).uv(xy, template, structure, extrapolate)
