import numpy as np
import pytest

from denseseg.anatomy import WRIST
from denseseg.shape.farthest_point import farthest_point_sampling, fps_subsets, subset_counts


def _template():
    rng = np.random.default_rng(1)
    return {s: rng.uniform(0, 50, size=(n, 2)) for s, n in WRIST.landmark_counts.items()}


def test_wrist_default_keeps_178_with_minimum_4():
    counts = subset_counts(WRIST)
    assert sum(counts.values()) == 178 and min(counts.values()) >= 4
    assert counts["radius"] == 20 and counts["metacarpal_1"] == 12  # round half to even
    assert sum(subset_counts(WRIST, 0.05).values()) == 17 * 4


def test_subsets_are_deterministic_index_masks():
    t = _template()
    per, mask = fps_subsets(t, WRIST)
    per2, mask2 = fps_subsets({s: p.copy() for s, p in t.items()}, WRIST)
    assert mask.sum() == 178 and mask.shape == (710,)
    assert np.array_equal(mask, mask2) and all(np.array_equal(per[s], per2[s]) for s in per)
    offsets = WRIST.landmark_offsets()
    assert np.flatnonzero(mask).tolist() == sorted(offsets[s] + i for s in per for i in per[s])
    _, custom = fps_subsets(t, WRIST, fractions={"radius": 0.5})
    assert custom.sum() == 178 + 20


def test_fps_spreads_points():
    square = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5], [5, 4.9]], float)
    assert set(farthest_point_sampling(square, 4)) == {0, 1, 2, 3}
    with pytest.raises(ValueError):
        farthest_point_sampling(square, 7)
