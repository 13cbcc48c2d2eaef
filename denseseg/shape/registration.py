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
Candidates are the images with every bone and the fewest bones cut by the image
edge; with many images, the medoid is taken among a seeded random sample of them.

Group-wise template (``groupwise_template``, optional, on by default in the
stage): the reference's own deviations (per-bone pose, size, shape, its maturity)
would enter every correspondence; the reference's landmarks are therefore
registered onto a sample of images, mapped back by generalised Procrustes
analysis and averaged per landmark, and this mean shape (same landmark
identities) replaces the reference for the registrations.

Per bone: pre-alignment (affine CPD started from the image-level pose by default:
growth and per-bone shape change are partly anisotropic; open3d ICP with scaling
only when there is no image-level pose), then non-rigid CPD of the reference outline
onto the image's outline; the landmarks go
through both transforms and are snapped to the nearest point of the image's outline.
The image's outline enters the fit densely (``max_fixed_points``), the reference's
thinned (``max_points``): the cost is O(M^3 + M N) in the M reference points, and a
dense target leaves landmarks less room to slide along smooth outlines (on the
phantom at 384x224: median 1.22 -> 1.07 px with the template).

Inverse consistency (``inverse_weight``, 0.35 in the stage's params): the forward
fit lets landmarks slide along smooth outlines; a reverse fit (the image's outline,
thinned, onto the pose-aligned reference outline) slides the other way. Each
landmark is moved along the image outline by ``inverse_weight`` times the
arc-length gap between its forward position and the position implied by the reverse
fit. Phantom at 384x224 (template, masks from truth, 48 images passed): median
1.080 -> 1.038 px, mean 2.02 -> 1.98, p95 7.28 -> 7.14, bones whole 0.763 -> 0.750;
weight 0.25: 1.047, 0.5: 1.053, 1.0: worse; cut bones only: 1.060; about +40%
time. Tried and dropped on the same phantom: a second, finer CPD pass (beta 1-1.5,
lam 2-4: median 1.38-1.77), anchoring a cut bone's arc-length spacing at its
visible end (median > 1.7), the template from every image rather than the
complete ones (1.093).

Pre-alignment from the image pose, without ICP in between: on a near-elliptical
bone (capitate, hamate) ICP turns the outline to its own axes, and an affine map of
an ellipse onto itself can slide every point along it, so the image pose is the
better guide to how the bone's points run. ``benchmarks/registration_phantom.py``
(384x224, true masks, 46 images passed): median 0.744 -> 0.700 px, mean 1.62 ->
1.58 (at the reference's atlas points: 0.953 -> 0.939). Tried and dropped: a prior
pulling the affine map towards the image pose (all bones, or only its
ellipse-sliding direction: capitate better, lunate, trapezium and triquetrum
worse), a local pose from the neighbouring bones' centroids, a per-bone pose for
cut bones with the common part re-trimmed every iteration (a similarity's scale
collapses), lam 12 (no change).

Where the image ends (``view``: see ``denseseg.shape.view_box``): ingest letterboxes
every radiograph, so a bone is cut at the radiograph's edge, inside the padding, not
at the working frame's edge. Edge flags, the common part of two cut outlines and
the evidence of a landmark use the box that shows the radiograph; with the frame's
edges instead, letterboxed cut bones passed as whole and were fitted as such
(median 1.04 -> 0.70 px on the benchmark above, metacarpals 4.3 -> 1.2 px). The
figures quoted above for the inverse consistency and the template were measured
before that fix, on masks that ran into the padding; they compare variants.

Landmarks without evidence: template landmarks that a cut bone carries out of view
(or that snap onto the cut) are laid evenly, in order, along the cut edge
(``spread_off_view``), and landmarks that snapped onto one outline point are parted
(``separate_coincident``): piled up, they gave polygons with repeated vertices, which
have no uv map (the demo's uvmaps stage rejected 69 of 646 structures before, none
after). Contour points within ``contours.edge_tol_px`` (2.5 px) of the radiograph's
edge count as the cut, since predicted masks often stop a pixel or two short of it.

Limits: on a bone cut by the image edge (radius and ulna always, metacarpals
often) the position along the shaft is observed only at the visible end; the
bone's own length scale is not observed at all, so landmarks along a straight shaft
keep the reference's (template's) spacing relative to the image pose. This is the
largest remaining error on the phantom (see the stage's ``*_px_uncut`` figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from denseseg.shape.contours import resample_closed
from denseseg.shape.cpd import cpd_affine, cpd_similarity, icp_similarity, register_nonrigid
from denseseg.shape.umeyama import DegenerateShapeError, Similarity, umeyama
from denseseg.shape.view_box import inside_box


@dataclass(frozen=True)
class RegistrationParams:
    global_prealign: bool = True  # start each bone from the image-level pose (bone centroids)
    prealign: str = "affine"  # affine (affine CPD from the image pose) | icp | cpd (rigid CPD) | none
    beta: float = 3.0  # CPD kernel width, in units of the bone's RMS radius (tuned on the phantom)
    lam: float = 8.0  # CPD smoothness weight (tuned on the phantom)
    w: float = 0.0  # CPD outlier weight
    w_cut: float = 0.1  # CPD outlier weight when the image edge cut either outline (partial overlap)
    edge_margin_px: float = 1.0  # common-part trimming of cut bones: distance kept from the image edge
    max_iter: int = 60
    tol: float = 1e-5
    max_points: int = 60  # reference outline points per bone used in the fit (image side too if the next is None)
    max_fixed_points: int | None = 1000  # image outline points per bone in the fit (None: max_points; 1000: all)
    low_rank: int | None = None  # kernel eigenvectors kept (None: full solve)
    inverse_weight: float = 0.0  # weight of the reverse fit's arc-length position (0: forward only)


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


def _arclength(outline: np.ndarray) -> np.ndarray:
    """Cumulative arc length at each vertex of a closed polyline, closing segment included (len + 1)."""
    seg = np.linalg.norm(np.roll(outline, -1, axis=0) - outline, axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def outline_parameter(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Arc-length position on a closed polyline of each point's orthogonal projection."""
    a = outline
    ab = np.roll(outline, -1, axis=0) - a
    len2 = (ab * ab).sum(1)
    len2[len2 == 0] = 1.0
    ap = points[:, None, :] - a[None, :, :]
    t = np.clip((ap * ab[None]).sum(2) / len2[None], 0.0, 1.0)
    proj = a[None] + t[..., None] * ab[None]
    best = ((points[:, None, :] - proj) ** 2).sum(2).argmin(1)
    cum = _arclength(outline)
    return cum[best] + t[np.arange(len(points)), best] * (cum[best + 1] - cum[best])


def point_at_parameter(s: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """The points of a closed polyline at arc-length positions ``s`` (taken modulo its length)."""
    cum = _arclength(outline)
    s = np.mod(s, cum[-1]) if cum[-1] > 0 else np.zeros_like(s)
    k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(outline) - 1)
    frac = (s - cum[k]) / np.maximum(cum[k + 1] - cum[k], 1e-12)
    nxt = np.roll(outline, -1, axis=0)
    return outline[k] + frac[:, None] * (nxt[k] - outline[k])


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

    ``init`` is a starting pose (the image-level similarity from ``global_pose``):
    near-circular bones give rotation no hold, so a per-bone fit from scratch may spin.
    Outline points on the image edge (``*border`` flags) are left out of the fit; a
    bone cut by the edge on either side keeps the image-level pose (its own scale
    would follow the cut, not the anatomy) and is fitted with outliers allowed, on
    the common part only when the images' views (``ref_shape``, ``shape``: (height,
    width) or the box showing the radiograph, see ``denseseg.shape.view_box``) are known:
    reference points that the pose puts outside the image, and image points that
    fall outside the reference's frame, have no counterpart and are left out.
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
    field = register_nonrigid(
        fixed,
        moving_aligned,
        beta=params.beta,
        lam=params.lam,
        w=params.w_cut if cut else params.w,
        max_iter=params.max_iter,
        tol=params.tol,
        low_rank=params.low_rank,
    )
    carried = field.transform(sim.apply(ref_landmarks))
    snapped = snap_to_outline(carried, outline)
    if params.inverse_weight > 0:
        snapped = _inverse_consistent(
            snapped, sim.apply(ref_landmarks), ref_outline, outline, sim, params, cut, border, shape
        )
    if border is not None and np.any(border) and shape is not None:
        off = ~inside_box(carried, shape, 0.0) | ~evidence_mask(snapped, outline, border, None, 0.0)
        snapped = spread_off_view(snapped, off, outline, border)
    return BoneResult(separate_coincident(snapped, outline), chamfer(field.moved, fixed), sim.scale)


def separate_coincident(landmarks: np.ndarray, outline: np.ndarray, min_gap: float = 0.05) -> np.ndarray:
    """Part consecutive landmarks that snapped onto the same outline point (arc-length gap < ``min_gap`` px).

    Why: two carried landmarks can project onto one vertex of the outline (a corner,
    the tip of a mask that stops short); a landmark polygon with a repeated vertex
    has no uv map. Each such group is laid evenly, in landmark order, between the
    midpoints to its neighbours, so no landmark moves more than half a spacing.
    """
    n = len(landmarks)
    if n < 3:
        return landmarks
    length = _arclength(outline)[-1]
    s = outline_parameter(landmarks, outline)
    step = np.mod(np.roll(s, -1) - s + 0.5 * length, length) - 0.5 * length  # to the next landmark, signed
    same = np.abs(step) < min_gap
    if not same.any() or same.all():
        return _nudge_apart(landmarks, outline, min_gap)
    out = landmarks.copy()
    for run in _circular_runs(same):
        group = run + [(run[-1] + 1) % n]  # same[i]: landmark i meets landmark i + 1
        before = s[(group[0] - 1) % n]
        after = s[(group[-1] + 1) % n]
        lo = 0.5 * np.mod(before - s[group[0]] + 0.5 * length, length) - 0.25 * length  # half-way back (<= 0)
        hi = 0.5 * np.mod(after - s[group[0]] + 0.5 * length, length) - 0.25 * length  # half-way on (>= 0)
        if hi - lo < min_gap * len(group):
            continue
        placed = s[group[0]] + lo + (hi - lo) * (np.arange(len(group)) + 0.5) / len(group)
        out[group] = point_at_parameter(placed, outline)
    return _nudge_apart(out, outline, min_gap)


def _circular_runs(flags: np.ndarray) -> list[list[int]]:
    """Index runs of consecutive True in a circular array (a run may wrap past the end); some flag must be False."""
    n = len(flags)
    start = int(np.flatnonzero(~flags)[0]) + 1  # just after a False: no run is cut in two
    runs: list[list[int]] = []
    for step in range(n):
        i = (start + step) % n
        if flags[i]:
            if runs and runs[-1][-1] == (i - 1) % n:
                runs[-1].append(i)
            else:
                runs.append([i])
    return runs


def _nudge_apart(landmarks: np.ndarray, outline: np.ndarray, min_gap: float) -> np.ndarray:
    """Last resort for landmarks that coincide without being neighbours (the fit folded their order):
    each one closer than ``min_gap`` to the one before it along the outline moves on to ``min_gap``."""
    s = outline_parameter(landmarks, outline)
    order = np.argsort(s, kind="stable")
    ss = s[order]
    if len(ss) < 2 or np.diff(ss).min() >= min_gap:
        return landmarks
    for k in range(1, len(ss)):
        if ss[k] - ss[k - 1] < min_gap:
            ss[k] = ss[k - 1] + min_gap
    out = landmarks.copy()
    moved = ss != s[order]
    out[order[moved]] = point_at_parameter(ss[moved], outline)
    return out


def spread_off_view(landmarks: np.ndarray, off: np.ndarray, outline: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Lay the landmarks that the registration carried out of view evenly, in order, along the cut.

    Why: snapped to the nearest outline point, the landmarks of a shaft's hidden
    part pile up on the corners of the cut (a polygon with repeated vertices: no uv
    map, a folded QC polygon). ``off``: carried out of view, or snapped onto the cut.
    Each run of consecutive off-view landmarks takes the stretch of image edge
    (``border`` points of the outline) between its in-view neighbours, spaced
    evenly and in landmark order; they stay unscored and are counted as landmarks
    without evidence. Runs without edge points between their neighbours are left
    as they are.
    """
    off = np.asarray(off, dtype=bool)
    n = len(landmarks)
    if not off.any() or off.all():
        return landmarks
    out = landmarks.copy()
    cum = _arclength(outline)
    length = cum[-1]
    edge_s = cum[:-1][np.asarray(border, dtype=bool)]
    s = outline_parameter(landmarks, outline)
    for run in _circular_runs(off):
        s_prev, s_next = s[(run[0] - 1) % n], s[(run[-1] + 1) % n]
        span = np.mod(s_next - s_prev, length)
        rel = np.mod(edge_s - s_prev, length)
        inside = rel[(rel > 0) & (rel < span)]
        if len(inside):
            lo, hi = inside.min(), inside.max()
            m = len(run)
            placed = s_prev + lo + (hi - lo) * (np.arange(m) + 0.5) / m
            out[run] = point_at_parameter(placed, outline)
    return out


def _inverse_consistent(snapped, aligned_landmarks, ref_outline, outline, sim, params, cut, border, shape):
    """Move each landmark along the image outline towards where the reverse fit puts it.

    The reverse fit deforms the image's outline (thinned to ``max_points``, edge points
    dropped) onto the pose-aligned reference outline (on a cut bone: its part inside
    the image); the whole image outline is carried through that field, and landmark k
    goes to the arc-length position whose carried point is nearest the aligned
    reference landmark. The result is the forward position moved by
    ``inverse_weight`` times the (shorter, circular) arc-length difference: the two
    directions slide in opposite senses on smooth outlines, so part of the bias cancels.
    """
    target = np.asarray(sim.apply(np.asarray(ref_outline, dtype=np.float64)))
    if cut and shape is not None:
        keep = inside_box(target, shape, params.edge_margin_px)
        if keep.sum() >= 8:
            target = target[keep]
    moving = _fit_points(outline, border, params.max_points)
    reverse = register_nonrigid(
        target,
        moving,
        beta=params.beta,
        lam=params.lam,
        w=params.w_cut if cut else params.w,
        max_iter=params.max_iter,
        tol=params.tol,
        low_rank=params.low_rank,
    )
    carried = reverse.transform(outline)  # vertex i of the image outline, in the reference's frame
    s_rev = np.interp(outline_parameter(aligned_landmarks, carried), _arclength(carried), _arclength(outline))
    s_fwd = outline_parameter(snapped, outline)
    length = _arclength(outline)[-1]
    delta = np.mod(s_rev - s_fwd + 0.5 * length, length) - 0.5 * length
    return point_at_parameter(s_fwd + params.inverse_weight * delta, outline)


@dataclass(frozen=True)
class Reference:
    """The reference image: its outlines and its landmarks per structure."""

    filestem: str
    outlines: Mapping[str, np.ndarray]
    landmarks: Mapping[str, np.ndarray]
    borders: Mapping[str, np.ndarray] | None = None  # edge flags of the outlines
    shape: Sequence[float] | None = None  # the reference image's view: (height, width) or view box


def make_reference(
    filestem: str,
    outlines: Mapping[str, np.ndarray],
    counts: Mapping[str, int],
    borders: Mapping[str, np.ndarray] | None = None,
    shape: Sequence[float] | None = None,
) -> Reference:
    """Landmarks: each outline resampled uniformly by arc length to its design count."""
    missing = [s for s in counts if s not in outlines]
    if missing:
        raise ValueError(f"reference {filestem} lacks outline(s) for {', '.join(missing)}")
    landmarks = {s: resample_closed(np.asarray(outlines[s], dtype=np.float64), int(n)) for s, n in counts.items()}
    kept = {s: np.asarray(outlines[s], dtype=np.float64) for s in counts}
    return Reference(filestem, kept, landmarks, None if borders is None else {s: borders[s] for s in counts}, shape)


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
    borders: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> tuple[str, dict]:
    """The medoid filestem among candidates that have every structure; returns (filestem, info).

    With ``borders`` (edge flags), only the candidates with the fewest bones cut by
    the image edge compete: landmarks on a cut are not anatomy, for any image.
    """
    complete = sorted(k for k, v in candidates.items() if all(s in v for s in structures))
    if not complete:
        raise ValueError("no image has an outline for every structure; cannot choose a reference")
    cuts = {k: sum(_cut(borders.get(k), s) for s in structures) if borders else 0 for k in complete}
    fewest = min(cuts.values())
    complete = [k for k in complete if cuts[k] == fewest]
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
        "bones_cut_by_edge": int(fewest),
        "mean_distance": float(total[best] / max(len(pool) - 1, 1)),
    }
    return pool[best], info


def _cut(borders: Mapping[str, np.ndarray] | None, s: str) -> bool:
    return borders is not None and s in borders and bool(np.any(borders[s]))


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
    whole = [s for s in common if not _cut(reference.borders, s) and not _cut(borders, s)]
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


def landmark_edge_flags(reference: Reference) -> dict[str, np.ndarray]:
    """Per structure, True for the reference landmarks that sit on its image-edge cut (not anatomy).

    A landmark takes the edge flag of the nearest point of the reference's outline.
    """
    out = {}
    for s, lms in reference.landmarks.items():
        flags = None if reference.borders is None else reference.borders.get(s)
        if flags is None or not np.any(flags):
            out[s] = np.zeros(len(lms), dtype=bool)
            continue
        outline = np.asarray(reference.outlines[s], dtype=np.float64)
        d2 = ((lms[:, None, :] - outline[None]) ** 2).sum(2)
        out[s] = np.asarray(flags, dtype=bool)[d2.argmin(1)]
    return out


def evidence_mask(
    landmarks: np.ndarray, outline: np.ndarray, border: np.ndarray | None, shape: Sequence[float] | None, margin: float
) -> np.ndarray:
    """True for registered landmarks that carry evidence: inside the image by ``margin`` and not
    snapped onto the artificial edge segment of a cut outline (nearest outline point flagged)."""
    valid = np.ones(len(landmarks), dtype=bool)
    if border is not None and np.any(border):
        d2 = ((landmarks[:, None, :] - outline[None]) ** 2).sum(2)
        valid &= ~np.asarray(border, dtype=bool)[d2.argmin(1)]
    if shape is not None:
        valid &= inside_box(landmarks, shape, margin)
    return valid


def groupwise_template(
    reference: Reference,
    images: Sequence[tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray] | None, Sequence[float] | None]],
    params: RegistrationParams,
    iterations: int = 1,
    min_images: int = 3,
    procrustes_iterations: int = 3,
    collect: list | None = None,
) -> tuple[Reference, dict]:
    """A group-wise template: the reference's landmarks averaged over the registered images.

    Why: a single reference carries its own deviations (per-bone pose, size and
    shape) into every correspondence; averaging the corresponded landmark sets
    cancels them. Each iteration registers the current template onto every image
    (``images``: (outlines, edge flags, (height, width)) per image), maps the
    landmarks back to the template's frame by a whole-image generalised Procrustes
    analysis (similarity on all landmarks that carry evidence), and takes the
    per-landmark mean over the images where it carries evidence (at least
    ``min_images``; otherwise the landmark keeps its position). The mean is then
    put back into the reference's frame (a similarity fitted to the previous
    template). Landmark k of the template is landmark k of the reference, so the
    landmark identities are unchanged; landmarks on the reference's edge cut are
    never averaged and keep their edge flag. The template's outline is the closed
    polygon of its landmarks, resampled to the reference's outline density.

    ``collect``, when a list, receives the last iteration's registrations, one
    ``(image index, {structure: landmarks}, {structure: evidence flags})`` per image
    averaged: what the template's landmarks are the mean of (on the phantom, their
    atlas points define the template landmarks' own, see
    ``denseseg.evaluation.correspondence.template_identity``).
    """
    structures = list(reference.landmarks)
    ref_flags = landmark_edge_flags(reference)
    current = reference
    used_last = 0
    for _ in range(max(int(iterations), 0)):
        sets: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
        which: list[int] = []
        for index, (outlines, borders, shape) in enumerate(images):
            results, _problems = register_image(current, outlines, params, borders, shape)
            if not results:
                continue
            lms, valid = {}, {}
            for s, res in results.items():
                v = ~ref_flags[s] & evidence_mask(
                    res.landmarks,
                    np.asarray(outlines[s], dtype=np.float64),
                    None if borders is None else borders.get(s),
                    shape,
                    params.edge_margin_px,
                )
                lms[s], valid[s] = res.landmarks, v
            sets.append((lms, valid))
            which.append(index)
        used_last = len(sets)
        if len(sets) < min_images:
            break
        mean = {s: np.asarray(current.landmarks[s], dtype=np.float64).copy() for s in structures}
        for _gpa in range(procrustes_iterations):
            acc = {s: np.zeros_like(mean[s]) for s in structures}
            cnt = {s: np.zeros(len(mean[s])) for s in structures}
            for lms, valid in sets:
                src = np.vstack([lms[s][valid[s]] for s in lms])
                dst = np.vstack([mean[s][valid[s]] for s in lms])
                if len(src) < 3:
                    continue
                try:
                    sim = umeyama(src, dst)
                except DegenerateShapeError:
                    continue
                for s in lms:
                    acc[s][valid[s]] += sim.apply(lms[s])[valid[s]]
                    cnt[s][valid[s]] += 1
            new = {}
            for s in structures:
                ok = cnt[s] >= min_images
                m = mean[s].copy()
                m[ok] = acc[s][ok] / cnt[s][ok][:, None]
                new[s] = m
            mean = new
        # back to the reference's frame (gauge), on the averaged landmarks
        prev = {s: np.asarray(current.landmarks[s], dtype=np.float64) for s in structures}
        keep = {s: ~ref_flags[s] for s in structures}
        try:
            gauge = umeyama(
                np.vstack([mean[s][keep[s]] for s in structures]), np.vstack([prev[s][keep[s]] for s in structures])
            )
            mean = {s: np.where(keep[s][:, None], gauge.apply(mean[s]), prev[s]) for s in structures}
        except DegenerateShapeError:
            break
        outlines_t, borders_t = {}, {}
        for s in structures:
            n_out = max(len(reference.outlines[s]), len(mean[s]))
            dense = resample_closed(mean[s], n_out)
            d2 = ((dense[:, None, :] - mean[s][None]) ** 2).sum(2)
            outlines_t[s] = dense
            borders_t[s] = ref_flags[s][d2.argmin(1)]
        current = Reference(reference.filestem, outlines_t, mean, borders_t, reference.shape)
        if collect is not None:
            collect[:] = [(i, lms, valid) for i, (lms, valid) in zip(which, sets)]
    info = {
        "method": "group-wise template: reference landmarks averaged over registered images (Procrustes mean)",
        "iterations": int(iterations),
        "images": int(used_last),
        "min_images": int(min_images),
    }
    return current, info
