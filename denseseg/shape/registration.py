"""Corresponding landmarks by registering one reference outline onto every image, per bone.

Why a single reference: a landmark is defined once, on the reference's outline
(uniform by arc length from the canonical start, to the design's count per bone),
and every image receives it by registration, so landmark k of a bone means the same
anatomical point everywhere.

Reference choice (unbiased): the medoid of the candidate images under a shape
distance, i.e. the most typical image, not the first or a hand-picked one. The
shape distance between two images is the mean over bones of the symmetric mean
closest-point (chamfer) distance between their outlines, after each image is
normalised by its global centroid and RMS radius (position and size of the hand
removed, the bones' layout kept; no rotation since ingest normalises orientation).
With many images, the medoid is taken among a seeded random sample of candidates.

Per bone: similarity pre-alignment (open3d ICP with scaling, or rigid CPD), then
non-rigid CPD of the reference outline onto the image's outline; the landmarks go
through both transforms and are snapped to the nearest point of the image's outline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from denseseg.shape.contours import resample_closed
from denseseg.shape.cpd import cpd_similarity, icp_similarity, register_nonrigid
from denseseg.shape.umeyama import DegenerateShapeError, Similarity, umeyama


@dataclass(frozen=True)
class RegistrationParams:
    global_prealign: bool = True  # start each bone from the image-level pose (bone centroids)
    prealign: str = "icp"  # icp (open3d, with scaling) | cpd (rigid CPD with scaling) | none
    beta: float = 1.0  # CPD kernel width, in units of the bone's RMS radius
    lam: float = 2.0  # CPD smoothness weight
    w: float = 0.0  # CPD outlier weight
    max_iter: int = 60
    tol: float = 1e-5
    max_points: int = 80  # outline points per bone used in the fit (both sides)
    low_rank: int | None = None  # kernel eigenvectors kept (None: full solve)


@dataclass(frozen=True)
class BoneResult:
    landmarks: np.ndarray  # (L, 2) snapped to the image's outline
    residual_px: float  # symmetric mean closest-point distance, fitted outline vs image outline
    scale: float  # of the pre-alignment (reference -> image)


def snap_to_outline(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Orthogonal projection of each point onto the nearest segment of a closed polyline."""
    a = outline
    b = np.roll(outline, -1, axis=0)
    ab = b - a
    len2 = (ab * ab).sum(1)
    len2[len2 == 0] = 1.0
    ap = points[:, None, :] - a[None, :, :]
    t = np.clip((ap * ab[None]).sum(2) / len2[None], 0.0, 1.0)
    proj = a[None] + t[..., None] * ab[None]
    d2 = ((points[:, None, :] - proj) ** 2).sum(2)
    best = d2.argmin(1)
    return proj[np.arange(len(points)), best]


