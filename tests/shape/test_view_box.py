"""Views: a whole frame or the letterboxed radiograph inside it."""

import numpy as np
import pytest

from denseseg.shape.view_box import as_box, inside_box, on_box_edge


def test_shape_and_box_give_the_same_edges():
    assert as_box((40, 30)) == (-0.5, -0.5, 39.5, 29.5)
    assert as_box((9.5, -0.5, 29.5, 29.5)) == (9.5, -0.5, 29.5, 29.5)
    with pytest.raises(ValueError, match="height, width"):
        as_box((1, 2, 3))


def test_inside_and_edge_against_a_letterbox():
    box = (9.5, -0.5, 29.5, 29.5)  # rows 10..29 show the radiograph
    points = np.array([[5.0, 9.5], [5.0, 10.0], [5.0, 20.0], [29.5, 20.0], [5.0, 35.0]])
    assert inside_box(points, box).tolist() == [True, True, True, True, False]
    assert inside_box(points, box, margin=0.5).tolist() == [False, True, True, False, False]
    assert on_box_edge(points, box).tolist() == [True, False, False, True, True]
    assert not on_box_edge(points[:3], (40, 30))[1:].any()  # the whole frame: row 9.5 is no edge


def test_a_point_on_any_edge_less_the_margin_is_inside():
    top, left, bottom, right = box = (9.5, -0.5, 29.5, 29.5)
    for margin in (0.0, 0.5):
        edges = np.array(
            [[left + margin, 20.0], [right - margin, 20.0], [5.0, top + margin], [5.0, bottom - margin]], float
        )
        assert inside_box(edges, box, margin).all()
        nudged = edges + np.array([[-0.01, 0], [0.01, 0], [0, -0.01], [0, 0.01]])
        assert not inside_box(nudged, box, margin).any()
