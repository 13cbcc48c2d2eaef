import numpy as np
import pytest

from denseseg.preprocessing.working_frame import WorkingFrame


@pytest.mark.parametrize("flipped", [False, True])
def test_points_round_trip_and_image_follows_points(flipped):
    frame = WorkingFrame.fit(1000, 601, 384, 224, flipped)
    points = np.array([[0.0, 0.0], [600.0, 999.0], [119.5, 514.5]])
    assert np.allclose(frame.to_original(frame.to_working(points)), points)
    image = np.zeros((1000, 601), np.float32)
    image[500:530, 100:140] = 1  # centre (119.5, 514.5)
    warped = frame.warp_image(image)
    ys, xs = np.mgrid[: warped.shape[0], : warped.shape[1]]
    centroid = np.array([(xs * warped).sum(), (ys * warped).sum()]) / warped.sum()
    assert np.allclose(centroid, frame.to_working(points[2]), atol=0.15)
    assert warped.sum() * (1 / frame.scale) ** 2 == pytest.approx(image.sum(), rel=0.02)


def test_fit_is_isotropic_and_centred():
    frame = WorkingFrame.fit(200, 200, 384, 224, False)
    assert frame.scale == pytest.approx(224 / 200) and frame.pad_left == 0
    assert frame.pad_top == pytest.approx((384 - 224) / 2)
    assert frame.mm_per_px_factor * 0.144 == pytest.approx(0.144 * 200 / 224)


def test_mirroring_moves_the_left_side_to_the_right():
    image = np.zeros((100, 60), np.float32)
    image[:, :10] = 1
    warped = WorkingFrame.fit(100, 60, 100, 60, True).warp_image(image)
    assert warped[:, -10:].mean() == pytest.approx(1) and warped[:, :40].max() == 0


def test_wrong_image_shape_and_sizes_raise():
    frame = WorkingFrame.fit(10, 10, 8, 8, False)
    with pytest.raises(ValueError, match="does not match"):
        frame.warp_image(np.zeros((9, 10)))
    with pytest.raises(ValueError, match="positive"):
        WorkingFrame.fit(0, 10, 8, 8, False)


def test_view_box_is_the_letterboxed_radiograph():
    """A wide radiograph in a tall frame: padding above and below; the box holds exactly the image's pixels."""
    frame = WorkingFrame.fit(300, 400, 384, 224, False)  # scale 0.56, 168 rows of image, 108 rows of padding each
    top, left, bottom, right = frame.view_box()
    footprint = frame.warp_image(np.ones((300, 400), np.float32)) >= 0.5
    rows = np.flatnonzero(footprint.any(1))
    assert (top, bottom) == (rows[0] - 0.5, rows[-1] + 0.5) and (left, right) == (-0.5, 223.5)
    assert top == pytest.approx(frame.pad_top - 0.5, abs=1.0) and bottom - top == pytest.approx(
        300 * frame.scale, abs=1
    )
    whole = WorkingFrame.fit(384, 224, 384, 224, True)
    assert whole.view_box() == (-0.5, -0.5, 383.5, 223.5)
