from types import MappingProxyType

import numpy as np
import pytest

from denseseg.anatomy import WRIST, Anatomy
from denseseg.bone_age.features import bone_inputs

TOY = Anatomy("toy", MappingProxyType({"a": 3, "b": 2}), MappingProxyType({"all": ("a", "b")}))


def test_each_bone_is_centred_on_itself_scaled_padded_and_masked_by_hand():
    a = [[10.0, 20.0], [14.0, 20.0], [12.0, 26.0]]  # centre (12, 22)
    b = [[100.0, 50.0], [102.0, 54.0]]  # centre (101, 52)
    inputs = bone_inputs(np.array([a + b]), TOY, max_points=4, scale=2.0)
    assert inputs.points.shape == (1, 2, 4, 2) and inputs.points.dtype == np.float32
    expected_a = [[-1.0, -1.0], [1.0, -1.0], [0.0, 2.0], [0.0, 0.0]]
    expected_b = [[-0.5, -1.0], [0.5, 1.0], [0.0, 0.0], [0.0, 0.0]]
    assert np.array_equal(inputs.points[0, 0], expected_a)
    assert np.array_equal(inputs.points[0, 1], expected_b)
    assert inputs.mask.tolist() == [[[True, True, True, False], [True, True, False, False]]]
    assert inputs.present.tolist() == [[True, True]]


def test_a_bone_with_any_missing_point_is_absent_and_all_zero():
    points = np.array([[[1.0, 1.0], [np.nan, 2.0], [3.0, 3.0], [5.0, 5.0], [7.0, 9.0]]])
    inputs = bone_inputs(points, TOY, max_points=3, scale=1.0)
    assert inputs.present.tolist() == [[False, True]]
    assert not inputs.mask[0, 0].any() and (inputs.points[0, 0] == 0).all()
    assert np.array_equal(inputs.points[0, 1, :2], [[-1.0, -2.0], [1.0, 2.0]])


def test_wrist_bones_fit_80_slots_and_a_bone_over_the_slots_is_refused():
    landmarks = np.random.default_rng(0).uniform(0, 100, (2, WRIST.n_landmarks, 2))
    inputs = bone_inputs(landmarks, WRIST, max_points=80, scale=192.0)
    assert inputs.points.shape == (2, 17, 80, 2)
    assert inputs.mask.sum(-1)[0].tolist() == list(WRIST.landmark_counts.values())
    assert np.allclose(inputs.points.sum(2), 0, atol=1e-5)  # centred per bone
    with pytest.raises(ValueError, match="radius"):
        bone_inputs(landmarks, WRIST, max_points=79, scale=192.0)
    with pytest.raises(ValueError, match="expected"):
        bone_inputs(landmarks[:, :700], WRIST, max_points=80, scale=192.0)
