"""One cell of the experiment: train an ensemble on one landmark source and score it on that source's test images.

The paper's protocol (4.2.1): with landmarks predicted by a model, the
regressor is trained on the true (registration) and the predicted landmarks
of the training split and tested on the predicted landmarks of the test split
only; the trivial baseline predicts the mean training age for every image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from denseseg.anatomy import Anatomy
from denseseg.bone_age.config import BoneAgeParams
from denseseg.bone_age.metrics import age_metrics
from denseseg.bone_age.model import BoneAgeModel
from denseseg.bone_age.training import AgeSamples, MemberProgress, train_ensemble
from denseseg.training.config import TrainingConfig


def samples(items: list[str], landmarks: dict[str, np.ndarray], months: dict[str, float], source: str) -> AgeSamples:
    """The images ``items`` with their landmarks from ``landmarks`` and ages from ``months``.

    Raises:
        KeyError: an item without landmarks of this ``source`` or without an age, named.
    """
    missing = [it for it in items if it not in landmarks]
    if missing:
        raise KeyError(f"{source}: no landmarks for item(s) {', '.join(missing[:5])}")
    missing = [it for it in items if it not in months]
    if missing:
        raise KeyError(f"no age for item(s) {', '.join(missing[:5])}")
    points = np.stack([landmarks[it] for it in items]) if items else np.zeros((0, 0, 2))
    return AgeSamples(list(items), points, np.array([months[it] for it in items], np.float64))


@dataclass(frozen=True)
class SourceResult:
    """An ensemble and its test predictions.

    Attributes:
        model: the trained ensemble.
        predicted: (n_test,) months; the mean training age where no bone was found (``n_fallback`` images).
        metrics: {"mae_months", "r2"} on the test images.
        n_fallback: test images without any landmark, given the mean training age.
    """

    model: BoneAgeModel
    predicted: np.ndarray
    metrics: dict[str, float]
    n_fallback: int


def mean_age_baseline(train: AgeSamples, test: AgeSamples) -> tuple[np.ndarray, dict[str, float]]:
    """The trivial regressor: every test image gets the mean age of the training images."""
    predicted = np.full(len(test), float(np.mean(train.months)))
    return predicted, age_metrics(test.months, predicted)


def fit_and_score(
    params: BoneAgeParams,
    training: TrainingConfig,
    train: AgeSamples,
    val: AgeSamples,
    test: AgeSamples,
    *,
    anatomy: Anatomy,
    height: int,
    width: int,
    seed: int,
    info: dict | None = None,
    progress: MemberProgress | None = None,
) -> SourceResult:
    """Train on ``train`` (best epochs on ``val``), predict ``test``; see ``train_ensemble`` for the arguments."""
    model, _ = train_ensemble(
        params,
        training,
        train,
        val,
        anatomy=anatomy,
        height=height,
        width=width,
        seed=seed,
        info=info,
        progress=progress,
    )
    predicted = model.predict(test.landmarks)
    fallback = ~np.isfinite(predicted)
    predicted[fallback] = float(np.mean(train.months))
    return SourceResult(model, predicted, age_metrics(test.months, predicted), int(fallback.sum()))
