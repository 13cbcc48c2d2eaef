import numpy as np
import pytest

from denseseg.shape.umeyama import DegenerateShapeError, umeyama


def test_recovers_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(20, 2)) * 10
    a = np.deg2rad(33)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = 1.7 * src @ rot.T + [5.0, -3.0]
    sim = umeyama(src, dst)
    assert np.allclose(sim.rotation, rot) and np.isclose(sim.scale, 1.7)
    assert np.allclose(sim.translation, [5.0, -3.0]) and sim.rms < 1e-9
    assert np.allclose(sim.inverse().apply(dst), src)


def test_reflection_is_guarded_and_residual_reported():
    src = np.array([[0, 0], [4, 0], [0, 2], [3, 3.0]])
    mirrored = src * [-1, 1]
    sim = umeyama(src, mirrored)
    assert np.linalg.det(sim.rotation) > 0 and sim.rms > 0.1
    assert np.linalg.det(umeyama(src, mirrored, allow_reflection=True).rotation) < 0


@pytest.mark.parametrize(
    "points, message",
    [
        ([[0, 0], [1, 1]], "distinct"),
        ([[0, 0], [0, 0], [1, 1], [1, 1]], "distinct"),
        ([[0, 0], [1, 1], [2, 2], [3, 3]], "collinear"),
        ([[0, 0], [1, np.nan], [2, 0]], "NaN"),
    ],
)
def test_degenerate_inputs_raise(points, message):
    with pytest.raises(DegenerateShapeError, match=message):
        umeyama(np.asarray(points, float), np.asarray(points, float))
    assert issubclass(DegenerateShapeError, ValueError)
