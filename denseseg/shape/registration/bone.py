"""One bone, then one image: carry the reference's landmarks onto an image's outlines.

Per bone: pre-alignment (affine CPD started from the image-level pose by default;
open3d ICP with scaling only when there is no image-level pose), then non-rigid
CPD of the reference outline onto the image's outline; the landmarks go through
both transforms and are snapped to the nearest point of the image's outline. The
image's outline enters the fit densely (``max_fixed_points``), the reference's
thinned (``max_points``): the cost is O(M^3 + M N) in the M reference points, and
a dense target leaves landmarks less room to slide along smooth outlines.

Inverse consistency (``inverse_weight``): the forward fit lets landmarks slide
along smooth outlines; a reverse fit (the image's outline, thinned, onto the
pose-aligned reference outline) slides the other way, and each landmark moves
that fraction of the arc-length gap towards the reverse fit's position.

Where the image ends (``view``: see ``denseseg.shape.view_box``): a bone is cut at
the radiograph's edge, inside any letterbox padding. Edge flags, the common part
of two cut outlines and the evidence of a landmark use the box that shows the
radiograph. Measured figures and the variants tried: ``docs/registration.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from denseseg.shape.cpd import cpd_affine, cpd_similarity, icp_similarity, register_nonrigid
from denseseg.shape.polyline import arc_parameter, chamfer, cumulative_length, point_at_arc_parameter, snap_to_outline
from denseseg.shape.registration.params import RegistrationParams
from denseseg.shape.registration.reference import Reference, is_cut
from denseseg.shape.registration.repairs import evidence_mask, separate_coincident, spread_off_view
from denseseg.shape.umeyama import DegenerateShapeError, Similarity, umeyama
from denseseg.shape.view_box import inside_box


@dataclass(frozen=True)
class BoneResult:
    landmarks: np.ndarray  # (L, 2) snapped to the image's outline
    residual_px: float  # symmetric mean closest-point distance, fitted outline vs image outline
    scale: float  # of the pre-alignment (reference -> image)
    inverse_gap_px: float = 0.0  # largest arc-length gap between the forward and reverse fits (0: not run)


def _fit_points(outline: np.ndarray, border: np.ndarray | None, max_points: int) -> np.ndarray:
    """The outline's anatomical points (edge points dropped), thinned evenly to ``max_points``."""
    if border is not None and border.any() and (~border).sum() >= 8:
        outline = outline[~border]
    if len(outline) <= max_points:
        return outline
    return outline[np.round(np.linspace(0, len(outline) - 1, max_points)).astype(int)]


def prealign(fixed: np.ndarray, moving: np.ndarray, method: str, init: Similarity | None = None):
    """Per-bone pose (a ``Similarity`` or an ``Affine``), refined from ``init`` (the image-level pose)."""
    if method == "icp":
        return icp_similarity(fixed, moving, init=init)
    if method == "cpd":
        return cpd_similarity(fixed, moving, init=init)
    if method == "affine":
        # from the image-level pose when there is one: an ICP step in between lets a
        # roundish bone turn to its own outline's axes, where the pose knows better
        return cpd_affine(fixed, moving, init=init if init is not None else icp_similarity(fixed, moving))
    if method == "none":
        return init if init is not None else Similarity.identity()
    raise ValueError(f"unknown pre-alignment {method!r}; use affine, icp, cpd or none")


def _nonrigid(fixed: np.ndarray, moving: np.ndarray, params: RegistrationParams, cut: bool):
    return register_nonrigid(
        fixed,
        moving,
        beta=params.beta,
        lam=params.lam,
        w=params.w_cut if cut else params.w,
        max_iter=params.max_iter,
        tol=params.tol,
        low_rank=params.low_rank,
    )


def register_bone(
    ref_outline: np.ndarray,
    ref_landmarks: np.ndarray,
    outline: np.ndarray,
    params: RegistrationParams,
    init: Similarity | None = None,
    ref_border: np.ndarray | None = None,
    border: np.ndarray | None = None,
    ref_shape: Sequence[float] | None = None,
    shape: Sequence[float] | None = None,
) -> BoneResult:
    """Carry ``ref_landmarks`` from the reference outline onto ``outline`` (one bone).

    Outline points on the image edge (``*border`` flags) are left out of the fit; a
    bone cut by the edge on either side keeps the image-level pose (its own scale
    would follow the cut, not the anatomy) and is fitted with outliers allowed, on
    the common part only when both views are known: reference points that the pose
    puts outside the image, and image points outside the reference's view, have no
    counterpart and are left out.

    Args:
        ref_outline: the reference's outline of the bone, (M, 2).
        ref_landmarks: the reference's landmarks of the bone, (L, 2).
        outline: the image's outline of the bone, (N, 2).
        params: the fit's parameters.
        init: a starting pose (the image-level similarity from ``global_pose``): near-circular
            bones give rotation no hold, so a per-bone fit from scratch may spin.
        ref_border: edge flags of ``ref_outline`` (None: not cut).
        border: edge flags of ``outline`` (None: not cut).
        ref_shape: the reference image's view, (height, width) or the box showing the radiograph.
        shape: the image's view, likewise.
    """
    outline = np.asarray(outline, dtype=np.float64)
    fixed = _fit_points(outline, border, params.max_fixed_points or params.max_points)
    moving = _fit_points(np.asarray(ref_outline, dtype=np.float64), ref_border, params.max_points)
    cut = bool((border is not None and border.any()) or (ref_border is not None and ref_border.any()))
    if cut and init is not None:
        sim = init
    else:
        sim = prealign(fixed, moving, params.prealign, init)
    moving_aligned = sim.apply(moving)
    if cut and shape is not None and ref_shape is not None:
        # fit only the common part: what each image shows of the bone, given the pose
        keep_m = inside_box(moving_aligned, shape, params.edge_margin_px)
        keep_f = inside_box(sim.inverse().apply(fixed), ref_shape, params.edge_margin_px * sim.scale)
        if keep_m.sum() >= 8 and keep_f.sum() >= 8:
            moving_aligned, fixed = moving_aligned[keep_m], fixed[keep_f]
    field = _nonrigid(fixed, moving_aligned, params, cut)
    carried = field.transform(sim.apply(ref_landmarks))
    snapped = snap_to_outline(carried, outline)
    gap = 0.0
    if params.inverse_weight > 0:
        snapped, delta = _inverse_consistent(
            snapped, sim.apply(ref_landmarks), ref_outline, outline, sim, params, cut, border, shape
        )
        gap = inverse_gap(delta, snapped, outline, border, shape)
    if border is not None and np.any(border) and shape is not None:
        off = ~inside_box(carried, shape, 0.0) | ~evidence_mask(snapped, outline, border, None, 0.0)
        snapped = spread_off_view(snapped, off, outline, border)
    return BoneResult(separate_coincident(snapped, outline), chamfer(field.moved, fixed), sim.scale, gap)


