"""Similarity alignment of two point sets (Umeyama 1991).

eq. 2 of the paper aligns an image's landmarks to the template with an
"affine transformation without shearing": rotation, isotropic scale and
translation. A reflection would mirror a bone onto its template, which is never
the right correspondence, so it is excluded unless asked for. Degenerate input
(NaN, fewer than 3 distinct points, collinear points) has no unique similarity
and raises ``DegenerateShapeError`` instead of returning a silent guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DegenerateShapeError(ValueError):
    """The points do not determine a unique similarity (NaN, < 3 distinct, collinear)."""


@dataclass(frozen=True)
class Similarity:
    """x -> scale * R @ x + t for points as rows: ``apply(p) = scale * p @ R.T + t``."""

    rotation: np.ndarray  # (2, 2), det +1 (or -1 when reflections were allowed)
    scale: float
    translation: np.ndarray  # (2,)
    rms: float = 0.0  # least-squares residual: sqrt(mean ||apply(src) - dst||^2)

    @property
    def matrix(self) -> np.ndarray:
        """The 2x3 affine matrix [scale * R | t]."""
        return np.hstack([self.scale * self.rotation, self.translation[:, None]])

    def apply(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        return self.scale * points @ self.rotation.T + self.translation

    def inverse(self) -> Similarity:
        rot = self.rotation.T
        return Similarity(rot, 1.0 / self.scale, -(rot @ self.translation) / self.scale, self.rms)

    @staticmethod
    def identity() -> Similarity:
        return Similarity(np.eye(2), 1.0, np.zeros(2), 0.0)


def check_shape(points: np.ndarray, name: str = "points", rel_tol: float = 1e-9) -> np.ndarray:
    """Return ``points`` as float64 (N, 2); raise DegenerateShapeError when unusable for alignment."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise DegenerateShapeError(f"{name}: (N, 2) points expected, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise DegenerateShapeError(f"{name}: contains NaN or infinite coordinates")
    centred = points - points.mean(0)
    cov = centred.T @ centred
    eig = np.linalg.eigvalsh(cov)  # ascending; rank < 2 <=> fewer than 3 distinct or collinear
    if len(points) < 3 or eig[0] <= (rel_tol**2) * max(eig[1], 1e-300):
        distinct = len(np.unique(points, axis=0))
        if distinct < 3:
            raise DegenerateShapeError(f"{name}: {distinct} distinct point(s), at least 3 needed")
        raise DegenerateShapeError(f"{name}: points are collinear (no unique similarity)")
    return points


def umeyama(src: np.ndarray, dst: np.ndarray, allow_reflection: bool = False) -> Similarity:
    """The least-squares similarity mapping ``src`` onto ``dst`` (corresponding rows)."""
    src = check_shape(src, "source")
    dst = np.asarray(dst, dtype=np.float64)
    if dst.shape != src.shape:
        raise DegenerateShapeError(f"target: shape {dst.shape} differs from source {src.shape}")
    if not np.isfinite(dst).all():
        raise DegenerateShapeError("target: contains NaN or infinite coordinates")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs**2).sum() / len(src)
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if not allow_reflection and np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = float((d * sign).sum() / var_s)
    trans = mu_d - scale * rot @ mu_s
    residual = scale * src @ rot.T + trans - dst
    rms = float(np.sqrt((residual**2).sum(1).mean()))
    return Similarity(rot, scale, trans, rms)
