"""The Pareto front and the compromise pick, on hand-made fronts whose answer is worked out by hand."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from denseseg.tuning.pareto import normalised_distances, pareto_mask, pick_compromise

# (TRE px: minimise, Dice: maximise). D (2.5, 0.80) is dominated by B (2.0, 0.90); A, B, C are the front.
POINTS = np.array([[1.0, 0.50], [2.0, 0.90], [3.0, 0.95], [2.5, 0.80]])
DIRECTIONS = ["minimize", "maximize"]


def test_the_front_keeps_exactly_the_non_dominated_points():
    assert pareto_mask(POINTS, DIRECTIONS).tolist() == [True, True, True, False]


def test_the_pick_is_the_front_point_nearest_the_utopia_point_after_min_max_normalising():
    # over the front, TRE 1..3 -> A 0, B 0.5, C 1; Dice 0.50..0.95 as a cost -> A 1, B 0.05/0.45, C 0
    expected = [1.0, np.hypot(0.5, 0.05 / 0.45), 1.0]
    assert normalised_distances(POINTS[:3], DIRECTIONS) == pytest.approx(expected)
    assert pick_compromise(POINTS, DIRECTIONS) == 1


def test_the_pick_does_not_depend_on_units_or_offsets():
    scaled = POINTS * np.array([1000.0, 1.0]) + np.array([7.0, 0.0])
    assert pick_compromise(scaled, DIRECTIONS) == 1


def test_equal_distances_go_to_the_first_trial():
    # two points mirror each other: both at distance 1 from the utopia point
    assert pick_compromise(np.array([[0.0, 1.0], [1.0, 0.0]]), ["minimize", "minimize"]) == 0


def test_three_objectives_with_a_constant_one_ignore_it():
    values = np.array([[1.0, 5.0, 0.9], [2.0, 5.0, 0.95], [1.5, 5.0, 0.93]])
    # objective 2 constant; in (cost of 0 and 2): points are (0, 1), (1, 0), (0.5, 0.4): the third is nearest
    assert pareto_mask(values, ["minimize", "minimize", "maximize"]).tolist() == [True, True, True]
    assert pick_compromise(values, ["minimize", "minimize", "maximize"]) == 2


def test_the_front_equals_optunas_best_trials():
    rng = np.random.default_rng(0)
    values = rng.random((40, 3))
    directions = ["minimize", "maximize", "minimize"]
    study = optuna.create_study(directions=directions)
    for row in values:
        study.add_trial(optuna.trial.create_trial(values=row.tolist()))
    ours = set(np.flatnonzero(pareto_mask(values, directions)).tolist())
    assert ours == {t.number for t in study.best_trials}


def test_non_finite_values_and_bad_directions_are_refused():
    with pytest.raises(ValueError, match="must be finite"):
        pareto_mask(np.array([[1.0, np.nan]]), DIRECTIONS)
    with pytest.raises(ValueError, match="expected 'minimize' or 'maximize'"):
        pareto_mask(POINTS, ["minimize", "up"])
    with pytest.raises(ValueError, match="no completed trial"):
        pick_compromise(np.zeros((0, 2)), DIRECTIONS)
