import numpy as np
import pytest

from denseseg.anatomy import WRIST
from denseseg.io.tables import TRUTH_IMAGES, read_table
from denseseg.phantom.atlas import DENSE_PER_LANDMARK
from denseseg.phantom.raster import polygon_mask
from denseseg.phantom.release import read_truth_contours
from denseseg.phantom.truth_landmarks import ABSENT, OK, OUTSIDE, footprint_mask, read_truth_items, working_truth
from denseseg.preprocessing.working_frame import WorkingFrame
from tests.phantom.tiny import make_stage

H, W = 96, 56


@pytest.fixture(scope="module")
def truth_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    make_stage(root, seed=11, n_patients=6, p_right=0.5, p_crop=0.5, n_seed_annotations=0).run_serial()
    return root / "data/truth"


def _square(cx, cy, r, n):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy - r * np.sin(t)], 1)


def test_landmarks_are_every_8th_dense_point_in_the_working_frame(truth_dir):
    images = read_table(truth_dir / "images.parquet", TRUTH_IMAGES).set_index("filestem")
    items = list(read_truth_items(truth_dir, H, W))
    assert len(items) == len(images) > 0
    offsets = WRIST.landmark_offsets()
    for item in items:
        row = images.loc[item.filestem]
        frame = WorkingFrame.fit(int(row.height), int(row.width), H, W, flipped=row.laterality == "R")
        assert item.frame == frame and item.masks.shape == (len(WRIST.structures), H, W)
        dense = read_truth_contours(truth_dir / "contours.parquet", item.filestem)
        assert set(item.status) == set(WRIST.structures)
        for s_idx, bone in enumerate(WRIST.structures):
            n = WRIST.landmark_counts[bone]
            lm = item.landmarks[offsets[bone] : offsets[bone] + n]
            if bone not in dense:
                assert item.status[bone] == ABSENT
            sl = slice(offsets[bone], offsets[bone] + n)
            if item.status[bone] == ABSENT:
                assert np.isnan(item.landmarks_all[sl]).all() and not item.masks_all[s_idx].any()
                assert not item.inside[sl].any()
            if item.status[bone] != OK:
                assert np.isnan(lm).all() and not item.masks[s_idx].any()
            if item.status[bone] == ABSENT:
                continue
            pts = frame.to_working(dense[bone])
            np.testing.assert_allclose(item.landmarks_all[sl], pts[::DENSE_PER_LANDMARK])
            expected = polygon_mask(pts, (H, W)) & footprint_mask(frame)
            assert np.array_equal(item.masks_all[s_idx], expected)
            assert item.inside[sl].all() == (item.status[bone] == OK)
            if item.status[bone] == OK:
                np.testing.assert_allclose(lm, pts[::DENSE_PER_LANDMARK])
                assert np.array_equal(item.masks[s_idx], expected)


def test_right_hands_come_back_as_left_hands(truth_dir):
    """In the working frame every hand is a left hand PA: radius on the image's right of the ulna."""
    sides = []
    for item in read_truth_items(truth_dir, H, W):
        dense = read_truth_contours(truth_dir / "contours.parquet", item.filestem)
        if "radius" in dense and "ulna" in dense:
            r = item.frame.to_working(dense["radius"])[:, 0].mean()
            u = item.frame.to_working(dense["ulna"])[:, 0].mean()
            sides.append((item.info["laterality"], r > u))
    assert {lat for lat, _ in sides} == {"L", "R"}
    assert all(ok for _, ok in sides)


def test_bones_leaving_the_image_are_skipped_and_masks_are_clipped():
    frame = WorkingFrame.fit(100, 50, 40, 40, flipped=False)  # letterboxed: pad left and right
    n = WRIST.landmark_counts["capitate"] * DENSE_PER_LANDMARK
    m = WRIST.landmark_counts["hamate"] * DENSE_PER_LANDMARK
    contours = {
        "capitate": _square(25, 50, 10, n),  # well inside
        "hamate": _square(2, 50, 10, m),  # runs off the left edge
    }
    item = working_truth(contours, frame)
    assert item.status["capitate"] == OK and item.status["hamate"] == OUTSIDE
    assert item.status["radius"] == ABSENT
    assert item.count(OUTSIDE) == 1 and item.count(OK) == 1
    c = WRIST.structures.index("capitate")
    assert item.masks[c].any() and not (item.masks[c] & ~footprint_mask(frame)).any()
    assert not footprint_mask(frame)[:, 0].any()  # the letterbox pad is outside the footprint
    assert np.isfinite(item.landmarks).sum() == 2 * WRIST.landmark_counts["capitate"]
    h = WRIST.structures.index("hamate")
    assert item.masks_all[h].any() and not item.masks[h].any()
    assert 0 < item.inside.sum() < WRIST.landmark_counts["capitate"] + WRIST.landmark_counts["hamate"]


def test_wrong_dense_count_is_an_error():
    frame = WorkingFrame.fit(100, 50, 40, 40, flipped=False)
    with pytest.raises(ValueError, match="dense points"):
        working_truth({"capitate": _square(25, 50, 10, 7)}, frame)
