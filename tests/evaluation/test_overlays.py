"""Overlays: the same inputs give the same PNG bytes, and the colours land where the contours and landmarks are."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from denseseg.evaluation.overlays import (
    PRED_CONTOUR_COLOUR,
    PRED_LANDMARK_COLOUR,
    TRUE_COLOUR,
    encode_rgb_png,
    overlay_png,
    render_overlay,
)


def inputs():
    rng = np.random.default_rng(7)
    image = rng.uniform(0.0, 1.0, size=(1, 16, 20)).astype(np.float32)
    true = np.zeros((2, 16, 20), bool)
    true[0, 2:7, 2:7] = True
    true[1, 9:14, 10:18] = True
    pred = np.zeros_like(true)
    pred[0, 3:8, 3:8] = True
    pred[1, 9:14, 10:18] = True
    true_lm = np.array([[2.0, 2.0], [12.0, 11.0]])
    pred_lm = np.array([[4.5, 4.0], [np.nan, np.nan]])
    return image, pred, true, pred_lm, true_lm


def test_the_same_inputs_give_the_same_bytes(tmp_path):
    args = inputs()
    overlay_png(tmp_path / "a.png", *args, scale=2)
    overlay_png(tmp_path / "b.png", *inputs(), scale=2)
    first = (tmp_path / "a.png").read_bytes()
    assert first == (tmp_path / "b.png").read_bytes()
    assert first == encode_rgb_png(render_overlay(*args, scale=2))
    with Image.open(tmp_path / "a.png") as im:
        assert im.mode == "RGB" and im.size == (40, 32)


def test_contours_and_landmarks_are_drawn_in_their_colours():
    image, pred, true, pred_lm, true_lm = inputs()
    rgb = render_overlay(image, pred, true, pred_lm, None, scale=1)
    assert tuple(rgb[2, 4]) == TRUE_COLOUR  # top edge of the true square, not covered by the prediction
    assert tuple(rgb[7, 5]) == PRED_CONTOUR_COLOUR  # bottom edge of the predicted square
    assert tuple(rgb[4, 4]) == PRED_LANDMARK_COLOUR  # (4.5, 4) rounds to column 4 (half to even)
    assert tuple(rgb[9, 14]) == PRED_CONTOUR_COLOUR  # the second structure: prediction drawn over the truth
    grey = np.round(image[0, 5, 5] * 255)
    assert tuple(rgb[5, 5]) == (grey, grey, grey)  # inside: the image untouched
    rgb = render_overlay(image, None, None, None, true_lm, scale=1)
    assert tuple(rgb[11, 12]) == TRUE_COLOUR and tuple(rgb[10, 12]) == TRUE_COLOUR  # a plus of arm 1


def test_bad_inputs_are_named():
    image, pred, true, pred_lm, true_lm = inputs()
    with pytest.raises(ValueError, match="pred_masks"):
        render_overlay(image, pred[:, :-1], true, pred_lm, true_lm)
    with pytest.raises(ValueError, match="scale"):
        render_overlay(image, pred, true, pred_lm, true_lm, scale=0)


def test_a_landmark_is_drawn_centred_on_its_pixel_at_every_scale():
    """Pixel (x, y) covers output pixels x*s .. x*s + s - 1: the plus sign's centre is x*s + (s - 1) / 2."""
    from denseseg.evaluation.overlays import PRED_LANDMARK_COLOUR, render_overlay

    for scale, (x, y) in ((1, (2, 1)), (3, (2, 1)), (5, (4, 3))):
        rgb = render_overlay(np.zeros((8, 8)), None, None, np.array([[x, y]], float), None, scale=scale)
        rows, cols = np.nonzero((rgb == PRED_LANDMARK_COLOUR).all(-1))
        centre = (x * scale + (scale - 1) // 2, y * scale + (scale - 1) // 2)
        assert (cols.min() + cols.max()) / 2 == centre[0] and (rows.min() + rows.max()) / 2 == centre[1]
