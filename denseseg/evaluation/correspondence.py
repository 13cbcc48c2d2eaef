"""How well do registered landmarks correspond? Scored against the phantom's dense truth.

The phantom knows, for every image and bone, the position of each atlas contour
point (dense points, in atlas order). A reference landmark is a point on the
reference's outline; its anatomical identity is its continuous parameter along the
reference's truth contour (projection onto the closed polyline: segment index plus
fraction). The true position of that landmark in another image is the same
parameter looked up on that image's truth contour; the error is the distance
between the registered landmark and that position, in working pixels.

A group-wise template moves the landmarks: template landmark k is the mean of
reference landmark k registered onto a sample of images, so its anatomical point is
the mean of theirs, not the reference's (``template_identity``: the mean atlas
parameter of the landmarks averaged into it, from the template's own registrations,
never from the ones being scored). Errors against the reference's points add that
shift to every image; both are reported.

Long bones leave the field of view. A landmark is scored only where both ends
are anatomy: its reference landmark is not on the reference's image edge (a cut
is not an anatomical point) and its true position lies inside the target image
(a point outside cannot be found in it). ``scored_errors`` applies both rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from denseseg.shape.view_box import inside_box


def contour_parameter(points: np.ndarray, contour: np.ndarray) -> np.ndarray:
    """Continuous index in [0, n) of each point's projection onto the closed ``contour``."""
    points = np.asarray(points, dtype=np.float64)
    a = np.asarray(contour, dtype=np.float64)
    b = np.roll(a, -1, axis=0)
    ab = b - a
    len2 = (ab * ab).sum(1)
    len2[len2 == 0] = 1.0
    ap = points[:, None, :] - a[None]
    t = np.clip((ap * ab[None]).sum(2) / len2[None], 0.0, 1.0)
    proj = a[None] + t[..., None] * ab[None]
    best = ((points[:, None, :] - proj) ** 2).sum(2).argmin(1)
    return best + t[np.arange(len(points)), best]


def point_at_parameter(contour: np.ndarray, param: np.ndarray) -> np.ndarray:
    """Position on the closed ``contour`` at continuous index ``param`` (linear between points)."""
    contour = np.asarray(contour, dtype=np.float64)
    n = len(contour)
    param = np.mod(np.asarray(param, dtype=np.float64), n)
    i0 = np.floor(param).astype(int) % n
    frac = (param - np.floor(param))[:, None]
    return (1.0 - frac) * contour[i0] + frac * contour[(i0 + 1) % n]


def _check_same_atlas(reference_truth: np.ndarray, target_truth: np.ndarray) -> None:
    if len(reference_truth) != len(target_truth):
        raise ValueError(
            f"truth contours differ in length ({len(reference_truth)} vs {len(target_truth)}): not the same atlas"
        )


def true_positions(
    reference_landmarks: np.ndarray,
    reference_truth: np.ndarray,
    target_truth: np.ndarray,
    identity: np.ndarray | None = None,
) -> np.ndarray:
    """Where the landmarks' atlas points lie in the target (by contour parameter).

    The atlas points are the reference landmarks' own, or ``identity`` (contour
    parameters, e.g. from ``template_identity``) when given.
    """
    _check_same_atlas(reference_truth, target_truth)
    if identity is None:
        identity = contour_parameter(reference_landmarks, reference_truth)
    return point_at_parameter(target_truth, identity)


def template_identity(
    reference_landmarks: np.ndarray,
    reference_truth: np.ndarray,
    registered: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    min_images: int = 3,
) -> np.ndarray:
    """Contour parameter of each template landmark's atlas point (see the module docstring).

    ``registered``: per image averaged into the template, (registered reference
    landmarks (L, 2), evidence flags (L,), that image's truth contour). A landmark's
    parameter is the reference's plus the mean offset, wrapped round the closed
    contour, of its registered positions over the images where it carries evidence;
    with fewer than ``min_images`` of them the template kept the reference's
    position, and so the reference's parameter (as ``groupwise_template`` does).
    """
    start = contour_parameter(reference_landmarks, reference_truth)
    n = len(reference_truth)
    total = np.zeros(len(start))
    count = np.zeros(len(start))
    for landmarks, evidence, truth in registered:
        _check_same_atlas(reference_truth, truth)
        offset = np.mod(contour_parameter(landmarks, truth) - start + 0.5 * n, n) - 0.5 * n
        evidence = np.asarray(evidence, dtype=bool)
        total[evidence] += offset[evidence]
        count[evidence] += 1
    mean = np.where(count >= min_images, total / np.maximum(count, 1), 0.0)
    return np.mod(start + mean, n)


def inside_image(points: np.ndarray, view, margin: float = 0.5) -> np.ndarray:
    """True for points at least ``margin`` px inside the image: a (height, width) frame or the
    (top, left, bottom, right) box that shows the radiograph (``denseseg.shape.view_box``)."""
    return inside_box(points, view, margin)


def scored_errors(
    reference_landmarks: np.ndarray,
    reference_truth: np.ndarray,
    registered: np.ndarray,
    target_truth: np.ndarray,
    reference_shape: tuple[int, int],
    target_shape: tuple[int, int],
    margin: float = 0.5,
    identity: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Errors of the scorable landmarks (see the module docstring) and how many were left out.

    ``identity``: the landmarks' atlas points as contour parameters (default: the reference's).
    """
    truth = true_positions(reference_landmarks, reference_truth, target_truth, identity)
    keep = inside_image(reference_landmarks, reference_shape, margin) & inside_image(truth, target_shape, margin)
    errors = np.linalg.norm(np.asarray(registered, dtype=np.float64)[keep] - truth[keep], axis=1)
    return errors, int((~keep).sum())


def landmark_errors(
    reference_landmarks: np.ndarray,
    reference_truth: np.ndarray,
    registered: np.ndarray,
    target_truth: np.ndarray,
) -> np.ndarray:
    """Distance of each registered landmark from the true position of the same atlas point."""
    truth = true_positions(reference_landmarks, reference_truth, target_truth)
    return np.linalg.norm(np.asarray(registered, dtype=np.float64) - truth, axis=1)


def summarise(errors: np.ndarray) -> dict:
    """median / mean / p95 / max in px and the count; NaN figures for no errors."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.size == 0:
        nan = float("nan")
        return {"median_px": nan, "mean_px": nan, "p95_px": nan, "max_px": nan, "n": 0}
    return {
        "median_px": float(np.median(errors)),
        "mean_px": float(errors.mean()),
        "p95_px": float(np.percentile(errors, 95)),
        "max_px": float(errors.max()),
        "n": int(errors.size),
    }


def summarise_by_group(
    errors_by_structure: Mapping[str, Iterable[np.ndarray]], groups: Mapping[str, tuple[str, ...]]
) -> dict:
    """Overall figures plus one block per reporting group and per structure."""
    per_structure = {
        s: np.concatenate([np.ravel(e) for e in chunks]) if chunks else np.zeros(0)
        for s, chunks in ((s, list(c)) for s, c in errors_by_structure.items())
    }
    allerr = np.concatenate(list(per_structure.values())) if per_structure else np.zeros(0)
    out = summarise(allerr)
    out["groups"] = {
        g: summarise(np.concatenate([per_structure[s] for s in members if s in per_structure] or [np.zeros(0)]))
        for g, members in groups.items()
    }
    out["structures"] = {s: summarise(e) for s, e in per_structure.items()}
    return out
