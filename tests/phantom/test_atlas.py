import numpy as np
import pytest

from denseseg.anatomy import WRIST
from denseseg.phantom.atlas import DENSE_PER_LANDMARK, atlas, dense_count, polygon_centroid, signed_area


def test_dense_counts_follow_the_design_landmarks():
    assert DENSE_PER_LANDMARK == 8
    assert dense_count("radius") == 640
    bones = atlas()
    assert tuple(bones) == WRIST.structures
    for name, bone in bones.items():
        assert bone.points.shape == (WRIST.landmark_counts[name] * 8, 2)
    with pytest.raises(KeyError, match="unknown wrist bone"):
        dense_count("femur")


def test_contours_are_screen_counter_clockwise_and_evenly_spaced():
    for bone in atlas().values():
        assert signed_area(bone.points) < 0  # y down: negative shoelace = counter-clockwise on screen
        closed = np.vstack([bone.points, bone.points[:1]])
        seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
        assert seg.std() / seg.mean() < 0.05


def test_point_zero_is_the_distal_end():
    for bone in atlas().values():
        c = polygon_centroid(bone.points)
        rel = bone.points - c
        along = rel @ bone.distal
        across = rel @ np.array([-bone.distal[1], bone.distal[0]])
        # point 0 is where the distal ray from the centroid crosses the contour
        spacing = np.linalg.norm(bone.points[1] - bone.points[0])
        assert along[0] > 0 and abs(across[0]) <= spacing


def test_left_hand_pa_layout():
    b = {name: polygon_centroid(t.points) for name, t in atlas().items()}
    assert b["radius"][0] > b["ulna"][0]  # radius on the image's right in a left-hand PA view
    assert b["metacarpal_1"][0] > b["metacarpal_5"][0]  # thumb on the radial side
    assert b["radius_epiphysis"][1] < b["radius"][1]  # epiphysis distal (above) its metaphysis
    assert b["ulna_epiphysis"][1] < b["ulna"][1]
    for carpal in WRIST.groups["carpals"]:
        assert b["radius_epiphysis"][1] > b[carpal][1] > b["metacarpal_3"][1]