def closest_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each point of ``a``, the distance to the nearest point of ``b``."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2.min(1), 0.0))


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean closest-point distance."""
    return 0.5 * float(closest_distances(a, b).mean() + closest_distances(b, a).mean())


def _fit_points(outline: np.ndarray, max_points: int) -> np.ndarray:
    return outline if len(outline) <= max_points else resample_closed(outline, max_points)


def prealign(fixed: np.ndarray, moving: np.ndarray, method: str, init: Similarity | None = None) -> Similarity:
    """Per-bone similarity, refined from ``init`` (the image-level pose) when given."""
    if method == "icp":
        return icp_similarity(fixed, moving, init=init)
    if method == "cpd":
        return cpd_similarity(fixed, moving, init=init)
    if method == "none":
        return init if init is not None else Similarity.identity()
    raise ValueError(f"unknown pre-alignment {method!r}; use icp, cpd or none")


def register_bone(
    ref_outline: np.ndarray,
    ref_landmarks: np.ndarray,
    outline: np.ndarray,
    params: RegistrationParams,
    init: Similarity | None = None,
) -> BoneResult:
    """Carry ``ref_landmarks`` from the reference outline onto ``outline`` (one bone).

    ``init`` is a starting pose (the image-level similarity from ``global_pose``):
    near-circular bones give rotation no hold, so a per-bone fit from scratch may spin.
    """
    fixed = _fit_points(np.asarray(outline, dtype=np.float64), params.max_points)
    moving = _fit_points(np.asarray(ref_outline, dtype=np.float64), params.max_points)
    sim = prealign(fixed, moving, params.prealign, init)
    moving_aligned = sim.apply(moving)
    field = register_nonrigid(
        fixed,
        moving_aligned,
        beta=params.beta,
        lam=params.lam,
        w=params.w,
        max_iter=params.max_iter,
        tol=params.tol,
        low_rank=params.low_rank,
    )
    carried = field.transform(sim.apply(ref_landmarks))
    snapped = snap_to_outline(carried, np.asarray(outline, dtype=np.float64))
    return BoneResult(snapped, chamfer(field.moved, fixed), sim.scale)


@dataclass(frozen=True)
class Reference:
    """The reference image: its outlines and its landmarks per structure."""

    filestem: str
    outlines: Mapping[str, np.ndarray]
    landmarks: Mapping[str, np.ndarray]


def make_reference(filestem: str, outlines: Mapping[str, np.ndarray], counts: Mapping[str, int]) -> Reference:
    """Landmarks: each outline resampled uniformly by arc length to its design count."""
    missing = [s for s in counts if s not in outlines]
    if missing:
        raise ValueError(f"reference {filestem} lacks outline(s) for {', '.join(missing)}")
    landmarks = {s: resample_closed(np.asarray(outlines[s], dtype=np.float64), int(n)) for s, n in counts.items()}
    return Reference(filestem, {s: np.asarray(outlines[s], dtype=np.float64) for s in counts}, landmarks)


def _normalised(outlines: Mapping[str, np.ndarray], structures: Sequence[str], n: int) -> dict[str, np.ndarray]:
    allpts = np.vstack([outlines[s] for s in structures])
    centre = allpts.mean(0)
    radius = float(np.sqrt(((allpts - centre) ** 2).sum(1).mean())) or 1.0
    return {s: (resample_closed(np.asarray(outlines[s], float), n) - centre) / radius for s in structures}


def shape_distance_matrix(
    shapes: Sequence[Mapping[str, np.ndarray]], structures: Sequence[str], points_per_bone: int = 32
) -> np.ndarray:
    """Pairwise shape distances (see the module docstring); symmetric, zero diagonal."""
    norm = [_normalised(s, structures, points_per_bone) for s in shapes]
    k = len(norm)
    dist = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            dist[i, j] = dist[j, i] = float(np.mean([chamfer(norm[i][s], norm[j][s]) for s in structures]))
    return dist


def choose_reference(
    candidates: Mapping[str, Mapping[str, np.ndarray]],
    structures: Sequence[str],
    max_candidates: int = 64,
    seed: int = 0,
) -> tuple[str, dict]:
    """The medoid filestem among candidates that have every structure; returns (filestem, info)."""
    complete = sorted(k for k, v in candidates.items() if all(s in v for s in structures))
    if not complete:
        raise ValueError("no image has an outline for every structure; cannot choose a reference")
    pool = complete
    if len(pool) > max_candidates:
        rng = np.random.default_rng(seed)
        pool = sorted(rng.choice(pool, size=max_candidates, replace=False).tolist())
    dist = shape_distance_matrix([candidates[k] for k in pool], structures)
    total = dist.sum(1)
    best = int(np.argmin(total))  # ties: first in sorted order
    info = {
        "method": "medoid of the mean per-bone chamfer distance after global centroid/RMS normalisation",
        "candidates": len(pool),
        "complete_images": len(complete),
        "mean_distance": float(total[best] / max(len(pool) - 1, 1)),
    }
    return pool[best], info


def global_pose(reference: Reference, outlines: Mapping[str, np.ndarray]) -> Similarity | None:
    """Image-level similarity: Umeyama on the centroids of the bones both images have.

    Bone labels give the correspondences for free, and 17 centroids fix rotation
    and scale far better than any one small, roundish bone. None with < 3 bones.
    """
    common = [s for s in reference.outlines if s in outlines]
    if len(common) < 3:
        return None
    src = np.array([reference.outlines[s].mean(0) for s in common])
    dst = np.array([np.asarray(outlines[s], dtype=np.float64).mean(0) for s in common])
    try:
        return umeyama(src, dst)
    except DegenerateShapeError:
        return None


def register_image(
    reference: Reference, outlines: Mapping[str, np.ndarray], params: RegistrationParams
) -> tuple[dict[str, BoneResult], dict[str, str]]:
    """Register every structure of the reference that the image has; reasons for the others."""
    results: dict[str, BoneResult] = {}
    problems: dict[str, str] = {}
    pose = global_pose(reference, outlines) if params.global_prealign else None
    for s in reference.landmarks:
        if s not in outlines:
            problems[s] = "no outline in this image"
            continue
        try:
            results[s] = register_bone(reference.outlines[s], reference.landmarks[s], outlines[s], params, pose)
        except (ValueError, np.linalg.LinAlgError) as err:
            problems[s] = f"registration failed: {err}"
    return results, problems
