"""Coincident landmarks are parted along the outline: laid evenly between the midpoints to their neighbours."""

import numpy as np

from denseseg.shape.polyline import arc_parameter, cumulative_length, point_at_arc_parameter
from denseseg.shape.registration.repairs import _circular_runs, separate_coincident


def _circle(n=200, r=20.0):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([r * np.cos(t), r * np.sin(t)])


def test_runs_of_a_circular_array_wrap_past_its_end():
    as_sets = lambda runs: sorted(tuple(r) for r in runs)  # noqa: E731 - the order of the runs is no contract
    assert as_sets(_circular_runs(np.array([True, False, True, True]))) == [(2, 3, 0)]
    assert as_sets(_circular_runs(np.array([False, True, True, False, True]))) == [(1, 2), (4,)]
    assert _circular_runs(np.array([False, False])) == []


def test_three_coincident_landmarks_are_laid_evenly_between_their_neighbours_midpoints():
    outline = _circle()
    length = cumulative_length(outline)[-1]
    s = np.array([0.0, 0.1, 0.1, 0.1, 0.3, 0.5, 0.7]) * length  # landmarks 1, 2, 3 snapped onto one point
    parted = arc_parameter(separate_coincident(point_at_arc_parameter(outline, s), outline), outline)
    # half-way back to 0 and half-way on to 0.3 L: 0.05 L .. 0.2 L, three equal slots, each at its centre
    expected = np.array([0.0, 0.075, 0.125, 0.175, 0.3, 0.5, 0.7]) * length
    np.testing.assert_allclose(parted, expected, atol=1e-6 * length)


def test_a_coincident_pair_across_the_start_of_the_outline():
    outline = _circle()
    length = cumulative_length(outline)[-1]
    s = np.array([0.2, 0.4, 0.6, 0.9, 0.9]) * length  # the last two meet; their next neighbour is 0.2 L on
    parted = arc_parameter(separate_coincident(point_at_arc_parameter(outline, s), outline), outline)
    # half-way back to 0.6 L (0.75 L) and half-way on to 0.2 L past the start (1.05 L): slots at 0.825, 0.975
    expected = np.array([0.2, 0.4, 0.6, 0.825, 0.975]) * length
    np.testing.assert_allclose(np.mod(parted, length), expected, atol=1e-6 * length)
