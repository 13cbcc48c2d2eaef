"""Polyline geometry against hand-computed values on a 4 x 4 square (perimeter 16)."""

import numpy as np

from denseseg.shape.polyline import (
    arc_parameter,
    chamfer,
    closest_distances,
    cumulative_length,
    nearest_vertex,
    point_at_arc_parameter,
    point_at_vertex_parameter,
    project,
    snap_to_outline,
    vertex_parameter,
)

SQUARE = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])


def test_projection_names_the_segment_and_the_fraction():
    p = project(np.array([[1.0, -2.0], [5.0, 3.0], [2.0, 3.0], [-1.0, 1.0]]), SQUARE)
    np.testing.assert_array_equal(p.segment, [0, 1, 2, 3])
    np.testing.assert_allclose(p.fraction, [0.25, 0.75, 0.5, 0.75])
    np.testing.assert_allclose(p.points, [[1, 0], [4, 3], [2, 4], [0, 1]])
    # a point beyond a corner projects onto the corner (fraction clipped); ties go to the lower segment
    corner = project(np.array([[5.0, -1.0]]), SQUARE)
    assert corner.segment[0] == 0 and corner.fraction[0] == 1.0
    np.testing.assert_allclose(
        snap_to_outline(np.array([[5.0, -2], [12, 4], [5, 5.5]]), SQUARE * 2.5), [[5, 0], [10, 4], [5, 10]]
    )


def test_vertex_and_arc_parameters_round_trip():
    points = np.array([[1.0, 0.0], [4.0, 3.0], [2.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(vertex_parameter(points, SQUARE), [0.25, 1.75, 2.5, 3.75])
    np.testing.assert_allclose(arc_parameter(points, SQUARE), [1.0, 7.0, 10.0, 15.0])
    np.testing.assert_allclose(
        point_at_vertex_parameter(SQUARE, np.array([0.25, 1.75, 2.5, 3.75, 4.25])), [*points, [1, 0]]
    )
    s = np.array([0.0, 1.5, 4.0, 9.0, 15.5])
    pts = point_at_arc_parameter(SQUARE, s)
    np.testing.assert_allclose(pts, [[0, 0], [1.5, 0], [4, 0], [3, 4], [0, 0.5]])
    np.testing.assert_allclose(arc_parameter(pts, SQUARE), s)
    np.testing.assert_allclose(point_at_arc_parameter(SQUARE, np.array([16.0 + 2.0])), [[2.0, 0.0]])
    np.testing.assert_allclose(cumulative_length(SQUARE), [0, 4, 8, 12, 16])


def test_distances_between_point_sets():
    a = np.array([[0.0, 0.0], [3.0, 0.0]])
    b = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(closest_distances(a, b), [1.0, np.sqrt(10.0)])
    assert chamfer(a, b) == 0.5 * ((1.0 + np.sqrt(10.0)) / 2 + 1.0)
    np.testing.assert_array_equal(nearest_vertex(np.array([[3.9, 0.2], [0.1, 3.0]]), SQUARE), [1, 3])


def test_index_ranges_round_trip():
    from denseseg.shape.landmark_table import index_ranges, parse_ranges

    assert index_ranges([7, 0, 2, 1]) == "0-2, 7"
    assert index_ranges([]) == "" and parse_ranges("") == []
    for indices in ([5], [3, 4, 9, 10, 11], list(range(37, 53))):
        assert parse_ranges(index_ranges(indices)) == indices
