"""Scores of an age regression: mean absolute error in months and the coefficient of determination R²."""

from __future__ import annotations

import numpy as np


def _pair(true, predicted) -> tuple[np.ndarray, np.ndarray]:
    true, predicted = np.asarray(true, np.float64), np.asarray(predicted, np.float64)
    if true.shape != predicted.shape or true.ndim != 1 or len(true) == 0:
        raise ValueError(f"true {true.shape} and predicted {predicted.shape} ages must be equal, non-empty 1-D arrays")
    if not (np.isfinite(true).all() and np.isfinite(predicted).all()):
        raise ValueError("ages must be finite")
    return true, predicted


def mae_months(true, predicted) -> float:
    """Mean absolute error (the unit of the inputs: months)."""
    true, predicted = _pair(true, predicted)
    return float(np.abs(predicted - true).mean())


def r2_score(true, predicted) -> float:
    """1 - SS_res / SS_tot around the mean of ``true`` (0 for predicting that mean, negative when worse).

    NaN when all true ages are equal (R² is undefined then).
    """
    true, predicted = _pair(true, predicted)
    total = float(((true - true.mean()) ** 2).sum())
    if total == 0:
        return float("nan")
    return 1.0 - float(((true - predicted) ** 2).sum()) / total


def age_metrics(true, predicted) -> dict[str, float]:
    """{"mae_months", "r2"} of one set of predictions."""
    return {"mae_months": mae_months(true, predicted), "r2": r2_score(true, predicted)}
