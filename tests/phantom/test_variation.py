import numpy as np

from denseseg.anatomy import WRIST
from denseseg.phantom.atlas import atlas
from denseseg.phantom.growth import growth_state
from denseseg.phantom.variation import Pose, ShapeVariation, instance_contours, young_shape


def test_young_carpal_is_small_and_round_then_adult():
    t = atlas()["scaphoid"]
    young = young_shape(t, 0.02)
    assert young.shape == t.points.shape
    r = np.linalg.norm(young - young.mean(0), axis=1)
    assert r.std() / r.mean() < 0.08  # round
    assert np.ptp(young[:, 1]) < 0.5 * np.ptp(t.points[:, 1])  # small
    np.testing.assert_allclose(young_shape(t, 1.0), t.points)


def test_instance_keeps_counts_and_drops_absent_bones():
    rng = np.random.default_rng(0)
    var = [ShapeVariation.draw(rng), ShapeVariation.draw(rng, 0.3, 4.0)]
    young = instance_contours(growth_state(1.5, "M", 0, WRIST.structures), var)
    assert "scaphoid" not in young and "pisiform" not in young and "capitate" in young
    old = instance_contours(growth_state(14, "F", 0, WRIST.structures), var)
    assert list(old) == list(WRIST.structures)
    for name, pts in old.items():
        assert pts.shape == atlas()[name].points.shape
    # smooth deformation: neighbouring points stay neighbours
    step = np.linalg.norm(np.diff(old["radius"], axis=0), axis=1)
    assert step.max() < 4 * np.median(step)


def test_pose_maps_centre_to_image_centre():
    pose = Pose(101, 51, 3.0, 10.0, (2.0, -5.0))
    np.testing.assert_allclose(pose.to_image(np.array([[2.0, -5.0]])), [[25.0, 50.0]])
