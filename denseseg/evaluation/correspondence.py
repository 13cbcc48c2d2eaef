"""How well do registered landmarks correspond? Scored against the phantom's dense truth.

The phantom knows, for every image and bone, the position of each atlas contour
point (dense points, in atlas order). A reference landmark is a point on the
reference's outline; its anatomical identity is its vertex parameter along the
reference's truth contour (projection onto the closed polyline: segment index plus
fraction, see ``denseseg.shape.polyline``). The true position of that landmark in another image is the same
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

import copy
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from denseseg.shape.polyline import point_at_vertex_parameter, vertex_parameter
from denseseg.shape.view_box import inside_box


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
        identity = vertex_parameter(reference_landmarks, reference_truth)
    return point_at_vertex_parameter(target_truth, identity)


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
    start = vertex_parameter(reference_landmarks, reference_truth)
    n = len(reference_truth)
    total = np.zeros(len(start))
    count = np.zeros(len(start))
    for landmarks, evidence, truth in registered:
        _check_same_atlas(reference_truth, truth)
        offset = np.mod(vertex_parameter(landmarks, truth) - start + 0.5 * n, n) - 0.5 * n
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


IDENTITY_TEMPLATE = "template: mean atlas point of the registered reference landmarks it averages"
IDENTITY_REFERENCE = "reference: the reference landmarks' atlas points"
_FIGURES = ("median_px", "mean_px", "p95_px")


class RegistrationAccuracy:
    """Registered landmarks against the phantom's truth: appended bone by bone, reduced once.

    In the manner of a MONAI metric: ``append`` scores one registered bone and keeps
    its errors, ``aggregate`` reduces everything appended into the figures of
    ``registration.json``, ``reset`` empties it; ``fresh`` gives an empty one with the
    same landmarks (one per shard), ``extend`` appends another's errors after its own
    (shards in order, so the reduction does not depend on the number of workers).

    The true point of a landmark is its atlas point: the template landmark's own when
    a template averaged registered images (``template_identity``), else the
    reference landmark's; ``reference_identity`` scores the same landmarks at the
    reference's atlas points. Only landmarks with anatomy at both ends are scored
    (``scored_errors``). Two subsets qualify the headline: ``*_inside`` (true point at
    least ``inside_margin_px`` from the edges of both images) and ``*_uncut`` (the
    bone whole in both the reference and the image).

    Args:
        reference_landmarks: {structure: (L, 2)} the landmark identities: the reference's, never the template's.
        reference_truth: {structure: (n, 2)} the reference image's truth contours, working pixels.
        reference_view: the reference image's view ((height, width) or its view box).
        reference_cut: {structure: bool} the reference's bones cut by its image edge.
        inside_margin_px: the margin of the ``*_inside`` figures.
        averaged: per image the template averages, ({structure: registered reference landmarks},
            {structure: evidence flags}, {structure: that image's truth contour, working pixels});
            empty without a template.
    """

    def __init__(
        self,
        reference_landmarks: Mapping[str, np.ndarray],
        reference_truth: Mapping[str, np.ndarray],
        reference_view: Sequence[float],
        reference_cut: Mapping[str, bool],
        inside_margin_px: float,
        averaged: Sequence[tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray], Mapping[str, np.ndarray]]] = (),
    ):
        self.reference_landmarks = reference_landmarks
        self.reference_truth = reference_truth
        self.reference_view = reference_view
        self.reference_cut = reference_cut
        self.inside_margin_px = inside_margin_px
        scored = [s for s in reference_truth if s in reference_landmarks]
        # the reference landmarks' atlas points, once (not per scored image)
        self.reference_identity = {s: vertex_parameter(reference_landmarks[s], reference_truth[s]) for s in scored}
        self.identity = {
            s: template_identity(
                reference_landmarks[s],
                reference_truth[s],
                [(lms[s], valid[s], truth[s]) for lms, valid, truth in averaged if s in lms and s in truth],
            )
            for s in scored
        }
        self.from_template = bool(averaged)
        self.reset()

    def reset(self) -> None:
        self.errors: dict[str, list[np.ndarray]] = {s: [] for s in self.reference_landmarks}
        self.inside: list[np.ndarray] = []
        self.uncut: list[np.ndarray] = []
        self.at_reference: list[np.ndarray] = []
        self.unscored = 0

    def fresh(self) -> RegistrationAccuracy:
        """An empty accumulator over the same landmarks and truth."""
        other = copy.copy(self)
        other.reset()
        return other

    def scores(self, structure: str) -> bool:
        """Whether ``structure`` can be scored (the reference has its truth)."""
        return structure in self.reference_truth

    def append(
        self, structure: str, registered: np.ndarray, target_truth: np.ndarray, view: Sequence[float], cut: bool
    ) -> np.ndarray:
        """Score one registered bone of an image (``cut``: by its image edge); returns its landmarks' true points."""
        ref_lm, ref_truth = self.reference_landmarks[structure], self.reference_truth[structure]
        ref_view = self.reference_view
        identity = self.identity.get(structure)
        err, left_out = scored_errors(ref_lm, ref_truth, registered, target_truth, ref_view, view, identity=identity)
        self.errors[structure].append(err)
        self.unscored += left_out
        at_reference = scored_errors(
            ref_lm, ref_truth, registered, target_truth, ref_view, view, identity=self.reference_identity[structure]
        )[0]
        self.at_reference.append(at_reference)
        # the same landmarks, flagged: away from both images' edges; bone whole in both images
        truth_points = true_positions(ref_lm, ref_truth, target_truth, identity)
        keep = inside_image(ref_lm, ref_view) & inside_image(truth_points, view)
        margin = self.inside_margin_px
        inner = inside_image(ref_lm, ref_view, margin) & inside_image(truth_points, view, margin)
        self.inside.append(err[inner[keep]])
        if not (self.reference_cut[structure] or cut):
            self.uncut.append(err)
        return truth_points

    def extend(self, other: RegistrationAccuracy) -> None:
        """Append everything ``other`` holds after what this one holds."""
        for s, errors in other.errors.items():
            self.errors[s].extend(errors)
        self.inside.extend(other.inside)
        self.uncut.extend(other.uncut)
        self.at_reference.extend(other.at_reference)
        self.unscored += other.unscored

    def aggregate(self, groups: Mapping[str, tuple[str, ...]]) -> dict:
        """The accuracy figures (see the class docstring); NaN figures for no landmarks."""
        summary = summarise_by_group(self.errors, groups)
        out: dict = {k: summary[k] for k in (*_FIGURES, "max_px")}
        out["landmarks_scored"] = summary["n"]
        out["landmarks_unscored"] = self.unscored  # cut by the image edge
        out["groups"] = summary["groups"]
        for name, parts in (("inside", self.inside), ("uncut", self.uncut)):
            part = summarise(np.concatenate(parts or [np.zeros(0)]))
            out.update({f"{k}_{name}": part[k] for k in _FIGURES})
            out[f"landmarks_{name}"] = part["n"]
        out["inside_margin_px"] = self.inside_margin_px
        out["identity"] = IDENTITY_TEMPLATE if self.from_template else IDENTITY_REFERENCE
        part = summarise(np.concatenate(self.at_reference or [np.zeros(0)]))
        out["reference_identity"] = {k: part[k] for k in _FIGURES}
        return out

    @staticmethod
    def unscored_figures() -> dict:
        """The same keys as null where there is no truth to score against."""
        out: dict = {"median_px": None, "mean_px": None, "p95_px": None, "max_px": None, "groups": None}
        for name in ("inside", "uncut"):
            out.update({f"{k}_{name}": None for k in _FIGURES})
        out.update({"identity": None, "reference_identity": None})
        return out
