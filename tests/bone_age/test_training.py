import numpy as np
import pytest

from denseseg.anatomy import WRIST
from denseseg.bone_age.experiment import fit_and_score, mean_age_baseline
from denseseg.bone_age.training import AgeSamples, train_ensemble
from denseseg.training.loop import TrainingError
from tests.bone_age.conftest import HEIGHT, WIDTH, growing_wrists, params, training


def test_training_on_wrists_that_grow_with_age_beats_the_mean_age_by_far(wrist_template):
    """Known truth: the wrist's size is a linear function of age; the ensemble must read it."""
    train, val, test = (growing_wrists(wrist_template, n, seed) for n, seed in ((60, 1), (15, 2), (40, 3)))
    result = fit_and_score(
        params(), training(epochs=25), train, val, test, anatomy=WRIST, height=HEIGHT, width=WIDTH, seed=0
    )
    _, baseline = mean_age_baseline(train, test)
    assert baseline["mae_months"] > 35  # ages uniform over 0-200 months
    assert result.metrics["mae_months"] < 0.35 * baseline["mae_months"]
    assert result.metrics["r2"] > 0.8 and result.n_fallback == 0
    assert result.model.info["best_epochs"] == [r for r in result.model.info["best_epochs"] if 1 <= r <= 25]


def _train(template, seed, tmp_path, name):
    train, val = growing_wrists(template, 20, 1), growing_wrists(template, 6, 2)
    model, results = train_ensemble(
        params(), training(epochs=3), train, val, anatomy=WRIST, height=HEIGHT, width=WIDTH, seed=seed
    )
    return model.save(tmp_path / name).read_bytes(), results


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_members(wrist_template, tmp_path):
    first, results = _train(wrist_template, 7, tmp_path, "a")
    again, _ = _train(wrist_template, 7, tmp_path, "b")
    other, _ = _train(wrist_template, 8, tmp_path, "c")
    assert first == again and first != other
    assert len(results) == 2 and all(r.epochs_run == 3 for r in results)
    assert results[0].history != results[1].history  # members differ by their seed


def test_a_nan_loss_stops_training_with_a_clear_error(wrist_template):
    train, val = growing_wrists(wrist_template, 20, 1), growing_wrists(wrist_template, 6, 2)
    with pytest.raises(TrainingError, match="non-finite loss at epoch"):
        train_ensemble(
            params(), training(epochs=5, lr=1e30), train, val, anatomy=WRIST, height=HEIGHT, width=WIDTH, seed=0
        )


def test_samples_without_an_age_are_refused_by_name():
    with pytest.raises(ValueError, match=r"item\(s\) b"):
        AgeSamples(["a", "b"], np.zeros((2, 710, 2)), np.array([12.0, np.nan]))
