"""The registration's scorer on the phantom: ``RegistrationAccuracy`` set up from the truth contours.

The landmark identities are the reference's (never the template's); the truth of
the reference and of every image the group-wise template averaged is read once,
mapped into each image's working frame.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from denseseg.evaluation.correspondence import RegistrationAccuracy
from denseseg.io.truth import read_working_truth
from denseseg.preprocessing.working_frame import WorkingFrame
from denseseg.shape.registration import GroupwiseTemplate, Reference, is_cut

log = logging.getLogger(__name__)


def phantom_accuracy(
    truth_contours: Path,
    reference: Reference,
    built: GroupwiseTemplate,
    frames: Mapping[str, WorkingFrame],
    views: Mapping[str, Sequence[float]],
    structures: Sequence[str],
    inside_margin_px: float,
) -> RegistrationAccuracy | None:
    """The scorer against the truth in ``truth_contours``; None (with a warning) when the reference has no truth."""
    ref = reference.filestem
    ref_truth = read_working_truth(truth_contours, [ref], frames).get(ref)
    if ref_truth is None:
        log.warning("register: no truth for the reference %s; accuracy is not scored", ref)
        return None
    stems = [built.filestems[a.index] for a in built.averaged]
    truth = read_working_truth(truth_contours, sorted(set(stems)), frames)
    return RegistrationAccuracy(
        reference.landmarks,  # the landmark identities (scoring), never the template's
        ref_truth,
        views[ref],
        {s: is_cut(reference.borders, s) for s in structures},
        inside_margin_px,
        [(a.landmarks, a.evidence, truth.get(stem, {})) for stem, a in zip(stems, built.averaged)],
    )
