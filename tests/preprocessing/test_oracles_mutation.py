"""Preprocessing edge cases against values known by construction, for behaviour the other tests left open.

Each test pins one contract a planted bug (benchmarks/mutation.py) got past:
images with no dark pixel have no band, an empty footprint has no band either,
and a one-pixel side is a valid size whose frame is worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from denseseg.preprocessing.field import FieldParams, exposed_field
from denseseg.preprocessing.working_frame import WorkingFrame

PARAMS = FieldParams(enabled=True, dark_at_most=0, max_margin=0.15, bins=8)


def test_an_image_with_fewer_lines_than_bins_has_no_band():
    """A fully exposed 6 x 5 image (no pixel <= dark_at_most): 5 or 6 lines per side, fewer than the 8 bins."""
    image = np.full((6, 5), 20000.0)
    assert exposed_field(image, (-0.5, -0.5, 5.5, 4.5), PARAMS) == (0.0, 0.0, 0.0, 0.0)


def test_an_empty_footprint_has_no_band():
    """A footprint of zero rows (top and bottom on the same pixel edge) shows nothing, so no side is banded."""
    image = np.zeros((40, 40))  # all dark: any band found would come from outside the footprint
    assert exposed_field(image, (-0.5, -0.5, -0.5, 39.5), PARAMS) == (0.0, 0.0, 0.0, 0.0)
    assert exposed_field(image, (9.5, 19.5, 29.5, 19.5), PARAMS) == (0.0, 0.0, 0.0, 0.0)  # zero columns


def test_field_params_cannot_be_changed_after_they_are_made():
    with pytest.raises(ValidationError):
        PARAMS.bins = 2  # shared by every image of an ingest run: must not change under it


def test_a_one_pixel_side_is_a_valid_size():
    """1 x 4 original into 8 x 8: scale min(8 / 1, 8 / 4) = 2, height 1 * 2 = 2 px, padding (8 - 2) / 2 = 3 above."""
    frame = WorkingFrame.fit(1, 4, 8, 8, flipped=False)
    assert (frame.scale, frame.pad_top, frame.pad_left) == (2.0, 3.0, 0.0)
    one = WorkingFrame.fit(1, 1, 1, 1, flipped=False)
    assert (one.scale, one.pad_top, one.pad_left) == (1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="positive"):
        WorkingFrame.fit(0, 4, 8, 8, flipped=False)
