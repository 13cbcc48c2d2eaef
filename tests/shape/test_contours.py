"""Outlines: right perimeter and ordering on known shapes; degenerate masks give reasons."""

import numpy as np
import pytest

from denseseg.shape.contours import (
    DegenerateContour,
    allocate_points,
    image_contours,
    outline,
    perimeter,
    resample_closed,
    signed_area,
)


def disk(h=80, w=90, cx=40.0, cy=35.0, r=20.0):
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_disk_outline_perimeter_orientation_start():
    pts = outline(disk())
    radii = np.linalg.norm(pts - [40.0, 35.0], axis=1)
    assert abs(radii.mean() - 20.5) < 0.5  # the 0.5 iso-line lies half a pixel outside the centres
    assert abs(perimeter(pts) - 2 * np.pi * 20.5) < 0.05 * 2 * np.pi * 20.5
    assert signed_area(pts) < 0  # counter-clockwise on screen (y down)
    assert pts[0, 1] == pts[:, 1].min()  # starts at the top


def test_resample_is_uniform_and_sized():
    pts = resample_closed(outline(disk()), 100)
    steps = np.linalg.norm(np.roll(pts, -1, 0) - pts, axis=1)
    assert len(pts) == 100
    assert steps.std() / steps.mean() < 0.05


def test_largest_component_and_holes():
    mask = disk()
    mask[5:8, 80:83] = True  # a speck elsewhere
    mask[30:40, 35:45] = False  # a hole
    pts = outline(mask)
    assert np.linalg.norm(pts - [40.0, 35.0], axis=1).min() > 15


@pytest.mark.parametrize(
    "mask, reason",
    [
        (np.zeros((20, 20), bool), "empty"),
        (np.pad(np.ones((2, 2), bool), 5), "too small"),
        (np.pad(np.ones((1, 30), bool), 5), "degenerate"),
    ],
)
def test_degenerate_masks_raise_with_reason(mask, reason):
    with pytest.raises(DegenerateContour, match=reason):
        outline(mask)


def test_allocation_sums_and_follows_perimeter():
    counts = allocate_points({"a": 100.0, "b": 300.0, "c": 1.0}, 4850, minimum=8)
    assert sum(counts.values()) == 4850
    assert counts["b"] > 2.9 * counts["a"] and counts["c"] >= 8


def test_image_contours_reports_problems():
    masks = np.stack([disk(), np.zeros((80, 90), bool), disk(r=10)])
    contours, problems = image_contours(masks, ["a", "b", "c"], total_points=300)
    assert set(contours) == {"a", "c"} and problems == {"b": "empty mask"}
    assert sum(len(v) for v in contours.values()) == 300


def test_border_flags_mark_the_edge_cut():
    from denseseg.shape.contours import border_flags

    mask = disk(h=60, w=90, cy=50.0)  # cut by the bottom edge
    pts = outline(mask)
    flags = border_flags(pts, mask.shape)
    assert flags.any() and not flags.all()
    assert np.allclose(pts[flags, 1], 59.5, atol=0.25)
    assert not border_flags(outline(disk()), (80, 90)).any()


def test_border_flags_follow_the_radiograph_inside_letterbox_padding():
    """A bone cut by the radiograph's bottom edge, with padding below: only the view box sees the cut."""
    from denseseg.preprocessing.working_frame import WorkingFrame
    from denseseg.shape.contours import border_flags

    frame = WorkingFrame.fit(300, 400, 384, 224, False)
    top, left, bottom, right = frame.view_box()
    footprint = frame.warp_mask(np.ones((300, 400), bool))
    yy, xx = np.mgrid[:384, :224]
    bone = (np.abs(xx - 112) < 15) & (yy > bottom - 40)  # a shaft running out of the picture
    pts = outline(bone & footprint)
    flags = border_flags(pts, frame.view_box())
    assert flags.any() and np.allclose(pts[flags, 1], bottom, atol=0.25)
    assert not border_flags(pts, (384, 224)).any()  # the frame's edge is far below: the cut would pass as bone