def inverse_gap(delta, landmarks, outline, border, shape) -> float:
    """The inverse-consistency QC figure: the largest forward/reverse disagreement ``delta`` (px) among the
    landmarks that carry evidence (inside the view, edge included, and not on a cut outline's edge segment);
    0 when none does. Off-view landmarks have no say: the outline there is the image edge, not the bone."""
    seen = evidence_mask(landmarks, outline, border, shape, 0.0)
    return float(np.abs(np.asarray(delta)[seen]).max()) if seen.any() else 0.0


def _inverse_consistent(snapped, aligned_landmarks, ref_outline, outline, sim, params, cut, border, shape):
    """Move each landmark along the image outline towards where the reverse fit puts it.

    The reverse fit deforms the image's outline (thinned to ``max_points``, edge points
    dropped) onto the pose-aligned reference outline (on a cut bone: its part inside
    the image); the whole image outline is carried through that field, and landmark k
    goes to the arc-length position whose carried point is nearest the aligned
    reference landmark. The result is the forward position moved by
    ``inverse_weight`` times the (shorter, circular) arc-length difference: the two
    directions slide in opposite senses on smooth outlines, so part of the bias cancels.
    Returns the landmarks and each one's difference in px (the largest is a QC figure:
    where the two directions disagree by much, the outline did not tell them apart).
    """
    target = np.asarray(sim.apply(np.asarray(ref_outline, dtype=np.float64)))
    if cut and shape is not None:
        keep = inside_box(target, shape, params.edge_margin_px)
        if keep.sum() >= 8:
            target = target[keep]
    moving = _fit_points(outline, border, params.max_points)
    reverse = _nonrigid(target, moving, params, cut)
    carried = reverse.transform(outline)  # vertex i of the image outline, in the reference's frame
    s_rev = np.interp(arc_parameter(aligned_landmarks, carried), cumulative_length(carried), cumulative_length(outline))
    s_fwd = arc_parameter(snapped, outline)
    length = cumulative_length(outline)[-1]
    delta = np.mod(s_rev - s_fwd + 0.5 * length, length) - 0.5 * length
    return point_at_arc_parameter(outline, s_fwd + params.inverse_weight * delta), delta


def global_pose(
    reference: Reference, outlines: Mapping[str, np.ndarray], borders: Mapping[str, np.ndarray] | None = None
) -> Similarity | None:
    """Image-level similarity: Umeyama on the centroids of the bones both images have.

    Bone labels give the correspondences for free, and 17 centroids fix rotation
    and scale far better than any one small, roundish bone. Bones cut by the image
    edge (in either image) are left out when at least 3 others remain: their
    centroid moves with the cut. None with < 3 bones.
    """
    common = [s for s in reference.outlines if s in outlines]
    whole = [s for s in common if not is_cut(reference.borders, s) and not is_cut(borders, s)]
    if len(whole) >= 3:
        common = whole
    if len(common) < 3:
        return None
    src = np.array([reference.outlines[s].mean(0) for s in common])
    dst = np.array([np.asarray(outlines[s], dtype=np.float64).mean(0) for s in common])
    try:
        return umeyama(src, dst)
    except DegenerateShapeError:
        return None


def register_image(
    reference: Reference,
    outlines: Mapping[str, np.ndarray],
    params: RegistrationParams,
    borders: Mapping[str, np.ndarray] | None = None,
    shape: Sequence[float] | None = None,
) -> tuple[dict[str, BoneResult], dict[str, str]]:
    """Register every structure of the reference that the image has; reasons for the others."""
    results: dict[str, BoneResult] = {}
    problems: dict[str, str] = {}
    pose = global_pose(reference, outlines, borders) if params.global_prealign else None
    for s in reference.landmarks:
        if s not in outlines:
            problems[s] = "no outline in this image"
            continue
        try:
            results[s] = register_bone(
                reference.outlines[s],
                reference.landmarks[s],
                outlines[s],
                params,
                pose,
                None if reference.borders is None else reference.borders.get(s),
                None if borders is None else borders.get(s),
                reference.shape,
                shape,
            )
        except (ValueError, np.linalg.LinAlgError) as err:
            problems[s] = f"registration failed: {err}"
    return results, problems
