"""Synthetic stand-in chests: JSRT layout and counts, seeded, distinct cases, non-degenerate organs."""

import numpy as np

from denseseg.anatomy import JSRT
from denseseg.io.jsrt import polygon_masks, to_working
from denseseg.phantom.chest_shapes import FRAME_PX, synthetic_chest_landmarks


def test_stand_ins_have_the_jsrt_layout_and_are_seeded():
    cases = synthetic_chest_landmarks(4, seed=5)
    assert list(cases) == ["SYN0001", "SYN0002", "SYN0003", "SYN0004"]
    flat = cases["SYN0001"]
    assert flat.shape == (JSRT.n_landmarks, 2) and np.isfinite(flat).all()
    assert flat.min() >= 0 and flat.max() <= FRAME_PX
    again = synthetic_chest_landmarks(4, seed=5)
    assert all(np.array_equal(cases[k], again[k]) for k in cases)
    assert not np.allclose(cases["SYN0001"], cases["SYN0002"])
    assert not np.allclose(flat, synthetic_chest_landmarks(1, seed=6)["SYN0001"])
    offsets = JSRT.landmark_offsets()
    right, left = (flat[offsets[k] : offsets[k] + JSRT.landmark_counts[k]].mean(0) for k in ("right_lung", "left_lung"))
    assert right[0] < left[0]  # the patient's right lung on the image's left, as in JSRT
    masks = polygon_masks(to_working(flat, size=256), 256)
    assert masks.shape == (5, 256, 256) and (masks.sum((1, 2)) > 100).all()
    assert masks[0].sum() > 4 * masks[3].sum()  # a lung is much larger than a clavicle
