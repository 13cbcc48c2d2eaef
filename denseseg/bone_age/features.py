"""Per-bone inputs of the regressor: each bone's landmarks centred on that bone, zero-padded and masked.

A bone is present when all of its landmarks are finite; a bone with any NaN
point (not found, not ossified, cut by the image edge) is absent as a whole
and all its slots are masked, so that a half-found bone never enters the MLP.
Slots beyond a bone's landmark count are padding and always masked.

Scaling: after centring, coordinates are divided by the working image height
(``scale``, 192 px in the demo). Centring removes the bone's position, as in
the paper; the division only brings the inputs to about +-0.3 whatever the
working resolution, so that the first Linear layer sees the same range at
192 x 112 as at the paper's 384 x 224. It is one constant for all images, so
the bones' sizes in the frame (the cue that grows with age) and their ratios
are kept; nothing is normalised per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from denseseg.anatomy import Anatomy


@dataclass(frozen=True)
class BoneInputs:
    """Network inputs of B images.

    Attributes:
        points: (B, S, P, 2) float32 centred, scaled coordinates; 0 in every masked slot.
        mask: (B, S, P) bool, True for a real landmark of a present bone.
        present: (B, S) bool, the bones whose landmarks were all found.
    """

    points: np.ndarray
    mask: np.ndarray
    present: np.ndarray


def bone_inputs(landmarks: np.ndarray, anatomy: Anatomy, max_points: int, scale: float) -> BoneInputs:
    """(B, N, 2) landmarks in the anatomy's flat order (working px, NaN where missing) -> ``BoneInputs``.

    Args:
        landmarks: (B, N, 2) or (N, 2) points (x, y), N = ``anatomy.n_landmarks``.
        anatomy: the structures and their landmark counts.
        max_points: slots per bone; every bone must fit.
        scale: divisor of the centred coordinates (the working image height).
    """
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.ndim == 2:
        landmarks = landmarks[None]
    if landmarks.ndim != 3 or landmarks.shape[1:] != (anatomy.n_landmarks, 2):
        raise ValueError(
            f"landmarks of shape {landmarks.shape}: expected (B, {anatomy.n_landmarks}, 2) for the {anatomy.name}"
        )
    if scale <= 0:
        raise ValueError(f"scale {scale}: must be positive")
    too_many = {s: n for s, n in anatomy.landmark_counts.items() if n > max_points}
    if too_many:
        raise ValueError(f"max_points {max_points} is below the landmark count of {too_many}")
    batch, bones = landmarks.shape[0], len(anatomy.structures)
    points = np.zeros((batch, bones, max_points, 2), np.float32)
    mask = np.zeros((batch, bones, max_points), bool)
    present = np.zeros((batch, bones), bool)
    offsets = anatomy.landmark_offsets()
    for s, (structure, count) in enumerate(anatomy.landmark_counts.items()):
        bone = landmarks[:, offsets[structure] : offsets[structure] + count]
        found = np.isfinite(bone).all(axis=(1, 2))
        present[:, s] = found
        mask[found, s, :count] = True
        if found.any():
            centred = bone[found] - bone[found].mean(axis=1, keepdims=True)
            points[found, s, :count] = (centred / scale).astype(np.float32)
    return BoneInputs(points, mask, present)
