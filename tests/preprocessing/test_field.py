"""The exposed field: collimator bands found against images whose bands are known by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from denseseg.preprocessing.field import FieldParams, exposed_field
from denseseg.preprocessing.working_frame import WorkingFrame

PARAMS = FieldParams(enabled=True, dark_at_most=0, max_margin=0.15, bins=8)
REAL = Path(__file__).resolve().parents[3] / "shared/data/grazpedwri-dx/images"


def _radiograph(shape=(192, 112), seed=0) -> np.ndarray:
    """Noisy exposed tissue (never 0) with a dark air region that reaches the left edge in part."""
    rng = np.random.default_rng(seed)
    image = rng.integers(2000, 30000, size=shape).astype(np.float64)
    image[40:90, :30] = rng.integers(1, 50, size=(50, 30))  # air: dark, but exposed (not 0)
    return image


def _box(shape):
    return (-0.5, -0.5, shape[0] - 0.5, shape[1] - 0.5)


def test_straight_bands_are_measured_to_the_pixel():
    image = _radiograph()
    image[:7] = 0  # top blade: 7 rows
    image[:, -4:] = 0  # right blade: 4 columns
    assert exposed_field(image, _box(image.shape), PARAMS) == (7.0, 0.0, 0.0, 4.0)


def test_a_tilted_band_ends_at_its_deepest_point():
    image = _radiograph()
    h, w = image.shape
    depth = 5 + np.round(np.arange(w) * np.tan(np.deg2rad(2.0))).astype(int)  # 5 .. 9 px along the bottom
    for x in range(w):
        image[h - depth[x] :, x] = 0
    top, left, bottom, right = exposed_field(image, _box(image.shape), PARAMS)
    assert (top, left, right) == (0.0, 0.0, 0.0)
    # the inner edge: nothing beyond the blade counts as exposed, and at most one bin's taper is given up
    assert depth.max() - 1 <= bottom <= depth.max()


def test_air_that_leaves_tissue_at_the_edge_is_no_band():
    image = _radiograph()
    image[:, :3][image[:, :3] < 100] = 0  # air clipped to 0 along part of the left edge only
    assert exposed_field(image, _box(image.shape), PARAMS) == (0.0, 0.0, 0.0, 0.0)


def test_bands_are_found_inside_the_letterbox_footprint_only():
    frame = WorkingFrame.fit(100, 40, 192, 112, flipped=False)  # padded left and right
    image = np.zeros((192, 112))
    top, left, bottom, right = (int(round(v + 0.5)) for v in frame.footprint_box())
    image[top:bottom, left:right] = _radiograph((bottom - top, right - left))
    image[top : top + 6, left:right] = 0
    assert exposed_field(image, frame.footprint_box(), PARAMS) == (6.0, 0.0, 0.0, 0.0)


def test_a_band_is_capped_and_detection_can_be_turned_off():
    image = _radiograph()
    image[:60] = 0  # 60 of 192 rows dark: more than any blade leaves
    assert exposed_field(image, _box(image.shape), PARAMS)[0] == np.floor(0.15 * 192)
    off = PARAMS.model_copy(update={"enabled": False})
    assert exposed_field(image, _box(image.shape), off) == (0.0, 0.0, 0.0, 0.0)


def test_the_view_box_ends_at_the_field():
    frame = WorkingFrame.fit(192, 112, 192, 112, flipped=False)
    banded = WorkingFrame(**{**frame.__dict__, "field": (7.0, 0.0, 2.0, 4.0)})
    assert frame.view_box() == (-0.5, -0.5, 191.5, 111.5)
    assert banded.view_box() == (6.5, -0.5, 189.5, 107.5)


@pytest.mark.skipif(not REAL.is_dir(), reason="the real GRAZPEDWRI-DX radiographs are not beside the project")
def test_real_radiographs_without_blades_keep_their_whole_view():
    from denseseg.io.png import read_png
    from denseseg.preprocessing.ingest import working_pixels

    paths = sorted(REAL.glob("*.png"))
    assert paths
    for path in paths:  # their borders hold air clipped to 0 beside tissue, not collimator blades
        frame, image = working_pixels(read_png(path), 384, 224, flipped=False)
        assert exposed_field(image, frame.footprint_box(), PARAMS) == (0.0, 0.0, 0.0, 0.0), path.name


def test_a_bone_that_ends_at_a_band_is_flagged_as_cut():
    from denseseg.shape.contours import border_flags, outline

    frame = WorkingFrame.fit(192, 112, 192, 112, flipped=False)
    banded = WorkingFrame(**{**frame.__dict__, "field": (0.0, 0.0, 9.0, 0.0)})  # a 9-row blade at the bottom
    mask = np.zeros((192, 112), dtype=bool)
    mask[120:183, 40:60] = True  # a shaft that runs into the blade: it ends at row 182, the blade starts at 183
    points = outline(mask)
    at_cut = np.abs(points[:, 1] - 182.5) < 0.01
    assert at_cut.sum() >= 10
    assert not border_flags(points, frame.view_box(), 2.5).any()  # the letterbox alone: the cut passes as bone
    flags = border_flags(points, banded.view_box(), 2.5)
    assert flags[at_cut].all() and not flags[points[:, 1] < 179].any()
