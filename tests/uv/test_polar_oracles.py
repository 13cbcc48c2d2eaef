"""Polar uv against values worked out by hand (the other polar test takes its targets from the module itself).

Image landmarks: a diamond with centre (5, 5) and corners (10, 5), (5, 10),
(0, 5), (5, 0). Template: the quadrilateral (5, 3), (1, 4), (-1, 1), (3, 0) with
centroid (2, 2), so its centroid directions are (3, 1), (-1, 2), (-3, -1),
(1, -2) and their square normalisations (divided by the larger absolute
coordinate) (1, 1/3), (-1/2, 1), (-1, -1/3), (1/2, -1).
"""

import numpy as np
import pytest

from denseseg.uv.polar import PolarWarp, polar_crop, polar_landmark_uv, square_normalise

IMAGE = np.array([[10.0, 5.0], [5.0, 10.0], [0.0, 5.0], [5.0, 0.0]])
TEMPLATE = np.array([[5.0, 3.0], [1.0, 4.0], [-1.0, 1.0], [3.0, 0.0]])
TEMPLATE_UV = np.array([[1.0, 1 / 3], [-0.5, 1.0], [-1.0, -1 / 3], [0.5, -1.0]])


def test_square_normalise_divides_by_the_larger_absolute_coordinate():
    vectors = np.array([[3.0, 1.5], [-2.0, 4.0], [0.0, -0.25], [0.0, 0.0]])
    assert np.allclose(square_normalise(vectors), [[1.0, 0.5], [-0.5, 1.0], [0.0, -1.0], [0.0, 0.0]])


def test_template_landmarks_get_their_square_normalised_centroid_directions():
    assert np.allclose(polar_landmark_uv(TEMPLATE), TEMPLATE_UV)


def test_image_landmarks_map_to_the_template_uv_and_the_centre_to_zero():
    warp = PolarWarp(IMAGE, TEMPLATE)
    assert np.allclose(warp.uv(IMAGE), TEMPLATE_UV)
    assert np.allclose(warp.uv(np.array([[5.0, 5.0]])), 0.0)


def test_the_ring_scales_the_direction_linearly_from_the_centre():
    warp = PolarWarp(IMAGE, TEMPLATE)
    halfway = (IMAGE + [5.0, 5.0]) / 2  # rho = 1/2 on every landmark's ray
    assert np.allclose(warp.uv(halfway), TEMPLATE_UV / 2)


@pytest.mark.parametrize(
    "point, expected",
    [
        # halfway between landmarks 0 and 1, on the contour (rho 1): the template point halfway between
        # (5, 3) and (1, 4) is (3, 3.5), direction (1, 1.5) from (2, 2), square-normalised (2/3, 1)
        ((7.5, 7.5), (2 / 3, 1.0)),
        # 95 % of the way: template point (1.2, 3.95), direction (-0.8, 1.95)
        ((5.25, 9.75), (-0.8 / 1.95, 1.0)),
        # 10 % from landmark 2 towards 3 at half the ring: template (-0.6, 0.9), direction (-2.6, -1.1)
        ((2.75, 4.75), (-0.5, -0.5 * 1.1 / 2.6)),
    ],
)
def test_a_contour_point_maps_to_the_template_point_at_the_same_edge_fraction(point, expected):
    warp = PolarWarp(IMAGE, TEMPLATE)
    assert np.allclose(warp.uv(np.array([point])), [expected])


def test_the_crop_holds_the_same_values_at_mask_pixels():
    mask = np.zeros((12, 12), bool)
    mask[5, 5] = mask[5, 10] = mask[10, 5] = True
    crop = polar_crop(mask, IMAGE, TEMPLATE)
    assert (crop.top, crop.left) == (5, 5)
    assert np.allclose(crop.uv[:, 0, 0], 0.0)
    assert np.allclose(crop.uv[:, 0, 5], TEMPLATE_UV[0]) and np.allclose(crop.uv[:, 5, 0], TEMPLATE_UV[1])
    assert np.isnan(crop.uv[:, 5, 5]).all()
    assert pytest.approx(float(np.nansum(np.abs(crop.uv)))) == float(np.abs(TEMPLATE_UV[:2]).sum())
