"""WorkingFrame against values worked out by hand, on a frame padded left and right.

The other WorkingFrame tests use frames padded only above and below, and the
ingest test compares ingest with ``warp_image`` itself, so a wrong horizontal
padding would pass them. Two of the shared real radiographs are padded left.
Here a tall 1000 x 400 radiograph goes into a 384 x 224 frame: scale
384 / 1000 = 0.384, image width 400 * 0.384 = 153.6 px, padding
(224 - 153.6) / 2 = 35.2 px on each side; the original's left edge (x = -0.5)
lands at -0.5 + 35.2 = 34.7 and its right edge at 34.7 + 153.6 = 188.3.
"""

import numpy as np
import pytest

from denseseg.preprocessing.working_frame import WorkingFrame

SCALE, PAD_LEFT = 0.384, 35.2


def _frame(flipped: bool) -> WorkingFrame:
    return WorkingFrame.fit(1000, 400, 384, 224, flipped)


def _centroid(image: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(xs * image).sum(), (ys * image).sum()]) / image.sum()


def test_a_tall_radiograph_is_padded_left_and_right_by_hand_computed_amounts():
    frame = _frame(False)
    assert frame.scale == pytest.approx(SCALE) and frame.pad_left == pytest.approx(PAD_LEFT) and frame.pad_top == 0


def test_points_map_to_the_hand_computed_working_positions():
    # x: (119.5 + 0.5) * 0.384 - 0.5 + 35.2 = 80.78; y: (514.5 + 0.5) * 0.384 - 0.5 = 197.26
    assert np.allclose(_frame(False).to_working([119.5, 514.5]), [80.78, 197.26])
    # mirrored: x becomes 399 - 119.5 = 279.5 first: (280 * 0.384) - 0.5 + 35.2 = 142.22
    assert np.allclose(_frame(True).to_working([119.5, 514.5]), [142.22, 197.26])


@pytest.mark.parametrize("flipped, expected_x", [(False, 80.78), (True, 142.22)])
def test_a_block_in_a_left_padded_frame_lands_where_the_hand_computation_says(flipped, expected_x):
    image = np.zeros((1000, 400), np.float32)
    image[500:530, 100:140] = 1.0  # centre (119.5, 514.5)
    warped = _frame(flipped).warp_image(image)
    assert np.allclose(_centroid(warped), [expected_x, 197.26], atol=0.15)


def test_the_whole_radiograph_fills_exactly_the_columns_between_the_paddings():
    warped = _frame(False).warp_image(np.ones((1000, 400), np.float32))
    # working edges 34.7 .. 188.3: columns 35..188 are (mostly) image, 0..33 and 190.. are padding
    assert warped[:, :34].max() == 0 and warped[:, 190:].max() == 0
    assert np.allclose(warped[:, 36:188], 1.0)
    assert warped.sum() == pytest.approx(1000 * 400 * SCALE**2, rel=0.01)
    top, left, bottom, right = _frame(False).view_box()
    assert (top, bottom) == (-0.5, 383.5) and left == pytest.approx(34.5) and right == pytest.approx(188.5)


@pytest.mark.parametrize("flipped, working_x", [(False, 80.78), (True, 142.22)])
def test_working_positions_map_back_to_the_original_through_the_left_padding(flipped, working_x):
    frame = _frame(flipped)
    assert np.allclose(frame.to_original([working_x, 197.26]), [119.5, 514.5])
    corners = np.array([[-0.5, -0.5], [399.5, 999.5]])  # the original's outer pixel edges
    assert np.allclose(frame.to_original(frame.to_working(corners)), corners)


def test_a_mask_covering_half_a_working_pixel_is_kept_and_less_is_not():
    # 4 x 4 -> 2 x 2: scale 0.5, no padding; each working pixel averages a 2 x 2 block exactly
    frame = WorkingFrame.fit(4, 4, 2, 2, False)
    mask = np.zeros((4, 4), bool)
    mask[0:2, 0] = True  # half of the top-left block
    mask[2, 2] = True  # a quarter of the bottom-right block
    assert frame.warp_mask(mask).tolist() == [[True, False], [False, False]]


def test_a_frame_that_shows_none_of_the_radiograph_has_the_whole_frame_as_view_box():
    # padding larger than the frame: nothing of the original lands inside, so no edge cuts a bone
    frame = WorkingFrame(10, 10, 8, 8, False, 0.5, 0.0, 100.0)
    assert frame.view_box() == (-0.5, -0.5, 7.5, 7.5)
