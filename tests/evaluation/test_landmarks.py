"""TRE and the landmark-to-structure bookkeeping, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from denseseg.anatomy import WRIST
from denseseg.evaluation.landmarks import landmark_structures, subset_anatomy, tre


def test_tre_is_the_euclidean_distance_per_landmark():
    pred = np.array([[0.0, 0.0], [1.0, 1.0], [np.nan, 2.0]])
    true = np.array([[3.0, 4.0], [1.0, 1.0], [2.0, 2.0]])
    d = tre(pred, true)
    assert d[:2].tolist() == [5.0, 0.0]
    assert math.isnan(d[2])


def test_tre_rejects_mismatched_landmark_counts():
    with pytest.raises(ValueError, match="differ in number"):
        tre(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        tre(np.zeros((3, 3)), np.zeros((3, 3)))


def test_landmark_structures_follow_the_flat_landmark_order():
    owner = landmark_structures(WRIST)
    offsets = WRIST.landmark_offsets()
    assert owner.shape == (WRIST.n_landmarks,)
    for s, name in enumerate(WRIST.structures):
        assert (owner[offsets[name] : offsets[name] + WRIST.landmark_counts[name]] == s).all()


def test_subset_anatomy_counts_the_kept_landmarks_per_structure():
    keep = np.zeros(WRIST.n_landmarks, bool)
    keep[WRIST.landmark_offsets()["lunate"]] = True
    keep[:3] = True  # three radius landmarks
    sub = subset_anatomy(WRIST, keep)
    assert sub.n_landmarks == 4
    assert sub.landmark_counts["radius"] == 3 and sub.landmark_counts["lunate"] == 1
    assert sub.structures == WRIST.structures and sub.groups == WRIST.groups
    with pytest.raises(ValueError, match="keep must be"):
        subset_anatomy(WRIST, keep[:-1])
