"""Dice and average symmetric surface distance on shapes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from denseseg.anatomy import WRIST
from denseseg.evaluation.segmentation import average_surface_distance, boundary, dice, group_summary, score_masks


def disk(shape, cy, cx, r):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_dice_of_offset_disks_matches_the_lens_area():
    r, d = 30.0, 20.0
    a, b = disk((120, 140), 60, 50, r), disk((120, 140), 60, 50 + d, r)
    lens = 2 * r * r * math.acos(d / (2 * r)) - 0.5 * d * math.sqrt(4 * r * r - d * d)
    expected = lens / (math.pi * r * r)  # 2|A and B| / (|A| + |B|) with |A| = |B|
    assert dice(a, b) == pytest.approx(expected, abs=0.01)


def test_dice_edge_cases():
    empty = np.zeros((5, 5), bool)
    full = np.ones((5, 5), bool)
    assert dice(empty, empty) == 1.0
    assert dice(full, empty) == 0.0
    assert dice(full, full) == 1.0
    with pytest.raises(ValueError):
        dice(full, np.ones((4, 5), bool))


def test_asd_of_concentric_disks_is_the_radius_difference():
    a, b = disk((101, 101), 50, 50, 30), disk((101, 101), 50, 50, 25)
    assert average_surface_distance(a, b) == pytest.approx(5.0, abs=0.6)
    assert average_surface_distance(a, a) == 0.0
    assert average_surface_distance(a, b, spacing=0.5) == pytest.approx(0.5 * average_surface_distance(a, b))
    assert math.isnan(average_surface_distance(a, np.zeros_like(a)))


def test_boundary_of_a_square_is_its_rim():
    m = np.zeros((7, 7), bool)
    m[1:6, 1:6] = True
    assert boundary(m).sum() == 16


def test_scores_are_grouped_by_bone_group():
    shape = (len(WRIST.structures), 40, 40)
    truth = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    truth[WRIST.index("radius")] = disk(shape[1:], 20, 20, 8)
    pred[WRIST.index("radius")] = disk(shape[1:], 20, 20, 8)
    truth[WRIST.index("lunate")] = disk(shape[1:], 10, 10, 4)  # missed entirely
    rows = score_masks("img", pred, truth, WRIST.structures)
    assert {r["structure"] for r in rows} == {"radius", "lunate"}  # bones absent in both are skipped
    summary = group_summary(pd.DataFrame(rows), WRIST)
    assert summary["ulna_radius"]["dice_mean"] == 1.0
    assert summary["carpals"]["dice_mean"] == 0.0
    assert summary["all"]["dice_mean"] == 0.5 and summary["all"]["n"] == 2
    assert "metacarpals" not in summary


def test_score_masks_reports_pixels_unless_given_a_spacing():
    """The default spacing is 1 (px): equal to spacing=1.0 given explicitly, and ASD scales linearly with it."""
    shape = (len(WRIST.structures), 40, 40)
    truth, pred = np.zeros(shape, bool), np.zeros(shape, bool)
    truth[WRIST.index("radius")] = disk(shape[1:], 20, 20, 8)
    pred[WRIST.index("radius")] = disk(shape[1:], 22, 19, 7)
    (default,) = score_masks("img", pred, truth, WRIST.structures)
    (px,) = score_masks("img", pred, truth, WRIST.structures, spacing=1.0)
    (mm,) = score_masks("img", pred, truth, WRIST.structures, spacing=0.25)
    assert default["asd"] > 1.0
    assert default == px and mm["asd"] == pytest.approx(0.25 * px["asd"]) and mm["dice"] == px["dice"]
