"""The method layer's shared pieces: landmark spaces and landmark polygons."""

import numpy as np
import pandas as pd
import pytest

from denseseg.anatomy import JSRT
from denseseg.methods.base import LandmarkSpace, polygon_masks
from denseseg.shape.template import Template


def _table(anatomy, rows=None):
    offsets = anatomy.landmark_offsets()
    rows = rows or [(s, offsets[s] + i) for s in anatomy.structures for i in range(anatomy.landmark_counts[s])]
    return pd.DataFrame(
        {
            "structure": [s for s, _ in rows],
            "index": [i for _, i in rows],
            "u": np.linspace(-1, 1, len(rows)),
            "v": np.linspace(1, -1, len(rows)),
            "used": True,
        }
    )


def _template(anatomy):
    return Template(
        anatomy.name, {s: np.random.default_rng(0).random((n, 2)) for s, n in anatomy.landmark_counts.items()}
    )


def test_landmark_space_puts_each_uv_at_its_flat_index():
    table = _table(JSRT).sample(frac=1.0, random_state=0)  # row order must not matter
    space = LandmarkSpace.from_table(JSRT, table, np.arange(JSRT.n_landmarks), _template(JSRT))
    for row in table.head(20).itertuples():
        assert tuple(space.uv[row.index]) == pytest.approx((row.u, row.v))
    assert space.structure[JSRT.landmark_offsets()["heart"]] == JSRT.index("heart")


def test_landmark_space_rejects_a_table_missing_landmarks():
    with pytest.raises(ValueError, match="does not cover"):
        LandmarkSpace.from_table(JSRT, _table(JSRT).iloc[1:], np.arange(3), _template(JSRT))


def test_expand_places_trained_landmarks_and_leaves_the_rest_nan():
    trained = np.array([3, 10, 100])
    space = LandmarkSpace.from_table(JSRT, _table(JSRT), trained, _template(JSRT))
    points = np.arange(6, dtype=np.float32).reshape(1, 3, 2)
    full = space.expand(points)
    assert full.shape == (1, JSRT.n_landmarks, 2)
    np.testing.assert_array_equal(full[0, trained], points[0])
    assert np.isnan(np.delete(full[0], trained, axis=0)).all()


def test_polygon_of_a_square_fills_the_pixels_whose_centres_lie_inside():
    landmarks = np.full((JSRT.n_landmarks, 2), np.nan, np.float32)
    start, n = JSRT.landmark_offsets()["heart"], JSRT.landmark_counts["heart"]
    # the heart's landmarks along the square x, y in [2.5, 6.5]: pixels 3..6 inside (16 pixels)
    t = np.linspace(0, 4, n, endpoint=False)
    side = np.floor(t).astype(int)
    f = t - side
    corners = np.array([[2.5, 2.5], [6.5, 2.5], [6.5, 6.5], [2.5, 6.5], [2.5, 2.5]])
    landmarks[start : start + n] = corners[side] + f[:, None] * (corners[side + 1] - corners[side])
    masks = polygon_masks(landmarks, JSRT, 10, 10)
    heart = masks[JSRT.index("heart")]
    assert heart.sum() == 16 and heart[3:7, 3:7].all()
    assert not masks[JSRT.index("right_lung")].any()  # no finite landmarks: empty, not an error
