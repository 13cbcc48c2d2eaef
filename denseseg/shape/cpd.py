"""Coherent point drift (Myronenko & Song, 2010) and similarity pre-alignment, in numpy.

Registration of two bone outlines has no known point pairs, so correspondences are
soft: the moving points are the centroids of a Gaussian mixture that is fitted to
the fixed points by EM. The non-rigid variant regularises the displacement field
with a Gaussian kernel of width ``beta`` (motion coherence, weight ``lam``), so
neighbouring points move together and the outline cannot fold. The displacement
field is defined everywhere (``v(z) = sum_m G(z, y_m) w_m``), which lets landmarks
that were not part of the fit ride along with it.

Pre-alignment removes pose and size first (the non-rigid model penalises them),
by one of: open3d ICP with scaling (``icp_similarity``), rigid CPD with scaling
(``cpd_similarity``). Both return ``denseseg.shape.umeyama.Similarity``.

Everything here works in the caller's units; ``register_nonrigid`` normalises the
point sets internally so that ``beta`` is relative to the shape's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from denseseg.shape.umeyama import Similarity


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, clipped at 0."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0, out=d)


def gaussian_kernel(a: np.ndarray, b: np.ndarray, beta: float) -> np.ndarray:
    return np.exp(-_sqdist(a, b) / (2.0 * beta * beta))


def _initial_sigma2(x: np.ndarray, y: np.ndarray) -> float:
    n, d = x.shape
    m = len(y)
    # sum of all squared distances without the (m, n) matrix
    total = m * (x * x).sum() + n * (y * y).sum() - 2.0 * float(x.sum(0) @ y.sum(0))
    return max(total / (d * m * n), 1e-12)


def _posterior(x: np.ndarray, t: np.ndarray, sigma2: float, w: float) -> np.ndarray:
    """E-step: P[m, n], the posterior of centroid m for point n (with a uniform outlier term)."""
    n, d = x.shape
    m = len(t)
    p = np.exp(-_sqdist(t, x) / (2.0 * sigma2))
    c = (2.0 * np.pi * sigma2) ** (d / 2.0) * (w / (1.0 - w)) * m / n if w > 0 else 0.0
    den = p.sum(0) + c
    den[den <= np.finfo(float).tiny] = np.finfo(float).tiny
    p /= den
    return p


@dataclass(frozen=True)
class NonRigidResult:
    """A fitted displacement field: ``transform(z) = z + G(z, centres) @ weights`` (caller units)."""

    centres: np.ndarray  # (M, 2) moving points before deformation
    weights: np.ndarray  # (M, 2) kernel weights, in normalised units
    beta: float  # kernel width, normalised units
    offset: np.ndarray  # normalisation: u = (z - offset) / scale
    scale: float
    moved: np.ndarray  # (M, 2) the deformed moving points
    sigma2: float  # final variance, caller units squared
    iterations: int

    def transform(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        u = (points - self.offset) / self.scale
        c = (self.centres - self.offset) / self.scale
        u = u + gaussian_kernel(u, c, self.beta) @ self.weights
        return u * self.scale + self.offset


def register_nonrigid(
    fixed: np.ndarray,
    moving: np.ndarray,
    beta: float = 1.0,
    lam: float = 2.0,
    w: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-6,
    low_rank: int | None = None,
) -> NonRigidResult:
    """Non-rigid CPD: deform ``moving`` (M, 2) onto ``fixed`` (N, 2).

    Both sets are normalised with the fixed set's centroid and RMS radius, so
    ``beta`` is in units of the fixed shape's size. ``low_rank`` keeps that many
    eigenvectors of the kernel matrix (Woodbury solve, O(M k^2)) instead of the
    full O(M^3) solve. Stops when the relative change of sigma^2 falls below ``tol``.
    """
    x0 = np.asarray(fixed, dtype=np.float64)
    y0 = np.asarray(moving, dtype=np.float64)
    if x0.ndim != 2 or y0.ndim != 2 or x0.shape[1] != y0.shape[1] or len(x0) < 3 or len(y0) < 3:
        raise ValueError(f"two (N, D) point sets with N >= 3 expected, got {x0.shape} and {y0.shape}")
    if not (np.isfinite(x0).all() and np.isfinite(y0).all()):
        raise ValueError("point sets contain NaN or infinite coordinates")
    if not 0.0 <= w < 1.0:
        raise ValueError(f"outlier weight w must be in [0, 1), got {w}")
    offset = x0.mean(0)
    scale = float(np.sqrt(((x0 - offset) ** 2).sum(1).mean())) or 1.0
    x = (x0 - offset) / scale
    y = (y0 - offset) / scale
    m, d = y.shape
    g = gaussian_kernel(y, y, beta)
    use_low_rank = low_rank is not None and 0 < low_rank < m
    if use_low_rank:
        evals, evecs = np.linalg.eigh(g)
        q = evecs[:, -low_rank:]
        lam_k = evals[-low_rank:]
        lam_k = np.maximum(lam_k, 1e-12)
    wts = np.zeros_like(y)
    t = y.copy()
    sigma2 = _initial_sigma2(x, y)
    xx = (x * x).sum(1)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        p = _posterior(x, t, sigma2, w)
        p1 = p.sum(1)
        pt1 = p.sum(0)
        np_ = float(p1.sum())
        px = p @ x
        if use_low_rank:
            # W = (G + lam s2 D^-1)^-1 (D^-1 PX - Y) with G ~ Q L Q^T (Woodbury)
            a_inv = p1 / (lam * sigma2)  # (lam s2 D^-1)^-1, diagonal
            b = px / p1[:, None].clip(np.finfo(float).tiny) - y
            b[p1 <= np.finfo(float).tiny] = 0.0
            ab = a_inv[:, None] * b
            inner = np.diag(1.0 / lam_k) + q.T @ (a_inv[:, None] * q)
            wts = ab - a_inv[:, None] * (q @ np.linalg.solve(inner, q.T @ ab))
            t = y + q @ (lam_k[:, None] * (q.T @ wts))
        else:
            lhs = p1[:, None] * g + lam * sigma2 * np.eye(m)
            wts = np.linalg.solve(lhs, px - p1[:, None] * y)
            t = y + g @ wts
        new_sigma2 = (float(pt1 @ xx) - 2.0 * float((px * t).sum()) + float(p1 @ (t * t).sum(1))) / (np_ * d)
        new_sigma2 = max(new_sigma2, 1e-10)
        done = abs(sigma2 - new_sigma2) <= tol * sigma2
        sigma2 = new_sigma2
        if done:
            break
    return NonRigidResult(
        centres=y0.copy(),
        weights=wts,
        beta=float(beta),
        offset=offset,
        scale=scale,
        moved=t * scale + offset,
        sigma2=sigma2 * scale * scale,
        iterations=it,
    )


def cpd_similarity(
    fixed: np.ndarray,
    moving: np.ndarray,
    w: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-6,
    init: Similarity | None = None,
    fix_scale: bool = False,
) -> Similarity:
    """Rigid CPD with isotropic scale: the similarity that best maps ``moving`` onto ``fixed``.

    ``init`` is the starting pose (identity by default); the result includes it.
    ``fix_scale`` keeps the scale of ``init`` (a rigid fit: rotation and translation only).
    """
    x = np.asarray(fixed, dtype=np.float64)
    y = np.asarray(moving, dtype=np.float64)
    d = x.shape[1]
    if init is None:
        rot, s, trans = np.eye(d), 1.0, np.zeros(d)
    else:
        rot, s, trans = init.rotation.copy(), float(init.scale), init.translation.copy()
    sigma2 = _initial_sigma2(x, s * y @ rot.T + trans)
    for _ in range(max_iter):
        t = s * y @ rot.T + trans
        p = _posterior(x, t, sigma2, w)
        p1, pt1 = p.sum(1), p.sum(0)
        np_ = float(p1.sum())
        mu_x = x.T @ pt1 / np_
        mu_y = y.T @ p1 / np_
        xh, yh = x - mu_x, y - mu_y
        a = xh.T @ p.T @ yh
        u, _, vt = np.linalg.svd(a)
        c = np.eye(d)
        c[-1, -1] = np.sign(np.linalg.det(u @ vt)) or 1.0
        rot = u @ c @ vt
        tr = float(np.trace(a.T @ rot))
        yy = float(p1 @ (yh * yh).sum(1))
        if not fix_scale:
            s = tr / yy
        trans = mu_x - s * rot @ mu_y
        new_sigma2 = max((float(pt1 @ (xh * xh).sum(1)) - 2.0 * s * tr + s * s * yy) / (np_ * d), 1e-10)
        done = abs(sigma2 - new_sigma2) <= tol * sigma2
        sigma2 = new_sigma2
        if done:
            break
    return Similarity(rot, float(s), trans, float(np.sqrt(sigma2 * d)))


@dataclass(frozen=True)
class Affine:
    """x -> x @ matrix.T + translation, with the ``Similarity`` interface used by registration."""

    matrix: np.ndarray  # (2, 2)
    translation: np.ndarray  # (2,)

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix))))

    def apply(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) @ self.matrix.T + self.translation

    def inverse(self) -> Affine:
        inv = np.linalg.inv(self.matrix)
        return Affine(inv, -inv @ self.translation)


def cpd_affine(
    fixed: np.ndarray,
    moving: np.ndarray,
    w: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-6,
    init: Similarity | Affine | None = None,
    max_stretch: float = 1.5,
) -> Affine:
    """Affine CPD: the affine map that best fits ``moving`` onto ``fixed``, from ``init``.

    Growth and per-bone shape changes are partly anisotropic (aspect, shear), which a
    similarity leaves to the non-rigid step. A result that stretches one axis more
    than ``max_stretch`` times the other, or flips, falls back to ``init``.
    """
    x = np.asarray(fixed, dtype=np.float64)
    y = np.asarray(moving, dtype=np.float64)
    if init is None:
        b, t = np.eye(2), np.zeros(2)
    elif isinstance(init, Affine):
        b, t = init.matrix.copy(), init.translation.copy()
    else:
        b, t = init.scale * init.rotation, init.translation.copy()
    start = Affine(b.copy(), t.copy())
    sigma2 = _initial_sigma2(x, y @ b.T + t)
    for _ in range(max_iter):
        p = _posterior(x, y @ b.T + t, sigma2, w)
        p1, pt1 = p.sum(1), p.sum(0)
        np_ = float(p1.sum())
        mu_x = x.T @ pt1 / np_
        mu_y = y.T @ p1 / np_
        xh, yh = x - mu_x, y - mu_y
        a = xh.T @ p.T @ yh
        yy = (yh * p1[:, None]).T @ yh
        b = a @ np.linalg.inv(yy)
        t = mu_x - b @ mu_y
        new_sigma2 = max((float(pt1 @ (xh * xh).sum(1)) - float(np.trace(a @ b.T))) / (np_ * 2), 1e-10)
        done = abs(sigma2 - new_sigma2) <= tol * sigma2
        sigma2 = new_sigma2
        if done:
            break
    sv = np.linalg.svd(b, compute_uv=False)
    if not np.isfinite(b).all() or np.linalg.det(b) <= 0 or sv[0] > max_stretch * sv[1]:
        return start
    return Affine(b, t)


def initial_similarity(fixed: np.ndarray, moving: np.ndarray) -> Similarity:
    """Centroids matched and RMS radii equalised, no rotation: a starting pose for ICP."""
    mf, mm = fixed.mean(0), moving.mean(0)
    rf = np.sqrt(((fixed - mf) ** 2).sum(1).mean())
    rm = np.sqrt(((moving - mm) ** 2).sum(1).mean())
    s = float(rf / rm) if rm > 0 else 1.0
    return Similarity(np.eye(2), s, mf - s * mm, 0.0)


def icp_similarity(
    fixed: np.ndarray,
    moving: np.ndarray,
    max_iter: int = 50,
    max_distance: float | None = None,
    init: Similarity | None = None,
) -> Similarity:
    """open3d point-to-point ICP with scaling, started from ``init`` (or ``initial_similarity``).

    The 2-D points are lifted to z = 0. A solution that mirrors the plane (possible
    for planar data in 3-D) is refused: the start pose is returned instead.
    """
    import open3d as o3d

    fixed = np.asarray(fixed, dtype=np.float64)
    moving = np.asarray(moving, dtype=np.float64)
    if init is None:
        init = initial_similarity(fixed, moving)
    if max_distance is None:
        max_distance = float(np.sqrt(((fixed - fixed.mean(0)) ** 2).sum(1).mean()))
    src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.column_stack([moving, np.zeros(len(moving))])))
    dst = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.column_stack([fixed, np.zeros(len(fixed))])))
    t0 = np.eye(4)
    t0[:2, :2] = init.scale * init.rotation
    t0[:2, 3] = init.translation
    result = o3d.pipelines.registration.registration_icp(
        src,
        dst,
        max_distance,
        t0,
        o3d.pipelines.registration.TransformationEstimationPointToPoint(with_scaling=True),
        o3d.pipelines.registration.ICPConvergenceCriteria(
            relative_fitness=1e-10, relative_rmse=1e-10, max_iteration=max_iter
        ),
    )
    mat = np.asarray(result.transformation)
    if not np.isfinite(mat).all():
        return init
    block = mat[:2, :2]
    det = float(np.linalg.det(block))
    if det <= 0:
        return init
    s = float(np.sqrt(det))
    return Similarity(block / s, s, mat[:2, 3].copy(), float(result.inlier_rmse))
