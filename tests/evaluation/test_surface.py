"""Boundaries and boundary distances on shapes whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from denseseg.evaluation.segmentation import average_surface_distance
from denseseg.evaluation.surface import (
    boundary,
    hausdorff95,
    landmark_to_boundary,
    surface_distances,
    symmetric_surface_distance,
)


def square(shape, top, left, size):
    m = np.zeros(shape, bool)
    m[top : top + size, left : left + size] = True
    return m


def test_boundary_is_four_connected_a_pixel_with_only_a_diagonal_neighbour_outside_is_interior():
    m = square((7, 7), 1, 1, 5)
    m[1, 1] = False  # notch the corner: (2, 2) now touches the outside only diagonally
    expected = square((7, 7), 1, 1, 5) & ~square((7, 7), 2, 2, 3)
    expected[1, 1] = False
    assert not boundary(m)[2, 2]
    np.testing.assert_array_equal(boundary(m), expected)
    assert boundary(m).sum() == 15


def test_boundary_counts_the_image_border_as_outside():
    full = np.ones((3, 3), bool)
    expected = np.ones((3, 3), bool)
    expected[1, 1] = False
    np.testing.assert_array_equal(boundary(full), expected)


def test_squares_offset_by_two_pixels_have_asd_one_and_hd95_two():
    # 5x5 squares, the second shifted 2 px right; worked by hand per boundary pixel:
    # 6 pixels at 0, 4 at 1 and 6 at 2 in each direction -> mean 16/16 = 1, 95th percentile 2.
    a = square((9, 11), 2, 2, 5)
    b = square((9, 11), 2, 4, 5)
    a_to_b, b_to_a = surface_distances(a, b)
    assert sorted(a_to_b) == [0.0] * 6 + [1.0] * 4 + [2.0] * 6
    assert symmetric_surface_distance(a, b) == pytest.approx(1.0)
    assert hausdorff95(a, b) == pytest.approx(2.0)
    assert symmetric_surface_distance(a, b, spacing=0.25) == pytest.approx(0.25)
    assert hausdorff95(a, b, spacing=0.25) == pytest.approx(0.5)


def test_asymmetric_case_needs_both_directions():
    # A: a 10 px line on row 5; B: a 5 px line on row 8 under A's left half (every pixel is boundary).
    # A -> B: 3 (x5), sqrt(9 + k^2) for k = 1..5; B -> A: 3 (x5). Pooled over the 15 boundary pixels.
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[5, 0:10] = True
    b[8, 0:5] = True
    tail = [math.sqrt(9 + k * k) for k in range(1, 6)]
    pooled = sorted([3.0] * 10 + tail)
    expected_asd = sum(pooled) / 15
    # 95th percentile, linear: position 0.95 * 14 = 13.3 between the 14th and 15th smallest
    expected_hd95 = pooled[13] + 0.3 * (pooled[14] - pooled[13])
    assert symmetric_surface_distance(a, b) == pytest.approx(expected_asd)
    assert symmetric_surface_distance(b, a) == pytest.approx(expected_asd)
    assert hausdorff95(a, b) == pytest.approx(expected_hd95)
    one_sided = (15 + sum(tail)) / 10
    # neither one direction alone nor the mean of the two directions' means is the pooled mean
    for wrong in (one_sided, 3.0, (one_sided + 3.0) / 2):
        assert symmetric_surface_distance(a, b) != pytest.approx(wrong, abs=0.05)


def test_single_pixel_inside_a_ring_pools_the_nine_boundary_distances():
    a = np.zeros((5, 5), bool)
    a[2, 2] = True
    b = square((5, 5), 1, 1, 3)
    assert symmetric_surface_distance(a, b) == pytest.approx((5 + 4 * math.sqrt(2)) / 9)


def test_empty_masks_give_nan_and_the_old_name_gives_the_same_number():
    a = square((9, 11), 2, 2, 5)
    b = square((9, 11), 2, 4, 5)
    empty = np.zeros_like(a)
    assert math.isnan(symmetric_surface_distance(a, empty))
    assert math.isnan(hausdorff95(empty, a))
    assert average_surface_distance(a, b) == symmetric_surface_distance(a, b)
    with pytest.raises(ValueError, match="shapes"):
        symmetric_surface_distance(a, a[:-1])


def test_landmark_to_boundary_on_a_square_by_hand():
    m = square((9, 9), 2, 2, 5)  # rows and columns 2..6
    points = np.array(
        [
            [4.0, 4.0],  # centre: 2 px to any side
            [4.0, 0.0],  # above the top edge (row 2)
            [2.5, 4.0],  # half a pixel right of the left edge's centres
            [0.0, 0.0],  # diagonal to the corner (2, 2)
            [6.0, 6.0],  # on a boundary pixel
            [np.nan, 3.0],
        ]
    )
    d = landmark_to_boundary(points, m)
    np.testing.assert_allclose(d[:5], [2.0, 2.0, 0.5, math.sqrt(8), 0.0])
    assert math.isnan(d[5])


def test_landmark_to_boundary_equals_the_distance_transform_at_pixel_centres():
    m = square((12, 10), 3, 2, 6)
    edt = ndi.distance_transform_edt(~boundary(m))
    rows, cols = np.mgrid[0:12, 0:10]
    points = np.column_stack([cols.ravel(), rows.ravel()]).astype(float)
    np.testing.assert_allclose(landmark_to_boundary(points, m), edt.ravel())


def test_landmark_to_boundary_of_an_empty_mask_is_nan():
    assert np.isnan(landmark_to_boundary(np.array([[1.0, 1.0]]), np.zeros((4, 4), bool))).all()
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        landmark_to_boundary(np.zeros(3), np.ones((4, 4), bool))
