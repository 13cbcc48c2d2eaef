"""Polar uv maps: the reference's second representation, kept for comparison.

A pixel p of a structure is described by its ring and its direction from the
centroid c of the image landmarks: the ray c -> p meets the landmark contour
between the two landmarks a, b that bracket its angle, at fraction t; the ring
is rho = |p - c| / |boundary - c| (1 on the contour). The same fraction t on
the template contour gives a template direction e from the template centroid,
normalised to the unit square (e / max(|e_x|, |e_y|)), and uv = rho * e_sq.
Landmarks therefore map exactly to their square-normalised template
directions. Non-star-shaped structures (a curved clavicle) are where this
representation breaks down; that is the point of the comparison.
"""

from __future__ import annotations

import numpy as np

from denseseg.shape.umeyama import check_shape
from denseseg.uv.cartesian import UVCrop, warp_crop


def square_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float64)
    norm = np.abs(vectors).max(-1, keepdims=True)
    return np.divide(vectors, norm, out=np.zeros_like(vectors), where=norm > 0)


def polar_landmark_uv(template_points: np.ndarray) -> np.ndarray:
    """uv of the template landmarks in polar mode: their square-normalised centroid directions."""
    pts = np.asarray(template_points, np.float64)
    return square_normalise(pts - pts.mean(0))


class PolarWarp:
    """Image point -> polar uv for one structure."""

    def __init__(self, landmarks: np.ndarray, template_points: np.ndarray):
        self.landmarks = check_shape(landmarks, "landmarks")
        self.template = np.asarray(template_points, np.float64)
        self.centre = self.landmarks.mean(0)
        self.t_centre = self.template.mean(0)
        angles = np.arctan2(*(self.landmarks - self.centre)[:, ::-1].T)
        self.order = np.argsort(angles, kind="stable")
        self.sorted_angles = angles[self.order]

    def uv(self, xy: np.ndarray) -> np.ndarray:
        p = np.asarray(xy, np.float64).reshape(-1, 2)
        rel = p - self.centre
        theta = np.arctan2(rel[:, 1], rel[:, 0])
        n = len(self.order)
        pos = np.searchsorted(self.sorted_angles, theta, side="right")
        a = self.order[(pos - 1) % n]
        b = self.order[pos % n]
        la, lb = self.landmarks[a], self.landmarks[b]
        d = np.stack([np.cos(theta), np.sin(theta)], 1)
        w, e = la - self.centre, lb - la
        cross_wd = w[:, 0] * d[:, 1] - w[:, 1] * d[:, 0]
        cross_de = d[:, 0] * e[:, 1] - d[:, 1] * e[:, 0]
        t = np.divide(cross_wd, cross_de, out=np.zeros_like(cross_wd), where=np.abs(cross_de) > 1e-12)
        t = np.clip(t, 0.0, 1.0)
        boundary = la + t[:, None] * e
        radius = np.linalg.norm(boundary - self.centre, axis=1)
        rho = np.divide(np.linalg.norm(rel, axis=1), radius, out=np.zeros_like(radius), where=radius > 0)
        tpoint = self.template[a] + t[:, None] * (self.template[b] - self.template[a])
        return rho[:, None] * square_normalise(tpoint - self.t_centre)


def polar_crop(mask: np.ndarray, landmarks: np.ndarray, template_points: np.ndarray) -> UVCrop | None:
    """The polar uv map of one structure's (H, W) mask as a bbox crop (None for an empty mask)."""
    return warp_crop(PolarWarp(landmarks, template_points).uv, mask)
