"""The search space: the paper's ranges, validated, sampled inside them, written back as a deep update."""

from __future__ import annotations

import optuna
import pytest

from denseseg.tuning.space import SearchSpace

PAPER_DENSESEG = {"loss.lambda_bce": [0.0, 1.0], "loss.lambda_phi": [0.0, 1.0], "loss.lambda_tv": [0.0, 1.0]}
PAPER_HEATREG = {"heatmap.alpha": [1.0, 50.0], "heatmap.sigma": [1.0, 10.0]}


def test_the_paper_spaces_become_uniform_float_distributions():
    space = SearchSpace.from_params(PAPER_HEATREG, "tune.spaces.heatreg")
    dists = space.distributions()
    assert list(dists) == ["heatmap.alpha", "heatmap.sigma"]
    assert (dists["heatmap.alpha"].low, dists["heatmap.alpha"].high, dists["heatmap.alpha"].log) == (1.0, 50.0, False)
    assert space.signature() == PAPER_HEATREG


def test_sampled_values_stay_inside_the_ranges():
    space = SearchSpace.from_params(PAPER_DENSESEG, "s")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask(space.distributions())
        values = space.values_of(trial)
        assert list(values) == list(PAPER_DENSESEG) and all(0.0 <= v <= 1.0 for v in values.values())
        study.tell(trial, 0.0)


def test_values_are_written_back_as_a_nested_update():
    assert SearchSpace.nested({"loss.lambda_bce": 0.25, "loss.lambda_tv": 0.5, "threshold": 0.4}) == {
        "loss": {"lambda_bce": 0.25, "lambda_tv": 0.5},
        "threshold": 0.4,
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "search space is empty"),
        ({"loss.lambda_bce": [1.0, 0.0]}, r"tune.spaces.x.loss.lambda_bce: low 1.0 must be finite and below high 0.0"),
        ({"loss.lambda_bce": [0.0]}, r"expected \[low, high\]"),
    ],
)
def test_a_bad_range_is_refused_with_its_path(raw, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace.from_params(raw, "tune.spaces.x")


def test_a_path_that_is_not_a_number_of_the_method_is_refused():
    params = {"loss": {"lambda_bce": 0.1, "dense": True}, "threshold": 0.5}
    SearchSpace.from_params({"loss.lambda_bce": [0, 1]}, "s").check_paths(params, "s")
    missing = "'loss.lambda_phi' is not a parameter of the method \\(no key 'lambda_phi'\\)"
    with pytest.raises(ValueError, match=missing):
        SearchSpace.from_params({"loss.lambda_phi": [0, 1]}, "s").check_paths(params, "s")
    with pytest.raises(ValueError, match="'loss.dense' is True, not a number"):
        SearchSpace.from_params({"loss.dense": [0, 1]}, "s").check_paths(params, "s")
