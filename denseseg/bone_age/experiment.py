"""The experiment: per target and landmark source, an ensemble trained and scored on that source's test images.

The paper's protocol (4.2.1): with landmarks predicted by a model, the
regressor is trained on the true (registration) and the predicted landmarks
of the training split and tested on the predicted landmarks of the test split
only; the trivial baseline predicts the mean training age for every image.
``fit_and_score`` is one cell, ``compare_sources`` the whole table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from denseseg.anatomy import Anatomy
from denseseg.bone_age.config import BoneAgeParams
from denseseg.bone_age.metrics import age_metrics
from denseseg.bone_age.model import BoneAgeModel
from denseseg.bone_age.training import AgeSamples, MemberProgress, train_ensemble
from denseseg.training.config import TrainingConfig
from denseseg.training.loop import TrainingError

SPLITS = ("train", "val", "test")
MODEL_FREE = ("registration", "truth")  # sources that are labels, not a model's predictions


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


def _split_samples(items, landmarks, months, source: str, split: str) -> AgeSamples:
    chosen = items[split]
    if source == "truth":  # the phantom's truth: only the images it has
        chosen = [it for it in chosen if it in landmarks["truth"]]
    return samples(list(chosen), landmarks[source], months, source)


@dataclass
class Comparison:
    """What ``compare_sources`` found.

    Attributes:
        metrics: target -> {"baseline": its metrics, source: the ensemble's test metrics}.
        rows: one per (target, source, test image): filestem, source, target, true_months, predicted_months.
        models: (target, source) -> the trained ensemble.
        fallbacks: (target, source) -> test images without any landmark (given the mean training age).
    """

    metrics: dict[str, dict] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    models: dict[tuple[str, str], BoneAgeModel] = field(default_factory=dict)
    fallbacks: dict[tuple[str, str], int] = field(default_factory=dict)


def compare_sources(
    params: BoneAgeParams,
    training: TrainingConfig,
    items: Mapping[str, Sequence[str]],
    landmarks: Mapping[str, Mapping[str, np.ndarray]],
    targets: Mapping[str, Mapping[str, float]],
    *,
    anatomy: Anatomy,
    height: int,
    width: int,
    seed: int,
    progress: Callable[[int, int, str], None] | None = None,
) -> Comparison:
    """Every (target, source) cell of the bone-age table, sources in the order of ``landmarks``.

    Args:
        items: split -> its images (train, val, test).
        landmarks: source -> image -> (N, 2) landmarks; ``registration`` is required (the labels every
            model source is trained with as well); ``truth`` (the phantom) covers only some images.
        targets: target -> image -> months.
        progress: (members done, members in all, message).

    Raises:
        KeyError: an image without landmarks of a source or without an age, named.
        TrainingError: an ensemble could not be trained, naming its target and source.
    """
    out, total, done = Comparison(), len(targets) * len(landmarks) * params.members, 0
    for target, months in targets.items():
        registration = {split: _split_samples(items, landmarks, months, "registration", split) for split in SPLITS}
        _, baseline = mean_age_baseline(registration["train"], registration["test"])
        out.metrics[target] = {"baseline": baseline}
        for source in landmarks:
            data = registration
            if source != "registration":
                data = {split: _split_samples(items, landmarks, months, source, split) for split in SPLITS}
            train, trained_on = data["train"], source
            if source not in MODEL_FREE:  # a model's landmarks: trained with the true ones as well
                train, trained_on = AgeSamples.concat(registration["train"], data["train"]), f"registration + {source}"

            def member(m: int, _members: int, message: str, start: int = done, cell: str = f"{target} / {source}"):
                if progress is not None:
                    progress(start + m, total, f"{cell}: {message}")

            try:
                result = fit_and_score(
                    params,
                    training,
                    train,
                    data["val"],
                    data["test"],
                    anatomy=anatomy,
                    height=height,
                    width=width,
                    seed=seed,
                    info={"target": target, "source": source, "trained_on": trained_on, "tested_on": source},
                    progress=member,
                )
            except TrainingError as err:
                raise TrainingError(f"({target}, {source}): {err}") from None
            done += params.members
            out.metrics[target][source] = result.metrics
            out.models[target, source] = result.model
            out.fallbacks[target, source] = result.n_fallback
            test = data["test"]
            out.rows += [
                {"filestem": it, "source": source, "target": target, "true_months": t, "predicted_months": y}
                for it, t, y in zip(test.items, test.months, result.predicted)
            ]
    return out
